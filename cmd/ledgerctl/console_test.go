package main

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
)

// The commands issue 9 added (oauth status, dlq purge, runs list and retry
// by filter, the shop health of tenants show), --output, and completion.

func (f *fakeAdmin) GetTenant(ctx context.Context, r *ledgerv1.GetTenantRequest) (*ledgerv1.GetTenantResponse, error) {
	if err := f.auth(ctx, r); err != nil {
		return nil, err
	}
	if r.GetTenantId() != "acme" {
		return nil, status.Errorf(codes.NotFound, "tenant %q not found", r.GetTenantId())
	}
	return &ledgerv1.GetTenantResponse{
		Tenant: &ledgerv1.Tenant{TenantId: "acme", Name: "Acme Ltd", MagentoConnectionStatus: "active", SageStatus: "active", CreatedAt: created,
			ShopHealth: &ledgerv1.ShopHealth{Verdict: "auth_drift", Message: "the shop's webhooks are refused as unauthorized: re-pair it",
				LastWebhookAt: created, UnauthorizedRecent: 5, LastUnauthorizedAt: created}},
		Counts: &ledgerv1.RunCounts{Pending: 1, Succeeded: 20, Failed: 2, DeadLetters: 7},
	}, nil
}

func (f *fakeAdmin) GetOAuthStatus(ctx context.Context, r *ledgerv1.GetOAuthStatusRequest) (*ledgerv1.GetOAuthStatusResponse, error) {
	if err := f.auth(ctx, r); err != nil {
		return nil, err
	}
	if r.GetRevealToken() {
		return nil, status.Error(codes.PermissionDenied, "reveal_token is refused: the admin service runs with LEDGER_ENV=production; tokens are shown only in dev")
	}
	return &ledgerv1.GetOAuthStatusResponse{Status: "active", BusinessId: "biz1", Region: "GB", Scopes: []string{"full_access"},
		AccessExpiresAt: timestamppb.New(time.Now().Add(42 * time.Minute)), RefreshedAt: created}, nil
}

// purgeMatching is how many dead letters the fake's filter matches; a purge
// whose expected_count differs is refused as the service refuses it.
const purgeMatching = 4

func (f *fakeAdmin) PurgeDeadLetters(ctx context.Context, r *ledgerv1.PurgeDeadLettersRequest) (*ledgerv1.PurgeDeadLettersResponse, error) {
	if err := f.auth(ctx, r); err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.purges = append(f.purges, r)
	f.mu.Unlock()
	n := int64(purgeMatching)
	if r.GetFilter().GetTenantId() == "none" {
		n = 0
	}
	if r.GetFilter().GetTenantId() == "moving" && !r.GetDryRun() {
		n++ // a dead letter arrived after the count
	}
	if r.GetDryRun() {
		return &ledgerv1.PurgeDeadLettersResponse{Matched: n, Message: "dry run"}, nil
	}
	if r.GetExpectedCount() > 0 && r.GetExpectedCount() != n {
		return nil, status.Errorf(codes.FailedPrecondition, "%d dead letters match now, not the %d confirmed: nothing was purged", n, r.GetExpectedCount())
	}
	if r.GetFilter().GetTenantId() == "half" {
		return &ledgerv1.PurgeDeadLettersResponse{Matched: n, Purged: 2, Failed: 2, Message: "purged 2 of 4 dead letters; 2 failed and stay"}, nil
	}
	return &ledgerv1.PurgeDeadLettersResponse{Matched: n, Purged: n, Message: "purged 4 of 4 dead letters"}, nil
}

func (f *fakeAdmin) realPurges() []*ledgerv1.PurgeDeadLettersRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*ledgerv1.PurgeDeadLettersRequest
	for _, r := range f.purges {
		if !r.GetDryRun() {
			out = append(out, r)
		}
	}
	return out
}

func TestRunsListFiltersAndPaging(t *testing.T) {
	f, addr := startFake(t)
	t.Setenv("LEDGER_ADMIN_TOKEN", token)
	stdout, stderr, code := ledgerctl(t, "--addr", addr, "runs", "list", "--tenant", "acme", "--status", "failed", "--entity", "invoice",
		"--event", "invoice.created", "--class", "validation", "--code", "payment_method_not_mapped", "--skip-reason", "zero_value_invoice",
		"--magento-id", "42", "--increment-id", "000000042", "--since", "2026-05-01", "--until", "2026-05-02T00:00:00Z",
		"--limit", "20", "--page-token", "tok")
	if code != exitOK || !strings.Contains(stdout, "validation/payment_method_not_mapped") {
		t.Fatalf("runs list: %d %s\n%s", code, stderr, stdout)
	}
	req := f.lastRequest().(*ledgerv1.ListRunsRequest)
	want := &ledgerv1.RunFilter{TenantId: "acme", Status: "failed", EntityType: "invoice", Event: "invoice.created", ErrorClass: "validation",
		ErrorCode: "payment_method_not_mapped", SkipReason: "zero_value_invoice", MagentoEntityId: 42, IncrementId: "000000042",
		Since: timestamppb.New(time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)), Until: timestamppb.New(time.Date(2026, 5, 2, 0, 0, 0, 0, time.UTC))}
	if got := protojson.Format(req.GetFilter()); got != protojson.Format(want) || req.GetLimit() != 20 || req.GetPageToken() != "tok" ||
		req.GetTenantId() != "acme" || req.GetStatus() != "failed" {
		t.Fatalf("request %v\nwant filter %v", req, want)
	}

	// One page: the table ends with the next page's token.
	stdout, _, code = ledgerctl(t, "--addr", addr, "runs", "list", "--tenant", "paged")
	if code != exitOK || !strings.Contains(stdout, "add --page-token p2 for the next page, or --all") {
		t.Fatalf("first page: %d\n%s", code, stdout)
	}
	// --all follows every page into one JSON document.
	stdout, _, code = ledgerctl(t, "--addr", addr, "runs", "list", "--tenant", "paged", "--all", "--output", "json")
	var all struct {
		Runs []struct {
			SyncRunID string `json:"sync_run_id"`
		} `json:"runs"`
		NextPageToken *string `json:"next_page_token"`
	}
	if err := json.Unmarshal([]byte(stdout), &all); code != exitOK || err != nil || len(all.Runs) != 3 || all.Runs[2].SyncRunID != "run-p3" ||
		all.NextPageToken == nil || *all.NextPageToken != "" {
		t.Fatalf("--all: %d %v\n%s", code, err, stdout)
	}
	if req := f.lastRequest().(*ledgerv1.ListRunsRequest); req.GetLimit() != 1000 {
		t.Fatalf("--all asks for pages of %d, want 1000", req.GetLimit())
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"runs", "list", "--magento-id", "-3"}, "--magento-id -3"},
		{[]string{"runs", "list", "--since", "2026-05-02", "--until", "2026-05-01"}, "is not after --since"},
		{[]string{"runs", "list", "--limit", "5000"}, "--limit 5000"},
		{[]string{"runs", "retry", "r1", "--tenant", "acme"}, "give run ids or a filter (--tenant), not both"},
		{[]string{"runs", "retry", "--code", "record_invalid"}, "runs retry: --tenant is required"},
		{[]string{"runs", "retry", "--tenant", "acme", "--limit", "0"}, "--limit 0"},
	} {
		stdout, stderr, code := ledgerctl(t, tc.args...)
		if code != exitUsage || !strings.Contains(stderr, tc.want) || stdout != "" {
			t.Errorf("ledgerctl %v: exit %d, stderr %q; want exit 2 containing %q", tc.args, code, stderr, tc.want)
		}
	}
}

func TestRunsRetryByFilter(t *testing.T) {
	f, addr := startFake(t)
	t.Setenv("LEDGER_ADMIN_TOKEN", token)
	stdout, stderr, code := ledgerctl(t, "--addr", addr, "runs", "retry", "--tenant", "acme", "--code", "payment_method_not_mapped", "--dry-run")
	if code != exitOK || !strings.Contains(stdout, "dry run: 3 runs match and would be retried") {
		t.Fatalf("dry run: %d %s\n%s", code, stderr, stdout)
	}
	req := f.lastRequest().(*ledgerv1.RetryRunsRequest)
	if !req.GetDryRun() || len(req.GetSyncRunIds()) != 0 || req.GetFilter().GetTenantId() != "acme" ||
		req.GetFilter().GetErrorCode() != "payment_method_not_mapped" || req.GetLimit() != 1000 {
		t.Fatalf("request %v", req)
	}
	stdout, _, code = ledgerctl(t, "--addr", addr, "runs", "retry", "--tenant", "acme", "--status", "failed", "--limit", "2")
	if code != exitOK || !strings.Contains(stdout, "f1: retrying") || !strings.Contains(stdout, "f2: retrying") || strings.Contains(stdout, "f3") {
		t.Fatalf("retry by filter: %d\n%s", code, stdout)
	}
	// Ids with --dry-run count them too.
	stdout, _, code = ledgerctl(t, "--addr", addr, "-o", "json", "runs", "retry", "r1", "r2", "--dry-run")
	var got struct {
		Matched string `json:"matched"` // protojson writes int64 as a string
	}
	if err := json.Unmarshal([]byte(stdout), &got); code != exitOK || err != nil || got.Matched != "2" {
		t.Fatalf("ids dry run: %d %v\n%s", code, err, stdout)
	}
}

func TestDLQPurge(t *testing.T) {
	f, addr := startFake(t)
	t.Setenv("LEDGER_ADMIN_TOKEN", token)
	args := []string{"--addr", addr, "dlq", "purge", "--tenant", "acme", "--code", "customer_email_missing"}

	stdout, _, code := ledgerctl(t, append(args, "--dry-run")...)
	if code != exitOK || !strings.Contains(stdout, "dry run: 4 dead letters would be purged") || len(f.realPurges()) != 0 {
		t.Fatalf("dry run: %d\n%s", code, stdout)
	}

	// Declined, or no answer at all: nothing deleted, exit 1.
	for _, answer := range []string{"no\n", "", "4\n"} {
		stdout, stderr, code := ledgerctlIn(t, strings.NewReader(answer), args...)
		if code != exitFailure || !strings.Contains(stderr, "Delete 4 dead letters for good (--tenant acme --code customer_email_missing)?") ||
			!strings.Contains(stderr, "nothing was deleted") || stdout != "" || len(f.realPurges()) != 0 {
			t.Fatalf("answer %q: exit %d\n%s\n%s", answer, code, stdout, stderr)
		}
	}

	// Confirmed: the purge carries the confirmed count.
	stdout, stderr, code := ledgerctlIn(t, strings.NewReader("yes\n"), args...)
	if code != exitOK || !strings.Contains(stdout, "purged 4 of 4 dead letters") {
		t.Fatalf("confirmed: %d\n%s\n%s", code, stdout, stderr)
	}
	purges := f.realPurges()
	if len(purges) != 1 || purges[0].GetExpectedCount() != 4 || purges[0].GetFilter().GetErrorCode() != "customer_email_missing" {
		t.Fatalf("purge requests %v", purges)
	}

	// --yes: no question; JSON is the purge's response, one document.
	stdout, stderr, code = ledgerctl(t, append(args, "--yes", "--output", "json")...)
	var resp ledgerv1.PurgeDeadLettersResponse
	if err := protojson.Unmarshal([]byte(stdout), &resp); code != exitOK || err != nil || resp.GetPurged() != 4 || strings.Contains(stderr, "Delete") {
		t.Fatalf("--yes: %d %v\n%s\n%s", code, err, stdout, stderr)
	}

	// The set changed between the count and the purge: refused, nothing deleted.
	_, stderr, code = ledgerctl(t, "--addr", addr, "dlq", "purge", "--tenant", "moving", "--yes")
	if code != exitFailure || !strings.Contains(stderr, "5 dead letters match now, not the 4 confirmed") {
		t.Fatalf("moving set: %d\n%s", code, stderr)
	}
	// Partly failed: exit 1 saying how many moved.
	_, stderr, code = ledgerctl(t, "--addr", addr, "dlq", "purge", "--tenant", "half", "--yes")
	if code != exitFailure || !strings.Contains(stderr, "2 of 4 dead letters were not purged (they stay in the DLQ); 2 were") {
		t.Fatalf("half: %d\n%s", code, stderr)
	}
	// Nothing matches: no question.
	stdout, _, code = ledgerctl(t, "--addr", addr, "dlq", "purge", "--tenant", "none")
	if code != exitOK || !strings.Contains(stdout, "No dead letters match") {
		t.Fatalf("none: %d\n%s", code, stdout)
	}
}

func TestOAuthStatus(t *testing.T) {
	f, addr := startFake(t)
	t.Setenv("LEDGER_ADMIN_TOKEN", token)
	stdout, stderr, code := ledgerctl(t, "--addr", addr, "oauth", "status", "acme")
	if code != exitOK || !strings.Contains(stdout, "full_access") || !strings.Contains(stdout, "(in 4") || !strings.Contains(stdout, "2026-05-01T09:00:00Z") ||
		strings.Contains(stdout, "Access token") {
		t.Fatalf("oauth status: %d %s\n%s", code, stderr, stdout)
	}
	_, stderr, code = ledgerctl(t, "--addr", addr, "oauth", "status", "acme", "--reveal-token")
	if code != exitFailure || !strings.Contains(stderr, "LEDGER_ENV=production; tokens are shown only in dev") {
		t.Fatalf("reveal refused: %d\n%s", code, stderr)
	}
	if req := f.lastRequest().(*ledgerv1.GetOAuthStatusRequest); !req.GetRevealToken() || req.GetTenantId() != "acme" {
		t.Fatalf("request %v", req)
	}
	if _, stderr, code := ledgerctl(t, "oauth", "status"); code != exitUsage || !strings.Contains(stderr, "give exactly one tenant id") {
		t.Fatalf("no tenant: %d\n%s", code, stderr)
	}
}

func TestTenantsShowHealth(t *testing.T) {
	_, addr := startFake(t)
	t.Setenv("LEDGER_ADMIN_TOKEN", token)
	stdout, stderr, code := ledgerctl(t, "--addr", addr, "tenants", "show", "acme")
	for _, want := range []string{"Shop health:", "auth_drift", "re-pair it", "Last webhook:", "Refused 401s lately: 5 (last 2026-05-01T09:00:00Z)",
		"Dead letters:", "ledgerctl dlq list --tenant acme"} {
		if code != exitOK || !strings.Contains(stdout, want) {
			t.Fatalf("tenants show: %d %s want %q in\n%s", code, stderr, want, stdout)
		}
	}
	_, stderr, code = ledgerctl(t, "--addr", addr, "tenants", "show", "nobody")
	if code != exitFailure || !strings.Contains(stderr, `tenant "nobody" not found`) {
		t.Fatalf("unknown tenant: %d\n%s", code, stderr)
	}
}

// --output json, -o json, --json and -json are the same; a bad format or a
// contradiction is a usage error.
func TestOutputFlag(t *testing.T) {
	_, addr := startFake(t)
	t.Setenv("LEDGER_ADMIN_TOKEN", token)
	var first string
	for _, args := range [][]string{
		{"--output", "json", "tenants", "list"},
		{"tenants", "list", "-o", "json"},
		{"tenants", "list", "--output=json"},
		{"--json", "tenants", "list"},
		{"tenants", "list", "-json"},
	} {
		stdout, stderr, code := ledgerctl(t, append([]string{"--addr", addr}, args...)...)
		var resp ledgerv1.ListTenantsResponse
		if err := protojson.Unmarshal([]byte(stdout), &resp); code != exitOK || err != nil || len(resp.GetTenants()) != 2 {
			t.Fatalf("%v: %d %v %s\n%s", args, code, err, stderr, stdout)
		}
		if first == "" {
			first = stdout
		} else if stdout != first {
			t.Fatalf("%v prints another document:\n%s\nthan\n%s", args, stdout, first)
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"tenants", "list", "--output", "yaml"}, `--output "yaml": use table or json`},
		{[]string{"tenants", "list", "--json", "--output", "table"}, "--json and --output table disagree"},
	} {
		stdout, stderr, code := ledgerctl(t, tc.args...)
		if code != exitUsage || !strings.Contains(stderr, tc.want) || stdout != "" {
			t.Errorf("ledgerctl %v: exit %d, stderr %q; want exit 2 containing %q", tc.args, code, stderr, tc.want)
		}
	}
}

// The completion scripts come from the command tree, and the hidden
// __complete command they call answers commands, flag choices and tenant ids.
func TestCompletion(t *testing.T) {
	_, addr := startFake(t)
	t.Setenv("LEDGER_ADMIN_TOKEN", token)
	for shell, marker := range map[string]string{"bash": "__start_ledgerctl", "zsh": "#compdef ledgerctl", "fish": "complete -c ledgerctl"} {
		stdout, stderr, code := ledgerctl(t, "completion", shell)
		if code != exitOK || !strings.Contains(stdout, marker) {
			t.Errorf("completion %s: %d %s\n%.300s", shell, code, stderr, stdout)
		}
	}
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"__complete", ""}, []string{"tenants", "oauth", "dlq", "completion"}},
		{[]string{"__complete", "dlq", ""}, []string{"list", "replay", "purge"}},
		{[]string{"__complete", "runs", "list", "--status", ""}, []string{"pending", "failed"}},
		{[]string{"__complete", "--addr", addr, "tenants", "show", ""}, []string{"acme\tAcme Ltd", "beta-shop\tBeta"}},
		{[]string{"__complete", "--addr", addr, "dlq", "purge", "--tenant", "ac"}, []string{"acme\tAcme Ltd"}},
	} {
		stdout, stderr, code := ledgerctl(t, tc.args...)
		for _, w := range tc.want {
			lines := strings.Split(stdout, "\n")
			found := slices.ContainsFunc(lines, func(l string) bool { // the candidate, and its description if any
				return l == w || (!strings.Contains(w, "\t") && strings.HasPrefix(l, w+"\t"))
			})
			if code != exitOK || !found {
				t.Errorf("%v: %d %s want %q in\n%s", tc.args, code, stderr, w, stdout)
			}
		}
	}
	if _, stderr, code := ledgerctl(t, "completion", "tcsh"); code != exitUsage || !strings.Contains(stderr, `unknown command "completion" "tcsh"`) {
		t.Fatalf("completion tcsh: %d %s", code, stderr)
	}
}

// Flags written the standard library's way keep working: one dash before a
// long flag, =value, flags before the group, and -- ending the flags.
func TestOneDashLongFlags(t *testing.T) {
	f, addr := startFake(t)
	t.Setenv("LEDGER_ADMIN_TOKEN", "")
	stdout, stderr, code := ledgerctl(t, "-addr", addr, "-token="+token, "runs", "list", "-tenant=acme", "-status", "failed", "-limit", "7")
	if code != exitOK || !strings.Contains(stdout, "invoice 42") {
		t.Fatalf("one-dash flags: %d %s\n%s", code, stderr, stdout)
	}
	if req := f.lastRequest().(*ledgerv1.ListRunsRequest); req.GetFilter().GetTenantId() != "acme" || req.GetFilter().GetStatus() != "failed" || req.GetLimit() != 7 {
		t.Fatalf("request %v", req)
	}
	t.Setenv("LEDGER_ADMIN_TOKEN", token)
	if _, _, code := ledgerctl(t, "--addr", addr, "runs", "retry", "--", "-r1"); code != exitOK {
		t.Fatalf("an id after --: exit %d", code)
	}
	if req := f.lastRequest().(*ledgerv1.RetryRunsRequest); strings.Join(req.GetSyncRunIds(), ",") != "-r1" {
		t.Fatalf("request %v", req)
	}
	if _, stderr, code := ledgerctl(t, "runs", "retry", "r1", "--limit", "5"); code != exitUsage || !strings.Contains(stderr, "--limit caps a retry by filter") {
		t.Fatalf("ids with --limit: %d %s", code, stderr)
	}
}
