package devstack

import (
	"fmt"
	"io"
	"net"
	"sync"
)

// Gate stands in for a dependency that is not there yet: a loopback address
// that refuses connections until Open, then forwards each connection to the
// real server. Tests use it to start a service before its database or NATS
// "exists" at the address the service was given.
type Gate struct {
	// Addr is the gate's host:port, fixed from NewGate on.
	Addr   string
	target string

	mu sync.Mutex
	ln net.Listener
	wg sync.WaitGroup
}

// NewGate reserves a free loopback port for a gate to target.
func NewGate(target string) (*Gate, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("devstack: gate: %w", err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return &Gate{Addr: addr, target: target}, nil
}

// Open starts accepting and forwarding connections.
func (g *Gate) Open() error {
	ln, err := net.Listen("tcp", g.Addr)
	if err != nil {
		return fmt.Errorf("devstack: gate %s: %w", g.Addr, err)
	}
	g.mu.Lock()
	g.ln = ln
	g.mu.Unlock()
	g.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			g.wg.Go(func() { g.forward(c) })
		}
	})
	return nil
}

func (g *Gate) forward(c net.Conn) {
	defer c.Close()
	u, err := net.Dial("tcp", g.target)
	if err != nil {
		return
	}
	defer u.Close()
	done := make(chan struct{})
	go func() {
		_, _ = io.Copy(u, c)
		if tc, ok := u.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		close(done)
	}()
	_, _ = io.Copy(c, u)
	_ = c.Close()
	<-done
}

// Close stops accepting; connections already forwarded end when either side
// closes them.
func (g *Gate) Close() {
	g.mu.Lock()
	ln := g.ln
	g.mu.Unlock()
	if ln != nil {
		_ = ln.Close()
	}
}
