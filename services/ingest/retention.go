package ingest

import (
	"context"
	"time"

	"github.com/ledgersync/ledger/libs/backoff"
)

// RunKeyRetention deletes, every KeyRetentionEvery (±20 %, so replicas do not
// run together), the webhook keys older than DedupWindow: past it a key no
// longer suppresses a repeat (AcceptWebhook starts a new run), so keeping it
// only grows webhook_keys. It returns when ctx ends. A failed pass is logged
// and tried again at the next one; every ingest replica runs it, and passes
// that overlap delete each key once.
func (s *Service) RunKeyRetention(ctx context.Context) error {
	every := backoff.Policy{Base: s.cfg.KeyRetentionEvery, Cap: s.cfg.KeyRetentionEvery, Jitter: 0.2}
	t := time.NewTimer(every.Delay(1))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if _, err := s.ForgetOldKeys(ctx); err != nil && ctx.Err() == nil {
			s.log.WarnContext(ctx, "ingest: webhook key retention failed; the next pass tries again",
				"next_in", s.cfg.KeyRetentionEvery, "err", err)
		}
		t.Reset(every.Delay(1))
	}
}

// ForgetOldKeys is one pass of RunKeyRetention: it deletes the webhook keys
// older than the dedupe window and returns how many. A key whose event was
// never published while its run is unfinished stays (store.ForgetWebhookKeys).
func (s *Service) ForgetOldKeys(ctx context.Context) (int64, error) {
	start := time.Now()
	n, err := s.st.ForgetWebhookKeys(ctx, s.cfg.DedupWindow)
	if err != nil {
		return n, err
	}
	s.log.InfoContext(ctx, "ingest: forgot webhook keys older than the dedupe window", "deleted", n,
		"dedup_window", s.cfg.DedupWindow, "took", time.Since(start).Round(time.Millisecond))
	return n, nil
}
