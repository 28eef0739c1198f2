package admin

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
)

// Replay job states.
const (
	JobRunning   = "running"
	JobDone      = "done"
	JobCancelled = "cancelled"
	JobFailed    = "failed"
)

const (
	// maxRunningReplays bounds the console's concurrent replay jobs: each
	// holds up to maxReplay sequences and its own pacing.
	maxRunningReplays = 4
	// keptReplayJobs is how many finished jobs the registry remembers (the
	// oldest finished one is forgotten first).
	keptReplayJobs = 50
)

// ReplayJob is a snapshot of one dead-letter replay the console started in
// the admin process.
type ReplayJob struct {
	ID     string
	Filter *ledgerv1.DeadLetterFilter
	// Rate is the dead letters per second asked for (0: unlimited).
	Rate  int32
	State string
	// Matched is what the replay's count found; Moved were republished and
	// deleted from the DLQ; Failed stay in the DLQ.
	Matched, Moved, Failed int64
	// Message is the replay's last word (or the error that stopped it).
	Message           string
	Started, Finished time.Time
}

// Running reports whether the job is still moving dead letters.
func (j ReplayJob) Running() bool { return j.State == JobRunning }

// Percent is how far the job is, 0–100.
func (j ReplayJob) Percent() int {
	if j.Matched == 0 {
		if j.State == JobRunning {
			return 0
		}
		return 100
	}
	return int((j.Moved + j.Failed) * 100 / j.Matched)
}

// replayFunc is the ReplayDeadLetters RPC (s.ReplayDeadLetters): the jobs
// drive the same code path as ledgerctl dlq replay.
type replayFunc func(*ledgerv1.ReplayDeadLettersRequest, grpc.ServerStreamingServer[ledgerv1.ReplayDeadLettersResponse]) error

// replayJobs is the registry of the console's replay jobs: each runs the
// ReplayDeadLetters RPC in the background through an in-process stream
// (replayStream), keeps its progress, and can be cancelled (what is not moved
// yet stays in the DLQ).
type replayJobs struct {
	replay replayFunc

	mu   sync.Mutex
	jobs map[string]*replayJobEntry
	// order is the start order (oldest first).
	order []string
	wg    sync.WaitGroup
}

type replayJobEntry struct {
	job    ReplayJob
	cancel context.CancelFunc
	done   chan struct{}
}

func newReplayJobs(replay replayFunc) *replayJobs {
	return &replayJobs{replay: replay, jobs: map[string]*replayJobEntry{}}
}

// errTooManyReplays refuses a replay while maxRunningReplays run.
var errTooManyReplays = fmt.Errorf("%d replays are running: wait for one to finish or cancel one", maxRunningReplays)

// Start begins replaying the dead letters filter matches at rate per second
// (0: unlimited). ctx gives the job its values (the operator's trace), not its
// lifetime: the job runs until done or cancelled. The filter and rate are
// checked before the job starts, with the RPC's own messages.
func (r *replayJobs) Start(ctx context.Context, filter *ledgerv1.DeadLetterFilter, rate int32) (ReplayJob, error) {
	if _, err := parseDLQFilter(filter); err != nil {
		return ReplayJob{}, err
	}
	if _, err := checkRate(rate); err != nil {
		return ReplayJob{}, err
	}
	id, err := newJobID()
	if err != nil {
		return ReplayJob{}, err
	}
	jctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	e := &replayJobEntry{cancel: cancel, done: make(chan struct{}), job: ReplayJob{
		ID: id, Filter: cloneFilter(filter), Rate: rate, State: JobRunning, Started: time.Now().UTC(),
	}}
	r.mu.Lock()
	running := 0
	for _, o := range r.jobs {
		if o.job.State == JobRunning {
			running++
		}
	}
	if running >= maxRunningReplays {
		r.mu.Unlock()
		cancel()
		return ReplayJob{}, errTooManyReplays
	}
	r.jobs[id] = e
	r.order = append(r.order, id)
	r.forgetOld()
	snap := e.job
	r.wg.Add(1)
	r.mu.Unlock()

	go func() {
		defer r.wg.Done()
		defer close(e.done)
		defer cancel()
		r.run(jctx, e)
	}()
	return snap, nil
}

// run drives the RPC and records its end.
func (r *replayJobs) run(ctx context.Context, e *replayJobEntry) {
	r.mu.Lock()
	req := &ledgerv1.ReplayDeadLettersRequest{Filter: cloneFilter(e.job.Filter), Rate: e.job.Rate}
	r.mu.Unlock()
	var last *ledgerv1.ReplayDeadLettersResponse
	err := r.replay(req, &replayStream{ctx: ctx, send: func(p *ledgerv1.ReplayDeadLettersResponse) {
		r.mu.Lock()
		defer r.mu.Unlock()
		last = p
		e.job.Matched, e.job.Moved, e.job.Failed = p.GetMatched(), p.GetReplayed(), p.GetFailed()
		if p.GetMessage() != "" {
			e.job.Message = p.GetMessage()
		}
	}})
	r.mu.Lock()
	defer r.mu.Unlock()
	j := &e.job
	j.Finished = time.Now().UTC()
	switch {
	case err == nil && last != nil && last.GetDone():
		j.State = JobDone
	case ctx.Err() != nil || status.Code(err) == codes.Canceled:
		j.State = JobCancelled
		// The RPC's last progress message may be up to 200 ms old; its
		// cancellation error names the exact count.
		if n, ok := interruptedAfter(err); ok && n > j.Moved {
			j.Moved = n
		}
		j.Message = fmt.Sprintf("cancelled: %d of %d moved; the %d not moved stay in the DLQ", j.Moved, j.Matched, j.Matched-j.Moved)
	default:
		j.State = JobFailed
		msg := "the replay ended without its last progress message"
		if err != nil {
			msg = status.Convert(err).Message()
		}
		j.Message = fmt.Sprintf("failed after %d of %d moved: %s; the rest stay in the DLQ", j.Moved, j.Matched, msg)
	}
}

// interruptedRE reads ReplayDeadLetters' cancellation message
// ("replay interrupted after N of M: …").
var interruptedRE = regexp.MustCompile(`interrupted after (\d+) of \d+`)

func interruptedAfter(err error) (int64, bool) {
	if err == nil {
		return 0, false
	}
	m := interruptedRE.FindStringSubmatch(status.Convert(err).Message())
	if m == nil {
		return 0, false
	}
	n, perr := strconv.ParseInt(m[1], 10, 64)
	return n, perr == nil
}

// forgetOld drops the oldest finished jobs beyond keptReplayJobs (r.mu held).
func (r *replayJobs) forgetOld() {
	for len(r.order) > keptReplayJobs {
		i := slices.IndexFunc(r.order, func(id string) bool { return r.jobs[id].job.State != JobRunning })
		if i < 0 {
			return
		}
		delete(r.jobs, r.order[i])
		r.order = slices.Delete(r.order, i, i+1)
	}
}

// Get returns a snapshot of one job.
func (r *replayJobs) Get(id string) (ReplayJob, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.jobs[id]
	if !ok {
		return ReplayJob{}, false
	}
	return e.job, true
}

// List returns snapshots of the jobs, newest first.
func (r *replayJobs) List() []ReplayJob {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]ReplayJob, 0, len(r.order))
	for i := len(r.order) - 1; i >= 0; i-- {
		out = append(out, r.jobs[r.order[i]].job)
	}
	return out
}

// Cancel stops a running job and waits until it has stopped: a dead letter
// being republished is finished (republish and delete belong together), the
// rest stay in the DLQ. It returns the job's final snapshot.
func (r *replayJobs) Cancel(ctx context.Context, id string) (ReplayJob, error) {
	r.mu.Lock()
	e, ok := r.jobs[id]
	r.mu.Unlock()
	if !ok {
		return ReplayJob{}, errUnknownJob
	}
	e.cancel()
	select {
	case <-e.done:
	case <-ctx.Done():
		return ReplayJob{}, ctx.Err()
	}
	j, _ := r.Get(id)
	return j, nil
}

// Wait blocks until the job has ended (or ctx ends) and returns its final
// snapshot.
func (r *replayJobs) Wait(ctx context.Context, id string) (ReplayJob, error) {
	r.mu.Lock()
	e, ok := r.jobs[id]
	r.mu.Unlock()
	if !ok {
		return ReplayJob{}, errUnknownJob
	}
	select {
	case <-e.done:
	case <-ctx.Done():
		return ReplayJob{}, ctx.Err()
	}
	j, _ := r.Get(id)
	return j, nil
}

// Close cancels every running job and waits for all of them.
func (r *replayJobs) Close() {
	r.mu.Lock()
	for _, e := range r.jobs {
		e.cancel()
	}
	r.mu.Unlock()
	r.wg.Wait()
}

var errUnknownJob = errors.New("no such replay job: it finished long ago or the admin service restarted (jobs live in its memory)")

func newJobID() (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]), nil
}

func cloneFilter(f *ledgerv1.DeadLetterFilter) *ledgerv1.DeadLetterFilter {
	if f == nil {
		return &ledgerv1.DeadLetterFilter{}
	}
	return proto.Clone(f).(*ledgerv1.DeadLetterFilter)
}

// replayStream is an in-process grpc.ServerStreamingServer: the replay's
// progress messages go to send instead of a client.
type replayStream struct {
	ctx  context.Context
	send func(*ledgerv1.ReplayDeadLettersResponse)
}

var _ grpc.ServerStreamingServer[ledgerv1.ReplayDeadLettersResponse] = (*replayStream)(nil)

func (s *replayStream) Send(p *ledgerv1.ReplayDeadLettersResponse) error {
	s.send(proto.Clone(p).(*ledgerv1.ReplayDeadLettersResponse))
	return nil
}
func (s *replayStream) Context() context.Context     { return s.ctx }
func (s *replayStream) SetHeader(metadata.MD) error  { return nil }
func (s *replayStream) SendHeader(metadata.MD) error { return nil }
func (s *replayStream) SetTrailer(metadata.MD)       {}
func (s *replayStream) SendMsg(m any) error {
	p, ok := m.(*ledgerv1.ReplayDeadLettersResponse)
	if !ok {
		return fmt.Errorf("replay stream: unexpected message %T", m)
	}
	return s.Send(p)
}
func (s *replayStream) RecvMsg(any) error { return errors.New("replay stream: nothing to receive") }
