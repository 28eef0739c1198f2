package admin

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ledgersync/ledger/libs/store"
	"github.com/ledgersync/ledger/libs/telemetry"
)

type activities []store.TenantActivity

func (a activities) TenantActivity(context.Context) ([]store.TenantActivity, error) { return a, nil }

// TestActivityMetricsCap: the per-tenant series are capped (the largest
// backlogs, the rest summed under "(other)"; the longest silent), the totals
// are not.
func TestActivityMetricsCap(t *testing.T) {
	now := time.Now()
	var acts activities
	for i := range 25 {
		acts = append(acts, store.TenantActivity{TenantID: fmt.Sprintf("t%02d", i), MagentoStatus: store.StatusActive,
			SageStatus: store.StatusActive, Unfinished: int64(i), LastRunAt: now.Add(-time.Duration(i) * time.Hour)})
	}
	acts[3].SageStatus = store.StatusTokenRevoked
	c := newActivityCollector(nil, 3)
	c.st = acts
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]map[string]float64{} // family → labels → value
	for _, f := range fams {
		got[f.GetName()] = map[string]float64{}
		for _, m := range f.GetMetric() {
			var key []string
			for _, l := range m.GetLabel() {
				key = append(key, l.GetName()+"="+l.GetValue())
			}
			got[f.GetName()][strings.Join(key, ",")] = m.GetGauge().GetValue()
		}
	}
	backlog := got["ledger_admin_tenant_backlog_runs"]
	other := 0.0
	for i := range 22 {
		other += float64(i)
	}
	if len(backlog) != 4 || backlog["tenant=t24"] != 24 || backlog["tenant=t22"] != 22 || backlog["tenant="+telemetry.OtherTenants] != other {
		t.Errorf("backlog %v", backlog)
	}
	if u := got["ledger_admin_unfinished_runs"][""]; u != 300 {
		t.Errorf("unfinished %v, want 300", u)
	}
	silent := got["ledger_admin_tenant_last_webhook_timestamp_seconds"]
	if len(silent) != 3 || silent["tenant=t24"] == 0 || silent["tenant=t00"] != 0 {
		t.Errorf("the longest silent %v, want t22..t24", silent)
	}
	b := got["ledger_admin_bindings"]
	if b["side=sage,status=token_revoked"] != 1 || b["side=sage,status=active"] != 24 || b["side=magento,status=revoked"] != 0 || len(b) != 8 {
		t.Errorf("bindings %v", b)
	}
}
