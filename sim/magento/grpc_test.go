package magentosim

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/ledgersync/ledger/libs/magento"
	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
)

// grpcShop serves shop's SyncStateService on a loopback port and returns a client.
func grpcShop(t *testing.T, shop *Shop) ledgerv1.SyncStateServiceClient {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := shop.GRPCServer()
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return ledgerv1.NewSyncStateServiceClient(cc)
}

func withJWT(t *testing.T, clock *fakeClock, key string) context.Context {
	t.Helper()
	tok, err := magento.MintInbound(key, testTenant, clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tok)
}

func TestGRPCSyncState(t *testing.T) {
	t.Parallel()
	clock := newClock()
	shop := newTestShop(t, clock)
	client := grpcShop(t, shop)

	entries := []*ledgerv1.SyncStateEntry{
		{EntityType: "invoice", MagentoEntityId: 42, Provider: ProviderSage, SyncStatus: "synced", ProviderEntityId: "sage-42", LastSyncAt: "2026-04-29 10:11:12"},
		{EntityType: "creditmemo", MagentoEntityId: 7, Provider: ProviderSage, SyncStatus: "skipped", SkipReason: "outside_sync_since"},
		{EntityType: "invoice", MagentoEntityId: 43, Provider: ProviderSage, SyncStatus: "pending"},
		{EntityType: "invoice", MagentoEntityId: 44, Provider: ProviderSage, SyncStatus: "failed", ErrorCode: strings.Repeat("e", 65)},
		{EntityType: "payment", MagentoEntityId: 1, Provider: ProviderSage, SyncStatus: "synced"},
	}
	req := &ledgerv1.PushSyncStateRequest{TenantId: testTenant, Entries: entries}

	// Not paired yet: every call is refused like REST's 401.
	if _, err := client.PushSyncState(withJWT(t, clock, testKey), req); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("unpaired shop: %v, want Unauthenticated", err)
	}
	pair(t, shop, "https://ledger.example.com")

	// No token, a token signed with another key, and a replayed token.
	if _, err := client.PushSyncState(context.Background(), req); status.Code(err) != codes.Unauthenticated {
		t.Errorf("no token: %v, want Unauthenticated", err)
	}
	if _, err := client.PushSyncState(withJWT(t, clock, "byte8_lk_other"), req); status.Code(err) != codes.Unauthenticated {
		t.Errorf("wrong key: %v, want Unauthenticated", err)
	}
	ctx := withJWT(t, clock, testKey)
	if _, err := client.PushSyncState(ctx, &ledgerv1.PushSyncStateRequest{TenantId: "someone-else"}); status.Code(err) != codes.PermissionDenied {
		t.Errorf("wrong tenant: %v, want PermissionDenied", err)
	}
	if _, err := client.PushSyncState(ctx, req); status.Code(err) != codes.Unauthenticated {
		t.Errorf("replayed token: %v, want Unauthenticated", err)
	}

	// Ping: an empty batch.
	resp, err := client.PushSyncState(withJWT(t, clock, testKey), &ledgerv1.PushSyncStateRequest{TenantId: testTenant})
	if err != nil || len(resp.GetResults()) != 0 {
		t.Fatalf("empty batch: %v, %v", resp, err)
	}

	resp, err = client.PushSyncState(withJWT(t, clock, testKey), req)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		stored, retryable bool
		err               string
	}{
		{true, false, ""},
		{true, false, ""},
		{false, false, "Invalid sync_status pending; pending is Magento-side only"},
		{false, true, "Could not upsert sync state for invoice/44: SQLSTATE[22001]"},
		{false, false, "Unknown entity_type payment"},
	}
	if len(resp.GetResults()) != len(want) {
		t.Fatalf("%d results, want %d", len(resp.GetResults()), len(want))
	}
	for i, w := range want {
		r := resp.GetResults()[i]
		if r.GetStored() != w.stored || r.GetRetryable() != w.retryable || !strings.HasPrefix(r.GetError(), w.err) {
			t.Errorf("entry %d: %v, want stored %v retryable %v error %q…", i, r, w.stored, w.retryable, w.err)
		}
	}
	row, ok := shop.SyncState("invoice", 42)
	if !ok || row.SyncStatus != SyncSynced || row.ProviderEntityID == nil || *row.ProviderEntityID != "sage-42" ||
		row.SkipReason != nil || !row.LastSyncAt.Equal(time.Date(2026, 4, 29, 10, 11, 12, 0, time.UTC)) {
		t.Errorf("invoice 42 row %+v", row)
	}
	if row, ok := shop.SyncState("creditmemo", 7); !ok || row.SkipReason == nil || *row.SkipReason != "outside_sync_since" ||
		row.ProviderEntityID != nil || !row.LastSyncAt.Equal(clock.Now()) {
		t.Errorf("creditmemo 7 row %+v (last_sync_at defaults to now)", row)
	}
	if _, ok := shop.SyncState("invoice", 43); ok {
		t.Error("a pending entry was stored")
	}

	shop.SetDown(true)
	if _, err := client.PushSyncState(withJWT(t, clock, testKey), req); status.Code(err) != codes.Unavailable {
		t.Errorf("down shop: %v, want Unavailable", err)
	}
}
