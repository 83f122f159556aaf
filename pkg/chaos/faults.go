package chaos

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"
)

// faultLog counts the faults carried out.
type faultLog struct {
	mu             sync.Mutex
	dispatcherKill int
	killSkipped    int // the group was still rebalancing at a kill's turn
	outages        int
	clickhouseKill int
	brokerKill     int
	errors         []string
	// leader is the cluster's broker fault (Kafka apache-cluster).
	leader *leaderKill
}

func (f *faultLog) add(fn func(*faultLog)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

// faults runs the fault schedule over d from now: a random dispatcher
// killed every KillEvery (from 10% to 90% of d), the provider outage at
// 25%, ClickHouse killed at 45% and the broker at 70% (on a cluster, the
// node leading the most partitions: killLeader). It returns when
// every fault has been undone.
func faults(ctx context.Context, cfg Config, st *stack, log *faultLog, say func(string, ...any)) {
	d := cfg.Duration
	start := time.Now()
	var wg sync.WaitGroup
	at := func(frac float64, fn func()) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if !sleepCtx(ctx, time.Until(start.Add(time.Duration(frac*float64(d))))) {
				return
			}
			fn()
		}()
	}
	if cfg.KillEvery > 0 && len(st.dispatchers) > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(cfg.Seed, 0x6b696c6c))
			for t := d / 10; t <= d*9/10; t += cfg.KillEvery {
				if !sleepCtx(ctx, time.Until(start.Add(t))) {
					return
				}
				p := st.dispatchers[rng.IntN(len(st.dispatchers))]
				// Only a member of a settled group is killed. The local
				// broker (kfake) never expires a member that dies
				// between its JoinGroup request and the answer: its
				// session timer is armed only once an answer is
				// delivered, so the member would keep its partitions
				// forever, which Apache Kafka does not do (see the
				// package documentation). Waiting is bounded by the
				// pause between kills; a kill that finds the group
				// still rebalancing is skipped and counted.
				if err := waitGroupMembers(ctx, st.brokerAddr, dispatcherGroup, len(st.dispatchers), cfg.KillEvery); err != nil {
					if ctx.Err() != nil {
						return
					}
					log.add(func(f *faultLog) { f.killSkipped++ })
					say("kill of %s skipped: the dispatcher group is still rebalancing", p.name)
					continue
				}
				pid := p.pid()
				p.killHold()
				log.add(func(f *faultLog) { f.dispatcherKill++ })
				say("SIGKILL %s (pid %d); back in %s", p.name, pid, cfg.KillDowntime)
				if !sleepCtx(ctx, cfg.KillDowntime) {
					return
				}
				if err := st.sup.start(p); err != nil {
					log.add(func(f *faultLog) { f.errors = append(f.errors, err.Error()) })
					say("restart %s: %v", p.name, err)
				}
			}
		}()
	}
	if cfg.Outage > 0 {
		at(0.25, func() {
			if err := setOutage(ctx, st.simAddr, true); err != nil {
				log.add(func(f *faultLog) { f.errors = append(f.errors, err.Error()) })
				return
			}
			log.add(func(f *faultLog) { f.outages++ })
			say("provider outage on for %s", cfg.Outage)
			sleepCtx(ctx, cfg.Outage)
			// Always switched off, also when the run is being cancelled.
			if err := setOutage(context.Background(), st.simAddr, false); err != nil {
				log.add(func(f *faultLog) { f.errors = append(f.errors, err.Error()) })
			}
			say("provider outage off")
		})
	}
	if cfg.ClickHouseDown > 0 {
		at(0.45, func() {
			killRestart(ctx, st, st.clickhouse, cfg.ClickHouseDown, log, say, func(f *faultLog) { f.clickhouseKill++ })
		})
	}
	if cfg.BrokerDown > 0 {
		at(0.70, func() {
			if cfg.Kafka == KafkaApacheCluster {
				killLeader(ctx, cfg, st, log, say)
				return
			}
			killRestart(ctx, st, st.broker, cfg.BrokerDown, log, say, func(f *faultLog) { f.brokerKill++ })
		})
	}
	wg.Wait()
}

func killRestart(ctx context.Context, st *stack, p *proc, down time.Duration, log *faultLog, say func(string, ...any), count func(*faultLog)) {
	pid := p.pid()
	p.killHold()
	log.add(count)
	say("SIGKILL %s (pid %d); back in %s", p.name, pid, down)
	sleepCtx(ctx, down)
	// Restarted even when the run is being cancelled: stopping expects it.
	if err := st.startReady(context.WithoutCancel(ctx), p, 2*time.Minute); err != nil {
		log.add(func(f *faultLog) { f.errors = append(f.errors, err.Error()) })
		say("restart %s: %v", p.name, err)
		return
	}
	say("%s back (pid %d)", p.name, p.pid())
}

func setOutage(ctx context.Context, simAddr string, on bool) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	body := fmt.Appendf(nil, `{"on":%t}`, on)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+simAddr+"/admin/outage", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := probe.Do(req)
	if err != nil {
		return fmt.Errorf("simulator outage %t: %w", on, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("simulator outage %t: %s", on, resp.Status)
	}
	return nil
}

// sleepCtx sleeps d and reports whether ctx is still live.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
