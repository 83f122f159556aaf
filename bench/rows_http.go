package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/wanotify/wanotify/pkg/contract"
	"github.com/wanotify/wanotify/pkg/metawebhook"
)

// wrk settings shared by a service and its baseline: two threads (the
// machine's cores) and enough connections to keep both busy.
const (
	wrkThreads   = 2
	wrkConns     = 64
	fixedRate    = 5000.0
	fixedMaxConn = 512
)

// publishBody is the Go generator's twin of bench/wrk/publish.lua.
func publishBody(prefix string, i int64) []byte {
	return publishBodyTo(prefix, i, i)
}

// publishBodyTo is publishBody to the recipient numbered to.
func publishBodyTo(prefix string, i, to int64) []byte {
	return fmt.Appendf(nil, `{"idempotency_key":"%s-%d","event_type":"otp","user_id":"user-%d","recipient":"+4471%08d",`+
		`"template":{"name":"otp_code","language":"en_US","parameters":["482913"]},"ttl":300,`+
		`"metadata":{"order_id":"ord-%d","channel":"checkout","region":"eu-west"}}`, prefix, i, i, to%100000000, i)
}

func publishRequest(url, prefix string) Request {
	return publishRequestFrom(url, prefix, 0)
}

// publishRequestFrom is publishRequest with the i-th request to the
// recipient numbered from+i: a run that follows another within the pair
// interval (WANOTIFY_DISPATCHER_PAIR_INTERVAL, 6 s) must not write to the
// same recipients, or the dispatcher holds those back, as WhatsApp's pair
// rate asks.
func publishRequestFrom(url, prefix string, from int64) Request {
	return Request{
		Build: func(i int64) (*http.Request, error) {
			r, err := http.NewRequest(http.MethodPost, url+"/v1/notifications", bytes.NewReader(publishBodyTo(prefix, i, from+i)))
			if err != nil {
				return nil, err
			}
			r.Header.Set("Content-Type", "application/json")
			r.Header.Set("Authorization", "Bearer "+ingestKey)
			return r, nil
		},
		Accept: func(status int, _ []byte) bool { return status == http.StatusAccepted },
	}
}

// maxThroughput drives url with wrk and script (or the Go closed loop).
func (b *Bench) maxThroughput(ctx context.Context, script, url string, d time.Duration, conns int, goReq Request, args ...string) (Throughput, error) {
	if b.cfg.Wrk != "" {
		return WrkRun(ctx, b.cfg.Wrk, filepath.Join(b.cfg.Root, "bench", "wrk", script), url, wrkThreads, conns, d, args...)
	}
	return ClosedLoop(ctx, conns, d, goReq), nil
}

// pair is one figure measured on a subject and on its baseline.
type pair struct{ subject, baseline []float64 }

func (p *pair) add(s, b float64) {
	p.subject = append(p.subject, s)
	p.baseline = append(p.baseline, b)
}

func (p *pair) medians() (float64, float64) { return Median(p.subject), Median(p.baseline) }

// ratio is the median of the runs' own ratios: each run's figure over the
// baseline measured next to it, which is why the baseline is measured in
// the same run. (The ratio of the two medians would set one run's figure
// against another run's baseline when the machine's speed moves between
// runs.)
func (p *pair) ratio() float64 {
	rs := make([]float64, 0, len(p.subject))
	for i := range p.subject {
		if p.baseline[i] > 0 {
			rs = append(rs, p.subject[i]/p.baseline[i])
		}
	}
	return Median(rs)
}

// ratioRuns is runs with each run's own ratio.
func (p *pair) ratioRuns(format func(float64) string) []string {
	out := p.runs(format)
	for i := range out {
		if p.baseline[i] > 0 {
			out[i] += " (" + pct(p.subject[i]/p.baseline[i]) + ")"
		}
	}
	return out
}

func (p *pair) runs(format func(float64) string) []string {
	out := make([]string, len(p.subject))
	for i := range p.subject {
		out[i] = fmt.Sprintf("%s vs %s", format(p.subject[i]), format(p.baseline[i]))
	}
	return out
}

func (b *Bench) ingest(ctx context.Context) ([]Row, error) {
	var tput, p50, p99 pair
	var untracedTput []float64
	var fixedErrs []string
	d, fd := b.dur(8*time.Second, 3*time.Second), b.dur(8*time.Second, 3*time.Second)
	for run := range b.cfg.Runs {
		err := func() error {
			cl, err := b.cfg.NewCluster(ctx)
			if err != nil {
				return err
			}
			defer cl.Close()
			addr, _ := FreeAddr()
			addrAdmin, _ := FreeAddr()
			ing, err := b.service(cl, "ingest", "ingest", fmt.Sprintf("single-%d", run), "http://"+addrAdmin+"/readyz",
				"WANOTIFY_INGEST_ADDR="+addr, "WANOTIFY_ADMIN_ADDR="+addrAdmin, "WANOTIFY_INGEST_API_KEYS="+ingestKeys())
			if err != nil {
				return err
			}
			defer b.stop("single POSTs at full speed and at 5,000/s", ing)
			bareAddr, _ := FreeAddr()
			bare, err := b.bare(cl, "bare-ingest", "http://"+bareAddr+"/readyz", nil, "-addr", bareAddr)
			if err != nil {
				return err
			}
			defer bare.Stop(10 * time.Second)
			untracedAddr, _ := FreeAddr()
			untracedAddrAdmin, _ := FreeAddr()
			untraced, err := b.service(cl, "ingest", "ingest-untraced", fmt.Sprintf("single-%d", run), "http://"+untracedAddrAdmin+"/readyz",
				"WANOTIFY_INGEST_ADDR="+untracedAddr, "WANOTIFY_ADMIN_ADDR="+untracedAddrAdmin, "WANOTIFY_INGEST_API_KEYS="+ingestKeys(), untracedEnv)
			if err != nil {
				return err
			}
			defer untraced.Stop(10 * time.Second)
			targets := []string{"http://" + addr, "http://" + bareAddr, "http://" + untracedAddr}
			names := []string{"ingest", "bare", "ingest untraced"}
			var tp [3]float64
			var lat [2]*FixedRate
			throughput := func(k int) error {
				prefix := runID("ing", run) + fmt.Sprintf("t%d", k)
				t, err := b.maxThroughput(ctx, "publish.lua", targets[k], d, wrkConns, publishRequest(targets[k], prefix), ingestKey, prefix)
				if err != nil {
					return err
				}
				tp[k] = t.PerSecond()
				b.cfg.logf("  run %d %s: %s accepted/s (%d answers, %d errors)", run+1, names[k], rate(tp[k], ""), t.Requests, t.Errors)
				return nil
			}
			for _, k := range order(run) {
				if err := throughput(k); err != nil {
					return err
				}
			}
			for _, k := range order(run) {
				prefix := runID("fix", run) + fmt.Sprintf("t%d", k)
				lat[k] = OpenLoop(ctx, fixedRate, fd, fixedMaxConn, publishRequest(targets[k], prefix))
				b.cfg.logf("  run %d %s at %.0f/s: p50 %s p99 %s (%d sent, %d errors)", run+1, []string{"ingest", "bare"}[k], fixedRate,
					ms(lat[k].Latency.Quantile(0.5)), ms(lat[k].Latency.Quantile(0.99)), lat[k].Sent, lat[k].Errors)
				if lat[k].Errors > 0 {
					fixedErrs = append(fixedErrs, fmt.Sprintf("%s run %d: %d of %d failed (%v)", []string{"ingest", "bare"}[k], run+1, lat[k].Errors, lat[k].Sent, lat[k].FirstErr))
				}
			}
			// Last, so the fixed-rate rows see the broker as they did
			// before this figure was added.
			if err := throughput(2); err != nil {
				return err
			}
			untracedTput = append(untracedTput, tp[2])
			tput.add(tp[0], tp[1])
			p50.add(float64(lat[0].Latency.Quantile(0.5)), float64(lat[1].Latency.Quantile(0.5)))
			p99.add(float64(lat[0].Latency.Quantile(0.99)), float64(lat[1].Latency.Quantile(0.99)))
			b.rep.NoteRSS("broker", "single POSTs", cl.BrokerRSS())
			return nil
		}()
		if err != nil {
			return nil, err
		}
	}
	s, base := tput.medians()
	s50, b50 := p50.medians()
	s99, b99 := p99.medians()
	latNote := fmt.Sprintf("An open-loop generator sends %.0f requests/s for %s, each on its own goroutine at its due time; latency runs from the due time to the end of the answer (no coordinated omission), percentiles are exact.", fixedRate, fd)
	if len(fixedErrs) > 0 {
		latNote += " Failed requests: " + strings.Join(fixedErrs, "; ") + "."
	}
	return []Row{
		{What: "ingest, single POSTs, acks=all: accepted/s", Figure: rate(s, "/s"), Baseline: rate(base, "/s") + " (bare mux handler)",
			Ratio: pct(tput.ratio()), Target: "≥ 80% of baseline", Verdict: verdict(tput.ratio() >= 0.8),
			Runs: tput.ratioRuns(func(v float64) string { return rate(v, "/s") }),
			Note: fmt.Sprintf("%s for %s, %d connections, %d threads, bench/wrk/publish.lua: one ~300-byte notification per request with its own idempotency key and recipient; ingest (services/ingest, a process of its own) answers 202 once Kafka acknowledged with acks=all. Baseline: a gorilla/mux handler that decodes the same JSON and ProduceSyncs the same bytes to the same broker (bench.ServeBareIngest, its own process), driven the same way, alternating with the service. %s", loadTool(b.cfg), d, wrkConns, wrkThreads, untracedNote("ingest", untracedTput, tput.baseline))},
		{What: "ingest, single POSTs at 5,000/s: p50 / p99", Figure: ms(time.Duration(s50)) + " / " + ms(time.Duration(s99)),
			Baseline: ms(time.Duration(b50)) + " / " + ms(time.Duration(b99)), Target: "p99 ≤ 20 ms", Verdict: verdict(time.Duration(s99) <= 20*time.Millisecond),
			Runs: p99.runs(func(v float64) string { return "p99 " + ms(time.Duration(v)) }), Note: latNote},
	}, nil
}

func loadTool(c *Config) string {
	if c.Wrk != "" {
		return "wrk"
	}
	return "The Go closed-loop generator (wrk missing)"
}

// untracedEnv starts a service that records no spans of its own: trace
// ids are still made and propagated (and logged), but no span is built,
// timed or kept. It is the cost of tracing, measured.
const untracedEnv = "WANOTIFY_TRACE_SAMPLE_RATIO=0"

// untracedNote reports the same service measured with untracedEnv, in the
// same runs, next to the baseline of each run: how much of the gap is
// tracing.
func untracedNote(service string, tput, base []float64) string {
	if len(tput) == 0 || len(tput) != len(base) {
		return ""
	}
	p := pair{subject: tput, baseline: base}
	return fmt.Sprintf("What tracing costs: the same %s with %s (no span recorded; trace ids still made, propagated and logged), driven the same way in the same runs, after the fixed-rate measurements: %s/s, %s of the baseline (runs: %s).",
		service, untracedEnv, rate(Median(tput), ""), pct(p.ratio()), strings.Join(p.ratioRuns(func(v float64) string { return rate(v, "/s") }), ", "))
}

// order alternates which of subject (0) and baseline (1) goes first.
func order(run int) []int {
	if run%2 == 0 {
		return []int{0, 1}
	}
	return []int{1, 0}
}

func (b *Bench) batch(ctx context.Context) ([]Row, error) {
	var figs []float64
	var runs []string
	d := b.dur(10*time.Second, 3*time.Second)
	const conns = 16
	for run := range b.cfg.Runs {
		err := func() error {
			cl, err := b.cfg.NewCluster(ctx)
			if err != nil {
				return err
			}
			defer cl.Close()
			addr, _ := FreeAddr()
			addrAdmin, _ := FreeAddr()
			ing, err := b.service(cl, "ingest", "ingest", fmt.Sprintf("batch-%d", run), "http://"+addrAdmin+"/readyz",
				"WANOTIFY_INGEST_ADDR="+addr, "WANOTIFY_ADMIN_ADDR="+addrAdmin, "WANOTIFY_INGEST_API_KEYS="+ingestKeys())
			if err != nil {
				return err
			}
			defer b.stop("batches of 100", ing)
			prefix := runID("bat", run)
			url := "http://" + addr
			req := Request{
				Build: func(i int64) (*http.Request, error) {
					var body bytes.Buffer
					body.WriteString(`{"notifications":[`)
					for j := range int64(100) {
						if j > 0 {
							body.WriteByte(',')
						}
						body.Write(publishBody(prefix, i*100+j))
					}
					body.WriteString("]}")
					r, err := http.NewRequest(http.MethodPost, url+"/v1/notifications/batch", &body)
					if err != nil {
						return nil, err
					}
					r.Header.Set("Content-Type", "application/json")
					r.Header.Set("Authorization", "Bearer "+ingestKey)
					return r, nil
				},
				Accept: func(status int, body []byte) bool {
					return status == http.StatusOK && bytes.Contains(body, []byte(`"rejected":0`))
				},
			}
			t, err := b.maxThroughput(ctx, "batch.lua", url, d, conns, req, ingestKey, prefix)
			if err != nil {
				return err
			}
			v := t.PerSecond() * 100
			b.cfg.logf("  run %d: %s notifications/s (%d batches answered, %d errors)", run+1, rate(v, ""), t.Requests, t.Errors)
			figs = append(figs, v)
			runs = append(runs, rate(v, "/s"))
			b.rep.NoteRSS("broker", "batches of 100", cl.BrokerRSS())
			return nil
		}()
		if err != nil {
			return nil, err
		}
	}
	v := Median(figs)
	return []Row{{What: "ingest, batch endpoint (100 per request): notifications/s", Figure: rate(v, "/s"), Target: "≥ 50,000/s",
		Verdict: verdict(v >= 50000), Runs: runs,
		Note: fmt.Sprintf("%s for %s, %d connections, bench/wrk/batch.lua: 100 notifications per request; only requests whose every item was accepted (200 with \"rejected\":0) count.", loadTool(b.cfg), d, conns)}}, nil
}

// webhookBodies writes n signed status webhooks, one status each, as
// "signature<TAB>body" lines for bench/wrk/webhook.lua, and returns them.
func webhookBodies(path string, n int) ([][2]string, error) {
	out := make([][2]string, n)
	var f strings.Builder
	now := time.Now().Unix()
	statuses := []string{"sent", "delivered", "read"}
	for i := range n {
		nid := contract.NotificationID(ingestTenant, fmt.Sprintf("wh-%d", i))
		p := metawebhook.Payload{Object: "whatsapp_business_account", Entry: []metawebhook.Entry{{
			ID: "bench-waba", Changes: []metawebhook.Change{{Field: "messages", Value: metawebhook.Value{
				MessagingProduct: "whatsapp",
				Metadata:         metawebhook.Metadata{DisplayPhoneNumber: "15550001111", PhoneNumberID: benchSender},
				Statuses: []metawebhook.Status{{
					ID: fmt.Sprintf("wamid.HBgLNDQ3NzAwOTAwMTIzFQIAERgS%08d", i), Status: statuses[i%3],
					Timestamp: fmt.Sprint(now), RecipientID: fmt.Sprintf("4477%08d", i), BizOpaqueCallbackData: nid,
					Conversation: json.RawMessage(`{"id":"conv-1","origin":{"type":"utility"}}`),
					Pricing:      json.RawMessage(`{"billable":true,"pricing_model":"CBP","category":"utility"}`),
				}},
			}}},
		}}}
		body, err := json.Marshal(p)
		if err != nil {
			return nil, err
		}
		sig := metawebhook.Sign([]byte(webhookSecret), body)
		out[i] = [2]string{sig, string(body)}
		f.WriteString(sig)
		f.WriteByte('\t')
		f.Write(body)
		f.WriteByte('\n')
	}
	return out, os.WriteFile(path, []byte(f.String()), 0o600)
}

func webhookRequest(url string, bodies [][2]string) Request {
	return Request{
		Build: func(i int64) (*http.Request, error) {
			sb := bodies[i%int64(len(bodies))]
			r, err := http.NewRequest(http.MethodPost, url, strings.NewReader(sb[1]))
			if err != nil {
				return nil, err
			}
			r.Header.Set("Content-Type", "application/json")
			r.Header.Set(metawebhook.DefaultSignatureHeader, sb[0])
			return r, nil
		},
		Accept: func(status int, _ []byte) bool { return status == http.StatusOK },
	}
}

func (b *Bench) webhook(ctx context.Context) ([]Row, error) {
	bodiesFile := filepath.Join(b.cfg.Work, "webhooks.tsv")
	bodies, err := webhookBodies(bodiesFile, 10000)
	if err != nil {
		return nil, err
	}
	var tput, p50, p99 pair
	var untracedTput []float64
	var fixedErrs []string
	d, fd := b.dur(8*time.Second, 3*time.Second), b.dur(8*time.Second, 3*time.Second)
	for run := range b.cfg.Runs {
		err := func() error {
			cl, err := b.cfg.NewCluster(ctx)
			if err != nil {
				return err
			}
			defer cl.Close()
			addr, _ := FreeAddr()
			addrAdmin, _ := FreeAddr()
			wh, err := b.service(cl, "webhook", "webhook", fmt.Sprintf("%d", run), "http://"+addrAdmin+"/readyz",
				"WANOTIFY_WEBHOOK_ADDR="+addr, "WANOTIFY_ADMIN_ADDR="+addrAdmin, "WANOTIFY_WEBHOOK_SECRET="+webhookSecret, "WANOTIFY_WEBHOOK_PATH="+webhookPath)
			if err != nil {
				return err
			}
			defer b.stop("status webhooks at full speed and at 5,000/s", wh)
			bareAddr, _ := FreeAddr()
			bare, err := b.bare(cl, "bare-webhook", "http://"+bareAddr+"/readyz", nil, "-addr", bareAddr, "-path", webhookPath)
			if err != nil {
				return err
			}
			defer bare.Stop(10 * time.Second)
			untracedAddr, _ := FreeAddr()
			untracedAddrAdmin, _ := FreeAddr()
			untraced, err := b.service(cl, "webhook", "webhook-untraced", fmt.Sprintf("%d", run), "http://"+untracedAddrAdmin+"/readyz",
				"WANOTIFY_WEBHOOK_ADDR="+untracedAddr, "WANOTIFY_ADMIN_ADDR="+untracedAddrAdmin, "WANOTIFY_WEBHOOK_SECRET="+webhookSecret, "WANOTIFY_WEBHOOK_PATH="+webhookPath, untracedEnv)
			if err != nil {
				return err
			}
			defer untraced.Stop(10 * time.Second)
			targets := []string{"http://" + addr + webhookPath, "http://" + bareAddr + webhookPath, "http://" + untracedAddr + webhookPath}
			names := []string{"webhook", "bare", "webhook untraced"}
			var tp [3]float64
			var lat [2]*FixedRate
			throughput := func(k int) error {
				t, err := b.maxThroughput(ctx, "webhook.lua", targets[k], d, wrkConns, webhookRequest(targets[k], bodies), bodiesFile, metawebhook.DefaultSignatureHeader)
				if err != nil {
					return err
				}
				tp[k] = t.PerSecond()
				b.cfg.logf("  run %d %s: %s events/s (%d answers, %d errors)", run+1, names[k], rate(tp[k], ""), t.Requests, t.Errors)
				return nil
			}
			for _, k := range order(run) {
				if err := throughput(k); err != nil {
					return err
				}
			}
			for _, k := range order(run) {
				lat[k] = OpenLoop(ctx, fixedRate, fd, fixedMaxConn, webhookRequest(targets[k], bodies))
				b.cfg.logf("  run %d %s at %.0f/s: p50 %s p99 %s (%d sent, %d errors)", run+1, []string{"webhook", "bare"}[k], fixedRate,
					ms(lat[k].Latency.Quantile(0.5)), ms(lat[k].Latency.Quantile(0.99)), lat[k].Sent, lat[k].Errors)
				if lat[k].Errors > 0 {
					fixedErrs = append(fixedErrs, fmt.Sprintf("%s run %d: %d of %d failed (%v)", []string{"webhook", "bare"}[k], run+1, lat[k].Errors, lat[k].Sent, lat[k].FirstErr))
				}
			}
			// Last, so the fixed-rate rows see the broker as they did
			// before this figure was added.
			if err := throughput(2); err != nil {
				return err
			}
			untracedTput = append(untracedTput, tp[2])
			tput.add(tp[0], tp[1])
			p50.add(float64(lat[0].Latency.Quantile(0.5)), float64(lat[1].Latency.Quantile(0.5)))
			p99.add(float64(lat[0].Latency.Quantile(0.99)), float64(lat[1].Latency.Quantile(0.99)))
			b.rep.NoteRSS("broker", "status webhooks", cl.BrokerRSS())
			return nil
		}()
		if err != nil {
			return nil, err
		}
	}
	s, base := tput.medians()
	s50, b50 := p50.medians()
	s99, b99 := p99.medians()
	latNote := fmt.Sprintf("The open-loop generator at %.0f webhooks/s for %s, latency from each request's due time.", fixedRate, fd)
	if len(fixedErrs) > 0 {
		latNote += " Failed requests: " + strings.Join(fixedErrs, "; ") + "."
	}
	return []Row{
		{What: "webhook receiver: events/s", Figure: rate(s, "/s"), Baseline: rate(base, "/s") + " (bare handler, no verification)",
			Ratio: pct(tput.ratio()), Target: "≥ 80% of baseline", Verdict: verdict(tput.ratio() >= 0.8),
			Runs: tput.ratioRuns(func(v float64) string { return rate(v, "/s") }),
			Note: fmt.Sprintf("%s for %s, %d connections, bench/wrk/webhook.lua cycling through 10,000 Meta-shaped status webhooks (one status each, signed with HMAC-SHA256 by the harness beforehand); the receiver (services/webhook) verifies, parses and produces each status event with acks=all before answering 200. Baseline: a gorilla/mux handler that produces the same bytes to notifications.status without verifying or parsing (bench.ServeBareWebhook). %s", loadTool(b.cfg), d, wrkConns, untracedNote("receiver", untracedTput, tput.baseline))},
		{What: "webhook receiver at 5,000/s: p50 / p99", Figure: ms(time.Duration(s50)) + " / " + ms(time.Duration(s99)),
			Baseline: ms(time.Duration(b50)) + " / " + ms(time.Duration(b99)), Target: "p99 ≤ 10 ms", Verdict: verdict(time.Duration(s99) <= 10*time.Millisecond),
			Runs: p99.runs(func(v float64) string { return "p99 " + ms(time.Duration(v)) }), Note: latNote},
	}, nil
}
