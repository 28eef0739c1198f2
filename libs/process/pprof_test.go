package process_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/ledgersync/ledger/libs/process"
	"github.com/ledgersync/ledger/libs/telemetry"
)

// TestPprofIsOptIn: /debug/pprof/ answers only with Settings.Pprof
// (LEDGER_PPROF=true), and from the first moment, before the service is built.
func TestPprofIsOptIn(t *testing.T) {
	t.Parallel()
	for _, on := range []bool{false, true} {
		// Nothing listens on port 1: the service keeps waiting for Postgres.
		s := testSettings("postgres://ledger@127.0.0.1:1/ledger", "nats://127.0.0.1:1")
		s.Pprof = on
		ctx, cancel := context.WithCancel(t.Context())
		r, err := process.Start(ctx, telemetry.Discard(), s, process.Program{Name: "probe", Addr: "127.0.0.1:0", AddrVar: "PROBE_ADDR",
			Start: func(context.Context, *process.Infra) (process.Started, error) { return process.Started{}, nil }})
		if err != nil {
			t.Fatal(err)
		}
		for _, path := range []string{"/debug/pprof/", "/debug/pprof/heap?debug=1", "/debug/pprof/cmdline"} {
			code, body := get(t, r.URL()+path)
			if on && (code != http.StatusOK || body == "") {
				t.Errorf("pprof on: GET %s = %d %q, want 200 with a body", path, code, body)
			}
			if !on && (code == http.StatusOK || strings.Contains(body, "goroutine")) {
				t.Errorf("pprof off: GET %s = %d, want no profile", path, code)
			}
		}
		cancel()
		_ = r.Wait()
	}
}
