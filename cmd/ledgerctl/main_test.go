package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
)

// TestMain fails the run when a goroutine outlives the tests.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const token = "cli-test-token"

// fakeAdmin is an AdminService that checks the token and records requests.
type fakeAdmin struct {
	ledgerv1.UnimplementedAdminServiceServer
	mu     sync.Mutex
	last   any
	purges []*ledgerv1.PurgeDeadLettersRequest
}

func (f *fakeAdmin) auth(ctx context.Context, req any) error {
	f.mu.Lock()
	f.last = req
	f.mu.Unlock()
	md, _ := metadata.FromIncomingContext(ctx)
	if v := md.Get("authorization"); len(v) != 1 || v[0] != "Bearer "+token {
		return status.Error(codes.Unauthenticated, "operator credential required")
	}
	return nil
}

var created = timestamppb.New(time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC))

func (f *fakeAdmin) CreateTenant(ctx context.Context, r *ledgerv1.CreateTenantRequest) (*ledgerv1.CreateTenantResponse, error) {
	if err := f.auth(ctx, r); err != nil {
		return nil, err
	}
	id := r.GetTenantId()
	if id == "" {
		id = "0b9d5a8e-0000-4000-8000-000000000001"
	}
	return &ledgerv1.CreateTenantResponse{Tenant: &ledgerv1.Tenant{TenantId: id, Name: r.GetName(),
		MagentoConnectionStatus: "pending", SageStatus: "not_connected", CreatedAt: created}}, nil
}

func (f *fakeAdmin) ListTenants(ctx context.Context, r *ledgerv1.ListTenantsRequest) (*ledgerv1.ListTenantsResponse, error) {
	if err := f.auth(ctx, r); err != nil {
		return nil, err
	}
	return &ledgerv1.ListTenantsResponse{Tenants: []*ledgerv1.Tenant{
		{TenantId: "acme", Name: "Acme Ltd", MagentoConnectionStatus: "active", MagentoBaseUrl: "https://shop.acme.test",
			SageStatus: "active", SageBusinessId: "biz1", CreatedAt: created},
		{TenantId: "beta-shop", Name: "Beta", MagentoConnectionStatus: "pending", SageStatus: "not_connected", CreatedAt: created},
	}}, nil
}

func (f *fakeAdmin) ConnectMagento(ctx context.Context, r *ledgerv1.ConnectMagentoRequest) (*ledgerv1.ConnectMagentoResponse, error) {
	if err := f.auth(ctx, r); err != nil {
		return nil, err
	}
	return nil, status.Error(codes.FailedPrecondition, "the shop refused the pairing code: it is wrong, expired (codes last 30 minutes) or already used")
}

func (f *fakeAdmin) DisconnectMagento(ctx context.Context, r *ledgerv1.DisconnectMagentoRequest) (*ledgerv1.DisconnectMagentoResponse, error) {
	if err := f.auth(ctx, r); err != nil {
		return nil, err
	}
	return &ledgerv1.DisconnectMagentoResponse{Tenant: &ledgerv1.Tenant{TenantId: r.GetTenantId(), MagentoConnectionStatus: "revoked"}}, nil
}

func (f *fakeAdmin) StartSageConnect(ctx context.Context, r *ledgerv1.StartSageConnectRequest) (*ledgerv1.StartSageConnectResponse, error) {
	if err := f.auth(ctx, r); err != nil {
		return nil, err
	}
	return &ledgerv1.StartSageConnectResponse{AuthorizeUrl: "https://sage.test/oauth2/auth/central?state=abc"}, nil
}

func (f *fakeAdmin) ListRuns(ctx context.Context, r *ledgerv1.ListRunsRequest) (*ledgerv1.ListRunsResponse, error) {
	if err := f.auth(ctx, r); err != nil {
		return nil, err
	}
	if r.GetFilter().GetTenantId() == "paged" { // three pages of one run: p2 and p3 follow
		next := map[string]string{"": "p2", "p2": "p3", "p3": ""}[r.GetPageToken()]
		id := "run-" + r.GetPageToken()
		return &ledgerv1.ListRunsResponse{Runs: []*ledgerv1.Run{{SyncRunId: id, TenantId: "paged", Status: "failed"}}, NextPageToken: next}, nil
	}
	return &ledgerv1.ListRunsResponse{Runs: []*ledgerv1.Run{{SyncRunId: "r1", TenantId: "acme", Event: "invoice.created",
		EntityType: "invoice", MagentoEntityId: 42, Status: "failed", ErrorClass: "validation", ErrorCode: "payment_method_not_mapped",
		LastError: "map checkmo\tto a bank account", Attempts: 3, CreatedAt: created}}}, nil
}

func startFake(t *testing.T) (*fakeAdmin, string) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeAdmin{}
	s := grpc.NewServer()
	ledgerv1.RegisterAdminServiceServer(s, f)
	go func() { _ = s.Serve(lis) }()
	t.Cleanup(s.Stop)
	return f, lis.Addr().String()
}

// ledgerctl runs the CLI and returns stdout, stderr and the exit code.
func ledgerctl(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	return ledgerctlIn(t, strings.NewReader(""), args...)
}

// ledgerctlIn runs the CLI with stdin as its standard input.
func ledgerctlIn(t *testing.T, stdin io.Reader, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := report(runIO(t.Context(), args, stdin, &out, &errb), &errb)
	return out.String(), errb.String(), code
}

func TestUsageErrors(t *testing.T) {
	t.Setenv("LEDGER_ADMIN_ADDR", "")
	t.Setenv("LEDGER_ADMIN_TOKEN", "")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "no command given"},
		{[]string{"--bogus"}, "unknown flag: --bogus"},
		{[]string{"widgets", "list"}, `unknown command group "widgets"`},
		{[]string{"tenants"}, "tenants: which command?"},
		{[]string{"tenants", "delete"}, `unknown command "tenants" "delete"`},
		{[]string{"tenants", "create"}, "--name is required"},
		{[]string{"tenants", "create", "Acme"}, `unexpected argument "Acme"`},
		{[]string{"tenants", "show"}, "give exactly one tenant id"},
		{[]string{"magento", "connect", "--tenant", "acme"}, "--shop, --code are required"},
		{[]string{"magento", "disconnect"}, "--tenant is required"},
		{[]string{"sage", "connect"}, "--tenant is required"},
		{[]string{"runs", "list", "--limit", "0"}, "--limit 0: use 1-1000"},
		{[]string{"runs", "list", "--status", "done"}, `--status "done"`},
		{[]string{"runs", "list", "--limit", "many"}, `invalid argument "many" for "--limit" flag`},
	} {
		stdout, stderr, code := ledgerctl(t, tc.args...)
		if code != exitUsage || !strings.Contains(stderr, tc.want) || stdout != "" {
			t.Errorf("ledgerctl %v: exit %d, stderr %q; want exit 2 containing %q", tc.args, code, stderr, tc.want)
		}
	}
	// A setting that does not parse is refused, not silently ignored.
	t.Setenv("LEDGER_ADMIN_TLS", "yes please")
	if _, stderr, code := ledgerctl(t, "tenants", "list"); code != exitUsage || !strings.Contains(stderr, "LEDGER_ADMIN_TLS") {
		t.Errorf("LEDGER_ADMIN_TLS=\"yes please\": exit %d, stderr %q; want exit 2 naming the variable", code, stderr)
	}
}

func TestHelpExitsZero(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"help"}, {"magento", "connect", "--help"}} {
		stdout, _, code := ledgerctl(t, args...)
		if code != exitOK || !strings.Contains(stdout, "Usage") {
			t.Errorf("ledgerctl %v: exit %d\n%s", args, code, stdout)
		}
	}
}

func TestTenantsListTable(t *testing.T) {
	_, addr := startFake(t)
	stdout, stderr, code := ledgerctl(t, "--addr", addr, "--token", token, "tenants", "list")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	lines := strings.Split(strings.TrimRight(stdout, "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("want a header and two rows:\n%s", stdout)
	}
	// Columns line up: SHOP URL starts at the same offset on every line.
	col := strings.Index(lines[0], "SHOP URL")
	if col < 0 || !strings.HasPrefix(lines[1][col:], "https://shop.acme.test") || !strings.HasPrefix(lines[2][col:], "-") {
		t.Fatalf("columns not aligned:\n%s", stdout)
	}
	if !strings.Contains(lines[2], "not_connected") {
		t.Fatalf("row 2: %q", lines[2])
	}
}

func TestFlagsAfterCommandAndJSON(t *testing.T) {
	f, addr := startFake(t)
	t.Setenv("LEDGER_ADMIN_TOKEN", token)
	stdout, stderr, code := ledgerctl(t, "tenants", "create", "--name", "Acme Ltd", "--id", "acme", "--addr", addr, "--json")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var got struct {
		Tenant struct {
			TenantID string `json:"tenant_id"`
			Name     string `json:"name"`
		} `json:"tenant"`
	}
	if err := json.Unmarshal([]byte(stdout), &got); err != nil || got.Tenant.TenantID != "acme" || got.Tenant.Name != "Acme Ltd" {
		t.Fatalf("json output %q: %v", stdout, err)
	}
	f.mu.Lock()
	req := f.last.(*ledgerv1.CreateTenantRequest)
	f.mu.Unlock()
	if req.GetTenantId() != "acme" || req.GetName() != "Acme Ltd" {
		t.Fatalf("request %v", req)
	}
}

func TestServiceErrorsExitOne(t *testing.T) {
	t.Setenv("LEDGER_ADMIN_TOKEN", "")
	_, addr := startFake(t)
	_, stderr, code := ledgerctl(t, "--addr", addr, "--token", token, "magento", "connect", "--tenant", "acme", "--shop", "https://shop.test", "--code", "c0de")
	if code != exitFailure || !strings.Contains(stderr, "the shop refused the pairing code") {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	_, stderr, code = ledgerctl(t, "--addr", addr, "tenants", "list")
	if code != exitFailure || !strings.Contains(stderr, "pass --token or set LEDGER_ADMIN_TOKEN") {
		t.Fatalf("no token: exit %d: %s", code, stderr)
	}
	_, stderr, code = ledgerctl(t, "--addr", addr, "--token", "wrong", "tenants", "list")
	if code != exitFailure || !strings.Contains(stderr, "the token was refused") {
		t.Fatalf("wrong token: exit %d: %s", code, stderr)
	}
}

func TestCommandsPrintNextSteps(t *testing.T) {
	_, addr := startFake(t)
	stdout, _, code := ledgerctl(t, "--addr", addr, "--token", token, "magento", "disconnect", "--tenant", "acme")
	if code != exitOK || !strings.Contains(stdout, "revoked") || !strings.Contains(stdout, "entity_xref") {
		t.Fatalf("disconnect: %d\n%s", code, stdout)
	}
	stdout, _, code = ledgerctl(t, "--addr", addr, "--token", token, "sage", "connect", "--tenant", "acme")
	if code != exitOK || !strings.Contains(stdout, "https://sage.test/oauth2/auth/central?state=abc") {
		t.Fatalf("sage connect: %d\n%s", code, stdout)
	}
	stdout, _, code = ledgerctl(t, "--addr", addr, "--token", token, "runs", "list", "--tenant", "acme", "--status", "failed")
	if code != exitOK || !strings.Contains(stdout, "validation/payment_method_not_mapped") || !strings.Contains(stdout, "invoice 42") ||
		strings.Count(stdout, "\n") != 2 {
		t.Fatalf("runs list: %d\n%s", code, stdout)
	}
}

func TestUnreachableService(t *testing.T) {
	lis, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := lis.Addr().String()
	lis.Close()
	_, stderr, code := ledgerctl(t, "--addr", addr, "--token", token, "--timeout", "5s", "tenants", "list")
	if code != exitFailure || !strings.Contains(stderr, "cannot reach the admin service at "+addr) {
		t.Fatalf("exit %d: %s", code, stderr)
	}
}
