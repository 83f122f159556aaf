package chaos

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wanotify/wanotify/pkg/chlocal"
	"github.com/wanotify/wanotify/pkg/testinfra"
)

// testLog writes each line of the scenario's progress to the test log.
type testLog struct {
	mu  sync.Mutex
	t   *testing.T
	buf bytes.Buffer
}

func (l *testLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(p)
	for {
		line, err := l.buf.ReadString('\n')
		if err != nil {
			l.buf.WriteString(line)
			return len(p), nil
		}
		l.t.Log(strings.TrimRight(line, "\n"))
	}
}

// buildServices builds the binaries the scenario runs, as `make build`
// does, into a directory of the test.
func buildServices(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "bin")
	args := []string{"build", "-o", dir + string(filepath.Separator)}
	for _, role := range []string{RoleBroker, RoleClickHouse, RoleSimulator, RoleWebhook, RoleSink, RoleDispatcher} {
		args = append(args, "./services/"+role)
	}
	cmd := exec.Command("go", args...)
	cmd.Dir = testinfra.RepoRoot()
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	start := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	t.Logf("built the services in %s", time.Since(start).Round(100*time.Millisecond))
	return dir
}

// TestShortScenario is the short version of `make chaos`: 5,000
// notifications through the whole pipeline as separate processes while a
// dispatcher is killed with SIGKILL every few seconds, the provider is
// down for 5 s, and ClickHouse and the broker are killed and restarted;
// every invariant must hold exactly.
func TestShortScenario(t *testing.T) {
	if testing.Short() {
		t.Skip("the chaos scenario takes about two minutes")
	}
	lib := os.Getenv("WANOTIFY_CH_LIB")
	if lib == "" {
		lib = chlocal.DefaultLibPath()
	}
	if _, err := os.Stat(lib); err != nil {
		testinfra.RequireCI(t, "ClickHouse library not found at "+lib+" (run the tests through scripts/with-clickhouse.sh, as make test does)")
	}
	cfg := Short()
	cfg.Launcher = BinDir(buildServices(t))
	cfg.WorkDir = t.TempDir()
	cfg.ClickHouseLib = lib
	cfg.TopicsFile = filepath.Join(testinfra.RepoRoot(), "topics.yaml")
	if testinfra.KafkaIsApache() {
		// The scenario kills its broker: it runs an Apache Kafka of its
		// own from the jars scripts/with-kafka.sh fetched, not the
		// broker the other tests share.
		cfg.Kafka = KafkaApache
		cfg.KafkaLibs = os.Getenv("WANOTIFY_KAFKA_LIBS")
		if cfg.KafkaLibs == "" {
			t.Fatal("WANOTIFY_TEST_KAFKA=apache without WANOTIFY_KAFKA_LIBS: run the test through scripts/with-kafka.sh")
		}
	}
	cfg.Out = &testLog{t: t}
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	r, err := Run(ctx, cfg)
	if r != nil {
		var b strings.Builder
		r.Write(&b)
		t.Log("\n" + b.String())
	}
	if err != nil {
		t.Fatal(err)
	}
	if !r.OK() {
		t.Fatal("invariants failed (see the table above)")
	}
}
