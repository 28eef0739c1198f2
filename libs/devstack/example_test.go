package devstack_test

import (
	"context"
	"fmt"
	"log"

	"github.com/nats-io/nats.go"

	"github.com/ledgersync/ledger/libs/devstack"
)

func ExampleStartNATS() {
	s, err := devstack.StartNATS("") // JetStream in a temporary directory
	if err != nil {
		log.Fatal(err)
	}
	defer func() {
		s.Shutdown()
		s.WaitForShutdown()
	}()

	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()
	fmt.Println(nc.IsConnected())
	// Output: true
}

func ExampleDatabaseURL() {
	ctx := context.Background()
	// LEDGER_DATABASE_URL when set, else a throwaway cluster.
	url, stop, err := devstack.DatabaseURL(ctx)
	if err != nil {
		log.Fatal(err) // says how to install PostgreSQL when it is missing
	}
	defer stop()
	fmt.Println(url)
}
