package admin

import (
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/ledgersync/ledger/libs/store"
)

// dashboardRuns is how many recent runs the dashboard shows.
const dashboardRuns = 100

type dashboardTenant struct {
	store.Tenant
	SageStatus string
	Counts     store.Counts
}

type dashboardData struct {
	Now     time.Time
	Tenants []dashboardTenant
	Runs    []store.Run
	Filter  store.RunFilter
	Error   string
	// TracingUI is LEDGER_TRACING_UI_URL: runs link to their traces.
	TracingUI string
}

// TraceLink is the tracing UI's page of a run's trace ("" when there is
// none or no tracing UI is configured).
func (d dashboardData) TraceLink(traceID string) string { return traceLink(d.TracingUI, traceID) }

// handleDashboard renders the tenants with their connection states and counts,
// and the most recent runs (?tenant=T and ?status=S filter them).
func (s *Service) handleDashboard(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	data := dashboardData{Now: time.Now().UTC(), TracingUI: s.cfg.TracingUIURL, Filter: store.RunFilter{
		TenantID: strings.TrimSpace(r.URL.Query().Get("tenant")),
		Status:   strings.TrimSpace(r.URL.Query().Get("status")),
		Limit:    dashboardRuns,
	}}
	if data.Filter.TenantID != "" && store.ValidTenantID(data.Filter.TenantID) != nil {
		data.Error = "The tenant filter is not a valid tenant id; showing every tenant."
		data.Filter.TenantID = ""
	}
	tenants, err := s.st.Tenants(ctx)
	if err != nil {
		s.log.ErrorContext(ctx, "dashboard: tenants", "err", err)
		s.renderMessage(w, http.StatusServiceUnavailable, page{Title: "The dashboard cannot read the database",
			Problem: "Listing tenants failed (details in the admin service log).", Fix: "Check /readyz and try again."})
		return
	}
	for _, t := range tenants {
		c, err := s.st.RunCounts(ctx, t.ID)
		if err != nil {
			s.log.ErrorContext(ctx, "dashboard: run counts", "tenant_id", t.ID, "err", err)
		}
		data.Tenants = append(data.Tenants, dashboardTenant{Tenant: t, SageStatus: sageStatus(t.Binding.Status), Counts: c})
	}
	if data.Filter.Status != "" && !slices.Contains(runStatuses, data.Filter.Status) {
		data.Error = "Unknown status filter; use one of " + strings.Join(runStatuses, ", ") + "."
		data.Filter.Status = ""
	}
	if data.Runs, err = s.st.ListRuns(ctx, data.Filter); err != nil {
		s.log.ErrorContext(ctx, "dashboard: runs", "err", err)
		data.Error = "Listing runs failed (details in the admin service log)."
	}
	s.render(w, http.StatusOK, "dashboard.html", data)
}
