package topics_test

import (
	"strings"
	"testing"
	"time"

	"github.com/wanotify/wanotify/pkg/topics"
)

// Broken topics files tried on purpose: each is refused with an error
// that says what is wrong, quickly, and nothing half-parsed comes back.
func TestBrokenTopicsFilesAreRefusedWithTheReason(t *testing.T) {
	const ok = "defaults: {partitions: 3, replication_factor: 1}\ntopics:\n"
	laughs := "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
	for i := 'b'; i <= 'j'; i++ {
		prev := string(i - 1)
		laughs += string(i) + ": &" + string(i) + " [*" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev +
			", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + "]\n"
	}
	cases := []struct {
		name, yaml, want string
	}{
		{"partitions as text", ok + "  - name: a\n    partitions: twelve\n", "cannot unmarshal"},
		{"partitions beyond int32", ok + "  - name: a\n    partitions: 99999999999\n", "cannot unmarshal"},
		{"negative partitions", ok + "  - name: a\n    partitions: -4\n", `topic "a": partitions`},
		{"replication factor as a list", ok + "  - name: a\n    replication_factor: [1]\n", "cannot unmarshal"},
		{"configs as a list", ok + "  - name: a\n    configs: [retention.ms]\n", "cannot unmarshal"},
		{"config key with a space", ok + "  - name: a\n    configs: {\"retention ms\": \"1\"}\n", `configs: invalid key "retention ms"`},
		{"topics as a map", "topics: {name: a}\n", "cannot unmarshal"},
		{"name missing", ok + "  - partitions: 3\n", "name: required"},
		{"name with a slash", ok + "  - name: notifications/requested\n", "name: only letters"},
		{"name too long", ok + "  - name: " + strings.Repeat("n", 250) + "\n", "name: only letters"},
		{"unknown top-level field", ok + "  - name: a\nversion: 2\n", "version"},
		{"tab indentation", "topics:\n\t- name: a\n", "topics file"},
		{"truncated", (ok + "  - name: a\n    configs: {retention.ms: \"1\"")[:len(ok)+30], "topics file"},
		{"empty file", "", "topics file"},
		{"binary", "\x00\xff\xfe", "topics file"},
		{"alias bomb", laughs + "topics: *j\n", "topics file"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			f, err := topics.Parse([]byte(c.yaml))
			if err == nil {
				t.Fatalf("accepted: %+v", f)
			}
			if f != nil {
				t.Errorf("a refused file came back half-parsed: %+v", f)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not mention %q", err, c.want)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("took %s", d)
			}
		})
	}
}
