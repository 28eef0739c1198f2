package ingest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ledgersync/ledger/libs/magento"
)

// ReplayBucket is the NATS KV bucket holding the JWT ids every ingest replica
// has accepted, so a captured token is accepted once across all of them.
const ReplayBucket = "LEDGER_JTI"

// replayTTL is how long an accepted token is remembered: longer than any
// token can verify (Magento mints lifetimes of at most 300 s, Ledger allows
// Leeway of skew). Every key expires with the bucket's max age, so the set
// never grows past the tokens of the last few minutes.
const replayTTL = magento.MaxTokenLifetime + 2*magento.Leeway

// replayEntryBytes is what one remembered token costs the bucket (key,
// subject, headers), used to turn INGEST_REPLAY_CACHE_SIZE into a byte limit.
const replayEntryBytes = 128

// errReplayCacheFull means the bucket holds as many unexpired tokens as it
// may. The request is answered 503: Magento retries with a fresh token later,
// which is better than forgetting a jti and accepting a replay.
var errReplayCacheFull = errors.New("jti replay set is full of unexpired tokens")

// replayGuard remembers the (tenant, jti) pairs of verified tokens in a KV
// bucket shared by every ingest replica: a create-only put, which exactly one
// replica wins.
type replayGuard struct {
	kv jetstream.KeyValue
}

// openReplayGuard makes or updates the bucket (replicas copies, at most
// entries tokens) and returns the guard.
func openReplayGuard(ctx context.Context, js jetstream.JetStream, replicas, entries int) (*replayGuard, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      ReplayBucket,
		Description: "ingest: JWT ids already accepted (webhook replay protection, shared by every replica)",
		TTL:         replayTTL,
		MaxBytes:    int64(entries) * replayEntryBytes,
		Storage:     jetstream.FileStorage,
		Replicas:    max(replicas, 1),
	})
	if err != nil {
		return nil, fmt.Errorf("ingest: replay bucket %s: %w", ReplayBucket, err)
	}
	return &replayGuard{kv: kv}, nil
}

// keyOf names (tenant, jti) by a hash: tenants and jtis hold characters a KV
// key may not, and the hash keeps every key the same small size.
func keyOf(tenant, jti string) string {
	h := sha256.New()
	h.Write([]byte(tenant))
	h.Write([]byte{0})
	h.Write([]byte(jti))
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// firstUse records (tenant, jti) and reports whether this is its first use
// on any replica. owner, when not empty, names the message that carries the
// token (a relayed message's INGEST stream sequence): the same message
// delivered again (after a transient failure) is still its first use, and
// any other message with the same token a replay.
func (g *replayGuard) firstUse(ctx context.Context, tenant, jti, owner string) (bool, error) {
	key := keyOf(tenant, jti)
	var value []byte
	if owner != "" {
		value = []byte(owner)
	}
	_, err := g.kv.Create(ctx, key, value)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, jetstream.ErrKeyExists):
		if owner == "" {
			return false, nil
		}
		e, gerr := g.kv.Get(ctx, key)
		if errors.Is(gerr, jetstream.ErrKeyNotFound) {
			return g.firstUse(ctx, tenant, jti, owner) // expired meanwhile
		}
		if gerr != nil {
			return false, gerr
		}
		return string(e.Value()) == owner, nil
	case isFull(err):
		return false, errReplayCacheFull
	}
	return false, err
}

// errCodeStoreFailed is JetStream's refusal of a message its stream has no
// room for (here: the bucket at its byte limit, "maximum bytes exceeded").
const errCodeStoreFailed jetstream.ErrorCode = 10077

// isFull recognises the bucket refusing a new key at its byte limit.
func isFull(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == errCodeStoreFailed
}

// entries counts the tokens remembered now (for the metric).
func (g *replayGuard) entries() int {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st, err := g.kv.Status(ctx)
	if err != nil {
		return -1
	}
	return int(st.Values())
}
