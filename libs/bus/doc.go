// Package bus defines Ledger's JetStream streams, subjects and headers, publishes
// protobuf messages with W3C trace context, and runs durable pull consumers whose
// handler outcomes are turned into acknowledgements in exactly one place (Settle):
//
//	Ack          → Ack
//	Retry        → NakWithDelay (plain Nak would ignore the back-off), or, on the
//	               last allowed delivery, a copy to DLQ and then Ack
//	DeadLetter   → a copy to DLQ and then Term
//
// The Ack verdict's acknowledgement is sent once, without waiting for a reply,
// like every other settlement: a lost one (the connection drops as it is sent,
// or a clustered consumer has no leader) only brings the message back after
// AckWait to an idempotent handler. It is confirmed (a request per message,
// sent again until answered) where losing it costs more: on a consumer with
// one message in flight (MaxAckPending 1, the writer's per-tenant consumers),
// whose next message would wait for AckWait; with ConsumerSpec.ConfirmAcks;
// and after a dead letter or a re-queued copy, whose redelivery would publish
// a second one.
//
// JetStream keeps no dead letters of its own (its max-delivery advisory carries
// only a sequence number), so the DLQ stream holds the original message with the
// reason, and replay republishes it to its original subject.
//
// Loop is the consume loop of every consumer. It holds at most InHand messages
// (2×Workers by default) and fetches again once half of its places are free, or
// at once when it holds fewer messages than it has workers, so under load one
// pull request brings several messages while a message reaching an idle loop is
// delivered to the fetch already waiting at the server. Every message it holds
// is kept alive with InProgress (every AckWait/3) until it is settled.
package bus
