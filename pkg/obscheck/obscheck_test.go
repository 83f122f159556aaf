package obscheck

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/wanotify/wanotify/pkg/chmigrate"
	"github.com/wanotify/wanotify/pkg/sink/migrations"
	"github.com/wanotify/wanotify/pkg/testinfra"
)

// targetLabels are put on every series by the scrape (docker-compose.yml's
// Prometheus and the chart's ServiceMonitors).
var targetLabels = []string{"service", "job", "instance"}

// builtins are series Prometheus makes itself.
var builtins = map[string][]string{"up": nil}

func root(rel string) string { return filepath.Join(testinfra.RepoRoot(), rel) }

func catalogue(t *testing.T) *Catalogue {
	t.Helper()
	c, err := LoadCatalogue(root(CatalogueFile))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestCatalogueMatchesCode: every wanotify instrument of the catalogue is
// created in the code under that name, its Prometheus name follows from
// the instrument name, type and unit, and every wanotify instrument the
// code creates is in the catalogue. (pkg/e2e holds the catalogue to the
// real exposition of each service.)
func TestCatalogueMatchesCode(t *testing.T) {
	c := catalogue(t)
	code := instrumentsInCode(t)
	for _, m := range c.Metrics {
		if !strings.HasPrefix(m.Instrument, "wanotify.") {
			continue
		}
		if !code[m.Instrument] {
			t.Errorf("%s: instrument %q is created nowhere in pkg/", m.Name, m.Instrument)
		}
		want := strings.ReplaceAll(m.Instrument, ".", "_")
		switch m.Unit {
		case "seconds":
			want += "_seconds"
		case "bytes":
			want += "_bytes"
		}
		if m.Type == Counter {
			want += "_total"
		}
		if m.Name != want {
			t.Errorf("%s: a %s %q in %s is exposed as %s", m.Name, m.Type, m.Instrument, m.Unit, want)
		}
	}
	for instr := range code {
		found := false
		for _, m := range c.Metrics {
			found = found || m.Instrument == instr
		}
		if !found {
			t.Errorf("the code creates instrument %q, which %s does not document", instr, CatalogueFile)
		}
	}
}

// instrumentRE finds instrument names where the code creates them: a
// string literal "wanotify.…" followed by the unit or description
// option or argument.
var instrumentRE = regexp.MustCompile(`"(wanotify\.[a-z0-9_.]+)",\s*(?:metric\.With|"[^"]*",\s*")`)

func instrumentsInCode(t *testing.T) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	err := filepath.WalkDir(root("pkg"), func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range instrumentRE.FindAllStringSubmatch(string(b), -1) {
			out[m[1]] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) == 0 {
		t.Fatal("no instruments found in pkg/")
	}
	return out
}

// checkPromQL checks one expression against the catalogue: every metric
// exists (and is exposed by the service a matcher names), every label in
// a matcher or a grouping clause exists on the metrics of the expression.
func checkPromQL(t *testing.T, c *Catalogue, where, expr string) {
	t.Helper()
	q, err := ParsePromQL(expr)
	if err != nil {
		t.Errorf("%s: %v", where, err)
		return
	}
	if len(q.Selectors) == 0 && !strings.Contains(expr, "vector(") {
		t.Errorf("%s: no metric in %q", where, expr)
	}
	available := append([]string{"le"}, targetLabels...)
	for _, s := range q.Selectors {
		if s.Metric == "" {
			t.Errorf("%s: a selector without a metric name in %q", where, expr)
			continue
		}
		var labels []string
		if bl, ok := builtins[s.Metric]; ok {
			labels = bl
		} else {
			m := c.Series(s.Metric)
			if m == nil {
				t.Errorf("%s: %s is not a documented metric (%s)", where, s.Metric, CatalogueFile)
				continue
			}
			labels = append(append(labels, m.Labels...), m.Optional...)
			for _, x := range s.Matchers {
				if x.Label == "service" && x.Op == "=" && !m.ExposedBy(x.Value) {
					t.Errorf("%s: %s is not exposed by service %q (only %v)", where, s.Metric, x.Value, m.Services)
				}
			}
		}
		available = append(available, labels...)
		for _, x := range s.Matchers {
			if x.Label == "__name__" {
				continue
			}
			if !slices.Contains(labels, x.Label) && !slices.Contains(targetLabels, x.Label) &&
				(x.Label != "le" || !strings.HasSuffix(s.Metric, "_bucket")) {
				t.Errorf("%s: %s has no label %q (labels: %v)", where, s.Metric, x.Label, labels)
			}
		}
	}
	for _, l := range q.Grouping {
		if !slices.Contains(available, l) {
			t.Errorf("%s: groups by %q, which none of its metrics carries", where, l)
		}
	}
}

// requiredAlerts are the conditions the pipeline promises to alert on.
var requiredAlerts = map[string]string{
	"lag growing":  "WanotifyDispatcherLagGrowing",
	"breaker open": "WanotifyBreakerOpen",
	"DLQ growing":  "WanotifyDLQGrowing",
	"429s seen":    "WanotifyProviderThrottling",
	"sink behind":  "WanotifySinkBehind",
	// A sender halted by an account fault sends nothing until someone
	// fixes its account (docs/senders.md).
	"sender halted": "WanotifySenderHalted",
}

var alertName = regexp.MustCompile(`^Wanotify[A-Z][A-Za-z0-9]+$`)

func TestAlertRules(t *testing.T) {
	c := catalogue(t)
	f, err := LoadRules(root(AlertsFile))
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Groups) == 0 {
		t.Fatal("no rule groups")
	}
	groups, alerts := map[string]bool{}, map[string]bool{}
	for _, g := range f.Groups {
		if g.Name == "" || groups[g.Name] {
			t.Errorf("group name %q empty or repeated", g.Name)
		}
		groups[g.Name] = true
		if g.Interval != "" && !ValidDuration(g.Interval) {
			t.Errorf("group %s: interval %q", g.Name, g.Interval)
		}
		if len(g.Rules) == 0 {
			t.Errorf("group %s has no rules", g.Name)
		}
		for _, r := range g.Rules {
			where := fmt.Sprintf("%s/%s", g.Name, r.Alert)
			if r.Record != "" || !alertName.MatchString(r.Alert) {
				t.Errorf("%s: want an alerting rule named Wanotify…", where)
			}
			if alerts[r.Alert] {
				t.Errorf("alert %s defined twice", r.Alert)
			}
			alerts[r.Alert] = true
			if r.For != "" && !ValidDuration(r.For) {
				t.Errorf("%s: for %q is not a duration", where, r.For)
			}
			if s := r.Labels["severity"]; s != "page" && s != "ticket" {
				t.Errorf("%s: severity %q, want page or ticket", where, s)
			}
			for _, a := range []string{"summary", "description"} {
				if strings.TrimSpace(r.Annotations[a]) == "" {
					t.Errorf("%s: annotation %s missing", where, a)
				}
			}
			checkPromQL(t, c, where, r.Expr)
		}
	}
	for what, name := range requiredAlerts {
		if !alerts[name] {
			t.Errorf("no alert for %s (%s)", what, name)
		}
	}
	promtool(t, root(AlertsFile))
}

// promtool runs `promtool check rules` when promtool is installed
// (Debian's prometheus package): Prometheus' own parser on top of the
// checks above.
func promtool(t *testing.T, file string) {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err != nil {
		t.Log("promtool not installed; Prometheus' own rule check skipped")
		return
	}
	out, err := exec.Command(path, "check", "rules", file).CombinedOutput()
	if err != nil {
		t.Errorf("promtool check rules: %v\n%s", err, out)
	}
}

var knownPanelTypes = []string{"row", "timeseries", "stat", "table", "gauge", "bargauge", "state-timeline", "text",
	"barchart", "piechart", "heatmap", "status-history"}

func dashboards(t *testing.T) []*Dashboard {
	t.Helper()
	ds, err := LoadDashboards(root(DashboardsDir))
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) < 2 {
		t.Fatalf("%d dashboards in %s, want the service and the delivery dashboards", len(ds), DashboardsDir)
	}
	return ds
}

// TestDashboards: every dashboard is a well-formed Grafana model, its
// panels fit the grid without overlapping, every query uses a known data
// source, every PromQL query names documented metrics and labels, and
// every ClickHouse query reads tables and views the sink's migrations
// create.
func TestDashboards(t *testing.T) {
	c := catalogue(t)
	objects, err := SchemaObjects(root("pkg/sink/migrations"))
	if err != nil {
		t.Fatal(err)
	}
	uids := map[string]string{}
	sources := map[string]int{}
	for _, d := range dashboards(t) {
		if d.UID == "" || d.Title == "" || d.SchemaVersion < 36 {
			t.Errorf("%s: uid %q, title %q, schemaVersion %d", d.File, d.UID, d.Title, d.SchemaVersion)
		}
		if prev, ok := uids[d.UID]; ok {
			t.Errorf("%s and %s share the uid %s", prev, d.File, d.UID)
		}
		uids[d.UID] = d.File
		ids := map[int]bool{}
		var boxes []GridPos
		for _, p := range d.AllPanels() {
			where := fmt.Sprintf("%s panel %d %q", d.File, p.ID, p.Title)
			if p.ID == 0 || ids[p.ID] {
				t.Errorf("%s: id missing or repeated", where)
			}
			ids[p.ID] = true
			if p.Title == "" || !slices.Contains(knownPanelTypes, p.Type) {
				t.Errorf("%s: type %q", where, p.Type)
			}
			g := p.GridPos
			if g.W < 1 || g.H < 1 || g.X < 0 || g.Y < 0 || g.X+g.W > 24 {
				t.Errorf("%s: gridPos %+v outside the 24-column grid", where, g)
			}
			for _, b := range boxes {
				if g.X < b.X+b.W && b.X < g.X+g.W && g.Y < b.Y+b.H && b.Y < g.Y+g.H {
					t.Errorf("%s: gridPos %+v overlaps %+v", where, g, b)
				}
			}
			boxes = append(boxes, g)
			if p.Type == "row" || p.Type == "text" {
				continue
			}
			if len(p.Targets) == 0 {
				t.Errorf("%s: no queries", where)
			}
			refs := map[string]bool{}
			for _, tg := range p.Targets {
				if tg.RefID == "" || refs[tg.RefID] {
					t.Errorf("%s: refId %q missing or repeated", where, tg.RefID)
				}
				refs[tg.RefID] = true
				ds := tg.Datasource
				if ds == nil {
					ds = p.Datasource
				}
				if ds == nil {
					t.Errorf("%s: no data source", where)
					continue
				}
				sources[ds.UID]++
				switch {
				case ds.UID == PrometheusUID && ds.Type == PrometheusType:
					checkPromQL(t, c, where, tg.Expr)
				case ds.UID == ClickHouseUID && ds.Type == ClickHouseType:
					checkSQLTables(t, objects, where, tg.RawSQL)
				default:
					t.Errorf("%s: data source %+v, want {%s %s} or {%s %s}", where, *ds, PrometheusType, PrometheusUID, ClickHouseType, ClickHouseUID)
				}
			}
		}
		for _, v := range d.Templating.List {
			if v.Type != "query" {
				continue
			}
			where := fmt.Sprintf("%s variable %s", d.File, v.Name)
			if v.Datasource == nil || v.Datasource.UID != ClickHouseUID {
				t.Errorf("%s: only ClickHouse query variables are expected", where)
				continue
			}
			checkSQLTables(t, objects, where, v.QueryText())
		}
	}
	if sources[PrometheusUID] == 0 || sources[ClickHouseUID] == 0 {
		t.Errorf("queries per data source %v: want service metrics (Prometheus) and delivery analytics (ClickHouse)", sources)
	}
}

func checkSQLTables(t *testing.T, objects map[string]bool, where, sql string) {
	t.Helper()
	tables := SQLTables(sql)
	if len(tables) == 0 {
		t.Errorf("%s: no FROM in %q", where, sql)
	}
	for _, tb := range tables {
		if !objects[tb] {
			t.Errorf("%s: reads %s, which no sink migration creates", where, tb)
		}
	}
}

// TestDashboardPromQLWithPromtool hands every dashboard query, as a
// recording rule, to Prometheus' own parser when promtool is installed.
func TestDashboardPromQLWithPromtool(t *testing.T) {
	if _, err := exec.LookPath("promtool"); err != nil {
		t.Skip("promtool not installed (Debian package prometheus)")
	}
	type rule struct {
		Record string `yaml:"record"`
		Expr   string `yaml:"expr"`
	}
	var rules []rule
	for _, d := range dashboards(t) {
		for _, p := range d.AllPanels() {
			for _, tg := range p.Targets {
				if tg.Expr != "" {
					e := grafanaDuration.ReplaceAllString(tg.Expr, "5m")
					e = grafanaVar.ReplaceAllString(e, "1")
					rules = append(rules, rule{Record: fmt.Sprintf("dashboard:panel_%d_%s:check", p.ID, strings.ToLower(tg.RefID)), Expr: e})
				}
			}
		}
	}
	b, err := yaml.Marshal(map[string]any{"groups": []any{map[string]any{"name": "dashboards", "rules": rules}}})
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "dashboards.yml")
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
	promtool(t, file)
}

// TestDashboardDataSourcesProvisioned: the data sources the dashboards
// use are provisioned in the Grafana that docker compose starts.
func TestDashboardDataSourcesProvisioned(t *testing.T) {
	b, err := os.ReadFile(root("deploy/grafana/provisioning/datasources/datasources.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var prov struct {
		Datasources []struct {
			UID  string `yaml:"uid"`
			Type string `yaml:"type"`
		} `yaml:"datasources"`
	}
	if err := yaml.Unmarshal(b, &prov); err != nil {
		t.Fatal(err)
	}
	have := map[string]string{}
	for _, d := range prov.Datasources {
		have[d.UID] = d.Type
	}
	for uid, typ := range map[string]string{PrometheusUID: PrometheusType, ClickHouseUID: ClickHouseType} {
		if have[uid] != typ {
			t.Errorf("the dashboards use data source uid %q of type %s; deploy/grafana/provisioning/datasources/datasources.yaml provisions %q",
				uid, typ, have[uid])
		}
	}
}

// TestClickHouseQueriesRun runs every query of the delivery dashboard and
// its variables, macros expanded as Grafana would, against a database the
// sink's migrations created: a view or column that does not exist fails
// here, not on an analyst's screen.
func TestClickHouseQueriesRun(t *testing.T) {
	db := testinfra.ClickHouseDatabase(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ms, err := chmigrate.Load(migrations.FS, migrations.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := chmigrate.Apply(ctx, db.Conn, ms, nil); err != nil {
		t.Fatalf("migrations: %v", err)
	}
	to := time.Now().Unix()
	vars := map[string]string{"tenant": "acme", "event_type": "otp"}
	n := 0
	run := func(where, sql string) {
		q := ExpandSQL(sql, to-86400, to, vars)
		if strings.Contains(q, "$") {
			t.Errorf("%s: unexpanded macro or variable in %q", where, q)
			return
		}
		rows, err := db.Conn.Query(ctx, q)
		if err != nil {
			t.Errorf("%s: %v\n%s", where, err, q)
			return
		}
		for rows.Next() {
		}
		if err := rows.Err(); err != nil {
			t.Errorf("%s: %v", where, err)
		}
		rows.Close()
		n++
	}
	for _, d := range dashboards(t) {
		for _, p := range d.AllPanels() {
			for _, tg := range p.Targets {
				if tg.RawSQL != "" {
					run(fmt.Sprintf("%s panel %q", d.File, p.Title), tg.RawSQL)
				}
			}
		}
		for _, v := range d.Templating.List {
			if v.Type == "query" && v.Datasource != nil && v.Datasource.UID == ClickHouseUID {
				run(fmt.Sprintf("%s variable %s", d.File, v.Name), v.QueryText())
			}
		}
	}
	if n == 0 {
		t.Fatal("no ClickHouse queries in the dashboards")
	}
}

// TestDocumentedQueries: the PromQL the catalogue gives for the on-call
// questions names documented metrics and labels too.
func TestDocumentedQueries(t *testing.T) {
	c := catalogue(t)
	b, err := os.ReadFile(root(CatalogueFile))
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(b), "### The on-call questions")
	if !ok {
		t.Fatal("no on-call questions section")
	}
	n := 0
	for _, line := range strings.Split(after, "\n") {
		if strings.HasPrefix(line, "#") {
			break
		}
		row, ok := tableRow(line)
		if !ok || len(row) != 3 {
			continue
		}
		for _, expr := range codes(row[2]) {
			if strings.ContainsAny(expr, "({") {
				checkPromQL(t, c, "on-call question "+row[0], expr)
				n++
			}
		}
	}
	if n == 0 {
		t.Fatal("no queries found in the on-call questions")
	}
}

// TestAlertsDocumented: docs/observability.md lists exactly the alerts of
// the rule file.
func TestAlertsDocumented(t *testing.T) {
	f, err := LoadRules(root(AlertsFile))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(root(CatalogueFile))
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(b), "## Alerts")
	if !ok {
		t.Fatal("no Alerts section")
	}
	documented := map[string]bool{}
	for _, line := range strings.Split(after, "\n") {
		if row, ok := tableRow(line); ok && len(row) == 3 {
			for _, c := range codes(row[0]) {
				documented[c] = true
			}
		}
	}
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			if !documented[r.Alert] {
				t.Errorf("alert %s is not documented in %s", r.Alert, CatalogueFile)
			}
			delete(documented, r.Alert)
		}
	}
	for a := range documented {
		t.Errorf("%s documents alert %s, which %s does not define", CatalogueFile, a, AlertsFile)
	}
}
