// Package cli is notifyctl, the operator's command line: topics, the
// dead-letter queue, sending, status, stats and synthetic load. It reads
// the same WANOTIFY_* environment as the services (Kafka for everything,
// ClickHouse for status and stats) and prints tables or, with -o json,
// JSON. Exit codes: 0 ok, 1 failed, refused or cancelled, 2 usage or
// configuration, 3 not found.
//
// The dead-letter queue commands are thin wrappers over package
// pkg/cli/dlq, whose documentation states the replay contract: a replay
// produces the DLQ record's original value and key to
// notifications.requested, to the same partition number, without failure
// headers and with wanotify-replay-count (previous + 1) and
// wanotify-replayed-from-offset (the DLQ offset). notifyctl skips DLQ
// offsets an earlier replay already covered (unless --again); the
// dispatcher sends a replayed notification only if its last outcome was
// dead-lettered, so replaying twice never sends twice. send and load build
// records with pkg/sdk (and --file with ingest's own decoder), so they are
// exactly what ingest produces. docs/operator.md walks through a failure,
// its replay and its delivery.
package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wanotify/wanotify/pkg/chconf"
	"github.com/wanotify/wanotify/pkg/cli/dlq"
	"github.com/wanotify/wanotify/pkg/config"
	"github.com/wanotify/wanotify/pkg/kafkaconf"
	"github.com/wanotify/wanotify/pkg/privacy"
	"github.com/wanotify/wanotify/pkg/senders"
)

// Exit codes.
const (
	ExitOK       = 0
	ExitFailure  = 1 // the operation failed
	ExitUsage    = 2 // bad flags, arguments or configuration
	ExitNotFound = 3 // the thing asked about does not exist
)

// UsageError marks errors caused by the caller's input.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// ErrNotFound marks lookups of things that do not exist.
var ErrNotFound = errors.New("not found")

// App carries what every command shares.
type App struct {
	Env    *config.Env
	In     io.Reader // confirmations are read from here
	Out    io.Writer
	Err    io.Writer
	Output string // table or json
	Kafka  kafkaconf.Config
	// PhoneValidation is the recipient rule of send
	// (WANOTIFY_PHONE_VALIDATION: valid or possible).
	PhoneValidation string
	// DispatcherGroup is the dispatchers' consumer group: sender list counts
	// held records from its committed offsets (WANOTIFY_DISPATCHER_GROUP).
	DispatcherGroup string
	// Timeout bounds each command's work against Kafka and ClickHouse
	// (--timeout).
	Timeout time.Duration
}

// NewRoot builds the command tree.
func NewRoot(app *App) *cobra.Command {
	root := &cobra.Command{
		Use:   "notifyctl",
		Short: "Operate wanotify: topics, the dead-letter queue, sending, status and stats",
		Long: `notifyctl operates a wanotify pipeline. It reads the same WANOTIFY_* environment
variables as the services (WANOTIFY_KAFKA_BROKERS, WANOTIFY_CLICKHOUSE_ADDR, ...).

Exit codes: 0 ok, 1 operation failed, 2 usage or configuration error, 3 not found.
docs/operator.md walks through finding, inspecting and replaying a failure.`,
		Example: `  notifyctl topics apply
  notifyctl send --recipient +14155550123 --template otp_code --param 482913
  notifyctl status 5b0c8f0e-8a43-5d1e-9a57-0b2c0a6c2d11
  notifyctl trace 5b0c8f0e-8a43-5d1e-9a57-0b2c0a6c2d11
  notifyctl dlq list --since 2h
  notifyctl dlq replay --tenant acme --error-code http_503 --dry-run
  notifyctl stats --since 24h -o json
  notifyctl sender list
  notifyctl load -n 10000 --rate 500`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if app.Output != "table" && app.Output != "json" {
				return &UsageError{fmt.Errorf("--output: %q is not table or json", app.Output)}
			}
			if err := app.Env.Err(); err != nil {
				return &UsageError{err}
			}
			for _, w := range app.Env.Warnings() {
				printf(app.Err, "notifyctl: warning: %s (%s)\n", w.Message, w.Name)
			}
			return nil
		},
	}
	root.PersistentFlags().StringVarP(&app.Output, "output", "o", "table", "output format: table or json")
	root.PersistentFlags().DurationVar(&app.Timeout, "timeout", 2*time.Minute, "give up on a command after this long")
	root.AddCommand(newTopicsCmd(app))
	for _, add := range extraCommands {
		root.AddCommand(add(app))
	}
	return root
}

// extraCommands lets other files of this package register command groups.
var extraCommands []func(*App) *cobra.Command

// Main runs notifyctl with args and returns the exit code. Confirmations
// are read from os.Stdin.
func Main(args []string, stdout, stderr io.Writer) int {
	return MainIO(args, os.Stdin, stdout, stderr)
}

// MainIO is Main with the confirmation input given.
func MainIO(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	env := config.New(os.LookupEnv, nil)
	app := &App{Env: env, In: stdin, Out: stdout, Err: stderr}
	app.Kafka = kafkaconf.Load(env, "notifyctl")
	app.Kafka.Tracing = false
	app.DispatcherGroup = env.String("WANOTIFY_DISPATCHER_GROUP", "wanotify-dispatcher", "consumer group of the dispatchers")
	app.PhoneValidation = env.String("WANOTIFY_PHONE_VALIDATION", "valid", "recipient check: valid (the number must be in use in its region, libphonenumber's IsValidNumber) or possible (of a possible length only, for numbering plans newer than the library)")
	if len(args) == 1 && args[0] == "--help-markdown" {
		// The variables notifyctl reads, for README's configuration table.
		chconf.Load(env)
		privacy.HashKey(env)
		senders.Load(env)
		fmt.Fprint(stdout, config.Markdown())
		return ExitOK
	}
	root := NewRoot(app)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetIn(stdin)
	// Ctrl-C cancels the command's context: a replay stops between
	// records, a scan stops reading.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := root.ExecuteContext(ctx)
	if err == nil {
		err = env.Err()
	}
	if err == nil {
		return ExitOK
	}
	fmt.Fprintln(stderr, "notifyctl:", Clean(err.Error()))
	var ue *UsageError
	switch {
	case errors.As(err, &ue):
		return ExitUsage
	case errors.Is(err, ErrNotFound), errors.Is(err, dlq.ErrNotFound):
		return ExitNotFound
	case isCobraUsage(err):
		return ExitUsage
	}
	return ExitFailure
}

func isCobraUsage(err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown command", "unknown flag", "unknown shorthand flag", "accepts ", "requires at least", "flag needs an argument", "invalid argument"} {
		if len(msg) >= len(p) && (msg[:len(p)] == p || contains(msg, p)) {
			return true
		}
	}
	return false
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

// KafkaClient opens a client with the shared settings plus opts.
func (a *App) KafkaClient(opts ...kgo.Opt) (*kgo.Client, error) {
	base, err := a.Kafka.Opts()
	if err != nil {
		return nil, &UsageError{err}
	}
	return kgo.NewClient(append(base, opts...)...)
}

// KafkaOpts returns the shared connection options (brokers, TLS, SASL).
func (a *App) KafkaOpts() ([]kgo.Opt, error) {
	base, err := a.Kafka.Opts()
	if err != nil {
		return nil, &UsageError{err}
	}
	return base, nil
}

// DLQ opens the dead-letter queue store.
func (a *App) DLQ() (*dlq.Store, error) {
	opts, err := a.KafkaOpts()
	if err != nil {
		return nil, err
	}
	return dlq.New(opts)
}

// Context bounds a command's work by --timeout.
func (a *App) Context(cmd *cobra.Command) (context.Context, context.CancelFunc) {
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	if a.Timeout > 0 {
		return context.WithTimeout(ctx, a.Timeout)
	}
	return context.WithCancel(ctx)
}

// Print writes v as JSON, or calls table to render it.
//
// Nothing printed can drive the terminal (see Clean): the JSON has every
// control character escaped, and the table passes through a
// terminalWriter.
func (a *App) Print(v any, table func(w *tabwriter.Writer)) error {
	if a.Output == "json" {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetIndent("", "  ")
		if err := enc.Encode(v); err != nil {
			return err
		}
		_, err := a.Out.Write(jsonSafe(buf.Bytes()))
		return err
	}
	out := &terminalWriter{w: a.Out}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	table(tw)
	if err := tw.Flush(); err != nil {
		return err
	}
	return out.Flush()
}
