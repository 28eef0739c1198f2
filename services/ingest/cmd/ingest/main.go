// Command ingest runs Ledger's ingest service: it receives the Byte8 Magento
// modules' signed webhooks and publishes them to the OUTBOX stream.
// Configuration is by environment (see services/ingest/README.md).
package main

import (
	"github.com/ledgersync/ledger/libs/process"
	"github.com/ledgersync/ledger/services/ingest"
)

func main() {
	process.Main("ingest", func() (process.Program, error) {
		cfg, err := ingest.ConfigFromEnv()
		return ingest.Program(cfg), err
	})
}
