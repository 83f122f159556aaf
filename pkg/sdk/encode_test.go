package sdk

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wanotify/wanotify/pkg/contract"
)

func TestAppendNotificationIsJSONMarshal(t *testing.T) {
	at := time.Date(2026, 11, 28, 10, 0, 0, 123_450_000, time.UTC)
	zero := time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC)
	max := time.Date(9999, 12, 31, 23, 59, 59, 999_999_999, time.UTC)
	odd := "a\"b\\c<d>e&f\b\f\n\r\t\x00\x1f\x7f é 日 \u2028 \u2029 \xff\xfe end"
	cases := []contract.Notification{
		{SchemaVersion: 1, ID: "id", IdempotencyKey: "k", Tenant: "t", SourceService: "s", EventType: "e",
			Recipient: "+447100900123", Sender: "x", Text: &contract.Text{Body: "hi"}, CreatedAt: at},
		{SchemaVersion: 1, ID: odd, IdempotencyKey: odd, Tenant: odd, SourceService: odd, EventType: odd, UserID: odd,
			EventTime: &zero, Recipient: odd, Sender: odd, ExpiresAt: &max, CreatedAt: at.In(time.FixedZone("x", 3600)),
			Template: &contract.Template{Name: odd, Language: odd, Parameters: []string{odd, "", "p"}},
			Metadata: map[string]string{"b": odd, "a": "1", odd: "", "B": "2", "é": "3", "": "e"}},
		{SchemaVersion: 1, Template: &contract.Template{Parameters: []string{}}, Text: &contract.Text{PreviewURL: true},
			Metadata: map[string]string{}, CreatedAt: time.Time{}},
		{SchemaVersion: 12345},
	}
	for i, n := range cases {
		want, err := json.Marshal(&n)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendNotification(nil, &n); string(got) != string(want) {
			t.Fatalf("case %d:\n got %s\nwant %s", i, got, want)
		}
	}
}

func jsonTags(typ reflect.Type) []string {
	var tags []string
	for i := 0; i < typ.NumField(); i++ {
		name, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
		tags = append(tags, name)
	}
	return tags
}

func TestAppendNotificationKnowsEveryField(t *testing.T) {
	if tags := jsonTags(reflect.TypeFor[contract.Notification]()); !slices.Equal(tags, encodedFields) {
		t.Fatalf("contract.Notification has fields %v, the encoder writes %v: update appendNotification", tags, encodedFields)
	}
	if tags := jsonTags(reflect.TypeFor[contract.Template]()); !slices.Equal(tags, []string{"name", "language", "parameters"}) {
		t.Fatalf("contract.Template has fields %v: update appendNotification", tags)
	}
	if tags := jsonTags(reflect.TypeFor[contract.Text]()); !slices.Equal(tags, []string{"body", "preview_url"}) {
		t.Fatalf("contract.Text has fields %v: update appendNotification", tags)
	}
}
