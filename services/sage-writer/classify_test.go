package sagewriter

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ledgersync/ledger/libs/sage"
	"github.com/ledgersync/ledger/libs/sage/budget"
	"github.com/ledgersync/ledger/libs/sage/lifecycle"
	"github.com/ledgersync/ledger/libs/sagewrite"
	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
)

func apiErr(method, path string, status int, body string) *sage.APIError {
	return &sage.APIError{Method: method, Path: path, Status: status, Body: body, Items: sage.ParseErrors([]byte(body)), RequestID: "req-1"}
}

func TestClassify(t *testing.T) {
	t.Parallel()
	contactOp := &ledgerv1.SageOperation{Key: "contact", Resource: ledgerv1.SageResource_SAGE_RESOURCE_CONTACT,
		XrefKind: "contact", XrefKey: "M42", Currency: "GBP", Reference: "M42"}
	umbrella := `[{"$severity":"error","$dataCode":"RecordInvalid","$message":"This field is required.","$source":"line_items.description"},
		{"$severity":"error","$dataCode":"RecordInvalid","$message":"is not a valid tax rate","$source":"line_items.tax_rate_id"}]`
	cases := []struct {
		name            string
		err             error
		verdict         Verdict
		class, code     string
		msg             string // substring of the message
		ambiguous, back bool
	}{
		{"umbrella entry skipped", apiErr("POST", "/sales_invoices", 422, umbrella), DeadLetter, ClassValidation, "record_invalid",
			"line_items.tax_rate_id: is not a valid tax rate", false, false},
		{"reference reserved", &OpError{TenantID: "acme", Op: contactOp, Err: apiErr("POST", "/contacts", 422,
			`[{"$dataCode":"RecordInvalid","$message":"Reference has already been taken","$source":"reference"}]`)},
			DeadLetter, ClassValidation, CodeContactReferenceReserved,
			"reserved reference 'M42' (a deleted contact keeps its reference): hard-delete it in Sage (Settings → Deletion), or re-create the contact by hand and relink with `ledgerctl xref set --tenant acme --kind contact --key M42 --currency GBP --sage-id NEW_ID`, then replay",
			false, false},
		{"PUT on a deleted contact", apiErr("PUT", "/contacts/abc", 404, `[{"$dataCode":"RecordNotFound","$message":"Couldn't find record.","$source":""}]`),
			DeadLetter, ClassValidation, CodeContactReferenceReserved, "relink with", false, false},
		{"PUT on a deleted contact, with its operation", &OpError{TenantID: "acme", Op: contactOp, Err: apiErr("PUT", "/contacts/abc", 404,
			`[{"$dataCode":"RecordNotFound","$message":"Couldn't find record.","$source":""}]`)},
			DeadLetter, ClassValidation, CodeContactReferenceReserved,
			"the Sage contact linked to M42 (GBP, reference 'M42') was deleted in Sage, and a deleted contact can no longer be updated (its reference stays reserved): re-create the contact in Sage (or choose the one that replaces it) and relink with `ledgerctl xref set --tenant acme --kind contact --key M42 --currency GBP --sage-id NEW_ID`, then replay",
			false, false},
		{"PUT on a deleted product", &OpError{TenantID: "acme", Op: &ledgerv1.SageOperation{Key: "product", XrefKind: "product", XrefKey: "7",
			Resource: ledgerv1.SageResource_SAGE_RESOURCE_PRODUCT}, Err: apiErr("PUT", "/products/p1", 404,
			`[{"$dataCode":"RecordNotFound","$message":"Couldn't find record.","$source":""}]`)},
			DeadLetter, ClassNotFound, "record_not_found",
			"Sage no longer has the product linked to Magento 7 (Couldn't find record.): it was deleted in Sage; link the one that replaces it with `ledgerctl xref set --tenant acme --kind product --key 7 --sage-id NEW_ID`, then replay",
			false, false},
		{"400", apiErr("POST", "/contacts", 400, `[{"$dataCode":"BadRequest","$message":"bad json","$source":""}]`),
			DeadLetter, ClassValidation, "bad_request", "bad json", false, false},
		{"401 after refresh", apiErr("POST", "/contacts", 401, `[{"$dataCode":"AuthorizationFailure","$message":"No active subscription. (MSE)","$source":""}]`),
			Pause, ClassAuth, CodeUnauthorized, "No active subscription", false, false},
		{"403 role", apiErr("POST", "/sales_invoices", 403, `[{"$dataCode":"MultiUserAccessDenied","$message":"The current user is not allowed","$source":""}]`),
			DeadLetter, ClassAuth, CodeAccessDenied, "lacks the role for this area (Sales); grant it in Sage and replay", false, false},
		{"404", apiErr("POST", "/contact_allocations", 404, `[{"$dataCode":"RecordNotFound","$message":"Couldn't find record.","$source":""}]`),
			DeadLetter, ClassNotFound, "record_not_found", "Couldn't find record.", false, false},
		{"429", apiErr("POST", "/contacts", 429, `[{"$dataCode":"TooManyRequests","$message":"slow down","$source":""}]`),
			Retry, ClassRateLimited, CodeRateLimited, "throttling", false, true},
		{"500 on POST", apiErr("POST", "/contacts", 500, `[{"$dataCode":"UnexpectedError","$message":"An unexpected error occurred.","$source":""}]`),
			Retry, ClassProvider, CodeServerError, "unexpected", true, false},
		{"503 on GET", apiErr("GET", "/contacts", 503, `<html>`), Retry, ClassProvider, CodeServerError, "HTTP 503", false, false},
		{"transport", fmt.Errorf("%w: POST /contacts: connection reset", sage.ErrTransport), Retry, ClassHTTP, CodeTransport, "reset", true, false},
		{"invalid_grant", fmt.Errorf("refreshing: %w", &lifecycle.RefreshError{Err: fmt.Errorf("%w (gone)", sage.ErrInvalidGrant)}),
			Pause, ClassAuth, CodeTokenRevoked, "reconnect Sage", false, false},
		{"token endpoint down", fmt.Errorf("refreshing: %w", &lifecycle.RefreshError{Err: errors.New("sage: token endpoint: EOF")}),
			Retry, ClassHTTP, CodeTokenEndpoint, "EOF", false, false},
		{"binding inactive", fmt.Errorf("%w (status %q)", errBindingNotActive, "token_revoked"), Pause, ClassAuth, CodeBindingNotActive, "not active", false, false},
		{"no tokens", errNoTokens, Pause, ClassAuth, CodeNotConnected, "connect Sage", false, false},
		{"lead business changed", &OpError{Op: contactOp, Err: errBusinessChanged}, Pause, ClassAuth, CodeBusinessChanged, "lead business", false, false},
		{"bad write", &invalidWrite{msg: "binds contact_id to nothing"}, DeadLetter, ClassSerde, CodeInvalidWrite, "nothing", false, false},
		{"database", storeErr("reading entity_xref", errors.New("conn refused")), Retry, ClassDatabase, CodeDatabase, "conn refused", false, false},
		{"duplicates", fmt.Errorf("%w: 2 contacts", errMultipleMatches), DeadLetter, ClassProvider, CodeDuplicateReference, "ledgerctl xref set", false, false},
		{"other", errors.New("boom"), Retry, ClassInternal, CodeInternal, "boom", false, false},
	}
	for _, c := range cases {
		d := Classify(c.err)
		if d.Verdict != c.verdict || d.Class != c.class || d.Code != c.code || !strings.Contains(d.Message, c.msg) ||
			d.Ambiguous != c.ambiguous || d.BackPressure != c.back {
			t.Errorf("%s: got %+v", c.name, d)
		}
	}
	if d := Classify(apiErr("POST", "/sales_invoices", 422, umbrella)); d.Source != "line_items.tax_rate_id" || d.HTTPStatus != 422 || d.RequestID != "req-1" {
		t.Errorf("source/status/request id: %+v", d)
	}
	if d := Classify(fmt.Errorf("x: %w", sage.ErrInvalidGrant)); !d.RevokeBinding {
		t.Error("invalid_grant must revoke the binding")
	}
}

func TestDelaySchedule(t *testing.T) {
	t.Parallel()
	within := func(got, want time.Duration) bool {
		return got >= want*8/10 && got <= want*12/10
	}
	sched := schedule{base: time.Second, limit: 5 * time.Minute, pause: time.Hour}
	retry := Decision{Verdict: Retry}
	for n, want := range map[uint64]time.Duration{1: time.Second, 2: 2 * time.Second, 4: 8 * time.Second, 9: 256 * time.Second, 10: 5 * time.Minute, 60: 5 * time.Minute} {
		if got := retry.delay(n, sched); !within(got, want) {
			t.Errorf("retry delivery %d: %s, want about %s", n, got, want)
		}
	}
	limited := Decision{Verdict: Retry, BackPressure: true}
	for n, want := range map[uint64]time.Duration{1: 2 * time.Second, 3: 8 * time.Second, 6: 60 * time.Second, 30: 60 * time.Second} {
		if got := limited.delay(n, sched); !within(got, want) {
			t.Errorf("429 delivery %d: %s, want about %s", n, got, want)
		}
	}
	if got := (Decision{Verdict: Retry, BackPressure: true, RetryAfter: 7 * time.Second}).delay(5, sched); got != 7*time.Second {
		t.Errorf("Retry-After ignored: %s", got)
	}
	if got := (Decision{Verdict: Pause}).delay(3, sched); got != time.Hour {
		t.Errorf("pause %s", got)
	}
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	if got := budget.ParseRetryAfter("30", now); got != 30*time.Second {
		t.Errorf("Retry-After seconds: %s", got)
	}
	if got := budget.ParseRetryAfter(now.Add(90*time.Second).Format(http.TimeFormat), now); got != 90*time.Second {
		t.Errorf("Retry-After date: %s", got)
	}
	if got := budget.ParseRetryAfter("soon", now); got != 0 {
		t.Errorf("Retry-After junk: %s", got)
	}
}

func TestSnakeCodeAndRedact(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"RecordInvalid": "record_invalid", "MultiUserAccessDenied": "multi_user_access_denied",
		"IdempotencyResourceMismatch": "idempotency_resource_mismatch", "HTTPError": "http_error", "": "fallback",
	} {
		if got := snakeCode(in, "fallback"); got != want {
			t.Errorf("snakeCode(%q) = %q, want %q", in, got, want)
		}
	}
	for _, in := range []string{`Authorization: Bearer eyJabc.def`, `{"access_token":"eyJabc"}`, `refresh_token=xyz&a=b`, `client_secret: s3cr3t`} {
		out := redact(in)
		if strings.Contains(out, "eyJabc") || strings.Contains(out, "xyz") || strings.Contains(out, "s3cr3t") || !strings.Contains(out, "[redacted]") {
			t.Errorf("redact(%q) = %q", in, out)
		}
	}
	if got := redact(`[{"$message":"Reference has already been taken"}]`); got != `[{"$message":"Reference has already been taken"}]` {
		t.Errorf("redact changed an innocent body: %q", got)
	}
}

func TestInterpreterRefusalsAreInvalidWrites(t *testing.T) {
	t.Parallel()
	// libs/sagewrite tests the bodies themselves; here: every write it refuses
	// is a mapper bug, dead-lettered as invalid_write with its message.
	inv := ledgerv1.SageResource_SAGE_RESOURCE_SALES_INVOICE
	for _, op := range []*ledgerv1.SageOperation{
		{Key: "invoice", Resource: inv, Bindings: []*ledgerv1.FieldBinding{{Field: "contact_id", FromKey: "contact"}}},
		{Key: "invoice", Resource: inv, Body: []byte(`[1]`)},
		{Key: "payment", Resource: ledgerv1.SageResource_SAGE_RESOURCE_CONTACT_PAYMENT, Body: []byte(`{"allocated_artefacts":[{}]}`),
			Bindings: []*ledgerv1.FieldBinding{{Field: "allocated_artefacts.3.artefact_id", FromKey: "invoice"}}},
		{Key: "x"},
	} {
		_, err := sagewrite.Plan(op, map[string]string{"invoice": "I1"})
		if err == nil {
			t.Fatalf("%s: planned", op.GetKey())
		}
		d := Classify(&OpError{Op: op, Err: asInvalidWrite(err)})
		if d.Verdict != DeadLetter || d.Code != CodeInvalidWrite || !strings.Contains(d.Message, err.Error()) {
			t.Errorf("%v: %+v", err, d)
		}
	}
	if err := errors.New("other"); asInvalidWrite(err) != err {
		t.Error("asInvalidWrite changed another error")
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	err := Config{}.Validate()
	if err == nil || !strings.Contains(err.Error(), "SAGE_CLIENT_ID is required") || !strings.Contains(err.Error(), "SAGE_CLIENT_SECRET is required") {
		t.Fatalf("%v", err)
	}
	ok := Config{ClientID: "id", ClientSecret: "secret"}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	bad := Config{ClientID: "id", ClientSecret: "secret", Endpoints: sage.Endpoints{APIURL: "nope"}, Workers: -1, AckWait: 500 * time.Millisecond, WorkTimeout: 10 * time.Second}
	msg := fmt.Sprint(bad.Validate())
	for _, want := range []string{"SAGE_API_URL", "WRITER_WORKERS", "WRITER_ACK_WAIT", "WRITER_WORK_TIMEOUT"} {
		if !strings.Contains(msg, want) {
			t.Errorf("%q lacks %s", msg, want)
		}
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("config", "config", Config{ClientID: "id", ClientSecret: "hunter2"})
	if strings.Contains(buf.String(), "hunter2") || !strings.Contains(buf.String(), `"client_secret":"[redacted]"`) {
		t.Errorf("config printed as %s", buf.String())
	}
}
