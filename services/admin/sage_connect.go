package admin

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ledgersync/ledger/libs/sage"
	"github.com/ledgersync/ledger/libs/store"
	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
)

// StartSageConnect creates a single-use OAuth state for the tenant (valid for
// OAuthStateTTL) and returns Sage's authorization URL. The operator opens it in
// a browser, signs in to Sage and allows access; Sage then redirects to
// PublicURL + CallbackPath.
func (s *Service) StartSageConnect(ctx context.Context, req *ledgerv1.StartSageConnectRequest) (*ledgerv1.StartSageConnectResponse, error) {
	u, err := s.startSage(ctx, req.GetTenantId())
	if err != nil {
		return nil, err
	}
	return &ledgerv1.StartSageConnectResponse{AuthorizeUrl: u}, nil
}

func (s *Service) startSage(ctx context.Context, tenantID string) (string, error) {
	t, err := s.tenant(ctx, tenantID)
	if err != nil {
		return "", err
	}
	if s.cfg.SageClientID == "" {
		return "", status.Error(codes.FailedPrecondition,
			"Sage is not configured: set SAGE_CLIENT_ID and SAGE_CLIENT_SECRET (the Sage app registration) on the admin service")
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", status.Error(codes.Internal, "generating the OAuth state failed")
	}
	state := base64.RawURLEncoding.EncodeToString(b[:])
	if err := s.st.CreateOAuthState(ctx, t.ID, state); err != nil {
		return "", s.storeErr(ctx, "create OAuth state", err)
	}
	return s.oauth.AuthCodeURL(state), nil
}

// handleSageStart is GET /oauth/sage/start?tenant=T: a browser shortcut that
// redirects to Sage's authorization page.
func (s *Service) handleSageStart(w http.ResponseWriter, r *http.Request) {
	u, err := s.startSage(r.Context(), r.URL.Query().Get("tenant"))
	if err != nil {
		st := status.Convert(err)
		code := http.StatusInternalServerError
		switch st.Code() {
		case codes.InvalidArgument:
			code = http.StatusBadRequest
		case codes.NotFound:
			code = http.StatusNotFound
		case codes.FailedPrecondition:
			code = http.StatusConflict
		}
		s.renderMessage(w, code, page{Title: "Cannot start the Sage connection", Problem: st.Message(),
			Fix: "Check the tenant id (ledgerctl tenants list) and open /oauth/sage/start?tenant=<id> again."})
		return
	}
	http.Redirect(w, r, u, http.StatusFound)
}

// handleSageCallback is GET /oauth/sage/callback: the state is the credential.
// It exchanges the code, stores the tokens, finds the business, caches its
// reference data, fills the policy defaults and activates the binding.
func (s *Service) handleSageCallback(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q := r.URL.Query()
	restart := "Start the connection again: run ledgerctl sage connect --tenant <id> and open the new link within 10 minutes."
	tenantID, err := "", error(nil)
	if q.Get("state") == "" {
		err = store.ErrBadState
	} else {
		tenantID, err = s.st.ConsumeOAuthState(ctx, q.Get("state"), OAuthStateTTL)
	}
	switch {
	case errors.Is(err, store.ErrBadState):
		s.metrics.sage.WithLabelValues("bad_state").Inc()
		s.renderMessage(w, http.StatusBadRequest, page{Title: "This Sage connection link is no longer valid",
			Problem: "The link has expired, was already used, or did not come from Ledger (links last 10 minutes and work once).", Fix: restart})
		return
	case err != nil:
		s.log.ErrorContext(ctx, "consuming OAuth state", "err", err)
		s.renderMessage(w, http.StatusInternalServerError, page{Title: "Ledger could not check the connection link",
			Problem: "A database error occurred (details in the admin service log).", Fix: "Try again in a minute. " + restart})
		return
	}
	restart = fmt.Sprintf("Start the connection again: run ledgerctl sage connect --tenant %s and open the new link within 10 minutes.", tenantID)
	log := s.log.With("tenant_id", tenantID)

	if e := q.Get("error"); e != "" {
		s.metrics.sage.WithLabelValues("denied").Inc()
		log.WarnContext(ctx, "sage authorization denied", "error", e, "description", q.Get("error_description"))
		problem := fmt.Sprintf("Sage did not grant access (%s", e)
		if d := q.Get("error_description"); d != "" {
			problem += ": " + d
		}
		problem += ")."
		fix := restart + " Sign in as a Sage user with access to the business and choose Allow."
		if e == "invalid_scope" || e == "unauthorized_client" || e == "invalid_client" {
			fix = "The Sage app registration does not match: check SAGE_CLIENT_ID and that " + s.cfg.PublicURL + CallbackPath +
				" is a registered callback URL of the app. Then " + restart
		}
		s.renderMessage(w, http.StatusBadRequest, page{Title: "Sage access was not granted", Problem: problem, Fix: fix})
		return
	}
	code := q.Get("code")
	if code == "" {
		s.metrics.sage.WithLabelValues("no_code").Inc()
		s.renderMessage(w, http.StatusBadRequest, page{Title: "Sage sent no authorization code", Problem: "The callback carried no code.", Fix: restart})
		return
	}

	res, err := s.connectSage(ctx, tenantID, code)
	if err != nil {
		var fe *flowError
		if !errors.As(err, &fe) {
			fe = &flowError{outcome: "internal", status: http.StatusInternalServerError, title: "Ledger could not finish the Sage connection",
				problem: "An internal error occurred (details in the admin service log).", fix: restart}
		}
		if fe.fix == "" {
			fe.fix = restart
		}
		s.metrics.sage.WithLabelValues(fe.outcome).Inc()
		log.WarnContext(ctx, "sage connect failed", "outcome", fe.outcome, "err", err)
		s.renderMessage(w, fe.status, page{Title: fe.title, Problem: fe.problem, Fix: fe.fix})
		return
	}
	s.metrics.sage.WithLabelValues("ok").Inc()
	log.InfoContext(ctx, "sage connected", "business_id", res.business.ID, "country", q.Get("country"), "policy_filled", res.filled)
	s.renderSuccess(w, tenantID, res)
}

// flowError is a failed step of the callback with the page to show.
type flowError struct {
	outcome, title, problem, fix string
	status                       int
	err                          error
}

func (e *flowError) Error() string { return e.outcome + ": " + e.err.Error() }
func (e *flowError) Unwrap() error { return e.err }

// connectResult is what a successful connection did.
type connectResult struct {
	business sage.Business
	counts   map[string]int
	filled   []string
}

func (s *Service) connectSage(ctx context.Context, tenantID, code string) (connectResult, error) {
	tok, err := s.oauth.Exchange(ctx, code)
	if errors.Is(err, sage.ErrInvalidGrant) {
		return connectResult{}, &flowError{outcome: "invalid_grant", status: http.StatusBadRequest, err: err,
			title:   "Sage refused the authorization code",
			problem: "Sage answered invalid_grant: the code lasts 60 seconds and works once, and the redirect URL must match the one Sage was given."}
	}
	if err != nil {
		return connectResult{}, &flowError{outcome: "exchange_failed", status: http.StatusBadGateway, err: err,
			title:   "Ledger could not exchange the code with Sage",
			problem: "Sage's token endpoint failed: " + err.Error(),
			fix: "If the message says invalid_client, check SAGE_CLIENT_ID and SAGE_CLIENT_SECRET; otherwise check that SAGE_TOKEN_URL is reachable. " +
				"Then start the connection again with ledgerctl sage connect --tenant " + tenantID + "."}
	}
	if err := s.st.SaveTokens(ctx, tenantID, store.Tokens{Access: tok.Access, Refresh: tok.Refresh,
		AccessExpiresAt: tok.AccessExpiresAt, RefreshExpiresAt: tok.RefreshExpiresAt, Scope: tok.Scope, RequestedByID: tok.RequestedByID}); err != nil {
		return connectResult{}, err
	}
	client := &sage.Client{BaseURL: s.cfg.Sage.APIURL, HTTP: s.hc, Tokens: sage.StaticToken(tok.Access)}
	biz, err := client.LeadBusiness(ctx)
	if err != nil || biz.ID == "" {
		if err == nil {
			err = errors.New("GET /businesses/lead returned no id")
		}
		return connectResult{}, sageAPIError("lead_business_failed", "Ledger could not read the Sage business", err)
	}
	client.BusinessID = biz.ID
	res := connectResult{business: biz}
	lists, counts, err := s.cacheReferenceData(ctx, tenantID, client)
	if err != nil {
		var re *refDataError
		if errors.As(err, &re) {
			return connectResult{}, sageAPIError("ref_data_failed", "Ledger could not read the business's "+re.kind, re.err)
		}
		return connectResult{}, err
	}
	res.counts = counts
	rd, err := decodeRefData(lists)
	if err != nil {
		return connectResult{}, sageAPIError("ref_data_failed", "Sage's reference data has an unexpected shape", err)
	}
	current, err := s.st.Policy(ctx, tenantID)
	if err != nil {
		return connectResult{}, err
	}
	doc, filled, err := fillPolicy(current, derivePolicyDefaults(rd))
	if err != nil {
		return connectResult{}, &flowError{outcome: "policy_invalid", status: http.StatusConflict, err: err,
			title:   "The tenant's sync policy is not valid",
			problem: "Filling the policy defaults from Sage's reference data gave an invalid policy: " + err.Error(),
			fix:     "Correct the stored policy, then start the Sage connection again with ledgerctl sage connect --tenant " + tenantID + "."}
	}
	if err := s.st.SetPolicy(ctx, tenantID, doc); err != nil {
		return connectResult{}, err
	}
	res.filled = filled
	if err := s.st.SetSageStatus(ctx, tenantID, store.StatusActive, biz.ID); err != nil {
		return connectResult{}, err
	}
	return res, nil
}

// sageAPIError explains a failed Sage API call after the exchange.
func sageAPIError(outcome, title string, err error) *flowError {
	fe := &flowError{outcome: outcome, status: http.StatusBadGateway, err: err, title: title, problem: err.Error()}
	var ae *sage.APIError
	if errors.As(err, &ae) && ae.Status == http.StatusForbidden {
		fe.fix = "The Sage user who allowed access lacks a role this needs (Sage answers 403 MultiUserAccessDenied): " +
			"give the user full access to Sales, Contacts, Bank and Settings in Sage, or connect as the business owner, then start again."
	}
	return fe
}
