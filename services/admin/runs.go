package admin

import (
	"context"
	"errors"
	"strings"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

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
	m, err := s.st.RunMapping(ctx, id)
	if err != nil {
		return nil, s.storeErr(ctx, "load the run's documents", err)
	}
	out := &ledgerv1.GetRunResponse{Run: runProto(r), Attempts: make([]*ledgerv1.Attempt, 0, len(attempts)),
		CanonicalJson: optionalJSON(m.Canonical), SageRequestJson: optionalJSON(m.SageRequest)}
	for _, a := range attempts {
		out.Attempts = append(out.Attempts, &ledgerv1.Attempt{
			Stage: a.Stage, Method: a.Method, Path: a.Path, HttpStatus: int32(a.HTTPStatus),
			DurationMs: a.Duration.Milliseconds(), RequestId: a.RequestID, Outcome: a.Outcome,
			ErrorSource: a.ErrorSource, Envelope: a.Envelope, CreatedAt: timestamppb.New(a.At),
		})
	}
	return out, nil
}

// optionalJSON is indentJSON of a document that may be absent ("").
func optionalJSON(doc []byte) string {
	if len(doc) == 0 {
		return ""
	}
	return indentJSON(doc)
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
	if len(ids) > 0 && req.GetFilter() != nil {
		return nil, status.Error(codes.InvalidArgument, "give either sync_run_ids or filter, not both")
	}
	if len(ids) == 0 && req.GetFilter() == nil {
		return nil, status.Error(codes.InvalidArgument, "sync_run_ids is empty and no filter is given: give run ids (ledgerctl runs list shows them) or a filter with tenant_id")
	}
	if len(ids) > MaxRetryRuns {
		return nil, status.Errorf(codes.InvalidArgument, "%d run ids: retry at most %d at once", len(ids), MaxRetryRuns)
	}
	if req.GetFilter() != nil {
		var err error
		if ids, err = s.runsToRetry(ctx, req); err != nil || req.GetDryRun() {
			return &ledgerv1.RetryRunsResponse{Matched: int64(len(ids))}, err
		}
	}
	if req.GetDryRun() {
		return &ledgerv1.RetryRunsResponse{Matched: int64(len(ids))}, nil
	}
	if err := s.requireBus(); err != nil {
		return nil, err
	}
	out := &ledgerv1.RetryRunsResponse{Runs: make([]*ledgerv1.RetriedRun, 0, len(ids)), Matched: int64(len(ids))}
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

// runsToRetry selects the finished runs a RetryRuns filter matches, newest
// first, at most limit (default and max MaxRetryRuns). The filter must name
// the tenant: a retry never spans tenants by accident.
func (s *Service) runsToRetry(ctx context.Context, req *ledgerv1.RetryRunsRequest) ([]string, error) {
	f, err := parseRunFilter(req.GetFilter())
	if err != nil {
		return nil, err
	}
	if f.TenantID == "" {
		return nil, status.Error(codes.InvalidArgument, "filter.tenant_id is required: a retry by filter covers one tenant (ledgerctl tenants list)")
	}
	if f.Status == store.RunPending || f.Status == store.RunRunning {
		return nil, status.Errorf(codes.InvalidArgument, "filter.status %q: only finished runs (succeeded, skipped, failed) are retried; pending and running ones are being processed", f.Status)
	}
	f.Finished = true
	if f.Limit, err = runLimit(req.GetLimit(), MaxRetryRuns); err != nil {
		return nil, err
	}
	runs, err := s.st.ListRuns(ctx, f)
	if err != nil {
		return nil, s.storeErr(ctx, "list runs to retry", err)
	}
	ids := make([]string, len(runs))
	for i, r := range runs {
		ids[i] = r.ID
	}
	s.log.InfoContext(ctx, "retry by filter", "filter", describeRunFilter(f), "matched", len(ids), "dry_run", req.GetDryRun())
	return ids, nil
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
	if err := s.republish(ctx, id, "retry"); err != nil {
		s.metrics.retried.WithLabelValues("failed").Inc()
		return err
	}
	s.metrics.retried.WithLabelValues("ok").Inc()
	s.log.InfoContext(ctx, "run retried", "tenant_id", r.TenantID, "sync_run_id", id, "event", r.Event, "previous_status", r.Status)
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
