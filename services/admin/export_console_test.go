package admin

import (
	"google.golang.org/grpc"

	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
)

// What the console's tests (package admin_test) reach inside the package.

// ReplayJobsOf is a replay-job registry driving s.ReplayDeadLetters, as the
// console's dead-letter page has.
func ReplayJobsOf(s *Service) *replayJobs { return newReplayJobs(s.ReplayDeadLetters) }

// ReplayJobsWith is a registry driving replay instead of the RPC.
func ReplayJobsWith(replay func(*ledgerv1.ReplayDeadLettersRequest, grpc.ServerStreamingServer[ledgerv1.ReplayDeadLettersResponse]) error) *replayJobs {
	return newReplayJobs(replay)
}

// Catalogued looks up docs/runbooks.md's entry for kind and value and
// returns its means and fix.
func Catalogued(kind, value string) (means, fix string, ok bool) {
	e, ok := catalogued(kind, value)
	return e.Means, e.Fix, ok
}

// CatalogueFor lists the anchors catalogueFor finds for a run.
func CatalogueFor(class, code, skip string) []string {
	var out []string
	for _, e := range catalogueFor(class, code, skip) {
		out = append(out, e.Anchor())
	}
	return out
}

// RunbookHTML is runbookHTML as a string.
func RunbookHTML(md string) string { return string(runbookHTML(md)) }
