package cli

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/term"
	"golang.org/x/time/rate"

	"github.com/wanotify/wanotify/pkg/contract"
	"github.com/wanotify/wanotify/pkg/phone"
	"github.com/wanotify/wanotify/pkg/sdk"
)

// maxRecipients bounds --recipients: the synthetic numbers are
// +447700900000 onwards, and the range holds 100,000 of them.
const maxRecipients = 100000

// loadRecipient is the i-th synthetic recipient. UK mobile numbers of the
// 07700 900 block are reserved for drama and never reach a real person;
// the pool extends past that block with the same prefix.
func loadRecipient(i int) string { return fmt.Sprintf("+4477009%05d", i) }

type loadSummary struct {
	RunID       string  `json:"run_id"`
	Tenant      string  `json:"tenant"`
	Requested   int     `json:"requested"`
	Sent        int64   `json:"sent"`
	Failed      int64   `json:"failed"`
	Elapsed     float64 `json:"elapsed_seconds"`
	Rate        float64 `json:"achieved_per_second"`
	TargetRate  float64 `json:"target_per_second"`
	Recipients  int     `json:"recipients"`
	FirstError  string  `json:"first_error,omitempty"`
	Interrupted bool    `json:"interrupted,omitempty"`
}

func newLoadCmd(app *App) *cobra.Command {
	var (
		n, recipients               int
		perSec                      float64
		tenant, eventType, template string
		sender, runID               string
		quiet                       bool
		ttl                         time.Duration
	)
	cmd := &cobra.Command{
		Use:   "load",
		Short: "Publish N synthetic notifications at a given rate (demos and benchmarks)",
		Long: `load publishes -n synthetic notifications to notifications.requested at --rate
per second, built as ingest builds them, to a pool of --recipients fictitious
numbers (+447700900000 onwards: the UK range reserved for drama). Every
notification carries metadata load_run=<run id> and a unique idempotency key,
so "notifyctl stats" and ClickHouse can tell runs apart.

A progress bar is drawn on stderr when it is a terminal (not with --quiet);
a summary follows: sent, failed, elapsed time and the rate achieved. The exit
status is 1 when any notification could not be published.`,
		Example: `  notifyctl load -n 10000 --rate 500
  notifyctl load -n 1000 --rate 40 --recipients 10 --tenant acme --event-type invoice.reminder
  notifyctl load -n 50000 --rate 5000 --quiet -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch {
			case n < 1:
				return &UsageError{errors.New("-n must be at least 1")}
			case !(perSec > 0):
				return &UsageError{fmt.Errorf("--rate: %v must be positive", perSec)}
			case recipients < 1 || recipients > maxRecipients:
				return &UsageError{fmt.Errorf("--recipients: must be between 1 and %d", maxRecipients)}
			case !sdk.IsTenant(tenant):
				return &UsageError{fmt.Errorf("--tenant: %q is not a tenant name", tenant)}
			}
			if runID == "" {
				var b [4]byte
				_, _ = rand.Read(b[:])
				runID = time.Now().UTC().Format("20060102T150405") + "-" + hex.EncodeToString(b[:])
			}
			// The pool is Ofcom's drama range on purpose: a load run aimed at
			// a real provider by mistake reaches nobody. Those numbers are
			// possible but never valid, hence the relaxed rule.
			build := sdk.BuildOptions{SourceService: defaultSourceService, Sender: sender, PhoneRule: phone.Possible}
			// Validate the shape once before producing anything.
			if _, _, err := sdk.BuildRecord(tenant, loadRequest(runID, 0, recipients, eventType, template, ttl), build, time.Now(), ""); err != nil {
				return &UsageError{fmt.Errorf("invalid notification: %w", err)}
			}
			ctx, cancel := app.Context(cmd)
			defer cancel()
			cl, err := app.KafkaClient(kgo.RequiredAcks(kgo.AllISRAcks()), kgo.MaxBufferedRecords(100000))
			if err != nil {
				return err
			}
			defer cl.Close()

			bar := newBar(app.Err, n, quiet)
			// A burst of 20 ms worth of tokens keeps high rates accurate
			// without sleeping for every single record.
			burst := max(1, int(perSec/50))
			lim := rate.NewLimiter(rate.Limit(perSec), burst)
			var (
				sent, failed atomic.Int64
				firstErr     atomic.Pointer[string]
				wg           sync.WaitGroup
			)
			start := time.Now()
			interrupted := false
		produce:
			for i := 0; i < n; {
				k := min(burst, n-i)
				if err := lim.WaitN(ctx, k); err != nil {
					interrupted = true
					break
				}
				for j := 0; j < k; j++ {
					rec, _, err := sdk.BuildRecord(tenant, loadRequest(runID, i, recipients, eventType, template, ttl), build, time.Now(), "")
					i++
					if err != nil {
						failed.Add(1)
						msg := err.Error()
						firstErr.CompareAndSwap(nil, &msg)
						continue
					}
					wg.Add(1)
					cl.Produce(ctx, rec, func(_ *kgo.Record, err error) {
						defer wg.Done()
						if err != nil {
							failed.Add(1)
							msg := err.Error()
							firstErr.CompareAndSwap(nil, &msg)
						} else {
							sent.Add(1)
						}
						if bar != nil {
							_ = bar.Add(1)
						}
					})
					if ctx.Err() != nil {
						interrupted = true
						break produce
					}
				}
			}
			_ = cl.Flush(ctx)
			wg.Wait()
			elapsed := time.Since(start)
			if bar != nil {
				_ = bar.Finish()
				fmt.Fprintln(app.Err)
			}
			s := loadSummary{RunID: runID, Tenant: tenant, Requested: n, Sent: sent.Load(), Failed: failed.Load(),
				Elapsed: elapsed.Seconds(), TargetRate: perSec, Recipients: recipients, Interrupted: interrupted}
			if elapsed > 0 {
				s.Rate = float64(s.Sent) / elapsed.Seconds()
			}
			if p := firstErr.Load(); p != nil {
				s.FirstError = *p
			}
			err = app.Print(s, func(w *tabwriter.Writer) {
				fmt.Fprintf(w, "run\t%s (tenant %s, %d recipients)\n", s.RunID, s.Tenant, s.Recipients)
				fmt.Fprintf(w, "sent\t%d of %d\n", s.Sent, s.Requested)
				fmt.Fprintf(w, "failed\t%d\n", s.Failed)
				fmt.Fprintf(w, "elapsed\t%s\n", elapsed.Round(time.Millisecond))
				fmt.Fprintf(w, "rate\t%.1f/s (target %s/s)\n", s.Rate, strconv.FormatFloat(perSec, 'f', -1, 64))
				if s.FirstError != "" {
					fmt.Fprintf(w, "first error\t%s\n", s.FirstError)
				}
				if s.Interrupted {
					fmt.Fprintln(w, "interrupted\tstopped before every notification was published")
				}
			})
			if err != nil {
				return err
			}
			if s.Failed > 0 || s.Interrupted {
				return fmt.Errorf("load %w: %d of %d not published", errFailed, int64(n)-s.Sent, n)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVarP(&n, "count", "n", 1000, "notifications to publish")
	f.Float64Var(&perSec, "rate", 100, "notifications per second")
	f.IntVar(&recipients, "recipients", 100, "size of the recipient pool (notifications spread over it round-robin)")
	f.StringVar(&tenant, "tenant", defaultTenant, "tenant")
	f.StringVar(&eventType, "event-type", "load_test", "event type")
	f.StringVar(&template, "template", "otp_code", "template name")
	f.StringVar(&sender, "sender", defaultSender, "sender account")
	f.DurationVar(&ttl, "ttl", 0, "expiry of each notification (0: none)")
	f.StringVar(&runID, "run-id", "", "run id in metadata and idempotency keys (default: time + random)")
	f.BoolVarP(&quiet, "quiet", "q", false, "no progress bar")
	return cmd
}

func loadRequest(runID string, i, recipients int, eventType, template string, ttl time.Duration) *sdk.Request {
	return &sdk.Request{
		IdempotencyKey: "load:" + runID + ":" + strconv.Itoa(i),
		EventType:      eventType,
		Recipient:      loadRecipient(i % recipients),
		Template:       &contract.Template{Name: template, Language: "en_US", Parameters: []string{strconv.Itoa(100000 + i%900000)}},
		TTL:            ttl,
		Metadata:       map[string]string{"load_run": runID},
	}
}

// isTerminal reports whether v is a terminal.
func isTerminal(v any) bool {
	f, ok := v.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// newBar returns a progress bar on w when w is a terminal and not quiet.
func newBar(w io.Writer, n int, quiet bool) *progressbar.ProgressBar {
	if quiet || !isTerminal(w) {
		return nil
	}
	return progressbar.NewOptions(n,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription("publishing"),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString("msg"),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionSetWidth(40),
	)
}
