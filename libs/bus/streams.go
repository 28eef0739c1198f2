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
	StreamOutbox  = "OUTBOX"
	StreamSage    = "SAGE"
	StreamResults = "RESULTS"
	StreamDLQ     = "DLQ"
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

// OutboxSubject is ledger.outbox.<tenant>.<event>; the event keeps its dot
// (ledger.outbox.t1.invoice.created), so ledger.outbox.t1.invoice.> selects a family.
func OutboxSubject(tenant, event string) string {
	parts := strings.Split(event, ".")
	for i := range parts {
		parts[i] = token(parts[i])
	}
	return "ledger.outbox." + token(tenant) + "." + strings.Join(parts, ".")
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

// Streams returns the configuration of Ledger's four streams. replicas is 1 for a
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
	dlq := base(StreamDLQ, "dead letters: kept until replayed or purged", "ledger.dlq.>")
	dlq.MaxAge = 0
	return []jetstream.StreamConfig{
		base(StreamOutbox, "accepted Magento webhooks (ingest → mapper)", "ledger.outbox.>"),
		base(StreamSage, "Sage writes (mapper → sage-writer)", "ledger.sage.>"),
		base(StreamResults, "terminal sync results (→ statecallback, counters)", "ledger.result.>"),
		dlq,
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
