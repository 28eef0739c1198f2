package bus

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// unansweredAck is a delivery whose first synchronous acknowledgement goes
// unanswered, as one sent to a consumer leader that steps down or stops.
type unansweredAck struct {
	jetstream.Msg
	calls int
}

func (u *unansweredAck) DoubleAck(ctx context.Context) error {
	u.calls++
	if u.calls == 1 {
		<-ctx.Done()
		return ctx.Err()
	}
	return nil
}

// leaderlessAck is a delivery whose consumer has no leader for its first
// acknowledgements, as during an election.
type leaderlessAck struct {
	jetstream.Msg
	calls int
}

func (l *leaderlessAck) DoubleAck(context.Context) error {
	l.calls++
	if l.calls <= 3 {
		return nats.ErrNoResponders
	}
	return nil
}

// TestDoubleAckSendsAnUnansweredAckAgain: an acknowledgement left unanswered
// is sent again after AttemptTimeout instead of waiting for the caller's
// whole context; a caller's deadline still ends it.
func TestDoubleAckSendsAnUnansweredAckAgain(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	msg := &unansweredAck{}
	began := time.Now()
	if err := doubleAck(ctx, msg); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(began); msg.calls != 2 || took > AttemptTimeout+5*time.Second {
		t.Fatalf("acknowledged after %d attempts in %s, want 2 in about %s", msg.calls, took, AttemptTimeout)
	}

	short, cancel := context.WithTimeout(t.Context(), AttemptTimeout/2)
	defer cancel()
	if err := doubleAck(short, &unansweredAck{}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want the caller's deadline, got %v", err)
	}
}

// TestDoubleAckWaitsForALeader: an acknowledgement that finds no consumer
// leader (no responders) is sent again until one answers, or the caller's
// context ends.
func TestDoubleAckWaitsForALeader(t *testing.T) {
	t.Parallel()
	msg := &leaderlessAck{}
	if err := doubleAck(t.Context(), msg); err != nil || msg.calls != 4 {
		t.Fatalf("after %d attempts: %v; want success on the 4th", msg.calls, err)
	}
	short, cancel := context.WithTimeout(t.Context(), leaderlessPause/2)
	defer cancel()
	if err := doubleAck(short, &leaderlessAck{}); !errors.Is(err, nats.ErrNoResponders) {
		t.Fatalf("want no responders once the caller's context ends, got %v", err)
	}
}
