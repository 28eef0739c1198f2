package mapper

import (
	"sync"

	"github.com/ledgersync/ledger/libs/policy"
	"github.com/ledgersync/ledger/libs/store"
)

// tenantData keeps, per tenant, the policy and Sage reference data the mapper
// parsed, with the store.DataVersions they were read at. Every event reads the
// versions with its tenant (one statement) and reloads a part only when its
// version changed, so an operator's SetPolicy or a reference-data refresh
// applies to the next event while an unchanged tenant costs no reads of
// policies or ref_cache and no parsing. The parsed values are shared
// read-only, and so is the policy's JSON, which every run's snapshot stores.
type tenantData struct {
	mu sync.Mutex
	m  map[string]parsedTenant
}

type parsedTenant struct {
	policyVersion string
	policy        policy.Policy
	policyJSON    []byte
	hasPolicy     bool
	refsVersion   string
	refs          *policy.References
}

// policyAt returns the tenant's parsed policy, and its JSON, if it was read
// at version.
func (d *tenantData) policyAt(tenant, version string) (policy.Policy, []byte, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	p, ok := d.m[tenant]
	if !ok || !p.hasPolicy || p.policyVersion != version {
		return policy.Policy{}, nil, false
	}
	return p.policy, p.policyJSON, true
}

// refsAt returns the tenant's parsed reference data if it was read at version.
func (d *tenantData) refsAt(tenant, version string) (*policy.References, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	p, ok := d.m[tenant]
	if !ok || p.refs == nil || p.refsVersion != version {
		return nil, false
	}
	return p.refs, true
}

// keep records what was parsed at v (a part left zero is not changed). A
// read made after v may be newer than v: the next event then sees another
// version and reloads, never the reverse.
func (d *tenantData) keep(tenant string, v store.DataVersions, pol *policy.Policy, refs *policy.References) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.m == nil {
		d.m = map[string]parsedTenant{}
	}
	p := d.m[tenant]
	if pol != nil {
		p.policyVersion, p.policy, p.policyJSON, p.hasPolicy = v.Policy, *pol, pol.JSON(), true
	}
	if refs != nil {
		p.refsVersion, p.refs = v.Refs, refs
	}
	d.m[tenant] = p
}
