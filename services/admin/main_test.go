package admin_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/test/bufconn"

	"github.com/ledgersync/ledger/libs/devstack/devtest"
	"github.com/ledgersync/ledger/libs/sage"
	"github.com/ledgersync/ledger/libs/secrets"
	"github.com/ledgersync/ledger/libs/store"
	"github.com/ledgersync/ledger/libs/telemetry"
	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
	"github.com/ledgersync/ledger/services/admin"
	sagesim "github.com/ledgersync/ledger/sim/sage"
)

func TestMain(m *testing.M) { devtest.Main(m) }

const (
	testToken     = "test-admin-token-0123456789"
	testLedgerURL = "https://ledger.example.test"
)

// harness is an admin service over a fresh database, the Sage simulator and a
// bufconn gRPC server.
type harness struct {
	st      *store.Store
	svc     *admin.Service
	conn    *grpc.ClientConn
	client  ledgerv1.AdminServiceClient
	sage    *sagesim.Server
	http    *httptest.Server // the admin HTTP handler
	browser *http.Client     // never follows redirects
}

func newHarness(t *testing.T, opts ...func(*admin.Config)) *harness {
	t.Helper()
	return newHarnessWith(t, nil, opts...)
}

// newHarnessWith is newHarness with service options (e.g. WithJetStream).
func newHarnessWith(t *testing.T, svcOpts []admin.Option, opts ...func(*admin.Config)) *harness {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sealer, _ := secrets.NewRandomKeyRing()
	st, err := store.Open(ctx, devtest.Database(t), sealer)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)

	// Tracing as the runtime (libs/process) sets it up: ids, no export.
	shutdown, err := telemetry.Setup(ctx, "admin")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = shutdown(context.Background()) })

	h := &harness{st: st, sage: sagesim.New(sagesim.Config{})}
	sageSrv := httptest.NewServer(h.sage.Handler())
	t.Cleanup(sageSrv.Close)

	var handler http.Handler = http.NotFoundHandler()
	h.http = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	t.Cleanup(h.http.Close)

	cfg := admin.Config{
		AdminToken:       secrets.String(testToken),
		PublicURL:        h.http.URL,
		LedgerBaseURL:    testLedgerURL,
		Sage:             sage.At(sageSrv.URL),
		SageClientID:     sagesim.DefaultClientID,
		SageClientSecret: secrets.String(sagesim.DefaultClientSecret),
		HTTPClient:       &http.Client{Timeout: 10 * time.Second},
	}
	for _, o := range opts {
		o(&cfg)
	}
	h.svc, err = admin.New(cfg, st, telemetry.Discard(), svcOpts...)
	if err != nil {
		t.Fatal(err)
	}
	handler = h.svc.HTTPHandler()
	h.browser = &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	lis := bufconn.Listen(1 << 20)
	gs := h.svc.GRPCServer()
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	h.conn, err = grpc.NewClient("passthrough:///admin",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.conn.Close() })
	h.client = ledgerv1.NewAdminServiceClient(h.conn)
	return h
}

// ctx returns a call context carrying the operator token.
func (h *harness) ctx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+testToken)
}

func (h *harness) createTenant(t *testing.T, id string) *ledgerv1.Tenant {
	t.Helper()
	resp, err := h.client.CreateTenant(h.ctx(t), &ledgerv1.CreateTenantRequest{TenantId: id, Name: "Shop " + id})
	if err != nil {
		t.Fatalf("CreateTenant: %v", err)
	}
	return resp.GetTenant()
}
