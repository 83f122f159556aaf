package sink

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/wanotify/wanotify/pkg/config"
	"github.com/wanotify/wanotify/pkg/service"
	"github.com/wanotify/wanotify/pkg/testinfra"
)

// TestServiceReadinessAndMetrics runs the sink as its binary does
// (service.Run with Configure, configuration from the environment) and
// checks /readyz and the metric names operators alert on.
func TestServiceReadinessAndMetrics(t *testing.T) {
	db := testinfra.ClickHouseDatabase(t)
	brokers := testinfra.KafkaWithTopics(t, 3)
	d := simulateTraffic(t, 5, 2000, time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC))
	cl := testinfra.Client(t, brokers)
	produce(t, cl, d.all())

	admin := "127.0.0.1:" + strconv.Itoa(freePort(t))
	eraseAddr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	eraseToken := "erase-token-1"
	env := map[string]string{
		"WANOTIFY_KAFKA_BROKERS":       strings.Join(brokers, ","),
		"WANOTIFY_CLICKHOUSE_ADDR":     db.Server.Addr,
		"WANOTIFY_CLICKHOUSE_DATABASE": db.Name,
		"WANOTIFY_ADMIN_ADDR":          admin,
		"WANOTIFY_SINK_GROUP":          "sink-service",
		"WANOTIFY_SINK_BATCH_INTERVAL": "100ms",
		// The traffic is dated June 2026: keep it (see newTestSink).
		"WANOTIFY_SINK_RETENTION_DAYS":       "0",
		"WANOTIFY_SINK_ERROR_RETENTION_DAYS": "0",
		"WANOTIFY_SINK_ERASE_ADDR":           eraseAddr,
		"WANOTIFY_SINK_ERASE_TOKENS":         fmt.Sprintf("dpo:%x", sha256.Sum256([]byte(eraseToken))),
		"WANOTIFY_LOG_LEVEL":                 "error",
	}
	e := config.New(func(k string) (string, bool) { v, ok := env[k]; return v, ok }, nil)
	signals := make(chan os.Signal, 1)
	code := make(chan int, 1)
	go func() {
		code <- service.Run(context.Background(), ServiceName, e, Configure, service.Options{DefaultAdminAddr: DefaultAdminAddr}, signals)
	}()
	stopped := false
	defer func() {
		if !stopped {
			signals <- syscall.SIGTERM
			<-code
		}
	}()

	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + admin + path)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	waitFor(t, 60*time.Second, "/readyz 200", func() bool { c, _ := get("/readyz"); return c == http.StatusOK })
	waitConsumed(t, kadm.NewClient(cl), "sink-service", time.Minute)
	if n := queryUint(t, db.Conn, "SELECT count() FROM communication_logs"); n != uint64(len(d.notifications)) {
		t.Errorf("communication_logs has %d rows, want %d", n, len(d.notifications))
	}
	// The erase API runs with the service: an erasure of one recipient
	// leaves communication_logs without them.
	var victim string
	for _, m := range d.notifications {
		victim = m.recipient
		break
	}
	req, _ := http.NewRequest(http.MethodPost, "http://"+eraseAddr+"/v1/erasures", strings.NewReader(`{"recipient":"`+victim+`"}`))
	req.Header.Set("Authorization", "Bearer "+eraseToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("erase API: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("erase API: %d %s", resp.StatusCode, body)
	}
	if n := queryUint(t, db.Conn, "SELECT count() FROM communication_logs WHERE recipient = ?", victim); n != 0 {
		t.Errorf("communication_logs keeps %d rows of the erased recipient", n)
	}
	if n := queryUint(t, db.Conn, "SELECT count() FROM erasures WHERE actor = 'dpo' AND via = 'api'"); n != 1 {
		t.Errorf("erasures has %d rows of the API's erasure, want 1", n)
	}

	_, metrics := get("/metrics")
	for _, name := range []string{
		`wanotify_sink_rows_total{table="notification_events"}`,
		`wanotify_sink_rows_total{table="ingest_errors"}`,
		`wanotify_sink_rows_total{table="dead_letters"}`,
		"wanotify_sink_batch_size_bucket",
		"wanotify_sink_batch_duration_seconds_bucket",
		"wanotify_sink_freshness_seconds_bucket",
		`wanotify_sink_decode_errors_total{topic="notifications.requested"}`,
		`wanotify_sink_lag{group="sink-service",topic="notifications.status"} 0`,
	} {
		if !strings.Contains(metrics, name) {
			t.Errorf("/metrics lacks %s", name)
		}
	}

	signals <- syscall.SIGTERM
	stopped = true
	select {
	case c := <-code:
		if c != 0 {
			t.Errorf("exit code %d", c)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("sink did not stop after SIGTERM")
	}
}
