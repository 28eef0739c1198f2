// Package bus defines Ledger's JetStream streams, subjects and headers, publishes
// protobuf messages with W3C trace context, and runs durable pull consumers whose
// handler outcomes are turned into acknowledgements in exactly one place (Settle):
//
//	Ack          → Ack
//	Retry        → NakWithDelay (plain Nak would ignore the back-off), or, on the
//	               last allowed delivery, a copy to DLQ and then Ack
//	DeadLetter   → a copy to DLQ and then Term
//
// JetStream keeps no dead letters of its own (its max-delivery advisory carries
// only a sequence number), so the DLQ stream holds the original message with the
// reason, and replay republishes it to its original subject.
package bus
