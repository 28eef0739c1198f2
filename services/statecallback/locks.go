package statecallback

import (
	"context"
	"sync"
)

// entityLocks is a keyed mutex: one holder per entity (tenant, entity type,
// Magento id) within this process, so "read mark → send → write mark" for one
// entity never interleaves across workers. Entries exist only while held or
// awaited.
type entityLocks struct {
	mu sync.Mutex
	m  map[string]*entityLock
}

type entityLock struct {
	ch   chan struct{} // capacity 1: full while held
	refs int
}

// lock waits for key (or ctx) and returns the function that releases it.
func (l *entityLocks) lock(ctx context.Context, key string) (func(), error) {
	l.mu.Lock()
	if l.m == nil {
		l.m = map[string]*entityLock{}
	}
	e := l.m[key]
	if e == nil {
		e = &entityLock{ch: make(chan struct{}, 1)}
		l.m[key] = e
	}
	e.refs++
	l.mu.Unlock()

	select {
	case e.ch <- struct{}{}:
		return func() {
			<-e.ch
			l.release(key, e)
		}, nil
	case <-ctx.Done():
		l.release(key, e)
		return nil, ctx.Err()
	}
}

func (l *entityLocks) release(key string, e *entityLock) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e.refs--
	if e.refs == 0 {
		delete(l.m, key)
	}
}
