module github.com/ledgersync/ledger/sim

go 1.26.0

require github.com/ledgersync/ledger/libs v0.0.0

require github.com/shopspring/decimal v1.6.0 // indirect

replace github.com/ledgersync/ledger/libs => ../libs
