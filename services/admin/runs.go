package admin

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ledgersync/ledger/libs/bus"
	"github.com/ledgersync/ledger/libs/store"
	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
)

// MaxRetryRuns bounds the ids of one RetryRuns call.
const MaxRetryRuns = 1000

// errNoBus answers the RPCs that publish when the service runs without NATS.
var errNoBus = status.Error(codes.FailedPrecondition,
	"the admin service runs without NATS: set LEDGER_NATS_URL on it (retries, backfills and dead-letter replays publish to JetStream)")

func (s *Service) requireBus() error {
	if s.js == nil {
		return errNoBus
	}
	return nil
}

// runID validates a run id from a request.
func runID(raw string) (string, error) {
	id := strings.TrimSpace(raw)
	if id == "" {
		return "", status.Error(codes.InvalidArgument, "sync_run_id is required: find it with ledgerctl runs list")
	}
	u, err := uuid.Parse(id)
	if err != nil {
		return "", status.Errorf(codes.InvalidArgument, "sync_run_id %q is not a run id (a UUID): find it with ledgerctl runs list", id)
	}
	return u.String(), nil
}

// GetRun returns one run with its attempt history.
func (s *Service) GetRun(ctx context.Context, req *ledgerv1.GetRunRequest) (*ledgerv1.GetRunResponse, error) {
	id, err := runID(req.GetSyncRunId())
	if err != nil {
		return nil, err
	}
	r, err := s.st.Run(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, status.Errorf(codes.NotFound, "sync run %s does not exist: find runs with ledgerctl runs list", id)
	}
	if err != nil {
		return nil, s.storeErr(ctx, "load run", err)
	}
	attempts, err := s.st.Attempts(ctx, id)
	if err != nil {
		return nil, s.storeErr(ctx, "load attempts", err)
	}
	out := &ledgerv1.GetRunResponse{Run: runProto(r), Attempts: make([]*ledgerv1.Attempt, 0, len(attempts))}
	for _, a := range attempts {
		out.Attempts = append(out.Attempts, &ledgerv1.Attempt{
			Stage: a.Stage, Method: a.Method, Path: a.Path, HttpStatus: int32(a.HTTPStatus),
			DurationMs: a.Duration.Milliseconds(), RequestId: a.RequestID, Outcome: a.Outcome,
			ErrorSource: a.ErrorSource, Envelope: a.Envelope,
		})
	}
	return out, nil
}

// RetryRuns re-runs finished runs, as the dashboard's Retry button does: each
// run is put back to pending (store.ResetRun) and its OutboxEvent, rebuilt from
// the run row, is published to OUTBOX again. The mapper and the sage-writer
// redo the sync idempotently (entity_xref and Sage idempotency ids: nothing is
// duplicated in Sage), and the new terminal result, with a new finished_at,
// fires the sync-state callback again. The run keeps its id. A running run is
// refused (it is being processed now); each id gets its own answer.
func (s *Service) RetryRuns(ctx context.Context, req *ledgerv1.RetryRunsRequest) (*ledgerv1.RetryRunsResponse, error) {
	ids := req.GetSyncRunIds()
	if len(ids) == 0 {
		return nil, status.Error(codes.InvalidArgument, "sync_run_ids is empty: give at least one run id (ledgerctl runs list shows them)")
	}
	if len(ids) > MaxRetryRuns {
		return nil, status.Errorf(codes.InvalidArgument, "%d run ids: retry at most %d at once", len(ids), MaxRetryRuns)
	}
	if err := s.requireBus(); err != nil {
		return nil, err
	}
	out := &ledgerv1.RetryRunsResponse{Runs: make([]*ledgerv1.RetriedRun, 0, len(ids))}
	seen := map[string]bool{}
	for _, raw := range ids {
		res := &ledgerv1.RetriedRun{SyncRunId: strings.TrimSpace(raw)}
		out.Runs = append(out.Runs, res)
		id, err := runID(raw)
		if err != nil {
			res.Error = status.Convert(err).Message()
			s.metrics.retried.WithLabelValues("refused").Inc()
			continue
		}
		res.SyncRunId = id
		if seen[id] {
			res.Error = "listed twice: retried once"
			continue
		}
		seen[id] = true
		if err := s.retryRun(ctx, id); err != nil {
			if st, ok := status.FromError(err); ok && st.Code() == codes.Canceled {
				return nil, err
			}
			res.Error = status.Convert(err).Message()
			continue
		}
	}
	return out, nil
}

// retryRun resets one run and publishes its event again.
func (s *Service) retryRun(ctx context.Context, id string) error {
	r, err := s.st.Run(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		s.metrics.retried.WithLabelValues("refused").Inc()
		return status.Errorf(codes.NotFound, "sync run %s does not exist", id)
	case err != nil:
		return s.storeErr(ctx, "load run", err)
	}
	if r.Status == store.RunRunning {
		s.metrics.retried.WithLabelValues("refused").Inc()
		return status.Errorf(codes.FailedPrecondition, "run %s is running now: wait until it finishes, then retry it", id)
	}
	if r.Event == "" {
		s.metrics.retried.WithLabelValues("refused").Inc()
		return status.Errorf(codes.FailedPrecondition, "run %s has no event to re-run", id)
	}
	log := s.log.With("tenant_id", r.TenantID, "sync_run_id", id, "event", r.Event, "previous_status", r.Status)
	r, err = s.st.ResetRun(ctx, id)
	if err != nil {
		return s.storeErr(ctx, "reset run", err)
	}
	ev := outboxEvent(r)
	msgID := fmt.Sprintf("retry:%s:%d", r.ID, time.Now().UnixNano())
	// The publish is the point of no return; finish it even if the caller goes.
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if _, err := bus.Publish(pctx, s.js, bus.OutboxSubject(r.TenantID, r.Event), ev, msgID, ""); err != nil {
		s.metrics.retried.WithLabelValues("failed").Inc()
		log.ErrorContext(ctx, "retry: publishing the event failed; the run stays pending", "err", err)
		return status.Errorf(codes.Unavailable,
			"run %s was reset to pending but its event could not be published (%v): retry it again", id, err)
	}
	s.metrics.retried.WithLabelValues("ok").Inc()
	log.InfoContext(ctx, "run retried")
	return nil
}

// outboxEvent rebuilds the OutboxEvent ingest published for a run.
func outboxEvent(r store.Run) *ledgerv1.OutboxEvent {
	return &ledgerv1.OutboxEvent{
		TenantId: r.TenantID, Event: r.Event, IdempotencyKey: r.IdempotencyKey, SyncRunId: r.ID,
		MagentoEntityId: r.MagentoEntityID, WebsiteId: r.WebsiteID, StoreId: r.StoreID,
		OccurredAt: r.OccurredAt, Payload: r.Payload, ReceivedAt: timestamppb.New(r.CreatedAt),
	}
}
