package devstack_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ledgersync/ledger/libs/devstack"
)

func TestStartPostgres(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	pg, err := devstack.StartPostgres(ctx, devstack.PostgresOptions{ParentDir: parentDir(t)})
	if errors.Is(err, devstack.ErrNoPostgresBinaries) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pg.Stop() })

	if !strings.HasSuffix(pg.URL, "/postgres?sslmode=disable") {
		t.Errorf("URL = %q", pg.URL)
	}
	conn, err := pgx.Connect(ctx, pg.URL)
	if err != nil {
		t.Fatal(err)
	}
	var fsync string
	if err := conn.QueryRow(ctx, "SHOW fsync").Scan(&fsync); err != nil {
		t.Fatal(err)
	}
	if fsync != "off" {
		t.Errorf("fsync = %s, want off", fsync)
	}
	var maxConns string
	if err := conn.QueryRow(ctx, "SHOW max_connections").Scan(&maxConns); err != nil {
		t.Fatal(err)
	}
	if maxConns != "300" {
		t.Errorf("max_connections = %s, want 300", maxConns)
	}
	if err := conn.Close(ctx); err != nil {
		t.Fatal(err)
	}

	pidBytes, err := os.ReadFile(pg.PIDFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.SplitN(string(pidBytes), "\n", 2)[0])
	if err != nil {
		t.Fatal(err)
	}

	// Concurrent calls, as from a signal handler racing normal shutdown.
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			if err := pg.Stop(); err != nil {
				t.Errorf("Stop: %v", err)
			}
		})
	}
	wg.Wait()
	if _, err := os.Stat(pg.Dir); !os.IsNotExist(err) {
		t.Errorf("cluster directory %s still there after Stop (stat: %v)", pg.Dir, err)
	}
	if err := syscall.Kill(pid, 0); err == nil {
		t.Errorf("postmaster %d still running after Stop", pid)
	}
	if err := pg.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}

func TestStartPostgresRemovesStaleClusters(t *testing.T) {
	t.Parallel()
	parent := parentDir(t)
	// A cluster directory whose owner and postmaster are long gone.
	stale := filepath.Join(parent, "cluster-stale")
	if err := os.MkdirAll(filepath.Join(stale, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	deadPID := "2147483646\n" // above pid_max, so never running
	for _, f := range []string{"owner.pid", filepath.Join("data", "postmaster.pid")} {
		if err := os.WriteFile(filepath.Join(stale, f), []byte(deadPID), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// One being created right now by a live process.
	live := filepath.Join(parent, "cluster-live")
	if err := os.Mkdir(live, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(live, "owner.pid"), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		t.Fatal(err)
	}

	pg, err := devstack.StartPostgres(t.Context(), devstack.PostgresOptions{ParentDir: parent})
	if errors.Is(err, devstack.ErrNoPostgresBinaries) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := pg.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("stale cluster not removed (stat: %v)", err)
	}
	if _, err := os.Stat(live); err != nil {
		t.Errorf("live cluster removed: %v", err)
	}
}

func TestStartPostgresWithoutBinaries(t *testing.T) {
	if _, err := os.Stat("/usr/lib/postgresql"); err == nil {
		t.Skip("server binaries installed under /usr/lib/postgresql; cannot hide them")
	}
	t.Setenv("PATH", t.TempDir())
	_, err := devstack.StartPostgres(t.Context(), devstack.PostgresOptions{ParentDir: t.TempDir()})
	if !errors.Is(err, devstack.ErrNoPostgresBinaries) {
		t.Fatalf("err = %v, want ErrNoPostgresBinaries", err)
	}
	if !strings.Contains(err.Error(), "apt-get install postgresql") || !strings.Contains(err.Error(), "LEDGER_DATABASE_URL") {
		t.Errorf("message does not say how to fix it: %v", err)
	}
}

func TestDatabaseURLHonoursEnv(t *testing.T) {
	const want = "postgres://ledger@db.example:5432/ledger"
	t.Setenv(devstack.EnvDatabaseURL, want)
	u, stop, err := devstack.DatabaseURL(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if u != want {
		t.Fatalf("url = %q, want %q", u, want)
	}
}

// parentDir returns a parent directory for clusters that the postgres OS user
// can reach when the tests run as root: t.TempDir() is private to root.
func parentDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "devstack-test-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}
