// Command mapper runs Ledger's mapper: it consumes accepted Magento events from
// the OUTBOX stream, fetches each canonical entity, applies the tenant's policy
// and Sage's quirk rules, and publishes SageWrites. Configuration is by
// environment (see services/mapper/README.md).
package main

import (
	"github.com/ledgersync/ledger/libs/process"
	"github.com/ledgersync/ledger/services/mapper"
)

func main() {
	process.Main("mapper", func() (process.Program, error) {
		cfg, err := mapper.ConfigFromEnv()
		return mapper.Program(cfg), err
	})
}
