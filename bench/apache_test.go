package bench

import (
	"os"
	"strings"
	"testing"
)

// The rows of a group's two passes pair by position; a row without a
// headline value on either side is left out, and the ratio is Apache
// Kafka's figure over kfake's.
func TestCompareRowsOfBothBrokers(t *testing.T) {
	kfake := []Row{
		{What: "dispatcher: notifications/s", Figure: "10,000/s", Value: 10000, ValueName: "notifications/s,"},
		{What: "no headline", Figure: "x"},
		{What: "end to end p99", Figure: "3 ms / 10 ms", Value: 0.010, ValueName: "p99,", LowerIsBetter: true},
	}
	apache := []Row{
		{What: "dispatcher: notifications/s" + onApacheSuffix, Figure: "6,000/s", Value: 6000},
		{What: "no headline" + onApacheSuffix, Figure: "y", Value: 3},
		{What: "end to end p99" + onApacheSuffix, Figure: "9 ms / 25 ms", Value: 0.025},
	}
	var r Report
	r.compare(kfake, apache)
	if len(r.Compare) != 2 {
		t.Fatalf("compare kept %d rows, want 2: %+v", len(r.Compare), r.Compare)
	}
	if c := r.Compare[0]; c.What != kfake[0].What || c.Kfake != "10,000/s" || c.Apache != "6,000/s" || !strings.HasPrefix(c.Ratio, "0.60× (notifications/s, higher is better)") {
		t.Errorf("first comparison %+v", c)
	}
	if c := r.Compare[1]; !strings.HasPrefix(c.Ratio, "2.50× (p99, lower is better)") {
		t.Errorf("second comparison %+v", c)
	}
	md := r.Markdown()
	if !strings.Contains(md, "## kfake and Apache Kafka, same run") || !strings.Contains(md, "| dispatcher: notifications/s | 10,000/s | 6,000/s | 0.60×") {
		t.Errorf("Markdown lacks the comparison table:\n%s", md)
	}
	// A default run has no comparison section.
	if strings.Contains((&Report{}).Markdown(), "Apache Kafka") {
		t.Error("a kfake-only report mentions Apache Kafka")
	}
	// Memory figures of the Apache pass are told apart.
	r.rssSuffix = onApacheSuffix
	r.NoteRSS("broker", "load", 100)
	r.rssSuffix = ""
	r.NoteRSS("broker", "load", 50)
	if r.RSS["broker"+onApacheSuffix].bytes != 100 || r.RSS["broker"].bytes != 50 {
		t.Errorf("RSS %+v", r.RSS)
	}
}

func TestKafkaVersionFromTheCacheLayout(t *testing.T) {
	if v := kafkaVersion("/root/.cache/wanotify/kafka-4.1.1/libs"); v != "4.1.1" {
		t.Errorf("kafkaVersion = %q", v)
	}
}

// BENCH_KAFKA is checked: an unknown broker, or apache without the jars
// or with an external cluster, is refused with the variable named.
func TestBenchKafkaSetting(t *testing.T) {
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{EnvKafka: "redpanda"}, EnvKafka},
		{map[string]string{EnvKafka: "apache", "WANOTIFY_KAFKA_LIBS": ""}, "WANOTIFY_KAFKA_LIBS"},
		{map[string]string{EnvKafka: "apache", "WANOTIFY_KAFKA_LIBS": "/x", "WANOTIFY_KAFKA_BROKERS": "127.0.0.1:1", EnvResetTopics: "1"}, "WANOTIFY_KAFKA_BROKERS"},
	} {
		for k, v := range tc.env {
			t.Setenv(k, v)
		}
		if _, err := LoadConfig(root, nil); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: LoadConfig error %v, want it to name %s", tc.env, err, tc.want)
		}
	}
	t.Setenv(EnvKafka, "")
	os.Unsetenv("WANOTIFY_KAFKA_BROKERS") // t.Setenv above restores it
	c, err := LoadConfig(root, nil)
	if err != nil {
		t.Fatalf("default: %v", err)
	}
	if c.Kafka != KafkaKfake {
		t.Fatalf("default: Kafka %q, want %s", c.Kafka, KafkaKfake)
	}
}
