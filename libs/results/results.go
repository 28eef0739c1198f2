// Package results finishes sync runs: it records the terminal outcome in
// sync_runs and publishes the SyncResult that statecallback mirrors to Magento.
// Both the mapper (skips, failed fetches) and the sage-writer (synced, failed
// writes) finish runs, so the rule lives here once.
package results

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ledgersync/ledger/libs/bus"
	"github.com/ledgersync/ledger/libs/magento"
	"github.com/ledgersync/ledger/libs/store"
	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
)

// RunFinisher is the part of the store this package needs.
type RunFinisher interface {
	FinishRun(ctx context.Context, o store.Outcome) (store.Run, error)
}

// Finish records o and publishes the run's SyncResult. Calling it again for the
// same outcome (a redelivered message) republishes the same result (same
// finished_at, deduplicated by Nats-Msg-Id within the window), so callers may
// simply retry on error. The result is published in ctx's trace.
func Finish(ctx context.Context, st RunFinisher, js jetstream.JetStream, o store.Outcome) (*ledgerv1.SyncResult, error) {
	run, err := st.FinishRun(ctx, o)
	if err != nil {
		return nil, fmt.Errorf("results: finishing run %s: %w", o.RunID, err)
	}
	res := FromRun(run)
	msgID := "result:" + run.ID + ":" + run.Status + ":" + fmt.Sprint(run.FinishedAt.UnixNano())
	entity := res.EntityType
	if entity == "" {
		entity = "none"
	}
	if _, err := bus.Publish(ctx, js, bus.ResultSubject(run.TenantID, entity), res, msgID); err != nil {
		return nil, err
	}
	return res, nil
}

// FromRun builds the SyncResult of a finished run.
func FromRun(run store.Run) *ledgerv1.SyncResult {
	res := &ledgerv1.SyncResult{
		TenantId: run.TenantID, SyncRunId: run.ID, Event: run.Event,
		EntityType: run.EntityType, MagentoEntityId: run.MagentoEntityID,
		ProviderEntityId: run.SageID, SkipReason: run.SkipReason,
		ErrorCode: run.ErrorCode, ErrorClass: run.ErrorClass, Message: run.LastError, Change: run.Change,
	}
	if res.EntityType == "" {
		res.EntityType = magento.EntityType(run.Event)
	}
	switch run.Status {
	case store.RunSucceeded:
		res.Status = ledgerv1.SyncStatus_SYNC_STATUS_SYNCED
	case store.RunSkipped:
		res.Status = ledgerv1.SyncStatus_SYNC_STATUS_SKIPPED
	case store.RunFailed:
		res.Status = ledgerv1.SyncStatus_SYNC_STATUS_FAILED
	}
	if run.FinishedAt != nil {
		res.FinishedAt = timestamppb.New(*run.FinishedAt)
	}
	return res
}
