// Package devtest gives tests real infrastructure: a fresh, migrated
// PostgreSQL database per call and an in-process NATS JetStream server per
// call. Import it from _test.go files only.
//
// A package that uses Database calls Main from its TestMain so the shared
// cluster is stopped after the tests:
//
//	func TestMain(m *testing.M) { devtest.Main(m) }
//
// Databases come from one server per test process: the one named by
// LEDGER_TEST_DATABASE_URL (an admin URL to an existing server; the
// test databases and the template are created on it and dropped afterwards),
// else a throwaway cluster started with devstack.StartPostgres. The
// migrations run once per process, into a template database; each Database
// call clones it, which takes milliseconds.
package devtest
