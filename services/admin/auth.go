package admin

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// errUnauthenticated is the one answer to a missing or wrong token; it never
// says which, nor echoes what was sent.
var errUnauthenticated = status.Error(codes.Unauthenticated,
	`operator credential required: send "authorization: Bearer <ADMIN_TOKEN>" (ledgerctl --token or LEDGER_ADMIN_TOKEN)`)

// tokenOK compares a presented token with ADMIN_TOKEN in constant time (both
// hashed first, so the comparison does not leak the length either).
func (s *Service) tokenOK(presented string) bool {
	if s.cfg.InsecureDev {
		return true
	}
	want := s.cfg.AdminToken.Reveal()
	if want == "" || presented == "" {
		return false
	}
	a, b := sha256.Sum256([]byte(presented)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

// bearer extracts the token of an "Bearer <token>" value ("" if malformed).
func bearer(v string) string {
	scheme, tok, ok := strings.Cut(strings.TrimSpace(v), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(tok)
}

func (s *Service) authorizeContext(ctx context.Context) error {
	md, _ := metadata.FromIncomingContext(ctx)
	for _, v := range md.Get("authorization") {
		if s.tokenOK(bearer(v)) {
			return nil
		}
	}
	if s.cfg.InsecureDev {
		return nil
	}
	return errUnauthenticated
}

// publicMethod reports whether a gRPC method is open without a token: only the
// health service, so load balancers and orchestrators can probe it.
func publicMethod(fullMethod string) bool {
	return strings.HasPrefix(fullMethod, "/"+healthpb.Health_ServiceDesc.ServiceName+"/")
}

func (s *Service) unaryAuth(ctx context.Context, req any, info *grpc.UnaryServerInfo, next grpc.UnaryHandler) (any, error) {
	if !publicMethod(info.FullMethod) {
		if err := s.authorizeContext(ctx); err != nil {
			s.metrics.rpcs.WithLabelValues(methodName(info.FullMethod), codes.Unauthenticated.String()).Inc()
			return nil, err
		}
	}
	resp, err := next(ctx, req)
	if !publicMethod(info.FullMethod) {
		s.metrics.rpcs.WithLabelValues(methodName(info.FullMethod), status.Code(err).String()).Inc()
	}
	return resp, err
}

func (s *Service) streamAuth(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, next grpc.StreamHandler) error {
	if !publicMethod(info.FullMethod) {
		if err := s.authorizeContext(ss.Context()); err != nil {
			return err
		}
	}
	return next(srv, ss)
}

func methodName(full string) string {
	if i := strings.LastIndex(full, "/"); i >= 0 {
		return full[i+1:]
	}
	return full
}

// authorizeHTTP accepts the operator token in an Authorization: Bearer header,
// or (LEDGER_ENV=dev only, for a browser) in the "token" query parameter.
func (s *Service) authorizeHTTP(r *http.Request) bool {
	if s.cfg.InsecureDev {
		return true
	}
	if s.tokenOK(bearer(r.Header.Get("Authorization"))) {
		return true
	}
	return s.cfg.Env == "dev" && s.tokenOK(r.URL.Query().Get("token"))
}
