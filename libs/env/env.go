// Package env reads typed settings from environment variables with defaults,
// collecting every problem so a service can report all bad settings at once, each
// naming the variable and what it expects.
package env

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Reader accumulates parse errors.
type Reader struct {
	errs []error
	// Lookup defaults to os.LookupEnv; tests replace it.
	Lookup func(string) (string, bool)
}

func (r *Reader) lookup(name string) (string, bool) {
	if r.Lookup != nil {
		return r.Lookup(name)
	}
	return os.LookupEnv(name)
}

// String returns the variable or def when unset or blank.
func (r *Reader) String(name, def string) string {
	if v, ok := r.lookup(name); ok && strings.TrimSpace(v) != "" {
		return strings.TrimSpace(v)
	}
	return def
}

// Int returns an integer setting.
func (r *Reader) Int(name string, def int) int {
	v := r.String(name, "")
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		r.errs = append(r.errs, fmt.Errorf("%s=%q: want a whole number, e.g. %d", name, v, def))
		return def
	}
	return n
}

// Duration returns a Go duration setting ("30s", "5m").
func (r *Reader) Duration(name string, def time.Duration) time.Duration {
	v := r.String(name, "")
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		r.errs = append(r.errs, fmt.Errorf("%s=%q: want a duration such as %s", name, v, def))
		return def
	}
	return d
}

// Bool returns a boolean setting (true/false/1/0).
func (r *Reader) Bool(name string, def bool) bool {
	v := r.String(name, "")
	if v == "" {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		r.errs = append(r.errs, fmt.Errorf("%s=%q: want true or false", name, v))
		return def
	}
	return b
}

// Fail records a validation problem found by the caller.
func (r *Reader) Fail(format string, args ...any) {
	r.errs = append(r.errs, fmt.Errorf(format, args...))
}

// Err returns every problem found, joined, or nil.
func (r *Reader) Err() error { return errors.Join(r.errs...) }
