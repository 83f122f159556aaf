package ingest

import (
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/wanotify/wanotify/pkg/contract"
)

// viewIDName is the JSON name GET /v1/notifications/{id} gives the id.
func viewIDName(t *testing.T) string {
	t.Helper()
	f, ok := reflect.TypeOf(View{}).FieldByName("NotificationID")
	if !ok {
		t.Fatal("View has no NotificationID")
	}
	return strings.Split(f.Tag.Get("json"), ",")[0]
}

// TestAcceptedAnswerNamesTheIDAsTheStatusViewDoes: a caller reads the id
// of a 202 (single and batch) under the same name the status read
// answers with; the first version's "id" stays as an alias with the same
// value.
func TestAcceptedAnswerNamesTheIDAsTheStatusViewDoes(t *testing.T) {
	name := viewIDName(t)
	h := newHarness(t, nil)
	r := h.post(keyAcme, otpBody)
	if r.code != http.StatusAccepted {
		t.Fatalf("status %d: %s", r.code, r.body)
	}
	var single map[string]any
	if err := json.Unmarshal(r.body, &single); err != nil {
		t.Fatal(err)
	}
	want := contract.NotificationID("acme", "u-1001:otp:2026-11-28T10:00:00Z")
	if single[name] != want || single["id"] != want {
		t.Fatalf("202 body %s: want %q and the alias id both %s", r.body, name, want)
	}
	if loc := r.header.Get("Location"); loc != "/v1/notifications/"+want {
		t.Fatalf("Location %q", loc)
	}

	body := `{"notifications":[{"event_type":"otp","recipient":"+447100900123","text":{"body":"one"},"idempotency_key":"n-1"},
	  {"event_type":"otp","recipient":"nope","text":{"body":"two"}}]}`
	r = h.do(http.MethodPost, "/v1/notifications/batch", keyAcme, []byte(body))
	if r.code != http.StatusOK {
		t.Fatalf("batch status %d: %s", r.code, r.body)
	}
	var batch struct {
		Results []map[string]any `json:"results"`
	}
	if err := json.Unmarshal(r.body, &batch); err != nil || len(batch.Results) != 2 {
		t.Fatalf("batch body %s: %v", r.body, err)
	}
	want = contract.NotificationID("acme", "n-1")
	if got := batch.Results[0]; got[name] != want || got["id"] != want {
		t.Fatalf("batch item 0 %v: want %q and id both %s", got, name, want)
	}
	if got := batch.Results[1]; got[name] != nil || got["id"] != nil {
		t.Fatalf("refused batch item carries an id: %v", got)
	}
}
