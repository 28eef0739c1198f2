package ingest

import (
	"container/heap"
	"crypto/sha256"
	"errors"
	"sync"
)

// errReplayCacheFull means every slot of the replay cache holds an unexpired
// jti. The request is answered 503: Magento retries with a fresh token later,
// which is better than forgetting a jti and accepting a replay.
var errReplayCacheFull = errors.New("jti replay cache is full of unexpired tokens")

// replayCache remembers the (tenant, jti) pairs of verified tokens until they
// could no longer verify (exp + leeway), so a captured token cannot be played
// again. It is in memory and per replica: with several replicas behind a load
// balancer a token replayed to another replica would pass, so a multi-replica
// deployment moves this set to a NATS KV bucket (create-only put of the key
// with a per-key TTL), keeping the same semantics.
//
// Memory is bounded: entries are keyed by a 128-bit hash of tenant and jti,
// expired entries are evicted from a min-heap on every call, and at most max
// entries are kept.
type replayCache struct {
	mu      sync.Mutex
	max     int
	expires map[replayKey]int64 // unix seconds after which the entry may go
	queue   expiryHeap
}

type replayKey [16]byte

func newReplayCache(max int) *replayCache {
	return &replayCache{max: max, expires: make(map[replayKey]int64)}
}

func keyOf(tenant, jti string) replayKey {
	h := sha256.New()
	h.Write([]byte(tenant))
	h.Write([]byte{0})
	h.Write([]byte(jti))
	var k replayKey
	copy(k[:], h.Sum(nil))
	return k
}

// firstUse records (tenant, jti) until the unix time until and reports whether
// this is its first use. now is the current unix time.
func (c *replayCache) firstUse(tenant, jti string, until, now int64) (bool, error) {
	k := keyOf(tenant, jti)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.evict(now)
	if exp, ok := c.expires[k]; ok && exp >= now {
		return false, nil
	}
	if len(c.expires) >= c.max {
		return false, errReplayCacheFull
	}
	c.expires[k] = until
	heap.Push(&c.queue, expiry{key: k, at: until})
	return true, nil
}

// evict drops entries whose time has passed.
func (c *replayCache) evict(now int64) {
	for len(c.queue) > 0 && c.queue[0].at < now {
		e := heap.Pop(&c.queue).(expiry)
		if c.expires[e.key] == e.at {
			delete(c.expires, e.key)
		}
	}
}

// len returns the number of remembered tokens.
func (c *replayCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.expires)
}

type expiry struct {
	key replayKey
	at  int64
}

type expiryHeap []expiry

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].at < h[j].at }
func (h expiryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *expiryHeap) Push(x any)        { *h = append(*h, x.(expiry)) }
func (h *expiryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}
