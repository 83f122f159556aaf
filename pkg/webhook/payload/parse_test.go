package payload

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/wanotify/wanotify/pkg/contract"
	"github.com/wanotify/wanotify/pkg/metawebhook"
)

var testParser = Parser{Provider: "xpressbot", Format: FormatAuto, EnvelopeField: "data"}

// rejectedFields parses body, which must succeed, and returns the field
// errors of its malformed statuses.
func rejectedFields(t *testing.T, p Parser, body []byte) (*Batch, map[string]string) {
	t.Helper()
	b, err := p.Parse(body)
	if err != nil {
		t.Fatalf("Parse: %v; a malformed status must not fail its batch", err)
	}
	out := map[string]string{}
	for _, r := range b.Rejected {
		if r.Kind != RejectedMalformed {
			continue
		}
		if len(r.Raw) == 0 || r.Reason == "" {
			t.Errorf("rejected status without its raw value or reason: %+v", r)
		}
		for _, f := range r.Fields {
			out[f.Field] = f.Reason
		}
	}
	return b, out
}

func fields(t *testing.T, err error) map[string]string {
	t.Helper()
	if !errors.Is(err, ErrMalformed) {
		t.Fatalf("err = %v, want ErrMalformed", err)
	}
	var pe *Error
	if !errors.As(err, &pe) {
		t.Fatalf("err %T is not a *Error", err)
	}
	out := map[string]string{}
	for _, f := range pe.Fields {
		out[f.Field] = f.Reason
	}
	return out
}

func TestParseMapsEveryMetaStatus(t *testing.T) {
	ts := time.Date(2026, 11, 28, 10, 0, 2, 0, time.UTC).Unix()
	failed := metaStatus("wamid.F", "failed", "447700900123", ts)
	failed.Errors = []metawebhook.Error{{Code: 131026, Title: "Message undeliverable", Message: "Message Undeliverable."}}
	sent := metaStatus("wamid.S", "sent", "447700900123", ts)
	sent.BizOpaqueCallbackData = "9b2f3c1e-6f0e-5a8e-9d7c-0d4d1f7c1a11"
	b, err := testParser.Parse(mustJSON(t, metaPayload(
		sent,
		metaStatus("wamid.D", "delivered", "+447700900123", ts),
		metaStatus("wamid.R", "READ", " 447700900123 ", ts),
		failed,
	)))
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Events) != 4 {
		t.Fatalf("%d events, want 4", len(b.Events))
	}
	want := []struct {
		id     string
		status contract.Status
	}{{"wamid.S", contract.StatusSent}, {"wamid.D", contract.StatusDelivered}, {"wamid.R", contract.StatusRead}, {"wamid.F", contract.StatusFailed}}
	for i, w := range want {
		ev := b.Events[i].Status
		if ev.ProviderMessageID != w.id || ev.Status != w.status {
			t.Errorf("event %d: %s %s, want %s %s", i, ev.ProviderMessageID, ev.Status, w.id, w.status)
		}
		if ev.EventID != contract.WebhookEventID(w.id, w.status) {
			t.Errorf("event %d: id %q, want the deterministic webhook event id", i, ev.EventID)
		}
		if ev.Recipient != "+447700900123" || string(b.Events[i].Key()) != "+447700900123" {
			t.Errorf("event %d: recipient %q key %q, want +447700900123", i, ev.Recipient, b.Events[i].Key())
		}
		if ev.Emitter != contract.EmitterWebhook || ev.Provider != "xpressbot" {
			t.Errorf("event %d: emitter %q provider %q", i, ev.Emitter, ev.Provider)
		}
		if !ev.OccurredAt.Equal(time.Unix(ts, 0)) {
			t.Errorf("event %d: occurred_at %v, want %v", i, ev.OccurredAt, time.Unix(ts, 0).UTC())
		}
		// The encoded value is what gets produced: it must decode to the same event.
		got, err := contract.DecodeStatusEvent(b.Events[i].Value)
		if err != nil || got.EventID != ev.EventID {
			t.Errorf("event %d: value does not round-trip: %v", i, err)
		}
	}
	if got := b.Events[0].Status.NotificationID; got != sent.BizOpaqueCallbackData {
		t.Errorf("notification id %q, want the callback data", got)
	}
	if got := b.Events[1].Status.NotificationID; got != "" {
		t.Errorf("notification id %q without callback data, want empty (joined downstream)", got)
	}
	e := b.Events[3].Status.Error
	if e == nil || e.Code != "meta_131026" || e.Message != "Message Undeliverable." || e.Retryable {
		t.Errorf("failed error = %+v, want meta_131026, the message, not retryable", e)
	}
	for i := 0; i < 3; i++ {
		if b.Events[i].Status.Error != nil {
			t.Errorf("event %d carries an error", i)
		}
	}
}

func TestParseFailedWithoutErrorsStillHasCode(t *testing.T) {
	b, err := testParser.Parse(mustJSON(t, metaPayload(metaStatus("wamid.F", "failed", "447700900123", 1764324002))))
	if err != nil {
		t.Fatal(err)
	}
	if e := b.Events[0].Status.Error; e == nil || e.Code != "meta_unknown" || e.Retryable {
		t.Fatalf("error = %+v, want meta_unknown, not retryable", e)
	}
}

func TestParseLongErrorMessageIsTruncated(t *testing.T) {
	st := metaStatus("wamid.F", "failed", "447700900123", 1764324002)
	st.Errors = []metawebhook.Error{{Code: 131026, Message: strings.Repeat("é", 5000)}}
	b, err := testParser.Parse(mustJSON(t, metaPayload(st)))
	if err != nil {
		t.Fatal(err)
	}
	if n := len([]rune(b.Events[0].Status.Error.Message)); n != MaxErrorMessageLen {
		t.Fatalf("message of %d characters, want %d", n, MaxErrorMessageLen)
	}
}

func TestParseMissingFieldsNamesEachOne(t *testing.T) {
	body := `{"object":"whatsapp_business_account","entry":[{"id":"w","changes":[{"field":"messages","value":{
		"statuses":[{"id":"wamid.1","status":"sent","timestamp":"1764324002","recipient_id":"447700900123"},
		            {"status":"delivered","timestamp":"1764324002"},
		            {"id":"wamid.3","status":"read","recipient_id":"447700900123","timestamp":""}]}}]}]}`
	b, got := rejectedFields(t, testParser, []byte(body))
	want := map[string]string{
		"/entry/0/changes/0/value/statuses/1/id":           "is required",
		"/entry/0/changes/0/value/statuses/1/recipient_id": "is required",
		"/entry/0/changes/0/value/statuses/2/timestamp":    "is required",
	}
	if len(b.Events) != 1 || b.Events[0].Status.ProviderMessageID != "wamid.1" {
		t.Errorf("events %+v, want the one good status", b.Events)
	}
	if len(b.Rejected) != 2 || string(b.Rejected[0].Raw) != `{"status":"delivered","timestamp":"1764324002"}` ||
		b.Rejected[0].Recipient != "" || b.Rejected[1].Recipient != "+447700900123" || b.Rejected[1].Status != "read" {
		t.Errorf("rejected %+v, want both bad statuses, raw, the second keyed by its recipient", b.Rejected)
	}
	if len(got) != len(want) {
		t.Fatalf("fields %v, want %v", got, want)
	}
	for f, r := range want {
		if got[f] != r {
			t.Errorf("%s: %q, want %q (all: %v)", f, got[f], r, got)
		}
	}
}

func TestParseBadValues(t *testing.T) {
	cases := []struct {
		name  string
		st    metawebhook.Status
		field string
	}{
		{"timestamp not a number", metawebhook.Status{ID: "w", Status: "sent", RecipientID: "447700900123", Timestamp: "yesterday"}, "/timestamp"},
		{"timestamp negative", metawebhook.Status{ID: "w", Status: "sent", RecipientID: "447700900123", Timestamp: "-5"}, "/timestamp"},
		{"timestamp past year 9999", metawebhook.Status{ID: "w", Status: "sent", RecipientID: "447700900123", Timestamp: "999999999999"}, "/timestamp"},
		{"id too long", metawebhook.Status{ID: strings.Repeat("x", MaxProviderMessageIDLen+1), Status: "sent", RecipientID: "447700900123", Timestamp: "1764324002"}, "/id"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, got := rejectedFields(t, testParser, mustJSON(t, metaPayload(c.st)))
			f := "/entry/0/changes/0/value/statuses/0" + c.field
			if _, ok := got[f]; !ok || len(got) != 1 {
				t.Fatalf("fields %v, want only %s", got, f)
			}
			if strings.Contains(got[f], c.st.RecipientID) && c.field == "/recipient_id" {
				t.Errorf("reason %q echoes the number", got[f])
			}
		})
	}
}

// TestParseNeverRefusesASignedStatusForItsRecipient: Meta is the
// authority on its own recipients. A recipient_id in E.164 shape is taken
// even where libphonenumber does not know the number (the drama range,
// a range newer than its metadata); one that cannot be a number at all is
// counted and left out, and the rest of the body is produced.
func TestParseNeverRefusesASignedStatusForItsRecipient(t *testing.T) {
	body := mustJSON(t, metaPayload(
		metaStatus("wamid.1", "sent", "447700900123", 1764324002),
		metaStatus("wamid.2", "sent", "+15551234567", 1764324002),
		metaStatus("wamid.3", "sent", "group-abc", 1764324002),
		metaStatus("wamid.4", "sent", "12", 1764324002),
		metaStatus("wamid.5", "sent", "44 7911 123456", 1764324002),
		metaStatus("wamid.6", "sent", "447911123456", 1764324002),
	))
	b, err := testParser.Parse(body)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	var got []string
	for _, ev := range b.Events {
		got = append(got, ev.Status.ProviderMessageID+"="+ev.Status.Recipient)
	}
	want := []string{"wamid.1=+447700900123", "wamid.2=+15551234567", "wamid.6=+447911123456"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("events %v, want %v", got, want)
	}
	if b.Ignored[IgnoredRecipient] != 3 {
		t.Fatalf("ignored %v, want 3 of kind %s", b.Ignored, IgnoredRecipient)
	}
}

func TestParseLongestProviderMessageIDFitsTheSchema(t *testing.T) {
	id := strings.Repeat("x", MaxProviderMessageIDLen)
	for _, s := range []string{"sent", "delivered", "read", "failed"} {
		if _, err := testParser.Parse(mustJSON(t, metaPayload(metaStatus(id, s, "447700900123", 1764324002)))); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

func TestParseNotJSON(t *testing.T) {
	for name, body := range map[string]string{
		"empty":         "",
		"blank":         "  \n",
		"truncated":     `{"entry":[`,
		"garbage":       `not json`,
		"array":         `[1,2]`,
		"trailing":      `{"entry":[]} x`,
		"wrong type":    `{"entry":[{"id":5,"changes":[{"value":{"statuses":[{"id":"a"}]}}]}]}`,
		"no entry":      `{"object":"whatsapp_business_account"}`,
		"null entry":    `{"entry":null}`,
		"null envelope": `{"data":null}`,
	} {
		t.Run(name, func(t *testing.T) {
			b, err := testParser.Parse([]byte(body))
			if b != nil || !errors.Is(err, ErrMalformed) {
				t.Fatalf("Parse(%q) = %v, %v; want ErrMalformed", body, b, err)
			}
		})
	}
}

func TestParseTypeErrorNamesTheField(t *testing.T) {
	// Inside a status, a type error rejects that status only, naming the
	// field.
	inStatus := map[string]string{
		`{"entry":[{"changes":[{"value":{"statuses":[{"id":"a"},{"id":5}]}}]}]}`:                                   "/entry/0/changes/0/value/statuses/1/id",
		`{"entry":[{"changes":[{"value":{"statuses":[{"id":"a","pricing":{"x":[1]},"timestamp":1764324002}]}}]}]}`: "/entry/0/changes/0/value/statuses/0/timestamp",
		`{"entry":[{"changes":[{"value":{"statuses":[{"errors":[{"code":"131026"}]}]}}]}]}`:                        "/entry/0/changes/0/value/statuses/0/errors/0/code",
	}
	for body, want := range inStatus {
		_, got := rejectedFields(t, testParser, []byte(body))
		if _, ok := got[want]; !ok {
			t.Errorf("%s: rejected fields %v, want %s", body, got, want)
		}
	}
	cases := map[string]string{
		`{"entry":[{"id":{"a":[{"b":1}]},"changes":[{"field":7}]}]}`: "/entry/0/id",
		`{"entry":{"a":1}}`: "/entry",
		`{"entry":[1]}`:     "/entry/0",
		`{"success":true,"data":{"entry":[{"changes":"x"}]}}`: "/data/entry/0/changes",
	}
	for body, want := range cases {
		got := fields(t, func() error { _, err := testParser.Parse([]byte(body)); return err }())
		if _, ok := got[want]; !ok || len(got) != 1 {
			t.Errorf("%s: fields %v, want %s", body, got, want)
		}
	}
}

func TestParseUnknownStatusValuesAreSkippedAndKept(t *testing.T) {
	b, err := testParser.Parse(mustJSON(t, metaPayload(
		metaStatus("wamid.1", "deleted", "447700900123", 1764324002),
		metaStatus("wamid.2", "warning", "not-even-a-number", 1764324002),
		metaStatus("wamid.3", "delivered", "447700900123", 1764324002),
	)))
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Events) != 1 || b.Events[0].Status.Status != contract.StatusDelivered {
		t.Fatalf("events %+v, want only the delivered one", b.Events)
	}
	if strings.Join(b.Skipped, ",") != "deleted,warning" {
		t.Fatalf("skipped %v, want deleted, warning", b.Skipped)
	}
	// Both are kept, as untracked.
	if len(b.Rejected) != 2 || b.Rejected[0].Kind != RejectedUntracked || b.Rejected[1].Kind != RejectedUntracked ||
		!strings.Contains(b.Rejected[0].Reason, `"deleted" is not a status the pipeline tracks`) ||
		!strings.Contains(string(b.Rejected[1].Raw), `"wamid.2"`) || b.Rejected[1].Recipient != "" || b.Rejected[0].Recipient != "+447700900123" {
		t.Fatalf("rejected %+v, want both kept as untracked", b.Rejected)
	}
}

func TestParseInboundMessagesUnknownFieldsAndOtherChangesAreAccepted(t *testing.T) {
	body := `{"object":"whatsapp_business_account","brand_new_top_level":1,"entry":[{"id":"w","changes":[
	  {"field":"messages","value":{"messaging_product":"whatsapp","metadata":{"phone_number_id":"pn"},
	     "contacts":[{"profile":{"name":"A"},"wa_id":"447700900123"}],
	     "messages":[{"from":"447700900123","id":"wamid.in1","timestamp":"1764324002","type":"text","text":{"body":"hi"}},
	                 {"from":"447700900123","id":"wamid.in2","timestamp":"1764324003","type":"image","image":{"id":"m"}}],
	     "statuses":[{"id":"wamid.1","status":"read","timestamp":"1764324002","recipient_id":"447700900123","new_status_field":{"x":1}}]}},
	  {"field":"account_update","value":{"event":"VERIFIED_ACCOUNT"}}]}]}`
	b, err := testParser.Parse([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if b.InboundMessages != 2 {
		t.Errorf("inbound messages %d, want 2", b.InboundMessages)
	}
	if len(b.Events) != 1 || b.Events[0].Status.Status != contract.StatusRead {
		t.Errorf("events %+v, want the read status", b.Events)
	}
	if b.Ignored[IgnoredUnknownFields] != 1 || b.Ignored[IgnoredChange] != 1 {
		t.Errorf("ignored %v, want unknown_fields 1 and change 1", b.Ignored)
	}
}

func TestParseOnlyInboundMessages(t *testing.T) {
	body := `{"object":"whatsapp_business_account","entry":[{"id":"w","changes":[{"field":"messages","value":{
	     "messages":[{"from":"447700900123","id":"wamid.in1","timestamp":"1764324002","type":"text","text":{"body":"hi"}}]}}]}]}`
	b, err := testParser.Parse([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if b.InboundMessages != 1 || len(b.Events) != 0 || len(b.Ignored) != 0 {
		t.Fatalf("batch %+v, want one inbound message and nothing else", b)
	}
}

func TestParseDuplicateStatusInOneRequestProducedOnce(t *testing.T) {
	st := metaStatus("wamid.1", "delivered", "447700900123", 1764324002)
	b, err := testParser.Parse(mustJSON(t, metaPayload(st, st)))
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Events) != 1 || b.Ignored[IgnoredDuplicate] != 1 {
		t.Fatalf("events %d ignored %v, want 1 event and 1 duplicate", len(b.Events), b.Ignored)
	}
}

func TestParseOverlongCallbackDataIsNotANotificationID(t *testing.T) {
	st := metaStatus("wamid.1", "sent", "447700900123", 1764324002)
	st.BizOpaqueCallbackData = strings.Repeat("c", 65)
	b, err := testParser.Parse(mustJSON(t, metaPayload(st)))
	if err != nil {
		t.Fatal(err)
	}
	if b.Events[0].Status.NotificationID != "" || b.Ignored[IgnoredCallbackData] != 1 {
		t.Fatalf("notification id %q ignored %v", b.Events[0].Status.NotificationID, b.Ignored)
	}
}

func TestParseFormats(t *testing.T) {
	meta := mustJSON(t, metaPayload(metaStatus("wamid.1", "sent", "447700900123", 1764324002)))
	wrapped := []byte(`{"success":true,"message":"status update","data":` + string(meta) + `}`)
	custom := []byte(`{"event":"message.status","payload":` + string(meta) + `}`)
	cases := []struct {
		p       Parser
		body    []byte
		ok      bool
		errPath string
	}{
		{Parser{Provider: "x", Format: FormatMeta}, meta, true, ""},
		{Parser{Provider: "x", Format: FormatMeta}, wrapped, false, "/entry"},
		{Parser{Provider: "x", Format: FormatEnvelope, EnvelopeField: "data"}, wrapped, true, ""},
		{Parser{Provider: "x", Format: FormatEnvelope, EnvelopeField: "data"}, meta, false, "/data"},
		{Parser{Provider: "x", Format: FormatAuto, EnvelopeField: "data"}, meta, true, ""},
		{Parser{Provider: "x", Format: FormatAuto, EnvelopeField: "data"}, wrapped, true, ""},
		{Parser{Provider: "x", Format: FormatAuto, EnvelopeField: "payload"}, custom, true, ""},
		{Parser{Provider: "x", Format: FormatAuto, EnvelopeField: "data"}, custom, false, "/entry"},
	}
	for i, c := range cases {
		b, err := c.p.Parse(c.body)
		if c.ok {
			if err != nil || len(b.Events) != 1 {
				t.Errorf("case %d (%s): %v", i, c.p.Format, err)
			}
			if err == nil && len(b.Ignored) != 0 {
				t.Errorf("case %d (%s): ignored %v; the wrapper's own fields are not unknown", i, c.p.Format, b.Ignored)
			}
			continue
		}
		if _, ok := fields(t, err)[c.errPath]; !ok {
			t.Errorf("case %d (%s): %v, want an error at %s", i, c.p.Format, err, c.errPath)
		}
	}
	// Errors inside a wrapper point into it.
	bad := []byte(`{"data":{"entry":[{"changes":[{"value":{"statuses":[{"status":"sent"}]}}]}]}}`)
	b, got := rejectedFields(t, Parser{Provider: "x", Format: FormatEnvelope, EnvelopeField: "data"}, bad)
	if _, ok := got["/data/entry/0/changes/0/value/statuses/0/id"]; !ok {
		t.Errorf("%v: want the pointer to go through /data", got)
	}
	if len(b.Rejected) != 1 || string(b.Rejected[0].Raw) != `{"status":"sent"}` {
		t.Errorf("rejected %+v, want the raw status from inside the wrapper", b.Rejected)
	}
}

func TestParseStatusOfTheWrongTypeDoesNotFailTheBatch(t *testing.T) {
	body := `{"object":"whatsapp_business_account","entry":[{"id":"w","changes":[{"field":"messages","value":{"statuses":[` +
		`{"id":"wamid.1","status":"sent","timestamp":"1764324002","recipient_id":"447700900123"},` +
		`{"id":"wamid.2","status":"read","timestamp":1764324003,"recipient_id":"447700900123"}]}}]}]}`
	b, got := rejectedFields(t, testParser, []byte(body))
	if len(b.Events) != 1 || b.Events[0].Status.ProviderMessageID != "wamid.1" {
		t.Errorf("events %+v, want the good status", b.Events)
	}
	if got["/entry/0/changes/0/value/statuses/1/timestamp"] != "must be a JSON string, got number" || len(b.Rejected) != 1 ||
		string(b.Rejected[0].Raw) != `{"id":"wamid.2","status":"read","timestamp":1764324003,"recipient_id":"447700900123"}` {
		t.Errorf("rejected %+v (fields %v), want the status with the numeric timestamp, raw", b.Rejected, got)
	}
}

func TestParseKeepsEveryMalformedStatus(t *testing.T) {
	var sts []metawebhook.Status
	for range 50 {
		sts = append(sts, metawebhook.Status{Status: "sent"})
	}
	sts = append(sts, metaStatus("wamid.ok", "read", "447700900123", 1764324002))
	b, err := testParser.Parse(mustJSON(t, metaPayload(sts...)))
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Rejected) != 50 || len(b.Events) != 1 {
		t.Fatalf("%d rejected and %d events, want 50 and 1", len(b.Rejected), len(b.Events))
	}
	for i, r := range b.Rejected {
		if len(r.Fields) != 3 || !strings.Contains(r.Reason, fmt.Sprintf("/statuses/%d/id: is required", i)) {
			t.Fatalf("rejected %d: %+v", i, r)
		}
	}
}

// The receiver reads bodies into recycled buffers (pkg/internal/bodypool):
// a batch must not refer to the body's bytes once Parse returned.
func TestParseBatchOutlivesTheBody(t *testing.T) {
	ts := time.Date(2026, 11, 28, 10, 0, 2, 0, time.UTC).Unix()
	failed := metaStatus("wamid.F", "failed", "447700900123", ts)
	failed.Errors = []metawebhook.Error{{Code: 131026, Title: "Message undeliverable", Message: "Message Undeliverable."}}
	sent := metaStatus("wamid.S", "sent", "447700900124", ts)
	sent.BizOpaqueCallbackData = "9b2f3c1e-6f0e-5a8e-9d7c-0d4d1f7c1a11"
	body := mustJSON(t, metaPayload(sent, failed))
	want, err := testParser.Parse(bytes.Clone(body))
	if err != nil {
		t.Fatal(err)
	}
	got, err := testParser.Parse(body)
	if err != nil {
		t.Fatal(err)
	}
	for i := range body {
		body[i] = 'x'
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("after the body's buffer was overwritten the batch changed:\n got %+v\nwant %+v", got, want)
	}
}
