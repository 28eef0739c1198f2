package devtest

import (
	"errors"
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"
)

// Main runs the tests, then stops the database server Database started (or
// drops its template database from LEDGER_TEST_DATABASE_URL's server), checks
// that no goroutine outlived the tests, and exits with the tests' status. Call
// it from TestMain. A failed clean-up or a leaked goroutine fails the run.
//
// NATS servers need nothing here: NATS and NATSServer shut theirs down in
// t.Cleanup.
func Main(m *testing.M) {
	code := m.Run()
	if err := errors.Join(tearDownServer(), tearDownMariaDB()); err != nil {
		fmt.Fprintln(os.Stderr, "devtest: clean-up after tests:", err)
		if code == 0 {
			code = 1
		}
	}
	// As goleak.VerifyTestMain: after a failure the leak report would only
	// bury the failure's own message (a failed test often leaves its helpers
	// blocked). No goroutine is ignored: embedded NATS servers, connections,
	// pools and the throwaway cluster end all of theirs when closed, so any
	// left over belongs to something a test or the code under test forgot.
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "devtest: goroutines outlived the tests:", err)
			code = 1
		}
	}
	os.Exit(code)
}
