package bus

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Stream names: part of the operator contract (the nats CLI shows them).
const (
	// StreamIngest holds the outbox rows relays publish (ledger.ingest.<tenant>.<event>):
	// the shop's JSON envelope byte for byte, for ingest to verify and accept
	// as it does a webhook (docs/relay.md).
	StreamIngest  = "INGEST"
	StreamOutbox  = "OUTBOX"
	StreamSage    = "SAGE"
	StreamResults = "RESULTS"
	StreamDLQ     = "DLQ"
	// StreamShop is the back channel to relay-connected shops
	// (ledger.shop.<tenant>.<kind>): sync states for the shop's
	// byte8_entity_sync_state and rows ingest refused for its outbox, which
	// the tenant's relay applies to the shop's database (docs/relay.md). A
	// work queue: a message is gone once the relay acknowledged it.
	StreamShop = "SHOP"
)

// Kinds of message on the SHOP stream (the last subject token).
const (
	// ShopSyncState carries a ledger.v1.PushSyncStateRequest.
	ShopSyncState = "syncstate"
	// ShopRefused carries a ledger.v1.RefusedRow.
	ShopRefused = "refused"
)

// Headers Ledger sets on its messages.
const (
	HeaderType        = "Ledger-Type" // fully qualified proto name of the payload
	HeaderTraceparent = "traceparent"
	HeaderTenant      = "Ledger-Tenant"
	HeaderRun         = "Ledger-Run"
)

// token makes a value safe as one subject token (tenant ids are already
// restricted to letters, digits, '-' and '_'; this is defence in depth).
func token(s string) string {
	if s == "" {
		return "_"
	}
	return strings.Map(func(r rune) rune {
		switch r {
		case '.', '*', '>', ' ', '\t', '\r', '\n':
			return '_'
		}
		return r
	}, s)
}

// Filters selecting a whole stream's subjects.
const (
	IngestAll  = "ledger.ingest.>"
	OutboxAll  = "ledger.outbox.>"
	SageAll    = "ledger.sage.>"
	ResultsAll = "ledger.result.>"
	DLQAll     = "ledger.dlq.>"
	ShopAll    = "ledger.shop.>"
)

// SageTenantFilter selects one tenant's Sage writes: ledger.sage.<tenant>.>.
func SageTenantFilter(tenant string) string { return "ledger.sage." + token(tenant) + ".>" }

// Subject is a Ledger subject taken apart.
type Subject struct {
	Stream string // INGEST, OUTBOX, SAGE, RESULTS, DLQ or SHOP
	Stage  string // DLQ only: the stage that dead-lettered
	Tenant string
	// Entity is the entity type (SAGE, RESULTS, DLQ), on INGEST and
	// OUTBOX the event (invoice.created), on SHOP the kind (syncstate).
	Entity string
}

// ParseSubject takes apart a subject built by IngestSubject, OutboxSubject, SageSubject,
// ResultSubject, DLQSubject or ShopSubject, and only such a subject: the token count of its
// kind, and no empty token or token the builders would have escaped (a
// wildcard, whitespace), so the parts it returns rebuild the same subject.
func ParseSubject(subject string) (Subject, error) {
	parts := strings.Split(subject, ".")
	if len(parts) < 4 || parts[0] != "ledger" {
		return Subject{}, fmt.Errorf("bus: %q is not a Ledger subject (ledger.<kind>.<tenant>.<entity>)", subject)
	}
	for _, p := range parts {
		if p == "" || token(p) != p {
			return Subject{}, fmt.Errorf("bus: %q is not a Ledger subject: it has an empty token or a wildcard", subject)
		}
	}
	switch {
	case parts[1] == "ingest":
		return Subject{Stream: StreamIngest, Tenant: parts[2], Entity: strings.Join(parts[3:], ".")}, nil
	case parts[1] == "outbox":
		return Subject{Stream: StreamOutbox, Tenant: parts[2], Entity: strings.Join(parts[3:], ".")}, nil
	case parts[1] == "sage" && len(parts) == 4:
		return Subject{Stream: StreamSage, Tenant: parts[2], Entity: parts[3]}, nil
	case parts[1] == "result" && len(parts) == 4:
		return Subject{Stream: StreamResults, Tenant: parts[2], Entity: parts[3]}, nil
	case parts[1] == "dlq" && len(parts) == 5:
		return Subject{Stream: StreamDLQ, Stage: parts[2], Tenant: parts[3], Entity: parts[4]}, nil
	case parts[1] == "shop" && len(parts) == 4:
		return Subject{Stream: StreamShop, Tenant: parts[2], Entity: parts[3]}, nil
	}
	return Subject{}, fmt.Errorf("bus: %q is not a Ledger subject", subject)
}

// OutboxSubject is ledger.outbox.<tenant>.<event>; the event keeps its dot
// (ledger.outbox.t1.invoice.created), so ledger.outbox.t1.invoice.> selects a family.
func OutboxSubject(tenant, event string) string {
	return "ledger.outbox." + token(tenant) + "." + eventTokens(event)
}

// IngestSubject is ledger.ingest.<tenant>.<event>, where a relay publishes one
// outbox row of tenant; the event keeps its dot, as on OUTBOX.
func IngestSubject(tenant, event string) string {
	return "ledger.ingest." + token(tenant) + "." + eventTokens(event)
}

// RelayMsgID is the Nats-Msg-Id of a relayed outbox row: <tenant>:<key>.
// JetStream deduplicates message ids across a whole stream, and every shop
// numbers its rows alike (invoice.created:1), so a bare key would make one
// shop's row a "duplicate" of another's within the window and drop it.
func RelayMsgID(tenant, key string) string { return token(tenant) + ":" + key }

// ShopSubject is ledger.shop.<tenant>.<kind> (ShopSyncState, ShopRefused).
func ShopSubject(tenant, kind string) string {
	return "ledger.shop." + token(tenant) + "." + token(kind)
}

// ShopTenantFilter selects everything for one tenant's relay:
// ledger.shop.<tenant>.>.
func ShopTenantFilter(tenant string) string { return "ledger.shop." + token(tenant) + ".>" }

// IngestTenantFilter selects one tenant's relayed rows: ledger.ingest.<tenant>.>
// (what a relay's NATS user may publish to).
func IngestTenantFilter(tenant string) string { return "ledger.ingest." + token(tenant) + ".>" }

func eventTokens(event string) string {
	parts := strings.Split(event, ".")
	for i := range parts {
		parts[i] = token(parts[i])
	}
	return strings.Join(parts, ".")
}

// SageSubject is ledger.sage.<tenant>.<entity>.
func SageSubject(tenant, entity string) string {
	return "ledger.sage." + token(tenant) + "." + token(entity)
}

// ResultSubject is ledger.result.<tenant>.<entity>.
func ResultSubject(tenant, entity string) string {
	return "ledger.result." + token(tenant) + "." + token(entity)
}

// DLQSubject is ledger.dlq.<stage>.<tenant>.<entity>.
func DLQSubject(stage, tenant, entity string) string {
	return "ledger.dlq." + token(stage) + "." + token(tenant) + "." + token(entity)
}

// DedupeWindow is how long JetStream remembers a Nats-Msg-Id: a network retry of
// one publish within it is stored once.
const DedupeWindow = 2 * time.Minute

// Streams returns the configuration of Ledger's six streams. replicas is 1 for a
// single server and 3 for a production cluster.
func Streams(replicas int) []jetstream.StreamConfig {
	if replicas < 1 {
		replicas = 1
	}
	base := func(name, desc string, subjects ...string) jetstream.StreamConfig {
		return jetstream.StreamConfig{
			Name: name, Description: desc, Subjects: subjects,
			Storage: jetstream.FileStorage, Retention: jetstream.LimitsPolicy,
			Replicas: replicas, Duplicates: DedupeWindow, MaxAge: 30 * 24 * time.Hour,
		}
	}
	dlq := base(StreamDLQ, "dead letters: kept until replayed or purged", DLQAll)
	dlq.MaxAge = 0
	// SHOP is consumed by one relay per tenant (filters that never overlap,
	// as a work queue requires); what a relay never takes ages out after
	// MaxAge, and BackfillSyncState pushes the sync states again.
	shop := base(StreamShop, "sync states and refused rows for relay-connected shops (→ relay)", ShopAll)
	shop.Retention = jetstream.WorkQueuePolicy
	// INGEST deduplicates on the row's Idempotency-Key (a relay's Nats-Msg-Id)
	// for the same window as the others; ingest's own dedupe on the key
	// (INGEST_DEDUP_WINDOW) is the backstop past it.
	return []jetstream.StreamConfig{
		base(StreamIngest, "outbox rows published by relays (relay → ingest)", IngestAll),
		base(StreamOutbox, "accepted Magento webhooks (ingest → mapper)", OutboxAll),
		base(StreamSage, "Sage writes (mapper → sage-writer)", SageAll),
		base(StreamResults, "terminal sync results (→ statecallback, counters)", ResultsAll),
		dlq,
		shop,
	}
}

// EnsureStreams creates or updates the streams. Every service calls it at start,
// so any one of them can come up first.
func EnsureStreams(ctx context.Context, js jetstream.JetStream, replicas int) error {
	for _, cfg := range Streams(replicas) {
		if _, err := js.CreateOrUpdateStream(ctx, cfg); err != nil {
			return fmt.Errorf("bus: stream %s: %w", cfg.Name, err)
		}
	}
	return nil
}
