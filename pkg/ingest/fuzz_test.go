package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wanotify/wanotify/pkg/contract"
	"github.com/wanotify/wanotify/pkg/phone"
	"github.com/wanotify/wanotify/pkg/sdk"
	"github.com/wanotify/wanotify/schemas"
)

// Seeds shared by both targets; more live in testdata/fuzz.
var fuzzSeeds = []string{
	otpBody,
	`{"event_type":"invoice.reminder","recipient":"+14155550123","text":{"body":"Invoice 42 is due","preview_url":true},"expires_at":"2099-01-01T00:00:00Z"}`,
	`{"event_type":"alert","user_id":"","recipient":"+8613800138000","template":{"name":"server_down","language":"zh_Hant_TW","parameters":["db-1",""]},"metadata":{"a/b":"~"}}`,
	`{"idempotency_key":"k","event_type":"otp","recipient":"+447100900123","text":{"body":"x"},"ttl":2592000}`,
	`{"tenant":"other","event_type":"otp","recipient":"+447100900123","text":{"body":"x"}}`,
	`{"event_type":"otp","recipient":"+447100900123","text":{"body":"x"},"template":null,"event_time":null}`,
	`{"event_type":"otp","recipient":"+447100900123","template":{"name":"a","language":"en","x":1}}`,
	`{"event_type":"otp","recipient":"+44 (0)7700 900123 ext. 7","text":{"body":"\u0000\ud800"}}`,
	`{"event_type":"otp","recipient":"+447100900123","text":{"body":"x"},"ttl":-1,"expires_at":"0000-01-01T00:00:00Z"}`,
	`{"notifications":[{"event_type":"otp","recipient":"+447100900123","text":{"body":"x"}},{}]}`,
	`{"event_type":"otp","recipient":"+447100900123","text":{"body":"x"}} trailing`,
	`[]`, `null`, `""`, `{`, ``,
}

var e164Pattern = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)

// FuzzDecodeRequest: decoding and building never panic, and whatever is
// accepted becomes a record the schema accepts, keyed by an E.164 number,
// with the id derived from tenant and key.
func FuzzDecodeRequest(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	now := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	opts := sdk.BuildOptions{SourceService: "api", Sender: "default"}
	f.Fuzz(func(t *testing.T, raw []byte) {
		r, err := DecodeRequest(raw)
		if err != nil {
			var ve *contract.ValidationError
			if !errors.As(err, &ve) || len(ve.Fields) == 0 {
				t.Fatalf("decode error %T %v is not a field error", err, err)
			}
			return
		}
		rec, n, err := sdk.BuildRecord("acme", &r, opts, now, "")
		if err != nil {
			if !errors.Is(err, contract.ErrInvalid) {
				t.Fatalf("build error is not a validation error: %v", err)
			}
			return
		}
		if err := contract.ValidateJSON(schemas.NotificationRequestedV1, rec.Value); err != nil {
			t.Fatalf("accepted %q but the record breaks the schema: %v\n%s", raw, err, rec.Value)
		}
		if want, err := json.Marshal(n); err != nil || !bytes.Equal(want, rec.Value) {
			t.Fatalf("record value differs from json.Marshal (%v):\n got %s\nwant %s", err, rec.Value, want)
		}
		if !e164Pattern.MatchString(n.Recipient) || string(rec.Key) != n.Recipient {
			t.Fatalf("recipient %q / key %q is not E.164", n.Recipient, rec.Key)
		}
		if n.ID != contract.NotificationID("acme", n.IdempotencyKey) {
			t.Fatal("id not derived from the key")
		}
		// The recipient rule and the text rule hold for whatever is taken.
		if again, err := phone.Valid.Normalize(n.Recipient); err != nil || again != n.Recipient {
			t.Fatalf("accepted recipient %q is not a valid number: %v", n.Recipient, err)
		}
		if digits, _ := phone.Digits(strings.TrimSpace(r.Recipient)); "+"+digits != n.Recipient {
			t.Fatalf("recipient %q became %q: not the digits written", r.Recipient, n.Recipient)
		}
		texts := []string{n.IdempotencyKey, n.SourceService, n.UserID, n.Sender}
		if n.Template != nil {
			texts = append(texts, n.Template.Parameters...)
		}
		if n.Text != nil {
			texts = append(texts, n.Text.Body)
		}
		for k, v := range n.Metadata {
			texts = append(texts, k, v)
		}
		for _, s := range texts {
			if !contract.IsText(s) {
				t.Fatalf("accepted %q with %q, which is not text", raw, s)
			}
		}
	})
}

// producedCounter counts the records handed to the producer, through a
// franz-go hook on the real client.
type producedCounter struct {
	mu   sync.Mutex
	recs []*kgo.Record
}

func (c *producedCounter) OnProduceRecordBuffered(r *kgo.Record) {
	c.mu.Lock()
	c.recs = append(c.recs, r)
	c.mu.Unlock()
}

func (c *producedCounter) take() []*kgo.Record {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.recs
	c.recs = nil
	return out
}

// FuzzHandler sends arbitrary bodies through the full router to a real
// (in-process) broker: the service never panics (a panic would surface as
// a 500), answers only statuses the route declares, and hands a record to
// Kafka for exactly the items it answers 202 for.
func FuzzHandler(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(uint8(0), []byte(s))
		f.Add(uint8(1), []byte(`{"notifications":[`+s+`]}`))
	}
	f.Add(uint8(2), []byte(otpBody))
	counter := &producedCounter{}
	h := newHarnessOn(f, testinfraBrokers(f), nil, nil, kgo.WithHooks(counter))
	codes := map[string][]int{}
	for _, rt := range apiRoutes {
		codes[rt.path] = rt.codes
	}

	f.Fuzz(func(t *testing.T, mode uint8, raw []byte) {
		path := "/v1/notifications"
		if mode&1 == 1 {
			path = "/v1/notifications/batch"
		}
		req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(raw))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+keyAcme)
		if mode&2 == 2 {
			req.Header.Set("Idempotency-Key", "fuzz-key")
		}
		w := httptest.NewRecorder()
		h.router.ServeHTTP(w, req)
		produced := counter.take()

		if w.Code == http.StatusInternalServerError {
			t.Fatalf("500 for %q: %s", raw, w.Body.Bytes())
		}
		if !slices.Contains(codes[path], w.Code) {
			t.Fatalf("%s answered %d, not a declared status", path, w.Code)
		}
		if w.Code >= 400 && w.Header().Get("Content-Type") != ProblemContentType {
			t.Fatalf("%d without problem+json", w.Code)
		}
		want := 0
		switch {
		case path == "/v1/notifications" && w.Code == http.StatusAccepted:
			want = 1
		case path == "/v1/notifications/batch" && (w.Code == http.StatusOK || w.Code == http.StatusServiceUnavailable):
			var br BatchResponse
			if err := json.Unmarshal(w.Body.Bytes(), &br); err != nil {
				t.Fatalf("batch answer: %v", err)
			}
			for _, res := range br.Results {
				if res.Status == http.StatusAccepted || res.Status == http.StatusServiceUnavailable {
					want++
				}
			}
		}
		if len(produced) != want {
			t.Fatalf("%s answered %d but %d records were produced (want %d) for %q", path, w.Code, len(produced), want, raw)
		}
		for _, rec := range produced {
			n, err := contract.DecodeNotification(rec.Value)
			if err != nil {
				t.Fatalf("produced a record the schema refuses: %v", err)
			}
			if n.Tenant != "acme" || string(rec.Key) != n.Recipient {
				t.Fatalf("record tenant %q key %q", n.Tenant, rec.Key)
			}
		}
		if want == 1 && path == "/v1/notifications" && !strings.Contains(w.Body.String(), `"id"`) {
			t.Fatalf("202 without id: %s", w.Body.Bytes())
		}
	})
}

// FuzzDecodeBatch: reading a batch in one pass gives exactly the items
// (requests, field errors, decoding errors) and the envelope errors that
// reading it item by item does.
func FuzzDecodeBatch(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(`{"notifications":[` + s + `]}`))
		f.Add([]byte(`{"notifications":[` + s + `,` + otpBody + `]}`))
		f.Add([]byte(s))
	}
	f.Add([]byte(`{"notifications":[null,1,"x",[],{"TTL":5,"Event_Type":"otp"}],"notifications":[{}]}`))
	f.Add([]byte(`{"Notifications":[{"template":{"name":"a"},"template":{"language":"b"}}]}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		got, gotErr := decodeBatch(raw)
		want, wantErr := decodeBatchEach(raw)
		if fmt.Sprint(gotErr) != fmt.Sprint(wantErr) {
			t.Fatalf("envelope error %v, item by item %v", gotErr, wantErr)
		}
		if len(got) != len(want) {
			t.Fatalf("%d items, item by item %d", len(got), len(want))
		}
		for i := range got {
			if fmt.Sprint(got[i].err) != fmt.Sprint(want[i].err) || !reflect.DeepEqual(got[i].fields, want[i].fields) {
				t.Fatalf("item %d: errors %v %v, item by item %v %v", i, got[i].err, got[i].fields, want[i].err, want[i].fields)
			}
			if want[i].err == nil && !reflect.DeepEqual(got[i].req, want[i].req) {
				t.Fatalf("item %d: %+v, item by item %+v", i, got[i].req, want[i].req)
			}
		}
	})
}
