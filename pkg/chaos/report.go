package chaos

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// Invariant is one promise checked at the end of a run.
type Invariant struct {
	Name string
	// Count is what was counted, e.g. "50000 of 50000".
	Count string
	OK    bool
	// Detail breaks the count down; Problems names the first offenders
	// when the invariant failed.
	Detail   string
	Problems []string
	// Total is the number of offenders (Problems lists at most a few).
	Total int
}

// Fact is a number about the run that is not itself a promise.
type Fact struct {
	Name, Value string
}

// Report is a run's outcome.
type Report struct {
	Invariants []Invariant
	Facts      []Fact
	Elapsed    time.Duration
}

// OK reports whether every invariant held.
func (r *Report) OK() bool {
	for _, inv := range r.Invariants {
		if !inv.OK {
			return false
		}
	}
	return len(r.Invariants) > 0
}

// Write prints the invariant table, then the facts and the offenders.
func (r *Report) Write(w io.Writer) {
	nameW, countW := len("INVARIANT"), len("COUNT")
	for _, inv := range r.Invariants {
		nameW, countW = max(nameW, len(inv.Name)), max(countW, len(inv.Count))
	}
	fmt.Fprintf(w, "%-*s  %-*s  %s\n", nameW, "INVARIANT", countW, "COUNT", "RESULT")
	for _, inv := range r.Invariants {
		res := "PASS"
		if !inv.OK {
			res = "FAIL"
		}
		fmt.Fprintf(w, "%-*s  %-*s  %s\n", nameW, inv.Name, countW, inv.Count, res)
		if inv.Detail != "" {
			for _, l := range strings.Split(inv.Detail, "\n") {
				fmt.Fprintf(w, "    %s\n", l)
			}
		}
	}
	if len(r.Facts) > 0 {
		fmt.Fprintln(w)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, f := range r.Facts {
			fmt.Fprintf(tw, "%s\t%s\n", f.Name, f.Value)
		}
		tw.Flush()
	}
	for _, inv := range r.Invariants {
		if inv.OK || len(inv.Problems) == 0 {
			continue
		}
		fmt.Fprintf(w, "\n%s: %d problem(s), first %d:\n", inv.Name, inv.Total, len(inv.Problems))
		for _, p := range inv.Problems {
			fmt.Fprintf(w, "  - %s\n", p)
		}
	}
	verdict := "every invariant holds"
	if !r.OK() {
		verdict = "INVARIANTS FAILED"
	}
	fmt.Fprintf(w, "\n%s (%s)\n", verdict, r.Elapsed.Round(time.Second))
}

// problems collects offenders, keeping the first few.
type problems struct {
	list  []string
	total int
}

const maxProblems = 12

func (p *problems) add(format string, args ...any) {
	p.total++
	if len(p.list) < maxProblems {
		p.list = append(p.list, fmt.Sprintf(format, args...))
	}
}
