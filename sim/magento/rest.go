package magentosim

import (
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/ledgersync/ledger/libs/magento"
)

// Magento REST error messages (wire §7.2).
const (
	msgUnauthorized     = "The consumer isn't authorized to access %resources."
	aclResource         = "Byte8_Client::byte8_webapi"
	msgNoRoute          = "Request does not match any route."
	msgEntityNotFound   = "The entity that was requested doesn't exist. Verify the entity and try again."
	msgProductNotFound  = "The product that was requested doesn't exist. Verify the product and try again."
	msgCustomerNotFound = "No such entity with %fieldName = %fieldValue"
	msgIDNeeded         = "An ID is needed. Set the ID and try again."
	msgRequired         = "\"%fieldName\" is required. Enter and try again."
	msgAggregate        = "One or more input exceptions have occurred."
	msgDecoding         = "Decoding error."
)

// restError is Magento's REST error envelope.
type restError struct {
	Message    string      `json:"message"`
	Errors     []restError `json:"errors,omitempty"`
	Parameters any         `json:"parameters,omitempty"`
}

// Handler serves the Magento REST surface under /rest/V1/byte8/… and
// /rest/<store_code>/V1/byte8/…, plus the simulator's own /__sim/ routes.
func (s *Shop) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/rest/", s.serveREST)
	mux.Handle("/__sim/", s.simHandler())
	return mux
}

// writeJSON renders v the way Magento's REST JSON renderer does: PHP json_encode
// with default flags, so "/" is "\/" and non-ASCII is \uXXXX.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := marshalNoHTML(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"message":"Internal Error. Details are available in Magento log file. Report ID: webapi-sim"}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(phpEscape(b, true))
}

func writeErr(w http.ResponseWriter, status int, msg string, params any) {
	writeJSON(w, status, restError{Message: msg, Parameters: params})
}

func writeUnauthorized(w http.ResponseWriter) {
	writeErr(w, http.StatusUnauthorized, msgUnauthorized, map[string]string{"resources": aclResource})
}

func reportID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return "webapi-" + hex.EncodeToString(b[:])[:13]
}

var storeCodePattern = regexp.MustCompile(`^[a-z0-9_]+$`)

// serveREST routes /rest/[<store>/]V1/… like Magento's webapi router: an unknown
// route is 404, a known one is authorised before its input is read.
func (s *Shop) serveREST(w http.ResponseWriter, r *http.Request) {
	if s.Down() {
		writeErr(w, http.StatusServiceUnavailable,
			"Internal Error. Details are available in Magento log file. Report ID: "+reportID(), nil)
		return
	}
	segs := strings.Split(strings.Trim(strings.TrimPrefix(r.URL.Path, "/rest/"), "/"), "/")
	if len(segs) >= 2 && segs[0] != "V1" && segs[1] == "V1" && storeCodePattern.MatchString(segs[0]) {
		segs = segs[1:]
	}
	if len(segs) < 2 || segs[0] != "V1" {
		writeErr(w, http.StatusNotFound, msgNoRoute, nil)
		return
	}
	route := segs[1:]
	if route[0] != "byte8" {
		// Core routes exist but the synthetic integration user may only use the
		// Byte8 ACL resource.
		writeUnauthorized(w)
		return
	}
	route = route[1:]
	get, post := r.Method == http.MethodGet, r.Method == http.MethodPost
	switch {
	case post && len(route) == 2 && route[0] == "setup" && route[1] == "pair":
		s.servePair(w, r)
		return
	case get && len(route) == 1 && (route[0] == "ping" || route[0] == "payment-methods"):
	case get && len(route) == 2 && isEntityRoute(route[0]):
	case post && len(route) == 1 && route[0] == "sync-state":
	default:
		writeErr(w, http.StatusNotFound, msgNoRoute, nil)
		return
	}
	if reason := s.authorize(r); reason != "" {
		s.log.Info("Byte8 JWT rejected", "reason", reason, "path", r.URL.Path)
		writeUnauthorized(w)
		return
	}
	switch route[0] {
	case "ping":
		s.mu.Lock()
		tenant := s.tenantID
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, []any{true, tenant, s.cfg.Now().UTC().Format("2006-01-02T15:04:05+00:00")})
	case "payment-methods":
		writeJSON(w, http.StatusOK, paymentMethods)
	case "sync-state":
		s.serveSyncState(w, r)
	default:
		s.serveEntity(w, route[0], route[1])
	}
}

func isEntityRoute(name string) bool {
	switch name {
	case "invoice", "customer", "creditmemo", "payment", "product":
		return true
	}
	return false
}

func label(s string) *string { return &s }

// paymentMethods is a typical installation: inactive methods are listed too.
var paymentMethods = []magento.PaymentMethod{
	{Code: "free", Label: label("No Payment Information Required"), IsActive: true},
	{Code: "checkmo", Label: label("Check / Money order"), IsActive: true},
	{Code: "banktransfer", Label: label("Bank Transfer Payment"), IsActive: true},
	{Code: "cashondelivery", Label: label("Cash On Delivery"), IsActive: false},
	{Code: "purchaseorder", Label: label("Purchase Order"), IsActive: true},
	{Code: "stripe_payments", Label: label("Pay by Card"), IsActive: true},
	{Code: "paypal_express", Label: label("PayPal Express Checkout"), IsActive: true},
	{Code: "substitution", Label: nil, IsActive: false},
}

var intPattern = regexp.MustCompile(`^-?[0-9]+$`)

func (s *Shop) serveEntity(w http.ResponseWriter, kind, rawID string) {
	if !intPattern.MatchString(rawID) {
		writeErr(w, http.StatusBadRequest, fmt.Sprintf("Invalid type for value: %q. Expected Type: \"int\".", rawID), nil)
		return
	}
	id, err := strconv.ParseInt(rawID, 10, 64)
	if err != nil {
		writeErr(w, http.StatusBadRequest, fmt.Sprintf("Invalid type for value: %q. Expected Type: \"int\".", rawID), nil)
		return
	}
	salesRepo := kind == "invoice" || kind == "creditmemo" || kind == "payment"
	if salesRepo && id == 0 {
		writeErr(w, http.StatusBadRequest, msgIDNeeded, nil)
		return
	}
	switch kind {
	case "invoice":
		if inv, ok := s.Invoice(id); ok {
			writeJSON(w, http.StatusOK, inv)
			return
		}
		writeErr(w, http.StatusNotFound, msgEntityNotFound, nil)
	case "creditmemo":
		if cm, ok := s.CreditMemoByID(id); ok {
			writeJSON(w, http.StatusOK, cm)
			return
		}
		writeErr(w, http.StatusNotFound, msgEntityNotFound, nil)
	case "payment":
		p, ok, hasPayment := s.Payment(id)
		switch {
		case !ok:
			writeErr(w, http.StatusNotFound, msgEntityNotFound, nil)
		case !hasPayment:
			writeErr(w, http.StatusNotFound, "Invoice %1 has no associated order payment.", []any{id})
		default:
			writeJSON(w, http.StatusOK, p)
		}
	case "customer":
		if c, ok := s.Customer(id); ok {
			writeJSON(w, http.StatusOK, c)
			return
		}
		writeErr(w, http.StatusNotFound, msgCustomerNotFound, map[string]any{"fieldName": "customerId", "fieldValue": id})
	case "product":
		if p, ok := s.Product(id); ok {
			writeJSON(w, http.StatusOK, p)
			return
		}
		writeErr(w, http.StatusNotFound, msgProductNotFound, nil)
	}
}

// authorize is JwtUserContext + Verifier (wire §3.5). It returns "" when the
// request is authorised, otherwise the reason, which only goes to the log.
func (s *Shop) authorize(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) < 7 || !strings.EqualFold(h[:7], "Bearer ") {
		return "no Bearer authorization header"
	}
	raw := strings.TrimSpace(h[7:])
	if !routingPeek(raw) {
		return "not a byte8-ledger → magento token (routing peek)"
	}
	tok, err := magento.Parse(raw)
	if err != nil {
		return err.Error()
	}
	now := s.cfg.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.connectedLocked() {
		return "module not connected"
	}
	if err := magento.VerifyInbound(tok, s.apiKey, s.tenantID, now); err != nil {
		return err.Error()
	}
	// Expired entries are swept at most once a second: sweeping on every
	// request would cost O(entries) per call (Magento's cache expires them by TTL).
	if now.Sub(s.jtiSweptAt) >= time.Second {
		for k, exp := range s.jtiSeen {
			if !exp.After(now) {
				delete(s.jtiSeen, k)
			}
		}
		s.jtiSweptAt = now
	}
	sum := sha1.Sum([]byte(tok.Claims.Jti))
	key := "byte8_jti:" + hex.EncodeToString(sum[:])
	if _, seen := s.jtiSeen[key]; seen {
		return "jti replayed"
	}
	ttl := max(int64(1), tok.Claims.Exp-now.Unix())
	s.jtiSeen[key] = now.Add(time.Duration(ttl) * time.Second)
	return ""
}

// routingPeek is the unverified check that sends a request to the Byte8 verifier:
// three segments and a payload whose iss and aud are the strings byte8-ledger and
// magento.
func routingPeek(raw string) bool {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return false
	}
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return false
	}
	var c map[string]any
	if json.Unmarshal(b, &c) != nil {
		return false
	}
	iss, _ := c["iss"].(string)
	aud, _ := c["aud"].(string)
	return iss == magento.IssuerLedger && aud == magento.AudienceMagento
}

// inputError is a 400 the framework or the service raised while reading a body.
type inputError struct {
	status int
	body   restError
}

// readBody is Magento's REST request deserialisation: Content-Type must be JSON
// with a UTF-8 charset, and the body must decode. A non-object top level reads as
// no keys at all.
func readBody(r *http.Request) (map[string]json.RawMessage, *inputError) {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return nil, &inputError{http.StatusBadRequest, restError{Message: "Content-Type header is empty."}}
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
		return nil, &inputError{http.StatusBadRequest, restError{Message: "Server cannot understand Content-Type HTTP header media type %1", Parameters: []any{ct}}}
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return nil, &inputError{http.StatusBadRequest, restError{Message: "UTF-8 is the only supported charset."}}
	}
	raw, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
	if err != nil {
		return nil, &inputError{http.StatusBadRequest, restError{Message: msgDecoding}}
	}
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return nil, &inputError{http.StatusBadRequest, restError{Message: msgDecoding}}
	}
	m := map[string]json.RawMessage{}
	if _, isObject := v.(map[string]any); isObject {
		_ = json.Unmarshal(raw, &m)
	}
	return m, nil
}

// param is one service parameter: its camelCase name (used in framework errors)
// and its snake_case alias.
type param struct{ camel, snake string }

// lookup returns the parameter's value when sent and not null (camelCase wins).
func lookup(m map[string]json.RawMessage, p param) (json.RawMessage, bool) {
	for _, k := range []string{p.camel, p.snake} {
		if v, ok := m[k]; ok && strings.TrimSpace(string(v)) != "null" {
			return v, true
		}
	}
	return nil, false
}

// missing builds the framework's required-field error: one missing parameter is
// reported directly, several are aggregated (Magento's AbstractAggregateException).
func missing(m map[string]json.RawMessage, required []param) *inputError {
	var errs []restError
	for _, p := range required {
		if _, ok := lookup(m, p); !ok {
			errs = append(errs, restError{Message: msgRequired, Parameters: map[string]string{"fieldName": p.camel}})
		}
	}
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return &inputError{http.StatusBadRequest, errs[0]}
	}
	return &inputError{http.StatusBadRequest, restError{Message: msgAggregate, Errors: errs}}
}

func typeError(raw json.RawMessage, typ string) *inputError {
	v := strings.TrimSpace(string(raw))
	var s string
	if json.Unmarshal(raw, &s) == nil {
		v = s
	} else if strings.HasPrefix(v, "{") || strings.HasPrefix(v, "[") {
		v = "array"
	}
	return &inputError{http.StatusBadRequest, restError{Message: fmt.Sprintf("Invalid type for value: %q. Expected Type: %q.", v, typ)}}
}

// asString converts a scalar the way PHP's (string) cast does.
func asString(raw json.RawMessage) (string, *inputError) {
	var v any
	_ = json.Unmarshal(raw, &v)
	switch t := v.(type) {
	case string:
		return t, nil
	case bool:
		if t {
			return "1", nil
		}
		return "", nil
	case float64:
		return strings.TrimSpace(string(raw)), nil
	}
	return "", typeError(raw, "string")
}

func asInt(raw json.RawMessage) (int64, *inputError) {
	var v any
	_ = json.Unmarshal(raw, &v)
	var lit string
	switch t := v.(type) {
	case string:
		lit = strings.TrimSpace(t)
	case float64:
		lit = strings.TrimSpace(string(raw))
	default:
		return 0, typeError(raw, "int")
	}
	if !intPattern.MatchString(lit) {
		return 0, typeError(raw, "int")
	}
	n, err := strconv.ParseInt(lit, 10, 64)
	if err != nil {
		return 0, typeError(raw, "int")
	}
	return n, nil
}

func writeInputError(w http.ResponseWriter, e *inputError) { writeJSON(w, e.status, e.body) }

var (
	pPairingCode   = param{"pairingCode", "pairing_code"}
	pTenantID      = param{"tenantId", "tenant_id"}
	pAPIKey        = param{"byte8ApiKey", "byte8_api_key"}
	pLedgerBaseURL = param{"ledgerBaseUrl", "ledger_base_url"}
)

func (s *Shop) servePair(w http.ResponseWriter, r *http.Request) {
	m, ierr := readBody(r)
	if ierr != nil {
		writeInputError(w, ierr)
		return
	}
	if ierr := missing(m, []param{pPairingCode, pTenantID, pAPIKey, pLedgerBaseURL}); ierr != nil {
		writeInputError(w, ierr)
		return
	}
	var vals [4]string
	for i, p := range []param{pPairingCode, pTenantID, pAPIKey, pLedgerBaseURL} {
		raw, _ := lookup(m, p)
		v, ierr := asString(raw)
		if ierr != nil {
			writeInputError(w, ierr)
			return
		}
		vals[i] = v
	}
	err := s.Pair(magento.PairRequest{PairingCode: vals[0], TenantID: vals[1], APIKey: vals[2], LedgerBaseURL: vals[3]})
	var pe *PairError
	if errors.As(err, &pe) {
		writeErr(w, pe.Status, pe.Message, nil)
		return
	}
	writeJSON(w, http.StatusOK, []any{})
}
