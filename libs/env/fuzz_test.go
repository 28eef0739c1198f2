package env

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// FuzzReader reads one value as every type the services read settings as.
// A blank value means the default without an error. An accepted value
// survives format→parse (the same setting written back by the service reads
// the same). A refused value yields the default and exactly one error per
// refused setting, naming the variable and quoting the value.
func FuzzReader(f *testing.F) {
	f.Fuzz(func(t *testing.T, value string) {
		one := func(v string) *Reader {
			return &Reader{Lookup: func(string) (string, bool) { return v, true }}
		}
		r := one(value)
		const defInt, defDur, defBool, defStr = 7, 3 * time.Second, true, "def"
		n, d, b, s := r.Int("X_INT", defInt), r.Duration("X_DUR", defDur), r.Bool("X_BOOL", defBool), r.String("X_STR", defStr)

		trimmed := strings.TrimSpace(value)
		if trimmed == "" {
			if n != defInt || d != defDur || b != defBool || s != defStr || r.Err() != nil {
				t.Fatalf("blank %q: got %d %s %v %q %v, want the defaults", value, n, d, b, s, r.Err())
			}
			return
		}
		if s != trimmed {
			t.Fatalf("String(%q) = %q, want it trimmed", value, s)
		}
		refused := 0
		check := func(name string, ok bool, roundTrip func() bool) {
			if !ok {
				refused++
				if msg := r.Err().Error(); !strings.Contains(msg, name+"="+strconv.Quote(trimmed)) {
					t.Fatalf("error %q does not name %s with the value %q", msg, name, trimmed)
				}
				return
			}
			if !roundTrip() {
				t.Fatalf("%s=%q does not survive format→parse", name, value)
			}
		}
		_, intErr := strconv.Atoi(trimmed)
		check("X_INT", intErr == nil, func() bool {
			back := one(strconv.Itoa(n))
			return back.Int("X_INT", defInt+1) == n && back.Err() == nil
		})
		_, durErr := time.ParseDuration(trimmed)
		check("X_DUR", durErr == nil, func() bool {
			back := one(d.String())
			return back.Duration("X_DUR", defDur+1) == d && back.Err() == nil
		})
		_, boolErr := strconv.ParseBool(trimmed)
		check("X_BOOL", boolErr == nil, func() bool {
			back := one(strconv.FormatBool(b))
			return back.Bool("X_BOOL", !b) == b && back.Err() == nil
		})
		if got := strings.Count(errText(r), "\n") + 1; refused > 0 && got != refused {
			t.Fatalf("%d settings refused but %d errors: %v", refused, got, r.Err())
		}
		if refused == 0 && r.Err() != nil {
			t.Fatalf("nothing refused but Err = %v", r.Err())
		}
		if intErr != nil && n != defInt || durErr != nil && d != defDur || boolErr != nil && b != defBool {
			t.Fatalf("a refused %q did not yield the default: %d %s %v", value, n, d, b)
		}
	})
}

func errText(r *Reader) string {
	if err := r.Err(); err != nil {
		return err.Error()
	}
	return ""
}
