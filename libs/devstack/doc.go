// Package devstack starts the infrastructure Ledger needs on a developer
// machine, in process or as a child process, without Docker: an embedded
// NATS server with JetStream and a throwaway PostgreSQL cluster.
//
// It backs `make run` (cmd/ledger-dev) and, through package devtest, the
// integration tests. Both entry points honour environment variables that point
// at real servers instead:
//
//   - LEDGER_NATS_URL: use this NATS server rather than an embedded one (see NATSURL).
//   - LEDGER_DATABASE_URL: use this database rather than a throwaway cluster (see DatabaseURL).
//
// The throwaway cluster needs the PostgreSQL server binaries (initdb, pg_ctl,
// postgres) on PATH or under /usr/lib/postgresql/*/bin. initdb refuses to run
// as root, so when the process is root the cluster is created and run as the
// "postgres" OS user.
//
// Nothing here is meant for production: the cluster runs with fsync off and
// trust authentication, and the NATS server has no authentication.
package devstack
