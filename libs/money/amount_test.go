package money

import (
	"encoding/json"
	"testing"
)

func TestUnmarshalAcceptsNumbersStringsAndNull(t *testing.T) {
	cases := map[string]string{
		`12.34`:     "12.34",
		`"12.34"`:   "12.34",
		`100`:       "100.00",
		`100.0`:     "100.00",
		`null`:      "0.00",
		`"-0.5"`:    "-0.50",
		`0.1`:       "0.10",
		`1e2`:       "100.00",
		`19.999999`: "20.00",
	}
	for in, want := range cases {
		var a Amount
		if err := json.Unmarshal([]byte(in), &a); err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if got := a.Cents().String(); got != want {
			t.Errorf("%s: got %s want %s", in, got, want)
		}
	}
	for _, bad := range []string{`"abc"`, `true`, `{}`, `"1,5"`} {
		var a Amount
		if err := json.Unmarshal([]byte(bad), &a); err == nil {
			t.Errorf("%s: expected an error", bad)
		}
	}
}

func TestArithmeticIsExact(t *testing.T) {
	// 0.1 + 0.2 is the classic float64 failure.
	if got := MustParse("0.1").Add(MustParse("0.2")); !got.Equal(MustParse("0.3")) {
		t.Fatalf("0.1+0.2 = %s", got.Exact())
	}
	sum := Zero
	for i := 0; i < 1000; i++ {
		sum = sum.Add(MustParse("0.01"))
	}
	if sum.String() != "10.00" {
		t.Fatalf("sum = %s", sum)
	}
	if got := MustParse("2.675").Round(2).String(); got != "2.68" {
		t.Fatalf("half away from zero: %s", got)
	}
}

func TestMarshal(t *testing.T) {
	b, _ := json.Marshal(struct {
		A Amount
		N Number
	}{MustParse("5"), Number{MustParse("12.5")}})
	if string(b) != `{"A":"5.00","N":12.5}` {
		t.Fatalf("got %s", b)
	}
}
