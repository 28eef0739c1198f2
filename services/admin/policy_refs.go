package admin

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ledgersync/ledger/libs/policy"
	"github.com/ledgersync/ledger/libs/store"
)

// checkPolicyReferences checks the policy's Sage ids against the tenant's
// reference cache (policy.CheckReferences): a stale or unknown id, or a
// required one left empty, is InvalidArgument naming the field. A tenant whose
// Sage side was never connected has no cache yet: nothing is checked, and the
// connection fills the required defaults that are still empty.
func (s *Service) checkPolicyReferences(ctx context.Context, tenantID string, p policy.Policy) error {
	docs := map[string][]byte{}
	for _, kind := range policy.RefKinds {
		doc, _, err := s.st.RefCache(ctx, tenantID, kind)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return s.storeErr(ctx, "load reference data", err)
		}
		docs[kind] = doc
	}
	if len(docs) == 0 {
		return nil
	}
	refs, err := policy.ParseReferences(docs)
	if err != nil {
		s.log.WarnContext(ctx, "reference cache unreadable", "tenant_id", tenantID, "err", err)
		return status.Errorf(codes.FailedPrecondition,
			"the tenant's Sage reference data cannot be read (%v): run ledgerctl refdata refresh --tenant %s, then set the policy again", err, tenantID)
	}
	if err := p.CheckReferences(refs); err != nil {
		return status.Errorf(codes.InvalidArgument, "invalid policy: %v", err)
	}
	return nil
}
