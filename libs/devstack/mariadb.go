package devstack

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-sql-driver/mysql"
)

// ErrNoMariaDBBinaries reports that StartMariaDB cannot find the MariaDB
// server programs. The message says how to fix it.
var ErrNoMariaDBBinaries = errors.New("no MariaDB server binaries found (mariadb-install-db, mariadbd) on PATH " +
	"or in /usr/sbin and /usr/bin: install them (Debian/Ubuntu: apt-get install mariadb-server)")

const (
	// mariadbReadyTimeout bounds how long StartMariaDB waits for the new
	// server to accept connections.
	mariadbReadyTimeout = 30 * time.Second
	// mariadbStopTimeout bounds a shutdown before the server is killed.
	mariadbStopTimeout = 30 * time.Second
	// mariadbPrefix names server directories inside the parent directory.
	mariadbPrefix = "mariadb-"
)

// MariaDBOptions adjusts StartMariaDB. The zero value is ready to use.
type MariaDBOptions struct {
	// ParentDir holds one directory per server. Default:
	// $TMPDIR/ledger-mariadb-<euid>. When running as root every directory
	// above it must be searchable by the mysql OS user.
	ParentDir string
	// Logger receives one line when the server is up. Default: no logging.
	Logger *slog.Logger
}

// MariaDB is a running throwaway MariaDB server started by StartMariaDB: the
// kind of database a Magento shop runs on, for the outbox relay's tests.
type MariaDB struct {
	// DSN connects as root (no password) over TCP on 127.0.0.1 to no
	// particular database, in go-sql-driver/mysql's form
	// (root@tcp(127.0.0.1:PORT)/?parseTime=true).
	DSN string
	// Addr is the server's 127.0.0.1:PORT.
	Addr string
	// Dir holds the data (data/), the socket, the pid file and the error log
	// (mariadbd.err). Stop removes it.
	Dir string

	cred   *syscall.Credential
	exited <-chan struct{}
	proc   *os.Process

	stopOnce sync.Once
	stopErr  error
}

// StartMariaDB creates a MariaDB data directory with mariadb-install-db in a
// fresh temporary directory and starts mariadbd on a free TCP port on
// 127.0.0.1, tuned for speed over durability (no binary log, the redo log
// flushed once a second). It returns once a client can connect. Call Stop to
// shut it down and delete it. As root, the server is created and run as the
// "mysql" OS user (mariadbd refuses root without --user). The server is a
// child of this process and gets SIGTERM if this process dies.
func StartMariaDB(ctx context.Context, opt MariaDBOptions) (*MariaDB, error) {
	logger := opt.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	installDB, mariadbd, err := findMariaDBBinaries()
	if err != nil {
		return nil, fmt.Errorf("devstack: %w", err)
	}
	cred, err := mysqlCredential()
	if err != nil {
		return nil, err
	}
	parent := opt.ParentDir
	if parent == "" {
		parent = filepath.Join(os.TempDir(), "ledger-mariadb-"+strconv.Itoa(os.Geteuid()))
	}
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return nil, fmt.Errorf("devstack: mariadb parent directory: %w", err)
	}
	if opt.ParentDir == "" {
		_ = os.Chmod(parent, 0o755)
	}
	if parent, err = filepath.Abs(parent); err != nil {
		return nil, fmt.Errorf("devstack: mariadb parent directory: %w", err)
	}
	removeStaleDirs(parent, mariadbPrefix, logger)
	dir, err := os.MkdirTemp(parent, mariadbPrefix)
	if err != nil {
		return nil, fmt.Errorf("devstack: mariadb directory: %w", err)
	}
	m := &MariaDB{Dir: dir, cred: cred}
	fail := func(err error) (*MariaDB, error) {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	if err := writeOwner(dir); err != nil {
		return fail(fmt.Errorf("devstack: mariadb directory: %w", err))
	}
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return fail(fmt.Errorf("devstack: hand %s to the mysql user: %w", dir, err))
		}
	}
	install := exec.CommandContext(ctx, installDB, "--no-defaults", "--datadir="+m.dataDir(),
		"--auth-root-authentication-method=normal", "--skip-test-db", "--skip-name-resolve",
		"--innodb-log-file-size=16M")
	install.Dir = dir
	if cred != nil {
		install.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	if out, err := install.CombinedOutput(); err != nil {
		return fail(fmt.Errorf("devstack: mariadb-install-db %s: %w\n%s", m.dataDir(), err, bytes.TrimSpace(out)))
	}
	for attempt := 1; ; attempt++ {
		err := m.start(ctx, mariadbd)
		if err == nil {
			break
		}
		if errors.Is(err, errPortTaken) && attempt < portAttempts {
			continue
		}
		return fail(err)
	}
	logger.Info("mariadb started", "addr", m.Addr, "dir", m.Dir, "pid", m.proc.Pid)
	return m, nil
}

func (m *MariaDB) dataDir() string { return filepath.Join(m.Dir, "data") }
func (m *MariaDB) logFile() string { return filepath.Join(m.Dir, "mariadbd.err") }

func (m *MariaDB) start(ctx context.Context, mariadbd string) error {
	port, err := freePort()
	if err != nil {
		return fmt.Errorf("devstack: find a free port for mariadb: %w", err)
	}
	_ = os.Remove(m.logFile())
	cmd := exec.Command(mariadbd, "--no-defaults",
		"--datadir="+m.dataDir(),
		"--socket="+filepath.Join(m.Dir, "mariadbd.sock"),
		"--pid-file="+filepath.Join(m.Dir, "mariadbd.pid"),
		"--log-error="+m.logFile(),
		"--port="+strconv.Itoa(port),
		"--bind-address=127.0.0.1",
		"--skip-name-resolve",
		"--skip-log-bin",
		"--innodb-flush-log-at-trx-commit=0",
		"--innodb-buffer-pool-size=64M",
		"--innodb-log-file-size=16M",
		"--max-connections=300",
	)
	cmd.Dir = m.Dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: m.cred, Setpgid: true, Pdeathsig: syscall.SIGTERM}
	proc, exited, err := startPinned(cmd)
	if err != nil {
		return fmt.Errorf("devstack: start mariadbd: %w", err)
	}
	m.proc, m.exited = proc, exited
	m.Addr = "127.0.0.1:" + strconv.Itoa(port)
	cfg := mysql.NewConfig()
	cfg.User, cfg.Net, cfg.Addr, cfg.ParseTime = "root", "tcp", m.Addr, true
	m.DSN = cfg.FormatDSN()
	err = m.waitReady(ctx)
	if err == nil {
		return nil
	}
	_ = m.shutdownServer()
	tail := logTail(m.logFile(), 20)
	if strings.Contains(tail, "Address already in use") || strings.Contains(tail, "Do you already have another") {
		return errPortTaken
	}
	return fmt.Errorf("devstack: mariadb (dir %s): %w; error log %s ends with:\n%s", m.Dir, err, m.logFile(), tail)
}

func (m *MariaDB) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, mariadbReadyTimeout)
	defer cancel()
	db, err := sql.Open("mysql", m.DSN)
	if err != nil {
		return err
	}
	defer db.Close()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
		err = db.PingContext(pctx)
		pcancel()
		if err == nil {
			return nil
		}
		select {
		case <-m.exited:
			return errors.New("server exited during start-up")
		case <-ctx.Done():
			return fmt.Errorf("not accepting connections after %s: %w", mariadbReadyTimeout, err)
		case <-tick.C:
		}
	}
}

// Stop shuts the server down (SIGTERM, then SIGKILL after 30 s) and removes
// its directory. Safe to call more than once.
func (m *MariaDB) Stop() error {
	m.stopOnce.Do(func() {
		var errs []error
		if err := m.shutdownServer(); err != nil {
			errs = append(errs, err)
		}
		if err := os.RemoveAll(m.Dir); err != nil {
			errs = append(errs, fmt.Errorf("devstack: remove mariadb directory: %w", err))
		}
		m.stopErr = errors.Join(errs...)
	})
	return m.stopErr
}

func (m *MariaDB) shutdownServer() error {
	select {
	case <-m.exited:
		return nil
	default:
	}
	_ = m.proc.Signal(syscall.SIGTERM)
	select {
	case <-m.exited:
		return nil
	case <-time.After(mariadbStopTimeout):
	}
	_ = syscall.Kill(-m.proc.Pid, syscall.SIGKILL)
	<-m.exited
	return fmt.Errorf("devstack: mariadbd (dir %s) did not stop within %s and was killed", m.Dir, mariadbStopTimeout)
}

// findMariaDBBinaries looks for mariadb-install-db and mariadbd on PATH, then
// in /usr/bin and /usr/sbin (Debian puts mariadbd in /usr/sbin, often not on
// a user's PATH).
func findMariaDBBinaries() (installDB, mariadbd string, err error) {
	find := func(name string) string {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
		for _, dir := range []string{"/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"} {
			if p := filepath.Join(dir, name); isExecutable(p) {
				return p
			}
		}
		return ""
	}
	installDB, mariadbd = find("mariadb-install-db"), find("mariadbd")
	if installDB == "" || mariadbd == "" {
		return "", "", ErrNoMariaDBBinaries
	}
	return installDB, mariadbd, nil
}

// mysqlCredential is the identity to run MariaDB as: nil (this process's)
// unless running as root, then the mysql OS user.
func mysqlCredential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("mysql")
	if err != nil {
		return nil, fmt.Errorf("devstack: running as root, and mariadbd refuses root, but there is no mysql OS user to run it as (%w): "+
			"install mariadb-server (which creates it) or run as another user", err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("devstack: mysql user id %q: %w", u.Uid, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("devstack: mysql group id %q: %w", u.Gid, err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}, nil
}
