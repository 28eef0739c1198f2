package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/oauth2"

	"github.com/ledgersync/ledger/libs/sage"
	"github.com/ledgersync/ledger/libs/store"
	"github.com/ledgersync/ledger/libs/telemetry"
)

// Registry is the service's Prometheus registry (served at /metrics).
func (s *Service) Registry() *prometheus.Registry { return s.reg }

// sageCalls counts the calls admin makes to Sage (the OAuth code exchange and
// refreshes, reference data, businesses) in ledger_sage_calls_total, as the
// writer counts its own; calls to shops go through uncounted.
type sageCalls struct {
	base  http.RoundTripper
	hosts map[string]bool
	calls *prometheus.CounterVec
}

func (t *sageCalls) RoundTrip(r *http.Request) (*http.Response, error) {
	base := t.base
	if base == nil {
		base = http.DefaultTransport
	}
	resp, err := base.RoundTrip(r)
	if t.hosts[r.URL.Host] {
		status := "0"
		if err == nil {
			status = fmt.Sprint(resp.StatusCode)
		}
		t.calls.WithLabelValues(telemetry.SageResourceLabel(r.URL.Path), r.Method, status).Inc()
	}
	return resp, err
}

// sageHosts are the hosts (with port) of Sage's endpoints.
func sageHosts(e sage.Endpoints) map[string]bool {
	hosts := map[string]bool{}
	for _, raw := range []string{e.APIURL, e.TokenURL, e.RevokeURL, e.AuthURL} {
		if u, err := url.Parse(raw); err == nil && u.Host != "" {
			hosts[u.Host] = true
		}
	}
	return hosts
}

// countRefresh counts one token refresh admin made by its outcome (as the
// writer's ledger_sage_oauth_refreshes_total).
func (s *Service) countRefresh(err error) {
	outcome := "ok"
	var re *oauth2.RetrieveError
	switch {
	case err == nil:
	case errors.Is(err, sage.ErrInvalidGrant),
		errors.As(err, &re) && re.Response != nil && re.Response.StatusCode >= 400 && re.Response.StatusCode < 500:
		outcome = "refused"
	default:
		outcome = "failed"
	}
	s.metrics.refreshes.WithLabelValues(outcome).Inc()
}

// Tenant activity on /metrics: read from the store when Prometheus scrapes,
// at most once per activityCache, so a scrape costs one indexed query per
// tenant (TenantActivity) however often it comes.
const (
	activityCache   = 15 * time.Second
	activityTimeout = 5 * time.Second
)

var (
	descBindings = prometheus.NewDesc("ledger_admin_bindings",
		"Tenants by binding side (magento, sage) and status (pending, active, token_revoked, revoked).",
		[]string{"side", "status"}, nil)
	descUnfinished = prometheus.NewDesc("ledger_admin_unfinished_runs",
		"Runs pending or running, all tenants: events accepted and not yet synced, skipped or failed.", nil, nil)
	descTenantBacklog = prometheus.NewDesc("ledger_admin_tenant_backlog_runs",
		"Unfinished runs of the tenants with the largest backlog (at most LEDGER_METRICS_TENANTS; the rest summed under tenant=\"(other)\"); tenants with none are left out.",
		[]string{"tenant"}, nil)
	descLastWebhook = prometheus.NewDesc("ledger_admin_tenant_last_webhook_timestamp_seconds",
		"When ingest last accepted an event of a tenant whose Magento binding is active (its newest run; its creation when it has none), for the LEDGER_METRICS_TENANTS tenants silent longest.",
		[]string{"tenant"}, nil)
)

// bindingStatuses are every status a binding side can have (the schema's).
var bindingStatuses = []string{store.StatusPending, store.StatusActive, store.StatusTokenRevoked, store.StatusRevoked}

// activityCollector reports the tenants' bindings, backlog and silence.
type activityCollector struct {
	st interface {
		TenantActivity(context.Context) ([]store.TenantActivity, error)
	}
	cap    int
	errors prometheus.Counter

	mu   sync.Mutex
	read time.Time
	last []prometheus.Metric
}

func newActivityCollector(st Store, cap int) *activityCollector {
	if cap <= 0 {
		cap = telemetry.DefaultTenantSeries
	}
	return &activityCollector{st: st, cap: cap, errors: prometheus.NewCounter(prometheus.CounterOpts{
		Name: "ledger_admin_metrics_read_errors_total",
		Help: "Readings of the tenants' activity for /metrics that failed (that scrape had no ledger_admin_bindings, …_runs or …_timestamp_seconds series).",
	})}
}

func (c *activityCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descBindings, descUnfinished, descTenantBacklog, descLastWebhook} {
		ch <- d
	}
	c.errors.Describe(ch)
}

func (c *activityCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.read.IsZero() || time.Since(c.read) >= activityCache {
		ctx, cancel := context.WithTimeout(context.Background(), activityTimeout)
		acts, err := c.st.TenantActivity(ctx)
		cancel()
		c.last = nil
		if err != nil {
			c.errors.Inc()
		} else {
			c.last = activityMetrics(acts, c.cap)
		}
		c.read = time.Now()
	}
	for _, m := range c.last {
		ch <- m
	}
	c.errors.Collect(ch)
}

// activityMetrics turns the tenants' activity into the metrics, capping the
// per-tenant ones at cap tenants.
func activityMetrics(acts []store.TenantActivity, cap int) []prometheus.Metric {
	bindings := map[[2]string]float64{}
	for _, st := range bindingStatuses {
		bindings[[2]string{"magento", st}], bindings[[2]string{"sage", st}] = 0, 0
	}
	var unfinished float64
	backlog := map[string]float64{}
	silence := map[string]float64{} // tenant → seconds since its last event
	lastAt := map[string]time.Time{}
	now := time.Now()
	for _, a := range acts {
		bindings[[2]string{"magento", a.MagentoStatus}]++
		bindings[[2]string{"sage", a.SageStatus}]++
		unfinished += float64(a.Unfinished)
		if a.Unfinished > 0 {
			backlog[a.TenantID] = float64(a.Unfinished)
		}
		if a.MagentoStatus == store.StatusActive {
			last := a.LastRunAt
			if last.IsZero() {
				last = a.CreatedAt
			}
			silence[a.TenantID], lastAt[a.TenantID] = now.Sub(last).Seconds(), last
		}
	}
	var out []prometheus.Metric
	for k, n := range bindings {
		out = append(out, prometheus.MustNewConstMetric(descBindings, prometheus.GaugeValue, n, k[0], k[1]))
	}
	out = append(out, prometheus.MustNewConstMetric(descUnfinished, prometheus.GaugeValue, unfinished))
	for tenant, n := range telemetry.TopTenants(backlog, cap) {
		out = append(out, prometheus.MustNewConstMetric(descTenantBacklog, prometheus.GaugeValue, n, tenant))
	}
	// The silent longest; folding timestamps means nothing, so the rest
	// (more recent) are left out.
	for tenant := range telemetry.TopTenants(silence, cap) {
		if at, ok := lastAt[tenant]; ok {
			out = append(out, prometheus.MustNewConstMetric(descLastWebhook, prometheus.GaugeValue, float64(at.UnixMilli())/1000, tenant))
		}
	}
	return out
}
