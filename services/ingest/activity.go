package ingest

import (
	"context"
	"sync"
	"time"
)

// shopActivity is the last accepted delivery of each tenant since the last
// flush. Recording one is a map write under a mutex; RunActivityFlush writes
// them all in one statement every ActivityFlushEvery, so a busy shop costs
// one commit per interval, not one per event (store.TouchShops).
type shopActivity struct {
	mu   sync.Mutex
	seen map[string]time.Time
}

func newShopActivity() *shopActivity { return &shopActivity{seen: map[string]time.Time{}} }

// saw records that tenant's shop delivered at at.
func (a *shopActivity) saw(tenant string, at time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if at.After(a.seen[tenant]) {
		a.seen[tenant] = at
	}
}

// take returns what was recorded since the last take and forgets it.
func (a *shopActivity) take() map[string]time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.seen) == 0 {
		return nil
	}
	out := a.seen
	a.seen = map[string]time.Time{}
	return out
}

// putBack returns what a failed flush could not write (the later time wins).
func (a *shopActivity) putBack(seen map[string]time.Time) {
	for tenant, at := range seen {
		a.saw(tenant, at)
	}
}

// RunActivityFlush writes the tenants' last accepted deliveries every
// ActivityFlushEvery until ctx ends, then once more. A failed write is kept
// for the next one and logged.
func (s *Service) RunActivityFlush(ctx context.Context) error {
	t := time.NewTicker(s.cfg.ActivityFlushEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			// The last deliveries before shutdown; the pool is still open.
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			_ = s.FlushActivity(fctx)
			return nil
		case <-t.C:
			_ = s.FlushActivity(ctx)
		}
	}
}

// FlushActivity writes the last accepted delivery of every tenant that sent
// since the previous flush.
func (s *Service) FlushActivity(ctx context.Context) error {
	seen := s.activity.take()
	if len(seen) == 0 {
		return nil
	}
	if err := s.st.TouchShops(ctx, seen); err != nil {
		s.activity.putBack(seen)
		s.log.WarnContext(ctx, "ingest: recording the shops' last deliveries failed; the next flush tries again",
			"tenants", len(seen), "err", err)
		return err
	}
	return nil
}
