package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ledgersync/ledger/cmd/ledger-dev/stack"
	"github.com/ledgersync/ledger/libs/bus"
	"github.com/ledgersync/ledger/libs/devstack/devtest"
	"github.com/ledgersync/ledger/libs/magento"
	magentosim "github.com/ledgersync/ledger/sim/magento"
)

// TestEndToEnd runs the whole pipeline: 200 invoices for 50 customers (some of
// them guests) raised in the Magento simulator reach the Sage simulator exactly
// once and every sync-state row comes back synced, while the sage-writer — a
// separate process — is killed with SIGKILL mid-run and restarted. Then every
// webhook is delivered again, which must create nothing; and forged or replayed
// tokens must be refused without publishing anything.
func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("the 200-invoice end-to-end run is skipped in -short mode")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	logFile, err := os.Create(filepath.Join(t.TempDir(), "stack.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer dumpOnFailure(t, "stack log", logFile.Name())
	log := slog.New(slog.NewJSONHandler(logFile, &slog.HandlerOptions{Level: slog.LevelInfo}))

	writerBin := buildWriter(t)
	st, err := stack.Start(ctx, stack.Options{StateDir: t.TempDir(), Log: log, NoWriter: true})
	if err != nil {
		t.Fatalf("starting the stack: %v", err)
	}
	defer st.Close()
	writer := startWriter(t, writerBin, st.WriterEnv())

	const tenant = "e2e-shop"
	if err := st.Onboard(ctx, tenant, "End-to-end shop"); err != nil {
		t.Fatalf("onboarding: %v", err)
	}
	if !st.Shop.Connected() || st.Shop.TenantID() != tenant {
		t.Fatalf("the shop is not paired with %s", tenant)
	}

	t.Run("forged and replayed tokens are refused and publish nothing", func(t *testing.T) {
		refusedTokens(t, ctx, st, tenant)
	})

	seed := st.Shop.Seed(rand.New(rand.NewPCG(2026, 11)), magentosim.Options{Customers: 50, Invoices: 200, GuestShare: 0.3})
	if len(seed.InvoiceIDs) != 200 || len(seed.CustomerIDs) != 50 {
		t.Fatalf("seeded %d invoices and %d customers", len(seed.InvoiceIDs), len(seed.CustomerIDs))
	}
	biz := st.Sage.LeadBusinessID()

	// Kill the writer once part of the run has landed in Sage, then restart it.
	devtest.Eventually(t, "the first 30 invoices in Sage", func() bool { return len(st.Sage.Invoices(biz)) >= 30 }, devtest.Until(ctx))
	if err := writer.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = writer.Wait()
	t.Logf("sage-writer killed with %d invoices in Sage; restarting it", len(st.Sage.Invoices(biz)))
	writer = startWriter(t, writerBin, st.WriterEnv())

	expected := stack.ExpectSeed(seed)
	wctx, wcancel := context.WithTimeout(ctx, 8*time.Minute)
	sum := st.WaitSettled(wctx, expected)
	wcancel()
	t.Log(sum)
	if !sum.OK() || sum.Synced != len(expected) {
		t.Fatalf("pipeline did not settle: %+v", sum)
	}

	// Sage holds exactly 200 invoices and one contact per customer and guest.
	invoices := st.Sage.Invoices(biz)
	if len(invoices) != 200 {
		t.Fatalf("Sage has %d invoices, want 200", len(invoices))
	}
	byRef := map[string]string{}
	for _, inv := range invoices {
		byRef[inv.Reference] = inv.ID
	}
	guests := map[string]bool{}
	for _, inv := range st.Shop.Invoices() {
		if inv.Customer.MagentoID == 0 {
			guests[strings.ToLower(strings.TrimSpace(inv.Customer.Email))] = true
		}
		row, ok := st.Shop.SyncState("invoice", inv.MagentoID)
		if !ok || row.SyncStatus != "synced" || row.ProviderEntityID == nil {
			t.Fatalf("invoice %d: sync-state %+v", inv.MagentoID, row)
		}
		if want := byRef[inv.IncrementID]; *row.ProviderEntityID != want {
			t.Fatalf("invoice %d: sync-state says Sage id %s, Sage has %q for reference %s", inv.MagentoID, *row.ProviderEntityID, want, inv.IncrementID)
		}
	}
	contacts := st.Sage.Contacts(biz)
	if want := 50 + len(guests); len(contacts) != want {
		t.Fatalf("Sage has %d contacts, want %d (50 customers + %d distinct guests)", len(contacts), want, len(guests))
	}
	refs := map[string]bool{}
	for _, c := range contacts {
		refs[c.Reference] = true
	}
	for _, id := range seed.CustomerIDs {
		if !refs[fmt.Sprintf("M%d", id)] {
			t.Fatalf("no Sage contact with reference M%d", id)
		}
	}

	t.Run("re-delivering every webhook creates nothing", func(t *testing.T) {
		redeliverAll(t, ctx, st, tenant)
		if n := len(st.Sage.Invoices(biz)); n != 200 {
			t.Fatalf("after redelivery Sage has %d invoices", n)
		}
		if n := len(st.Sage.Contacts(biz)); n != len(contacts) {
			t.Fatalf("after redelivery Sage has %d contacts, had %d", n, len(contacts))
		}
		if d := st.SageDuplicates(); d != 0 {
			t.Fatalf("%d duplicate Sage documents", d)
		}
	})
	_ = writer.Process.Kill()
	_ = writer.Wait()
}

// refusedTokens sends webhooks with a wrong signature, a wrong audience, an
// expired token and a replayed jti: each gets 401 and nothing reaches OUTBOX.
func refusedTokens(t *testing.T, ctx context.Context, st *stack.Stack, tenant string) {
	tn, err := st.Store.Tenant(ctx, tenant)
	if err != nil {
		t.Fatal(err)
	}
	key := tn.Binding.APIKey
	now := time.Now().Unix()
	good := magento.Claims{Iss: "magento", Sub: tenant, Aud: "byte8-ledger", Iat: now, Nbf: now, Exp: now + 60}
	sign := func(apiKey string, c magento.Claims) string {
		if c.Jti == "" {
			c.Jti = magento.NewJTI()
		}
		tok, err := magento.Sign(magento.Subkey(apiKey, magento.PurposeOutbound), c)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	wrongAud := good
	wrongAud.Aud = "someone-else"
	expired := good
	expired.Iat, expired.Nbf, expired.Exp = now-400, now-400, now-340
	before := outboxMessages(t, ctx, st)
	for name, tok := range map[string]string{
		"wrong signature": sign("not-the-key", good),
		"wrong aud":       sign(key, wrongAud),
		"expired":         sign(key, expired),
		"inbound key":     mustTok(magento.Sign(magento.Subkey(key, magento.PurposeInbound), withJTI(good))),
	} {
		if code, body := postWebhook(t, ctx, st, tenant, "invoice.created", "invoice.created:999999", tok); code != http.StatusUnauthorized {
			t.Errorf("%s: HTTP %d %s, want 401", name, code, body)
		}
	}
	if after := outboxMessages(t, ctx, st); after != before {
		t.Fatalf("refused webhooks published %d messages", after-before)
	}
	// A replayed jti: the first use is accepted (one message), the replay is not.
	reused := sign(key, withJTI(good))
	if code, body := postWebhook(t, ctx, st, tenant, "order.placed", "order.placed:1", reused); code != http.StatusAccepted {
		t.Fatalf("first use of a token: HTTP %d %s", code, body)
	}
	if code, _ := postWebhook(t, ctx, st, tenant, "order.placed", "order.placed:2", reused); code != http.StatusUnauthorized {
		t.Fatalf("replayed jti: HTTP %d, want 401", code)
	}
	if after := outboxMessages(t, ctx, st); after != before+1 {
		t.Fatalf("OUTBOX grew by %d, want 1", after-before)
	}
}

func withJTI(c magento.Claims) magento.Claims { c.Jti = magento.NewJTI(); return c }

func mustTok(s string, err error) string {
	if err != nil {
		panic(err)
	}
	return s
}

// redeliverAll posts every outbox row again with its own Idempotency-Key and a
// fresh token, as the shop's CLI would; each must be answered 2xx with the run
// id Ledger gave the first delivery, and nothing may be published.
func redeliverAll(t *testing.T, ctx context.Context, st *stack.Stack, tenant string) {
	tn, err := st.Store.Tenant(ctx, tenant)
	if err != nil {
		t.Fatal(err)
	}
	before := outboxMessages(t, ctx, st)
	rows := st.Shop.Outbox()
	for _, row := range rows {
		tok, err := magento.MintOutbound(tn.Binding.APIKey, tenant, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		code, body := postRaw(t, ctx, st.IngestURL, tenant, row.EventName, row.IdempotencyKey, tok, []byte(row.Payload))
		if code/100 != 2 {
			t.Fatalf("redelivery of %s: HTTP %d %s", row.IdempotencyKey, code, body)
		}
		var got struct {
			SyncRunID string `json:"sync_run_id"`
		}
		if err := json.Unmarshal(body, &got); err != nil || got.SyncRunID == "" {
			t.Fatalf("redelivery of %s: body %s", row.IdempotencyKey, body)
		}
	}
	if after := outboxMessages(t, ctx, st); after != before {
		t.Fatalf("redelivering %d webhooks published %d messages", len(rows), after-before)
	}
}

func postWebhook(t *testing.T, ctx context.Context, st *stack.Stack, tenant, event, key, token string) (int, []byte) {
	body := []byte(`{"magento_entity_id":999999,"website_id":1,"store_id":1,"occurred_at":"2026-11-28T00:00:00Z","payload":{}}`)
	return postRaw(t, ctx, st.IngestURL, tenant, event, key, token, body)
}

func postRaw(t *testing.T, ctx context.Context, ingestURL, tenant, event, key, token string, body []byte) (int, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ingestURL+"/webhooks/magento/"+tenant+"/"+event, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func outboxMessages(t *testing.T, ctx context.Context, st *stack.Stack) uint64 {
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

// buildWriter compiles the sage-writer binary so the test can kill it.
func buildWriter(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "sage-writer")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/ledgersync/ledger/services/sage-writer/cmd/sage-writer")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building sage-writer: %v\n%s", err, out)
	}
	return bin
}

func startWriter(t *testing.T, bin string, env []string) *exec.Cmd {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), "sage-writer.log")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting sage-writer: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		f.Close()
	})
	dumpOnFailure(t, "sage-writer log", logPath)
	return cmd
}

func dumpOnFailure(t *testing.T, what, path string) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		b, _ := os.ReadFile(path)
		if len(b) > 20000 {
			b = b[len(b)-20000:]
		}
		t.Logf("---- %s (tail) ----\n%s", what, b)
	})
}
