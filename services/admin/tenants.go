package admin

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ledgersync/ledger/libs/store"
	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
)

// maxNameLen bounds a tenant's display name.
const maxNameLen = 200

// CreateTenant registers a tenant: the explicit id when given (validated), else
// a new UUID. Repeating a call with the same id and name returns the tenant;
// the same id with another name is AlreadyExists.
func (s *Service) CreateTenant(ctx context.Context, req *ledgerv1.CreateTenantRequest) (*ledgerv1.CreateTenantResponse, error) {
	name := strings.TrimSpace(req.GetName())
	if name == "" {
		return nil, status.Error(codes.InvalidArgument, "name is required: give the shop or company name, e.g. --name \"Acme Ltd\"")
	}
	if len(name) > maxNameLen {
		return nil, status.Errorf(codes.InvalidArgument, "name is %d characters long: use at most %d", len(name), maxNameLen)
	}
	id := strings.TrimSpace(req.GetTenantId())
	if id == "" {
		id = uuid.NewString()
	} else if err := store.ValidTenantID(id); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "tenant_id: %v", err)
	}
	if existing, err := s.st.Tenant(ctx, id); err == nil {
		if existing.Name != name {
			return nil, status.Errorf(codes.AlreadyExists, "tenant_id %q already exists (name %q): pick another id, or omit it to get a new UUID", id, existing.Name)
		}
		return &ledgerv1.CreateTenantResponse{Tenant: s.tenantProto(existing)}, nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, s.storeErr(ctx, "create tenant", err)
	}
	t, err := s.st.CreateTenant(ctx, id, name)
	if err != nil {
		return nil, s.storeErr(ctx, "create tenant", err)
	}
	s.log.InfoContext(ctx, "tenant created", "tenant_id", t.ID)
	return &ledgerv1.CreateTenantResponse{Tenant: s.tenantProto(t)}, nil
}

// ListTenants lists every tenant, oldest first.
func (s *Service) ListTenants(ctx context.Context, _ *ledgerv1.ListTenantsRequest) (*ledgerv1.ListTenantsResponse, error) {
	ts, err := s.st.Tenants(ctx)
	if err != nil {
		return nil, s.storeErr(ctx, "list tenants", err)
	}
	out := &ledgerv1.ListTenantsResponse{Tenants: make([]*ledgerv1.Tenant, 0, len(ts))}
	for _, t := range ts {
		tp := s.tenantProto(t)
		tp.ShopHealth = s.shopHealth(ctx, t)
		out.Tenants = append(out.Tenants, tp)
	}
	return out, nil
}

// GetTenant returns one tenant with its run counts.
func (s *Service) GetTenant(ctx context.Context, req *ledgerv1.GetTenantRequest) (*ledgerv1.GetTenantResponse, error) {
	t, err := s.tenant(ctx, req.GetTenantId())
	if err != nil {
		return nil, err
	}
	c, err := s.st.RunCounts(ctx, t.ID)
	if err != nil {
		return nil, s.storeErr(ctx, "run counts", err)
	}
	tp := s.tenantProto(t)
	tp.ShopHealth = s.shopHealth(ctx, t)
	counts := countsProto(c)
	counts.DeadLetters = s.tenantDeadLetters(ctx, t.ID)
	return &ledgerv1.GetTenantResponse{Tenant: tp, Counts: counts}, nil
}

// runStatuses are the statuses ListRuns filters on.
var runStatuses = []string{store.RunPending, store.RunRunning, store.RunSucceeded, store.RunSkipped, store.RunFailed}

// ListRuns lists runs newest first, filtered (RunFilter; the request's
// tenant_id and status fill the filter's when it leaves them empty) and paged
// by next_page_token.
func (s *Service) ListRuns(ctx context.Context, req *ledgerv1.ListRunsRequest) (*ledgerv1.ListRunsResponse, error) {
	rf := &ledgerv1.RunFilter{}
	if req.GetFilter() != nil {
		rf = proto.CloneOf(req.GetFilter())
	}
	if rf.TenantId == "" {
		rf.TenantId = req.GetTenantId()
	}
	if rf.Status == "" {
		rf.Status = req.GetStatus()
	}
	f, err := parseRunFilter(rf)
	if err != nil {
		return nil, err
	}
	if f.Limit, err = runLimit(req.GetLimit(), 50); err != nil {
		return nil, err
	}
	if f.After, err = parsePageToken(req.GetPageToken()); err != nil {
		return nil, err
	}
	runs, err := s.st.ListRuns(ctx, f)
	if err != nil {
		return nil, s.storeErr(ctx, "list runs", err)
	}
	out := &ledgerv1.ListRunsResponse{Runs: make([]*ledgerv1.Run, 0, len(runs))}
	for _, r := range runs {
		out.Runs = append(out.Runs, runProto(r))
	}
	if len(runs) == f.Limit {
		out.NextPageToken = pageToken(runs[len(runs)-1].Cursor())
	}
	return out, nil
}

// tenant loads a tenant named in a request: InvalidArgument for a malformed id,
// NotFound for an unknown one.
func (s *Service) tenant(ctx context.Context, id string) (store.Tenant, error) {
	id = strings.TrimSpace(id)
	if id == "" {
		return store.Tenant{}, status.Error(codes.InvalidArgument, "tenant_id is required: list tenants with ledgerctl tenants list")
	}
	if err := store.ValidTenantID(id); err != nil {
		return store.Tenant{}, status.Errorf(codes.InvalidArgument, "tenant_id: %v", err)
	}
	t, err := s.st.Tenant(ctx, id)
	if err != nil {
		return store.Tenant{}, s.storeErr(ctx, "load tenant", err)
	}
	return t, nil
}

// storeErr turns a store failure into a gRPC status: NotFound, the caller's
// cancellation, or Internal (logged; details stay in the log).
func (s *Service) storeErr(ctx context.Context, op string, err error) error {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return status.Errorf(codes.NotFound, "%v: check the id with ledgerctl tenants list", err)
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, op+": cancelled")
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, op+": deadline exceeded")
	}
	s.log.ErrorContext(ctx, "store failure", "op", op, "err", err)
	return status.Error(codes.Internal, fmt.Sprintf("%s failed: database error (details in the admin service log)", op))
}

// sageStatus maps the binding's Sage status to the API's vocabulary: the
// store's "pending" is "not_connected".
func sageStatus(st string) string {
	if st == "" || st == store.StatusPending {
		return "not_connected"
	}
	return st
}

func (s *Service) tenantProto(t store.Tenant) *ledgerv1.Tenant {
	return &ledgerv1.Tenant{
		TenantId:                t.ID,
		Name:                    t.Name,
		MagentoConnectionStatus: t.Binding.MagentoConnectionStatus,
		MagentoBaseUrl:          t.Binding.MagentoBaseURL,
		SageStatus:              sageStatus(t.Binding.Status),
		SageBusinessId:          t.Binding.SageBusinessID,
		SageRegion:              t.Binding.SageRegion,
		CreatedAt:               timestamppb.New(t.CreatedAt),
		SyncStateTransport:      t.Binding.CallbackTransport,
	}
}

func countsProto(c store.Counts) *ledgerv1.RunCounts {
	return &ledgerv1.RunCounts{Pending: c.Pending, Succeeded: c.Succeeded, Skipped: c.Skipped, Failed: c.Failed, Failed_24H: c.Failed24h}
}

func runProto(r store.Run) *ledgerv1.Run {
	out := &ledgerv1.Run{
		SyncRunId: r.ID, TenantId: r.TenantID, Event: r.Event, EntityType: r.EntityType,
		MagentoEntityId: r.MagentoEntityID, Status: r.Status, SageId: r.SageID, SkipReason: r.SkipReason,
		ErrorClass: r.ErrorClass, ErrorCode: r.ErrorCode, LastError: r.LastError, Attempts: int32(r.Attempts),
		CreatedAt: timestamppb.New(r.CreatedAt), TraceId: r.TraceID, Change: r.Change, AppliedQuirks: r.AppliedQuirks,
	}
	if r.FinishedAt != nil {
		out.FinishedAt = timestamppb.New(*r.FinishedAt)
	}
	return out
}
