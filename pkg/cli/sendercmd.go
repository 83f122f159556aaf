package cli

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/wanotify/wanotify/pkg/dispatcher/halt"
	"github.com/wanotify/wanotify/pkg/senders"
)

func init() { extraCommands = append(extraCommands, newSenderCmd) }

// ctlInstance is who notifyctl's writes to the sender state table are by.
const ctlInstance = "notifyctl"

// senderRegistry loads the sender registry the dispatchers use
// (WANOTIFY_SENDERS_FILE / WANOTIFY_SENDERS).
func (a *App) senderRegistry() (*senders.Registry, error) {
	reg := senders.Load(a.Env)
	if err := a.Env.Err(); err != nil {
		return nil, &UsageError{err}
	}
	return reg, nil
}

// senderStates opens the sender state table and reads it to its end.
// Close the returned store.
func (a *App) senderStates(ctx context.Context) (*halt.Store, error) {
	opts, err := a.KafkaOpts()
	if err != nil {
		return nil, err
	}
	st, err := halt.New(halt.Config{Opts: opts, Instance: ctlInstance})
	if err != nil {
		return nil, err
	}
	if err := st.Start(ctx); err != nil {
		st.Close()
		return nil, err
	}
	return st, nil
}

// senderView is one row of sender list.
type senderView struct {
	Name       string `json:"name"`
	Registered bool   `json:"registered"`
	// Rate is the configured rate (messages/s across all dispatchers):
	// as the dispatchers report it, else the registry's; nil when the
	// registry sets none and no dispatcher reports (the dispatchers'
	// WANOTIFY_DISPATCHER_RATE applies).
	Rate       *float64   `json:"rate"`
	State      string     `json:"state"`
	Halted     bool       `json:"halted"`
	Code       string     `json:"code,omitempty"`
	Message    string     `json:"message,omitempty"`
	Since      *time.Time `json:"since,omitempty"`
	By         string     `json:"by,omitempty"`
	ProbeAfter *time.Time `json:"probe_after,omitempty"`
	Breaker    string     `json:"breaker"`
	Queued     int        `json:"queued"`
	// Held counts the sender's records waiting on notifications.held
	// (nil when it could not be read).
	Held      *int             `json:"held"`
	Instances []instanceReport `json:"instances"`
}

// instanceReport is one dispatcher instance's live report on a sender.
type instanceReport struct {
	Instance string    `json:"instance"`
	At       time.Time `json:"at"`
	Share    float64   `json:"share"`
	Breaker  string    `json:"breaker"`
	Queued   int       `json:"queued"`
}

// breakerRank orders breaker states, worst last.
var breakerRank = map[string]int{"closed": 1, "half-open": 2, "open": 3}

func senderViews(reg *senders.Registry, states []halt.State, reports []halt.Report, held map[string]int) []senderView {
	byName := map[string]*senderView{}
	var order []string
	add := func(name string, registered bool) *senderView {
		v := byName[name]
		if v == nil {
			v = &senderView{Name: name, Registered: registered, State: halt.StateRunning, Instances: []instanceReport{}}
			byName[name] = v
			order = append(order, name)
		}
		return v
	}
	for _, s := range reg.Senders() {
		v := add(s.Name, true)
		if s.Rate > 0 {
			r := s.Rate
			v.Rate = &r
		}
	}
	for _, st := range states {
		v := byName[st.Sender]
		if v == nil && !st.Halted() {
			continue
		}
		if v == nil {
			// Halted but no longer in the registry: shown, so a halt
			// left behind is not forgotten.
			v = add(st.Sender, false)
		}
		v.State, v.Halted, v.By = st.State, st.Halted(), st.By
		if st.Halted() {
			since := st.Since.UTC()
			v.Code, v.Message, v.Since = st.Code, st.Message, &since
			if st.ProbeAfter != nil {
				p := st.ProbeAfter.UTC()
				v.ProbeAfter = &p
			}
		}
	}
	for name, n := range held {
		if v := byName[name]; v != nil {
			v.Held = &n
		}
	}
	for _, r := range reports {
		v := byName[r.Sender]
		if v == nil {
			continue
		}
		v.Instances = append(v.Instances, instanceReport{Instance: r.Instance, At: r.At.UTC(), Share: r.Share, Breaker: r.Breaker, Queued: r.Queued})
		v.Queued += r.Queued
		if r.Rate > 0 {
			rate := r.Rate
			v.Rate = &rate
		}
		if breakerRank[r.Breaker] > breakerRank[v.Breaker] {
			v.Breaker = r.Breaker
		}
	}
	sort.Strings(order)
	out := make([]senderView, 0, len(order))
	for _, n := range order {
		v := byName[n]
		if v.Breaker == "" {
			v.Breaker = "unknown"
		}
		if v.Held == nil && held != nil {
			zero := 0
			v.Held = &zero
		}
		out = append(out, *v)
	}
	return out
}

func newSenderCmd(app *App) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sender",
		Short: "Show senders' state (rate, breaker, halts, queued) and resume halted senders",
		Long: `An account fault (an expired token, a payment problem, a policy block: the
account_fault rows of docs/provider-errors.md) halts the sender on every
dispatcher: its records wait in Kafka, nothing is failed or dead-lettered, and
one probe notification per WANOTIFY_DISPATCHER_HALT_PROBE_INTERVAL tests the
account. The state is in the compacted topic notifications.senders.
docs/senders.md explains halts, probes and resuming.`,
		Example: `  notifyctl sender list
  notifyctl sender list -o json
  notifyctl sender resume acme-otp`,
	}
	list := &cobra.Command{
		Use:   "list",
		Short: "List every sender of the registry with its rate, breaker, halt and queued records",
		Long: `list shows every sender of the sender registry (WANOTIFY_SENDERS_FILE or
WANOTIFY_SENDERS, as the dispatchers read it), and any sender still halted that
the registry no longer lists:

  RATE      configured messages/s across all dispatchers
  BREAKER   the worst circuit breaker state any dispatcher reports
  STATE     running, or halted with the account fault (WHY), since when,
            by which dispatcher, and when the next probe may go
  QUEUED    records the dispatchers hold in memory for the sender, summed
            over the instances that reported in the last 30 s (INSTANCES)
  HELD      records of the sender waiting on notifications.held (a halted
            sender's), counted from the dispatchers' committed offsets
            (WANOTIFY_DISPATCHER_GROUP) to the topic's end; "?" when it
            could not be read (the reason goes to standard error)

Dispatchers report every 5 s; a dispatcher that stopped cleanly withdraws its
reports at once, one that crashed drops out after 30 s.`,
		Example: `  notifyctl sender list
  notifyctl sender list -o json | jq '.[] | select(.halted)'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			reg, err := app.senderRegistry()
			if err != nil {
				return err
			}
			ctx, cancel := app.Context(cmd)
			defer cancel()
			st, err := app.senderStates(ctx)
			if err != nil {
				return err
			}
			defer st.Close()
			opts, err := app.KafkaOpts()
			if err != nil {
				return err
			}
			held, err := heldBySender(ctx, opts, app.DispatcherGroup)
			if err != nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "notifyctl: held records not counted: %v\n", err)
				held = nil
			}
			views := senderViews(reg, st.States(), st.Reports(time.Now()), held)
			return app.Print(views, func(w *tabwriter.Writer) { printSenders(w, views) })
		},
	}
	resume := &cobra.Command{
		Use:   "resume <sender>",
		Short: "Resume a halted sender on every dispatcher at once",
		Long: `resume writes the sender's resume to the sender state table
(notifications.senders); every dispatcher reads it within about a second and
sends the sender's waiting records at its rate. Resume once the account is
fixed: if it is not, the next call fails with the account fault again and
halts the sender again (one call spent, nothing dead-lettered).

The sender must be in the sender registry. Resuming a sender that is not
halted writes the resume anyway (a dispatcher may know of a halt this command
has not read yet) and says so.`,
		Example: `  notifyctl sender resume acme-otp
  notifyctl sender resume acme-otp -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			reg, err := app.senderRegistry()
			if err != nil {
				return err
			}
			if _, ok := reg.Sender(name); !ok {
				return fmt.Errorf("%w: sender %q is not in the sender registry (%s)", ErrNotFound, name, reg.Source())
			}
			ctx, cancel := app.Context(cmd)
			defer cancel()
			st, err := app.senderStates(ctx)
			if err != nil {
				return err
			}
			defer st.Close()
			why, since, halted := st.Halted(name)
			if err := st.Resume(ctx, name, ctlInstance); err != nil {
				return err
			}
			out := resumeView{Sender: name, WasHalted: halted, ResumedAt: time.Now().UTC()}
			if halted {
				s := since.UTC()
				out.Code, out.Message, out.HaltedSince = why.Code, why.Message, &s
			}
			return app.Print(out, func(w *tabwriter.Writer) {
				if !halted {
					printf(w, "sender %s was not halted; its resume is written anyway\n", name)
					return
				}
				printf(w, "sender %s resumed (halted since %s by %s); the dispatchers release its records within about a second\n",
					name, since.UTC().Format(time.RFC3339), why)
			})
		},
	}
	cmd.AddCommand(list, resume)
	return cmd
}

// resumeView is what sender resume prints.
type resumeView struct {
	Sender      string     `json:"sender"`
	WasHalted   bool       `json:"was_halted"`
	Code        string     `json:"code,omitempty"`
	Message     string     `json:"message,omitempty"`
	HaltedSince *time.Time `json:"halted_since,omitempty"`
	ResumedAt   time.Time  `json:"resumed_at"`
}

func printSenders(w *tabwriter.Writer, views []senderView) {
	fmt.Fprintln(w, "SENDER\tRATE\tBREAKER\tSTATE\tSINCE\tBY\tNEXT PROBE\tQUEUED\tHELD\tINSTANCES\tWHY")
	for _, v := range views {
		name := v.Name
		if !v.Registered {
			name += " (not registered)"
		}
		rate := "default"
		if v.Rate != nil {
			rate = strconv.FormatFloat(*v.Rate, 'f', -1, 64) + "/s"
		}
		since, probe, by, why := "-", "-", "-", "-"
		if v.Halted {
			since, by = v.Since.Format(time.RFC3339), v.By
			if v.ProbeAfter != nil {
				probe = v.ProbeAfter.Format(time.RFC3339)
			}
			why = halt.Reason{Code: v.Code, Message: v.Message}.String()
		}
		held := "?"
		if v.Held != nil {
			held = strconv.Itoa(*v.Held)
		}
		printf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%d\t%s\n", name, rate, v.Breaker, v.State, since, by, probe, v.Queued, held, len(v.Instances), why)
	}
}
