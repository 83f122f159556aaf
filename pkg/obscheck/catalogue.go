// Package obscheck holds the observability contract of wanotify as data
// the tests can check: the metric catalogue of docs/observability.md (what
// each service exposes on /metrics, with its type, unit and labels), and
// the readers of the shipped Grafana dashboards and Prometheus alert rules
// that find every metric, ClickHouse view and column they refer to.
//
// The end-to-end test (pkg/e2e) scrapes every service and holds the
// catalogue to what is really exposed; this package's tests hold the
// dashboards and alert rules to the catalogue and to the ClickHouse
// migrations. So a renamed metric breaks a test, not a dashboard at 3 am.
package obscheck

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
)

// CatalogueFile is the catalogue's path from the repository root.
const CatalogueFile = "docs/observability.md"

// Metric types as Prometheus reports them.
const (
	Counter   = "counter"
	Gauge     = "gauge"
	Histogram = "histogram"
)

// Metric is one row of the catalogue.
type Metric struct {
	// Name is the name on /metrics (a histogram's series add _bucket,
	// _sum and _count).
	Name string
	// Instrument is the OpenTelemetry instrument name, as OTLP exports it.
	Instrument string
	// Type is Counter, Gauge or Histogram.
	Type string
	// Unit is the instrument's unit in words ("seconds", "records").
	Unit string
	// Labels are the label names every series of the metric carries.
	Labels []string
	// Optional are labels only some series carry (written `name?`).
	Optional []string
	// Services expose it: ingest, dispatcher, webhook, sink.
	Services []string
	// Condition, when not empty, says what must happen before the first
	// series appears beyond ordinary traffic ("after an insert failed");
	// the scrape test does not require such a metric.
	Condition string
	// Answers is the question the metric answers.
	Answers string
}

// HasLabel reports whether series of m may carry label l.
func (m Metric) HasLabel(l string) bool {
	return slices.Contains(m.Labels, l) || slices.Contains(m.Optional, l)
}

// ExposedBy reports whether service exposes m.
func (m Metric) ExposedBy(service string) bool { return slices.Contains(m.Services, service) }

// Catalogue is the parsed metric table.
type Catalogue struct {
	Metrics []Metric
}

// Lookup returns the metric named name (as on /metrics), or nil.
func (c *Catalogue) Lookup(name string) *Metric {
	for i := range c.Metrics {
		if c.Metrics[i].Name == name {
			return &c.Metrics[i]
		}
	}
	return nil
}

// Series returns the metric a series name belongs to: the name itself, or
// a histogram's _bucket, _sum or _count series. Nil when unknown.
func (c *Catalogue) Series(name string) *Metric {
	if m := c.Lookup(name); m != nil {
		return m
	}
	for _, suf := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suf); ok {
			if m := c.Lookup(base); m != nil && m.Type == Histogram {
				return m
			}
		}
	}
	return nil
}

// catalogueHeader is the header row of the metric table.
var catalogueHeader = []string{"metric", "instrument", "type", "unit", "labels", "services", "condition", "answers"}

var (
	codeSpan   = regexp.MustCompile("`([^`]*)`")
	promName   = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)
	labelName  = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
	knownTypes = []string{Counter, Gauge, Histogram}
	knownSvcs  = []string{"ingest", "dispatcher", "webhook", "sink"}
)

// LoadCatalogue reads the metric table of the Markdown file at path: the
// table whose header is
//
//	| metric | instrument | type | unit | labels | services | condition | answers |
//
// Names and labels are written as code spans; "—" means none.
func LoadCatalogue(path string) (*Catalogue, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("metric catalogue: %w", err)
	}
	c, err := ParseCatalogue(b)
	if err != nil {
		return nil, fmt.Errorf("metric catalogue %s: %w", path, err)
	}
	return c, nil
}

// ParseCatalogue parses the metric table out of Markdown.
func ParseCatalogue(md []byte) (*Catalogue, error) {
	c := &Catalogue{}
	sc := bufio.NewScanner(bytes.NewReader(md))
	in, line := false, 0
	var errs []string
	for sc.Scan() {
		line++
		row, ok := tableRow(sc.Text())
		switch {
		case !ok:
			in = false
			continue
		case slices.Equal(row, catalogueHeader):
			in = true
			continue
		case !in || isRule(row):
			continue
		}
		m, err := parseRow(row)
		if err != nil {
			errs = append(errs, fmt.Sprintf("line %d: %v", line, err))
			continue
		}
		if c.Lookup(m.Name) != nil {
			errs = append(errs, fmt.Sprintf("line %d: %s is listed twice", line, m.Name))
			continue
		}
		c.Metrics = append(c.Metrics, m)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	if len(c.Metrics) == 0 {
		return nil, fmt.Errorf("no table with the header | %s |", strings.Join(catalogueHeader, " | "))
	}
	return c, nil
}

func tableRow(s string) ([]string, bool) {
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, "|") || !strings.HasSuffix(s, "|") || len(s) < 2 {
		return nil, false
	}
	cells := strings.Split(s[1:len(s)-1], "|")
	for i := range cells {
		cells[i] = strings.TrimSpace(cells[i])
	}
	return cells, true
}

func isRule(row []string) bool {
	for _, c := range row {
		if strings.Trim(c, "-: ") != "" {
			return false
		}
	}
	return true
}

func codes(cell string) []string {
	var out []string
	for _, m := range codeSpan.FindAllStringSubmatch(cell, -1) {
		out = append(out, m[1])
	}
	return out
}

func parseRow(row []string) (Metric, error) {
	if len(row) != len(catalogueHeader) {
		return Metric{}, fmt.Errorf("%d cells, want %d", len(row), len(catalogueHeader))
	}
	name, instr := codes(row[0]), codes(row[1])
	if len(name) != 1 || !promName.MatchString(name[0]) {
		return Metric{}, fmt.Errorf("metric cell %q: want one Prometheus name as a code span", row[0])
	}
	if len(instr) != 1 || instr[0] == "" {
		return Metric{}, fmt.Errorf("%s: instrument cell %q: want one instrument name as a code span", name[0], row[1])
	}
	m := Metric{Name: name[0], Instrument: instr[0], Type: row[2], Unit: row[3], Answers: row[7]}
	if !slices.Contains(knownTypes, m.Type) {
		return Metric{}, fmt.Errorf("%s: type %q is not one of %v", m.Name, m.Type, knownTypes)
	}
	labels := codes(row[4])
	if len(labels) == 0 && row[4] != "—" {
		return Metric{}, fmt.Errorf("%s: labels cell %q: code spans, or — for none", m.Name, row[4])
	}
	for _, l := range labels {
		opt := strings.HasSuffix(l, "?")
		l = strings.TrimSuffix(l, "?")
		if !labelName.MatchString(l) || l == "le" {
			return Metric{}, fmt.Errorf("%s: %q is not a label name", m.Name, l)
		}
		if m.HasLabel(l) {
			return Metric{}, fmt.Errorf("%s: label %s listed twice", m.Name, l)
		}
		if opt {
			m.Optional = append(m.Optional, l)
		} else {
			m.Labels = append(m.Labels, l)
		}
	}
	for _, s := range strings.Split(row[5], ",") {
		s = strings.TrimSpace(s)
		if !slices.Contains(knownSvcs, s) {
			return Metric{}, fmt.Errorf("%s: service %q is not one of %v", m.Name, s, knownSvcs)
		}
		m.Services = append(m.Services, s)
	}
	if row[6] != "—" {
		m.Condition = row[6]
	}
	if m.Answers == "" {
		return Metric{}, fmt.Errorf("%s: say what question it answers", m.Name)
	}
	return m, nil
}
