package telemetry

import (
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/stats"
)

// GRPCServerOption makes every call to a gRPC server a server span
// (otelgrpc), continuing the caller's trace from its metadata. Health checks
// are not traced; metadata (the operator token, the shop's JWT) never is.
func GRPCServerOption() grpc.ServerOption {
	return grpc.StatsHandler(otelgrpc.NewServerHandler(otelgrpc.WithPropagators(Propagator()),
		otelgrpc.WithFilter(notHealth)))
}

// GRPCDialOption makes every call of a client connection a client span and
// sends the trace context in its metadata.
func GRPCDialOption() grpc.DialOption {
	return grpc.WithStatsHandler(otelgrpc.NewClientHandler(otelgrpc.WithPropagators(Propagator()),
		otelgrpc.WithFilter(notHealth)))
}

func notHealth(info *stats.RPCTagInfo) bool {
	return info.FullMethodName != "/grpc.health.v1.Health/Check" && info.FullMethodName != "/grpc.health.v1.Health/Watch"
}
