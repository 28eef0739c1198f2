package store_test

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"testing"
	"time"

	"github.com/ledgersync/ledger/libs/store"
)

func TestConsoleSessions(t *testing.T) {
	t.Parallel()
	st := open(t)
	ctx := t.Context()
	hash := func(id string) []byte { h := sha256.Sum256([]byte(id)); return h[:] }

	live := store.ConsoleSession{IDHash: hash("live"), CSRFToken: "csrf-live", ExpiresAt: time.Now().Add(time.Hour)}
	if err := st.CreateConsoleSession(ctx, live); err != nil {
		t.Fatal(err)
	}
	got, err := st.ConsoleSessionByHash(ctx, hash("live"))
	if err != nil || got.CSRFToken != "csrf-live" || !bytes.Equal(got.IDHash, live.IDHash) || got.CreatedAt.IsZero() {
		t.Fatalf("live session: %+v %v", got, err)
	}
	// An expired session is never answered, and the next start deletes it.
	expired := store.ConsoleSession{IDHash: hash("old"), CSRFToken: "csrf-old", ExpiresAt: time.Now().Add(-time.Second)}
	if err := st.CreateConsoleSession(ctx, expired); err != nil {
		t.Fatal(err)
	}
	if _, err := st.ConsoleSessionByHash(ctx, hash("old")); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("expired session: %v", err)
	}
	if err := st.CreateConsoleSession(ctx, store.ConsoleSession{IDHash: hash("next"), CSRFToken: "c", ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := st.Pool().QueryRow(ctx, `SELECT count(*) FROM console_sessions WHERE id_hash = $1`, hash("old")).Scan(&n); err != nil || n != 0 {
		t.Fatalf("expired rows left: %d %v", n, err)
	}
	// Logout.
	if err := st.DeleteConsoleSession(ctx, hash("live")); err != nil {
		t.Fatal(err)
	}
	if _, err := st.ConsoleSessionByHash(ctx, hash("live")); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("after delete: %v", err)
	}
	// Malformed sessions are refused before the database.
	for _, bad := range []store.ConsoleSession{
		{IDHash: []byte("short"), CSRFToken: "c", ExpiresAt: time.Now().Add(time.Hour)},
		{IDHash: hash("x"), ExpiresAt: time.Now().Add(time.Hour)},
		{IDHash: hash("y"), CSRFToken: "c"},
	} {
		if err := st.CreateConsoleSession(ctx, bad); err == nil {
			t.Errorf("accepted %+v", bad)
		}
	}
}
