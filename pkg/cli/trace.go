package cli

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/spf13/cobra"

	"github.com/wanotify/wanotify/pkg/tracestore"
)

func init() { extraCommands = append(extraCommands, newTraceCmd) }

// TraceStore connects to the ClickHouse database holding otel_traces
// (WANOTIFY_CLICKHOUSE_*).
func (a *App) TraceStore(ctx context.Context) (*tracestore.Store, func(), error) {
	conn, db, err := a.clickHouse(ctx, nil)
	if err != nil {
		return nil, nil, err
	}
	return tracestore.New(conn, db), func() { _ = conn.Close() }, nil
}

var traceIDPattern = regexp.MustCompile(`^[0-9a-f]{32}$`)

// shownTrace is one trace of the answer.
type shownTrace struct {
	TraceID string `json:"trace_id"`
	// Kind is "notification" (the trace that carried the request through
	// ingest, the dispatcher and the sink) or "webhook" (a provider's
	// status webhook, a trace of its own).
	Kind string `json:"kind"`
	// LinkedBy says how a webhook trace is tied to the notification: the
	// attribute both carry.
	LinkedBy string             `json:"linked_by,omitempty"`
	Spans    int                `json:"spans"`
	Start    time.Time          `json:"start"`
	Duration time.Duration      `json:"duration_ns"`
	Tree     []*tracestore.Node `json:"tree"`
}

func newTraceCmd(app *App) *cobra.Command {
	var wait time.Duration
	cmd := &cobra.Command{
		Use:   "trace <notification-id | trace-id>",
		Short: "Print a notification's trace as a span tree with durations, and its webhooks' linked traces",
		Long: `trace reads the spans the services exported (OTLP) into ClickHouse's otel_traces
table (the local trace store of "make run", or an OpenTelemetry Collector with
its ClickHouse exporter) and prints them as a tree: each span's service, kind,
duration and start offset from the trace's first span.

Given a notification id, it finds every trace in which a span carries
wanotify.notification_id = that id: the notification's own trace (ingest →
dispatcher → provider call → status events → sink, retries included) and the
trace of each status webhook the provider sent for it (a provider propagates no
trace context, so a webhook starts a trace of its own, linked to the
notification by that attribute). Given a 32-hex-digit trace id, it prints that
trace.

Spans reach the store in batches (every second in "make run", about every 5 s
by default); --wait polls until the notification's trace shows up and no new
span arrived for 2 s.`,
		Example: `  notifyctl trace 5b0c8f0e-8a43-5d1e-9a57-0b2c0a6c2d11
  notifyctl trace 4bf92f3577b34da6a3ce929d0e0e4736
  notifyctl trace 5b0c8f0e-8a43-5d1e-9a57-0b2c0a6c2d11 --wait 15s -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := app.Context(cmd)
			defer cancel()
			st, closeStore, err := app.TraceStore(ctx)
			if err != nil {
				return err
			}
			defer closeStore()
			id := strings.ToLower(strings.TrimSpace(args[0]))
			var (
				refs      []tracestore.TraceRef
				lastCount = -1
				stableAt  time.Time
			)
			deadline := time.Now().Add(wait)
			for {
				if traceIDPattern.MatchString(id) {
					refs = []tracestore.TraceRef{{TraceID: id}}
				} else if refs, err = st.TracesOf(ctx, id); err != nil {
					return traceHint(err)
				}
				var shown []shownTrace
				if shown, err = readTraces(ctx, st, refs); err != nil {
					return traceHint(err)
				}
				// With --wait, spans still on their way are waited for too:
				// until none arrived for settle, or the deadline.
				n := spanCount(shown)
				if n != lastCount {
					lastCount, stableAt = n, time.Now()
				}
				if wait == 0 || !time.Now().Before(deadline) || (n > 0 && time.Since(stableAt) >= settle) {
					return printTraces(app, id, shown)
				}
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(500 * time.Millisecond):
				}
			}
		},
	}
	cmd.Flags().DurationVar(&wait, "wait", 0, "wait up to this long for the trace, and for its spans to stop arriving")
	return cmd
}

// traceHint adds what to check when otel_traces is missing.
func traceHint(err error) error {
	var ex *clickhouse.Exception
	if errors.As(err, &ex) && (ex.Code == chUnknownTable || ex.Code == chUnknownDatabase) {
		return fmt.Errorf("%w (otel_traces is created by the trace store, services/traces, which make run starts, or by an OpenTelemetry Collector's ClickHouse exporter: is one writing to this WANOTIFY_CLICKHOUSE_DATABASE?)", err)
	}
	return err
}

// settle is how long --wait sees no new span before it prints.
const settle = 2 * time.Second

func spanCount(ts []shownTrace) int {
	n := 0
	for _, t := range ts {
		n += t.Spans
	}
	return n
}

func readTraces(ctx context.Context, st *tracestore.Store, refs []tracestore.TraceRef) ([]shownTrace, error) {
	var out []shownTrace
	for _, ref := range refs {
		spans, err := st.Spans(ctx, ref.TraceID)
		if err != nil {
			return nil, err
		}
		if len(spans) == 0 {
			continue
		}
		t := shownTrace{TraceID: ref.TraceID, Kind: "notification", Spans: len(spans), Tree: tracestore.Tree(spans)}
		t.Start = spans[0].Start
		end := t.Start
		for _, sp := range spans {
			if sp.Start.Before(t.Start) {
				t.Start = sp.Start
			}
			if e := sp.Start.Add(sp.Duration); e.After(end) {
				end = e
			}
			// The webhook receiver's request span says what it made of
			// the webhook: that trace is a webhook's.
			if sp.Attributes["wanotify.webhook.outcome"] != "" && sp.ParentSpanID == "" {
				t.Kind, t.LinkedBy = "webhook", tracestore.AttrNotificationID
			}
		}
		t.Duration = end.Sub(t.Start)
		out = append(out, t)
	}
	return out, nil
}

func printTraces(app *App, id string, traces []shownTrace) error {
	if len(traces) == 0 {
		return fmt.Errorf("%w: no spans of %s in otel_traces (do the services export to the trace store: WANOTIFY_OTLP_ENDPOINT? spans arrive about every 5 s; try --wait 15s)", ErrNotFound, id)
	}
	return app.Print(map[string]any{"id": id, "traces": traces}, func(w *tabwriter.Writer) {
		_ = w.Flush()
		webhooks := 0
		for _, t := range traces {
			if t.Kind == "webhook" {
				webhooks++
			}
		}
		fmt.Fprintf(app.Out, "%s: %d trace(s), %d of them webhook traces linked by %s\n", id, len(traces), webhooks, tracestore.AttrNotificationID)
		for _, t := range traces {
			title := "trace"
			if t.Kind == "webhook" {
				title = "webhook trace (linked by " + t.LinkedBy + ")"
			}
			fmt.Fprintf(app.Out, "\n%s %s: %d spans, %s, started %s\n", title, t.TraceID, t.Spans,
				tracestore.FormatDuration(t.Duration), t.Start.UTC().Format("2006-01-02 15:04:05.000"))
			_ = tracestore.Render(app.Out, t.Tree)
		}
	})
}
