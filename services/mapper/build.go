package mapper

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ledgersync/ledger/libs/magento"
	"github.com/ledgersync/ledger/libs/money"
	"github.com/ledgersync/ledger/libs/policy"
	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
	"github.com/ledgersync/ledger/services/mapper/quirks"
)

// Limits of Sage fields the mapper fills, from Sage's v3.1 schema: a contact's
// name, its contact person's name and telephone, a sales invoice's reference
// and a contact payment's reference.
const (
	MaxContactName        = 100
	MaxContactPersonField = 50
	MaxInvoiceReference   = 25
	MaxPaymentReference   = 25
)

// Operation keys of the writes the mapper emits (SageOperation.key), and the
// entity_xref kinds of their documents.
const (
	KeyContact    = "contact"
	KeyInvoice    = "invoice"
	KeyPayment    = "payment"
	KeyCreditNote = "credit_note"
	KeyAllocation = "allocation"
	KeyRefund     = "refund"
	KeyProduct    = "product"
	KeyService    = "service"
	// KeyUnitemisedCredit receives an invoice's unitemised gift card or
	// store credit from the clearing account (policy unitemised_credit).
	KeyUnitemisedCredit = "unitemised_credit"

	XrefContact          = "contact"
	XrefInvoice          = "invoice"
	XrefPayment          = "payment"
	XrefCreditNote       = "credit_note"
	XrefAllocation       = "allocation"
	XrefRefund           = "refund"
	XrefProduct          = "product"
	XrefService          = "service"
	XrefUnitemisedCredit = "unitemised_credit"
)

// CreditReferenceSuffix ends the reference of an unitemised credit's receipt.
const CreditReferenceSuffix = "-CR"

// Builder turns canonical Magento documents into SageWrites for one tenant.
// Apart from Dir (the contact references and invoice→contact routing it
// remembers in entity_xref) it is pure: the same inputs always give the same
// write, byte for byte, so a replay never duplicates anything in Sage.
type Builder struct {
	TenantID     string
	Policy       policy.Policy
	BaseCurrency string
	// Dir remembers contact references and invoice contacts; nil uses a
	// throwaway MemoryDirectory (tests of a single document).
	Dir Directory
	// Refs, when set, is the tenant's Sage reference cache: every policy id a
	// write uses must be in it, else the write fails with ref_cache_stale
	// naming the policy field.
	Refs *policy.References
}

// IdempotencyID is the deterministic Sage idempotency_id of an operation: the
// first 32 hex characters of SHA-256 over tenant|resource|xref kind|xref
// key|currency, where resource is Sage's root key ("contact", "sales_invoice").
func IdempotencyID(tenantID, resource, xrefKind, xrefKey, currency string) string {
	sum := sha256.Sum256([]byte(strings.Join([]string{tenantID, resource, xrefKind, xrefKey, currency}, "|")))
	return hex.EncodeToString(sum[:])[:32]
}

// Skip is a document the policy says not to sync: the run is finished skipped
// with Reason (a stable skip reason) and Message.
type Skip struct {
	Reason  string
	Message string
}

func (s *Skip) Error() string { return s.Reason + ": " + s.Message }

func skipf(reason, format string, args ...any) *Skip {
	return &Skip{Reason: reason, Message: fmt.Sprintf(format, args...)}
}

// applied collects the quirk rules that shaped a write.
type applied map[string]bool

func (a applied) list() []string {
	var out []string
	for _, n := range quirks.Order {
		if a[n] {
			out = append(out, n)
		}
	}
	return out
}

// mapping is the state of building one write: the quirks applied and the
// policy ids used (checked against the Sage reference cache afterwards).
type mapping struct {
	b    Builder
	q    applied
	uses []policy.ReferenceError
	ops  []*ledgerv1.SageOperation
	keys map[string]bool
}

func (b Builder) start() *mapping {
	if b.Dir == nil {
		b.Dir = &MemoryDirectory{}
	}
	if b.BaseCurrency == "" {
		b.BaseCurrency = b.Policy.BaseCurrency
	}
	return &mapping{b: b, q: applied{}, keys: map[string]bool{}}
}

// use records that the write uses the policy's id of field.
func (m *mapping) use(field, kind, id string) string {
	for _, u := range m.uses {
		if u.Field == field {
			return id
		}
	}
	m.uses = append(m.uses, policy.ReferenceError{Field: field, Kind: kind, ID: id})
	return id
}

// ledger returns the account of field (falling back to the default account)
// and records its use.
func (m *mapping) ledger(field, id string) string {
	if id == "" {
		field, id = "default_ledger_account_id", m.b.Policy.DefaultLedgerAccountID
	}
	return m.use(field, policy.RefLedgerAccounts, id)
}

// add appends an operation once per key.
func (m *mapping) add(op *ledgerv1.SageOperation) {
	if m.keys[op.Key] {
		return
	}
	m.keys[op.Key] = true
	m.ops = append(m.ops, op)
}

// write checks the policy ids used against the reference cache and
// assembles the SageWrite.
func (m *mapping) write(entityType string, magentoID int64, resultKey string) (*ledgerv1.SageWrite, error) {
	if m.b.Refs != nil {
		for _, u := range m.uses {
			if err := m.b.Refs.Check(u.Field, u.Kind, u.ID); err != nil {
				return nil, failf(ClassValidation, CodeRefCacheStale, "%v", err)
			}
		}
	} else {
		for _, u := range m.uses {
			if u.ID == "" {
				return nil, failf(ClassValidation, CodeRefCacheStale, "%v", &u)
			}
		}
	}
	return &ledgerv1.SageWrite{
		TenantId: m.b.TenantID, EntityType: entityType, MagentoEntityId: magentoID,
		Operations: m.ops, ResultKey: resultKey, AppliedQuirks: m.q.list(),
	}, nil
}

// operation builds one SageOperation with its deterministic idempotency_id.
func (m *mapping) operation(key string, res ledgerv1.SageResource, rootKey, xrefKind, xrefKey, currency, reference string,
	body any, bindings ...*ledgerv1.FieldBinding) (*ledgerv1.SageOperation, error) {
	raw, err := json.Marshal(body)
	if err != nil {
		return nil, failf(ClassInternal, "payload_encoding", "%s %s: %v", xrefKind, xrefKey, err)
	}
	op := &ledgerv1.SageOperation{
		Key: key, Resource: res, XrefKind: xrefKind, XrefKey: xrefKey, Currency: currency, Reference: reference,
		IdempotencyId: IdempotencyID(m.b.TenantID, rootKey, xrefKind, xrefKey, currency),
		Body:          raw, Bindings: bindings,
	}
	if updatable[res] {
		op.Mode = ledgerv1.SageWriteMode_SAGE_WRITE_MODE_CREATE_OR_UPDATE
	}
	return op, nil
}

// updatable are the resources whose Sage document follows Magento after its
// creation: a contact (customer.upserted, and the contact step of every later
// event), a product or a service (product.upserted) is sent again with PUT
// when what the mapper builds differs from what Ledger last wrote; the writer
// compares. Sales documents, payments and allocations are created once.
var updatable = map[ledgerv1.SageResource]bool{
	ledgerv1.SageResource_SAGE_RESOURCE_CONTACT: true,
	ledgerv1.SageResource_SAGE_RESOURCE_PRODUCT: true,
	ledgerv1.SageResource_SAGE_RESOURCE_SERVICE: true,
}

func bind(field, from string) *ledgerv1.FieldBinding {
	return &ledgerv1.FieldBinding{Field: field, FromKey: from}
}

// documentReference puts the policy's prefix in front of the increment id,
// never twice.
func documentReference(prefix, incrementID string) string {
	incrementID = strings.TrimSpace(incrementID)
	if prefix == "" || strings.HasPrefix(incrementID, prefix) {
		return incrementID
	}
	return prefix + incrementID
}

// exchangeRate is a document's header exchange_rate (quirk 27) for Magento's
// base_to_order_rate. A rate so large that its inverse rounds to 0 at
// quirks.ExchangeRatePlaces is refused: Sage would book every base-currency
// amount of the document as 0. (The payment reuses its invoice's rate, which
// ensureInvoice has checked.)
func exchangeRate(baseToOrder *money.Number) (money.Number, error) {
	r := quirks.ExchangeRate(baseToOrder)
	if r.Sign() <= 0 {
		return money.Number{}, fmt.Errorf("base_to_order_rate %s gives an exchange rate of 0 at %d decimals",
			baseToOrder.Exact(), quirks.ExchangeRatePlaces)
	}
	return money.Number{Amount: money.FromDecimal(r)}, nil
}

// sageDate turns Magento's UTC timestamp into Sage's YYYY-MM-DD.
func sageDate(ts string) (string, error) {
	t, err := parseTime(ts)
	if err != nil {
		return "", err
	}
	return t.Format(time.DateOnly), nil
}

func parseTime(ts string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339, magento.MySQLTimestamp, time.DateOnly} {
		if t, err := time.Parse(layout, strings.TrimSpace(ts)); err == nil {
			// An offset can move 0000-01-01 or 9999-12-31 out of the
			// four-digit years Sage's YYYY-MM-DD can hold.
			if t = t.UTC(); t.Year() < 1 || t.Year() > 9999 {
				return time.Time{}, fmt.Errorf("%q is outside the years 0001 to 9999 in UTC", ts)
			}
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("want YYYY-MM-DDTHH:MM:SSZ")
}

func sageAddress(a *magento.Address) *SageAddress {
	if a == nil {
		return nil
	}
	var street []string
	for _, s := range a.Street {
		if s = quirks.CleanText(s, 0); s != "" {
			street = append(street, s)
		}
	}
	out := &SageAddress{
		City: quirks.CleanText(a.City, 0), Region: quirks.CleanText(a.Region, 0),
		PostalCode: strings.TrimSpace(a.Postcode), CountryID: strings.ToUpper(strings.TrimSpace(a.CountryID)),
	}
	if len(street) > 0 {
		out.AddressLine1 = street[0]
		out.AddressLine2 = strings.Join(slices.Clip(street[1:]), ", ")
	}
	return out
}

// invoiceAddresses are an invoice's billing and shipping addresses, falling
// back to the customer's (which Magento's invoice endpoint completes from the
// order).
func invoiceAddresses(inv magento.Invoice) (billing, shipping *magento.Address) {
	billing, shipping = inv.BillingAddress, inv.ShippingAddress
	if billing == nil && shipping == nil {
		billing, shipping = quirks.ContactAddresses(inv.Customer)
	}
	return billing, shipping
}

func country(a *magento.Address) string {
	if a == nil {
		return ""
	}
	return a.CountryID
}
