package admin

import (
	"context"
	"fmt"
	"time"

	otelcodes "go.opentelemetry.io/otel/codes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ledgersync/ledger/libs/bus"
	"github.com/ledgersync/ledger/libs/telemetry"
	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
)

// Limits of RecoverRuns.
const (
	DefaultRecoverIdle = 10 * time.Minute
	// MinRecoverIdle keeps recovery away from live work: every unfinished run
	// is touched at least once per retry, and no retry waits longer than this.
	MinRecoverIdle = time.Minute
	MaxRecoverRuns = 10000
)

// RecoverRuns republishes the events of unfinished runs that have not moved
// for req.idle_for: after NATS lost its store they are what was in flight.
// Each run is reset to pending and its event published again under a new
// message id; the mapper and writer redo it idempotently.
func (s *Service) RecoverRuns(ctx context.Context, req *ledgerv1.RecoverRunsRequest) (*ledgerv1.RecoverRunsResponse, error) {
	idle := DefaultRecoverIdle
	if d := req.GetIdleFor(); d != nil {
		idle = d.AsDuration()
	}
	if idle < MinRecoverIdle {
		return nil, status.Errorf(codes.InvalidArgument, "idle_for %s: use at least %s, so runs still being worked on are left alone", idle, MinRecoverIdle)
	}
	limit := int(req.GetLimit())
	if limit < 0 || limit > MaxRecoverRuns {
		return nil, status.Errorf(codes.InvalidArgument, "limit %d: use 1-%d (0 means %d)", limit, MaxRecoverRuns, MaxRecoverRuns)
	}
	if limit == 0 {
		limit = MaxRecoverRuns
	}
	if !req.GetDryRun() {
		if err := s.requireBus(); err != nil {
			return nil, err
		}
	}
	runs, err := s.st.IdleRuns(ctx, req.GetTenantId(), time.Now().Add(-idle), limit)
	if err != nil {
		return nil, s.storeErr(ctx, "list idle runs", err)
	}
	out := &ledgerv1.RecoverRunsResponse{Found: int32(len(runs))}
	if req.GetDryRun() {
		return out, nil
	}
	for _, r := range runs {
		if err := s.republish(ctx, r.ID, "recover"); err != nil {
			out.Failed = append(out.Failed, &ledgerv1.RetriedRun{SyncRunId: r.ID, Error: status.Convert(err).Message()})
			continue
		}
		out.Republished++
	}
	s.log.InfoContext(ctx, "runs recovered", "tenant_id", req.GetTenantId(), "idle_for", idle.String(),
		"found", out.Found, "republished", out.Republished, "failed", len(out.Failed))
	return out, nil
}

// republish resets run id to pending and publishes its event again under a
// message id of its own (why: "retry", "recover").
func (s *Service) republish(ctx context.Context, id, why string) error {
	r, err := s.st.ResetRun(ctx, id)
	if err != nil {
		return s.storeErr(ctx, "reset run", err)
	}
	msgID := fmt.Sprintf("%s:%s:%d", why, r.ID, time.Now().UnixNano())
	// The publish is the point of no return; finish it even if the caller goes.
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	// A new span in the operator's trace, linked to the run's original one.
	pctx, span := operatorSpan(pctx, "admin "+why+" run", why, telemetry.SpanContextFromIDs(r.TraceID, r.TraceSpanID), runAttrs(r)...)
	defer span.End()
	if _, err := bus.Publish(pctx, s.js, bus.OutboxSubject(r.TenantID, r.Event), outboxEvent(r), msgID); err != nil {
		span.SetStatus(otelcodes.Error, "publish failed")
		s.log.ErrorContext(ctx, why+": publishing the event failed; the run stays pending", "tenant_id", r.TenantID, "sync_run_id", id, "err", err)
		return status.Errorf(codes.Unavailable, "run %s was reset to pending but its event could not be published (%v): try again", id, err)
	}
	return nil
}
