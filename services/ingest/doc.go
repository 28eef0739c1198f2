// Package ingest is Ledger's Magento-facing HTTP service. It receives the
// signed webhooks the real Byte8 Magento modules send from their outbox drain
// (POST /webhooks/magento/{tenant}/{event}), records each delivery as a sync
// run and publishes it to the OUTBOX stream for the mapper; it also answers
// the admin tile
// (GET /v1/tile/health), the Disconnect button (POST /v1/tenant/disconnect)
// and GET /v1/status, and serves /metrics (the runtime adds /healthz and /readyz).
//
// # Status codes are instructions to the shop
//
// The module treats 2xx as delivered, any 4xx as permanent (the outbox row is
// dead-lettered at once) and everything else as transient (retried for about
// four days). So ingest answers 202 only once the event is durably in
// JetStream, 401 for a credential that will never verify, 400/404/413/415 for
// a request that can never succeed, and 503 for every transient condition
// (database, NATS, a full replay cache, a body that does not arrive within
// ReadTimeout, a tenant with TenantMaxInFlight webhooks already in progress).
// A header that matters (Authorization, Idempotency-Key, Content-Type,
// Content-Encoding) sent twice is refused rather than one value picked, and a
// body is refused when it nests deeper than 64 levels, repeats a key, or holds
// text Postgres cannot store (not UTF-8, \u0000, an unpaired surrogate).
// It never redirects: the routes match the raw path exactly and anything else
// is a JSON 404. A repeated
// Idempotency-Key whose run is pending, running or succeeded is answered 202
// with the original sync_run_id and nothing is published; a repeat of a
// failed, skipped or older-than-DedupWindow run starts a new run, because the
// shop re-sends keys on purpose (CLI, requeue, reused upsert keys).
//
// # Authentication
//
// Every Magento call carries an HS256 JWT signed with the tenant's outbound
// HKDF subkey, minted for that request and valid for 60 s. Ingest verifies
// it (magento.VerifyOutbound: signature, iss, aud and times with leeway; sub
// equal to the URL's tenant on webhooks), answers 401 when it fails, and
// keeps a replay set of (tenant, jti) until exp plus leeway, shared by every
// replica (the NATS KV bucket LEDGER_JTI), so a token cannot be replayed
// against another replica.
//
// # Shop health
//
// Ingest is where Ledger hears from the shop, so it records what the shop
// health verdict (libs/shophealth; Tenant.shop_health, the dashboard, the
// tile) is judged from, in the table shop_activity:
//
//   - The last accepted delivery per tenant. A repeat of a live run counts
//     (the shop is alive, its cron is running), though it creates no run. It
//     is kept in memory and written for every tenant in one statement every
//     ActivityFlushEvery (activity.go), not per event: issue 13 counts each
//     event's Postgres commits, and deriving it from sync_runs.created_at
//     alone would miss the repeats. Readers take the later of it and the
//     tenant's newest run, so new events count at once and a crash loses at
//     most one interval of repeats.
//   - Webhooks of a paired tenant refused only for their signature, counted in
//     a window; at the threshold a ping with Ledger's key confirms the drift
//     before the binding becomes token_revoked (drift.go says why the count
//     alone is not enough).
//
// # Publishing and deduplication
//
// The order is: store.AcceptWebhook (key → run, in one statement for a new
// key), publish the OutboxEvent and wait for the PubAck, answer 202. Nothing
// records the publish: a key whose run is still pending (the mapper has not
// started it) may be unpublished, so its next delivery gets the same run id
// back and publishes it again. A crash or failure between the steps is
// covered that way; a repeat of a run that was published is stored once by
// JetStream (the PubAck says duplicate, and so does the 202's outcome).
//
// The Nats-Msg-Id is tenant:idempotency-key:sync-run-id (MsgID). JetStream
// drops a second message with the same id inside its 2-minute dedupe window,
// so a network retry of one publish, or the shop's retry 60 s after a 503
// that followed a successful publish, is stored once. The run id suffix is
// deliberate: a key re-sent after its run failed gets a new run, hence a new
// message id, and is not swallowed by the dedupe window even when it arrives
// within two minutes of the first delivery.
package ingest
