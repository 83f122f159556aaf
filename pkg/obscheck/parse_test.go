package obscheck

import (
	"slices"
	"testing"
)

func TestParsePromQL(t *testing.T) {
	cases := []struct {
		expr     string
		metrics  []string
		grouping []string
		labels   []string // matcher labels, in order
	}{
		{`up`, []string{"up"}, nil, nil},
		{`sum by (topic) (wanotify_dispatcher_lag{service="dispatcher", topic=~"notifications.retry-.*"})`,
			[]string{"wanotify_dispatcher_lag"}, []string{"topic"}, []string{"service", "topic"}},
		{`histogram_quantile(0.99, sum by (le) (rate(x_seconds_bucket{service="sink"}[$__rate_interval])))`,
			[]string{"x_seconds_bucket"}, []string{"le"}, []string{"service"}},
		{`sum(rate(a_total[5m])) by (outcome, error_code) / ignoring(outcome) group_left sum(b)`,
			[]string{"a_total", "b"}, []string{"outcome", "error_code", "outcome"}, nil},
		{`delta(sum(a{x="1"})[10m:1m]) > 0 and b offset 1h`, []string{"a", "b"}, nil, []string{"x"}},
		{`vector($rate_limit)`, nil, nil, nil},
		{`{__name__="a_total", code!="200"}`, []string{"a_total"}, nil, []string{"__name__", "code"}},
		{`count(a == bool 2) or absent(a)`, []string{"a", "a"}, nil, nil},
		{`max_over_time(a{l="}{,"}[1h]) * 1e3`, []string{"a"}, nil, []string{"l"}},
	}
	for _, c := range cases {
		q, err := ParsePromQL(c.expr)
		if err != nil {
			t.Errorf("%s: %v", c.expr, err)
			continue
		}
		var metrics, labels []string
		for _, s := range q.Selectors {
			metrics = append(metrics, s.Metric)
			for _, m := range s.Matchers {
				labels = append(labels, m.Label)
			}
		}
		if !slices.Equal(metrics, c.metrics) || !slices.Equal(q.Grouping, c.grouping) || !slices.Equal(labels, c.labels) {
			t.Errorf("%s: metrics %v grouping %v labels %v, want %v %v %v", c.expr, metrics, q.Grouping, labels, c.metrics, c.grouping, c.labels)
		}
	}
	for _, bad := range []string{
		`sum(rate(a[5m])`,            // unclosed (
		`rate(a[5m]))`,               // unbalanced )
		`a{service="x"`,              // unclosed {
		`a{service=x}`,               // unquoted value
		`a{service "x"}`,             // no operator
		`rte(a[5m])`,                 // unknown function
		`sum by topic (a)`,           // grouping without a list
		`a{l="x}`,                    // unterminated string
		`sum by (to-pic) (a)`,        // not a label name
		`histogram_quantile(0.9, a]`, // stray ]
	} {
		if _, err := ParsePromQL(bad); err == nil {
			t.Errorf("%s: accepted", bad)
		}
	}
}

func TestParseCatalogue(t *testing.T) {
	md := "# x\n\n| metric | instrument | type | unit | labels | services | condition | answers |\n|---|---|---|---|---|---|---|---|\n" +
		"| `a_total` | `a` | counter | calls | `x`, `y?` | ingest, sink | — | How many? |\n" +
		"| `b_seconds` | `b` | histogram | seconds | — | dispatcher | after a failure | How long? |\n\nafter\n"
	c, err := ParseCatalogue([]byte(md))
	if err != nil {
		t.Fatal(err)
	}
	a, b := c.Lookup("a_total"), c.Series("b_seconds_bucket")
	if a == nil || b == nil || c.Series("a_total_bucket") != nil {
		t.Fatalf("lookup: %+v %+v", a, b)
	}
	if !slices.Equal(a.Labels, []string{"x"}) || !slices.Equal(a.Optional, []string{"y"}) || !a.ExposedBy("sink") || a.ExposedBy("webhook") || a.Condition != "" {
		t.Errorf("a: %+v", a)
	}
	if b.Condition != "after a failure" || len(b.Labels) != 0 || b.Type != Histogram {
		t.Errorf("b: %+v", b)
	}
	head := "| metric | instrument | type | unit | labels | services | condition | answers |\n|---|---|---|---|---|---|---|---|\n"
	for _, bad := range []string{
		"| `a` | `a` | summary | x | — | ingest | — | q |",                                                   // unknown type
		"| `a` | `a` | counter | x | x | ingest | — | q |",                                                   // labels not code spans
		"| `a` | `a` | counter | x | — | mailer | — | q |",                                                   // unknown service
		"| `a` | `a` | counter | x | — | ingest | — |  |",                                                    // no question
		"| a | `a` | counter | x | — | ingest | — | q |",                                                     // name not a code span
		"| `a` | `a` | counter | x | `le` | ingest | — | q |",                                                // le is not a label of the family
		"| `a` | `a` | counter | x | — | ingest | — | q |\n| `a` | `a` | counter | x | — | ingest | — | q |", // twice
	} {
		if _, err := ParseCatalogue([]byte(head + bad + "\n")); err == nil {
			t.Errorf("accepted %s", bad)
		}
	}
	if _, err := ParseCatalogue([]byte("no table")); err == nil {
		t.Error("accepted a file without the table")
	}
}

func TestExpandSQL(t *testing.T) {
	got := ExpandSQL("SELECT $__timeInterval(t) AS time FROM v WHERE $__timeFilter(hour) AND a IN (${tenant:singlequote}) AND b = $n AND c < $__toTime",
		100, 200, map[string]string{"tenant": "o'k", "n": "3"})
	want := "SELECT toStartOfInterval(toDateTime(t), INTERVAL 3600 second) AS time FROM v WHERE hour >= toDateTime(100) AND hour <= toDateTime(200) AND a IN ('o\\'k') AND b = 3 AND c < toDateTime(200)"
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if tb := SQLTables("SELECT * FROM a JOIN `b` ON x -- FROM c\nWHERE y IN (SELECT z FROM db.d)"); !slices.Equal(tb, []string{"a", "b", "d"}) {
		t.Errorf("tables %v", tb)
	}
	if !ValidDuration("1h30m") || ValidDuration("5 m") || ValidDuration("") {
		t.Error("durations")
	}
}
