package main

// The benchmark's (bench_test.go) view of processes: starting and stopping the
// service binaries and nats-server, and what /proc, pg_stat_database and the
// NATS monitoring endpoint say about them.

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
)

// benchProc is one process the benchmark runs: a service binary or nats-server.
type benchProc struct {
	name, bin, log string
	args, env      []string
	addr           string // a service's HTTP address (healthz, readyz, pprof)

	cmd  *exec.Cmd
	done chan struct{}
}

func (p *benchProc) start() error {
	f, err := os.OpenFile(p.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(p.bin, p.args...)
	cmd.Env = append(os.Environ(), p.env...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", p.name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); f.Close(); close(done) }()
	p.cmd, p.done = cmd, done
	return nil
}

// stop sends SIGTERM and waits for the exit (SIGKILL after 30 s).
func (p *benchProc) stop() {
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	p.cmd = nil
}

func (p *benchProc) pid() int {
	if p.cmd == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

func (p *benchProc) ready() bool { return p.addr != "" && readyAt("http://"+p.addr) }

// natsConfig writes a nats-server configuration: JetStream in storeDir, with
// sync_interval: always (as deploy/nats/nats.conf) when syncAlways, else
// JetStream's default (a flush every two minutes).
func natsConfig(path string, port, monitorPort int, storeDir string, syncAlways bool) error {
	sync := ""
	if syncAlways {
		sync = "\n  sync_interval: always"
	}
	conf := fmt.Sprintf("listen: 127.0.0.1:%d\nhttp: 127.0.0.1:%d\njetstream {\n  store_dir: %q%s\n}\n", port, monitorPort, storeDir, sync)
	return os.WriteFile(path, []byte(conf), 0o644)
}

// waitNATS waits until a client can connect to url.
func waitNATS(url string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		nc, err := nats.Connect(url, nats.Timeout(time.Second))
		if err == nil {
			nc.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nats-server at %s not up after %s: %w", url, within, err)
		}
		time.Sleep(100 * time.Millisecond) // the poll interval of this wait on a condition (it returns an error, not t.Fatal)
	}
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat times (100 on every
// Linux this runs on).
const clockTicks = 100

// procTimes reads /proc/<pid>/stat: the CPU time of the process itself
// (utime+stime), of its reaped children (cutime+cstime), and its parent pid.
func procTimes(pid int) (self, children time.Duration, ppid int, ok bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, 0, false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, 0, false
	}
	f := strings.Fields(s[i+1:]) // f[0] is field 3 (state)
	if len(f) < 15 {
		return 0, 0, 0, false
	}
	n := func(k int) int64 { v, _ := strconv.ParseInt(f[k], 10, 64); return v }
	tick := time.Second / clockTicks
	return time.Duration(n(11)+n(12)) * tick, time.Duration(n(13)+n(14)) * tick, int(n(1)), true
}

// treeCPU is the CPU time of pid, of its live children and of those it reaped
// (Postgres: the postmaster, its backends and background processes).
func treeCPU(pid int) time.Duration {
	self, reaped, _, ok := procTimes(pid)
	if !ok {
		return 0
	}
	total := self + reaped
	for _, c := range childPIDs(pid) {
		s, _, _, _ := procTimes(c)
		total += s
	}
	return total
}

func childPIDs(parent int) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if _, _, ppid, ok := procTimes(pid); ok && ppid == parent {
			out = append(out, pid)
		}
	}
	return out
}

// procStatusKB reads one "<key>: N kB" line of /proc/<pid>/status.
func procStatusKB(pid int, key string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, key+":"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb
		}
	}
	return 0
}

// resetPeakRSS restarts VmHWM at the current resident set (clear_refs 5,
// Linux ≥ 4.0); a process the benchmark may not write to keeps its peak.
func resetPeakRSS(pid int) {
	_ = os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0o200)
}

// pgCounters are pg_stat_database's counters of the pipeline's database.
type pgCounters struct {
	Commits, Rollbacks, Returned, Fetched, Inserted, Updated, Deleted int64
	Sessions                                                          int64 // connections opened
}

func (a pgCounters) sub(b pgCounters) pgCounters {
	return pgCounters{a.Commits - b.Commits, a.Rollbacks - b.Rollbacks, a.Returned - b.Returned, a.Fetched - b.Fetched,
		a.Inserted - b.Inserted, a.Updated - b.Updated, a.Deleted - b.Deleted, a.Sessions - b.Sessions}
}

func readPG(ctx context.Context, pool *pgxpool.Pool) (pgCounters, error) {
	var c pgCounters
	err := pool.QueryRow(ctx, `SELECT xact_commit, xact_rollback, tup_returned, tup_fetched, tup_inserted, tup_updated, tup_deleted,
			sessions
		FROM pg_stat_database WHERE datname = current_database()`).
		Scan(&c.Commits, &c.Rollbacks, &c.Returned, &c.Fetched, &c.Inserted, &c.Updated, &c.Deleted, &c.Sessions)
	return c, err
}

// postmasterPID reads the first line of the cluster's postmaster.pid.
func postmasterPID(ctx context.Context, pool *pgxpool.Pool) (int, error) {
	var dir string
	if err := pool.QueryRow(ctx, `SHOW data_directory`).Scan(&dir); err != nil {
		return 0, err
	}
	b, err := os.ReadFile(filepath.Join(dir, "postmaster.pid"))
	if err != nil {
		return 0, err
	}
	first, _, _ := strings.Cut(string(b), "\n")
	return strconv.Atoi(strings.TrimSpace(first))
}

// natsCounters are the server's message counters (varz) and JetStream API
// calls (jsz).
type natsCounters struct {
	InMsgs, OutMsgs, InBytes, OutBytes, APICalls int64
	Stored, StoredBytes                          int64 // messages and bytes JetStream holds
}

func (a natsCounters) sub(b natsCounters) natsCounters {
	return natsCounters{a.InMsgs - b.InMsgs, a.OutMsgs - b.OutMsgs, a.InBytes - b.InBytes, a.OutBytes - b.OutBytes, a.APICalls - b.APICalls,
		a.Stored - b.Stored, a.StoredBytes - b.StoredBytes}
}

func readNATS(monitorURL string) (natsCounters, error) {
	var v struct {
		InMsgs   int64 `json:"in_msgs"`
		OutMsgs  int64 `json:"out_msgs"`
		InBytes  int64 `json:"in_bytes"`
		OutBytes int64 `json:"out_bytes"`
	}
	var j struct {
		API struct {
			Total int64 `json:"total"`
		} `json:"api"`
		Messages int64 `json:"messages"`
		Bytes    int64 `json:"bytes"`
	}
	if err := getJSON(monitorURL+"/varz", &v); err != nil {
		return natsCounters{}, err
	}
	if err := getJSON(monitorURL+"/jsz", &j); err != nil {
		return natsCounters{}, err
	}
	return natsCounters{v.InMsgs, v.OutMsgs, v.InBytes, v.OutBytes, j.API.Total, j.Messages, j.Bytes}, nil
}

func getJSON(url string, v any) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: HTTP %d", url, resp.StatusCode)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}
