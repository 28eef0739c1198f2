// Package sagewrite is the one interpreter of a ledgerv1.SageWrite. It owns what
// a write means, and makes no call itself:
//
//   - which Sage collection and request root key each SageResource has (ResourceOf);
//   - the operations run in order, and the first failure stops the write (Run);
//   - an operation whose document is already known (entity_xref) is not created
//     again, and its known id counts as its result (Executor.Existing);
//   - one in mode SAGE_WRITE_MODE_CREATE_OR_UPDATE (contacts, products,
//     services) updates its known document when what it would send differs
//     from what was last written (Execute with an Updater): PlanUpdate's body
//     leaves out what Sage does not change after creation (CreateOnlyFields),
//     and its digest decides — the same digest makes no call, another one a
//     PUT, after which the new digest is recorded; a link with no digest (made
//     before digests were kept, or by an operator) is sent once;
//   - what the write did (Result.Change): created, updated or unchanged;
//   - each operation's request body (Plan): its JSON object with numbers kept as
//     their exact text (money is never a float), idempotency_id set, and every
//     FieldBinding applied: the Sage id of an earlier operation (FromKey) written
//     at a dotted field path such as "contact_id" or
//     "allocated_artefacts.0.artefact_id";
//   - which writes can never be executed as sent (InvalidError): retrying them
//     cannot help, because whoever built the write made a mistake.
//
// The sage-writer runs it against Sage (entity_xref, idempotent retries,
// ambiguous-create lookups live in its Executor); the mapper's tests run the
// same interpreter against the in-process Sage simulator, so the two cannot
// read a write differently.
package sagewrite
