package admin

import (
	"net/http"
	"strings"
	"time"

	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
)

// dashboardRuns is how many recent runs the tenants page shows (the runs
// page pages through all of them).
const dashboardRuns = 20

// action is a link to what a binding needs next.
type action struct {
	Label string
	Href  string
	// Urgent marks an action that fixes a broken binding (shown as a
	// primary button); others are secondary.
	Urgent bool
}

// tenantRow is one tenant on the tenants page.
type tenantRow struct {
	T      *ledgerv1.Tenant
	Counts *ledgerv1.RunCounts
	// Magento and Sage are what each binding needs next.
	Magento, Sage action
	// Error is why the counts could not be read ("" normally).
	Error string
}

type dashboardData struct {
	Now     time.Time
	Tenants []tenantRow
	Runs    []*ledgerv1.Run
	Filter  struct{ TenantID, Status string }
	Error   string
	// TracingUI is LEDGER_TRACING_UI_URL: runs link to their traces.
	TracingUI string
	// Create is the "create a tenant" form after a refused submission.
	Create *createForm
	// DeadLetters is the sum of the tenants' dead letters (the banner);
	// DeadLettersUnknown is true when some tenant's could not be counted.
	DeadLetters        int64
	DeadLettersUnknown bool
}

// TraceLink is the tracing UI's page of a run's trace ("" when there is
// none or no tracing UI is configured).
func (d dashboardData) TraceLink(traceID string) string { return traceLink(d.TracingUI, traceID) }

// magentoAction is what a shop binding in status st needs.
func magentoAction(tenantID, st string) action {
	base := "/tenants/" + tenantID
	switch st {
	case "token_revoked", "revoked":
		return action{Label: "Re-pair the shop", Href: base + "/connect/magento", Urgent: true}
	case "active":
		return action{Label: "Disconnect", Href: base + "/disconnect/magento"}
	default: // pending, missing
		return action{Label: "Connect the shop", Href: base + "/connect/magento", Urgent: true}
	}
}

// sageAction is what a Sage binding in status st (the API's vocabulary) needs.
func sageAction(tenantID, st string) action {
	base := "/tenants/" + tenantID
	switch st {
	case "token_revoked":
		return action{Label: "Re-authorise Sage", Href: base + "/connect/sage", Urgent: true}
	case "active":
		return action{Label: "Disconnect", Href: base + "/disconnect/sage"}
	default: // not_connected
		return action{Label: "Connect Sage", Href: base + "/connect/sage", Urgent: true}
	}
}

// tenantRows reads every tenant through ListTenants and GetTenant (the same
// code paths as ledgerctl tenants list/show).
func (s *Service) tenantRows(r *http.Request) ([]tenantRow, error) {
	ctx := r.Context()
	list, err := s.ListTenants(ctx, &ledgerv1.ListTenantsRequest{})
	if err != nil {
		return nil, err
	}
	rows := make([]tenantRow, 0, len(list.GetTenants()))
	for _, t := range list.GetTenants() {
		row := tenantRow{T: t, Counts: &ledgerv1.RunCounts{},
			Magento: magentoAction(t.GetTenantId(), t.GetMagentoConnectionStatus()),
			Sage:    sageAction(t.GetTenantId(), t.GetSageStatus())}
		if got, err := s.GetTenant(ctx, &ledgerv1.GetTenantRequest{TenantId: t.GetTenantId()}); err != nil {
			row.Error = rpcMessage(err)
		} else {
			row.T, row.Counts = got.GetTenant(), got.GetCounts()
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// handleDashboard is the tenants page (GET /dashboard, GET /tenants): each
// tenant's bindings with the action they need, shop health, counts and dead
// letters, then the most recent runs (?tenant=T and ?status=S filter them).
func (s *Service) handleDashboard(w http.ResponseWriter, r *http.Request) {
	s.renderDashboard(w, r, http.StatusOK, nil)
}

// renderDashboard renders the tenants page with code, and the create form
// as submitted when it was refused.
func (s *Service) renderDashboard(w http.ResponseWriter, r *http.Request, code int, create *createForm) {
	data := dashboardData{Now: time.Now().UTC(), TracingUI: s.cfg.TracingUIURL, Create: create}
	data.Filter.TenantID = strings.TrimSpace(r.URL.Query().Get("tenant"))
	data.Filter.Status = strings.TrimSpace(r.URL.Query().Get("status"))
	rows, err := s.tenantRows(r)
	if err != nil {
		s.renderConsoleMessage(w, r, http.StatusServiceUnavailable, page{Title: "The console cannot list tenants",
			Problem: rpcMessage(err), Fix: "Check /readyz and try again."})
		return
	}
	data.Tenants = rows
	for _, row := range rows {
		if n := row.Counts.GetDeadLetters(); n < 0 || row.Error != "" {
			data.DeadLettersUnknown = true
		} else {
			data.DeadLetters += n
		}
	}
	runs, err := s.ListRuns(r.Context(), &ledgerv1.ListRunsRequest{Limit: dashboardRuns,
		Filter: &ledgerv1.RunFilter{TenantId: data.Filter.TenantID, Status: data.Filter.Status}})
	if err != nil {
		data.Error = "Recent runs: " + rpcMessage(err)
	} else {
		data.Runs = runs.GetRuns()
	}
	s.renderConsole(w, r, code, "dashboard.html", "Tenants", data)
}
