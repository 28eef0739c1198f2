// Command relay tails a Magento shop's byte8_event_outbox table into Ledger's
// INGEST stream (docs/relay.md) and serves /healthz, /readyz and /metrics on
// RELAY_ADDR. Configuration is by environment (see services/relay/README.md).
package main

import (
	"github.com/ledgersync/ledger/libs/process"
	"github.com/ledgersync/ledger/services/relay"
)

func main() {
	process.Main("relay", func() (process.Program, error) {
		cfg, err := relay.ConfigFromEnv()
		return relay.Program(cfg), err
	})
}
