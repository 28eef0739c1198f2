package devtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ledgersync/ledger/libs/devstack"
	"github.com/ledgersync/ledger/libs/store"
)

// EnvTestDatabaseURL names the environment variable holding an admin URL of an
// existing PostgreSQL server for tests; the user must be allowed to create
// databases.
const EnvTestDatabaseURL = "LEDGER_TEST_DATABASE_URL"

// adminTimeout bounds each administrative statement and the migrations.
const adminTimeout = 2 * time.Minute

// testServer is the per-process database server and migrated template.
var testServer struct {
	once     sync.Once
	err      error
	cluster  *devstack.Postgres // nil when LEDGER_TEST_DATABASE_URL is used
	adminURL string
	template string
}

// Database returns the URL of a new database, migrated with store.Migrate,
// for this test alone. It is dropped when the test ends. Safe for parallel
// tests. Any failure is fatal to the test, with a message saying how to fix it.
func Database(t testing.TB) string {
	t.Helper()
	testServer.once.Do(setUpServer)
	if testServer.err != nil {
		t.Fatalf("devtest: no test database: %v", testServer.err)
	}
	name := "t_" + randomSuffix()
	ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
	defer cancel()
	err := adminExec(ctx, testServer.adminURL,
		"CREATE DATABASE "+pgx.Identifier{name}.Sanitize()+" TEMPLATE "+pgx.Identifier{testServer.template}.Sanitize())
	if err != nil {
		t.Fatalf("devtest: create test database %s: %v", name, err)
	}
	t.Cleanup(func() {
		// Not t.Context(): it is already cancelled when cleanups run.
		ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
		defer cancel()
		if err := dropDatabase(ctx, testServer.adminURL, name); err != nil {
			t.Errorf("devtest: drop test database %s: %v", name, err)
		}
	})
	u, err := withDatabase(testServer.adminURL, name)
	if err != nil {
		t.Fatalf("devtest: %v", err)
	}
	return u
}

// setUpServer finds or starts the server and builds the template database.
func setUpServer() {
	ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
	defer cancel()
	s := &testServer
	if u := os.Getenv(EnvTestDatabaseURL); u != "" {
		s.adminURL = u
	} else {
		pg, err := devstack.StartPostgres(ctx, devstack.PostgresOptions{})
		if err != nil {
			s.err = fmt.Errorf("%w (or set %s to an admin URL of an existing server)", err, EnvTestDatabaseURL)
			return
		}
		s.cluster, s.adminURL = pg, pg.URL
	}
	template := "ledger_template_" + randomSuffix()
	templateURL, err := withDatabase(s.adminURL, template)
	if err != nil {
		s.err = err
		return
	}
	if err := adminExec(ctx, s.adminURL, "CREATE DATABASE "+pgx.Identifier{template}.Sanitize()); err != nil {
		s.err = fmt.Errorf("create template database on %s: %w", redact(s.adminURL), err)
		return
	}
	s.template = template // from here on Main drops it
	if err := store.Migrate(ctx, templateURL); err != nil {
		s.err = fmt.Errorf("migrate template database: %w", err)
		return
	}
	// No one may connect to the template any more: CREATE DATABASE ... TEMPLATE
	// fails while someone is.
	if err := adminExec(ctx, s.adminURL, "ALTER DATABASE "+pgx.Identifier{template}.Sanitize()+
		" WITH IS_TEMPLATE true ALLOW_CONNECTIONS false"); err != nil {
		s.err = fmt.Errorf("seal template database: %w", err)
	}
}

// tearDownServer drops the template database and stops the cluster, if any.
func tearDownServer() error {
	s := &testServer
	if s.cluster != nil {
		// Dropping the template first would be wasted work.
		return s.cluster.Stop()
	}
	if s.template == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
	defer cancel()
	if err := adminExec(ctx, s.adminURL, "ALTER DATABASE "+pgx.Identifier{s.template}.Sanitize()+" WITH IS_TEMPLATE false"); err != nil {
		return fmt.Errorf("unmark template database %s: %w", s.template, err)
	}
	return dropDatabase(ctx, s.adminURL, s.template)
}

func dropDatabase(ctx context.Context, adminURL, name string) error {
	return adminExec(ctx, adminURL, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
}

// adminExec runs one statement on its own connection. A connection per
// statement keeps no goroutines or sockets alive between tests.
func adminExec(ctx context.Context, adminURL, sql string) error {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", redact(adminURL), err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	_, err = conn.Exec(ctx, sql)
	return err
}

// withDatabase returns adminURL pointing at database name instead.
func withDatabase(adminURL, name string) (string, error) {
	u, err := url.Parse(adminURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", errors.New("the database URL must look like postgres://user@host:port/dbname (key=value strings are not supported)")
	}
	u.Path = "/" + name
	u.RawPath = ""
	return u.String(), nil
}

// redact hides the password of a URL for error messages.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

func randomSuffix() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b) // never fails (crypto/rand documents it)
	return hex.EncodeToString(b)
}
