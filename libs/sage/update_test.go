package sage

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"testing"
)

// TestUpdate: PUT /resource/{id} (the id escaped) with the root key, the
// document Sage answers, a 2xx without an id as an error with the answer, and
// a refusal as an *APIError naming the PUT.
func TestUpdate(t *testing.T) {
	t.Parallel()
	var status int
	var answer string
	c := &Client{BaseURL: fuzzAPI, Tokens: StaticToken("tok"), BusinessID: "biz",
		HTTP: &http.Client{Transport: roundTrip(func(r *http.Request) (*http.Response, error) {
			b, _ := io.ReadAll(r.Body)
			if r.Method != http.MethodPut || r.URL.EscapedPath() != "/v3.1/contacts/a%2Fb" || string(b) != `{"contact":{"name":"Ann"}}` ||
				r.Header.Get("Content-Type") != "application/json" {
				t.Errorf("request %s %s %s", r.Method, r.URL.EscapedPath(), b)
			}
			return &http.Response{StatusCode: status, Header: http.Header{"X-Request-Id": {"req-9"}},
				Body: io.NopCloser(bytes.NewReader([]byte(answer))), Request: r}, nil
		})}}
	ctx := context.Background()
	body := json.RawMessage(`{"name":"Ann"}`)

	status, answer = http.StatusOK, `{"id":"a/b","displayed_as":"Ann (M1)","reference":"M1"}`
	doc, resp, err := c.Update(ctx, "contacts", "contact", "a/b", body)
	if err != nil || doc.ID != "a/b" || doc.Reference != "M1" || resp.Status != http.StatusOK || resp.RequestID != "req-9" {
		t.Fatalf("update: %+v %+v %v", doc, resp, err)
	}
	status, answer = http.StatusOK, `{}`
	if _, resp, err := c.Update(ctx, "contacts", "contact", "a/b", body); err == nil || resp == nil {
		t.Fatalf("a 2xx without an id: %+v, %v", resp, err)
	}
	status, answer = http.StatusNotFound, `[{"$dataCode":"RecordNotFound","$message":"Couldn't find record.","$source":""}]`
	_, _, err = c.Update(ctx, "contacts", "contact", "a/b", body)
	var ae *APIError
	if !errors.As(err, &ae) || ae.Method != http.MethodPut || ae.Path != "/contacts/a%2Fb" || ae.Status != http.StatusNotFound ||
		ae.Primary().DataCode != "RecordNotFound" {
		t.Fatalf("404: %#v", err)
	}
}
