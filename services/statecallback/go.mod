module github.com/ledgersync/ledger/services/statecallback

go 1.26.0

require (
	github.com/ledgersync/ledger/libs v0.0.0
	github.com/ledgersync/ledger/proto v0.0.0
)

replace (
	github.com/ledgersync/ledger/libs => ../../libs
	github.com/ledgersync/ledger/proto => ../../proto
)
