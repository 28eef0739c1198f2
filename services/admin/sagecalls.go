package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/ledgersync/ledger/libs/backoff"
	"github.com/ledgersync/ledger/libs/sage"
	"github.com/ledgersync/ledger/libs/sage/budget"
	"github.com/ledgersync/ledger/libs/sage/lifecycle"
	"github.com/ledgersync/ledger/libs/store"
)

// The service's own Sage calls (reference-data refresh, reconciliation) go
// through the same rate budget as the writer's (libs/sage/budget): its
// per-business pacing at Config.SageRatePerMinute, and, once the jobs
// component has joined the fleet of Sage callers in NATS, the app-wide daily
// and concurrency limits the writers share. The Sage OAuth connect flow is not
// paced (one operator, a handful of calls).

// maxSageWait is the longest budget wait spent inside one call; a longer one
// fails the call with *budget.BackPressure, which sageGet waits out.
const maxSageWait = 30 * time.Second

// newSageHTTP wraps base with a budget paced per business at cfg's rate.
func newSageHTTP(base *http.Client, cfg Config) (*http.Client, *budget.Budget, error) {
	b, err := budget.New(budget.Config{BusinessPerMinute: float64(cfg.SageRatePerMinute),
		BusinessBurst: budget.DefaultBusinessBurst, MaxInlineWait: maxSageWait})
	if err != nil {
		return nil, nil, fmt.Errorf("admin: Sage rate budget: %w", err)
	}
	rt := base.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	hc := *base
	// The budget waits outside the traced transport: a span is a call that
	// went out, not time spent waiting for the budget.
	hc.Transport = &budget.Transport{Base: rt, Budget: b, APIPrefix: cfg.Sage.APIURL}
	return &hc, b, nil
}

// sageFor is a budgeted Sage client of the tenant's business whose tokens are
// refreshed ahead of expiry (under the store's cross-process lock) for as
// long as a job runs.
func (s *Service) sageFor(t store.Tenant) *sage.Client {
	return &sage.Client{BaseURL: s.cfg.Sage.APIURL, HTTP: s.sageHTTP, BusinessID: t.Binding.SageBusinessID,
		Tokens: lifecycle.NewTokenSource(s.st, s.oauth, t.ID)}
}

// throttleWait paces repeats of a call Sage throttled (429 without
// Retry-After): 2 s, 4 s, … 60 s.
var throttleWait = backoff.Policy{Base: budget.DefaultThrottleBase, Cap: budget.DefaultThrottleCap, Jitter: 0.2}

// maxThrottledTries bounds how often one call is repeated after 429s or
// budget refusals before the job gives up (it runs again at its next turn).
const maxThrottledTries = 8

// sageGet GETs path into out, waiting out Sage's 429s (Retry-After, else the
// throttle schedule) and the rate budget's refusals: background work waits
// for its turn instead of failing.
func sageGet(ctx context.Context, c *sage.Client, path string, out any) error {
	for try := uint64(1); ; try++ {
		err := c.Get(ctx, path, out)
		var ae *sage.APIError
		var bp *budget.BackPressure
		var wait time.Duration
		switch {
		case err == nil:
			return nil
		case errors.As(err, &bp):
			wait = bp.Wait
		case errors.As(err, &ae) && ae.Status == http.StatusTooManyRequests:
			if wait = budget.ParseRetryAfter(ae.RetryAfter, time.Now()); wait == 0 {
				wait = throttleWait.Delay(try)
			}
		default:
			return err
		}
		if try >= maxThrottledTries {
			return fmt.Errorf("still throttled after %d tries: %w", try, err)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// callerID names this process's seat among the Sage callers sharing the app
// limits.
func callerID() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("admin-%s-%d", strings.NewReplacer(".", "_", "*", "_", ">", "_").Replace(host), os.Getpid())
}
