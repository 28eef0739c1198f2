// Command sage-writer runs Ledger's Sage writer: it consumes SageWrites from the
// SAGE stream and writes them into Sage Business Cloud Accounting v3.1.
// Configuration is by environment (see services/sage-writer/README.md).
package main

import (
	"github.com/ledgersync/ledger/libs/process"
	sagewriter "github.com/ledgersync/ledger/services/sage-writer"
)

func main() {
	process.Main("sage-writer", func() (process.Program, error) {
		cfg, err := sagewriter.ConfigFromEnv()
		return sagewriter.Program(cfg), err
	})
}
