package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v4"
)

// This file checks deploy/grafana/ledger-dashboard.json and
// deploy/prometheus/alerts.yml against the metrics the services really
// register (metricCatalogue: their registries, not a list kept by hand), so
// a renamed or removed metric fails here rather than on an operator's empty
// panel or an alert that can never fire; and each alert's runbook link
// against docs/runbooks.md's anchors. promtool (make check-alerts) checks
// the rules' syntax and behaviour.

// grafanaDashboard is the part of Grafana's dashboard model the test reads.
type grafanaDashboard struct {
	UID    string         `json:"uid"`
	Title  string         `json:"title"`
	Panels []grafanaPanel `json:"panels"`
}

type grafanaPanel struct {
	Type    string         `json:"type"`
	Title   string         `json:"title"`
	Panels  []grafanaPanel `json:"panels"` // a collapsed row's
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
	Datasource *struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	} `json:"datasource"`
}

// alertRules is the Prometheus rule file format.
type alertRules struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Record      string            `yaml:"record"`
			Expr        string            `yaml:"expr"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

var (
	promqlStrings   = regexp.MustCompile(`"(\\.|[^"\\])*"|'(\\.|[^'\\])*'|` + "`[^`]*`")
	promqlGrouping  = regexp.MustCompile(`\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	promqlIdent     = regexp.MustCompile(`[A-Za-z_:][A-Za-z0-9_:]*`)
	promqlKeywords  = []string{"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset", "atan2", "inf", "nan"}
	histogramSuffix = []string{"_bucket", "_sum", "_count"}
)

// promqlMetrics are the metric names a PromQL expression selects: what is
// left once strings, label matchers ({…}), ranges ([…]), grouping label lists
// (by (…), on (…)), functions (a name before "(") and keywords are taken out.
func promqlMetrics(expr string) []string {
	s := promqlStrings.ReplaceAllString(expr, " ")
	var b strings.Builder
	depth := 0
	for _, r := range s {
		switch r {
		case '{', '[':
			depth++
			b.WriteRune(' ')
			continue
		case '}', ']':
			depth--
			b.WriteRune(' ')
			continue
		}
		if depth > 0 {
			b.WriteRune(' ')
		} else {
			b.WriteRune(r)
		}
	}
	s = promqlGrouping.ReplaceAllString(b.String(), " ")
	var out []string
	for _, loc := range promqlIdent.FindAllStringIndex(s, -1) {
		name := s[loc[0]:loc[1]]
		if loc[0] > 0 && (s[loc[0]-1] == '$' || (s[loc[0]-1] >= '0' && s[loc[0]-1] <= '9') || s[loc[0]-1] == '.') {
			continue // a Grafana variable, or a number's exponent or unit
		}
		if rest := strings.TrimLeft(s[loc[1]:], " \t\n"); strings.HasPrefix(rest, "(") || slices.Contains(promqlKeywords, strings.ToLower(name)) {
			continue
		}
		out = append(out, name)
	}
	return out
}

// unregistered lists the metrics expr selects that no service registers.
func unregistered(expr string, catalogue map[string][]string) []string {
	var missing []string
	for _, name := range promqlMetrics(expr) {
		base := name
		for _, suf := range histogramSuffix {
			if b, ok := strings.CutSuffix(name, suf); ok && catalogue[b] != nil {
				base = b
			}
		}
		if catalogue[base] == nil {
			missing = append(missing, name)
		}
	}
	return missing
}

// runbookAnchors are the anchors GitHub gives docs/runbooks.md's headings
// (lower case, punctuation but - and _ dropped, spaces to -).
func runbookAnchors(t *testing.T) map[string]bool {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join(repoRoot, "docs", "runbooks.md"))
	if err != nil {
		t.Fatal(err)
	}
	drop := regexp.MustCompile(`[^a-z0-9 _-]`)
	anchors := map[string]bool{}
	for line := range strings.Lines(string(doc)) {
		h, ok := strings.CutPrefix(strings.TrimSpace(line), "#")
		if !ok {
			continue
		}
		h = strings.TrimSpace(strings.TrimLeft(h, "#"))
		anchors[strings.ReplaceAll(drop.ReplaceAllString(strings.ToLower(h), ""), " ", "-")] = true
	}
	return anchors
}

var templateRE = regexp.MustCompile(`\{\{\s*\$labels\.([a-z_]+)\s*\}\}`)

// checkRunbookLink checks an alert's runbook annotation: a docs/runbooks.md
// anchor that exists. A link templated on a label is checked for each value
// the label can have (values), or, when it can have any code, for the
// anchors of that kind.
func checkRunbookLink(link string, anchors map[string]bool, values map[string][]string) []string {
	anchor, ok := strings.CutPrefix(link, "docs/runbooks.md#")
	if !ok {
		return []string{fmt.Sprintf("runbook %q is not a docs/runbooks.md anchor", link)}
	}
	m := templateRE.FindStringSubmatch(anchor)
	if m == nil {
		if !anchors[anchor] {
			return []string{fmt.Sprintf("runbook %q: docs/runbooks.md has no such anchor", link)}
		}
		return nil
	}
	vals, known := values[m[1]]
	if !known {
		prefix := anchor[:strings.Index(anchor, "{{")]
		for a := range anchors {
			if strings.HasPrefix(a, prefix) {
				return nil
			}
		}
		return []string{fmt.Sprintf("runbook %q: no anchor starts with %q", link, prefix)}
	}
	var problems []string
	for _, v := range vals {
		if a := templateRE.ReplaceAllString(anchor, v); !anchors[a] {
			problems = append(problems, fmt.Sprintf("runbook %q with %s=%s: docs/runbooks.md has no anchor %q", link, m[1], v, a))
		}
	}
	return problems
}

// TestDashboardAndAlertsUseRegisteredMetrics: every metric a dashboard panel
// or an alert rule selects is registered by a service; the dashboard covers
// the views the issue asks for; every alert has a severity, a summary and a
// runbook link that resolves.
func TestDashboardAndAlertsUseRegisteredMetrics(t *testing.T) {
	catalogue := metricCatalogue(t)

	raw, err := os.ReadFile(filepath.Join(repoRoot, "deploy", "grafana", "ledger-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash grafanaDashboard
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("deploy/grafana/ledger-dashboard.json: %v", err)
	}
	if dash.UID == "" || dash.Title == "" {
		t.Errorf("the dashboard has no uid or title")
	}
	used := map[string]bool{}
	var walk func([]grafanaPanel)
	walk = func(panels []grafanaPanel) {
		for _, p := range panels {
			walk(p.Panels)
			if p.Type == "row" {
				continue
			}
			if len(p.Targets) == 0 || p.Datasource == nil || p.Datasource.Type != "prometheus" {
				t.Errorf("panel %q: no Prometheus query", p.Title)
			}
			for _, tg := range p.Targets {
				names := promqlMetrics(tg.Expr)
				if len(names) == 0 {
					t.Errorf("panel %q: %q selects no metric", p.Title, tg.Expr)
				}
				for _, n := range names {
					used[n] = true
				}
				for _, n := range unregistered(tg.Expr, catalogue) {
					t.Errorf("panel %q: %s is not a metric any service registers (%s)", p.Title, n, tg.Expr)
				}
			}
		}
	}
	walk(dash.Panels)
	// The views the issue names: throughput per stage, latency, backlog per
	// tenant, DLQ depth, Sage calls and 429s, OAuth, callback outcomes.
	for _, want := range []string{"ledger_consumer_deliveries_total", "ledger_ingest_webhooks_total", "ledger_stage_duration_seconds_bucket",
		"ledger_admin_tenant_backlog_runs", "ledger_dlq_messages", "ledger_sage_calls_total", "ledger_sage_oauth_refreshes_total",
		"ledger_statecallback_results_total", "ledger_consumer_pending_messages", "ledger_admin_unfinished_runs"} {
		if !used[want] {
			t.Errorf("the dashboard has no panel over %s", want)
		}
	}

	raw, err = os.ReadFile(filepath.Join(repoRoot, "deploy", "prometheus", "alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var rules alertRules
	if err := yaml.Unmarshal(raw, &rules); err != nil {
		t.Fatalf("deploy/prometheus/alerts.yml: %v", err)
	}
	anchors := runbookAnchors(t)
	labelValues := map[string][]string{"side": {"magento", "sage"}}
	alerts := 0
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			alerts++
			if len(promqlMetrics(r.Expr)) == 0 {
				t.Errorf("alert %s: %q selects no metric", r.Alert, r.Expr)
			}
			for _, n := range unregistered(r.Expr, catalogue) {
				t.Errorf("alert %s: %s is not a metric any service registers", r.Alert, n)
			}
			if r.Alert == "" || r.Labels["severity"] == "" || r.Annotations["summary"] == "" {
				t.Errorf("rule %q in %s: an alert needs a name, a severity and a summary", r.Alert, g.Name)
			}
			for _, p := range checkRunbookLink(r.Annotations["runbook"], anchors, labelValues) {
				t.Errorf("alert %s: %s", r.Alert, p)
			}
		}
	}
	if alerts < 8 {
		t.Fatalf("read %d alert rules: does the test still read the file?", alerts)
	}

	// The checks fail when they should.
	t.Run("guard fails", func(t *testing.T) {
		if got := unregistered(`sum by (stage) (rate(ledger_no_such_metric_total[5m])) / on (stage) ledger_dlq_messages`, catalogue); !slices.Equal(got, []string{"ledger_no_such_metric_total"}) {
			t.Errorf("a metric no service registers: %v", got)
		}
		if got := unregistered(`histogram_quantile(0.99, sum by (le) (rate(ledger_stage_duration_seconds_bucket{stage="mapper"}[$__rate_interval])))`, catalogue); len(got) != 0 {
			t.Errorf("a histogram's bucket series: %v", got)
		}
		if got := promqlMetrics(`time() - max by (tenant) (x_y{a="b(c)"}) > 6 * 3600 and on (job) up offset 5m`); !slices.Equal(got, []string{"x_y", "up"}) {
			t.Errorf("promqlMetrics: %v", got)
		}
		if checkRunbookLink("docs/runbooks.md#code-no_such_code", anchors, nil) == nil ||
			checkRunbookLink("docs/runbooks.md#code-{{ $labels.side }}_no_such", anchors, labelValues) == nil ||
			checkRunbookLink("docs/runbooks.md#shop-cron-not-running", anchors, nil) != nil {
			t.Error("runbook links are not checked")
		}
	})
}

// TestObservabilityDocListsEveryMetric: docs/observability.md's catalogue
// names every ledger_* family the services register, and every ledger_* name
// it mentions is registered (a name ending in "_" is a prefix, not a metric).
func TestObservabilityDocListsEveryMetric(t *testing.T) {
	catalogue := metricCatalogue(t)
	doc, err := os.ReadFile(filepath.Join(repoRoot, "docs", "observability.md"))
	if err != nil {
		t.Fatal(err)
	}
	mentioned := map[string]bool{}
	for _, name := range regexp.MustCompile(`\bledger_[a-z0-9_]+`).FindAllString(string(doc), -1) {
		if strings.HasSuffix(name, "_") {
			continue
		}
		for _, suf := range histogramSuffix {
			if b, ok := strings.CutSuffix(name, suf); ok && catalogue[b] != nil {
				name = b
			}
		}
		mentioned[name] = true
		if catalogue[name] == nil {
			t.Errorf("docs/observability.md names %s, which no service registers", name)
		}
	}
	for name, services := range catalogue {
		if strings.HasPrefix(name, "ledger_") && !mentioned[name] {
			t.Errorf("%s (registered by %v) is not in docs/observability.md's catalogue", name, services)
		}
	}
}
