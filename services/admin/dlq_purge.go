package admin

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ledgersync/ledger/libs/bus"
	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
)

// PurgeDeadLetters deletes the dead letters a filter matches: failures an
// operator decided must never be replayed (the runbook entries whose replay
// says "none"). A first pass counts the matches; dry_run stops there, and an
// expected_count that differs from it deletes nothing (the operator confirmed
// another number). Each dead letter is deleted on its own; one that cannot be
// deleted stays, and the answer says how many went.
func (s *Service) PurgeDeadLetters(ctx context.Context, req *ledgerv1.PurgeDeadLettersRequest) (*ledgerv1.PurgeDeadLettersResponse, error) {
	f, err := parseDLQFilter(req.GetFilter())
	if err != nil {
		return nil, err
	}
	if req.GetExpectedCount() < 0 {
		return nil, status.Errorf(codes.InvalidArgument, "expected_count %d: give the count a dry run showed, or 0 to skip the check", req.GetExpectedCount())
	}
	stream, err := s.dlqStream(ctx)
	if err != nil {
		return nil, err
	}
	var seqs []uint64
	err = s.scanDLQ(ctx, stream, f, func(seq uint64, _ string, _ *ledgerv1.DeadLetter) bool {
		seqs = append(seqs, seq)
		return len(seqs) < maxReplay
	})
	if err != nil {
		return nil, err
	}
	out := &ledgerv1.PurgeDeadLettersResponse{Matched: int64(len(seqs))}
	if req.GetDryRun() {
		out.Message = fmt.Sprintf("dry run: %d dead letters would be deleted", len(seqs))
		return out, nil
	}
	if want := req.GetExpectedCount(); want > 0 && want != out.Matched {
		return nil, status.Errorf(codes.FailedPrecondition,
			"%d dead letters match the filter now, not the %d you confirmed: nothing was deleted; count again (dry run) and confirm that number", out.Matched, want)
	}
	var lastErr error
	for _, seq := range seqs {
		switch err := stream.DeleteMsg(ctx, seq); {
		case err == nil:
			out.Purged++
			s.metrics.purged.WithLabelValues("ok").Inc()
		case errors.Is(err, jetstream.ErrMsgNotFound):
			// replayed or purged meanwhile: not ours to count
		case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
			out.Failed = out.Matched - out.Purged
			out.Message = fmt.Sprintf("interrupted after deleting %d of %d: the rest are still in the DLQ", out.Purged, out.Matched)
			return out, status.Error(codes.Canceled, out.Message)
		default:
			out.Failed++
			lastErr = err
			s.metrics.purged.WithLabelValues("failed").Inc()
		}
	}
	out.Message = fmt.Sprintf("deleted %d of %d dead letters", out.Purged, out.Matched)
	if out.Failed > 0 {
		out.Message += fmt.Sprintf("; %d could not be deleted and stay in the DLQ (last error: %v)", out.Failed, lastErr)
	}
	s.log.InfoContext(ctx, "dead letters purged", "filter", f.subject, "matched", out.Matched, "purged", out.Purged, "failed", out.Failed)
	return out, nil
}

// tenantDeadLetters counts a tenant's dead letters from the DLQ stream's
// per-subject state (one request, no scan); -1 when NATS cannot say.
func (s *Service) tenantDeadLetters(ctx context.Context, tenantID string) int64 {
	if s.js == nil {
		return -1
	}
	stream, err := s.js.Stream(ctx, bus.StreamDLQ)
	if err != nil {
		return -1
	}
	info, err := stream.Info(ctx, jetstream.WithSubjectFilter("ledger.dlq.*."+tenantID+".>"))
	if err != nil {
		s.log.WarnContext(ctx, "dlq: counting a tenant's dead letters", "tenant_id", tenantID, "err", err)
		return -1
	}
	var n int64
	for _, c := range info.State.Subjects {
		n += int64(c)
	}
	return n
}
