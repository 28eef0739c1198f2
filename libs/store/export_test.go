package store

import (
	"context"
	"time"
)

// CachedTenant is Tenant with the Postgres read replaced by read (tests count
// the reads the cache lets through).
func CachedTenant(s *Store, id string, read func() (Tenant, error)) (Tenant, error) {
	return cached(s, func(c *tenantCache) map[string]Tenant { return c.tenants }, id, read)
}

// ForgetTenant is what a notification for id does.
func ForgetTenant(s *Store, id string) { s.changedTenant(id) }

// SetProbe makes the tenant cache's listener send its probes through hook and
// give each wait to come back (call it before CacheTenants).
func SetProbe(s *Store, hook func(ctx context.Context, token string) error, wait time.Duration) {
	s.probeHook, s.probeWait = hook, wait
}
