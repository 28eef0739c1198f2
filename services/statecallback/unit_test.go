package statecallback

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ledgersync/ledger/libs/magento"
	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
)

func TestSyncStateFor(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 4, 29, 12, 11, 12, 999_000_000, time.FixedZone("CEST", 2*3600))
	res := &ledgerv1.SyncResult{EntityType: "invoice", MagentoEntityId: 42, ProviderEntityId: "p", SkipReason: "s",
		ErrorCode: "", ErrorClass: "http", ProviderReference: "SI-1", FinishedAt: timestamppb.New(at)}
	for status, want := range map[ledgerv1.SyncStatus]string{
		ledgerv1.SyncStatus_SYNC_STATUS_SYNCED:  "synced p <nil> <nil>",
		ledgerv1.SyncStatus_SYNC_STATUS_SKIPPED: "skipped <nil> s <nil>",
		ledgerv1.SyncStatus_SYNC_STATUS_FAILED:  "failed <nil> <nil> http",
	} {
		res.Status = status
		st, ok := SyncStateFor(res, at)
		got := strings.Join([]string{st.SyncStatus, s(st.ProviderEntityID), s(st.SkipReason), s(st.ErrorCode)}, " ")
		if !ok || got != want || st.ProviderReference != nil || st.LastSyncAt != "2026-04-29 10:11:12" || st.Provider != magento.ProviderSage {
			t.Errorf("%s: %q %+v, want %q", status, got, st, want)
		}
	}
	res.Status = ledgerv1.SyncStatus_SYNC_STATUS_UNSPECIFIED
	if _, ok := SyncStateFor(res, at); ok {
		t.Error("an unspecified status was mapped")
	}
	if got := s(column(strings.Repeat("é", 70))); got != strings.Repeat("é", 64) {
		t.Errorf("column cut to %d runes", len([]rune(got)))
	}
}

func s(p *string) string {
	if p == nil {
		return "<nil>"
	}
	return *p
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	svc := &Service{cfg: Config{}.WithDefaults(), jitter: func() float64 { return 0.5 }}
	for n, want := range map[uint64]time.Duration{1: 2 * time.Second, 2: 4 * time.Second, 5: 32 * time.Second,
		8: 256 * time.Second, 9: 5 * time.Minute, 64: 5 * time.Minute, 1000: 5 * time.Minute} {
		if got := svc.backoff(n); got != want {
			t.Errorf("backoff(%d) = %s, want %s", n, got, want)
		}
	}
	svc.jitter = func() float64 { return 0 }
	if got := svc.backoff(1); got != 1500*time.Millisecond {
		t.Errorf("low jitter: %s", got)
	}
	svc.jitter = func() float64 { return 0.999 }
	if got := svc.backoff(20); got != 5*time.Minute {
		t.Errorf("jitter above the cap: %s", got)
	}
}

func TestHTTPFailure(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		status int
		msg    string
		want   FailureKind
	}{
		{401, "The consumer isn't authorized", Unauthorized},
		{400, "Could not upsert sync state for invoice/1: gone away", Transient},
		{400, "magento_entity_id must be positive", Rejected},
		{404, "Request does not match any route.", Rejected},
		{429, "", Transient},
		{500, "Internal Error", Transient},
		{503, "", Transient},
	} {
		err := httpFailure(&magento.HTTPError{Status: c.status, Message: c.msg})
		if de := classify(err); de.Kind != c.want || de.Status != c.status || de.Message != c.msg {
			t.Errorf("%d %q: %+v, want %s", c.status, c.msg, de, c.want)
		}
	}
	if de := classify(errors.New("dial tcp: connection refused")); de.Kind != Transient {
		t.Errorf("network error: %s", de.Kind)
	}
	if httpFailure(nil) != nil {
		t.Error("nil error classified")
	}
}

func TestEntityLocks(t *testing.T) {
	t.Parallel()
	var l entityLocks
	unlock, err := l.lock(context.Background(), "a")
	if err != nil {
		t.Fatal(err)
	}
	other, err := l.lock(context.Background(), "b")
	if err != nil {
		t.Fatal("a different key blocked")
	}
	other()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := l.lock(ctx, "a"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second lock of a held key: %v", err)
	}
	got := make(chan struct{})
	go func() {
		u, _ := l.lock(context.Background(), "a")
		u()
		close(got)
	}()
	unlock()
	<-got
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.m) != 0 {
		t.Errorf("%d lock entries left", len(l.m))
	}
}
