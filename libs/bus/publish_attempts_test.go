package bus_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ledgersync/ledger/libs/bus"
	"github.com/ledgersync/ledger/libs/devstack/devtest"
	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
)

// unansweredStream stands in for a stream whose leader drops the first
// publish of each message id (as one stepping down or stopping does) and
// acknowledges every repeat as JetStream does: a duplicate.
type unansweredStream struct {
	mu   sync.Mutex
	seen map[string]int // Nats-Msg-Id → requests
}

func (u *unansweredStream) requests(id string) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.seen[id]
}

func startUnansweredStream(t *testing.T, nc *nats.Conn, subject string) *unansweredStream {
	t.Helper()
	u := &unansweredStream{seen: map[string]int{}}
	sub, err := nc.Subscribe(subject, func(m *nats.Msg) {
		id := m.Header.Get(nats.MsgIdHdr)
		u.mu.Lock()
		u.seen[id]++
		n := u.seen[id]
		u.mu.Unlock()
		if n > 1 && id != "" {
			_ = m.Respond([]byte(`{"stream":"OUTBOX","seq":1,"duplicate":true}`))
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	return u
}

// TestPublishSendsAnUnansweredPublishAgain: a publish with a message id whose
// first attempt goes unanswered is sent again with the same id after
// AttemptTimeout, not left waiting for the caller's whole deadline; one
// without an id is sent once.
func TestPublishSendsAnUnansweredPublishAgain(t *testing.T) {
	t.Parallel()
	nc, err := nats.Connect(devtest.NATS(t))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	subject := bus.OutboxSubject("t1", "invoice.created")
	stream := startUnansweredStream(t, nc, subject)
	ev := &ledgerv1.OutboxEvent{TenantId: "t1", Event: "invoice.created"}

	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	began := time.Now()
	ack, err := bus.Publish(ctx, js, subject, ev, "outbox:t1:k:r")
	took := time.Since(began)
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	if !ack.Duplicate || stream.requests("outbox:t1:k:r") != 2 {
		t.Fatalf("ack %+v after %d requests, want the repeat's duplicate ack after 2", ack, stream.requests("outbox:t1:k:r"))
	}
	if took < bus.AttemptTimeout || took > bus.AttemptTimeout+5*time.Second {
		t.Fatalf("acknowledged after %s, want about %s (one unanswered attempt)", took, bus.AttemptTimeout)
	}

	// Without a message id: one request, bounded by the caller's context.
	short, cancel := context.WithTimeout(t.Context(), bus.AttemptTimeout+time.Second)
	defer cancel()
	if _, err := bus.Publish(short, js, subject, ev, ""); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("publish without an id: %v, want the caller's deadline", err)
	}
	if n := stream.requests(""); n != 1 {
		t.Fatalf("a publish without an id was sent %d times, want once", n)
	}
}
