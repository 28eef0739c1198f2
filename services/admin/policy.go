package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ledgersync/ledger/libs/policy"
	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
)

// maxPolicyBytes bounds a policy document.
const maxPolicyBytes = 256 << 10

// GetPolicy returns the tenant's stored policy document, indented ("{}" when
// none was set). Keys it does not set take their defaults (libs/policy
// Default); the Sage connection fills the tax and ledger defaults.
func (s *Service) GetPolicy(ctx context.Context, req *ledgerv1.GetPolicyRequest) (*ledgerv1.GetPolicyResponse, error) {
	t, err := s.tenant(ctx, req.GetTenantId())
	if err != nil {
		return nil, err
	}
	doc, err := s.st.Policy(ctx, t.ID)
	if err != nil {
		return nil, s.storeErr(ctx, "load policy", err)
	}
	return &ledgerv1.GetPolicyResponse{PolicyJson: indentJSON(doc)}, nil
}

// SetPolicy validates a policy document (policy.Parse: unknown keys, shapes,
// the Sage ids against the tenant's reference cache, and the mapped Magento
// payment method codes against the shop's list) and stores it as
// given, so keys it leaves out keep taking their defaults. An invalid document
// is InvalidArgument naming every bad field.
func (s *Service) SetPolicy(ctx context.Context, req *ledgerv1.SetPolicyRequest) (*ledgerv1.SetPolicyResponse, error) {
	t, err := s.tenant(ctx, req.GetTenantId())
	if err != nil {
		return nil, err
	}
	raw := strings.TrimSpace(req.GetPolicyJson())
	switch {
	case raw == "":
		return nil, status.Error(codes.InvalidArgument, "policy_json is empty: give the whole policy document (ledgerctl policy get prints the current one)")
	case len(raw) > maxPolicyBytes:
		return nil, status.Errorf(codes.InvalidArgument, "policy_json is %d bytes: at most %d", len(raw), maxPolicyBytes)
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal([]byte(raw), &obj); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "policy_json is not a JSON object: %v", err)
	}
	p, err := policy.Parse([]byte(raw))
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "invalid policy: %v", err)
	}
	if err := s.checkPolicyReferences(ctx, t.ID, p); err != nil {
		return nil, err
	}
	if err := s.checkPaymentMethods(ctx, t, p); err != nil {
		return nil, err
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, []byte(raw)); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "policy_json: %v", err)
	}
	if err := s.st.SetPolicy(ctx, t.ID, compact.Bytes()); err != nil {
		return nil, s.storeErr(ctx, "store policy", err)
	}
	s.log.InfoContext(ctx, "policy set", "tenant_id", t.ID, "keys", len(obj))
	return &ledgerv1.SetPolicyResponse{PolicyJson: indentJSON(compact.Bytes())}, nil
}

func indentJSON(doc []byte) string {
	var b bytes.Buffer
	if err := json.Indent(&b, doc, "", "  "); err != nil {
		return string(doc)
	}
	return b.String()
}
