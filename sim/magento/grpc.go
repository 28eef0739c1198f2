package magentosim

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/ledgersync/ledger/libs/magento"
	"github.com/ledgersync/ledger/libs/telemetry"
	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
)

// GRPCServer returns a gRPC server carrying ledger.v1.SyncStateService for this
// shop: the receiver a binding with callback transport "grpc" talks to. It is
// the REST sync-state endpoint in another envelope:
//
//   - Authentication is the REST routes' own: the inbound JWT travels as
//     "authorization: Bearer <jwt>" metadata and goes through the same verifier
//     (routing peek, signature, claims, tenant, jti replay cache). A refusal is
//     codes.Unauthenticated, and so is an unpaired shop.
//   - A shop that is down (SetDown) answers codes.Unavailable.
//   - tenant_id must be the paired tenant (codes.PermissionDenied otherwise).
//   - Each entry goes through UpsertSyncState, so validation and storage are
//     those of POST /V1/byte8/sync-state; an empty string means null. An entry
//     refused with the "Could not upsert" message is retryable, any other
//     refusal is not.
//
// An empty batch stores nothing and answers an empty result list: it is the
// transport's ping. opts are passed to grpc.NewServer (tests add interceptors).
// Serve it with (*grpc.Server).Serve on a listener; the caller stops it. Like
// a receiver that traces, each call is a server span in the caller's trace.
func (s *Shop) GRPCServer(opts ...grpc.ServerOption) *grpc.Server {
	srv := grpc.NewServer(append([]grpc.ServerOption{telemetry.GRPCServerOption()}, opts...)...)
	ledgerv1.RegisterSyncStateServiceServer(srv, &syncStateReceiver{shop: s})
	return srv
}

type syncStateReceiver struct {
	ledgerv1.UnimplementedSyncStateServiceServer
	shop *Shop
}

func (g *syncStateReceiver) PushSyncState(ctx context.Context, req *ledgerv1.PushSyncStateRequest) (*ledgerv1.PushSyncStateResponse, error) {
	s := g.shop
	if s.Down() {
		return nil, status.Error(codes.Unavailable, "Internal Error. Details are available in Magento log file. Report ID: "+reportID())
	}
	if reason := s.authorize(bearerRequest(ctx)); reason != "" {
		s.log.Info("Byte8 JWT rejected", "reason", reason, "rpc", "PushSyncState")
		return nil, status.Error(codes.Unauthenticated, strings.ReplaceAll(msgUnauthorized, "%resources", aclResource))
	}
	if tenant := s.TenantID(); req.GetTenantId() != tenant {
		return nil, status.Errorf(codes.PermissionDenied, "tenant_id %q is not the tenant this shop is paired with", req.GetTenantId())
	}
	out := &ledgerv1.PushSyncStateResponse{Results: make([]*ledgerv1.SyncStateEntryResult, len(req.GetEntries()))}
	for i, e := range req.GetEntries() {
		err := s.UpsertSyncState(magento.SyncState{
			EntityType: e.GetEntityType(), MagentoEntityID: e.GetMagentoEntityId(), Provider: e.GetProvider(),
			SyncStatus: e.GetSyncStatus(), ProviderEntityID: nullable(e.GetProviderEntityId()),
			ProviderReference: nullable(e.GetProviderReference()), SkipReason: nullable(e.GetSkipReason()),
			ErrorCode: nullable(e.GetErrorCode()), LastSyncAt: e.GetLastSyncAt(),
		})
		r := &ledgerv1.SyncStateEntryResult{Stored: err == nil}
		var se *SyncStateError
		if errors.As(err, &se) {
			r.Error = se.Error()
			r.Retryable = strings.HasPrefix(se.Message, "Could not upsert")
		} else if err != nil {
			r.Error, r.Retryable = err.Error(), true
		}
		out.Results[i] = r
	}
	return out, nil
}

// bearerRequest carries the call's authorization metadata in the shape the
// REST verifier reads, so both surfaces share one verifier.
func bearerRequest(ctx context.Context) *http.Request {
	r := &http.Request{Header: http.Header{}}
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if v := md.Get("authorization"); len(v) > 0 {
			r.Header.Set("Authorization", v[0])
		}
	}
	return r
}

// nullable is the proto3 convention of the gRPC wire: "" means null.
func nullable(v string) *string {
	if v == "" {
		return nil
	}
	return &v
}
