package bus

import (
	"strings"
	"testing"
)

// rebuild is the subject the builders make from s: a subject ParseSubject
// accepts must be exactly that, since every Ledger subject is built by them.
func rebuild(s Subject) string {
	switch s.Stream {
	case StreamIngest:
		return IngestSubject(s.Tenant, s.Entity)
	case StreamOutbox:
		return OutboxSubject(s.Tenant, s.Entity)
	case StreamSage:
		return SageSubject(s.Tenant, s.Entity)
	case StreamResults:
		return ResultSubject(s.Tenant, s.Entity)
	case StreamDLQ:
		return DLQSubject(s.Stage, s.Tenant, s.Entity)
	case StreamShop:
		return ShopSubject(s.Tenant, s.Entity)
	}
	return ""
}

// FuzzParseSubject checks both directions. parse→format: a subject
// ParseSubject accepts is one the builders make (format(parse(s)) == s), so a
// handler reading tenant and entity from a delivered subject never gets a
// wildcard, an empty token or a token it silently dropped. format→parse:
// every subject the builders make from any tenant, event, entity and stage
// parses back to the tokens they wrote.
func FuzzParseSubject(f *testing.F) {
	f.Fuzz(func(t *testing.T, subject, tenant, entity, stage string) {
		if s, err := ParseSubject(subject); err == nil {
			if got := rebuild(s); got != subject {
				t.Fatalf("ParseSubject(%q) = %+v, which the builders write as %q", subject, s, got)
			}
			if s.Tenant == "" || s.Entity == "" || (s.Stream == StreamDLQ) != (s.Stage != "") {
				t.Fatalf("ParseSubject(%q) = %+v has an empty part", subject, s)
			}
		}

		outbox := OutboxSubject(tenant, entity)
		wantEvent := make([]string, 0, 4)
		for p := range strings.SplitSeq(entity, ".") {
			wantEvent = append(wantEvent, token(p))
		}
		checkParse(t, outbox, Subject{Stream: StreamOutbox, Tenant: token(tenant), Entity: strings.Join(wantEvent, ".")})
		checkParse(t, IngestSubject(tenant, entity), Subject{Stream: StreamIngest, Tenant: token(tenant), Entity: strings.Join(wantEvent, ".")})
		checkParse(t, SageSubject(tenant, entity), Subject{Stream: StreamSage, Tenant: token(tenant), Entity: token(entity)})
		checkParse(t, ResultSubject(tenant, entity), Subject{Stream: StreamResults, Tenant: token(tenant), Entity: token(entity)})
		checkParse(t, DLQSubject(stage, tenant, entity), Subject{Stream: StreamDLQ, Stage: token(stage), Tenant: token(tenant), Entity: token(entity)})
		checkParse(t, ShopSubject(tenant, entity), Subject{Stream: StreamShop, Tenant: token(tenant), Entity: token(entity)})
		if filter := ShopTenantFilter(tenant); !strings.HasPrefix(ShopSubject(tenant, entity), strings.TrimSuffix(filter, ">")) {
			t.Fatalf("ShopTenantFilter(%q) = %q does not select ShopSubject %q", tenant, filter, ShopSubject(tenant, entity))
		}
		if filter := SageTenantFilter(tenant); !strings.HasPrefix(SageSubject(tenant, entity), strings.TrimSuffix(filter, ">")) {
			t.Fatalf("SageTenantFilter(%q) = %q does not select SageSubject %q", tenant, filter, SageSubject(tenant, entity))
		}
	})
}

func checkParse(t *testing.T, subject string, want Subject) {
	t.Helper()
	got, err := ParseSubject(subject)
	if err != nil || got != want {
		t.Fatalf("ParseSubject(%q) = %+v, %v; want %+v", subject, got, err, want)
	}
	for _, tok := range strings.Split(subject, ".") {
		if tok == "" || strings.ContainsAny(tok, "*> \t\r\n") {
			t.Fatalf("subject %q has the token %q, which NATS would read as a wildcard or a separator", subject, tok)
		}
	}
}
