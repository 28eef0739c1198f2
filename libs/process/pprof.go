package process

import (
	"net/http"
	"net/http/pprof"
	"strings"
)

// servePprof is net/http/pprof's handlers, served only when Settings.Pprof is
// set (LEDGER_PPROF=true): /debug/pprof/ (the index), profile (CPU, ?seconds=N,
// which must end within the server's write timeout: ingest's is its request
// timeout plus 4 s), heap and allocs (?gc=1 runs a collection first),
// goroutine, trace, symbol and cmdline.
func servePprof(w http.ResponseWriter, req *http.Request) {
	switch strings.TrimPrefix(req.URL.Path, "/debug/pprof/") {
	case "cmdline":
		pprof.Cmdline(w, req)
	case "profile":
		pprof.Profile(w, req)
	case "symbol":
		pprof.Symbol(w, req)
	case "trace":
		pprof.Trace(w, req)
	default:
		pprof.Index(w, req) // the index, and every named profile (heap, allocs, goroutine …)
	}
}
