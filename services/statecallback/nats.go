package statecallback

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/ledgersync/ledger/libs/bus"
	"github.com/ledgersync/ledger/libs/magento"
)

// NATSTransport delivers sync states to a relay-connected shop: each batch is
// one ledger.v1.PushSyncStateRequest on ledger.shop.<tenant>.syncstate (the
// SHOP stream), which the tenant's relay applies to byte8_entity_sync_state
// with the newest-wins rule of the HTTP mirror (services/relay). A batch is
// delivered once JetStream stored it: the stream is durable and the relay
// acknowledges only what it committed. No call reaches the shop, so a shop
// behind a firewall needs no inbound route.
type NATSTransport struct {
	JS jetstream.JetStream
	// Timeout bounds one publish.
	Timeout time.Duration
}

// SendSyncStates publishes states as one message. Its Nats-Msg-Id is a digest
// of the batch, so a publish repeated within the dedupe window is stored
// once.
func (t *NATSTransport) SendSyncStates(ctx context.Context, shop Shop, states []magento.SyncState) ([]error, error) {
	req := pushRequest(shop.TenantID, states)
	data, err := proto.MarshalOptions{Deterministic: true}.Marshal(req)
	if err != nil {
		return nil, &DeliveryError{Kind: Rejected, Message: fmt.Sprintf("encoding the sync states: %v", err), Err: err}
	}
	sum := sha256.Sum256(data)
	if t.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t.Timeout)
		defer cancel()
	}
	subject := bus.ShopSubject(shop.TenantID, bus.ShopSyncState)
	if _, err := bus.Publish(ctx, t.JS, subject, req, "syncstate:"+hex.EncodeToString(sum[:16])); err != nil {
		return nil, &DeliveryError{Kind: Transient, Message: fmt.Sprintf("publishing to %s: %v", subject, err), Err: err}
	}
	return make([]error, len(states)), nil
}

// SendSyncState publishes a batch of one.
func (t *NATSTransport) SendSyncState(ctx context.Context, shop Shop, state magento.SyncState) error {
	errs, err := t.SendSyncStates(ctx, shop, []magento.SyncState{state})
	if err != nil {
		return err
	}
	return errs[0]
}

// Ping checks that the SHOP stream answers; there is no shop to ask (the
// relay proves the tenant when it publishes its rows).
func (t *NATSTransport) Ping(ctx context.Context, _ Shop) error {
	if _, err := t.JS.Stream(ctx, bus.StreamShop); err != nil {
		return &DeliveryError{Kind: Transient, Message: fmt.Sprintf("the %s stream does not answer: %v", bus.StreamShop, err), Err: err}
	}
	return nil
}
