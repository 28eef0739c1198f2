package shophealth

import (
	"strings"
	"testing"
	"time"
)

func TestJudge(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	active := Facts{MagentoStatus: "active", Paired: true, Now: now}
	with := func(f Facts, edit func(*Facts)) Facts { edit(&f); return f }
	for _, tc := range []struct {
		name        string
		f           Facts
		silentAfter time.Duration
		verdict     string
		says        []string
	}{
		{"never paired", Facts{MagentoStatus: "pending", Now: now}, 0, NotPaired, []string{"not paired", "pending", "pairing code"}},
		{"disconnected", Facts{MagentoStatus: "revoked", Now: now, LastWebhookAt: now.Add(-time.Minute)}, 0, NotPaired, []string{"revoked"}},
		{"active without a key", with(active, func(f *Facts) { f.Paired = false }), 0, NotPaired, []string{"connect"}},
		{"drift wins over silence", with(active, func(f *Facts) {
			f.MagentoStatus, f.LastWebhookAt = "token_revoked", now.Add(-48*time.Hour)
			f.UnauthorizedRecent, f.LastUnauthorizedAt = 5, now.Add(-time.Minute)
		}), 0, AuthDrift, []string{"re-pair", "5 deliveries refused", "#auth-drift-and-re-pair"}},
		{"paired, nothing yet", active, 0, NeverSent, []string{"cron:run --group=default", "relay"}},
		{"silent past the default", with(active, func(f *Facts) { f.LastWebhookAt = now.Add(-6*time.Hour - time.Second) }), 0, Silent,
			[]string{"nothing received for 6h0m0s", "silent after 6h0m0s", "cron:run --group=default", "docs/relay.md", "#shop-cron-not-running"}},
		{"just inside the default", with(active, func(f *Facts) { f.LastWebhookAt = now.Add(-6 * time.Hour) }), 0, OK, []string{"last delivery at 2026-12-05T06:00:00Z"}},
		{"silent after a short setting", with(active, func(f *Facts) { f.LastWebhookAt = now.Add(-3 * time.Second) }), 2 * time.Second, Silent, []string{"for 3s"}},
		{"receiving", with(active, func(f *Facts) { f.LastWebhookAt = now.Add(-time.Minute) }), 0, OK, []string{"Receiving"}},
		{"a few refusals do not change the verdict", with(active, func(f *Facts) {
			f.LastWebhookAt, f.UnauthorizedRecent, f.LastUnauthorizedAt = now.Add(-time.Minute), 2, now.Add(-30*time.Second)
		}), 0, OK, []string{"2 deliveries refused as unauthorized", "11:59:30Z"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := Judge(tc.f, tc.silentAfter)
			if h.Verdict != tc.verdict {
				t.Fatalf("verdict %q (%s), want %q", h.Verdict, h.Message, tc.verdict)
			}
			for _, s := range tc.says {
				if !strings.Contains(h.Message, s) {
					t.Errorf("message %q does not say %q", h.Message, s)
				}
			}
		})
	}
}
