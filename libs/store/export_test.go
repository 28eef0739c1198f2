package store

// CachedTenant is Tenant with the Postgres read replaced by read (tests count
// the reads the cache lets through).
func CachedTenant(s *Store, id string, read func() (Tenant, error)) (Tenant, error) {
	return cached(s, func(c *tenantCache) map[string]Tenant { return c.tenants }, id, read)
}

// ForgetTenant is what a notification for id does.
func ForgetTenant(s *Store, id string) { s.changedTenant(id) }
