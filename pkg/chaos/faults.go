package chaos

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/wanotify/wanotify/pkg/provider"
)

// faultLog counts the faults carried out.
type faultLog struct {
	mu             sync.Mutex
	dispatcherKill int
	killSkipped    int // the group was still rebalancing at a kill's turn
	outages        int
	accountFaults  int
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
// 25%, ClickHouse killed at 45%, one sender's account fault from 50% and
// the broker at 70% (on a cluster, the node leading the most partitions:
// killLeader). It returns when
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
	if cfg.AccountFault > 0 {
		at(0.50, func() {
			if err := setAccountFault(ctx, st.simAddr, numberID(faultedSender), provider.MetaAccessToken); err != nil {
				log.add(func(f *faultLog) { f.errors = append(f.errors, err.Error()) })
				return
			}
			log.add(func(f *faultLog) { f.accountFaults++ })
			say("account fault: %s's access token revoked (Meta %d) for %s", faultedSender, provider.MetaAccessToken, cfg.AccountFault)
			sleepCtx(ctx, cfg.AccountFault)
			// Always lifted, also when the run is being cancelled.
			if err := setAccountFault(context.Background(), st.simAddr, numberID(faultedSender), 0); err != nil {
				log.add(func(f *faultLog) { f.errors = append(f.errors, err.Error()) })
			}
			say("account fault lifted: %s works again (the dispatchers find out with their next probe)", faultedSender)
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
	if err := simAdmin(ctx, simAddr, "/admin/outage", fmt.Appendf(nil, `{"on":%t}`, on)); err != nil {
		return fmt.Errorf("simulator outage %t: %w", on, err)
	}
	return nil
}

// simAdmin posts a JSON body to one of the simulator's admin endpoints.
func simAdmin(ctx context.Context, simAddr, path string, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+simAddr+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := probe.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", path, resp.Status)
	}
	return nil
}

// faultedSender is the sender whose account faults (Config.AccountFault).
var faultedSender = senderName(0)

// setAccountFault switches the simulator's account fault of the sending
// number sender (code 0 clears it).
func setAccountFault(ctx context.Context, simAddr, sender string, code int) error {
	if err := simAdmin(ctx, simAddr, "/admin/account-fault", fmt.Appendf(nil, `{"sender":%q,"code":%d}`, sender, code)); err != nil {
		return fmt.Errorf("simulator account fault of %s (%d): %w", sender, code, err)
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
