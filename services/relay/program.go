package relay

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/nats-io/nats.go"

	"github.com/ledgersync/ledger/libs/process"
)

// Program is the relay as the runtime runs it. It runs next to a shop, outside
// Ledger's infrastructure: it dials the shop's database and NATS itself
// (process.Program.Connect), needs no Ledger database or key ring, and stops
// at start when the outbox table is missing or has the wrong columns.
func Program(cfg Config) process.Program {
	cfg = cfg.WithDefaults()
	var (
		db *sql.DB
		nc *nats.Conn
	)
	return process.Program{Name: "relay", Addr: cfg.Addr, AddrVar: "RELAY_ADDR", Config: cfg,
		Connect: func(ctx context.Context, _ process.Settings) (*process.Infra, error) {
			mc, err := mysql.ParseDSN(cfg.MySQLDSN.Reveal())
			if err != nil {
				return nil, fmt.Errorf("RELAY_MYSQL_DSN: %w", err)
			}
			mc.ParseTime = true
			// The module's session time zone: TIMESTAMP columns hold UTC.
			if mc.Params == nil {
				mc.Params = map[string]string{}
			}
			mc.Params["time_zone"] = "'+00:00'"
			conn, err := mysql.NewConnector(mc)
			if err != nil {
				return nil, fmt.Errorf("RELAY_MYSQL_DSN: %w", err)
			}
			d := sql.OpenDB(conn)
			pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			if err := d.PingContext(pctx); err != nil {
				d.Close()
				return nil, fmt.Errorf("shop database (RELAY_MYSQL_DSN, %s): %w", mc.Addr, err)
			}
			n, err := nats.Connect(cfg.NATSURL.Reveal(), nats.Name("ledger-relay-"+cfg.TenantID),
				nats.CustomInboxPrefix(cfg.Inbox), nats.MaxReconnects(-1), nats.ReconnectBufSize(-1))
			if err != nil {
				d.Close()
				return nil, fmt.Errorf("NATS at RELAY_NATS_URL: %w", err)
			}
			db, nc = d, n
			return &process.Infra{}, nil
		},
		Start: func(ctx context.Context, in *process.Infra) (process.Started, error) {
			stop := func() { nc.Close(); db.Close() }
			if err := CheckSchema(ctx, db); err != nil {
				stop()
				return process.Started{}, err
			}
			r, err := New(cfg, db, nc, in.Log)
			if err != nil {
				stop()
				return process.Started{}, err
			}
			return process.Started{Handler: r.Handler(),
				Components: []process.Component{{Name: "relay", Run: r.Run, Shutdown: cfg.PublishTimeout + 5*time.Second},
					{Name: "shop back channel", Run: r.RunBack, Shutdown: backFetchWait + 35*time.Second}},
				Ready: []process.Check{{Name: "relay", Check: r.Ready}},
				Stop:  stop}, nil
		}}
}
