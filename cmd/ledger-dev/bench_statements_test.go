package main

import (
	"context"
	"path/filepath"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ledgersync/ledger/libs/devstack"
)

// The benchmark's Postgres loads pg_stat_statements where the server has it
// (Debian's postgresql package does), so each phase can say which statements
// its commits and rows come from: the profile the efficiency work starts from.

// statementsLibrary is where Debian installs the extension's library.
const statementsLibrary = "/usr/lib/postgresql/*/lib/pg_stat_statements.so"

// benchPostgres starts the benchmark's own throwaway cluster, with
// pg_stat_statements preloaded when the server has it.
func benchPostgres(ctx context.Context) (pg *devstack.Postgres, withStatements bool, err error) {
	var opt devstack.PostgresOptions
	if m, _ := filepath.Glob(statementsLibrary); len(m) > 0 {
		opt.Settings = []string{"shared_preload_libraries=pg_stat_statements", "pg_stat_statements.track=all"}
		withStatements = true
	}
	pg, err = devstack.StartPostgres(ctx, opt)
	return pg, withStatements, err
}

// statementCount is one statement's calls and rows over a phase.
type statementCount struct {
	Query       string
	Calls, Rows int64
	ExecMS      float64 // time spent executing it, in all
	BlocksHit   int64   // shared buffer blocks read (from the cache or not)
}

// benchQueries marks the benchmark's own statements, left out of the profile.
var benchQueries = []string{"pg_stat_database", "pg_stat_statements", "data_directory"}

func resetStatements(ctx context.Context, pool *pgxpool.Pool) error {
	_, err := pool.Exec(ctx, `SELECT pg_stat_statements_reset()`)
	return err
}

// readStatements returns the phase's statements in this database, most
// called first.
func readStatements(ctx context.Context, pool *pgxpool.Pool) ([]statementCount, error) {
	rows, err := pool.Query(ctx, `SELECT query, sum(calls)::bigint, sum(rows)::bigint,
			sum(total_exec_time)::float8, sum(shared_blks_hit + shared_blks_read)::bigint
		FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
		WHERE d.datname = current_database()
		GROUP BY query ORDER BY 2 DESC`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []statementCount
	for rows.Next() {
		var c statementCount
		if err := rows.Scan(&c.Query, &c.Calls, &c.Rows, &c.ExecMS, &c.BlocksHit); err != nil {
			return nil, err
		}
		if !containsAny(c.Query, benchQueries) {
			out = append(out, c)
		}
	}
	return out, rows.Err()
}

func containsAny(s string, subs []string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// printStatements writes the statements called at least once per hundred
// events, or taking at least 2 % of the statements' execution time or buffer
// blocks (a rare statement that reads much), with
// calls, rows, execution time and buffer blocks per event; each query on one
// line, cut at 100 characters.
func (b *benchEnv) printStatements(st []statementCount, events int) {
	if len(st) == 0 {
		return
	}
	n := float64(max(events, 1))
	var calls, blocks int64
	var execMS float64
	for _, c := range st {
		calls += c.Calls
		execMS += c.ExecMS
		blocks += c.BlocksHit
	}
	b.printf("  Postgres statements per event (pg_stat_statements; %.1f statements, %.2f ms executing; calls, rows, ms, blocks, statement):\n",
		float64(calls)/n, execMS/n)
	for _, c := range st {
		if float64(c.Calls)/n < 0.01 && c.ExecMS < 0.02*execMS && float64(c.BlocksHit) < 0.02*float64(blocks) {
			continue
		}
		q := strings.Join(strings.Fields(c.Query), " ")
		if len(q) > 100 {
			q = q[:100] + "…"
		}
		b.printf("    %5.2f %6.2f %6.3f %6.1f  %s\n", float64(c.Calls)/n, float64(c.Rows)/n, c.ExecMS/n, float64(c.BlocksHit)/n, q)
	}
}
