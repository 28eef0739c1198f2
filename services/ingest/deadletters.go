package ingest

import (
	"context"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ledgersync/ledger/libs/bus"
)

// deadLetters counts tenant's messages in the DLQ stream, every stage
// (ledger.dlq.<stage>.<tenant>.<entity>): the sum of the stream's per-subject
// counts for that filter, one request, never reading a message.
func (s *Service) deadLetters(ctx context.Context, tenant string) (int64, error) {
	dlq, err := s.js.Stream(ctx, bus.StreamDLQ)
	if err != nil {
		return 0, err
	}
	// A valid tenant id (store.ValidTenantID) is one subject token as is.
	filter := "ledger.dlq.*." + tenant + ".>"
	info, err := dlq.Info(ctx, jetstream.WithSubjectFilter(filter))
	if err != nil {
		return 0, err
	}
	var n int64
	for subj, c := range info.State.Subjects {
		if p, err := bus.ParseSubject(subj); err == nil && p.Tenant == tenant && strings.HasPrefix(subj, "ledger.dlq.") {
			n += int64(c)
		}
	}
	return n, nil
}
