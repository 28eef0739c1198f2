package sagewriter

import (
	"context"
	"sync"
)

// businessLocks is a keyed mutex: one holder per Sage business id at a time.
// Entries live only while someone holds or waits for them. It spans one
// process; serialising writes across replicas is a later issue (partitioned
// subjects with one owner per partition).
type businessLocks struct {
	mu sync.Mutex
	m  map[string]*businessLock
}

type businessLock struct {
	slot chan struct{} // holds one token while locked
	refs int           // holders and waiters
}

func newBusinessLocks() *businessLocks { return &businessLocks{m: map[string]*businessLock{}} }

// lock waits until key is free or ctx is done, and returns the unlock function.
func (l *businessLocks) lock(ctx context.Context, key string) (func(), error) {
	l.mu.Lock()
	e := l.m[key]
	if e == nil {
		e = &businessLock{slot: make(chan struct{}, 1)}
		l.m[key] = e
	}
	e.refs++
	l.mu.Unlock()
	select {
	case e.slot <- struct{}{}:
		var once sync.Once
		return func() {
			once.Do(func() {
				<-e.slot
				l.release(key, e)
			})
		}, nil
	case <-ctx.Done():
		l.release(key, e)
		return nil, ctx.Err()
	}
}

func (l *businessLocks) release(key string, e *businessLock) {
	l.mu.Lock()
	e.refs--
	if e.refs == 0 {
		delete(l.m, key)
	}
	l.mu.Unlock()
}
