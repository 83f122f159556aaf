package cli

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"
	"golang.org/x/time/rate"

	"github.com/wanotify/wanotify/pkg/cli/dlq"
	"github.com/wanotify/wanotify/pkg/phone"
)

func init() { extraCommands = append(extraCommands, newDLQCmd) }

func newDLQCmd(app *App) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dlq",
		Short: "Inspect, replay and purge the dead-letter queue (notifications.dlq)",
		Long: `The dead-letter queue holds notifications whose attempts were exhausted, that
failed permanently, or that could not be decoded (poison records). Each record
keeps the original value and carries the failure in wanotify-* headers.

A record is named by its notification id, or by partition/offset ("3/1042")
for poison records that have none.`,
		Example: `  notifyctl dlq list --since 2h --tenant acme
  notifyctl dlq show 5b0c8f0e-8a43-5d1e-9a57-0b2c0a6c2d11
  notifyctl dlq replay --error-code meta_131026 --dry-run
  notifyctl dlq purge --before 7d`,
	}
	cmd.AddCommand(newDLQListCmd(app), newDLQShowCmd(app), newDLQReplayCmd(app), newDLQPurgeCmd(app))
	return cmd
}

// filterFlags are the selection flags list and replay share.
type filterFlags struct {
	since, until string
	tenants      []string
	eventTypes   []string
	errorCodes   []string
	reasons      []string
	partitions   []int32
}

func (ff *filterFlags) add(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&ff.since, "since", "", "only records that landed at or after this time (RFC 3339, 2026-11-28, or an age: 30m, 2h, 7d)")
	f.StringVar(&ff.until, "until", "", "only records that landed before this time (same forms as --since)")
	f.StringSliceVar(&ff.tenants, "tenant", nil, "only these tenants (repeat or comma-separate)")
	f.StringSliceVar(&ff.eventTypes, "event-type", nil, "only these event types")
	f.StringSliceVar(&ff.errorCodes, "error-code", nil, "only these last error codes (e.g. meta_131026, http_503)")
	f.StringSliceVar(&ff.reasons, "reason", nil, "only these DLQ reasons: exhausted, permanent, poison")
	f.Int32SliceVar(&ff.partitions, "partition", nil, "only these partitions")
}

func (ff *filterFlags) filter(now time.Time) (dlq.Filter, error) {
	var f dlq.Filter
	var err error
	if f.Since, err = parseWhen(ff.since, now); err != nil {
		return f, &UsageError{fmt.Errorf("--since: %w", err)}
	}
	if f.Until, err = parseWhen(ff.until, now); err != nil {
		return f, &UsageError{fmt.Errorf("--until: %w", err)}
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Since.Before(f.Until) {
		return f, &UsageError{errors.New("--since must be before --until")}
	}
	for _, r := range ff.reasons {
		switch r {
		case "exhausted", "permanent", "poison":
		default:
			return f, &UsageError{fmt.Errorf("--reason: %q is not exhausted, permanent or poison", r)}
		}
	}
	for _, p := range ff.partitions {
		if p < 0 {
			return f, &UsageError{fmt.Errorf("--partition: %d is negative", p)}
		}
	}
	f.Tenants, f.EventTypes, f.ErrorCodes, f.Reasons, f.Partitions = ff.tenants, ff.eventTypes, ff.errorCodes, ff.reasons, ff.partitions
	return f, nil
}

// recordView is how a DLQ record is shown in lists.
type recordView struct {
	ID             string     `json:"id"`
	Topic          string     `json:"topic"`
	Partition      int32      `json:"partition"`
	Offset         int64      `json:"offset"`
	LandedAt       time.Time  `json:"landed_at"`
	FailedAt       *time.Time `json:"failed_at,omitempty"`
	FirstFailedAt  *time.Time `json:"first_failed_at,omitempty"`
	NotificationID string     `json:"notification_id,omitempty"`
	Tenant         string     `json:"tenant,omitempty"`
	EventType      string     `json:"event_type,omitempty"`
	Recipient      string     `json:"recipient_masked,omitempty"`
	Reason         string     `json:"reason,omitempty"`
	ErrorCode      string     `json:"error_code,omitempty"`
	ErrorMessage   string     `json:"error_message,omitempty"`
	Retryable      *bool      `json:"retryable,omitempty"`
	Class          string     `json:"class,omitempty"`
	Attempt        int        `json:"attempt"`
	ReplayCount    int        `json:"replay_count"`
	Replayable     string     `json:"replayable"`
	// ReplayLookup tells whether the lanes' topics were read for
	// replays of this record (ReplayCount and Replayable count them).
	ReplayLookup *bool       `json:"replay_lookup,omitempty"`
	HeaderError  string      `json:"header_error,omitempty"`
	Replays      []dlq.Mark  `json:"replays,omitempty"`
	OriginTopic  string      `json:"origin_topic,omitempty"`
	Origin       *originView `json:"origin,omitempty"`
}

type originView struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
}

func viewOf(topic string, r *dlq.Record) recordView {
	v := recordView{ID: r.Ref.String(), Topic: topic, Partition: r.Partition, Offset: r.Offset, LandedAt: r.Timestamp.UTC(),
		NotificationID: r.NotificationID(), Tenant: r.Tenant(), EventType: r.EventType(),
		Reason: r.Reason(), ErrorCode: r.ErrorCode(), ReplayCount: r.ReplayCount(), Replayable: replayable(r)}
	if len(r.Key) > 0 {
		v.Recipient = phone.Mask(string(r.Key))
	}
	if f := r.Failure; f != nil {
		fa := f.FailedAt.UTC()
		v.FailedAt = &fa
		if !f.FirstFailedAt.IsZero() {
			ff := f.FirstFailedAt.UTC()
			v.FirstFailedAt = &ff
		}
		retryable := f.Error.Retryable
		v.ErrorMessage, v.Retryable, v.Class, v.Attempt = f.Error.Message, &retryable, f.Class, f.Attempt
		v.Origin = &originView{Topic: f.Origin.Topic, Partition: f.Origin.Partition, Offset: f.Origin.Offset}
	} else if r.FailureErr != nil {
		v.HeaderError = r.FailureErr.Error()
	}
	return v
}

func replayable(r *dlq.Record) string {
	switch {
	case r.Failure == nil:
		return "with --force (failure headers unreadable)"
	case r.Poison():
		return "with --force (poison)"
	case r.Permanent():
		return "with --force (permanent error)"
	}
	return "yes"
}

func newDLQListCmd(app *App) *cobra.Command {
	var (
		ff          filterFlags
		limit, page int
		withReplays bool
		noLookup    bool
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List dead-lettered records, oldest first, with filters and paging",
		Long: `list reads notifications.dlq as it is when the command starts and shows the
records the filters select, oldest first (by the time they landed on the DLQ).
Filters combine with AND; a filter given several values matches any of them.

Columns: ID (partition/offset), when it landed, tenant, event type,
notification id, DLQ reason, last error code, attempts made, how many replays
its lineage went through (earlier ones, counted in the record's headers, and
the replays of this record found on the lanes' topics), whether "dlq
replay" would replay it now (yes; with --again once already replayed; with
--force for a permanent error or a poison record), and where its replays went.

Finding replays reads the lanes' topics (notifications.critical, .requested
and .bulk: a replay goes to its notification's lane) from the time the oldest listed
record landed on the DLQ (only their partitions); --no-replay-lookup skips that
and shows only what the records' own headers say (REPLAYS then ends in "?").`,
		Example: `  notifyctl dlq list
  notifyctl dlq list --since 2h --tenant acme --error-code meta_131047
  notifyctl dlq list --reason poison -o json
  notifyctl dlq list --since 2026-11-28T00:00:00Z --until 2026-11-29 --limit 100 --page 2
  notifyctl dlq list --no-replay-lookup    # faster on a huge notifications.requested; REPLAYS from headers only`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := ff.filter(time.Now())
			if err != nil {
				return err
			}
			if limit < 1 || page < 1 {
				return &UsageError{errors.New("--limit and --page must be at least 1")}
			}
			ctx, cancel := app.Context(cmd)
			defer cancel()
			st, err := app.DLQ()
			if err != nil {
				return err
			}
			defer st.Close()
			recs, err := st.List(ctx, f)
			if err != nil {
				return err
			}
			total := len(recs)
			pages := (total + limit - 1) / limit
			lo := min((page-1)*limit, total)
			hi := min(lo+limit, total)
			recs = recs[lo:hi]
			var plan *dlq.Plan
			if !noLookup {
				// What `dlq replay` with the same selection would decide.
				if plan, err = st.PlanReplay(ctx, recs, dlq.ReplayOptions{}); err != nil {
					return err
				}
			}
			views := make([]recordView, 0, len(recs))
			for i, r := range recs {
				v := viewOf(st.DLQ, r)
				if plan != nil {
					withReplayTruth(&v, plan.Items[i])
				}
				views = append(views, v)
			}
			out := map[string]any{"total": total, "page": page, "pages": pages, "limit": limit, "records": views}
			if page < pages {
				out["next_page"] = page + 1
			}
			return app.Print(out, func(w *tabwriter.Writer) {
				if total == 0 {
					fmt.Fprintln(w, "no DLQ records match")
					return
				}
				hdr := "ID\tLANDED (UTC)\tTENANT\tEVENT TYPE\tNOTIFICATION\tREASON\tERROR\tATTEMPTS\tREPLAYS\tREPLAYABLE"
				if !noLookup {
					hdr += "\tREPLAYED TO"
				}
				fmt.Fprintln(w, hdr)
				for _, v := range views {
					count := strconv.Itoa(v.ReplayCount)
					if noLookup {
						count += "?"
					}
					line := sprintf("%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s", v.ID, v.LandedAt.Format("2006-01-02 15:04:05"),
						dash(v.Tenant), dash(v.EventType), dash(v.NotificationID), dash(v.Reason), dash(v.ErrorCode),
						v.Attempt, count, v.Replayable)
					if !noLookup {
						var to []string
						for _, m := range v.Replays {
							to = append(to, fmt.Sprintf("%d/%d", m.Partition, m.Offset))
						}
						line += "\t" + dash(strings.Join(to, " "))
					}
					fmt.Fprintln(w, line)
				}
				fmt.Fprintf(w, "\n%d-%d of %d (page %d of %d)", lo+1, hi, total, page, pages)
				if page < pages {
					fmt.Fprintf(w, "; next: --page %d", page+1)
				}
				fmt.Fprintln(w)
			})
		},
	}
	ff.add(cmd)
	cmd.Flags().IntVar(&limit, "limit", 50, "records per page")
	cmd.Flags().IntVar(&page, "page", 1, "page to show (1 is the oldest)")
	cmd.Flags().BoolVar(&noLookup, "no-replay-lookup", false, "do not read notifications.requested for replays: REPLAYS shows only what the records' headers say")
	// Replays are looked up by default now; the old switch is still
	// accepted (hidden, and silent: scripts parse -o json from stdout).
	cmd.Flags().BoolVar(&withReplays, "with-replays", true, "look up replays (the default)")
	_ = cmd.Flags().MarkHidden("with-replays")
	return cmd
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

type headerView struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

type shownRecord struct {
	recordView
	Key          string          `json:"key"`
	Headers      []headerView    `json:"headers"`
	Payload      json.RawMessage `json:"payload,omitempty"`
	PayloadText  string          `json:"payload_text,omitempty"`
	PayloadB64   string          `json:"payload_base64,omitempty"`
	PayloadError string          `json:"payload_error,omitempty"`
}

func showRecord(topic string, r *dlq.Record) shownRecord {
	s := shownRecord{recordView: viewOf(topic, r), Key: string(r.Key)}
	for _, h := range r.Headers {
		s.Headers = append(s.Headers, headerView{h.Key, string(h.Value)})
	}
	switch {
	case json.Valid(r.Value):
		s.Payload = json.RawMessage(r.Value)
	case utf8.Valid(r.Value):
		s.PayloadText = string(r.Value)
	default:
		s.PayloadB64 = base64.StdEncoding.EncodeToString(r.Value)
	}
	if _, err := r.Notification(); err != nil {
		s.PayloadError = err.Error()
	}
	return s
}

func newDLQShowCmd(app *App) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "show <notification-id | partition/offset>",
		Short: "Show one dead-lettered record: payload, every header and the error history",
		Long: `show prints a DLQ record in full: the payload, every header, and the error
history of its notification: each failed attempt still on a retry topic (they
keep records for a day), each time it landed on the DLQ, and each replay.

A notification that was replayed and failed again has several DLQ records; the
newest is shown, the others appear in the history. For the status timeline
recorded in ClickHouse, use "notifyctl status <id>".`,
		Example: `  notifyctl dlq show 5b0c8f0e-8a43-5d1e-9a57-0b2c0a6c2d11
  notifyctl dlq show 3/1042              # a poison record without a notification id
  notifyctl dlq show 3/1042 -o json | jq .payload`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := app.Context(cmd)
			defer cancel()
			st, err := app.DLQ()
			if err != nil {
				return err
			}
			defer st.Close()
			if _, _, err := dlq.ParseRef(args[0]); err != nil {
				return &UsageError{err}
			}
			recs, err := st.Find(ctx, args[0])
			if err != nil {
				return err
			}
			hist, err := st.History(ctx, recs)
			if err != nil {
				return err
			}
			cur := recs[len(recs)-1]
			shown := showRecord(st.DLQ, cur)
			plan, err := st.PlanReplay(ctx, []*dlq.Record{cur}, dlq.ReplayOptions{})
			if err != nil {
				return err
			}
			withReplayTruth(&shown.recordView, plan.Items[0])
			var others []string
			for _, r := range recs[:len(recs)-1] {
				others = append(others, r.Ref.String())
			}
			out := map[string]any{"record": shown, "history": hist}
			if len(others) > 0 {
				out["earlier_dlq_records"] = others
			}
			return app.Print(out, func(w *tabwriter.Writer) { printShown(w, st.DLQ, shown, others, hist) })
		},
	}
	return cmd
}

func printShown(w *tabwriter.Writer, topic string, s shownRecord, others []string, hist []dlq.Event) {
	printf(w, "Record\t%s %s (landed %s)\n", topic, s.ID, s.LandedAt.Format(time.RFC3339))
	printf(w, "Notification\t%s\n", dash(s.NotificationID))
	printf(w, "Tenant / event type\t%s / %s\n", dash(s.Tenant), dash(s.EventType))
	printf(w, "Recipient (key)\t%s\n", dash(s.Key))
	printf(w, "Reason\t%s\n", dash(s.Reason))
	retry := "-"
	if s.Retryable != nil {
		retry = strconv.FormatBool(*s.Retryable)
	}
	printf(w, "Last error\t%s (retryable %s, class %s): %s\n", dash(s.ErrorCode), retry, dash(s.Class), dash(s.ErrorMessage))
	printf(w, "Attempts\t%d\n", s.Attempt)
	if s.FirstFailedAt != nil {
		printf(w, "First failed at\t%s\n", s.FirstFailedAt.Format(time.RFC3339))
	}
	if s.Origin != nil {
		printf(w, "Origin\t%s %d/%d\n", s.Origin.Topic, s.Origin.Partition, s.Origin.Offset)
	}
	printf(w, "Replays so far\t%d\n", s.ReplayCount)
	printf(w, "Replayable\t%s\n", s.Replayable)
	if s.HeaderError != "" {
		printf(w, "Header problem\t%s\n", s.HeaderError)
	}
	if len(others) > 0 {
		printf(w, "Earlier DLQ records\t%s\n", strings.Join(others, " "))
	}
	_ = w.Flush()
	fmt.Fprintln(w, "\nHeaders:")
	for _, h := range s.Headers {
		printf(w, "  %s\t%s\n", h.Key, h.Value)
	}
	_ = w.Flush()
	fmt.Fprintln(w, "\nPayload:")
	switch {
	case s.Payload != nil:
		var buf bytes.Buffer
		if json.Indent(&buf, s.Payload, "  ", "  ") == nil {
			fmt.Fprintf(w, "  %s\n", buf.String()) // indented JSON: its line breaks are layout; the terminalWriter escapes the rest
		}
	case s.PayloadText != "":
		fmt.Fprintf(w, "  %q\n", s.PayloadText)
	default:
		printf(w, "  (binary, base64) %s\n", s.PayloadB64)
	}
	if s.PayloadError != "" {
		printf(w, "  not a valid notification: %s\n", s.PayloadError)
	}
	_ = w.Flush()
	fmt.Fprintln(w, "\nError history:")
	fmt.Fprintln(w, "  TIME (UTC)\tEVENT\tWHERE\tATTEMPT\tERROR\tRETRYABLE\tDETAIL")
	for _, e := range hist {
		retry := "-"
		if e.Retryable != nil {
			retry = strconv.FormatBool(*e.Retryable)
		}
		detail := e.ErrorMessage
		switch e.Kind {
		case dlq.KindDeadLettered:
			detail = strings.TrimSpace("reason " + e.Reason + "; " + e.ErrorMessage)
		case dlq.KindReplayed:
			detail = fmt.Sprintf("%s (replay #%d)", e.Reason, e.ReplayCount)
		}
		attempt := "-"
		if e.Attempt > 0 {
			attempt = strconv.Itoa(e.Attempt)
		}
		printf(w, "  %s\t%s\t%s %d/%d\t%s\t%s\t%s\t%s\n", e.Time.UTC().Format("2006-01-02 15:04:05.000"), e.Kind,
			e.Topic, e.Partition, e.Offset, attempt, dash(e.ErrorCode), retry, dash(detail))
	}
}

// errIncomplete marks a replay that left records behind (refused or
// failed); the summary says which.
var errIncomplete = errors.New("replay incomplete")

type replayItemView struct {
	ID             string    `json:"id"`
	NotificationID string    `json:"notification_id,omitempty"`
	Tenant         string    `json:"tenant,omitempty"`
	ErrorCode      string    `json:"error_code,omitempty"`
	Decision       string    `json:"decision"`
	Why            string    `json:"why,omitempty"`
	ReplayCount    int       `json:"replay_count,omitempty"`
	Replayed       *dlq.Mark `json:"replayed_to,omitempty"`
	Error          string    `json:"error,omitempty"`
}

func newDLQReplayCmd(app *App) *cobra.Command {
	var (
		ff                        filterFlags
		all, force, again, dryRun bool
		ratePerSec                float64
		limit                     int
	)
	cmd := &cobra.Command{
		Use:   "replay [notification-id | partition/offset ...]",
		Short: "Send dead-lettered records back to notifications.requested, rate-limited",
		Long: `replay reprocesses DLQ records: one or more named by id, the set the filters
select, or --all. Each is produced to notifications.requested with its original
value and key, to the same partition number, without the failure headers, and
with lineage headers: wanotify-replay-count (previous + 1) and
wanotify-replayed-from-offset (the DLQ offset).

Nothing is sent twice:
  - a DLQ record that an earlier replay already covered (found on
    notifications.requested by its wanotify-replayed-from-offset header) is
    skipped unless --again;
  - only the newest DLQ record of a notification is replayed;
  - the dispatcher sends a replayed notification only if its last outcome was
    a failure; one the provider already accepted is recorded as a duplicate.

Records whose last error was permanent (invalid number, template rejected,
outside the 24 h window) are refused unless --force: fix the cause first.
Poison records (not a valid notification) are refused unless --force, because
the dispatcher would dead-letter them again.

Exit status: 0 when every selected record was replayed or skipped as already
replayed or superseded; 1 when any was refused or could not be produced (the
summary lists them); 3 when an id names no DLQ record.`,
		Example: `  notifyctl dlq replay 5b0c8f0e-8a43-5d1e-9a57-0b2c0a6c2d11
  notifyctl dlq replay --tenant acme --error-code http_503 --since 2h --dry-run
  notifyctl dlq replay --tenant acme --error-code http_503 --since 2h --rate 50
  notifyctl dlq replay --reason permanent --error-code meta_132001 --force   # after fixing the template
  notifyctl dlq replay --all --limit 10                                    # a canary of ten first`,
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := ff.filter(time.Now())
			if err != nil {
				return err
			}
			f.IDs = args
			if err := f.Validate(); err != nil {
				return &UsageError{err}
			}
			if f.Empty() && !all {
				return &UsageError{errors.New("say what to replay: ids, filters (--tenant, --error-code, --since, ...) or --all")}
			}
			if all && len(args) > 0 {
				return &UsageError{errors.New("--all and ids exclude each other")}
			}
			if !(ratePerSec > 0) {
				return &UsageError{fmt.Errorf("--rate: %v must be positive", ratePerSec)}
			}
			if limit < 0 {
				return &UsageError{errors.New("--limit must not be negative")}
			}
			ctx, cancel := app.Context(cmd)
			defer cancel()
			st, err := app.DLQ()
			if err != nil {
				return err
			}
			defer st.Close()
			recs, err := st.List(ctx, f)
			if err != nil {
				return err
			}
			var missing []string
			for _, id := range args {
				hit := false
				for _, r := range recs {
					if r.MatchesID(id) {
						hit = true
						break
					}
				}
				if !hit {
					missing = append(missing, id)
				}
			}
			if len(missing) > 0 {
				return fmt.Errorf("%w: %s", dlq.ErrNotFound, strings.Join(missing, ", "))
			}
			plan, err := st.PlanReplay(ctx, recs, dlq.ReplayOptions{Force: force, Again: again})
			if err != nil {
				return err
			}
			if limit > 0 {
				n := 0
				for _, it := range plan.Items {
					if it.Decision == dlq.Replay {
						if n >= limit {
							it.Decision, it.Why = "not_selected", fmt.Sprintf("beyond --limit %d", limit)
						}
						n++
					}
				}
			}
			var failed int
			var rerr error
			if !dryRun {
				lim := rate.NewLimiter(rate.Limit(ratePerSec), 1)
				failed, rerr = st.Replay(ctx, plan, lim, nil)
			}
			return reportReplay(app, plan, dryRun, failed, rerr)
		},
	}
	ff.add(cmd)
	f := cmd.Flags()
	f.BoolVar(&all, "all", false, "replay every record of the DLQ (still subject to the refusals and skips)")
	f.BoolVar(&force, "force", false, "also replay records whose last error was permanent, and poison records")
	f.BoolVar(&again, "again", false, "also replay records an earlier replay already covered")
	f.BoolVar(&dryRun, "dry-run", false, "show what would be replayed, skipped and refused; produce nothing")
	f.Float64Var(&ratePerSec, "rate", 20, "replays per second at most")
	f.IntVar(&limit, "limit", 0, "replay at most this many (oldest first); 0: no limit")
	return cmd
}

func reportReplay(app *App, plan *dlq.Plan, dryRun bool, failed int, rerr error) error {
	counts := map[string]int{}
	views := make([]replayItemView, 0, len(plan.Items))
	var left int
	for _, it := range plan.Items {
		v := replayItemView{ID: it.Record.Ref.String(), NotificationID: it.Record.NotificationID(), Tenant: it.Record.Tenant(),
			ErrorCode: it.Record.ErrorCode(), Decision: string(it.Decision), Why: it.Why, Replayed: it.Replayed}
		switch {
		case it.Decision == dlq.Replay && dryRun:
			v.Decision = "would_replay"
			v.ReplayCount = it.ReplayCount
		case it.Decision == dlq.Replay && it.Err != nil:
			v.Decision, v.Error = "failed", it.Err.Error()
			left++
		case it.Decision == dlq.Replay && it.Replayed == nil:
			v.Decision, v.Why = "not_done", "the replay was interrupted before this record"
			left++
		case it.Decision == dlq.Replay:
			v.Decision = "replayed"
			v.ReplayCount = it.ReplayCount
		case it.Decision.Refused():
			left++
		}
		counts[v.Decision]++
		views = append(views, v)
	}
	summary := summarize(counts)
	err := app.Print(map[string]any{"dry_run": dryRun, "selected": len(plan.Items), "counts": counts, "items": views}, func(w *tabwriter.Writer) {
		if len(views) == 0 {
			fmt.Fprintln(w, "no DLQ records match: nothing to replay")
			return
		}
		fmt.Fprintln(w, "ID\tNOTIFICATION\tTENANT\tERROR\tRESULT\tDETAIL")
		for i, v := range views {
			detail := v.Why
			if v.Replayed != nil {
				detail = fmt.Sprintf("-> notifications.requested %d/%d (replay #%d)", v.Replayed.Partition, v.Replayed.Offset, v.ReplayCount)
			} else if v.Decision == "would_replay" {
				detail = fmt.Sprintf("-> notifications.requested partition %d (replay #%d)", plan.Items[i].Record.Partition, v.ReplayCount)
			} else if v.Error != "" {
				detail = v.Error
			}
			printf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", v.ID, dash(v.NotificationID), dash(v.Tenant), dash(v.ErrorCode), v.Decision, dash(detail))
		}
		if dryRun {
			fmt.Fprintf(w, "\ndry run, nothing produced: %s\n", summary)
		} else {
			fmt.Fprintf(w, "\n%s\n", summary)
		}
	})
	if err != nil {
		return err
	}
	if rerr != nil {
		return rerr
	}
	if failed > 0 || left > 0 {
		return fmt.Errorf("%w: %s", errIncomplete, summary)
	}
	return nil
}

func summarize(counts map[string]int) string {
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%d %s", counts[k], strings.ReplaceAll(k, "_", " ")))
	}
	if len(parts) == 0 {
		return "nothing selected"
	}
	return strings.Join(parts, ", ")
}

func records(n int64) string {
	if n == 1 {
		return "1 record"
	}
	return fmt.Sprintf("%d records", n)
}

// errCancelled is returned when an operator does not confirm a purge.
var errCancelled = errors.New("purge cancelled: nothing deleted")

func newDLQPurgeCmd(app *App) *cobra.Command {
	var (
		before      string
		partitions  []int32
		yes, dryRun bool
	)
	cmd := &cobra.Command{
		Use:   "purge",
		Short: "Delete old records from the DLQ (after confirmation)",
		Long: `purge deletes records from notifications.dlq. Kafka cannot delete single
records: purge moves each partition's start forward, deleting every record
before a point, either all records present now or those that landed before
--before. Records that land while purge runs are kept.

purge shows what it would delete and asks for confirmation: type "yes". Any
other answer, or no answer, deletes nothing and exits with status 1. --yes
skips the question (for scripts); --dry-run only shows the plan.`,
		Example: `  notifyctl dlq purge --before 7d
  notifyctl dlq purge --before 2026-11-01 --yes
  notifyctl dlq purge --dry-run
  notifyctl dlq purge --partition 3 --before 24h`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			b, err := parseWhen(before, time.Now())
			if err != nil {
				return &UsageError{fmt.Errorf("--before: %w", err)}
			}
			ctx, cancel := app.Context(cmd)
			defer cancel()
			st, err := app.DLQ()
			if err != nil {
				return err
			}
			defer st.Close()
			plan, err := st.PlanPurge(ctx, dlq.PurgeOptions{Before: b, Partitions: partitions})
			if err != nil {
				return err
			}
			purged := false
			printPlan := func() {
				tw := tabwriter.NewWriter(app.Out, 0, 4, 2, ' ', 0)
				what := "every record present now"
				if plan.Before != nil {
					what = "records that landed before " + plan.Before.Format(time.RFC3339)
				}
				fmt.Fprintf(tw, "purge %s from %s: %s\n", what, plan.Topic, records(plan.Records))
				if len(plan.Partitions) > 0 {
					fmt.Fprintln(tw, "PARTITION\tFROM OFFSET\tTO OFFSET\tRECORDS")
					for _, p := range plan.Partitions {
						fmt.Fprintf(tw, "%d\t%d\t%d\t%d\n", p.Partition, p.From, p.To, p.Records)
					}
				}
				_ = tw.Flush()
			}
			result := func() error {
				return app.Print(map[string]any{"plan": plan, "dry_run": dryRun, "purged": purged}, func(w *tabwriter.Writer) {
					switch {
					case plan.Records == 0:
						fmt.Fprintln(w, "nothing to purge")
					case dryRun:
						fmt.Fprintln(w, "dry run: nothing deleted")
					case purged:
						fmt.Fprintf(w, "deleted %s from %s\n", records(plan.Records), plan.Topic)
					}
				})
			}
			if app.Output == "table" {
				printPlan()
			}
			if dryRun || plan.Records == 0 {
				return result()
			}
			if !yes {
				fmt.Fprintf(app.Err, "Delete %s from %s? This cannot be undone. Type yes to continue: ", records(plan.Records), plan.Topic)
				answer := ""
				if app.In != nil {
					answer, _ = bufio.NewReader(app.In).ReadString('\n')
				}
				if !isTerminal(app.In) {
					// Nothing echoed the answer's newline.
					fmt.Fprintln(app.Err)
				}
				if strings.TrimSpace(answer) != "yes" {
					if err := result(); err != nil {
						return err
					}
					return errCancelled
				}
			}
			if err := st.Purge(ctx, plan); err != nil {
				return err
			}
			purged = true
			return result()
		},
	}
	cmd.Flags().StringVar(&before, "before", "", "delete only records that landed before this time (RFC 3339, 2026-11-28, or an age: 24h, 7d); default: all")
	cmd.Flags().Int32SliceVar(&partitions, "partition", nil, "only these partitions")
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "show what would be deleted; delete nothing")
	return cmd
}
