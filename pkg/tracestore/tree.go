package tracestore

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// Node is a span with its children, ordered by start time.
type Node struct {
	Span     Span    `json:"span"`
	Children []*Node `json:"children,omitempty"`
}

// Tree arranges one trace's spans by parent. A span whose parent is not
// stored (the caller's own span, or one not yet exported) is a root.
func Tree(spans []Span) []*Node {
	nodes := make(map[string]*Node, len(spans))
	for _, sp := range spans {
		nodes[sp.SpanID] = &Node{Span: sp}
	}
	var roots []*Node
	for _, sp := range spans {
		n := nodes[sp.SpanID]
		if p, ok := nodes[sp.ParentSpanID]; ok && sp.ParentSpanID != "" && p != n {
			p.Children = append(p.Children, n)
		} else {
			roots = append(roots, n)
		}
	}
	for _, n := range nodes {
		sortSpans(n.Children)
	}
	sortSpans(roots)
	return roots
}

// shownAttrs are the attributes worth a glance in the tree; the rest is
// in the table (or -o json).
var shownAttrs = strings.Fields(`wanotify.attempt wanotify.outcome wanotify.status http.response.status_code
	wanotify.webhook.outcome wanotify.provider_message_id`)

// Render writes the tree of roots with, per span, its service, kind,
// duration and start offset from the trace's first span.
func Render(w io.Writer, roots []*Node) error {
	if len(roots) == 0 {
		return nil
	}
	first := roots[0].Span.Start
	for _, r := range roots {
		if r.Span.Start.Before(first) {
			first = r.Span.Start
		}
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SPAN\tSERVICE\tKIND\tDURATION\tSTART\tDETAIL")
	var walk func(n *Node, prefix, branch string)
	walk = func(n *Node, prefix, branch string) {
		sp := n.Span
		var detail []string
		for _, k := range shownAttrs {
			if v, ok := sp.Attributes[k]; ok && v != "" {
				detail = append(detail, strings.TrimPrefix(k, "wanotify.")+"="+v)
			}
		}
		if len(sp.Statuses) > 0 {
			detail = append(detail, "statuses="+strings.Join(sp.Statuses, ","))
		}
		if sp.StatusCode == "Error" {
			detail = append(detail, "ERROR "+sp.StatusMsg)
		}
		for _, l := range sp.Links {
			detail = append(detail, "link→"+l.TraceID[:min(8, len(l.TraceID))])
		}
		fmt.Fprintf(tw, "%s%s\t%s\t%s\t%s\t+%s\t%s\n", branch, sp.Name, sp.Service, strings.ToLower(sp.Kind),
			FormatDuration(sp.Duration), FormatDuration(sp.Start.Sub(first)), strings.Join(detail, " "))
		for i, c := range n.Children {
			last := i == len(n.Children)-1
			b, p := "├─ ", "│  "
			if last {
				b, p = "└─ ", "   "
			}
			walk(c, prefix+p, prefix+b)
		}
	}
	for _, r := range roots {
		walk(r, "", "")
	}
	return tw.Flush()
}

// FormatDuration renders d with three significant digits: 850µs, 12.3ms, 1.25s.
func FormatDuration(d time.Duration) string {
	switch {
	case d == 0:
		return "0"
	case d < 0:
		return "-" + FormatDuration(-d)
	case d < time.Microsecond:
		return fmt.Sprintf("%dns", d.Nanoseconds())
	case d < time.Millisecond:
		return trim(float64(d)/float64(time.Microsecond)) + "µs"
	case d < time.Second:
		return trim(float64(d)/float64(time.Millisecond)) + "ms"
	}
	return trim(d.Seconds()) + "s"
}

func trim(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.2f", v)
}
