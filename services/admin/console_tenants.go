package admin

import (
	"net/http"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
)

// routesTenants registers the tenants pages: the list, one tenant, creation,
// connect and disconnect (console_connect.go) and the policy
// (console_policy.go).
func (s *Service) routesTenants(mux *http.ServeMux) {
	mux.Handle("GET /tenants", s.console(http.HandlerFunc(s.handleDashboard)))
	mux.Handle("POST /tenants", s.console(http.HandlerFunc(s.handleCreateTenant)))
	mux.Handle("GET /tenants/{tenant}", s.console(http.HandlerFunc(s.handleTenant)))
	s.routesConnect(mux)
	s.routesPolicy(mux)
}

// createForm is the "create a tenant" form as submitted, with its error.
type createForm struct {
	Name, TenantID string
	// Field is the field the error names (name or tenant_id; "" for none).
	Field, Error string
}

// handleCreateTenant is POST /tenants: CreateTenant, then the new tenant's
// page; an error is shown next to the field it names.
func (s *Service) handleCreateTenant(w http.ResponseWriter, r *http.Request) {
	f := createForm{Name: strings.TrimSpace(r.PostFormValue("name")), TenantID: strings.TrimSpace(r.PostFormValue("tenant_id"))}
	resp, err := s.CreateTenant(r.Context(), &ledgerv1.CreateTenantRequest{TenantId: f.TenantID, Name: f.Name})
	if err != nil {
		f.Error = rpcMessage(err)
		switch {
		case strings.HasPrefix(f.Error, "tenant_id"):
			f.Field = "tenant_id"
		case strings.HasPrefix(f.Error, "name"):
			f.Field = "name"
		}
		s.renderDashboard(w, r, httpStatus(err), &f)
		return
	}
	id := resp.GetTenant().GetTenantId()
	s.setFlash(w, flashOK, "Tenant "+id+" created. Connect its shop and Sage below.")
	http.Redirect(w, r, "/tenants/"+id, http.StatusSeeOther)
}

// httpStatus is the HTTP status of a page that shows an AdminService error.
func httpStatus(err error) int {
	switch status.Code(err) {
	case codes.OK:
		return http.StatusOK
	case codes.InvalidArgument:
		return http.StatusBadRequest
	case codes.NotFound:
		return http.StatusNotFound
	case codes.AlreadyExists, codes.FailedPrecondition, codes.Aborted:
		return http.StatusConflict
	case codes.Unavailable:
		return http.StatusBadGateway
	case codes.DeadlineExceeded:
		return http.StatusGatewayTimeout
	case codes.Unauthenticated:
		return http.StatusUnauthorized
	case codes.PermissionDenied:
		return http.StatusForbidden
	}
	return http.StatusInternalServerError
}

// tenantPage is one tenant: bindings, what they need, health and counts.
type tenantPage struct {
	Row tenantRow
}

// handleTenant is GET /tenants/{tenant}.
func (s *Service) handleTenant(w http.ResponseWriter, r *http.Request) {
	got, err := s.GetTenant(r.Context(), &ledgerv1.GetTenantRequest{TenantId: r.PathValue("tenant")})
	if err != nil {
		s.renderConsoleMessage(w, r, httpStatus(err), page{Title: "No such tenant", Problem: rpcMessage(err),
			Fix: "Pick the tenant from the tenants page.", Back: "/dashboard"})
		return
	}
	t := got.GetTenant()
	row := tenantRow{T: t, Counts: got.GetCounts(),
		Magento: magentoAction(t.GetTenantId(), t.GetMagentoConnectionStatus()),
		Sage:    sageAction(t.GetTenantId(), t.GetSageStatus())}
	s.renderConsole(w, r, http.StatusOK, "tenants.html", "Tenant "+t.GetTenantId(), tenantPage{Row: row})
}
