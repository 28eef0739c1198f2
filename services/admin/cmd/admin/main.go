// Command admin runs Ledger's operator surface: the gRPC AdminService that
// ledgerctl speaks on ADMIN_GRPC_ADDR, and Sage's OAuth endpoints, the
// dashboard and health on ADMIN_HTTP_ADDR. Configuration is by environment
// (see services/admin/README.md).
package main

import (
	"github.com/ledgersync/ledger/libs/process"
	"github.com/ledgersync/ledger/services/admin"
)

func main() {
	process.Main("admin", func() (process.Program, error) {
		cfg, err := admin.ConfigFromEnv()
		return admin.Program(cfg), err
	})
}
