module github.com/ledgersync/ledger/cmd/ledger-dev

go 1.26.0

require (
	github.com/ledgersync/ledger/libs v0.0.0
	github.com/ledgersync/ledger/proto v0.0.0
	github.com/ledgersync/ledger/services/admin v0.0.0
	github.com/ledgersync/ledger/services/ingest v0.0.0
	github.com/ledgersync/ledger/services/mapper v0.0.0
	github.com/ledgersync/ledger/services/sage-writer v0.0.0
	github.com/ledgersync/ledger/services/statecallback v0.0.0
	github.com/ledgersync/ledger/sim v0.0.0
)

require github.com/compose-spec/compose-go/v2 v2.16.2 // indirect

replace (
	github.com/ledgersync/ledger/libs => ../../libs
	github.com/ledgersync/ledger/proto => ../../proto
	github.com/ledgersync/ledger/services/admin => ../../services/admin
	github.com/ledgersync/ledger/services/ingest => ../../services/ingest
	github.com/ledgersync/ledger/services/mapper => ../../services/mapper
	github.com/ledgersync/ledger/services/sage-writer => ../../services/sage-writer
	github.com/ledgersync/ledger/services/statecallback => ../../services/statecallback
	github.com/ledgersync/ledger/sim => ../../sim
)
