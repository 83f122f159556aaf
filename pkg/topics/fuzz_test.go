package topics

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse feeds arbitrary text to the topics.yaml reader: it never
// panics, and a file it accepts is one Reconcile can act on (every topic
// named once, a valid name, at least one partition, a valid replication
// factor, no empty config key).
func FuzzParse(f *testing.F) {
	repo, err := os.ReadFile(filepath.Join("..", "..", "topics.yaml"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(repo)
	f.Add(repo[:len(repo)/2])
	f.Add([]byte("topics:\n  - name: a\n    partitions: 3\n    replication_factor: 1\n"))
	f.Add([]byte("topics:\n  - name: a\n  - name: a\n"))
	f.Add([]byte("defaults:\n  partitions: -1\ntopics: [{name: x}]\n"))
	f.Add([]byte("topics:\n  - name: a\n    colour: red\n"))
	f.Add([]byte("topics: &x [*x]\n"))
	f.Add([]byte("{{{"))
	f.Add([]byte("topics:\n  - name: a\n    configs: {\"\": \"1\", \"a b\": 2}\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		file, err := Parse(raw)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error message")
			}
			return
		}
		if err := file.Validate(); err != nil {
			t.Fatalf("Parse accepted a file Validate refuses: %v", err)
		}
		if len(file.Topics) == 0 {
			t.Fatal("accepted a file without topics")
		}
		seen := map[string]bool{}
		for _, tp := range file.Topics {
			switch {
			case tp.Name == "" || seen[tp.Name]:
				t.Fatalf("topic name %q empty or repeated", tp.Name)
			case strings.Trim(tp.Name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != "":
				t.Fatalf("topic name %q has characters Kafka refuses", tp.Name)
			case tp.Partitions < 1:
				t.Fatalf("topic %q has %d partitions", tp.Name, tp.Partitions)
			case tp.ReplicationFactor == 0 || tp.ReplicationFactor < -1:
				t.Fatalf("topic %q has replication factor %d", tp.Name, tp.ReplicationFactor)
			}
			seen[tp.Name] = true
			for k := range tp.Configs {
				if k == "" || strings.ContainsAny(k, " \t") {
					t.Fatalf("topic %q has config key %q", tp.Name, k)
				}
			}
		}
	})
}
