package obscheck

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Selector is one series selector of a PromQL expression.
type Selector struct {
	// Metric is the metric name ("" for a selector of labels only).
	Metric string
	// Matchers are its label matchers.
	Matchers []Matcher
}

// Matcher is one label matcher: Label Op "Value".
type Matcher struct {
	Label, Op, Value string
}

// Query is what an expression refers to.
type Query struct {
	Selectors []Selector
	// Grouping are the labels of by, without, on, ignoring, group_left
	// and group_right clauses.
	Grouping []string
}

// Grafana's interval variables stand for durations; any other variable
// for a value (a number where it stands alone, a label value in a string).
var (
	grafanaDuration = regexp.MustCompile(`\$(__rate_interval|__interval|__range)\b|\$\{(__rate_interval|__interval|__range)\}`)
	grafanaVar      = regexp.MustCompile(`\$\{[^}]+\}|\$[A-Za-z_][A-Za-z0-9_]*|\[\[[A-Za-z_][A-Za-z0-9_:]*\]\]`)
)

var aggregations = []string{"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
	"bottomk", "topk", "quantile", "limitk", "limit_ratio"}

var functions = []string{"abs", "absent", "absent_over_time", "acos", "acosh", "asin", "asinh", "atan", "atanh",
	"avg_over_time", "ceil", "changes", "clamp", "clamp_max", "clamp_min", "cos", "cosh", "count_over_time",
	"day_of_month", "day_of_week", "day_of_year", "days_in_month", "deg", "delta", "deriv",
	"double_exponential_smoothing", "exp", "floor", "histogram_avg", "histogram_count", "histogram_fraction",
	"histogram_quantile", "histogram_stddev", "histogram_stdvar", "histogram_sum", "holt_winters", "hour", "idelta",
	"increase", "irate", "label_join", "label_replace", "last_over_time", "ln", "log10", "log2", "mad_over_time",
	"max_over_time", "min_over_time", "minute", "month", "pi", "predict_linear", "present_over_time",
	"quantile_over_time", "rad", "rate", "resets", "round", "scalar", "sgn", "sin", "sinh", "sort", "sort_by_label",
	"sort_by_label_desc", "sort_desc", "sqrt", "stddev_over_time", "stdvar_over_time", "sum_over_time", "tan",
	"tanh", "time", "timestamp", "vector", "year", "start", "end"}

var keywords = []string{"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset",
	"and", "or", "unless", "atan2", "inf", "nan", "Inf", "NaN"}

// ParsePromQL reads the selectors and grouping labels of a PromQL
// expression, which may contain Grafana variables. It is a tokenizer, not
// a full parser: it rejects unbalanced brackets, unterminated strings,
// malformed label matchers and unknown functions, which is what a typo in
// a dashboard usually produces.
func ParsePromQL(expr string) (*Query, error) {
	s := grafanaDuration.ReplaceAllString(expr, "5m")
	s = grafanaVar.ReplaceAllString(s, "1")
	p := &promParser{s: s, q: &Query{}}
	if err := p.run(); err != nil {
		return nil, fmt.Errorf("%w in %q", err, expr)
	}
	return p.q, nil
}

type promParser struct {
	s     string
	i     int
	q     *Query
	stack []byte
}

func isIdentStart(c byte) bool {
	return c == '_' || c == ':' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

func isIdent(c byte) bool { return isIdentStart(c) || (c >= '0' && c <= '9') }

func (p *promParser) skipSpace() {
	for p.i < len(p.s) && strings.ContainsRune(" \t\r\n", rune(p.s[p.i])) {
		p.i++
	}
}

func (p *promParser) peek() byte {
	p.skipSpace()
	if p.i < len(p.s) {
		return p.s[p.i]
	}
	return 0
}

func (p *promParser) ident() string {
	start := p.i
	for p.i < len(p.s) && isIdent(p.s[p.i]) {
		p.i++
	}
	return p.s[start:p.i]
}

func (p *promParser) str() (string, error) {
	q := p.s[p.i]
	p.i++
	var b strings.Builder
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch {
		case c == '\\' && q != '`' && p.i+1 < len(p.s):
			b.WriteByte(p.s[p.i+1])
			p.i += 2
			continue
		case c == q:
			p.i++
			return b.String(), nil
		}
		b.WriteByte(c)
		p.i++
	}
	return "", fmt.Errorf("unterminated string")
}

func (p *promParser) run() error {
	for {
		c := p.peek()
		switch {
		case c == 0:
			if len(p.stack) > 0 {
				return fmt.Errorf("unclosed %q", p.stack[len(p.stack)-1])
			}
			return nil
		case c == '"' || c == '\'' || c == '`':
			if _, err := p.str(); err != nil {
				return err
			}
		case c == '{':
			m, err := p.matchers()
			if err != nil {
				return err
			}
			p.addSelector("", m)
		case c == '[':
			end := strings.IndexByte(p.s[p.i:], ']')
			if end < 0 {
				return fmt.Errorf("unclosed [")
			}
			p.i += end + 1
		case c == '(':
			p.stack = append(p.stack, '(')
			p.i++
		case c == ')':
			if len(p.stack) == 0 {
				return fmt.Errorf("unbalanced )")
			}
			p.stack = p.stack[:len(p.stack)-1]
			p.i++
		case c >= '0' && c <= '9' || c == '.':
			for p.i < len(p.s) && (isIdent(p.s[p.i]) || p.s[p.i] == '.') {
				p.i++
			}
		case isIdentStart(c):
			if err := p.word(); err != nil {
				return err
			}
		case strings.ContainsRune("+-*/%^=!<>,@", rune(c)):
			p.i++
		case c == '}' || c == ']':
			return fmt.Errorf("unbalanced %q", c)
		default:
			return fmt.Errorf("unexpected %q", c)
		}
	}
}

func (p *promParser) word() error {
	w := p.ident()
	next := p.peek()
	switch {
	case slices.Contains([]string{"by", "without", "on", "ignoring", "group_left", "group_right"}, w):
		if next != '(' {
			if w == "group_left" || w == "group_right" {
				return nil
			}
			return fmt.Errorf("%s without a label list", w)
		}
		end := strings.IndexByte(p.s[p.i:], ')')
		if end < 0 {
			return fmt.Errorf("unclosed %s (", w)
		}
		for _, l := range strings.Split(p.s[p.i+1:p.i+end], ",") {
			if l = strings.TrimSpace(l); l != "" {
				if !labelName.MatchString(l) {
					return fmt.Errorf("%q in %s(…) is not a label name", l, w)
				}
				p.q.Grouping = append(p.q.Grouping, l)
			}
		}
		p.i += end + 1
	case slices.Contains(keywords, w):
	case next == '(':
		if !slices.Contains(functions, w) && !slices.Contains(aggregations, w) {
			return fmt.Errorf("unknown function %s", w)
		}
	case slices.Contains(aggregations, w) && (strings.HasPrefix(p.s[p.i:], "by") || strings.HasPrefix(p.s[p.i:], "without")):
	default:
		var m []Matcher
		if next == '{' {
			var err error
			if m, err = p.matchers(); err != nil {
				return err
			}
		}
		p.addSelector(w, m)
	}
	return nil
}

func (p *promParser) addSelector(metric string, m []Matcher) {
	if metric == "" {
		for _, x := range m {
			if x.Label == "__name__" && x.Op == "=" {
				metric = x.Value
			}
		}
	}
	p.q.Selectors = append(p.q.Selectors, Selector{Metric: metric, Matchers: m})
}

// matchers reads {label op "value", …}.
func (p *promParser) matchers() ([]Matcher, error) {
	p.i++ // {
	var out []Matcher
	for {
		c := p.peek()
		if c == '}' {
			p.i++
			return out, nil
		}
		if c == '"' { // {"metric.name"} (UTF-8 names)
			n, err := p.str()
			if err != nil {
				return nil, err
			}
			out = append(out, Matcher{Label: "__name__", Op: "=", Value: n})
		} else {
			if !isIdentStart(c) {
				return nil, fmt.Errorf("label matcher expected, found %q", c)
			}
			l := p.ident()
			p.skipSpace()
			var op string
			for _, o := range []string{"=~", "!~", "!=", "="} {
				if strings.HasPrefix(p.s[p.i:], o) {
					op = o
					break
				}
			}
			if op == "" {
				return nil, fmt.Errorf("no operator after label %s", l)
			}
			p.i += len(op)
			if c := p.peek(); c != '"' && c != '\'' && c != '`' {
				return nil, fmt.Errorf("label %s: value must be a string", l)
			}
			v, err := p.str()
			if err != nil {
				return nil, err
			}
			out = append(out, Matcher{Label: l, Op: op, Value: v})
		}
		switch p.peek() {
		case ',':
			p.i++
		case '}':
		default:
			return nil, fmt.Errorf("',' or '}' expected in label matchers")
		}
	}
}
