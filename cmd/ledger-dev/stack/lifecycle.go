package stack

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/ledgersync/ledger/libs/secrets"
	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
	"github.com/ledgersync/ledger/services/admin"
)

// OperatorAdmin starts one more admin service over this stack's store and
// JetStream, with the bus attached (admin.WithJetStream), and dials it as an
// operator. Row retries, backfills and dead-letter replays publish, so they
// need the bus; the stack's own admin is built without it (services.go) until
// it passes admin.WithJetStream(s.JS) too. Call the returned func to stop it.
func (s *Stack) OperatorAdmin(opts ...admin.Option) (ledgerv1.AdminServiceClient, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, fmt.Errorf("operator admin: listen: %w", err)
	}
	ad, err := admin.New(admin.Config{
		GRPCAddr: ln.Addr().String(), HTTPAddr: strings.TrimPrefix(s.AdminHTTPURL, "http://"), PublicURL: s.AdminHTTPURL,
		AdminToken: secrets.String(s.AdminToken), Env: "dev", LedgerBaseURL: s.IngestURL,
		Sage: s.SageEndpoints(), SageClientID: SageClientID, SageClientSecret: secrets.String(SageClientSecret),
	}.WithDefaults(), s.Store, s.Log.With("service", "admin-operator"), append([]admin.Option{admin.WithJetStream(s.JS)}, opts...)...)
	if err != nil {
		ln.Close()
		return nil, nil, err
	}
	gs := ad.GRPCServer()
	served := make(chan struct{})
	go func() {
		defer close(served)
		if err := gs.Serve(ln); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			s.report(fmt.Errorf("operator admin grpc: %w", err))
		}
	}()
	conn, err := grpc.NewClient(ln.Addr().String(),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(bearer(s.AdminToken)))
	if err != nil {
		gs.Stop()
		return nil, nil, err
	}
	stop := func() {
		_ = conn.Close()
		ad.Shutdown()
		gs.Stop()
		<-served
	}
	return ledgerv1.NewAdminServiceClient(conn), stop, nil
}

// InsertSucceededRuns writes n succeeded runs of one entity type straight into
// sync_runs (one INSERT … SELECT generate_series statement: 100,000 rows take
// about a second), as if they had synced before the sync-state mirror existed:
// Magento ids firstID…firstID+n-1, Sage ids "sage-<id>", finished one
// millisecond apart from finishedFrom. Nothing is published and no callback
// mark is written.
func (s *Stack) InsertSucceededRuns(ctx context.Context, tenantID, entityType string, firstID int64, n int, finishedFrom time.Time) error {
	event := entityType + ".created"
	_, err := s.Store.Pool().Exec(ctx, `INSERT INTO sync_runs (sync_run_id, tenant_id, event, idempotency_key, entity_type,
			magento_entity_id, status, sage_id, attempts, created_at, started_at, finished_at)
		SELECT gen_random_uuid(), $1, $2, $2 || ':' || id, $3, id, 'succeeded', 'sage-' || id, 1,
			$4::timestamptz, $4::timestamptz, $4::timestamptz + (id - $5) * interval '1 millisecond'
		FROM generate_series($5::bigint, $5::bigint + $6 - 1) AS id`,
		tenantID, event, entityType, finishedFrom, firstID, n)
	if err != nil {
		return fmt.Errorf("inserting %d succeeded %s runs: %w", n, entityType, err)
	}
	return nil
}
