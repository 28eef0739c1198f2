package devstack

import (
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// StopNATS shuts an embedded server down without leaking its stores. The
// server serves JetStream API requests from a queue, after it has read them
// from a connection: a stream or key-value bucket being created while the
// server shuts down can be created after JetStream has stopped its stores,
// and that store's goroutines then outlive the server (nats-server 2.15). So
// StopNATS first waits, at most idle, until every client has gone, and then,
// at most a further second, until no API request is being served.
//
// A test's clean-up passes a few seconds (its clients close just before); a
// test that simulates a crash with clients connected passes 0.
func StopNATS(s *server.Server, idle time.Duration) {
	settle(func() bool { return s.NumClients() == 0 }, idle)
	settle(func() bool { return apiInFlight(s) == 0 }, time.Second)
	s.Shutdown()
	s.WaitForShutdown()
}

// apiInFlight is the number of JetStream API requests s is serving or has
// queued (0 without JetStream).
func apiInFlight(s *server.Server) uint64 {
	if !s.JetStreamEnabled() {
		return 0
	}
	info, err := s.Jsz(&server.JSzOptions{})
	if err != nil {
		return 0
	}
	return info.API.Inflight
}

// settle polls done every millisecond until it holds or limit has passed.
func settle(done func() bool, limit time.Duration) {
	for deadline := time.Now().Add(limit); !done() && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
}
