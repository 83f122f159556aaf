package bench

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"
)

// Verdicts of a row.
const (
	Met      = "met"
	Missed   = "**missed**"
	Reported = "reported"
	NotRun   = "not run"
)

// Row is one line of the table.
type Row struct {
	What     string
	Figure   string
	Baseline string
	Ratio    string
	Target   string
	Verdict  string
	// Runs are the per-run figures, for the details section.
	Runs []string
	// Note explains how the figure was measured (details section).
	Note string
	// Value is the row's headline number (ValueName says which: a rate,
	// a p99 in seconds), set by the rows that run on both brokers with
	// BENCH_KAFKA=apache; 0: none.
	Value         float64
	ValueName     string
	LowerIsBetter bool
}

// Report is everything one harness run found.
type Report struct {
	Started  time.Time
	Elapsed  time.Duration
	Command  string
	Mode     string
	Machine  []string
	Rows     []Row
	RSS      map[string]rssPeak
	Warnings []string
	// Findings is hand-written analysis (bench/findings.md) appended to
	// BENCHMARKS.md, so a regenerated file keeps it.
	Findings string
	// Compare holds the figures measured on kfake and on Apache Kafka in
	// this run (BENCH_KAFKA=apache).
	Compare []Comparison
	// rssSuffix tags the memory figures of the Apache pass.
	rssSuffix string
}

type rssPeak struct {
	bytes int64
	under string
}

// NoteRSS keeps the highest peak RSS seen for a service and the load it
// was seen under.
func (r *Report) NoteRSS(service, under string, bytes int64) {
	if bytes <= 0 {
		return
	}
	service += r.rssSuffix
	if r.RSS == nil {
		r.RSS = map[string]rssPeak{}
	}
	if cur, ok := r.RSS[service]; !ok || bytes > cur.bytes {
		r.RSS[service] = rssPeak{bytes, under}
	}
}

// Table renders the rows as a Markdown table.
func (r *Report) Table() string {
	var b strings.Builder
	b.WriteString("| what | figure | baseline (same run) | ratio | target | verdict |\n")
	b.WriteString("|---|---|---|---|---|---|\n")
	for _, row := range r.Rows {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", row.What, orDash(row.Figure), orDash(row.Baseline),
			orDash(row.Ratio), orDash(row.Target), orDash(row.Verdict))
	}
	return b.String()
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

// AddMemoryRows turns the peak RSS seen per service into rows.
func (r *Report) AddMemoryRows() {
	names := make([]string, 0, len(r.RSS))
	for n := range r.RSS {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		p := r.RSS[n]
		r.Rows = append(r.Rows, Row{What: "memory: peak RSS of " + n, Figure: mb(p.bytes) + " (under " + p.under + ")",
			Target: "reported", Verdict: Reported})
	}
}

// Markdown is the whole BENCHMARKS.md.
func (r *Report) Markdown() string {
	var b strings.Builder
	b.WriteString("# Benchmarks\n\n")
	b.WriteString("Written by the benchmark harness (`make bench`, bench/cmd/benchtable); do not edit by hand: the analysis at the end comes from bench/findings.md.\n\n")
	fmt.Fprintf(&b, "- command: `%s`\n", r.Command)
	fmt.Fprintf(&b, "- run: %s, %s, took %s\n", r.Started.UTC().Format("2006-01-02 15:04 UTC"), r.Mode, r.Elapsed.Round(time.Second))
	for _, m := range r.Machine {
		fmt.Fprintf(&b, "- %s\n", m)
	}
	b.WriteString("\nEvery figure is the median of the runs listed under Details; a baseline is measured in the same run, on the same machine, alternating with the figure it is compared with (these machines are shared: identical runs differ by up to ±20%), and a ratio is the median of the runs' own ratios (each run's figure over the baseline measured next to it).\n\n")
	b.WriteString(r.Table())
	if t := r.CompareTable(); t != "" {
		b.WriteString("\n## kfake and Apache Kafka, same run\n\n")
		b.WriteString("The dispatcher, end-to-end and sink rows ran twice, first on kfake (a fresh broker process per measurement), then on one Apache Kafka broker (KRaft, pkg/kafkalocal, topics deleted and recreated per measurement, replication factor 1 and min.insync.replicas 1 on one node); each side is the median of its own runs, and their rows marked [Apache Kafka] above carry their baselines.\n\n")
		b.WriteString(t)
	}
	if len(r.Warnings) > 0 {
		b.WriteString("\nWarnings of this run:\n\n")
		for _, w := range r.Warnings {
			fmt.Fprintf(&b, "- %s\n", w)
		}
	}
	b.WriteString("\n## Details\n\n")
	for _, row := range r.Rows {
		if row.Note == "" && len(row.Runs) == 0 {
			continue
		}
		fmt.Fprintf(&b, "**%s.** %s", row.What, row.Note)
		if len(row.Runs) > 0 {
			fmt.Fprintf(&b, " Runs: %s.", strings.Join(row.Runs, "; "))
		}
		b.WriteString("\n\n")
	}
	if r.Findings != "" {
		b.WriteString(strings.TrimSpace(r.Findings))
		b.WriteString("\n")
	}
	return b.String()
}

// DescribeMachine says what the figures were measured on.
func DescribeMachine(cfg *Config, chVersion string) []string {
	var out []string
	cpu := firstMatch("/proc/cpuinfo", "model name")
	mem := firstMatch("/proc/meminfo", "MemTotal")
	osName := strings.Trim(firstMatch("/etc/os-release", "PRETTY_NAME="), `"`)
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	out = append(out, fmt.Sprintf("machine: %d cores (%s), %s memory, %s, Linux %s", runtime.NumCPU(), cpu, memGiB(mem), osName, strings.TrimSpace(string(kernel))))
	out = append(out, fmt.Sprintf("load average when the run started: %s", loadAvg()))
	out = append(out, "Go: "+runtime.Version())
	if cfg.ExternalKafka {
		out = append(out, "Kafka: the cluster at WANOTIFY_KAFKA_BROKERS (topics recreated per run)")
	} else {
		out = append(out, fmt.Sprintf("Kafka: kfake %s as a separate process (services/broker), in memory, a fresh broker per run", modVersion(cfg.Root, "github.com/twmb/franz-go/pkg/kfake")))
	}
	if cfg.Kafka == KafkaApache {
		out = append(out, fmt.Sprintf("Kafka, second pass of the sink, dispatcher and end-to-end rows: Apache Kafka %s, one KRaft node (pkg/kafkalocal, 768 MB heap) started once, topics deleted and recreated per measurement", kafkaVersion(cfg.KafkaLibs)))
	}
	switch {
	case cfg.CH == nil:
		out = append(out, "ClickHouse: none (the sink rows did not run)")
	case cfg.CHExternal:
		out = append(out, fmt.Sprintf("ClickHouse: %s at WANOTIFY_CLICKHOUSE_ADDR", chVersion))
	default:
		out = append(out, fmt.Sprintf("ClickHouse: %s, the local server of scripts/with-clickhouse.sh", chVersion))
	}
	if cfg.Wrk != "" {
		v, _ := exec.Command(cfg.Wrk, "-v").CombinedOutput()
		name := strings.Fields(string(v))
		if len(name) > 2 {
			name = name[:2]
		}
		out = append(out, "HTTP load: "+strings.Join(name, " ")+" with bench/wrk/*.lua; fixed-rate latency: the harness's open-loop Go generator")
	} else {
		out = append(out, "HTTP load: the harness's closed-loop Go generator (wrk was not installed); fixed-rate latency: its open-loop generator")
	}
	return out
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

func firstMatch(path, prefix string) string {
	f, err := os.Open(path)
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, prefix) {
			v := strings.TrimPrefix(line, prefix)
			v = strings.TrimLeft(v, " \t:")
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

// modVersion reads a module's version from go.mod.
func modVersion(root, path string) string {
	b, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == path {
			return f[1]
		}
		if len(f) >= 3 && f[0] == "require" && f[1] == path {
			return f[2]
		}
	}
	return ""
}

func memGiB(memTotal string) string {
	f := strings.Fields(memTotal)
	if len(f) == 0 {
		return memTotal
	}
	var kb float64
	if _, err := fmt.Sscan(f[0], &kb); err != nil {
		return memTotal
	}
	return fmt.Sprintf("%.0f GiB", kb/(1<<20))
}

// LoadAverage is the machine's load average now, for the report.
func LoadAverage() string { return loadAvg() }
