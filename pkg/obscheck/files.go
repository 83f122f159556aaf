package obscheck

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// Shipped files, from the repository root.
const (
	DashboardsDir = "deploy/grafana/dashboards"
	AlertsFile    = "deploy/prometheus/alerts.yml"
)

// Data source uids and plugin types the dashboards use.
const (
	PrometheusUID  = "prometheus"
	PrometheusType = "prometheus"
	ClickHouseUID  = "clickhouse"
	ClickHouseType = "grafana-clickhouse-datasource"
)

// Dashboard is the part of a Grafana dashboard model the checks read.
type Dashboard struct {
	File          string `json:"-"`
	UID           string `json:"uid"`
	Title         string `json:"title"`
	SchemaVersion int    `json:"schemaVersion"`
	Panels        []Panel
	Templating    struct {
		List []Variable `json:"list"`
	} `json:"templating"`
}

// Panel is one panel (a row's collapsed panels are in Panels).
type Panel struct {
	ID         int         `json:"id"`
	Type       string      `json:"type"`
	Title      string      `json:"title"`
	GridPos    GridPos     `json:"gridPos"`
	Datasource *Datasource `json:"datasource"`
	Targets    []Target    `json:"targets"`
	Panels     []Panel     `json:"panels"`
}

// GridPos is a panel's place on the 24-column grid.
type GridPos struct {
	H int `json:"h"`
	W int `json:"w"`
	X int `json:"x"`
	Y int `json:"y"`
}

// Datasource names a data source by uid.
type Datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// Target is one query of a panel: Expr for Prometheus, RawSQL for
// ClickHouse.
type Target struct {
	RefID      string      `json:"refId"`
	Datasource *Datasource `json:"datasource"`
	Expr       string      `json:"expr"`
	RawSQL     string      `json:"rawSql"`
}

// Variable is a dashboard variable.
type Variable struct {
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	Datasource *Datasource     `json:"datasource"`
	Query      json.RawMessage `json:"query"`
	Definition string          `json:"definition"`
}

// QueryText is a query variable's query: a string, or an object with a
// query (Prometheus) or rawSql field, depending on the plugin.
func (v Variable) QueryText() string {
	var s string
	if json.Unmarshal(v.Query, &s) == nil {
		return s
	}
	var o struct {
		Query  string `json:"query"`
		RawSQL string `json:"rawSql"`
	}
	_ = json.Unmarshal(v.Query, &o)
	if o.RawSQL != "" {
		return o.RawSQL
	}
	return o.Query
}

// AllPanels flattens rows.
func (d *Dashboard) AllPanels() []Panel {
	var out []Panel
	var walk func([]Panel)
	walk = func(ps []Panel) {
		for _, p := range ps {
			out = append(out, p)
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return out
}

// LoadDashboards reads every *.json in dir.
func LoadDashboards(dir string) ([]*Dashboard, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	var out []*Dashboard
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		d := &Dashboard{File: filepath.Base(f)}
		if err := json.Unmarshal(b, d); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		out = append(out, d)
	}
	return out, nil
}

// RuleFile is a Prometheus rule file.
type RuleFile struct {
	Groups []RuleGroup `yaml:"groups"`
}

// RuleGroup is one group of rules.
type RuleGroup struct {
	Name     string `yaml:"name"`
	Interval string `yaml:"interval"`
	Rules    []Rule `yaml:"rules"`
}

// Rule is an alerting or recording rule.
type Rule struct {
	Alert         string            `yaml:"alert"`
	Record        string            `yaml:"record"`
	Expr          string            `yaml:"expr"`
	For           string            `yaml:"for"`
	KeepFiringFor string            `yaml:"keep_firing_for"`
	Labels        map[string]string `yaml:"labels"`
	Annotations   map[string]string `yaml:"annotations"`
}

// LoadRules reads a rule file, refusing fields Prometheus does not know.
func LoadRules(path string) (*RuleFile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	var f RuleFile
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &f, nil
}

var promDuration = regexp.MustCompile(`^([0-9]+(ms|s|m|h|d|w|y))+$`)

// ValidDuration reports whether s is a Prometheus duration ("5m", "1h30m").
func ValidDuration(s string) bool { return promDuration.MatchString(s) }

// ClickHouse side.

var (
	createRE  = regexp.MustCompile(`(?is)CREATE\s+(?:OR\s+REPLACE\s+)?(?:MATERIALIZED\s+)?(TABLE|VIEW)\s+(?:IF\s+NOT\s+EXISTS\s+)?` + "`?" + `([A-Za-z_][A-Za-z0-9_]*)`)
	fromRE    = regexp.MustCompile(`(?i)\b(?:FROM|JOIN)\s+` + "`?" + `([A-Za-z_][A-Za-z0-9_.]*)`)
	sqlMacro  = regexp.MustCompile(`\$__(timeFilter|dateFilter|timeFilter_ms)\(([^)]*)\)`)
	sqlIntvl  = regexp.MustCompile(`\$__timeInterval(?:_ms)?\(([^)]*)\)`)
	sqlQuoted = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*):singlequote\}`)
	sqlVar    = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(?::[a-z]+)?\}|\$([A-Za-z_][A-Za-z0-9_]*)`)
)

// SchemaObjects returns the tables and views the migration SQL in dir
// creates.
func SchemaObjects(dir string) (map[string]bool, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.sql"))
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		for _, m := range createRE.FindAllStringSubmatch(stripSQLComments(string(b)), -1) {
			out[m[2]] = true
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no CREATE TABLE/VIEW in %s", dir)
	}
	return out, nil
}

func stripSQLComments(s string) string {
	var b strings.Builder
	for _, line := range strings.Split(s, "\n") {
		if i := strings.Index(line, "--"); i >= 0 {
			line = line[:i]
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
	return b.String()
}

// SQLTables returns the names a query reads FROM or JOINs (sub-queries
// in parentheses are not names and are skipped).
func SQLTables(query string) []string {
	var out []string
	for _, m := range fromRE.FindAllStringSubmatch(stripSQLComments(query), -1) {
		name := m[1]
		if i := strings.LastIndexByte(name, '.'); i >= 0 {
			name = name[i+1:]
		}
		out = append(out, name)
	}
	return out
}

// ExpandSQL replaces the ClickHouse plugin's macros and the dashboard
// variables the way Grafana does before it sends a query, with a fixed
// time range and vars as the variables' values, so the query can be run
// as is.
func ExpandSQL(query string, from, to int64, vars map[string]string) string {
	ts := func(t int64) string { return fmt.Sprintf("toDateTime(%d)", t) }
	q := sqlMacro.ReplaceAllStringFunc(query, func(m string) string {
		col := strings.TrimSpace(sqlMacro.FindStringSubmatch(m)[2])
		return fmt.Sprintf("%s >= %s AND %s <= %s", col, ts(from), col, ts(to))
	})
	q = sqlIntvl.ReplaceAllStringFunc(q, func(m string) string {
		col := strings.TrimSpace(sqlIntvl.FindStringSubmatch(m)[1])
		return fmt.Sprintf("toStartOfInterval(toDateTime(%s), INTERVAL 3600 second)", col)
	})
	q = strings.NewReplacer("$__fromTime", ts(from), "$__toTime", ts(to), "$__interval_s", "3600").Replace(q)
	q = sqlQuoted.ReplaceAllStringFunc(q, func(m string) string {
		return "'" + strings.ReplaceAll(vars[sqlQuoted.FindStringSubmatch(m)[1]], "'", "\\'") + "'"
	})
	return sqlVar.ReplaceAllStringFunc(q, func(m string) string {
		sm := sqlVar.FindStringSubmatch(m)
		name := sm[1]
		if name == "" {
			name = sm[2]
		}
		return vars[name]
	})
}
