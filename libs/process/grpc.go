package process

import (
	"context"
	"fmt"
	"net"
	"time"

	"google.golang.org/grpc"
)

// GRPC is a component serving srv on ln (listening on addr when ln is nil;
// addrVar names the setting in errors). When its context ends it stops
// accepting calls and lets those in flight finish for up to grace, then
// cancels them.
func GRPC(name, addrVar, addr string, ln net.Listener, srv *grpc.Server, grace time.Duration) (Component, error) {
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", addr); err != nil {
			return Component{}, fmt.Errorf("%s %s: %w", addrVar, addr, err)
		}
	}
	return Component{Name: name, Shutdown: grace + time.Second, Run: func(ctx context.Context) error {
		served := make(chan error, 1)
		go func() { served <- srv.Serve(ln) }()
		select {
		case err := <-served:
			return err
		case <-ctx.Done():
		}
		stopped := make(chan struct{})
		go func() { srv.GracefulStop(); close(stopped) }()
		select {
		case <-stopped:
		case <-time.After(grace):
			srv.Stop()
		}
		return nil
	}}, nil
}
