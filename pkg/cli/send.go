package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wanotify/wanotify/pkg/contract"
	"github.com/wanotify/wanotify/pkg/ingest"
	"github.com/wanotify/wanotify/pkg/phone"
	"github.com/wanotify/wanotify/pkg/sdk"
)

func init() { extraCommands = append(extraCommands, newSendCmd, newLoadCmd) }

// Defaults shared by send and load. They match ingest's defaults, so a
// notification sent here is the one ingest would have produced.
const (
	defaultTenant        = "demo"
	defaultSender        = "default"
	defaultSourceService = "notifyctl"
)

// maxRequestFile bounds --file; ingest accepts far less in one body.
const maxRequestFile = 1 << 20

type sendFlags struct {
	file           string
	tenant         string
	recipient      string
	eventType      string
	template       string
	language       string
	params         []string
	text           string
	sender         string
	sourceService  string
	userID         string
	eventTime      string
	expiresAt      string
	ttl            time.Duration
	idempotencyKey string
	metadata       map[string]string
}

// request builds the sdk.Request from a JSON file (the body of POST
// /v1/notifications, decoded by ingest's own decoder) or from flags; flags
// given next to --file override the file's fields.
func (sf *sendFlags) request(cmd *cobra.Command, in io.Reader) (sdk.Request, error) {
	var r sdk.Request
	if sf.file != "" {
		var raw []byte
		var err error
		if sf.file == "-" {
			raw, err = io.ReadAll(io.LimitReader(in, maxRequestFile+1))
		} else {
			var f *os.File
			if f, err = os.Open(sf.file); err == nil {
				raw, err = io.ReadAll(io.LimitReader(f, maxRequestFile+1))
				f.Close()
			}
		}
		if err != nil {
			return r, &UsageError{fmt.Errorf("--file: %w", err)}
		}
		if len(raw) > maxRequestFile {
			return r, &UsageError{fmt.Errorf("--file: larger than %d bytes", maxRequestFile)}
		}
		if r, err = ingest.DecodeRequest(raw); err != nil {
			return r, &UsageError{fmt.Errorf("--file %s: %w", sf.file, err)}
		}
	}
	changed := cmd.Flags().Changed
	if sf.file == "" || changed("recipient") {
		r.Recipient = sf.recipient
	}
	if sf.file == "" || changed("event-type") {
		r.EventType = sf.eventType
	}
	if sf.file == "" || changed("template") || changed("text") {
		r.Template, r.Text = nil, nil
		if sf.template != "" {
			r.Template = &contract.Template{Name: sf.template, Language: sf.language, Parameters: sf.params}
		}
		if sf.text != "" {
			r.Text = &contract.Text{Body: sf.text}
		}
	}
	if changed("sender") {
		r.Sender = sf.sender
	}
	if changed("source-service") {
		r.SourceService = sf.sourceService
	}
	if changed("user-id") {
		r.UserID = sf.userID
	}
	if changed("idempotency-key") {
		r.IdempotencyKey = sf.idempotencyKey
	}
	if changed("metadata") {
		r.Metadata = sf.metadata
	}
	if sf.eventTime != "" {
		t, err := time.Parse(time.RFC3339Nano, sf.eventTime)
		if err != nil {
			return r, &UsageError{fmt.Errorf("--event-time: %q is not an RFC 3339 time", sf.eventTime)}
		}
		r.EventTime = t
	}
	if sf.expiresAt != "" {
		t, err := time.Parse(time.RFC3339Nano, sf.expiresAt)
		if err != nil {
			return r, &UsageError{fmt.Errorf("--expires-at: %q is not an RFC 3339 time", sf.expiresAt)}
		}
		r.ExpiresAt, r.TTL = t, 0
	}
	if changed("ttl") {
		r.TTL = sf.ttl
		if sf.expiresAt == "" {
			r.ExpiresAt = time.Time{}
		}
	}
	return r, nil
}

type sendResult struct {
	NotificationID string     `json:"notification_id"`
	IdempotencyKey string     `json:"idempotency_key"`
	Tenant         string     `json:"tenant"`
	Recipient      string     `json:"recipient_masked"`
	EventType      string     `json:"event_type"`
	ExpiresAt      *time.Time `json:"expires_at,omitempty"`
	Topic          string     `json:"topic"`
	Partition      int32      `json:"partition"`
	Offset         int64      `json:"offset"`
}

func newSendCmd(app *App) *cobra.Command {
	sf := &sendFlags{}
	cmd := &cobra.Command{
		Use:   "send",
		Short: "Publish one notification to notifications.requested (smoke tests)",
		Long: `send publishes one notification straight to Kafka, built and validated exactly
as ingest builds it (the same rules, key, headers and deterministic id), and
waits until every in-sync replica has it. Give the fields as flags, or --file
with the JSON body of POST /v1/notifications ("-" reads it from stdin); flags
next to --file override the file.

The tenant is never read from the file: it is --tenant, as ingest takes it from
the API key. Follow the notification with "notifyctl status <id>".`,
		Example: `  notifyctl send --recipient +14155550123 --template otp_code --param 482913
  notifyctl send --tenant acme --recipient +14155550123 --text "Your invoice is ready" --ttl 10m
  notifyctl send --file request.json --tenant acme -o json
  echo '{"event_type":"otp","recipient":"+14155550123","template":{"name":"otp_code","language":"en_US"}}' | notifyctl send --file -`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !sdk.IsTenant(sf.tenant) {
				return &UsageError{fmt.Errorf("--tenant: %q is not a tenant name (lower-case letters, digits, '_' and '-')", sf.tenant)}
			}
			r, err := sf.request(cmd, app.In)
			if err != nil {
				return err
			}
			rule, err := phone.ParseRule(app.PhoneValidation)
			if err != nil {
				return &UsageError{fmt.Errorf("WANOTIFY_PHONE_VALIDATION: %w", err)}
			}
			rec, n, err := sdk.BuildRecord(sf.tenant, &r, sdk.BuildOptions{SourceService: sf.sourceService, Sender: sf.sender, PhoneRule: rule}, time.Now(), "")
			if err != nil {
				return &UsageError{fmt.Errorf("invalid notification: %w", err)}
			}
			ctx, cancel := app.Context(cmd)
			defer cancel()
			cl, err := app.KafkaClient(kgo.RequiredAcks(kgo.AllISRAcks()))
			if err != nil {
				return err
			}
			defer cl.Close()
			if err := cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
				return fmt.Errorf("publish %s: %w", n.ID, err)
			}
			res := sendResult{NotificationID: n.ID, IdempotencyKey: n.IdempotencyKey, Tenant: n.Tenant, Recipient: phone.Mask(n.Recipient),
				EventType: n.EventType, ExpiresAt: n.ExpiresAt, Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset}
			return app.Print(res, func(w *tabwriter.Writer) {
				fmt.Fprintf(w, "published\t%s\n", res.NotificationID)
				fmt.Fprintf(w, "tenant / event type\t%s / %s\n", res.Tenant, res.EventType)
				fmt.Fprintf(w, "recipient\t%s\n", res.Recipient)
				fmt.Fprintf(w, "idempotency key\t%s\n", res.IdempotencyKey)
				if res.ExpiresAt != nil {
					fmt.Fprintf(w, "expires at\t%s\n", res.ExpiresAt.Format(time.RFC3339))
				}
				fmt.Fprintf(w, "record\t%s %d/%d\n", res.Topic, res.Partition, res.Offset)
				fmt.Fprintf(w, "follow it with\tnotifyctl status %s --tenant %s\n", res.NotificationID, res.Tenant)
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&sf.file, "file", "", `JSON request (the body of POST /v1/notifications); "-" reads stdin`)
	f.StringVar(&sf.tenant, "tenant", defaultTenant, "tenant the notification belongs to")
	f.StringVar(&sf.recipient, "recipient", "", "WhatsApp number in international form, e.g. +14155550123")
	f.StringVar(&sf.eventType, "event-type", "smoke_test", "event type")
	f.StringVar(&sf.template, "template", "", "approved template name (or --text)")
	f.StringVar(&sf.language, "language", "en_US", "template language")
	f.StringArrayVar(&sf.params, "param", nil, "template parameter, in order (repeat)")
	f.StringVar(&sf.text, "text", "", "free-form text body (only deliverable inside the 24 h window)")
	f.StringVar(&sf.sender, "sender", defaultSender, "sender account (its rate limit applies)")
	f.StringVar(&sf.sourceService, "source-service", defaultSourceService, "source service recorded with the notification")
	f.StringVar(&sf.userID, "user-id", "", "the producer's id of the person notified")
	f.StringVar(&sf.eventTime, "event-time", "", "when the event happened, RFC 3339 (default: now)")
	f.StringVar(&sf.expiresAt, "expires-at", "", "do not send after this time, RFC 3339")
	f.DurationVar(&sf.ttl, "ttl", 0, "do not send after this long, e.g. 5m (instead of --expires-at)")
	f.StringVar(&sf.idempotencyKey, "idempotency-key", "", "idempotency key (default: user or recipient + event type + event time)")
	f.StringToStringVar(&sf.metadata, "metadata", nil, "metadata key=value pairs")
	return cmd
}

// errFailed marks a command whose summary already told what failed.
var errFailed = errors.New("failed")
