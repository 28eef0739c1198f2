package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ledgersync/ledger/cmd/ledger-dev/stack"
	"github.com/ledgersync/ledger/libs/bus"
	"github.com/ledgersync/ledger/libs/magento"
	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
)

// TestSecretsNeverInClear runs the pipeline for two tenants — onboarding
// (pairing and Sage's OAuth flow), invoices synced, a forced Sage token
// refresh, failed runs dead-lettered, the operator's dashboard opened with its
// token in the URL, a refresh refused by Sage (invalid_grant) and a Sage
// disconnect — then looks for every secret involved in everything Ledger
// writes down: every log line of every service (at DEBUG), every metric of
// every service, every message of every JetStream stream (the dead letters
// included) and every row of every table of the database. No secret may
// appear in clear, nor hex- or base64-encoded: only sealed.
//
// The secrets: each tenant's Magento api key and the two HKDF subkeys derived
// from it (read back from the store, which unseals them), every Sage access
// and refresh token the tenants held during the run (sampled from the store
// while the run goes, so rotated ones are included), the Sage client secret,
// the admin token and the key ring that seals all of them; and any Magento
// JWT (a webhook's bearer token is a credential for its 60 s lifetime).
func TestSecretsNeverInClear(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end; skipped in -short mode")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	logs := &lockedLog{}
	st, ta, tb := twoTenantRig(t, ctx, "sec-a", "sec-b", logs)
	tenants := []*rigTenant{ta, tb}

	// Sage tokens rotate: sample them as the run goes on.
	var mu sync.Mutex
	sageTokens := map[string]string{} // token → what it is
	sample := func() {
		for _, r := range tenants {
			tok, err := st.Store.Tokens(ctx, r.ID)
			if err != nil {
				continue
			}
			mu.Lock()
			sageTokens[tok.Access] = r.ID + " Sage access token"
			sageTokens[tok.Refresh] = r.ID + " Sage refresh token"
			mu.Unlock()
		}
	}
	sample()
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			select {
			case <-stopSampling:
				return
			case <-time.After(50 * time.Millisecond):
				sample()
			}
		}
	}()

	// Every access token expires: the writer refreshes each binding (a new
	// access and refresh token) to sync the next invoices.
	st.Sage.ExpireAccessTokens()
	rng := rand.New(rand.NewPCG(15, 3))
	for _, r := range tenants {
		r.raiseInvoices(t, rng, 2)
	}
	settleRig(t, ctx, ta, tb)
	// The admin's own uses of the tokens and of the operator credential.
	ops, closeOps, err := st.Admin()
	if err != nil {
		t.Fatal(err)
	}
	defer closeOps()
	if _, err := ops.RefreshReferenceData(ctx, &ledgerv1.RefreshReferenceDataRequest{TenantId: ta.ID}); err != nil {
		t.Fatalf("RefreshReferenceData: %v", err)
	}
	// A browser in dev: the token in the URL once, then a cookie.
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, Timeout: 20 * time.Second}
	if res, err := browser.Get(st.AdminHTTPURL + "/dashboard?token=" + url.QueryEscape(st.AdminToken)); err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("dashboard with the token in the URL (dev): %v %v", res, err)
	} else {
		res.Body.Close()
	}
	if code, _ := httpGet(t, ctx, st.AdminHTTPURL+"/dashboard", map[string]string{"Authorization": "Bearer " + st.AdminToken}); code != http.StatusOK {
		t.Fatalf("dashboard with the token in a header: %d", code)
	}
	close(stopSampling)
	<-sampled
	sample()
	// The error paths: Sage revokes every refresh token and expires every
	// access token, so B's next write fails to refresh (invalid_grant) and its
	// binding waits for re-authorisation; then the operator disconnects A
	// from Sage (Ledger revokes A's refresh token and forgets its tokens).
	st.Sage.RevokeRefreshTokens()
	st.Sage.ExpireAccessTokens()
	tb.raiseInvoices(t, rng, 1)
	rigEventually(t, ctx, tb.ID+"'s binding to need re-authorisation", func() string {
		tn, err := st.Store.Tenant(ctx, tb.ID)
		if err != nil || tn.Binding.Status == "active" {
			return fmt.Sprintf("binding %s (%v)", tn.Binding.Status, err)
		}
		return ""
	})
	if _, err := ops.DisconnectSage(ctx, &ledgerv1.DisconnectSageRequest{TenantId: ta.ID}); err != nil {
		t.Fatalf("DisconnectSage: %v", err)
	}

	secrets := secretNeedles{}
	for tok, what := range sageTokens {
		secrets.add(what, tok)
	}
	refreshes := 0
	for _, what := range sageTokens {
		if strings.HasSuffix(what, "refresh token") {
			refreshes++
		}
	}
	if refreshes < 4 {
		t.Fatalf("saw %d refresh tokens for two tenants; the forced refresh did not happen", refreshes)
	}
	for _, r := range tenants {
		tn, err := st.Store.Tenant(ctx, r.ID)
		if err != nil || tn.Binding.APIKey == "" {
			t.Fatalf("%s: api key %v", r.ID, err)
		}
		secrets.add(r.ID+" Magento api key", tn.Binding.APIKey)
		secrets.addBytes(r.ID+" outbound JWT key", magento.Subkey(tn.Binding.APIKey, magento.PurposeOutbound))
		secrets.addBytes(r.ID+" inbound JWT key", magento.Subkey(tn.Binding.APIKey, magento.PurposeInbound))
	}
	secrets.add("Sage client secret", stack.SageClientSecret)
	secrets.add("admin token", st.AdminToken)
	for _, k := range strings.Split(st.SecretKey, ",") {
		_, key, _ := strings.Cut(k, ":")
		secrets.add("LEDGER_SECRET_KEY key", key)
		raw, err := base64.StdEncoding.DecodeString(key)
		if err != nil {
			t.Fatal(err)
		}
		secrets.addBytes("LEDGER_SECRET_KEY key", raw)
	}
	// Every token Magento signs starts with the same header segment.
	jwtHeader := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))
	secrets = append(secrets, secretNeedle{"a Magento JWT", jwtHeader})
	t.Logf("%d secrets (%d Sage tokens), in %d forms", len(secrets.names()), len(sageTokens), len(secrets))

	// Where they must not be.
	haystacks := map[string][]byte{}
	haystacks["logs"] = logs.Bytes()
	if n := bytes.Count(haystacks["logs"], []byte("\n")); n < 100 {
		t.Fatalf("only %d log lines were captured", n)
	}
	for name, base := range map[string]string{
		"ingest": st.IngestURL, "mapper": st.MapperURL, "sage-writer": st.WriterURL,
		"statecallback": st.StateCallbackURL, "admin": st.AdminHTTPURL,
	} {
		code, body := httpGet(t, ctx, base+"/metrics", nil)
		if code != http.StatusOK || !bytes.Contains(body, []byte("ledger_")) {
			t.Fatalf("%s /metrics: %d %.200s", name, code, body)
		}
		haystacks[name+" /metrics"] = body
	}
	streams, deadLetters := streamContents(t, ctx, st.JS)
	if deadLetters < len(ta.Doomed)+len(tb.Doomed) {
		t.Fatalf("%d dead letters, want at least %d", deadLetters, len(ta.Doomed)+len(tb.Doomed))
	}
	for name, b := range streams {
		haystacks["stream "+name] = b
	}
	tables := databaseDump(t, ctx, st)
	for name, b := range tables {
		haystacks["table "+name] = b
	}
	for _, must := range []string{"table public.tenants", "table public.oauth_tokens", "table public.bindings", "table public.sync_attempts", "table public.sync_runs", "stream DLQ"} {
		if len(haystacks[must]) == 0 {
			t.Errorf("%s is empty or missing: the scan would prove nothing", must)
		}
	}

	for _, where := range slices.Sorted(func(yield func(string) bool) {
		for k := range haystacks {
			if !yield(k) {
				return
			}
		}
	}) {
		for _, s := range secrets {
			if i := bytes.Index(haystacks[where], []byte(s.form)); i >= 0 {
				t.Errorf("%s found in %s: %s", s.name, where, excerptAround(haystacks[where], i, len(s.form)))
			}
		}
	}
}

// secretNeedle is one way a secret could be written down.
type secretNeedle struct{ name, form string }

type secretNeedles []secretNeedle

// add registers a secret in clear, hex and base64 (standard and URL).
func (n *secretNeedles) add(name, secret string) {
	if len(secret) < 8 {
		panic(fmt.Sprintf("%s: %q is too short to search for", name, secret))
	}
	n.addBytes(name, []byte(secret))
	*n = append(*n, secretNeedle{name, secret})
}

// addBytes registers a binary secret by its hex and base64 forms.
func (n *secretNeedles) addBytes(name string, secret []byte) {
	for _, form := range []string{
		hex.EncodeToString(secret), strings.ToUpper(hex.EncodeToString(secret)),
		base64.StdEncoding.EncodeToString(secret), base64.RawURLEncoding.EncodeToString(secret),
	} {
		// A form is searched by its first 24 characters: enough to be unique,
		// and it finds a secret cut or wrapped in a longer encoding.
		*n = append(*n, secretNeedle{name, form[:min(len(form), 24)]})
	}
}

func (n secretNeedles) names() []string {
	var out []string
	for _, s := range n {
		if !slices.Contains(out, s.name) {
			out = append(out, s.name)
		}
	}
	return out
}

func excerptAround(b []byte, i, n int) string {
	from, to := max(0, i-120), min(len(b), i+n+120)
	return fmt.Sprintf("…%s…", b[from:to])
}

// streamContents returns the raw bytes (headers and data) of every message of
// every stream, by stream, and how many dead letters DLQ holds.
func streamContents(t *testing.T, ctx context.Context, js jetstream.JetStream) (map[string][]byte, int) {
	t.Helper()
	out := map[string][]byte{}
	dead := 0
	names := js.StreamNames(ctx)
	for name := range names.Name() {
		s, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		info, err := s.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
			m, err := s.GetMsg(ctx, seq)
			if err != nil {
				continue // deleted
			}
			fmt.Fprintf(&b, "%s %v\n", m.Subject, m.Header)
			b.Write(m.Data)
			b.WriteByte('\n')
			if name == bus.StreamDLQ {
				dead++
			}
		}
		out[name] = b.Bytes()
	}
	if err := names.Err(); err != nil {
		t.Fatal(err)
	}
	return out, dead
}

// databaseDump returns every row of every table (row_to_json), by table.
func databaseDump(t *testing.T, ctx context.Context, st *stack.Stack) map[string][]byte {
	t.Helper()
	pool := st.Store.Pool()
	rows, err := pool.Query(ctx, `SELECT table_schema, table_name FROM information_schema.tables
		WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2`)
	if err != nil {
		t.Fatal(err)
	}
	var tables [][2]string
	for rows.Next() {
		var schema, name string
		if err := rows.Scan(&schema, &name); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, [2]string{schema, name})
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	total := 0
	for _, tb := range tables {
		q := fmt.Sprintf(`SELECT row_to_json(t)::text FROM %q.%q t`, tb[0], tb[1])
		rows, err := pool.Query(ctx, q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		var b bytes.Buffer
		for rows.Next() {
			var row string
			if err := rows.Scan(&row); err != nil {
				t.Fatal(err)
			}
			b.WriteString(row)
			b.WriteByte('\n')
			total++
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		out[tb[0]+"."+tb[1]] = b.Bytes()
	}
	if len(tables) < 5 || total < 50 {
		t.Fatalf("the dump has %d tables and %d rows; want the whole database", len(tables), total)
	}
	return out
}
