package mapper

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/ledgersync/ledger/libs/money"
	"github.com/ledgersync/ledger/libs/policy"
	"github.com/ledgersync/ledger/libs/sagewrite"
	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
	sagesim "github.com/ledgersync/ledger/sim/sage"
)

// simSage plays SageWrites against an in-process Sage simulator with the
// writer's interpreter (libs/sagewrite: entity_xref first, idempotency_id,
// root keys, bindings — including the nested
// "allocated_artefacts.<i>.artefact_id" paths the mapper asks for), calling
// the simulator's http.Handler directly for speed. It is a test stand-in for
// the writer, used where only the Sage side matters.
type simSage struct {
	t        testing.TB
	sim      *sagesim.Server
	h        http.Handler
	token    string
	business string
	xref     map[string]string // kind|key|currency → Sage id
	dir      *MemoryDirectory
	// reference data
	sales, carriage, other string // ledger account ids (4000, 4905, 4010)
	banks                  []string
}

func newSimSage(t testing.TB, q *sagesim.Quirks) *simSage {
	t.Helper()
	sim := sagesim.New(sagesim.Config{Quirks: q, Seed: 7})
	s := &simSage{t: t, sim: sim, h: sim.Handler(), business: sim.LeadBusinessID(), xref: map[string]string{}, dir: &MemoryDirectory{}}
	const redirect = "https://ledger.example/oauth/sage/callback"
	qs := url.Values{"client_id": {sagesim.DefaultClientID}, "redirect_uri": {redirect}, "response_type": {"code"},
		"scope": {"full_access"}, "state": {"s"}}
	rec := s.raw(http.MethodGet, "/oauth2/auth/central?"+qs.Encode(), nil, "")
	loc, _ := url.Parse(rec.Header().Get("Location"))
	form := url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")}, "redirect_uri": {redirect},
		"client_id": {sagesim.DefaultClientID}, "client_secret": {sagesim.DefaultClientSecret}}
	rec = s.raw(http.MethodPost, "/token", []byte(form.Encode()), "application/x-www-form-urlencoded")
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	_ = json.Unmarshal(rec.Body.Bytes(), &tok)
	if tok.AccessToken == "" {
		t.Fatalf("no access token: %d %s", rec.Code, rec.Body)
	}
	s.token = tok.AccessToken
	var accounts []struct {
		ID          string `json:"id"`
		NominalCode int    `json:"nominal_code"`
	}
	s.list("/ledger_accounts?visible_in=sales&items_per_page=200&attributes=all", &accounts)
	for _, a := range accounts {
		switch a.NominalCode {
		case 4000:
			s.sales = a.ID
		case 4905:
			s.carriage = a.ID
		case 4010:
			s.other = a.ID
		}
	}
	var banks []struct {
		ID string `json:"id"`
	}
	s.list("/bank_accounts?attributes=all", &banks)
	for _, b := range banks {
		s.banks = append(s.banks, b.ID)
	}
	if s.sales == "" || s.carriage == "" || s.other == "" || len(s.banks) < 2 {
		t.Fatalf("reference data: sales %q carriage %q other %q banks %v", s.sales, s.carriage, s.other, s.banks)
	}
	return s
}

// policy is a complete tenant policy over this business's reference data.
func (s *simSage) policy() policy.Policy {
	p := policy.Default()
	p.DefaultLedgerAccountID = s.sales
	p.CarriageLedgerAccountID = s.carriage
	p.GiftCardLedgerAccountID = s.other
	p.StoreCreditLedgerAccountID = s.other
	p.AdjustmentsLedgerAccountID = s.other
	p.RoundingLedgerAccountID = s.other
	p.InvoiceNumberPrefix = "MAG-"
	p.PaymentMethodMap = map[string]string{"stripe_payments": s.banks[1], "paypal_express": s.banks[1],
		"checkmo": s.banks[0], "banktransfer": s.banks[0], "purchaseorder": "", "free": ""}
	p.SagePaymentMethodMap = map[string]string{"stripe_payments": "CREDIT_DEBIT", "banktransfer": "BANK_TRANSFER", "checkmo": "CHECK"}
	return p
}

// builder is a Builder over this business sharing the simulator's directory.
func (s *simSage) builder(p policy.Policy) Builder {
	return Builder{TenantID: "acme", Policy: p, BaseCurrency: "GBP", Dir: s.dir}
}

func (s *simSage) raw(method, path string, body []byte, contentType string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, bytes.NewReader(body))
	if s.token != "" {
		req.Header.Set("Authorization", "Bearer "+s.token)
		req.Header.Set("X-Business", s.business)
	}
	req.Header.Set("Accept", "application/json")
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	rec := httptest.NewRecorder()
	s.h.ServeHTTP(rec, req)
	return rec
}

// get GETs a /v3.1 path into out and returns the status.
func (s *simSage) get(path string, out any) int {
	rec := s.raw(http.MethodGet, "/v3.1"+path, nil, "")
	if rec.Code == http.StatusOK && out != nil {
		if err := json.Unmarshal(rec.Body.Bytes(), out); err != nil {
			s.t.Fatalf("GET %s: %v", path, err)
		}
	}
	return rec.Code
}

func (s *simSage) list(path string, out any) {
	var l struct {
		Items json.RawMessage `json:"$items"`
	}
	if st := s.get(path, &l); st != http.StatusOK {
		s.t.Fatalf("GET %s: %d", path, st)
	}
	if err := json.Unmarshal(l.Items, out); err != nil {
		s.t.Fatal(err)
	}
}

// opError is a Sage refusal of one operation.
type opError struct {
	status int
	body   string
}

func (e *opError) Error() string { return fmt.Sprintf("HTTP %d %s", e.status, e.body) }

// exec runs the write through libs/sagewrite, the writer's own interpreter; it
// returns the Sage id of each operation by key, or the first refusal (an
// *opError inside a *sagewrite.OpError). A write the interpreter refuses as
// invalid is a mapper bug and fails the test. edit, when set, may change each
// body before it is sent (naive variants in quirk tests).
func (s *simSage) exec(w *ledgerv1.SageWrite, edit func(op *ledgerv1.SageOperation, body map[string]any)) (map[string]string, error) {
	s.t.Helper()
	ids, err := sagewrite.Run(s.t.Context(), w, simExecutor{s: s, edit: edit})
	var invalid *sagewrite.InvalidError
	if errors.As(err, &invalid) {
		s.t.Fatal(err)
	}
	return ids, err
}

// simExecutor is the sagewrite.Executor of simSage: its xref map plays
// entity_xref, and creates POST straight to the simulator's handler.
type simExecutor struct {
	s    *simSage
	edit func(op *ledgerv1.SageOperation, body map[string]any)
}

// xrefKey is the entity_xref key of op: kind, Magento key and currency.
func xrefKey(op *ledgerv1.SageOperation) string {
	return op.XrefKind + "|" + op.XrefKey + "|" + op.Currency
}

func (e simExecutor) Existing(_ context.Context, op *ledgerv1.SageOperation) (string, bool, error) {
	if op.XrefKind == "" {
		return "", false, nil
	}
	id, ok := e.s.xref[xrefKey(op)]
	return id, ok, nil
}

func (e simExecutor) Create(_ context.Context, op *ledgerv1.SageOperation, req sagewrite.Request) (string, error) {
	if e.edit != nil {
		e.edit(op, req.Fields)
	}
	body, err := req.JSON()
	if err != nil {
		return "", err
	}
	raw, _ := json.Marshal(map[string]json.RawMessage{req.Resource.RootKey: body})
	rec := e.s.raw(http.MethodPost, "/v3.1/"+req.Resource.Collection, raw, "application/json")
	if rec.Code != http.StatusCreated && rec.Code != http.StatusOK {
		return "", &opError{status: rec.Code, body: rec.Body.String()}
	}
	var doc struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(rec.Body.Bytes(), &doc)
	if op.XrefKind != "" {
		e.s.xref[xrefKey(op)] = doc.ID
	}
	if op.Resource == ledgerv1.SageResource_SAGE_RESOURCE_CONTACT {
		e.s.dir.AddContact(op.XrefKey, op.Currency)
	}
	return doc.ID, nil
}

// Outstanding GETs the document's outstanding_amount from the simulator.
func (e simExecutor) Outstanding(_ context.Context, res sagewrite.Resource, id string) (money.Amount, error) {
	return e.s.doc(res.Collection, id).OutstandingAmount, nil
}

// sageDoc is the part of a Sage sales document or payment the tests check.
type sageDoc struct {
	ID                      string       `json:"id"`
	TotalAmount             money.Amount `json:"total_amount"`
	OutstandingAmount       money.Amount `json:"outstanding_amount"`
	BaseCurrencyTotalAmount money.Amount `json:"base_currency_total_amount"`
	ExchangeRate            string       `json:"exchange_rate"`
	Currency                struct {
		ID string `json:"id"`
	} `json:"currency"`
	Contact struct {
		ID string `json:"id"`
	} `json:"contact"`
	Status struct {
		ID string `json:"id"`
	} `json:"status"`
	DeliveryAddress *struct {
		AddressLine1 string `json:"address_line_1"`
		City         string `json:"city"`
	} `json:"delivery_address"`
	InvoiceLines []struct {
		Description string `json:"description"`
	} `json:"invoice_lines"`
}

func (s *simSage) doc(collection, id string) sageDoc {
	var d sageDoc
	if st := s.get("/"+collection+"/"+id, &d); st != http.StatusOK {
		s.t.Fatalf("GET %s/%s: %d", collection, id, st)
	}
	return d
}
