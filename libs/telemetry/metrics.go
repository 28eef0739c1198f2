package telemetry

import (
	"regexp"
	"sort"

	"github.com/prometheus/client_golang/prometheus"
)

// Metric families every stage shares, so one PromQL expression covers every
// stage (docs/observability.md lists the whole catalogue).
//
// A service's own metrics are named ledger_<service>_…; the families below
// are registered by the shared runtime (libs/bus, this package) in the
// registry of each service that runs a stage, with the stage as a label.

// StageBuckets are the buckets of every stage-latency histogram (5 ms to
// 5 min): a webhook answered in milliseconds and a Sage write held for a
// minute by the rate budget land in the same scale.
var StageBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300}

// NewStageDuration is ledger_stage_duration_seconds{stage}: how long a stage
// took over one message (ingest: one webhook; the mapper, sage-writer and
// statecallback: one delivery, from the start of its handling to its
// settlement). Each service registers its own.
func NewStageDuration() *prometheus.HistogramVec {
	return prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "ledger_stage_duration_seconds",
		Help:    "Time a stage took over one message: ingest one webhook, a consumer one delivery (handling and settlement).",
		Buckets: StageBuckets,
	}, []string{"stage"})
}

// OtherTenants is the tenant label that folds every tenant beyond a per-tenant
// metric's cap. Parentheses cannot occur in a tenant id, so it never names
// a real tenant.
const OtherTenants = "(other)"

// DefaultTenantSeries is the default cap on the tenants a per-tenant metric
// names (LEDGER_METRICS_TENANTS).
const DefaultTenantSeries = 20

// TopTenants keeps the cap tenants with the largest values (ties broken by
// tenant id, so the set is stable between scrapes) and folds the rest into
// one OtherTenants entry holding their sum; it is absent when nothing was
// folded. A cap below 1 keeps one tenant.
func TopTenants(values map[string]float64, cap int) map[string]float64 {
	cap = max(cap, 1)
	if len(values) <= cap {
		return values
	}
	ids := make([]string, 0, len(values))
	for id := range values {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool {
		if values[ids[i]] != values[ids[j]] {
			return values[ids[i]] > values[ids[j]]
		}
		return ids[i] < ids[j]
	})
	out := make(map[string]float64, cap+1)
	for _, id := range ids[:cap] {
		out[id] = values[id]
	}
	rest := 0.0
	for _, id := range ids[cap:] {
		rest += values[id]
	}
	out[OtherTenants] += rest
	return out
}

var labelWord = regexp.MustCompile(`^[a-z][a-z0-9_]{0,39}$`)

// SageResourceLabel is the Sage resource a request path names, as a metric
// label: the resource (contacts, sales_invoices, token, …) when it is a plain
// lower-case word, else "other", so a path of an unexpected shape can never
// make a label value of its own.
func SageResourceLabel(path string) string {
	if r := SageResource(path); labelWord.MatchString(r) {
		return r
	}
	return "other"
}
