package cli

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/spf13/cobra"

	"github.com/wanotify/wanotify/pkg/chconf"
	"github.com/wanotify/wanotify/pkg/contract"
	"github.com/wanotify/wanotify/pkg/logstore"
	"github.com/wanotify/wanotify/pkg/phone"
)

func init() { extraCommands = append(extraCommands, newStatusCmd, newStatsCmd) }

// LogStore connects to ClickHouse with the shared WANOTIFY_CLICKHOUSE_*
// settings and returns the reader of the communication logs; close the
// returned function when done.
func (a *App) LogStore(ctx context.Context) (*logstore.Store, func(), error) {
	conn, db, err := a.clickHouse(ctx, schemaHint)
	if err != nil {
		return nil, nil, err
	}
	return logstore.New(conn, db), func() { _ = conn.Close() }, nil
}

// clickHouse opens the WANOTIFY_CLICKHOUSE_* connection that notifyctl's
// readers and its eraser share, checked with a ping, and returns it with
// the database name. hint, when not nil, explains a failed ping to an
// operator.
func (a *App) clickHouse(ctx context.Context, hint func(error) error) (driver.Conn, string, error) {
	cfg := chconf.Load(a.Env)
	if err := a.Env.Err(); err != nil {
		return nil, "", &UsageError{err}
	}
	opts, err := cfg.Options()
	if err != nil {
		return nil, "", &UsageError{err}
	}
	conn, err := clickhouse.Open(opts)
	if err != nil {
		return nil, "", fmt.Errorf("clickhouse %s: %w", strings.Join(cfg.Addrs, ","), err)
	}
	if err := conn.Ping(ctx); err != nil {
		_ = conn.Close()
		err = fmt.Errorf("clickhouse %s, database %s: %w", strings.Join(cfg.Addrs, ","), cfg.Database, err)
		if hint != nil {
			err = hint(err)
		}
		return nil, "", err
	}
	return conn, cfg.Database, nil
}

// ClickHouse error codes that mean the sink's tables are not there.
const (
	chUnknownTable    = 60
	chUnknownDatabase = 81
)

// schemaHint adds what to check when the logs' tables are missing: the
// sink creates them when it starts.
func schemaHint(err error) error {
	var ex *clickhouse.Exception
	if errors.As(err, &ex) && (ex.Code == chUnknownTable || ex.Code == chUnknownDatabase) {
		return fmt.Errorf("%w (the sink creates the tables when it starts: is it running against this WANOTIFY_CLICKHOUSE_DATABASE?)", err)
	}
	return err
}

func newStatusCmd(app *App) *cobra.Command {
	var tenant string
	cmd := &cobra.Command{
		Use:   "status <notification-id>",
		Short: "Show a notification's state and timeline from ClickHouse",
		Long: `status reads the communication logs in ClickHouse: the notification's current
state (status ordered by progress, so a late "sent" webhook never hides
"delivered"), then every event of its timeline with its time, who emitted it,
the attempt and the error, and its records on the DLQ.

The sink writes to ClickHouse about a second after events happen; a
notification published a moment ago may not be there yet (exit status 3).`,
		Example: `  notifyctl status 5b0c8f0e-8a43-5d1e-9a57-0b2c0a6c2d11
  notifyctl status 5b0c8f0e-8a43-5d1e-9a57-0b2c0a6c2d11 --tenant acme -o json
  WANOTIFY_CLICKHOUSE_ADDR=ch-0:9000 notifyctl status 5b0c8f0e-8a43-5d1e-9a57-0b2c0a6c2d11`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := app.Context(cmd)
			defer cancel()
			st, closeFn, err := app.LogStore(ctx)
			if err != nil {
				return err
			}
			defer closeFn()
			v, err := st.Notification(ctx, tenant, args[0])
			err = schemaHint(err)
			switch {
			case errors.Is(err, logstore.ErrNotFound):
				return fmt.Errorf("%w: notification %s is not in the communication logs", ErrNotFound, args[0])
			case errors.Is(err, logstore.ErrInvalid):
				return &UsageError{err}
			case err != nil:
				return err
			}
			// Phone numbers are masked in what the CLI prints; the DLQ
			// commands show the full payload to operators who need it.
			v.Recipient = phone.Mask(v.Recipient)
			v.Payload = nil
			out := statusView{View: v, AfterDeadLetter: afterDeadLetter(v.Timeline), DeadLettersPending: deadLettersPending(v)}
			return app.Print(out, func(w *tabwriter.Writer) { printStatus(w, out) })
		},
	}
	cmd.Flags().StringVar(&tenant, "tenant", "", "only find the notification in this tenant (default: any)")
	return cmd
}

// statusView is what status prints: the logs' view, plus what happened
// after the notification was last dead-lettered.
type statusView struct {
	*logstore.View
	// AfterDeadLetter is the furthest status reached after the last
	// dead_lettered event, i.e. the outcome of a replay: the logs' status
	// stays dead_lettered because it ranks failures above delivery.
	AfterDeadLetter string `json:"after_dead_letter,omitempty"`
	// DeadLettersPending counts dead_lettered events whose DLQ record is
	// not in ClickHouse yet. The sink writes a status event and its DLQ
	// record from two topics in separate batches, so for a moment the
	// logs can say dead_lettered with no dead letter to show; the record
	// is on the DLQ topic already (notifyctl dlq list reads it there).
	DeadLettersPending int `json:"dead_letters_pending,omitempty"`
}

// deadLettersPending returns how many of v's dead_lettered events have no
// dead letter in the logs yet.
func deadLettersPending(v *logstore.View) int {
	n := 0
	for _, e := range v.Timeline {
		if e.Status == string(contract.StatusDeadLettered) {
			n++
		}
	}
	if n <= len(v.DeadLetters) || len(v.DeadLetters) >= logstore.MaxDeadLetters {
		return 0
	}
	return n - len(v.DeadLetters)
}

// afterDeadLetter returns the most advanced delivery status among the
// events after the last dead_lettered one, "" when there is none.
func afterDeadLetter(tl []logstore.Event) string {
	last := -1
	for i, e := range tl {
		if e.Status == string(contract.StatusDeadLettered) {
			last = i
		}
	}
	if last < 0 {
		return ""
	}
	best := ""
	for _, e := range tl[last+1:] {
		// A suppressed duplicate (a second replay) says nothing about
		// how far the notification got.
		if e.Status == string(contract.StatusDuplicate) || contract.Status(e.Status).Rank() == 0 {
			continue
		}
		if best == "" || contract.Status(e.Status).Rank() > contract.Status(best).Rank() {
			best = e.Status
		}
	}
	return best
}

func printStatus(w *tabwriter.Writer, sv statusView) {
	v := sv.View
	printf(w, "Notification\t%s\n", v.NotificationID)
	printf(w, "Status\t%s\n", v.Status)
	if sv.AfterDeadLetter != "" {
		printf(w, "Since the last dead letter\t%s (replayed)\n", sv.AfterDeadLetter)
	}
	printf(w, "Tenant / event type\t%s / %s\n", v.Tenant, dash(v.EventType))
	tmpl := dash(v.Template)
	if v.TemplateLanguage != "" {
		tmpl += " (" + v.TemplateLanguage + ")"
	}
	printf(w, "Template\t%s\n", tmpl)
	printf(w, "Recipient / sender\t%s / %s\n", v.Recipient, dash(v.Sender))
	if v.ProviderMessageID != "" {
		printf(w, "Provider message\t%s %s\n", v.Provider, v.ProviderMessageID)
	}
	printf(w, "Attempts / retries\t%d / %d\n", v.Attempts, v.Retries)
	if v.Duplicates > 0 {
		printf(w, "Duplicates suppressed\t%d\n", v.Duplicates)
	}
	if v.Error != nil {
		printf(w, "Last error\t%s (retryable %t): %s\n", v.Error.Code, v.Error.Retryable, dash(v.Error.Message))
	}
	printf(w, "Created / updated\t%s / %s\n", v.CreatedAt.UTC().Format(time.RFC3339), v.UpdatedAt.UTC().Format(time.RFC3339))
	if v.ExpiresAt != nil {
		printf(w, "Expires\t%s\n", v.ExpiresAt.UTC().Format(time.RFC3339))
	}
	_ = w.Flush()
	fmt.Fprintln(w, "\nTimeline:")
	fmt.Fprintln(w, "  TIME (UTC)\tSTATUS\tEMITTER\tATTEMPT\tERROR\tDETAIL")
	for _, e := range v.Timeline {
		attempt, code, detail := "-", "-", ""
		if e.Attempt > 0 {
			attempt = strconv.Itoa(e.Attempt)
		}
		if e.Error != nil {
			code, detail = e.Error.Code, e.Error.Message
		}
		if e.RetryTier != "" {
			detail = strings.TrimSpace(detail + " next: " + e.RetryTier)
		}
		if e.ProviderMessageID != "" && detail == "" {
			detail = "provider message " + e.ProviderMessageID
		}
		printf(w, "  %s\t%s\t%s\t%s\t%s\t%s\n", e.OccurredAt.UTC().Format("2006-01-02 15:04:05.000"), e.Status,
			dash(e.Emitter), attempt, code, dash(detail))
	}
	if sv.DeadLettersPending > 0 {
		_ = w.Flush()
		fmt.Fprintf(w, "\nDead letters: %d not in ClickHouse yet (the sink writes them within seconds; notifyctl dlq list reads the DLQ topic itself)\n",
			sv.DeadLettersPending)
	}
	if len(v.DeadLetters) > 0 {
		_ = w.Flush()
		fmt.Fprintln(w, "\nDead letters (notifyctl dlq show <partition/offset>):")
		fmt.Fprintln(w, "  RECORD\tFAILED AT (UTC)\tREASON\tERROR\tATTEMPT\tREPLAYS")
		for _, d := range v.DeadLetters {
			printf(w, "  %d/%d\t%s\t%s\t%s\t%d\t%d\n", d.Source.Partition, d.Source.Offset, d.FailedAt.UTC().Format("2006-01-02 15:04:05"),
				d.Reason, d.Error.Code, d.Attempt, d.ReplayCount)
		}
	}
}

func newStatsCmd(app *App) *cobra.Command {
	var (
		since, until                string
		tenant, eventType, template string
		hourly                      bool
	)
	cmd := &cobra.Command{
		Use:   "stats",
		Short: "Delivery funnel, error breakdown and latency percentiles over a time window",
		Long: `stats reads the analytics views in ClickHouse for the notifications requested in
a time window (rounded down to the hour at its start): the delivery funnel
(requested, accepted by the provider, sent, delivered, read, and how many
failed, were dead-lettered, expired or are pending), the failures by error
code, retry and DLQ rates, the DLQ records by reason, and latency percentiles
of each step (requested -> accepted -> sent -> delivered -> read).`,
		Example: `  notifyctl stats                          # the last 24 hours
  notifyctl stats --since 1h --tenant acme
  notifyctl stats --since 2026-11-28 --until 2026-11-29 --event-type otp --hourly
  notifyctl stats --since 7d -o json | jq .latency`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			now := time.Now()
			from, err := parseWhen(since, now)
			if err != nil {
				return &UsageError{fmt.Errorf("--since: %w", err)}
			}
			to, err := parseWhen(until, now)
			if err != nil {
				return &UsageError{fmt.Errorf("--until: %w", err)}
			}
			if until == "" {
				// The current hour is still being filled; include it.
				to = now.Add(time.Minute)
			}
			if !from.Before(to) {
				return &UsageError{errors.New("--since must be before --until")}
			}
			ctx, cancel := app.Context(cmd)
			defer cancel()
			st, closeFn, err := app.LogStore(ctx)
			if err != nil {
				return err
			}
			defer closeFn()
			s, err := st.Stats(ctx, from, to, logstore.Filter{Tenant: tenant, EventType: eventType, Template: template})
			err = schemaHint(err)
			if errors.Is(err, logstore.ErrInvalid) {
				return &UsageError{err}
			}
			if err != nil {
				return err
			}
			if !hourly {
				s.Hourly = nil
			}
			return app.Print(s, func(w *tabwriter.Writer) { printStats(w, s, hourly) })
		},
	}
	f := cmd.Flags()
	f.StringVar(&since, "since", "24h", "start of the window (RFC 3339, 2026-11-28, or an age: 1h, 7d)")
	f.StringVar(&until, "until", "", "end of the window (same forms; default: now)")
	f.StringVar(&tenant, "tenant", "", "only this tenant")
	f.StringVar(&eventType, "event-type", "", "only this event type")
	f.StringVar(&template, "template", "", "only this template")
	f.BoolVar(&hourly, "hourly", false, "also show the funnel hour by hour")
	return cmd
}

func pct(n, of uint64) string {
	if of == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", 100*float64(n)/float64(of))
}

func printStats(w *tabwriter.Writer, s *logstore.Stats, hourly bool) {
	printf(w, "Window\t%s .. %s", s.From.Format(time.RFC3339), s.To.UTC().Format(time.RFC3339))
	var filt []string
	for _, kv := range [][2]string{{"tenant", s.Filter.Tenant}, {"event type", s.Filter.EventType}, {"template", s.Filter.Template}} {
		if kv[1] != "" {
			filt = append(filt, kv[0]+" "+kv[1])
		}
	}
	if len(filt) > 0 {
		printf(w, " (%s)", strings.Join(filt, ", "))
	}
	fmt.Fprintln(w)
	_ = w.Flush()
	f := s.Funnel
	fmt.Fprintln(w, "\nDelivery funnel:")
	fmt.Fprintln(w, "  STEP\tNOTIFICATIONS\tOF REQUESTED")
	for _, row := range []struct {
		name string
		n    uint64
	}{{"requested", f.Requested}, {"accepted", f.Accepted}, {"sent", f.Sent}, {"delivered", f.Delivered}, {"read", f.Read},
		{"failed", f.Failed}, {"dead-lettered", f.DeadLettered}, {"expired", f.Expired}, {"outcome unknown", f.OutcomeUnknown},
		{"pending", f.Pending}} {
		printf(w, "  %s\t%d\t%s\n", row.name, row.n, pct(row.n, f.Requested))
	}
	printf(w, "  duplicates suppressed\t%d\t\n", f.Duplicates)
	if hourly && len(s.Hourly) > 0 {
		_ = w.Flush()
		fmt.Fprintln(w, "\nBy hour:")
		fmt.Fprintln(w, "  HOUR (UTC)\tREQUESTED\tACCEPTED\tDELIVERED\tREAD\tFAILED\tDEAD-LETTERED\tEXPIRED\tPENDING")
		for _, h := range s.Hourly {
			printf(w, "  %s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\n", h.Hour.UTC().Format("2006-01-02 15:00"), h.Requested, h.Accepted,
				h.Delivered, h.Read, h.Failed, h.DeadLettered, h.Expired, h.Pending)
		}
	}
	_ = w.Flush()
	fmt.Fprintln(w, "\nErrors:")
	if len(s.Failures) == 0 {
		fmt.Fprintln(w, "  none")
	} else {
		fmt.Fprintln(w, "  STATUS\tERROR\tRETRYABLE\tNOTIFICATIONS\tSAMPLE MESSAGE")
		for _, x := range s.Failures {
			printf(w, "  %s\t%s\t%t\t%d\t%s\n", x.Status, dash(x.ErrorCode), x.Retryable, x.Notifications, dash(x.SampleMessage))
		}
	}
	r := s.Retries
	_ = w.Flush()
	printf(w, "\nRetries:\t%d of %d notifications retried (%s), %d retry events; %d dead-lettered (%s)\n",
		r.Retried, r.Requested, pct(r.Retried, r.Requested), r.RetryEvents, r.DeadLettered, pct(r.DeadLettered, r.Requested))
	if len(s.DeadLetters) > 0 {
		_ = w.Flush()
		fmt.Fprintln(w, "\nDead letters by reason:")
		fmt.Fprintln(w, "  REASON\tCLASS\tERROR\tRECORDS\tPOISON")
		for _, d := range s.DeadLetters {
			printf(w, "  %s\t%s\t%s\t%d\t%d\n", d.Reason, dash(d.ErrorClass), dash(d.ErrorCode), d.Records, d.Poison)
		}
	}
	_ = w.Flush()
	fmt.Fprintln(w, "\nLatency (seconds):")
	if len(s.Latency) == 0 {
		fmt.Fprintln(w, "  no samples")
		return
	}
	fmt.Fprintln(w, "  STEP\tSAMPLES\tP50\tP90\tP99\tMAX")
	for _, l := range s.Latency {
		printf(w, "  %s\t%d\t%.3f\t%.3f\t%.3f\t%.3f\n", strings.ReplaceAll(l.Step, "_", " "), l.Samples, l.P50, l.P90, l.P99, l.Max)
	}
}
