package sage

import "testing"

func TestPrimarySkipsTheUmbrella(t *testing.T) {
	e := &APIError{Items: ParseErrors([]byte(`[
		{"$severity":"error","$dataCode":"RecordInvalid","$message":"This field is required.","$source":"line_items.description"},
		{"$severity":"error","$dataCode":"RecordInvalid","$message":"is not a valid tax rate","$source":"line_items.tax_rate_id"}]`))}
	if p := e.Primary(); p.Source != "line_items.tax_rate_id" {
		t.Fatalf("primary = %+v", p)
	}
	alone := &APIError{Items: ParseErrors([]byte(`[{"$dataCode":"RecordInvalid","$message":"This field is required.","$source":"line_items.description"}]`))}
	if p := alone.Primary(); p.Source != "line_items.description" {
		t.Fatalf("a lone umbrella is the cause: %+v", p)
	}
	none := &APIError{Items: ParseErrors([]byte(`[{"$dataCode":"UnexpectedError","$message":"An unexpected error occurred.","$source":""}]`))}
	if p := none.Primary(); p.DataCode != "UnexpectedError" {
		t.Fatalf("%+v", p)
	}
	if ParseErrors([]byte(`<html>`)) != nil {
		t.Fatal("html parsed as errors")
	}
}
