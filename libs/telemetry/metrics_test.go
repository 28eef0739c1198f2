package telemetry

import (
	"maps"
	"testing"
)

// TestTopTenants: at most cap tenants are named, the largest first (ties by
// id), the rest summed under OtherTenants; nothing is folded within the cap.
func TestTopTenants(t *testing.T) {
	in := map[string]float64{"a": 5, "b": 1, "c": 5, "d": 3, "e": 0}
	if got := TopTenants(in, 5); !maps.Equal(got, in) {
		t.Errorf("within the cap: %v", got)
	}
	want := map[string]float64{"a": 5, "c": 5, OtherTenants: 4}
	if got := TopTenants(in, 2); !maps.Equal(got, want) {
		t.Errorf("cap 2: %v, want %v", got, want)
	}
	if got := TopTenants(in, 0); len(got) != 2 || got["a"] != 5 || got[OtherTenants] != 9 {
		t.Errorf("cap 0 keeps one: %v", got)
	}
}

// TestSageResourceLabel: a resource is a plain word; any other path shape is
// "other", never a label value of its own.
func TestSageResourceLabel(t *testing.T) {
	for path, want := range map[string]string{
		"/v3.1/sales_invoices/abc123": "sales_invoices",
		"/token":                      "token",
		"/v3.1/contacts":              "contacts",
		"/v3.1/Weird%20Thing":         "other",
		"/v3.1/":                      "other",
	} {
		if got := SageResourceLabel(path); got != want {
			t.Errorf("%s: %q, want %q", path, got, want)
		}
	}
}
