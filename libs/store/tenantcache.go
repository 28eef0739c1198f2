package store

import (
	"context"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// TenantChangedChannel is the Postgres notification channel on which every
// committed change to a tenant's rows (tenants, bindings, oauth_tokens,
// policies, ref_cache) announces the tenant id (migration 00014's triggers).
const TenantChangedChannel = "ledger_tenant_changed"

// tenantCache keeps tenants (with their bindings, and with the versions of
// their policy and reference data) and their Sage tokens in memory while the
// store listens on TenantChangedChannel. A notification forgets the tenant's
// copies; so does a change made through this Store (read-your-writes within a
// process), and losing the listening connection forgets everything and serves
// from Postgres until it is back.
//
// The generation closes the race between a read from Postgres and a
// notification: a value read is kept only if no invalidation happened since
// the read began, so a copy older than a committed change is never kept.
type tenantCache struct {
	mu        sync.Mutex
	live      bool   // listening: copies may be kept and served
	gen       uint64 // bumped by every invalidation
	tenants   map[string]Tenant
	tokens    map[string]Tokens
	versioned map[string]versionedTenant
}

func newTenantCache() *tenantCache {
	return &tenantCache{tenants: map[string]Tenant{}, tokens: map[string]Tokens{}, versioned: map[string]versionedTenant{}}
}

// lookup returns the cached value of id in m, and the generation to hand to
// keep after a read from Postgres.
func lookup[T any](c *tenantCache, m map[string]T, id string) (v T, ok bool, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.live {
		return v, false, 0
	}
	v, ok = m[id]
	return v, ok, c.gen
}

// keep stores v as id's copy in m unless the cache went down or something was
// invalidated since gen was handed out.
func keep[T any](c *tenantCache, m map[string]T, id string, v T, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.live && c.gen == gen {
		m[id] = v
	}
}

// forget drops id's copies.
func (c *tenantCache) forget(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	delete(c.tenants, id)
	delete(c.tokens, id)
	delete(c.versioned, id)
}

// setLive starts (true) or stops (false) serving copies; either way every
// copy is dropped, since notifications may have been missed.
func (c *tenantCache) setLive(live bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.live = live
	clear(c.tenants)
	clear(c.tokens)
	clear(c.versioned)
}

func (c *tenantCache) isLive() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.live
}

// CacheTenants makes Tenant and Tokens serve from memory: the store listens
// on TenantChangedChannel on a connection of its own and forgets a tenant's
// copies when a change to its rows commits. It is for the services' hot paths
// (ingest's authentication, the writer's binding and tokens, statecallback's
// transport), which read the same few rows for every event. A change made
// elsewhere reaches this process with its notification, a few milliseconds
// after its commit; until the listener is connected, and whenever it is not,
// every read goes to Postgres. Close stops it. Calling it twice does nothing.
func (s *Store) CacheTenants() {
	s.watchOnce.Do(func() {
		s.cache = newTenantCache()
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		s.stopWatch = func() { cancel(); <-done }
		go func() {
			defer close(done)
			s.watchTenants(ctx)
		}()
	})
}

// TenantCacheLive reports whether Tenant and Tokens are being served from
// memory (CacheTenants was called and its listener is connected).
func (s *Store) TenantCacheLive() bool { return s.cache != nil && s.cache.isLive() }

// watchRetry bounds the wait between attempts to listen again.
const watchRetry = 5 * time.Second

// watchTenants listens until ctx ends, reconnecting after a failure.
func (s *Store) watchTenants(ctx context.Context) {
	wait := 100 * time.Millisecond
	for ctx.Err() == nil {
		listened := s.listenTenants(ctx)
		s.cache.setLive(false)
		if listened {
			wait = 100 * time.Millisecond
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
		wait = min(2*wait, watchRetry)
	}
}

// The listener proves that notifications reach it before it serves anything
// from memory, and again every probeEvery: it sends one (a probe, through the
// pool, as any writer would) and must receive it within probeTimeout. Behind a
// pooler that does not keep a LISTEN's session (PgBouncer in transaction
// mode), notifications never arrive; the cache then never goes live and every
// read goes to Postgres, rather than serving copies nothing would forget.
const (
	probeEvery   = 30 * time.Second
	probeTimeout = 10 * time.Second
	probePrefix  = "probe:"
)

// listenTenants opens a connection, listens and applies notifications until
// the connection fails, a probe does not come back, or ctx ends. It reports
// whether the cache went live.
func (s *Store) listenTenants(ctx context.Context) bool {
	conn, err := pgx.ConnectConfig(ctx, s.pool.Config().ConnConfig.Copy())
	if err != nil {
		return false
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = conn.Close(closeCtx)
	}()
	if _, err := conn.Exec(ctx, `LISTEN `+TenantChangedChannel); err != nil {
		return false
	}
	live := false
	pending, sent := "", time.Time{}
	for {
		now := time.Now()
		switch {
		case pending != "" && now.Sub(sent) > s.probeTimeout():
			return live // notifications do not arrive
		case pending == "" && now.Sub(sent) >= probeEvery:
			pending, sent = probePrefix+strconv.FormatUint(rand.Uint64(), 36), now
			if err := s.sendProbe(ctx, pending); err != nil {
				return live
			}
		}
		wctx, cancel := context.WithTimeout(ctx, time.Second)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return live
		case err != nil && !pgconn.Timeout(err):
			return live // the connection failed
		case err != nil: // a second without a notification
		case n.Payload == pending:
			pending = ""
			if !live {
				// Only now can no change be missed: copies start from here.
				s.cache.setLive(true)
				live = true
			}
		case strings.HasPrefix(n.Payload, probePrefix): // another process's probe
		default:
			s.cache.forget(n.Payload)
		}
	}
}

// sendProbe notifies the channel with token, through the pool.
func (s *Store) sendProbe(ctx context.Context, token string) error {
	if s.probeHook != nil {
		return s.probeHook(ctx, token)
	}
	_, err := s.pool.Exec(ctx, `SELECT pg_notify($1, $2)`, TenantChangedChannel, token)
	return err
}

func (s *Store) probeTimeout() time.Duration {
	if s.probeWait > 0 {
		return s.probeWait
	}
	return probeTimeout
}

// changedTenant forgets id's copies after this Store changed its rows, so
// this process reads its own writes without waiting for the notification.
func (s *Store) changedTenant(id string) {
	if s.cache != nil {
		s.cache.forget(id)
	}
}

// cached returns id's copy in the cache's map m, reading it with read (and
// keeping it when allowed) when there is none; without CacheTenants it just
// reads.
func cached[T any](s *Store, m func(*tenantCache) map[string]T, id string, read func() (T, error)) (T, error) {
	if s.cache == nil {
		return read()
	}
	v, ok, gen := lookup(s.cache, m(s.cache), id)
	if ok {
		return v, nil
	}
	v, err := read()
	if err == nil {
		keep(s.cache, m(s.cache), id, v, gen)
	}
	return v, err
}
