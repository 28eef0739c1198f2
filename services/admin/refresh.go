package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ledgersync/ledger/libs/sage"
	"github.com/ledgersync/ledger/libs/store"
	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
)

// refDataError is a failed Sage list fetch of one reference kind.
type refDataError struct {
	kind string
	err  error
}

func (e *refDataError) Error() string { return "reading " + e.kind + ": " + e.err.Error() }
func (e *refDataError) Unwrap() error { return e.err }

// cacheReferenceData fetches every reference list (refQueries) with client and
// stores each in ref_cache. A Sage failure is a *refDataError.
func (s *Service) cacheReferenceData(ctx context.Context, tenantID string, client *sage.Client) (map[string][]json.RawMessage, map[string]int, error) {
	lists := map[string][]json.RawMessage{}
	counts := map[string]int{}
	for _, rq := range refQueries {
		items, err := fetchList(ctx, client, rq.path)
		if err != nil {
			return nil, nil, &refDataError{kind: rq.kind, err: err}
		}
		doc, _ := json.Marshal(items)
		if err := s.st.SetRefCache(ctx, tenantID, rq.kind, doc); err != nil {
			return nil, nil, err
		}
		lists[rq.kind], counts[rq.kind] = items, len(items)
	}
	return lists, counts, nil
}

// tokenRefreshMargin refreshes an access token this long before it expires.
const tokenRefreshMargin = time.Minute

// accessToken returns a valid Sage access token of the tenant, refreshing it
// under the store's cross-process lock when it is about to expire.
func (s *Service) accessToken(ctx context.Context, tenantID string) (string, error) {
	tok, err := s.st.Tokens(ctx, tenantID)
	if errors.Is(err, store.ErrNotFound) {
		return "", status.Errorf(codes.FailedPrecondition, "tenant %s has no Sage connection: run ledgerctl sage connect --tenant %s first", tenantID, tenantID)
	}
	if err != nil {
		return "", s.storeErr(ctx, "load tokens", err)
	}
	need := func(t store.Tokens) bool { return time.Until(t.AccessExpiresAt) < tokenRefreshMargin }
	if !need(tok) {
		return tok.Access, nil
	}
	tok, err = s.st.RefreshTokens(ctx, tenantID, need, func(ctx context.Context, cur store.Tokens) (store.Tokens, error) {
		next, err := s.oauth.Refresh(ctx, cur.Refresh)
		s.countRefresh(err)
		if err != nil {
			return store.Tokens{}, err
		}
		return store.Tokens{Access: next.Access, Refresh: next.Refresh, AccessExpiresAt: next.AccessExpiresAt,
			RefreshExpiresAt: next.RefreshExpiresAt, Scope: next.Scope, RequestedByID: next.RequestedByID}, nil
	})
	if errors.Is(err, sage.ErrInvalidGrant) {
		if serr := s.st.SetSageStatus(context.WithoutCancel(ctx), tenantID, store.StatusTokenRevoked, ""); serr != nil {
			s.log.ErrorContext(ctx, "marking the Sage binding token_revoked", "tenant_id", tenantID, "err", serr)
		}
		return "", status.Errorf(codes.FailedPrecondition,
			"Sage refused the tenant's refresh token (invalid_grant): the binding is now token_revoked; run ledgerctl sage connect --tenant %s again", tenantID)
	}
	if err != nil {
		return "", status.Errorf(codes.Unavailable, "refreshing the Sage access token failed: %v; try again later", err)
	}
	return tok.Access, nil
}

// RefreshReferenceData re-reads the tenant's Sage reference data (ledger
// accounts, tax rates, bank accounts) into ref_cache now, e.g. after the
// merchant added a bank account in Sage. The policy is left as it is.
func (s *Service) RefreshReferenceData(ctx context.Context, req *ledgerv1.RefreshReferenceDataRequest) (*ledgerv1.RefreshReferenceDataResponse, error) {
	t, err := s.tenant(ctx, req.GetTenantId())
	if err != nil {
		return nil, err
	}
	if t.Binding.Status != store.StatusActive || t.Binding.SageBusinessID == "" {
		return nil, status.Errorf(codes.FailedPrecondition, "tenant %s: Sage is %s, not active: run ledgerctl sage connect --tenant %s",
			t.ID, sageStatus(t.Binding.Status), t.ID)
	}
	access, err := s.accessToken(ctx, t.ID)
	if err != nil {
		return nil, err
	}
	client := &sage.Client{BaseURL: s.cfg.Sage.APIURL, HTTP: s.sageHTTP, Tokens: sage.StaticToken(access), BusinessID: t.Binding.SageBusinessID}
	_, counts, err := s.cacheReferenceData(ctx, t.ID, client)
	var re *refDataError
	switch {
	case errors.As(err, &re):
		msg := fmt.Sprintf("Sage failed while reading %s: %v", re.kind, re.err)
		var ae *sage.APIError
		if errors.As(re.err, &ae) && ae.Status == http.StatusForbidden {
			msg += " (the Sage user who authorised Ledger lacks access: give them Settings access or reconnect as the owner)"
		}
		return nil, status.Error(codes.Unavailable, msg)
	case err != nil:
		return nil, s.storeErr(ctx, "store reference data", err)
	}
	out := &ledgerv1.RefreshReferenceDataResponse{Counts: map[string]int32{}}
	for k, n := range counts {
		out.Counts[k] = int32(n)
	}
	s.log.InfoContext(ctx, "reference data refreshed", "tenant_id", t.ID, "counts", counts)
	return out, nil
}
