package admin

import (
	"strings"
	"testing"
	"unicode"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ledgersync/ledger/libs/bus"
	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
)

// FuzzDeadLetter decodes arbitrary bytes as a dead letter read from the DLQ
// stream, as ListDeadLetters and ReplayDeadLetters do. An unfiltered listing
// shows every dead letter that decodes; a replay publishes only to a subject
// Ledger builds on one of its work streams (OUTBOX, SAGE, RESULTS), never to
// the DLQ, a wildcard or a subject with tokens a consumer would misread.
func FuzzDeadLetter(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		dl := &ledgerv1.DeadLetter{}
		if err := proto.Unmarshal(data, dl); err != nil {
			return
		}
		if !(dlqFilter{}).match(dl) {
			t.Fatalf("the empty filter hides %v", dl)
		}
		subj := dl.GetOriginalSubject()
		if !replayable(subj) {
			return
		}
		s, err := bus.ParseSubject(subj)
		if err != nil || (s.Stream != bus.StreamOutbox && s.Stream != bus.StreamSage && s.Stream != bus.StreamResults) {
			t.Fatalf("a replay would publish to %q (%+v, %v)", subj, s, err)
		}
	})
}

// FuzzDLQFilter feeds arbitrary DeadLetterFilter values (an operator's
// ledgerctl flags) to parseDLQFilter. A filter it accepts selects DLQ
// subjects: ledger.dlq.<stage>.<tenant>.<entity>, each token "*" or one NATS
// subject token without wildcards, white space or control characters; since
// is not after until; run ids are canonical UUIDs.
func FuzzDLQFilter(f *testing.F) {
	f.Fuzz(func(t *testing.T, stage, tenant, entity, class string, since, until int64, runs string) {
		in := &ledgerv1.DeadLetterFilter{Stage: stage, TenantId: tenant, EntityType: entity, ErrorClass: class}
		if since != 0 {
			in.Since = &timestamppb.Timestamp{Seconds: since % (1 << 40)}
		}
		if until != 0 {
			in.Until = &timestamppb.Timestamp{Seconds: until % (1 << 40)}
		}
		if runs != "" {
			in.SyncRunIds = strings.Split(runs, ",")
		}
		out, err := parseDLQFilter(in)
		if err != nil {
			return
		}
		toks := strings.Split(out.subject, ".")
		if len(toks) != 5 || toks[0] != "ledger" || toks[1] != "dlq" {
			t.Fatalf("filter subject %q", out.subject)
		}
		for _, tok := range toks[2:] {
			if tok == "*" {
				continue
			}
			if tok == "" || strings.ContainsAny(tok, "*>") || strings.ContainsFunc(tok, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) {
				t.Fatalf("filter subject %q has the token %q", out.subject, tok)
			}
		}
		if !out.since.IsZero() && !out.until.IsZero() && out.until.Before(out.since) {
			t.Fatalf("since %v after until %v", out.since, out.until)
		}
		for id := range out.runs {
			if len(id) != 36 || strings.ToLower(id) != id {
				t.Fatalf("run id %q is not canonical", id)
			}
		}
	})
}
