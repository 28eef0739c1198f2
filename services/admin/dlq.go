package admin

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	otelcodes "go.opentelemetry.io/otel/codes"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/ledgersync/ledger/libs/bus"
	"github.com/ledgersync/ledger/libs/store"
	"github.com/ledgersync/ledger/libs/telemetry"
	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
)

// Dead-letter listing limits.
const (
	DefaultDeadLetterLimit = 100
	MaxDeadLetterLimit     = 1000
	// maxReplay bounds one replay; filter further for more.
	maxReplay = 100_000
)

// dlqStages are the stages that dead-letter.
var dlqStages = []string{"mapper", "sage-writer", "statecallback"}

// replayableSubjects are the only subjects a replay publishes to: Ledger's
// work streams, never the DLQ itself or anything outside Ledger.
var replayableSubjects = []string{"ledger.outbox.", "ledger.sage.", "ledger.result."}

// dlqFilter is a validated DeadLetterFilter.
type dlqFilter struct {
	subject      string
	class, code  string
	since, until time.Time
	runs         map[string]bool
}

func parseDLQFilter(f *ledgerv1.DeadLetterFilter) (dlqFilter, error) {
	out := dlqFilter{class: strings.TrimSpace(f.GetErrorClass()), code: strings.TrimSpace(f.GetErrorCode())}
	tok := func(v string) string {
		if v == "" {
			return "*"
		}
		return v
	}
	stage := strings.TrimSpace(f.GetStage())
	if stage != "" && !slices.Contains(dlqStages, stage) {
		return out, status.Errorf(codes.InvalidArgument, "stage %q: use one of %s", stage, strings.Join(dlqStages, ", "))
	}
	tenant := strings.TrimSpace(f.GetTenantId())
	if tenant != "" {
		if err := store.ValidTenantID(tenant); err != nil {
			return out, status.Errorf(codes.InvalidArgument, "tenant_id: %v", err)
		}
	}
	entity := strings.TrimSpace(f.GetEntityType())
	if !subjectWord(entity) {
		return out, status.Errorf(codes.InvalidArgument, "entity_type %q: use a single word such as invoice", entity)
	}
	out.subject = fmt.Sprintf("ledger.dlq.%s.%s.%s", tok(stage), tok(tenant), tok(entity))
	if f.GetSince() != nil {
		out.since = f.GetSince().AsTime()
	}
	if f.GetUntil() != nil {
		out.until = f.GetUntil().AsTime()
	}
	if !out.since.IsZero() && !out.until.IsZero() && out.until.Before(out.since) {
		return out, status.Error(codes.InvalidArgument, "until is before since")
	}
	for _, id := range f.GetSyncRunIds() {
		u, err := uuid.Parse(strings.TrimSpace(id))
		if err != nil {
			return out, status.Errorf(codes.InvalidArgument, "sync_run_ids: %q is not a run id (a UUID)", id)
		}
		if out.runs == nil {
			out.runs = map[string]bool{}
		}
		out.runs[u.String()] = true
	}
	return out, nil
}

// match applies the parts of the filter the subject cannot express.
func (f dlqFilter) match(dl *ledgerv1.DeadLetter) bool {
	if f.class != "" && dl.GetErrorClass() != f.class {
		return false
	}
	if f.code != "" && dl.GetErrorCode() != f.code {
		return false
	}
	at := dl.GetLastFailureAt()
	if at == nil {
		at = dl.GetFirstFailureAt()
	}
	if !f.since.IsZero() && (at == nil || at.AsTime().Before(f.since)) {
		return false
	}
	if !f.until.IsZero() && (at == nil || at.AsTime().After(f.until)) {
		return false
	}
	if f.runs != nil && !f.runs[dl.GetSyncRunId()] {
		return false
	}
	return true
}

// scanDLQ calls fn with every dead letter matching f, in stream order, until
// fn returns false. It reads with direct gets by subject (no consumer is
// created, so listing leaves no state on the server).
func (s *Service) scanDLQ(ctx context.Context, stream jetstream.Stream, f dlqFilter,
	fn func(seq uint64, subject string, dl *ledgerv1.DeadLetter) bool) error {
	seq := uint64(1)
	for {
		m, err := stream.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(f.subject))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil
		}
		if err != nil {
			return status.Errorf(codes.Unavailable, "reading the DLQ stream: %v", err)
		}
		seq = m.Sequence + 1
		dl := &ledgerv1.DeadLetter{}
		if err := proto.Unmarshal(m.Data, dl); err != nil {
			s.log.WarnContext(ctx, "dlq: undecodable dead letter skipped", "sequence", m.Sequence, "subject", m.Subject, "err", err)
			continue
		}
		if f.match(dl) && !fn(m.Sequence, m.Subject, dl) {
			return nil
		}
	}
}

func (s *Service) dlqStream(ctx context.Context) (jetstream.Stream, error) {
	if err := s.requireBus(); err != nil {
		return nil, err
	}
	st, err := s.js.Stream(ctx, bus.StreamDLQ)
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "opening the %s stream: %v", bus.StreamDLQ, err)
	}
	return st, nil
}

// ListDeadLetters lists dead letters matching the filter, oldest first.
func (s *Service) ListDeadLetters(ctx context.Context, req *ledgerv1.ListDeadLettersRequest) (*ledgerv1.ListDeadLettersResponse, error) {
	f, err := parseDLQFilter(req.GetFilter())
	if err != nil {
		return nil, err
	}
	limit := int(req.GetLimit())
	switch {
	case limit == 0:
		limit = DefaultDeadLetterLimit
	case limit < 0 || limit > MaxDeadLetterLimit:
		return nil, status.Errorf(codes.InvalidArgument, "limit %d: use 1–%d (default %d)", limit, MaxDeadLetterLimit, DefaultDeadLetterLimit)
	}
	stream, err := s.dlqStream(ctx)
	if err != nil {
		return nil, err
	}
	out := &ledgerv1.ListDeadLettersResponse{}
	err = s.scanDLQ(ctx, stream, f, func(seq uint64, subject string, dl *ledgerv1.DeadLetter) bool {
		out.DeadLetters = append(out.DeadLetters, &ledgerv1.DeadLetterSummary{Sequence: seq, Subject: subject, DeadLetter: dl})
		return len(out.DeadLetters) < limit
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ReplayDeadLetters republishes matching dead letters: each
// original goes back to its original subject with its Ledger-Type header, a
// new trace context (the replay's span, linked to the trace of the delivery
// that dead-lettered it) and Nats-Msg-Id "replay:<dlq sequence>" (a replay
// repeated within the dedupe window stores it once), and the dead letter is
// deleted only after JetStream acknowledged the republish. Downstream stages
// are idempotent, so replaying twice changes nothing in Sage. A first pass
// counts the matches (the first progress message carries matched); dry_run
// stops there.
func (s *Service) ReplayDeadLetters(req *ledgerv1.ReplayDeadLettersRequest, srv grpc.ServerStreamingServer[ledgerv1.ReplayDeadLettersResponse]) error {
	ctx := srv.Context()
	f, err := parseDLQFilter(req.GetFilter())
	if err != nil {
		return err
	}
	rate, err := checkRate(req.GetRate())
	if err != nil {
		return err
	}
	stream, err := s.dlqStream(ctx)
	if err != nil {
		return err
	}
	var seqs []uint64
	err = s.scanDLQ(ctx, stream, f, func(seq uint64, _ string, _ *ledgerv1.DeadLetter) bool {
		seqs = append(seqs, seq)
		return len(seqs) < maxReplay
	})
	if err != nil {
		return err
	}
	p := &ledgerv1.ReplayDeadLettersResponse{Matched: int64(len(seqs))}
	if req.GetDryRun() || len(seqs) == 0 {
		p.Done = true
		p.Message = fmt.Sprintf("dry run: %d dead letters would be replayed", len(seqs))
		if !req.GetDryRun() {
			p.Message = "no dead letters match the filter"
		}
		return srv.Send(p)
	}
	if err := srv.Send(proto.Clone(p).(*ledgerv1.ReplayDeadLettersResponse)); err != nil {
		return err
	}
	log := s.log.With("filter", f.subject)
	log.InfoContext(ctx, "dlq replay starting", "matched", len(seqs), "rate", rate)
	res := s.replaySeqs(ctx, stream, seqs, rate, func(done replayCounts) error {
		p.Replayed, p.Failed = done.replayed, done.failed
		return srv.Send(proto.Clone(p).(*ledgerv1.ReplayDeadLettersResponse))
	})
	p.Replayed, p.Failed = res.replayed, res.failed
	if res.sendErr != nil {
		return res.sendErr
	}
	if res.interrupted {
		// The caller went: what moved is final, the rest stays in the DLQ.
		p.Message = fmt.Sprintf("replay interrupted after %d of %d: run it again to replay the rest", p.Replayed, p.Matched)
		_ = srv.Send(proto.Clone(p).(*ledgerv1.ReplayDeadLettersResponse))
		log.InfoContext(ctx, "dlq replay interrupted", "replayed", p.Replayed, "failed", p.Failed)
		return status.Error(codes.Canceled, p.Message)
	}
	p.Done = true
	p.Message = fmt.Sprintf("replayed %d of %d dead letters", p.Replayed, p.Matched)
	if res.gone > 0 {
		p.Message += fmt.Sprintf("; %d were already gone (replayed or purged meanwhile)", res.gone)
	}
	if p.Failed > 0 {
		p.Message += fmt.Sprintf("; %d failed and stay in the DLQ (last error: %s)", p.Failed, res.lastErr)
	}
	log.InfoContext(ctx, "dlq replay done", "replayed", p.Replayed, "failed", p.Failed, "gone", res.gone)
	return srv.Send(p)
}

// replayWindow is how many dead letters a replay moves at once: each move is
// three round trips (read, republish with its acknowledgement, delete), so
// one at a time would cap a replay far below the rates operators ask for.
const replayWindow = 16

// replayCounts is a replay's progress.
type replayCounts struct {
	replayed, failed, gone int64
	lastErr                string
	interrupted            bool
	sendErr                error
}

// replaySeqs moves the dead letters seqs at rate per second (0: as fast as
// possible), replayWindow at a time, calling progress at most every 200 ms.
// When ctx ends it starts no more, waits for the moves under way (each
// finishes: its publish and delete belong together) and reports interrupted.
func (s *Service) replaySeqs(ctx context.Context, stream jetstream.Stream, seqs []uint64, rate int,
	progress func(replayCounts) error) replayCounts {
	var (
		mu   sync.Mutex
		out  replayCounts
		wg   sync.WaitGroup
		slot = make(chan struct{}, replayWindow)
	)
	snapshot := func() replayCounts {
		mu.Lock()
		defer mu.Unlock()
		return out
	}
	pace := newPacer(rate)
	lastSent := time.Now()
	interrupted := false
	for _, seq := range seqs {
		if pace.wait(ctx) != nil {
			interrupted = true
			break
		}
		select {
		case slot <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			interrupted = true
			break
		}
		wg.Go(func() {
			defer func() { <-slot }()
			err := s.replayOne(ctx, stream, seq)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case errors.Is(err, jetstream.ErrMsgNotFound):
				out.gone++ // replayed or purged meanwhile
			case ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)):
				// not read before the caller went: it stays, unmoved
			case err != nil:
				out.failed++
				out.lastErr = err.Error()
				s.metrics.replayed.WithLabelValues("failed").Inc()
				s.log.WarnContext(ctx, "dlq replay failed", "sequence", seq, "err", err)
			default:
				out.replayed++
				s.metrics.replayed.WithLabelValues("ok").Inc()
			}
		})
		if time.Since(lastSent) > 200*time.Millisecond {
			lastSent = time.Now()
			if err := progress(snapshot()); err != nil {
				wg.Wait()
				res := snapshot()
				res.sendErr = err
				return res
			}
		}
	}
	wg.Wait()
	res := snapshot()
	res.interrupted = interrupted
	return res
}

// replayOne republishes one dead letter and deletes it after the ack.
func (s *Service) replayOne(ctx context.Context, stream jetstream.Stream, seq uint64) error {
	raw, err := stream.GetMsg(ctx, seq)
	if err != nil {
		return err
	}
	dl := &ledgerv1.DeadLetter{}
	if err := proto.Unmarshal(raw.Data, dl); err != nil {
		return fmt.Errorf("dead letter %d is not a ledger.v1.DeadLetter: %w", seq, err)
	}
	subj := dl.GetOriginalSubject()
	if !replayable(subj) {
		return fmt.Errorf("dead letter %d names original subject %q, which is not one of Ledger's work streams; not replayed", seq, subj)
	}
	m := &nats.Msg{Subject: subj, Data: dl.GetOriginal(), Header: nats.Header{}}
	if t := dl.GetOriginalType(); t != "" {
		m.Header.Set(bus.HeaderType, t)
	}
	// Finish a started replay even if the caller goes: the ack and the delete
	// belong together.
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	// The replay is a new span in the operator's trace, linked to the delivery
	// that gave up (the dead letter's headers); the republished message
	// carries the new trace, not the finished one.
	pctx, span := operatorSpan(pctx, "admin replay dead letter", "replay", telemetry.SpanContextOf(raw.Header),
		telemetry.AttrTenant.String(dl.GetTenantId()), telemetry.AttrRunID.String(dl.GetSyncRunId()), telemetry.AttrStage.String(dl.GetStage()),
		telemetry.AttrErrorClass.String(dl.GetErrorClass()), telemetry.AttrErrorCode.String(dl.GetErrorCode()),
		attribute.Int64("ledger.dlq.sequence", int64(seq)))
	defer span.End()
	if _, err := bus.PublishMsg(pctx, s.js, m, fmt.Sprintf("replay:%d", seq)); err != nil {
		span.SetStatus(otelcodes.Error, "republish failed")
		return fmt.Errorf("republishing dead letter %d to %s: %w", seq, subj, err)
	}
	if err := stream.DeleteMsg(pctx, seq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		return fmt.Errorf("dead letter %d was republished but not deleted (%w): a replay within 2 minutes will not publish it twice", seq, err)
	}
	return nil
}
