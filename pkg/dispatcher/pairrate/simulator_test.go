package pairrate_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/wanotify/wanotify/pkg/dispatcher/pairrate"
	"github.com/wanotify/wanotify/pkg/provider"
	"github.com/wanotify/wanotify/pkg/provider/providertest"
	"github.com/wanotify/wanotify/pkg/simulator"
)

const simKey = "pairrate-test-key"

func send(t *testing.T, c *http.Client, url, nid string, p pairrate.Pair) int {
	t.Helper()
	raw, _ := json.Marshal(map[string]any{
		"phone_number_id": p.Sender, "to": p.Recipient, "type": "text",
		"text": map[string]any{"body": "hi"}, "biz_opaque_callback_data": nid, "idempotency_key": "idem-" + nid,
	})
	req, _ := http.NewRequest(http.MethodPost, url+simulator.DefaultSendPath, bytes.NewReader(raw))
	req.Header.Set("X-API-Key", simKey)
	resp, err := c.Do(req)
	if err != nil {
		t.Error(err)
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestGateAgreesWithTheSimulatorsPairRate drives the simulator's own
// pair-rate rule (the GCRA it answers 131056 from) with the gate's
// verdicts at real time, several recipients at once, each recipient's
// messages one after another as the dispatcher sends them: the gate
// with the simulator's interval and burst never provokes a 131056, and
// the same traffic without the gate does.
func TestGateAgreesWithTheSimulatorsPairRate(t *testing.T) {
	const interval, burst, perRecipient = 250 * time.Millisecond, 2, 8
	sim, url := providertest.StartSimulator(t, simulator.Config{APIKey: simKey, Seed: 1,
		Behavior: simulator.Behavior{Rules: simulator.Rules{PairRate: float64(time.Second) / float64(interval), PairBurst: burst}}})
	c := &http.Client{Timeout: 10 * time.Second}
	g := pairrate.New(pairrate.Config{Interval: interval, Burst: burst}, nil)

	var wg sync.WaitGroup
	for r := range 5 {
		p := pairrate.Pair{Sender: "snd", Recipient: fmt.Sprintf("+1202555%04d", r)}
		wg.Go(func() {
			for i := range perRecipient {
				for {
					until, ok := g.Take(p, -1, time.Now())
					if ok {
						break
					}
					time.Sleep(time.Until(until))
				}
				code := send(t, c, url, fmt.Sprintf("%d-%d", r, i), p)
				if code == http.StatusTooManyRequests {
					g.PairLimited(p, -1, time.Now())
				} else {
					g.Sent(p, -1, time.Now())
				}
			}
		})
	}
	wg.Wait()
	led := sim.Ledger()
	if n := led.Failures[fmt.Sprintf("meta_%d", provider.MetaPairRate)]; n != 0 || led.Accepted != 5*perRecipient {
		t.Fatalf("with the gate: %d accepted, %d × 131056 (failures %v), want %d and none", led.Accepted, n, led.Failures, 5*perRecipient)
	}

	// Without the gate the simulator does answer 131056: the rule is on.
	p := pairrate.Pair{Sender: "snd", Recipient: "+12025559999"}
	for i := range burst + 1 {
		send(t, c, url, fmt.Sprintf("nogate-%d", i), p)
	}
	if n := sim.Ledger().Failures[fmt.Sprintf("meta_%d", provider.MetaPairRate)]; n == 0 {
		t.Fatal("the simulator let more than the burst through at once: the agreement above shows nothing")
	}
}
