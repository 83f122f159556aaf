package sdk

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/wanotify/wanotify/pkg/contract"
)

func benchRequest() Request {
	return Request{EventType: "otp", UserID: "u-1001", EventTime: time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC),
		Recipient: "+447100900123", Template: &contract.Template{Name: "otp_code", Language: "en_US", Parameters: []string{"482913"}},
		TTL: 5 * time.Minute, Metadata: map[string]string{"request_id": "r-77"}}
}

func BenchmarkBuild(b *testing.B) {
	r := benchRequest()
	o := BuildOptions{SourceService: "auth-api", Sender: "acme-main"}
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Build("acme", &r, o, now); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkNewRecord(b *testing.B) {
	r := benchRequest()
	n, _ := Build("acme", &r, BuildOptions{SourceService: "auth-api", Sender: "acme-main"}, time.Now())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := NewRecord(n, ""); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMarshalOnly(b *testing.B) {
	r := benchRequest()
	n, _ := Build("acme", &r, BuildOptions{SourceService: "auth-api", Sender: "acme-main"}, time.Now())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := json.Marshal(n); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBuildRecord(b *testing.B) {
	r := benchRequest()
	o := BuildOptions{SourceService: "auth-api", Sender: "acme-main"}
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := BuildRecord("acme", &r, o, now, ""); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBuildDistinctRecipients is Build when every recipient is new
// (the recipient cache never hits): phonenumbers parses each one.
func BenchmarkBuildDistinctRecipients(b *testing.B) {
	r := benchRequest()
	o := BuildOptions{SourceService: "auth-api", Sender: "acme-main"}
	now := time.Now()
	recipients := make([]string, 1<<20)
	for i := range recipients {
		recipients[i] = fmt.Sprintf("+4471%08d", i*7919%100000000)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		r.Recipient = recipients[i%len(recipients)]
		i++
		if _, err := Build("acme", &r, o, now); err != nil {
			b.Fatal(err)
		}
	}
}
