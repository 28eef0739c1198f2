package mapper

import (
	"context"
	"errors"
	"sync"

	"github.com/ledgersync/ledger/libs/store"
)

// Directory is what the Builder remembers between runs, through entity_xref:
// which contact variants exist in Sage, which contact reference belongs to
// which customer (quirk 23 collisions), and which contact an invoice was
// booked on (B2C consolidation; credit notes and payments follow it).
//
// The mapper writes two kinds of its own, never Sage ids:
//
//   - "contact_ref": key = the reference (upper case), currency "", sage_id =
//     the owner "identity|currency". The first customer to claim a reference
//     keeps it; another one whose candidate is taken moves to its next
//     deterministic candidate (quirks.ReferenceCandidates).
//   - "invoice_contact": key = invoice id, currency = document currency,
//     sage_id = the contact identity, reference = its reference. Written the
//     first time an invoice (or a payment or credit memo ensuring it) is
//     mapped; every later document of that invoice reads it.
type Directory interface {
	// ClaimReference returns the first of candidates that is free or already
	// owned by owner, claiming it.
	ClaimReference(ctx context.Context, owner string, candidates []string) (string, error)
	// InvoiceContact returns the recorded contact of an invoice.
	InvoiceContact(ctx context.Context, invoiceKey, currency string) (identity, reference string, ok bool, err error)
	// SetInvoiceContact records it.
	SetInvoiceContact(ctx context.Context, invoiceKey, currency, identity, reference string) error
	// ContactExists reports whether the writer recorded a Sage contact for
	// identity in currency (entity_xref kind "contact").
	ContactExists(ctx context.Context, identity, currency string) (bool, error)
	// Prefetch is a hint: the links named by keys are about to be asked
	// for, so a Directory backed by a database may read them at once.
	Prefetch(ctx context.Context, keys []store.XrefKey) error
}

// Directory xref kinds owned by the mapper.
const (
	XrefContactRef     = "contact_ref"
	XrefInvoiceContact = "invoice_contact"
)

// XrefStore is the part of the store a StoreDirectory reads.
type XrefStore interface {
	Xref(ctx context.Context, tenantID, kind, magentoKey, currency string) (store.Xref, error)
	Xrefs(ctx context.Context, tenantID string, keys []store.XrefKey) (map[store.XrefKey]store.Xref, error)
}

// StoreDirectory is the Directory of one tenant in entity_xref, for one run:
// what Prefetch read (links found, and keys found absent) and what the run
// decided answer later questions without another read. A run's answers come
// from one moment, as they would from reads made a few milliseconds apart.
//
// What the run decides (a claimed reference, an invoice's contact) is not
// written at once: Pending hands it to the run's mapping record
// (store.Mapping.Links), one transaction with the run's snapshot, written
// before the SageWrite is published. The mapper's St is the run's
// store.Unit, so the reads are part of that transaction too. A crash before it loses only decisions
// that the redelivery makes again, the same way (they are deterministic).
type StoreDirectory struct {
	TenantID string
	St       XrefStore
	known    map[store.XrefKey]*store.Xref // nil value: known to be absent
	pending  []store.Xref
}

// NewStoreDirectory returns the Directory of tenantID for one run.
func NewStoreDirectory(tenantID string, st XrefStore) *StoreDirectory {
	return &StoreDirectory{TenantID: tenantID, St: st, known: map[store.XrefKey]*store.Xref{}}
}

// Prefetch implements Directory: one statement for every key not known yet.
func (d *StoreDirectory) Prefetch(ctx context.Context, keys []store.XrefKey) error {
	var missing []store.XrefKey
	for _, k := range keys {
		if _, ok := d.known[k]; !ok {
			missing = append(missing, k)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	found, err := d.St.Xrefs(ctx, d.TenantID, missing)
	if err != nil {
		return err
	}
	for _, k := range missing {
		if x, ok := found[k]; ok {
			d.known[k] = &x
		} else {
			d.known[k] = nil
		}
	}
	return nil
}

// xref is one link: from what is known, else read (and then known).
func (d *StoreDirectory) xref(ctx context.Context, kind, key, currency string) (store.Xref, error) {
	k := store.XrefKey{Kind: kind, MagentoKey: key, Currency: currency}
	if x, ok := d.known[k]; ok {
		if x == nil {
			return store.Xref{}, store.ErrNotFound
		}
		return *x, nil
	}
	x, err := d.St.Xref(ctx, d.TenantID, kind, key, currency)
	switch {
	case err == nil:
		d.known[k] = &x
	case errors.Is(err, store.ErrNotFound):
		d.known[k] = nil
	}
	return x, err
}

// put records a link the run decided: known at once, written with the run's
// mapping (Pending).
func (d *StoreDirectory) put(x store.Xref) {
	d.known[store.XrefKey{Kind: x.Kind, MagentoKey: x.MagentoKey, Currency: x.Currency}] = &x
	d.pending = append(d.pending, x)
}

// Pending returns the links the run decided, in order, for its mapping
// record. A nil directory has none.
func (d *StoreDirectory) Pending() []store.Xref {
	if d == nil {
		return nil
	}
	return d.pending
}

// ClaimReference implements Directory. Two mappers racing for one free
// reference both write it; the later write wins and the earlier one's next
// run moves on. Runs of one customer are idempotent either way.
func (d *StoreDirectory) ClaimReference(ctx context.Context, owner string, candidates []string) (string, error) {
	for _, ref := range candidates {
		x, err := d.xref(ctx, XrefContactRef, refKey(ref), "")
		switch {
		case errors.Is(err, store.ErrNotFound):
			d.put(store.Xref{TenantID: d.TenantID, Kind: XrefContactRef, MagentoKey: refKey(ref), SageID: owner, Reference: ref})
			return ref, nil
		case err != nil:
			return "", err
		case x.SageID == owner:
			return ref, nil
		}
	}
	return "", errReferencesExhausted
}

// InvoiceContact implements Directory.
func (d *StoreDirectory) InvoiceContact(ctx context.Context, invoiceKey, currency string) (string, string, bool, error) {
	x, err := d.xref(ctx, XrefInvoiceContact, invoiceKey, currency)
	if errors.Is(err, store.ErrNotFound) {
		return "", "", false, nil
	}
	if err != nil {
		return "", "", false, err
	}
	return x.SageID, x.Reference, true, nil
}

// SetInvoiceContact implements Directory.
func (d *StoreDirectory) SetInvoiceContact(_ context.Context, invoiceKey, currency, identity, reference string) error {
	d.put(store.Xref{TenantID: d.TenantID, Kind: XrefInvoiceContact, MagentoKey: invoiceKey,
		Currency: currency, SageID: identity, Reference: reference})
	return nil
}

// ContactExists implements Directory.
func (d *StoreDirectory) ContactExists(ctx context.Context, identity, currency string) (bool, error) {
	_, err := d.xref(ctx, XrefContact, identity, currency)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

var errReferencesExhausted = errors.New("every candidate contact reference is taken by another customer")

// MemoryDirectory is an in-memory Directory (tests, the property test and
// tools). The zero value is ready to use; it is safe for concurrent use.
type MemoryDirectory struct {
	mu       sync.Mutex
	refs     map[string]string    // reference key → owner
	invoices map[string][2]string // invoice|currency → identity, reference
	contacts map[string]bool      // identity|currency
}

// ClaimReference implements Directory.
func (m *MemoryDirectory) ClaimReference(_ context.Context, owner string, candidates []string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.refs == nil {
		m.refs = map[string]string{}
	}
	for _, ref := range candidates {
		switch o, ok := m.refs[refKey(ref)]; {
		case !ok:
			m.refs[refKey(ref)] = owner
			return ref, nil
		case o == owner:
			return ref, nil
		}
	}
	return "", errReferencesExhausted
}

// InvoiceContact implements Directory.
func (m *MemoryDirectory) InvoiceContact(_ context.Context, invoiceKey, currency string) (string, string, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.invoices[invoiceKey+"|"+currency]
	return v[0], v[1], ok, nil
}

// SetInvoiceContact implements Directory.
func (m *MemoryDirectory) SetInvoiceContact(_ context.Context, invoiceKey, currency, identity, reference string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.invoices == nil {
		m.invoices = map[string][2]string{}
	}
	m.invoices[invoiceKey+"|"+currency] = [2]string{identity, reference}
	return nil
}

// Prefetch implements Directory: everything is in memory already.
func (m *MemoryDirectory) Prefetch(context.Context, []store.XrefKey) error { return nil }

// ContactExists implements Directory.
func (m *MemoryDirectory) ContactExists(_ context.Context, identity, currency string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.contacts[identity+"|"+currency], nil
}

// AddContact records that a contact variant exists (what the writer's xref
// would say), for tests.
func (m *MemoryDirectory) AddContact(identity, currency string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.contacts == nil {
		m.contacts = map[string]bool{}
	}
	m.contacts[identity+"|"+currency] = true
}

// ClaimFor pre-claims a reference for another owner, for collision tests.
func (m *MemoryDirectory) ClaimFor(owner, ref string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.refs == nil {
		m.refs = map[string]string{}
	}
	m.refs[refKey(ref)] = owner
}
