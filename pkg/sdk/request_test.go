package sdk_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/wanotify/wanotify/pkg/contract"
	"github.com/wanotify/wanotify/pkg/envelope"
	"github.com/wanotify/wanotify/pkg/phone"
	"github.com/wanotify/wanotify/pkg/sdk"
	"github.com/wanotify/wanotify/pkg/topics"
	"github.com/wanotify/wanotify/schemas"
)

var (
	now  = time.Date(2026, 11, 28, 10, 0, 0, 120_000_000, time.UTC)
	opts = sdk.BuildOptions{SourceService: "auth-api", Sender: "acme-main"}
)

func otp() sdk.Request {
	return sdk.Request{
		EventType: "otp",
		UserID:    "u-1001",
		EventTime: time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC),
		Recipient: "+447100900123",
		Template:  &contract.Template{Name: "otp_code", Language: "en_US", Parameters: []string{"482913"}},
		TTL:       5 * time.Minute,
		Metadata:  map[string]string{"request_id": "r-77"},
	}
}

func TestBuildFillsDefaultsAndDerivesTheID(t *testing.T) {
	r := otp()
	n, err := sdk.Build("acme", &r, opts, now)
	if err != nil {
		t.Fatal(err)
	}
	if n.Tenant != "acme" || n.SourceService != "auth-api" || n.Sender != "acme-main" || n.Recipient != "+447100900123" {
		t.Fatalf("stamped fields wrong: %+v", n)
	}
	wantKey := "u-1001:otp:2026-11-28T10:00:00Z"
	if n.IdempotencyKey != wantKey || n.ID != contract.NotificationID("acme", wantKey) {
		t.Fatalf("key %q id %q", n.IdempotencyKey, n.ID)
	}
	if !n.CreatedAt.Equal(now) || n.ExpiresAt == nil || !n.ExpiresAt.Equal(now.Add(5*time.Minute)) {
		t.Fatalf("created %v expires %v", n.CreatedAt, n.ExpiresAt)
	}
	if _, err := n.Encode(); err != nil {
		t.Fatalf("built notification breaks the schema: %v", err)
	}
}

func TestBuildUsesTheCallersKeyAndOverrides(t *testing.T) {
	r := otp()
	r.IdempotencyKey = "order-42-shipped"
	r.SourceService = "shop"
	r.Sender = "acme-eu"
	a, err := sdk.Build("acme", &r, opts, now)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := sdk.Build("acme", &r, opts, now.Add(time.Hour))
	if a.ID != contract.NotificationID("acme", "order-42-shipped") || a.ID != b.ID {
		t.Fatalf("ids %s %s not the deterministic one", a.ID, b.ID)
	}
	if a.SourceService != "shop" || a.Sender != "acme-eu" {
		t.Fatalf("request overrides ignored: %+v", a)
	}
	other, _ := sdk.Build("globex", &r, opts, now)
	if other.ID == a.ID {
		t.Fatal("two tenants with the same key share an id")
	}
}

func TestDefaultKeyFallsBackToTheRecipientWithoutAUser(t *testing.T) {
	r := otp()
	r.UserID = ""
	a, err := sdk.Build("acme", &r, opts, now)
	if err != nil {
		t.Fatal(err)
	}
	r.Recipient = "+14155550123"
	b, err := sdk.Build("acme", &r, opts, now)
	if err != nil {
		t.Fatal(err)
	}
	if a.ID == b.ID {
		t.Fatal("two recipients of one event without user ids share an id: one of them would be suppressed as a duplicate")
	}
	if a.IdempotencyKey != "+447100900123:otp:2026-11-28T10:00:00Z" {
		t.Fatalf("key %q", a.IdempotencyKey)
	}
}

func TestWithoutEventTimeTheKeyTakesThePublishTime(t *testing.T) {
	r := otp()
	r.EventTime = time.Time{}
	a, _ := sdk.Build("acme", &r, opts, now)
	b, _ := sdk.Build("acme", &r, opts, now.Add(time.Millisecond))
	if a.ID == b.ID {
		t.Fatal("two publishes at different times without key or event time got one id")
	}
	if a.EventTime == nil || !a.EventTime.Equal(now) {
		t.Fatalf("event time %v, want the publish time", a.EventTime)
	}
}

func TestRecipientIsNormalisedToE164(t *testing.T) {
	for _, in := range []string{"+44 7100 900123", " +447100900123 ", "+44 (7100) 900-123", "+44.7100.900.123"} {
		r := otp()
		r.Recipient = in
		n, err := sdk.Build("acme", &r, opts, now)
		if err != nil {
			t.Fatalf("%q: %v", in, err)
		}
		if n.Recipient != "+447100900123" || string(n.Key()) != "+447100900123" {
			t.Fatalf("%q became %q", in, n.Recipient)
		}
	}
}

// TestRecipientMustBeWrittenInDigitsAndValid: libphonenumber reads
// letters as keypad digits and skips others, so "+44 77OO 901118" (letters
// O for zeros) used to be accepted as +4477901118, another person's
// number. Only digits, a leading + and separators are taken, and the
// number must be valid for its region, unless the rule is relaxed.
func TestRecipientMustBeWrittenInDigitsAndValid(t *testing.T) {
	for _, in := range []string{"+44 77OO 901118", "+44 7100 900123 ext. 7", "+44_7100_900123", "+44 7100 900123;", "+44 (0)7100 900123",
		"+447700900123", "+15551234567"} {
		r := otp()
		r.Recipient = in
		n, err := sdk.Build("acme", &r, opts, now)
		var ve *contract.ValidationError
		if !errors.As(err, &ve) || len(ve.Fields) != 1 || ve.Fields[0].Field != "/recipient" {
			t.Errorf("%q: %v, %v; want a validation error naming /recipient only", in, n, err)
			continue
		}
		if strings.Contains(ve.Fields[0].Reason, "7100") || strings.Contains(ve.Fields[0].Reason, "77OO") {
			t.Errorf("%q: the reason %q repeats the number", in, ve.Fields[0].Reason)
		}
	}
	// Relaxed: the drama range (possible, never valid) is taken; the
	// character rule still holds.
	relaxed := opts
	relaxed.PhoneRule = phone.Possible
	r := otp()
	r.Recipient = "+44 7700 900123"
	if n, err := sdk.Build("acme", &r, relaxed, now); err != nil || n.Recipient != "+447700900123" {
		t.Fatalf("possible rule: %v, %v", n, err)
	}
	r.Recipient = "+44 77OO 901118"
	if _, err := sdk.Build("acme", &r, relaxed, now); err == nil {
		t.Fatal("possible rule took letters")
	}
}

func TestEachFieldRuleNamesItsField(t *testing.T) {
	long := func(n int) string { return strings.Repeat("a", n) }
	cases := []struct {
		name  string
		edit  func(r *sdk.Request)
		opts  *sdk.BuildOptions
		field string
	}{
		{"no recipient", func(r *sdk.Request) { r.Recipient = "" }, nil, "/recipient"},
		{"national number", func(r *sdk.Request) { r.Recipient = "07700900123" }, nil, "/recipient"},
		{"letters", func(r *sdk.Request) { r.Recipient = "+44abc" }, nil, "/recipient"},
		{"too short", func(r *sdk.Request) { r.Recipient = "+441" }, nil, "/recipient"},
		{"too long", func(r *sdk.Request) { r.Recipient = "+4471009001234567890" }, nil, "/recipient"},
		{"no event type", func(r *sdk.Request) { r.EventType = "" }, nil, "/event_type"},
		{"event type case", func(r *sdk.Request) { r.EventType = "OTP" }, nil, "/event_type"},
		{"event type length", func(r *sdk.Request) { r.EventType = long(65) }, nil, "/event_type"},
		{"key length", func(r *sdk.Request) { r.IdempotencyKey = long(257) }, nil, "/idempotency_key"},
		{"user length", func(r *sdk.Request) { r.UserID = long(129) }, nil, "/user_id"},
		{"source length", func(r *sdk.Request) { r.SourceService = long(129) }, nil, "/source_service"},
		{"no source", func(r *sdk.Request) {}, &sdk.BuildOptions{Sender: "x"}, "/source_service"},
		{"sender length", func(r *sdk.Request) { r.Sender = long(65) }, nil, "/sender"},
		{"no sender", func(r *sdk.Request) {}, &sdk.BuildOptions{SourceService: "x"}, "/sender"},
		{"no body", func(r *sdk.Request) { r.Template = nil }, nil, ""},
		{"both bodies", func(r *sdk.Request) { r.Text = &contract.Text{Body: "hi"} }, nil, "/text"},
		{"template name", func(r *sdk.Request) { r.Template.Name = "OTP Code" }, nil, "/template/name"},
		{"template name empty", func(r *sdk.Request) { r.Template.Name = "" }, nil, "/template/name"},
		{"language", func(r *sdk.Request) { r.Template.Language = "english" }, nil, "/template/language"},
		{"language empty", func(r *sdk.Request) { r.Template.Language = "" }, nil, "/template/language"},
		{"too many params", func(r *sdk.Request) { r.Template.Parameters = make([]string, 21) }, nil, "/template/parameters"},
		{"param length", func(r *sdk.Request) { r.Template.Parameters = []string{"ok", long(1025)} }, nil, "/template/parameters/1"},
		{"text empty", func(r *sdk.Request) { r.Template, r.Text = nil, &contract.Text{} }, nil, "/text/body"},
		{"text length", func(r *sdk.Request) { r.Template, r.Text = nil, &contract.Text{Body: strings.Repeat("é", 4097)} }, nil, "/text/body"},
		{"expired", func(r *sdk.Request) { r.TTL, r.ExpiresAt = 0, now.Add(-time.Minute) }, nil, "/expires_at"},
		{"ttl and expiry", func(r *sdk.Request) { r.ExpiresAt = now.Add(time.Hour) }, nil, "/ttl"},
		{"negative ttl", func(r *sdk.Request) { r.TTL = -time.Second }, nil, "/ttl"},
		{"huge ttl", func(r *sdk.Request) { r.TTL = sdk.MaxTTL + time.Second }, nil, "/ttl"},
		{"event time year", func(r *sdk.Request) { r.EventTime = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }, nil, "/event_time"},
		{"metadata entries", func(r *sdk.Request) {
			r.Metadata = map[string]string{}
			for i := 0; i <= sdk.MaxMetadataEntries; i++ {
				r.Metadata[fmt.Sprint(i)] = "v"
			}
		}, nil, "/metadata"},
		{"metadata key", func(r *sdk.Request) { r.Metadata = map[string]string{long(65): "v"} }, nil, "/metadata"},
		{"metadata empty key", func(r *sdk.Request) { r.Metadata = map[string]string{"": "v"} }, nil, "/metadata"},
		{"metadata value", func(r *sdk.Request) { r.Metadata = map[string]string{"a/b": long(513)} }, nil, "/metadata/a~1b"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := otp()
			r.Template = &contract.Template{Name: "otp_code", Language: "en_US", Parameters: []string{"1"}}
			c.edit(&r)
			o := opts
			if c.opts != nil {
				o = *c.opts
			}
			n, err := sdk.Build("acme", &r, o, now)
			if n != nil || !errors.Is(err, contract.ErrInvalid) {
				t.Fatalf("accepted (%v)", err)
			}
			var ve *contract.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("error %T is not a *contract.ValidationError", err)
			}
			for _, f := range ve.Fields {
				if f.Field == c.field {
					return
				}
			}
			t.Fatalf("no error for field %q in %v", c.field, err)
		})
	}
}

func TestAllProblemsAreReportedAtOnce(t *testing.T) {
	r := sdk.Request{Recipient: "nope", EventType: "Bad Type", Template: &contract.Template{}}
	_, err := sdk.Build("acme", &r, opts, now)
	var ve *contract.ValidationError
	if !errors.As(err, &ve) || len(ve.Fields) < 4 {
		t.Fatalf("want every field at once, got %v", err)
	}
}

func TestExpiryWithinTheClockSkewIsAccepted(t *testing.T) {
	r := otp()
	r.TTL = 0
	r.ExpiresAt = now.Add(-2 * time.Second)
	n, err := sdk.Build("acme", &r, opts, now)
	if err != nil {
		t.Fatalf("an expiry 2s in the past (clock skew) was refused: %v", err)
	}
	if !n.Expired(now) {
		t.Fatal("such a notification must be recorded as expired")
	}
	r.ExpiresAt = now.Add(-10 * time.Second)
	if _, err := sdk.Build("acme", &r, opts, now); err == nil {
		t.Fatal("an expiry 10s in the past was accepted")
	}
}

func TestBuildDoesNotShareTheCallersSlices(t *testing.T) {
	r := otp()
	n, err := sdk.Build("acme", &r, opts, now)
	if err != nil {
		t.Fatal(err)
	}
	r.Template.Parameters[0] = "changed"
	r.Metadata["request_id"] = "changed"
	if n.Template.Parameters[0] != "482913" || n.Metadata["request_id"] != "r-77" {
		t.Fatal("the notification changes when the caller reuses its request")
	}
}

func TestRecordsAreKeyedByRecipientWithHeaders(t *testing.T) {
	r := otp()
	rec, n, err := sdk.BuildRecord("acme", &r, opts, now, "")
	if err != nil {
		t.Fatal(err)
	}
	if rec.Topic != topics.Critical || n.Lane != "critical" || string(rec.Key) != "+447100900123" {
		t.Fatalf("topic %q key %q", rec.Topic, rec.Key)
	}
	if envelope.Get(rec.Headers, envelope.HeaderTenant) != "acme" ||
		envelope.Get(rec.Headers, envelope.HeaderNotificationID) != n.ID ||
		envelope.Get(rec.Headers, envelope.HeaderEventType) != "otp" {
		t.Fatalf("headers %v", rec.Headers)
	}
	back, err := contract.DecodeNotification(rec.Value)
	if err != nil {
		t.Fatalf("value breaks the schema: %v", err)
	}
	if back.ID != n.ID || back.Tenant != "acme" {
		t.Fatalf("value %+v", back)
	}
	// NewRecord (schema-validated) and BuildRecord agree byte for byte.
	rec2, err := sdk.NewRecord(n, "")
	if err != nil || string(rec2.Value) != string(rec.Value) {
		t.Fatalf("NewRecord differs: %v\n%s\n%s", err, rec2.Value, rec.Value)
	}
}

// TestEveryAcceptedVariantPassesTheSchema walks combinations of optional
// fields at their limits: whatever Build accepts, the schema accepts, which
// is what lets BuildRecord skip the schema validator.
func TestEveryAcceptedVariantPassesTheSchema(t *testing.T) {
	maxed := func(n int, r rune) string { return strings.Repeat(string(r), n) }
	variants := []func(r *sdk.Request){
		func(r *sdk.Request) {},
		func(r *sdk.Request) {
			r.Template, r.Text = nil, &contract.Text{Body: maxed(sdk.MaxTextBody, 'é'), PreviewURL: true}
		},
		func(r *sdk.Request) { r.IdempotencyKey = maxed(sdk.MaxIdempotencyKey, '日') },
		func(r *sdk.Request) {
			r.UserID = maxed(sdk.MaxUserID, 'ü')
			r.EventType = "a" + maxed(sdk.MaxEventType-1, '.')
		},
		func(r *sdk.Request) {
			r.SourceService = maxed(sdk.MaxSourceService, 'x')
			r.Sender = maxed(sdk.MaxSender, 'y')
		},
		func(r *sdk.Request) {
			r.Template = &contract.Template{Name: maxed(sdk.MaxTemplateName, '_'), Language: "zh_Hant_TW"}
			for range sdk.MaxTemplateParams {
				r.Template.Parameters = append(r.Template.Parameters, maxed(sdk.MaxTemplateParam, 'p'))
			}
		},
		func(r *sdk.Request) {
			r.Metadata = map[string]string{}
			for i := range sdk.MaxMetadataEntries {
				r.Metadata[fmt.Sprintf("%064d", i)] = maxed(sdk.MaxMetadataValue, 'v')
			}
		},
		func(r *sdk.Request) { r.TTL, r.ExpiresAt = 0, time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC) },
		func(r *sdk.Request) { r.TTL = sdk.MaxTTL; r.EventTime = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC) },
		func(r *sdk.Request) { r.Recipient = "+12125550123"; r.Template.Language = "en" },
		func(r *sdk.Request) { r.Recipient = "+8613800138000"; r.UserID = "" },
	}
	for i, v := range variants {
		r := otp()
		v(&r)
		n, err := sdk.Build("acme-2_b", &r, opts, now)
		if err != nil {
			t.Fatalf("variant %d refused: %v", i, err)
		}
		rec, _, err := sdk.BuildRecord("acme-2_b", &r, opts, now, "")
		if err != nil {
			t.Fatalf("variant %d: %v", i, err)
		}
		if err := contract.ValidateJSON(schemas.NotificationRequestedV1, rec.Value); err != nil {
			t.Fatalf("variant %d accepted by Build but not by the schema: %v", i, err)
		}
		if n.ID != contract.NotificationID("acme-2_b", n.IdempotencyKey) {
			t.Fatalf("variant %d: id not derived from the key", i)
		}
	}
}

func TestIsTenant(t *testing.T) {
	for _, ok := range []string{"acme", "a", "demo-2", "x_y"} {
		if !sdk.IsTenant(ok) {
			t.Errorf("%q refused", ok)
		}
	}
	for _, bad := range []string{"", "Acme", "-a", "a b", "a:b", strings.Repeat("a", 65)} {
		if sdk.IsTenant(bad) {
			t.Errorf("%q accepted", bad)
		}
	}
}
