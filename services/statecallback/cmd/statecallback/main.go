// Command statecallback runs Ledger's sync-state mirror: it consumes terminal
// sync results into each shop's Magento sync-state table and serves /healthz,
// /readyz and /metrics on STATECALLBACK_ADDR. Configuration is by environment
// (see services/statecallback/README.md).
package main

import (
	"github.com/ledgersync/ledger/libs/process"
	"github.com/ledgersync/ledger/services/statecallback"
)

func main() {
	process.Main("statecallback", func() (process.Program, error) {
		cfg, err := statecallback.ConfigFromEnv()
		return statecallback.Program(cfg), err
	})
}
