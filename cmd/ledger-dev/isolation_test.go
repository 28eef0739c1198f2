package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/ledgersync/ledger/cmd/ledger-dev/stack"
	"github.com/ledgersync/ledger/libs/bus"
	"github.com/ledgersync/ledger/libs/magento"
	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
	"github.com/ledgersync/ledger/services/ingest"
)

// TestTenantIsolation checks, with two tenants paired with two shops and two
// Sage businesses, that tenant A's credentials can neither send as, read from
// nor replay into tenant B on any surface a tenant reaches:
//
//   - webhooks: A's token on B's URL, a token A signs with B's name, A's
//     accepted token replayed on B's URL, B's token on A's URL: 401, and
//     nothing is published;
//   - GET /v1/tile/health and GET /v1/status: A's token reads A's counts and
//     runs only, never B's (the tenant comes from the verified token, so a
//     token naming B but signed by A is refused);
//   - POST /v1/tenant/disconnect with a token naming B signed by A: 401, B
//     stays connected;
//   - sync state: the statecallback writes each tenant's results only into its
//     own shop, with the Sage ids of its own business, and an operator's
//     backfill of A touches only A's shop;
//   - AdminService: it has no per-tenant credentials, only the operator's
//     ADMIN_TOKEN (services/admin/auth.go), so what is checked is that its
//     tenant filters never return another tenant's runs or dead letters, and
//     that no tenant credential (api key, Magento JWT) opens it.
func TestTenantIsolation(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end; skipped in -short mode")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	st, a, b := twoTenantRig(t, ctx, "iso-a", "iso-b", io.Discard)
	keyOf := func(r *rigTenant) string {
		tn, err := st.Store.Tenant(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		return tn.Binding.APIKey
	}
	keyA, keyB := keyOf(a), keyOf(b)
	mint := func(key, sub string) string {
		tok, err := magento.MintOutbound(key, sub, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	ops, closeOps, err := st.Admin()
	if err != nil {
		t.Fatal(err)
	}
	defer closeOps()
	runsOf := func(tenant string) []*ledgerv1.Run {
		res, err := ops.ListRuns(ctx, &ledgerv1.ListRunsRequest{TenantId: tenant, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		return res.GetRuns()
	}

	t.Run("webhooks: A cannot send as B", func(t *testing.T) {
		before := outboxCount(t, ctx, st)
		runsB := runsOf(b.ID)
		envelope := `{"magento_entity_id":1,"website_id":1,"store_id":1,"occurred_at":"2026-11-28T00:00:00Z","payload":{}}`
		refused := func(what, tenant, token, key string) {
			t.Helper()
			code, body := postWebhookAs(t, ctx, st.IngestURL, tenant, "invoice.created", key, token, envelope)
			if code != http.StatusUnauthorized {
				t.Errorf("%s: HTTP %d %s, want 401", what, code, body)
			}
		}
		refused("A's token on B's URL", b.ID, mint(keyA, a.ID), "iso:1")
		refused("a token naming B, signed with A's key", b.ID, mint(keyA, b.ID), "iso:2")
		refused("A's token on B's URL with a key B already used", b.ID, mint(keyA, a.ID), "invoice.created:1")
		refused("B's token on A's URL", a.ID, mint(keyB, b.ID), "iso:3")
		// A token A's shop really sent (accepted once) replayed against B.
		captured := mint(keyA, a.ID)
		if code, body := postWebhookAs(t, ctx, st.IngestURL, a.ID, "order.placed", "iso:probe", captured, envelope); code != http.StatusAccepted {
			t.Fatalf("A's own delivery: HTTP %d %s", code, body)
		}
		refused("A's captured token replayed on B's URL", b.ID, captured, "iso:4")
		refused("A's captured token replayed on A's URL", a.ID, captured, "iso:5")
		if after := outboxCount(t, ctx, st); after != before+1 {
			t.Errorf("OUTBOX grew by %d, want 1 (A's own delivery)", after-before)
		}
		if got := runsOf(b.ID); len(got) != len(runsB) {
			t.Errorf("B has %d runs after the refused webhooks, %d before", len(got), len(runsB))
		}
		tn, err := st.Store.Tenant(ctx, b.ID)
		if err != nil || tn.Binding.MagentoConnectionStatus != "active" {
			t.Fatalf("B after A's attempts: %+v %v", tn.Binding, err)
		}
		// A token naming B signed with A's key cannot disconnect B either.
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, st.IngestURL+"/v1/tenant/disconnect", strings.NewReader("{}"))
		req.Header.Set("Authorization", "Bearer "+mint(keyA, b.ID))
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if tn, _ := st.Store.Tenant(ctx, b.ID); res.StatusCode != http.StatusUnauthorized || tn.Binding.MagentoConnectionStatus != "active" {
			t.Fatalf("disconnect of B with A's key: HTTP %d, B is %s", res.StatusCode, tn.Binding.MagentoConnectionStatus)
		}
	})

	t.Run("tile health and status: A reads only A", func(t *testing.T) {
		tile := func(token string) (int, ingest.TileHealth) {
			t.Helper()
			code, body := httpGet(t, ctx, st.IngestURL+"/v1/tile/health", map[string]string{"Authorization": "Bearer " + token})
			var h ingest.TileHealth
			if code == http.StatusOK {
				if err := json.Unmarshal(body, &h); err != nil {
					t.Fatal(err)
				}
			}
			return code, h
		}
		for _, r := range []*rigTenant{a, b} {
			// A's probe delivery of the previous step settles first (skipped),
			// so the counts hold still while they are compared.
			rigEventually(t, ctx, r.ID+" without pending runs", func() string {
				if c, err := st.Store.RunCounts(ctx, r.ID); err != nil || c.Pending != 0 {
					return fmt.Sprintf("counts %+v (%v)", c, err)
				}
				return ""
			})
			want, err := st.Store.RunCounts(ctx, r.ID)
			if err != nil {
				t.Fatal(err)
			}
			code, h := tile(mint(keyOf(r), r.ID))
			if code != http.StatusOK || h.Sync.Failed24h != want.Failed24h || h.Sync.PendingCount != want.Pending {
				t.Errorf("%s's tile: HTTP %d %+v, want its own counts %+v", r.ID, code, h.Sync, want)
			}
		}
		// The counts differ (A has one failed run, B two), so a mix-up shows.
		if _, h := tile(mint(keyA, a.ID)); h.Sync.Failed24h != int64(len(a.Doomed)) {
			t.Errorf("A's tile shows %d failed runs, A has %d", h.Sync.Failed24h, len(a.Doomed))
		}
		if code, _ := tile(mint(keyA, b.ID)); code != http.StatusUnauthorized {
			t.Errorf("tile with a token naming B signed with A's key: HTTP %d, want 401", code)
		}

		statusOf := func(token, entity string, id int64) (int, ingest.EntityStatus) {
			t.Helper()
			code, body := httpGet(t, ctx, fmt.Sprintf("%s/v1/status?entity_type=%s&entity_id=%d", st.IngestURL, entity, id),
				map[string]string{"Authorization": "Bearer " + token})
			var s ingest.EntityStatus
			if code == http.StatusOK {
				if err := json.Unmarshal(body, &s); err != nil {
					t.Fatal(err)
				}
			}
			return code, s
		}
		// Invoice 1 exists in both shops: each tenant gets its own run.
		for _, r := range []*rigTenant{a, b} {
			code, s := statusOf(mint(keyOf(r), r.ID), "invoice", 1)
			if code != http.StatusOK || s.SyncRun == nil {
				t.Fatalf("%s's status of invoice 1: HTTP %d %+v", r.ID, code, s)
			}
			run, err := st.Store.Run(ctx, s.SyncRun.SyncRunID)
			if err != nil || run.TenantID != r.ID {
				t.Errorf("%s's status of invoice 1 is run %s of tenant %q (%v)", r.ID, s.SyncRun.SyncRunID, run.TenantID, err)
			}
		}
		// Credit memos 778 and 779 exist only in B's runs.
		for _, id := range b.Doomed {
			if code, s := statusOf(mint(keyA, a.ID), "creditmemo", id); code != http.StatusOK || s.SyncRun != nil {
				t.Errorf("A's status of B's credit memo %d: HTTP %d, run %+v; want none", id, code, s.SyncRun)
			}
			if code, s := statusOf(mint(keyB, b.ID), "creditmemo", id); code != http.StatusOK || s.SyncRun == nil || s.SyncRun.Status != "failed" {
				t.Errorf("B's status of its credit memo %d: HTTP %d, run %+v", id, code, s.SyncRun)
			}
		}
		if code, _ := statusOf(mint(keyA, b.ID), "creditmemo", b.Doomed[0]); code != http.StatusUnauthorized {
			t.Errorf("status with a token naming B signed with A's key: HTTP %d, want 401", code)
		}
	})

	t.Run("sync state: each tenant's results reach only its own shop", func(t *testing.T) {
		checkShopRows(t, st, a, b)
		checkShopRows(t, st, b, a)
		// An operator's backfill of A pushes to A's shop only.
		beforeB := b.Shop.SyncStates()
		stream, err := ops.BackfillSyncState(ctx, &ledgerv1.BackfillSyncStateRequest{TenantId: a.ID})
		if err != nil {
			t.Fatal(err)
		}
		var last *ledgerv1.BackfillSyncStateResponse
		for {
			m, err := stream.Recv()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("backfill of A: %v", err)
			}
			last = m
		}
		if last == nil || !last.GetDone() || last.GetPushed() == 0 {
			t.Fatalf("backfill of A ended with %v", last)
		}
		if after := b.Shop.SyncStates(); !reflect.DeepEqual(after, beforeB) {
			t.Errorf("A's backfill changed B's shop: %d rows before, %d after", len(beforeB), len(after))
		}
		checkShopRows(t, st, a, b)
	})

	t.Run("AdminService: tenant filters never return another tenant's data", func(t *testing.T) {
		runsA, runsB := runsOf(a.ID), runsOf(b.ID)
		idsB := map[string]bool{}
		for _, r := range runsB {
			idsB[r.GetSyncRunId()] = true
			if r.GetTenantId() != b.ID {
				t.Errorf("ListRuns(%s) returned run %s of %s", b.ID, r.GetSyncRunId(), r.GetTenantId())
			}
		}
		for _, r := range runsA {
			if r.GetTenantId() != a.ID || idsB[r.GetSyncRunId()] {
				t.Errorf("ListRuns(%s) returned run %s of %s", a.ID, r.GetSyncRunId(), r.GetTenantId())
			}
		}
		if len(runsA) == 0 || len(runsB) == 0 || len(runsOf("")) != len(runsA)+len(runsB) {
			t.Errorf("runs: %d of A, %d of B, %d in all", len(runsA), len(runsB), len(runsOf("")))
		}
		for _, s := range []string{"failed", "succeeded"} {
			res, err := ops.ListRuns(ctx, &ledgerv1.ListRunsRequest{TenantId: a.ID, Status: s, Limit: 1000})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range res.GetRuns() {
				if r.GetTenantId() != a.ID {
					t.Errorf("ListRuns(%s, %s) returned a run of %s", a.ID, s, r.GetTenantId())
				}
			}
		}

		dead := func(f *ledgerv1.DeadLetterFilter) []*ledgerv1.DeadLetterSummary {
			t.Helper()
			res, err := ops.ListDeadLetters(ctx, &ledgerv1.ListDeadLettersRequest{Filter: f, Limit: 1000})
			if err != nil {
				t.Fatal(err)
			}
			return res.GetDeadLetters()
		}
		var deadRunsB []string
		for _, d := range dead(&ledgerv1.DeadLetterFilter{TenantId: b.ID}) {
			if d.GetDeadLetter().GetTenantId() != b.ID {
				t.Errorf("dead letters of %s include one of %s", b.ID, d.GetDeadLetter().GetTenantId())
			}
			deadRunsB = append(deadRunsB, d.GetDeadLetter().GetSyncRunId())
		}
		deadA := dead(&ledgerv1.DeadLetterFilter{TenantId: a.ID})
		if len(deadA) != len(a.Doomed) || len(deadRunsB) != len(b.Doomed) {
			t.Errorf("%d dead letters of A (want %d), %d of B (want %d)", len(deadA), len(a.Doomed), len(deadRunsB), len(b.Doomed))
		}
		for _, d := range deadA {
			if d.GetDeadLetter().GetTenantId() != a.ID || slices.Contains(deadRunsB, d.GetDeadLetter().GetSyncRunId()) {
				t.Errorf("dead letters of %s include run %s of %s", a.ID, d.GetDeadLetter().GetSyncRunId(), d.GetDeadLetter().GetTenantId())
			}
		}
		if got := dead(&ledgerv1.DeadLetterFilter{TenantId: a.ID, SyncRunIds: deadRunsB}); len(got) != 0 {
			t.Errorf("filtering by A and B's run ids returned %d dead letters", len(got))
		}
		replay, err := ops.ReplayDeadLetters(ctx, &ledgerv1.ReplayDeadLettersRequest{Filter: &ledgerv1.DeadLetterFilter{TenantId: a.ID}, DryRun: true})
		if err != nil {
			t.Fatal(err)
		}
		var lastReplay *ledgerv1.ReplayDeadLettersResponse
		for {
			m, err := replay.Recv()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			lastReplay = m
		}
		if lastReplay.GetMatched() != int64(len(a.Doomed)) || lastReplay.GetReplayed() != 0 {
			t.Errorf("a dry-run replay of A's dead letters: %v; want %d matched, none replayed", lastReplay, len(a.Doomed))
		}

		// No tenant credential is an operator credential.
		for what, cred := range map[string]string{
			"nothing": "", "A's api key": keyA, "A's Magento JWT": mint(keyA, a.ID), "B's api key": keyB,
		} {
			if err := adminCallWith(ctx, st, cred); status.Code(err) != codes.Unauthenticated {
				t.Errorf("AdminService with %s as the bearer: %v, want Unauthenticated", what, err)
			}
			code, _ := httpGet(t, ctx, st.AdminHTTPURL+"/dashboard", map[string]string{"Authorization": "Bearer " + cred})
			if code != http.StatusUnauthorized {
				t.Errorf("the dashboard with %s as the bearer: HTTP %d, want 401", what, code)
			}
		}
	})
}

// checkShopRows checks that every sync-state row of r's shop is about one of
// its own entities and, when synced, names a document of r's own Sage
// business, never one of other's.
func checkShopRows(t *testing.T, st *stack.Stack, r, other *rigTenant) {
	t.Helper()
	own, foreign := sageIDs(st, r.Business), sageIDs(st, other.Business)
	invoices, customers := map[int64]bool{}, map[int64]bool{}
	for _, inv := range r.Shop.Invoices() {
		invoices[inv.MagentoID] = true
	}
	for _, c := range r.Shop.Customers() {
		customers[c.MagentoID] = true
	}
	rows := r.Shop.SyncStates()
	if len(rows) < len(r.expected()) {
		t.Errorf("%s's shop has %d sync-state rows, want at least %d", r.ID, len(rows), len(r.expected()))
	}
	for _, row := range rows {
		switch {
		case row.EntityType == "invoice" && !invoices[row.MagentoID],
			row.EntityType == "customer" && !customers[row.MagentoID],
			row.EntityType == "creditmemo" && !slices.Contains(r.Doomed, row.MagentoID):
			t.Errorf("%s's shop has a sync state for %s %d, which is not one of its entities", r.ID, row.EntityType, row.MagentoID)
		}
		if row.ProviderEntityID == nil {
			continue
		}
		if id := *row.ProviderEntityID; foreign[id] || !own[id] {
			t.Errorf("%s's shop: %s %d points to Sage document %s, not one of its business %s", r.ID, row.EntityType, row.MagentoID, id, r.Business)
		}
	}
}

// sageIDs are the ids of the invoices and contacts of a Sage business.
func sageIDs(st *stack.Stack, business string) map[string]bool {
	out := map[string]bool{}
	for _, inv := range st.Sage.Invoices(business) {
		out[inv.ID] = true
	}
	for _, c := range st.Sage.Contacts(business) {
		out[c.ID] = true
	}
	return out
}

// outboxCount is the number of messages on OUTBOX.
func outboxCount(t *testing.T, ctx context.Context, st *stack.Stack) uint64 {
	t.Helper()
	s, err := st.JS.Stream(ctx, bus.StreamOutbox)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// adminCallWith calls AdminService.ListTenants presenting cred as the bearer
// ("" presents none).
func adminCallWith(ctx context.Context, st *stack.Stack, cred string) error {
	conn, err := grpc.NewClient(st.AdminGRPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	if cred != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+cred)
	}
	_, err = ledgerv1.NewAdminServiceClient(conn).ListTenants(ctx, &ledgerv1.ListTenantsRequest{})
	return err
}
