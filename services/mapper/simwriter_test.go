package mapper

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/ledgersync/ledger/libs/money"
	"github.com/ledgersync/ledger/libs/policy"
	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
	sagesim "github.com/ledgersync/ledger/sim/sage"
)

// simSage plays SageWrites against an in-process Sage simulator the way the
// sage-writer does (entity_xref first, idempotency_id, root keys, bindings —
// including the nested "allocated_artefacts.<i>.artefact_id" paths the
// mapper asks for), calling its http.Handler directly for speed. It is a
// test stand-in for the writer, used where only the Sage side matters.
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

var simResources = map[ledgerv1.SageResource][2]string{
	ledgerv1.SageResource_SAGE_RESOURCE_CONTACT:            {"contacts", "contact"},
	ledgerv1.SageResource_SAGE_RESOURCE_SALES_INVOICE:      {"sales_invoices", "sales_invoice"},
	ledgerv1.SageResource_SAGE_RESOURCE_SALES_CREDIT_NOTE:  {"sales_credit_notes", "sales_credit_note"},
	ledgerv1.SageResource_SAGE_RESOURCE_CONTACT_PAYMENT:    {"contact_payments", "contact_payment"},
	ledgerv1.SageResource_SAGE_RESOURCE_CONTACT_ALLOCATION: {"contact_allocations", "contact_allocation"},
	ledgerv1.SageResource_SAGE_RESOURCE_PRODUCT:            {"products", "product"},
	ledgerv1.SageResource_SAGE_RESOURCE_SERVICE:            {"services", "service"},
}

// opError is a Sage refusal of one operation.
type opError struct {
	op     string
	status int
	body   string
}

func (e *opError) Error() string {
	return fmt.Sprintf("operation %s: HTTP %d %s", e.op, e.status, e.body)
}

// exec runs the write's operations in order; it returns the Sage id of each
// operation by key, or the first refusal. edit, when set, may change each
// body before it is sent (naive variants in quirk tests).
func (s *simSage) exec(w *ledgerv1.SageWrite, edit func(op *ledgerv1.SageOperation, body map[string]any)) (map[string]string, error) {
	ids := map[string]string{}
	for _, op := range w.Operations {
		xk := op.XrefKind + "|" + op.XrefKey + "|" + op.Currency
		if id, ok := s.xref[xk]; ok && op.XrefKind != "" {
			ids[op.Key] = id
			continue
		}
		var body map[string]any
		dec := json.NewDecoder(bytes.NewReader(op.Body))
		dec.UseNumber()
		if err := dec.Decode(&body); err != nil {
			s.t.Fatal(err)
		}
		for _, b := range op.Bindings {
			id, ok := ids[b.FromKey]
			if !ok {
				s.t.Fatalf("operation %s binds %s to unknown %s", op.Key, b.Field, b.FromKey)
			}
			if err := setPath(body, b.Field, id); err != nil {
				s.t.Fatalf("operation %s: %v", op.Key, err)
			}
		}
		body["idempotency_id"] = op.IdempotencyId
		if edit != nil {
			edit(op, body)
		}
		res := simResources[op.Resource]
		raw, _ := json.Marshal(map[string]any{res[1]: body})
		rec := s.raw(http.MethodPost, "/v3.1/"+res[0], raw, "application/json")
		if rec.Code != http.StatusCreated && rec.Code != http.StatusOK {
			return ids, &opError{op: op.Key, status: rec.Code, body: rec.Body.String()}
		}
		var doc struct {
			ID string `json:"id"`
		}
		_ = json.Unmarshal(rec.Body.Bytes(), &doc)
		ids[op.Key] = doc.ID
		if op.XrefKind != "" {
			s.xref[xk] = doc.ID
		}
		if op.Resource == ledgerv1.SageResource_SAGE_RESOURCE_CONTACT {
			s.dir.AddContact(op.XrefKey, op.Currency)
		}
	}
	return ids, nil
}

// setPath sets a dotted field path ("contact_id",
// "allocated_artefacts.0.artefact_id") of a decoded JSON object.
func setPath(obj map[string]any, path string, v string) error {
	parts := strings.Split(path, ".")
	var cur any = obj
	for i, p := range parts {
		last := i == len(parts)-1
		switch c := cur.(type) {
		case map[string]any:
			if last {
				c[p] = v
				return nil
			}
			cur = c[p]
		case []any:
			n, err := strconv.Atoi(p)
			if err != nil || n < 0 || n >= len(c) {
				return fmt.Errorf("%s: no element %s", path, p)
			}
			if last {
				c[n] = v
				return nil
			}
			cur = c[n]
		default:
			return fmt.Errorf("%s: %s is not an object or array", path, strings.Join(parts[:i], "."))
		}
	}
	return nil
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
