package main

import (
	"testing"

	"github.com/ledgersync/ledger/libs/devstack/devtest"
)

// TestMain fails the run when a goroutine outlives the tests.
func TestMain(m *testing.M) { devtest.Main(m) }
