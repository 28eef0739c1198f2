package devtest

import (
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/ledgersync/ledger/libs/devstack"
)

// NATS starts an in-process NATS server with JetStream, storing in a
// directory of t.TempDir(), and returns its client URL. The server is shut
// down when the test ends. Each call gets its own server; starting one takes
// milliseconds.
func NATS(t testing.TB) string {
	t.Helper()
	return NATSServer(t).ClientURL()
}

// NATSServer is NATS returning the server itself, for tests that shut it
// down, restart it (RestartNATS) or inspect it.
func NATSServer(t testing.TB) *server.Server {
	t.Helper()
	return startNATS(t, t.TempDir())
}

// RestartNATS shuts s down and starts a new server on the same port and the
// same JetStream store directory, as a crashed or redeployed server would
// come back: streams, consumers and stored messages survive, and clients with
// reconnect enabled find it at the same URL. s must come from NATSServer or
// RestartNATS. whileDown, if any, run after the shutdown and before the start.
func RestartNATS(t testing.TB, s *server.Server, whileDown ...func()) *server.Server {
	t.Helper()
	// Both are gone once the server is shut down.
	storeDir := s.StoreDir() // <dir>/jetstream
	addr, ok := s.Addr().(*net.TCPAddr)
	if storeDir == "" || !ok {
		t.Fatalf("devtest: RestartNATS needs a running JetStream server from NATSServer")
	}
	devstack.StopNATS(s, 0) // a crash: clients stay connected
	for _, f := range whileDown {
		f()
	}
	return startNATS(t, filepath.Dir(storeDir), devstack.WithNATSPort(addr.Port))
}

func startNATS(t testing.TB, dir string, opts ...devstack.NATSOption) *server.Server {
	t.Helper()
	s, err := devstack.StartNATS(dir, opts...)
	if err != nil {
		t.Fatalf("devtest: %v", err)
	}
	// Registered after t.TempDir's removal, so it runs before it.
	t.Cleanup(func() { devstack.StopNATS(s, 5*time.Second) })
	return s
}
