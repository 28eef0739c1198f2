package devtest

import (
	"fmt"
	"os"
	"testing"
)

// Main runs the tests, then stops the database server Database started (or
// drops its template database from LEDGER_TEST_DATABASE_URL's server) and
// exits with the tests' status. Call it from TestMain. A failed clean-up
// fails the run.
//
// NATS servers need nothing here: NATS and NATSServer shut theirs down in
// t.Cleanup.
func Main(m *testing.M) {
	code := m.Run()
	if err := tearDownServer(); err != nil {
		fmt.Fprintln(os.Stderr, "devtest: clean-up after tests:", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}
