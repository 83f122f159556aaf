package contract_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"strings"
	"testing"
	"time"

	"github.com/wanotify/wanotify/pkg/contract"
	"github.com/wanotify/wanotify/pkg/envelope"
	"github.com/wanotify/wanotify/schemas"
)

func schemaOf(name string) string {
	switch {
	case strings.HasPrefix(name, "requested-"):
		return schemas.NotificationRequestedV1
	case strings.HasPrefix(name, "status-"):
		return schemas.NotificationStatusV1
	case strings.HasPrefix(name, "failure-headers-"):
		return schemas.FailureHeadersV1
	}
	return ""
}

func TestValidExamplesAreAcceptedAndRoundTrip(t *testing.T) {
	files, _ := fs.Glob(schemas.FS, "examples/valid/*.json")
	if len(files) < 5 {
		t.Fatalf("only %d valid examples", len(files))
	}
	for _, f := range files {
		raw, _ := schemas.FS.ReadFile(f)
		name := strings.TrimPrefix(f, "examples/valid/")
		if err := contract.ValidateJSON(schemaOf(name), raw); err != nil {
			t.Errorf("%s rejected: %v", name, err)
			continue
		}
		var again []byte
		switch schemaOf(name) {
		case schemas.NotificationRequestedV1:
			n, err := contract.DecodeNotification(raw)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if again, err = n.Encode(); err != nil {
				t.Fatalf("%s: re-encode: %v", name, err)
			}
		case schemas.NotificationStatusV1:
			e, err := contract.DecodeStatusEvent(raw)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if again, err = e.Encode(); err != nil {
				t.Fatalf("%s: re-encode: %v", name, err)
			}
		case schemas.FailureHeadersV1:
			var m map[string]string
			_ = json.Unmarshal(raw, &m)
			hs := toHeaders(m)
			f, err := envelope.Parse(hs)
			if err != nil {
				t.Fatalf("%s: parse headers: %v", name, err)
			}
			out, err := f.Headers()
			if err != nil {
				t.Fatalf("%s: render headers: %v", name, err)
			}
			got := map[string]string{}
			for _, h := range out {
				got[h.Key] = string(h.Value)
			}
			for k, v := range m {
				if k == "traceparent" {
					continue
				}
				if gv := got[k]; !sameValue(gv, v) {
					t.Errorf("%s: header %s = %q after round trip, want %q", name, k, gv, v)
				}
			}
			continue
		}
		if !jsonEqual(t, raw, again) {
			t.Errorf("%s: round trip changed the document:\n%s\n%s", name, raw, again)
		}
	}
}

func sameValue(a, b string) bool {
	if a == b {
		return true
	}
	ta, e1 := time.Parse(time.RFC3339Nano, a)
	tb, e2 := time.Parse(time.RFC3339Nano, b)
	return e1 == nil && e2 == nil && ta.Equal(tb)
}

func jsonEqual(t *testing.T, a, b []byte) bool {
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatal(err)
	}
	// Compare with times normalised.
	xa, _ := json.Marshal(normalise(x))
	ya, _ := json.Marshal(normalise(y))
	return bytes.Equal(xa, ya)
}

func normalise(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			v[k] = normalise(e)
		}
	case string:
		if tm, err := time.Parse(time.RFC3339Nano, v); err == nil {
			return tm.UTC().Format(time.RFC3339Nano)
		}
	}
	return v
}

func TestInvalidExamplesAreRejectedNamingTheField(t *testing.T) {
	raw, _ := schemas.FS.ReadFile("examples/invalid/expect.json")
	var expect map[string]string
	if err := json.Unmarshal(raw, &expect); err != nil {
		t.Fatal(err)
	}
	files, _ := fs.Glob(schemas.FS, "examples/invalid/*.json")
	if len(files)-1 != len(expect) {
		t.Fatalf("%d invalid examples but %d expectations", len(files)-1, len(expect))
	}
	for name, field := range expect {
		doc, err := schemas.FS.ReadFile("examples/invalid/" + name)
		if err != nil {
			t.Fatal(err)
		}
		err = contract.ValidateJSON(schemaOf(name), doc)
		var ve *contract.ValidationError
		if !errors.As(err, &ve) || !errors.Is(err, contract.ErrInvalid) {
			t.Errorf("%s: accepted or wrong error type: %v", name, err)
			continue
		}
		if field != "" && !strings.Contains(err.Error(), field) {
			t.Errorf("%s: error %q does not name %q", name, err, field)
		}
	}
}

func TestNotJSONIsAValidationError(t *testing.T) {
	for _, raw := range []string{"", "{", "null", "[1,2]", `{"schema_version":1`, "\x00\xff"} {
		_, err := contract.DecodeNotification([]byte(raw))
		if !errors.Is(err, contract.ErrInvalid) {
			t.Errorf("%q: err = %v", raw, err)
		}
		_, err = contract.DecodeStatusEvent([]byte(raw))
		if !errors.Is(err, contract.ErrInvalid) {
			t.Errorf("%q: err = %v", raw, err)
		}
	}
}

func TestNotificationIDIsDeterministicPerTenantAndKey(t *testing.T) {
	a := contract.NotificationID("acme", "k1")
	if a != contract.NotificationID("acme", "k1") {
		t.Fatal("same input, different id")
	}
	if a == contract.NotificationID("other", "k1") || a == contract.NotificationID("acme", "k2") {
		t.Fatal("different tenant or key gave the same id")
	}
	ts := time.Date(2026, 11, 28, 10, 0, 0, 0, time.FixedZone("x", 3600))
	if got := contract.DefaultIdempotencyKey("u1", "otp", ts); got != "u1:otp:2026-11-28T09:00:00Z" {
		t.Fatalf("default key %q", got)
	}
}

func TestStatusRankOrdersProgress(t *testing.T) {
	order := []contract.Status{contract.StatusAccepted, contract.StatusSent, contract.StatusDelivered, contract.StatusRead, contract.StatusFailed}
	for i := 1; i < len(order); i++ {
		if order[i].Rank() <= order[i-1].Rank() {
			t.Errorf("%s must outrank %s", order[i], order[i-1])
		}
	}
	for _, s := range contract.Statuses {
		if s.Rank() == 0 {
			t.Errorf("%s has no rank", s)
		}
	}
	if contract.Status("bogus").Rank() != 0 {
		t.Error("unknown status ranked")
	}
}

func TestRankLetsNoSideStatusHideASend(t *testing.T) {
	for _, side := range []contract.Status{contract.StatusDuplicate, contract.StatusOutcomeUnknown, contract.StatusExpired, contract.StatusRetryScheduled} {
		if side.Rank() >= contract.StatusAccepted.Rank() {
			t.Errorf("%s (rank %d) would hide an accepted send (rank %d)", side, side.Rank(), contract.StatusAccepted.Rank())
		}
	}
	for i := 1; i < len(contract.Statuses); i++ {
		if contract.Statuses[i].Rank() <= contract.Statuses[i-1].Rank() {
			t.Errorf("Statuses is not in rank order at %s", contract.Statuses[i])
		}
	}
}
