package bench

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Credentials of the benchmark deployment. They only ever meet processes
// the harness started on loopback.
const (
	ingestKey      = "bench-ingest-key"
	ingestTenant   = "bench"
	providerKey    = "bench-provider-key-0123456789abcdef0123"
	webhookSecret  = "bench-webhook-secret-0123456789abcdef"
	benchSender    = "bench-sender"
	webhookPath    = "/v1/webhooks/whatsapp"
	providerPath   = "/api/workspace/v1/messages/send"
	dispatcherConc = 512 // WANOTIFY_DISPATCHER_CONCURRENCY's default; the relay baseline gets the same
)

// Bench runs the row groups.
type Bench struct {
	cfg *Config
	rep *Report
}

// New returns a Bench filling rep.
func New(cfg *Config, rep *Report) *Bench { return &Bench{cfg: cfg, rep: rep} }

// Run runs every selected group; a group that fails is reported as such
// and the others still run.
func (b *Bench) Run(ctx context.Context) {
	groups := []struct {
		name string
		run  func(context.Context) ([]Row, error)
		what string
	}{
		{"ingest", b.ingest, "ingest, single POSTs"},
		{"batch", b.batch, "ingest, batch endpoint"},
		{"webhook", b.webhook, "webhook receiver"},
		{"sink", b.sink, "ClickHouse sink"},
		{"dispatcher", b.dispatcher, "dispatcher, zero provider latency"},
		{"slow", b.slowProvider, "dispatcher, provider latency 250 ms"},
		{"accuracy", b.accuracy, "rate-limit accuracy"},
		{"pacing", b.pacing, "pair-rate pacing"},
		{"retry", b.retry, "retry lateness"},
		{"e2e", b.endToEnd, "end to end"},
		{"dedupe", b.dedupe, "dedupe state"},
		{"lanes", b.lanes, "priority lanes and tenant fairness"},
		{"bulkmem", b.laneMemory, "bulk backlog memory"},
		{"halt", b.halt, "sender halts"},
	}
	for _, g := range groups {
		if !b.cfg.Selected(g.name) {
			continue
		}
		if ctx.Err() != nil {
			return
		}
		b.cfg.logf("== %s", g.what)
		start := time.Now()
		rows, err := g.run(ctx)
		if err != nil {
			b.cfg.logf("%s failed: %v", g.name, err)
			b.rep.Warnings = append(b.rep.Warnings, fmt.Sprintf("%s: %s", g.what, firstLine(err.Error())))
			rows = append(rows, Row{What: g.what, Figure: "failed: " + firstLine(err.Error()), Verdict: NotRun})
		}
		b.rep.Rows = append(b.rep.Rows, rows...)
		b.cfg.logf("%s took %s", g.name, time.Since(start).Round(time.Second))
		if b.cfg.Kafka == KafkaApache && compareGroups[g.name] && ctx.Err() == nil {
			b.rep.Rows = append(b.rep.Rows, b.runOnApache(ctx, g.name, g.what, g.run, rows)...)
		}
	}
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// dur picks the full or the quick duration.
func (b *Bench) dur(full, quick time.Duration) time.Duration {
	if b.cfg.Quick {
		return quick
	}
	return full
}

func (b *Bench) size(full, quick int) int {
	if b.cfg.Quick {
		return quick
	}
	return full
}

// service starts one of the service binaries (or, with BENCH_PROFILE, the
// same service inside the harness binary with a CPU profile) and waits
// until readyURL answers 200.
func (b *Bench) service(cl *Cluster, name, instance, profileTag, readyURL string, env ...string) (*Proc, error) {
	env = append(cl.Env(), env...)
	bin, args := filepath.Join(b.cfg.Bin, name), []string(nil)
	if b.cfg.Profile != "" {
		bin, args = b.cfg.Self, []string{"-role", "service", "-service", name}
		env = append(env, "BENCH_PROFILE_FILE="+filepath.Join(b.cfg.Profile, fmt.Sprintf("%s-%s.pprof", instance, profileTag)))
	}
	p, err := Start(b.cfg.Work, instance, bin, args, env...)
	if err != nil {
		return nil, err
	}
	if readyURL != "" {
		if err := p.WaitHTTP(readyURL, 60*time.Second); err != nil {
			p.Stop(5 * time.Second)
			return nil, err
		}
	}
	return p, nil
}

// bare starts the harness binary in one of its baseline roles.
func (b *Bench) bare(cl *Cluster, role string, readyURL string, extraEnv []string, args ...string) (*Proc, error) {
	env := append(cl.Env(), extraEnv...)
	if b.cfg.Profile != "" {
		env = append(env, "BENCH_PROFILE_FILE="+filepath.Join(b.cfg.Profile, fmt.Sprintf("%s-%d.pprof", role, time.Now().UnixNano())))
	}
	p, err := Start(b.cfg.Work, role, b.cfg.Self, append([]string{"-role", role}, args...), env...)
	if err != nil {
		return nil, err
	}
	if readyURL != "" {
		if err := p.WaitHTTP(readyURL, 30*time.Second); err != nil {
			p.Stop(5 * time.Second)
			return nil, err
		}
	}
	return p, nil
}

// simulator starts the provider simulator with env on top of the
// benchmark defaults (API key, no webhooks, no injected failures).
func (b *Bench) simulator(cl *Cluster, env ...string) (*Proc, string, error) {
	addr, err := FreeAddr()
	if err != nil {
		return nil, "", err
	}
	base := []string{"WANOTIFY_SIM_ADDR=" + addr, "WANOTIFY_SIM_API_KEY=" + providerKey, "WANOTIFY_SIM_WEBHOOKS=false",
		"WANOTIFY_SIM_SEED=1",
		// The rows read every send of a run from the ledger: keep them all.
		"WANOTIFY_SIM_LEDGER_MAX_ENTRIES=10000000"}
	p, err := Start(b.cfg.Work, "simulator", filepath.Join(b.cfg.Bin, "simulator"), nil, append(append(cl.Env(), base...), env...)...)
	if err != nil {
		return nil, "", err
	}
	url := "http://" + addr
	if err := p.WaitHTTP(url+"/healthz", 30*time.Second); err != nil {
		p.Stop(5 * time.Second)
		return nil, "", err
	}
	return p, url, nil
}

// stop stops processes and notes their peak RSS under the given load.
func (b *Bench) stop(under string, ps ...*Proc) {
	for _, p := range ps {
		if p == nil {
			continue
		}
		p.Stop(15 * time.Second)
		b.rep.NoteRSS(serviceName(p.Name), under, p.PeakRSS)
	}
}

func serviceName(instance string) string {
	if i := strings.IndexAny(instance, "-0123456789"); i > 0 && !strings.HasPrefix(instance, "bare") {
		return instance[:i]
	}
	return instance
}

// ingestKeys is the WANOTIFY_INGEST_API_KEYS entry of the benchmark key.
func ingestKeys() string {
	sum := sha256.Sum256([]byte(ingestKey))
	return ingestTenant + ":" + hex.EncodeToString(sum[:])
}

// runID tells records of different runs (and harness invocations) apart.
func runID(group string, run int) string {
	return fmt.Sprintf("%s%d-%d", group, run, os.Getpid()%100000)
}

// ratio is a/b as a percentage string.
func ratio(a, b float64) string {
	if b <= 0 {
		return "n/a"
	}
	return pct(a / b)
}

func verdict(ok bool) string {
	if ok {
		return Met
	}
	return Missed
}
