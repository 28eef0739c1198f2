package sagewriter

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"
	"unicode"

	"github.com/ledgersync/ledger/libs/backoff"
	"github.com/ledgersync/ledger/libs/sage"
	"github.com/ledgersync/ledger/libs/sage/budget"
	"github.com/ledgersync/ledger/libs/sage/lifecycle"
	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
)

// Error classes: the coarse cause a failed run and its dead letter carry, which
// operators filter dead letters by. The mapper uses the same names.
const (
	ClassAuth        = "auth"
	ClassNotFound    = "not_found"
	ClassValidation  = "validation"
	ClassRateLimited = "rate_limited"
	ClassProvider    = "provider"
	ClassHTTP        = "http"
	ClassDatabase    = "database"
	ClassSerde       = "serde"
	ClassInternal    = "internal"
)

// Stable error codes the writer produces itself. Codes of Sage validation
// errors are the snake_case of Sage's $dataCode (RecordInvalid → record_invalid).
const (
	CodeContactReferenceReserved = "contact_reference_reserved"
	CodeAccessDenied             = "sage_access_denied"
	CodeForbidden                = "sage_forbidden"
	CodeTokenRevoked             = "sage_token_revoked"
	CodeNotConnected             = "sage_not_connected"
	CodeBindingNotActive         = "sage_binding_not_active"
	CodeUnauthorized             = "sage_unauthorized"
	CodeBusinessChanged          = "sage_business_changed"
	CodeRateLimited              = "sage_rate_limited"
	CodeServerError              = "sage_server_error"
	CodeTransport                = "sage_transport_error"
	CodeTokenEndpoint            = "sage_token_endpoint_error"
	CodeConflict                 = "sage_conflict"
	CodeDuplicateReference       = "sage_duplicate_reference"
	CodeUnexpectedAnswer         = "sage_unexpected_answer"
	CodeValidation               = "sage_validation_failed"
	CodeNotFound                 = "sage_not_found"
	CodeRequestRejected          = "sage_request_rejected"
	CodeUndecodable              = "undecodable_message"
	CodeInvalidWrite             = "invalid_write"
	CodeDatabase                 = "database_unavailable"
	CodeInternal                 = "internal_error"
	CodeRunNotFound              = "run_not_found"
)

// Verdict is what a classified failure means for the write.
type Verdict int

// Verdicts.
const (
	// Retry: transient; the write is delivered again after a back-off.
	Retry Verdict = iota + 1
	// Pause: the binding cannot write until an operator acts (tokens revoked,
	// binding not active, lead business changed); the write is held
	// (bus.Outcome.Hold) and tried again every PauseDelay, never dead-lettered.
	Pause
	// DeadLetter: retrying cannot help; the run fails and the write goes to
	// the DLQ for replay after the cause is fixed.
	DeadLetter
)

// String names the verdict in logs.
func (v Verdict) String() string {
	switch v {
	case Retry:
		return "retry"
	case Pause:
		return "pause"
	case DeadLetter:
		return "dead_letter"
	}
	return "unknown"
}

// Decision is the classification of one failure: what happens next, and the
// class, code and message operators see on the run and the dead letter.
type Decision struct {
	Verdict    Verdict
	Class      string
	Code       string
	Message    string
	Source     string // primary Sage $source, when there is one
	HTTPStatus int
	RequestID  string
	// RetryAfter is Sage's Retry-After, when it sent one.
	RetryAfter time.Duration
	// Ambiguous: a create may have happened (5xx or transport failure after
	// the request left); resolve by lookup before creating again.
	Ambiguous bool
	// RevokeBinding: mark the binding token_revoked.
	RevokeBinding bool
	// BackPressure: Sage is throttling (429) or the rate budget refused the
	// call before sending it; the write is held (no delivery is spent towards
	// a dead letter) and the business slows down.
	BackPressure bool
}

// OpError is a failure of one operation of a write; Classify reads the
// operation for context (its resource and reference).
type OpError struct {
	TenantID string
	Business string // the Sage business written to
	Op       *ledgerv1.SageOperation
	Err      error
}

// Error names the operation and the cause.
func (e *OpError) Error() string {
	return fmt.Sprintf("operation %q (%s %s): %v", e.Op.GetKey(), e.Op.GetXrefKind(), e.Op.GetXrefKey(), e.Err)
}

// Unwrap returns the cause.
func (e *OpError) Unwrap() error { return e.Err }

// Sentinels of the writer's own failure causes.
var (
	errBindingNotActive = errors.New("the tenant's Sage binding is not active")
	errNoTokens         = lifecycle.ErrNoTokens
	errBusinessChanged  = errors.New("Sage answered for another business than the one requested: the lead business changed")
	errMultipleMatches  = errors.New("Sage holds more than one document with this reference")
	errUnexpectedAnswer = errors.New("Sage answered 2xx without a document id")
)

// invalidWrite is a SageWrite that can never be executed as sent (a mapper bug).
type invalidWrite struct{ msg string }

func (e *invalidWrite) Error() string { return e.msg }

// dbError is a failure of the store.
type dbError struct {
	what string
	err  error
}

func (e *dbError) Error() string { return e.what + ": " + e.err.Error() }
func (e *dbError) Unwrap() error { return e.err }

func storeErr(what string, err error) error {
	if err == nil {
		return nil
	}
	return &dbError{what: what, err: err}
}

// Classify turns any failure of a write into a Decision. It is the one place
// that maps Sage's answers, token errors and the writer's own failures to error
// classes, stable codes and what happens next; README.md has the table.
func Classify(err error) Decision {
	var opErr *OpError
	errors.As(err, &opErr)
	var apiErr *sage.APIError
	var rf *lifecycle.RefreshError
	var iw *invalidWrite
	var db *dbError
	var lse *lifecycle.StoreError
	var bp *budget.BackPressure
	switch {
	case err == nil:
		return Decision{}
	case errors.Is(err, sage.ErrInvalidGrant):
		return Decision{Verdict: Pause, Class: ClassAuth, Code: CodeTokenRevoked, RevokeBinding: true,
			Message: "Sage refused the refresh token (expired, revoked or already used): reconnect Sage for this tenant; paused writes resume once it is active again"}
	case errors.Is(err, errNoTokens):
		return Decision{Verdict: Pause, Class: ClassAuth, Code: CodeNotConnected, Message: errNoTokens.Error()}
	case errors.Is(err, errBindingNotActive):
		return Decision{Verdict: Pause, Class: ClassAuth, Code: CodeBindingNotActive,
			Message: "the tenant's Sage binding is not active (not connected, or its tokens were revoked): reconnect Sage; paused writes resume by themselves"}
	case errors.Is(err, errBusinessChanged):
		return Decision{Verdict: Pause, Class: ClassAuth, Code: CodeBusinessChanged,
			Message: "Sage answered for another business than the binding's: the user's lead business changed or access to the business was lost; reconnect Sage and choose the business"}
	case errors.As(err, &bp):
		// Refused by the rate budget before anything was sent.
		return Decision{Verdict: Retry, Class: ClassRateLimited, Code: CodeRateLimited, BackPressure: true,
			RetryAfter: bp.Wait, Message: "Sage rate budget: " + bp.Reason + ", waiting " + bp.Wait.Round(time.Millisecond).String()}
	case errors.As(err, &rf):
		// The token endpoint failed for another reason than invalid_grant
		// (network, 5xx, invalid_client): transient from here.
		return Decision{Verdict: Retry, Class: ClassHTTP, Code: CodeTokenEndpoint, Message: err.Error()}
	case errors.As(err, &apiErr):
		return classifyAPI(apiErr, opErr)
	case errors.Is(err, errMultipleMatches):
		return Decision{Verdict: DeadLetter, Class: ClassProvider, Code: CodeDuplicateReference,
			Message: err.Error() + ": link the right one with `ledgerctl xref set` and replay"}
	case errors.Is(err, errUnexpectedAnswer):
		return Decision{Verdict: Retry, Class: ClassProvider, Code: CodeUnexpectedAnswer, Message: err.Error(), Ambiguous: true}
	case errors.Is(err, sage.ErrTransport), errors.Is(err, context.DeadlineExceeded):
		return Decision{Verdict: Retry, Class: ClassHTTP, Code: CodeTransport, Message: err.Error(), Ambiguous: true}
	case errors.As(err, &iw):
		return Decision{Verdict: DeadLetter, Class: ClassSerde, Code: CodeInvalidWrite, Message: err.Error()}
	case errors.As(err, &db), errors.As(err, &lse):
		return Decision{Verdict: Retry, Class: ClassDatabase, Code: CodeDatabase, Message: err.Error()}
	}
	return Decision{Verdict: Retry, Class: ClassInternal, Code: CodeInternal, Message: err.Error()}
}

func classifyAPI(e *sage.APIError, op *OpError) Decision {
	p := e.Primary()
	d := Decision{HTTPStatus: e.Status, RequestID: e.RequestID, Source: p.Source}
	cause := p.Message
	if p.Source != "" {
		cause = p.Source + ": " + p.Message
	}
	if cause == "" {
		cause = fmt.Sprintf("HTTP %d: %s", e.Status, strings.TrimSpace(redact(e.Body)))
	}
	switch {
	case softDeleted(e):
		d.Verdict, d.Class, d.Code = DeadLetter, ClassValidation, CodeContactReferenceReserved
		d.Message = reservedMessage(op, e.Method == http.MethodPut)
	case e.Status == http.StatusBadRequest || e.Status == http.StatusUnprocessableEntity:
		d.Verdict, d.Class, d.Code, d.Message = DeadLetter, ClassValidation, snakeCode(p.DataCode, CodeValidation), cause
	case e.Status == http.StatusUnauthorized:
		// Reached only after the forced refresh and the retried call failed too.
		d.Verdict, d.Class, d.Code = Pause, ClassAuth, CodeUnauthorized
		d.Message = "Sage rejected a freshly refreshed access token (" + cause + "): check the Sage subscription and reconnect Sage"
	case e.Status == http.StatusForbidden && p.DataCode == "MultiUserAccessDenied":
		d.Verdict, d.Class, d.Code = DeadLetter, ClassAuth, CodeAccessDenied
		d.Message = "the Sage user lacks the role for this area (" + area(e.Path) + "); grant it in Sage and replay"
	case e.Status == http.StatusForbidden:
		// Access to the business itself was withdrawn: binding drift, like a 401.
		d.Verdict, d.Class, d.Code = Pause, ClassAuth, CodeForbidden
		d.Message = "Sage refused access to the business (" + cause + "): reconnect Sage with a user who can access it"
	case e.Status == http.StatusNotFound && e.Method == http.MethodPut && op != nil:
		// The linked document is gone (deleted in Sage).
		d.Verdict, d.Class, d.Code = DeadLetter, ClassNotFound, snakeCode(p.DataCode, CodeNotFound)
		d.Message = goneMessage(op, cause)
	case e.Status == http.StatusNotFound:
		d.Verdict, d.Class, d.Code, d.Message = DeadLetter, ClassNotFound, snakeCode(p.DataCode, CodeNotFound), cause
	case e.Status == http.StatusTooManyRequests:
		d.Verdict, d.Class, d.Code, d.BackPressure = Retry, ClassRateLimited, CodeRateLimited, true
		d.RetryAfter = budget.ParseRetryAfter(e.RetryAfter, time.Now())
		d.Message = "Sage is throttling this business: " + cause
	case e.Status == http.StatusConflict:
		// Undocumented by Sage; most likely a clash of parallel writes.
		d.Verdict, d.Class, d.Code, d.Message = Retry, ClassProvider, CodeConflict, cause
		d.Ambiguous = e.Method == http.MethodPost || e.Method == http.MethodPut
	case e.Status >= 500:
		d.Verdict, d.Class, d.Code, d.Message = Retry, ClassProvider, CodeServerError, cause
		d.Ambiguous = e.Method == http.MethodPost || e.Method == http.MethodPut
	default: // 405, 415 and other 4xx: the request itself is wrong (our bug)
		d.Verdict, d.Class, d.Code, d.Message = DeadLetter, ClassInternal, snakeCode(p.DataCode, CodeRequestRejected), cause
	}
	return d
}

// softDeleted recognises the soft-delete quirk: a contact POST rejected because
// its reference is taken (a deleted contact keeps it), or a PUT on a contact
// Sage no longer lets anyone update.
func softDeleted(e *sage.APIError) bool {
	path := e.Path
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	switch {
	case e.Method == http.MethodPost && path == "/contacts" &&
		(e.Status == http.StatusUnprocessableEntity || e.Status == http.StatusBadRequest):
		for _, it := range e.Items {
			m := strings.ToLower(it.Message)
			if (it.Source == "reference" || strings.Contains(m, "reference")) &&
				(strings.Contains(m, "taken") || strings.Contains(m, "reserved") || strings.Contains(m, "in use") || strings.Contains(m, "already")) {
				return true
			}
		}
	case e.Method == http.MethodPut && strings.HasPrefix(path, "/contacts/") &&
		(e.Status == http.StatusNotFound || e.Status == http.StatusUnprocessableEntity):
		return true
	}
	return false
}

// reservedMessage says what to do about the soft-delete quirk: after a POST
// whose reference a deleted contact still holds, hard-delete that contact or
// link the customer to a contact re-created by hand; after a PUT on the linked
// contact, which was deleted, link the customer to the contact that replaces
// it. The relink command names every flag it needs: contacts are linked per
// currency, so --currency is one.
func reservedMessage(op *OpError, put bool) string {
	ref, tenant, key, currency := "<reference>", "<tenant>", "<key>", "<currency>"
	if op != nil {
		ref = cmp.Or(op.Op.GetReference(), ref)
		key = cmp.Or(op.Op.GetXrefKey(), key)
		currency = cmp.Or(op.Op.GetCurrency(), currency)
		tenant = cmp.Or(op.TenantID, tenant)
	}
	relink := fmt.Sprintf("`ledgerctl xref set --tenant %s --kind contact --key %s --currency %s --sage-id NEW_ID`",
		tenant, key, currency)
	if put {
		return fmt.Sprintf("the Sage contact linked to %s (%s, reference '%s') was deleted in Sage, and a deleted contact "+
			"can no longer be updated (its reference stays reserved): re-create the contact in Sage (or choose the one "+
			"that replaces it) and relink with %s, then replay", key, currency, ref, relink)
	}
	return fmt.Sprintf("Sage still holds a reserved reference '%s' (a deleted contact keeps its reference): "+
		"hard-delete it in Sage (Settings → Deletion), or re-create the contact by hand and relink with %s, then replay",
		ref, relink)
}

// goneMessage is the 404 of a PUT on a linked document: it was deleted in
// Sage, so it is linked again to the one that replaces it.
func goneMessage(op *OpError, cause string) string {
	kind, key, tenant := cmp.Or(op.Op.GetXrefKind(), "<kind>"), cmp.Or(op.Op.GetXrefKey(), "<key>"), cmp.Or(op.TenantID, "<tenant>")
	flags := fmt.Sprintf("--tenant %s --kind %s --key %s", tenant, kind, key)
	if c := op.Op.GetCurrency(); c != "" {
		flags += " --currency " + c
	}
	return fmt.Sprintf("Sage no longer has the %s linked to Magento %s (%s): it was deleted in Sage; link the one that "+
		"replaces it with `ledgerctl xref set %s --sage-id NEW_ID`, then replay", kind, key, cause, flags)
}

// area names the Sage role a path needs, for the 403 message.
func area(path string) string {
	switch {
	case strings.HasPrefix(path, "/contacts"):
		return "Contacts"
	case strings.HasPrefix(path, "/sales_"), strings.HasPrefix(path, "/contact_"):
		return "Sales"
	case strings.HasPrefix(path, "/products"), strings.HasPrefix(path, "/services"):
		return "Products and Services"
	}
	return "Sales/Contacts"
}

// snakeCode is the stable code of a Sage $dataCode: RecordInvalid →
// record_invalid; def when Sage sent none. Only ASCII letters and digits are
// kept (anything else separates words), at most maxCode characters, so a code
// is safe in a metric label and fits the shop's error_code column; def when
// nothing is left.
func snakeCode(dataCode, def string) string {
	if dataCode == "" {
		return def
	}
	var b strings.Builder
	rs := []rune(dataCode)
	for i, r := range rs {
		switch {
		case r >= 'A' && r <= 'Z':
			prevLower := i > 0 && (isLowerASCII(rs[i-1]) || isDigitASCII(rs[i-1]))
			nextLower := i > 0 && i+1 < len(rs) && rs[i-1] >= 'A' && rs[i-1] <= 'Z' && isLowerASCII(rs[i+1])
			if (prevLower || nextLower) && b.Len() > 0 {
				b.WriteByte('_')
			}
			b.WriteRune(unicode.ToLower(r))
		case isLowerASCII(r) || isDigitASCII(r):
			b.WriteRune(r)
		default:
			if b.Len() > 0 && !strings.HasSuffix(b.String(), "_") {
				b.WriteByte('_')
			}
		}
	}
	code := b.String()
	if len(code) > maxCode {
		code = code[:maxCode]
	}
	if code = strings.Trim(code, "_"); code == "" {
		return def
	}
	return code
}

// maxCode is the longest error code: the width of the shop's error_code
// column (varchar(64)).
const maxCode = 64

func isLowerASCII(r rune) bool { return r >= 'a' && r <= 'z' }
func isDigitASCII(r rune) bool { return r >= '0' && r <= '9' }

// Retry schedule. A transient failure on delivery n (1-based) waits
// base·2^(n−1) capped at cap (defaults 1 s and 5 min: 1s, 2s, 4s, … 256s,
// 300s); a 429 without Retry-After waits 2s·2^(n−1) capped at 60 s (the
// budget's throttle schedule). Both get ±20 % jitter so writes that failed
// together do not return together. A pause waits PauseDelay.
type schedule struct {
	base, limit time.Duration // transient failures
	pause       time.Duration
}

const (
	rateLimitBase = budget.DefaultThrottleBase
	rateLimitCap  = budget.DefaultThrottleCap
)

// delay is how long the write waits before its next delivery.
func (d Decision) delay(delivered uint64, s schedule) time.Duration {
	switch {
	case d.Verdict == Pause:
		return s.pause
	case d.RetryAfter > 0:
		return d.RetryAfter
	case d.BackPressure:
		return backoff.Policy{Base: rateLimitBase, Cap: rateLimitCap, Jitter: 0.2}.Delay(delivered)
	}
	return backoff.Policy{Base: s.base, Cap: s.limit, Jitter: 0.2}.Delay(delivered)
}

// redactRE matches credentials that might appear in a body or error text.
var redactRE = regexp.MustCompile(`(?i)((?:authorization|bearer|access_token|refresh_token|client_secret|password|api[_-]?key)["']?\s*[:=]?\s*["']?(?:bearer\s+)?)[^\s"',}&]+`)

// redact masks Authorization-like values. Sage error bodies carry none; this is
// defence in depth before an envelope is stored or logged.
func redact(s string) string {
	return redactRE.ReplaceAllString(s, "${1}[redacted]")
}
