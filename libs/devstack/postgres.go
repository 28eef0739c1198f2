package devstack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvDatabaseURL names the environment variable that points Ledger at an
// existing database instead of a throwaway cluster.
const EnvDatabaseURL = "LEDGER_DATABASE_URL"

const (
	// postgresReadyTimeout bounds how long StartPostgres waits for the new
	// server to accept connections.
	postgresReadyTimeout = 30 * time.Second
	// postgresStopTimeout bounds a fast shutdown before the server is killed.
	postgresStopTimeout = 30 * time.Second
	// portAttempts is how many free ports StartPostgres tries: a port found
	// free can be taken by someone else before the server binds it.
	portAttempts = 5
	// clusterPrefix names cluster directories inside the parent directory, so
	// that stale ones can be recognised.
	clusterPrefix = "cluster-"
	// ownerFile holds the pid of the process that created a cluster directory.
	ownerFile = "owner.pid"
)

// PostgresOptions adjusts StartPostgres. The zero value is ready to use.
type PostgresOptions struct {
	// ParentDir holds one directory per cluster. Default:
	// $TMPDIR/ledger-postgres-<euid>. When running as root every directory
	// above it must be searchable by the postgres OS user.
	ParentDir string
	// Logger receives one line when the cluster is up (URL, directory, pid
	// file) and one per stale cluster removed. Default: no logging.
	Logger *slog.Logger
	// Settings are extra server settings, each "name=value" as postgres -c
	// takes it (the benchmark loads pg_stat_statements this way).
	Settings []string
}

// Postgres is a running throwaway PostgreSQL cluster started by StartPostgres.
type Postgres struct {
	// URL connects to the "postgres" database as the "postgres" superuser
	// over TCP on 127.0.0.1, without a password or TLS.
	URL string
	// Dir is the directory holding the cluster (data/), its Unix socket and
	// its log (postgres.log). Stop removes it.
	Dir string
	// PIDFile is the postmaster pid file. Should the Go process die without
	// calling Stop, `pg_ctl stop -D <its directory>` or killing the pid in its
	// first line stops the cluster.
	PIDFile string

	bins     postgresBinaries
	cred     *syscall.Credential
	settings []string
	exited   <-chan struct{} // closed once the postmaster has exited and been reaped
	proc     *os.Process

	stopOnce sync.Once
	stopErr  error
}

// StartPostgres creates a new PostgreSQL cluster in a fresh temporary
// directory and starts it on a free TCP port on 127.0.0.1, tuned for speed
// over durability (fsync, full_page_writes and synchronous_commit off). It
// returns once a client can connect. Call Stop to shut it down and delete it.
//
// The server binaries are looked up on PATH, then under
// /usr/lib/postgresql/*/bin (highest version first); ErrNoPostgresBinaries
// says how to fix their absence. initdb refuses to run as root, so as root
// the cluster is created and run as the "postgres" OS user.
//
// The postmaster is a child of this process and is sent SIGINT (fast
// shutdown) if this process dies, so a crashed test run does not leave a
// server behind; the directories such runs leave are removed by the next
// StartPostgres with the same parent directory.
func StartPostgres(ctx context.Context, opt PostgresOptions) (*Postgres, error) {
	logger := opt.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	bins, err := findPostgresBinaries(debianBinGlob)
	if err != nil {
		return nil, fmt.Errorf("devstack: %w", err)
	}
	cred, err := postgresCredential()
	if err != nil {
		return nil, err
	}
	parent, err := prepareParentDir(opt.ParentDir, cred)
	if err != nil {
		return nil, err
	}
	removeStaleDirs(parent, clusterPrefix, logger)

	dir, err := os.MkdirTemp(parent, clusterPrefix)
	if err != nil {
		return nil, fmt.Errorf("devstack: postgres cluster directory: %w", err)
	}
	pg := &Postgres{
		Dir:      dir,
		PIDFile:  filepath.Join(dir, "data", "postmaster.pid"),
		bins:     bins,
		cred:     cred,
		settings: opt.Settings,
	}
	if err := pg.create(ctx); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}

	for attempt := 1; ; attempt++ {
		err := pg.start(ctx)
		if err == nil {
			break
		}
		if errors.Is(err, errPortTaken) && attempt < portAttempts {
			continue
		}
		_ = os.RemoveAll(dir)
		return nil, err
	}
	logger.Info("postgres started", "url", pg.URL, "dir", pg.Dir, "pid_file", pg.PIDFile, "pid", pg.proc.Pid)
	return pg, nil
}

// Stop shuts the cluster down (pg_ctl stop -m fast, then SIGKILL if it is
// still running after 30 s) and removes its directory. It is safe to call more
// than once and from several goroutines, such as a signal handler racing the
// normal shutdown path; every call returns the first call's result.
func (pg *Postgres) Stop() error {
	pg.stopOnce.Do(func() {
		pg.stopErr = pg.stop()
	})
	return pg.stopErr
}

func (pg *Postgres) stop() error {
	var errs []error
	if err := pg.shutdownServer(); err != nil {
		errs = append(errs, err)
	}
	if err := os.RemoveAll(pg.Dir); err != nil {
		errs = append(errs, fmt.Errorf("devstack: remove postgres directory: %w", err))
	}
	return errors.Join(errs...)
}

// shutdownServer stops the postmaster and waits until it has been reaped.
func (pg *Postgres) shutdownServer() error {
	select {
	case <-pg.exited:
		return nil
	default:
	}
	ctx, cancel := context.WithTimeout(context.Background(), postgresStopTimeout)
	defer cancel()
	cmd := pg.command(ctx, pg.bins.pgCtl, "stop", "-D", pg.dataDir(), "-m", "fast", "-w",
		"-t", strconv.Itoa(int(postgresStopTimeout/time.Second)))
	out, ctlErr := cmd.CombinedOutput()
	if ctlErr != nil {
		// pg_ctl can fail when the server is already gone or half way
		// through dying; the signal below does the same job.
		_ = pg.proc.Signal(syscall.SIGINT)
	}
	select {
	case <-pg.exited:
		return nil
	case <-time.After(postgresStopTimeout):
	}
	// The postmaster leads its own process group; take its children too.
	_ = syscall.Kill(-pg.proc.Pid, syscall.SIGKILL)
	<-pg.exited
	if ctlErr != nil {
		return fmt.Errorf("devstack: pg_ctl stop (pid file %s): %w: %s", pg.PIDFile, ctlErr, bytes.TrimSpace(out))
	}
	return fmt.Errorf("devstack: postgres (pid file %s) did not stop within %s and was killed", pg.PIDFile, postgresStopTimeout)
}

func (pg *Postgres) dataDir() string { return filepath.Join(pg.Dir, "data") }
func (pg *Postgres) logFile() string { return filepath.Join(pg.Dir, "postgres.log") }

// create runs initdb into Dir/data.
func (pg *Postgres) create(ctx context.Context) error {
	if err := writeOwner(pg.Dir); err != nil {
		return fmt.Errorf("devstack: postgres cluster directory: %w", err)
	}
	if pg.cred != nil {
		if err := os.Chown(pg.Dir, int(pg.cred.Uid), int(pg.cred.Gid)); err != nil {
			return fmt.Errorf("devstack: hand %s to the postgres user: %w", pg.Dir, err)
		}
	}
	cmd := pg.command(ctx, pg.bins.initdb, "-D", pg.dataDir(),
		"-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8", "--locale=C")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("devstack: initdb %s: %w\n%s", pg.dataDir(), err, bytes.TrimSpace(out))
	}
	return nil
}

// errPortTaken marks a start that failed only because another process bound
// the chosen port first.
var errPortTaken = errors.New("port already in use")

// start runs the postmaster on a free port and waits until it accepts
// connections. On failure the postmaster is not running.
func (pg *Postgres) start(ctx context.Context) error {
	port, err := freePort()
	if err != nil {
		return fmt.Errorf("devstack: find a free port for postgres: %w", err)
	}
	logf, err := os.OpenFile(pg.logFile(), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("devstack: postgres log: %w", err)
	}
	// The postmaster inherits the descriptor; this process needs no copy.
	defer logf.Close()

	// Not exec.CommandContext: ctx bounds the start, not the server's life.
	args := []string{
		"-D", pg.dataDir(),
		"-p", strconv.Itoa(port),
		"-k", pg.Dir,
		"-c", "listen_addresses=127.0.0.1",
		"-c", "fsync=off",
		"-c", "full_page_writes=off",
		"-c", "synchronous_commit=off",
		"-c", "max_connections=300",
		"-c", "shared_buffers=128MB",
	}
	for _, kv := range pg.settings {
		args = append(args, "-c", kv)
	}
	cmd := exec.Command(pg.bins.postgres, args...)
	cmd.Dir = pg.Dir
	cmd.Env = append(os.Environ(), "LC_ALL=C") // log lines we can match
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential: pg.cred,
		// Its own process group keeps a terminal's Ctrl-C away from it: the
		// host process decides when it stops.
		Setpgid: true,
		// Fast shutdown when this process dies without calling Stop.
		Pdeathsig: syscall.SIGINT,
	}

	proc, exited, err := startPinned(cmd)
	if err != nil {
		return fmt.Errorf("devstack: start postgres: %w", err)
	}
	pg.proc, pg.exited = proc, exited
	pg.URL = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)

	err = pg.waitReady(ctx)
	if err == nil {
		return nil
	}
	_ = pg.shutdownServer()
	tail := logTail(pg.logFile(), 20)
	if strings.Contains(tail, "could not bind") || strings.Contains(tail, "already in use") {
		// Start the next attempt with an empty log.
		_ = os.Remove(pg.logFile())
		return errPortTaken
	}
	return fmt.Errorf("devstack: postgres (data %s, pid file %s): %w; server log %s ends with:\n%s",
		pg.dataDir(), pg.PIDFile, err, pg.logFile(), tail)
}

// startPinned starts cmd from a goroutine locked to its OS thread for as long
// as the child lives. Linux delivers Pdeathsig when the *thread* that forked
// the child exits, and the Go runtime ends threads whose locked goroutine
// returns; pinning keeps the signal for the death of the whole process.
func startPinned(cmd *exec.Cmd) (*os.Process, <-chan struct{}, error) {
	started := make(chan error, 1)
	exited := make(chan struct{})
	go func() {
		runtime.LockOSThread()
		// Never unlocked: once the child is gone the thread may go too.
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		_ = cmd.Wait() // the exit status shows in the server log
		close(exited)
	}()
	if err := <-started; err != nil {
		return nil, nil, err
	}
	return cmd.Process, exited, nil
}

// waitReady polls until a client can connect, the postmaster exits, ctx ends
// or postgresReadyTimeout passes.
func (pg *Postgres) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, postgresReadyTimeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var lastErr error
	for {
		connCtx, connCancel := context.WithTimeout(ctx, 2*time.Second)
		conn, err := pgx.Connect(connCtx, pg.URL)
		if err == nil {
			err = conn.Ping(connCtx)
			_ = conn.Close(connCtx)
		}
		connCancel()
		if err == nil {
			return nil
		}
		lastErr = err
		select {
		case <-pg.exited:
			return errors.New("server exited during start-up")
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("not accepting connections after %s: %w", postgresReadyTimeout, lastErr)
			}
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// command prepares a PostgreSQL program to run as the cluster's owner, from
// the cluster directory: the programs fail when they cannot read their
// working directory, such as root's home.
func (pg *Postgres) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = pg.Dir
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	if pg.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: pg.cred}
	}
	return cmd
}

// postgresCredential returns the identity to run the server programs as: nil
// (this process's) unless running as root, which initdb refuses.
func postgresCredential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("devstack: running as root, and initdb refuses root, but there is no postgres OS user to run it as (%w): "+
			"create one (useradd --system postgres), run as another user, or set LEDGER_DATABASE_URL to an existing database", err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("devstack: postgres user id %q: %w", u.Uid, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("devstack: postgres group id %q: %w", u.Gid, err)
	}
	// Its own supplementary groups, not root's.
	var groups []uint32
	if ids, err := u.GroupIds(); err == nil {
		for _, id := range ids {
			if g, err := strconv.ParseUint(id, 10, 32); err == nil {
				groups = append(groups, uint32(g))
			}
		}
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: groups}, nil
}

// prepareParentDir creates the directory holding cluster directories and,
// when the server runs as another user, checks that user can reach it.
func prepareParentDir(parent string, cred *syscall.Credential) (string, error) {
	if parent == "" {
		parent = filepath.Join(os.TempDir(), "ledger-postgres-"+strconv.Itoa(os.Geteuid()))
		if err := os.MkdirAll(parent, 0o755); err != nil {
			return "", fmt.Errorf("devstack: postgres parent directory: %w", err)
		}
		// Ours alone, so make it searchable whatever the umask.
		if err := os.Chmod(parent, 0o755); err != nil {
			return "", fmt.Errorf("devstack: postgres parent directory: %w", err)
		}
	} else if err := os.MkdirAll(parent, 0o755); err != nil {
		return "", fmt.Errorf("devstack: postgres parent directory: %w", err)
	}
	parent, err := filepath.Abs(parent)
	if err != nil {
		return "", fmt.Errorf("devstack: postgres parent directory: %w", err)
	}
	if cred != nil {
		if err := searchable(parent, cred); err != nil {
			return "", err
		}
	}
	return parent, nil
}

// searchable checks from the permission bits that cred can traverse dir and
// every directory above it. Supplementary groups are not considered.
func searchable(dir string, cred *syscall.Credential) error {
	for d := dir; ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return fmt.Errorf("devstack: postgres parent directory: %w", err)
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		perm := fi.Mode().Perm()
		var bit os.FileMode = 0o001
		switch {
		case ok && st.Uid == cred.Uid:
			bit = 0o100
		case ok && st.Gid == cred.Gid:
			bit = 0o010
		}
		if perm&bit == 0 {
			return fmt.Errorf("devstack: the postgres OS user cannot reach %s (mode %s on %s): "+
				"set PostgresOptions.ParentDir or TMPDIR to a directory it can reach, or set LEDGER_DATABASE_URL", dir, perm, d)
		}
		if d == filepath.Dir(d) {
			return nil
		}
	}
}

// removeStaleDirs deletes the directories named prefix* in parent that were
// left behind by processes that died without cleaning up, once both that
// process (ownerFile) and any postmaster in it are gone. Failures are only
// logged: they never block a new start.
func removeStaleDirs(parent, prefix string, logger *slog.Logger) {
	entries, err := os.ReadDir(parent)
	if err != nil {
		return
	}
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), prefix) {
			continue
		}
		dir := filepath.Join(parent, e.Name())
		owner, ok := readPID(filepath.Join(dir, ownerFile))
		if !ok || processAlive(owner) {
			// No owner file yet means another process is just creating it.
			continue
		}
		if pm, ok := readPID(filepath.Join(dir, "data", "postmaster.pid")); ok && processAlive(pm) {
			logger.Warn("postgres from an earlier run still running; left alone",
				"dir", dir, "pid", pm, "stop_with", "pg_ctl stop -D "+filepath.Join(dir, "data"))
			continue
		}
		if err := os.RemoveAll(dir); err != nil {
			logger.Warn("cannot remove stale directory", "dir", dir, "err", err)
			continue
		}
		logger.Info("removed stale directory", "dir", dir)
	}
}

// writeOwner records this process as the owner of dir, for removeStaleDirs.
func writeOwner(dir string) error {
	return os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644)
}

// readPID reads the process id on the first line of path.
func readPID(path string) (int, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(first))
	return pid, err == nil && pid > 0
}

// processAlive reports whether a process with this pid exists (it may belong
// to another user, which EPERM reveals).
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// freePort asks the kernel for a free TCP port on 127.0.0.1. Another process
// can take it before the server binds it; StartPostgres retries then.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// logTail returns the last n lines of the file at path, for error messages.
func logTail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	defer f.Close()
	const maxTail = 8 << 10
	if fi, err := f.Stat(); err == nil && fi.Size() > maxTail {
		_, _ = f.Seek(-maxTail, io.SeekEnd)
	}
	b, _ := io.ReadAll(f)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// DatabaseURL returns the URL of the database Ledger should use: the value of
// LEDGER_DATABASE_URL when set (stop is then a no-op), else the URL of a
// throwaway cluster started with StartPostgres; stop shuts it down and
// removes it, logging nothing (call StartPostgres directly to see errors).
func DatabaseURL(ctx context.Context) (url string, stop func(), err error) {
	if u := os.Getenv(EnvDatabaseURL); u != "" {
		return u, func() {}, nil
	}
	pg, err := StartPostgres(ctx, PostgresOptions{})
	if err != nil {
		return "", func() {}, err
	}
	return pg.URL, func() { _ = pg.Stop() }, nil
}
