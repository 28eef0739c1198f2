module github.com/ledgersync/ledger/cmd/ledgerctl

go 1.26.0

require (
	github.com/ledgersync/ledger/proto v0.0.0
)

replace (
	github.com/ledgersync/ledger/proto => ../../proto
)
