// Command wanotify-local runs the whole pipeline on one machine (`make
// run`): broker, ClickHouse, topics, the provider simulator and every
// service, each as a supervised process of its own.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/wanotify/wanotify/pkg/config"
	"github.com/wanotify/wanotify/pkg/localstack"
)

// Local-only credentials. They exist so `make run` needs no setup; a real
// deployment sets its own through the environment.
const (
	devIngestKey    = "dev-key-demo"
	devProviderKey  = "dev-provider-key"
	devWebhookToken = "dev-verify-token"
	devWebhookSec   = "dev-webhook-secret"
)

func main() {
	e := config.FromEnv()
	dataDir := e.String("WANOTIFY_LOCAL_DATA_DIR", ".data", "where the local stack keeps broker and ClickHouse data")
	binDir := e.String("WANOTIFY_LOCAL_BIN_DIR", "bin", "where the built service binaries are")
	chLib := e.String("WANOTIFY_CH_LIB", "", "path of libchdb.so (default: the cache of scripts/fetch-clickhouse.sh)")
	kind := e.String("WANOTIFY_BROKER_KIND", "kfake", "local broker: kfake (in process) or apache (Apache Kafka; make run KAFKA=apache)")
	if e.Help {
		fmt.Print(config.Usage("local"))
		return
	}
	if err := e.Err(); err != nil {
		fmt.Fprintln(os.Stderr, "local:", err)
		os.Exit(2)
	}
	keyHash := sha256.Sum256([]byte(devIngestKey))
	abs := func(p string) string { a, _ := filepath.Abs(p); return a }
	// kfake and Apache Kafka keep different logs; each has its own
	// directory. One Apache Kafka broker cannot meet topics.yaml's
	// min.insync.replicas=2 (kfake ignores it): it gets the one-broker
	// topics file that docker-compose.yml uses.
	brokerDir, topicsFile, brokerWait := filepath.Join(dataDir, "kafka"), "topics.yaml", time.Duration(0)
	if kind == "apache" {
		brokerDir, topicsFile, brokerWait = filepath.Join(dataDir, "apache-kafka"), "deploy/compose/topics.yaml", 3*time.Minute
	}

	stack := &localstack.Stack{BinDir: binDir, Components: []localstack.Component{
		{Name: "broker", Bin: "broker", Address: "kafka://127.0.0.1:9092",
			Env:   []string{"WANOTIFY_BROKER_DATA_DIR=" + abs(brokerDir)},
			Ready: localstack.TCPReady("127.0.0.1:9092"), ReadyTimeout: brokerWait},
		{Name: "clickhouse", Bin: "clickhouse", Address: "native 127.0.0.1:9000, http://127.0.0.1:8123",
			Env:   []string{"WANOTIFY_CH_DATA_DIR=" + abs(filepath.Join(dataDir, "clickhouse")), "WANOTIFY_CH_LIB=" + chLib},
			Ready: localstack.HTTPReady("http://127.0.0.1:8123/ping"), ReadyTimeout: 120 * time.Second},
		{Name: "topics", Bin: "notifyctl", Args: []string{"topics", "apply", "--file", topicsFile}, OneShot: true},
		{Name: "simulator", Bin: "simulator", Optional: true, Address: "http://127.0.0.1:8090 (Xpressbot simulator; /admin/ledger)",
			Env: []string{"WANOTIFY_SIM_ADDR=127.0.0.1:8090", "WANOTIFY_SIM_API_KEY=" + devProviderKey,
				"WANOTIFY_SIM_WEBHOOK_URL=http://127.0.0.1:8081/v1/webhooks/whatsapp", "WANOTIFY_SIM_WEBHOOK_SECRET=" + devWebhookSec},
			Ready: localstack.HTTPReady("http://127.0.0.1:8090/healthz")},
		{Name: "webhook", Bin: "webhook", Optional: true, Address: "http://127.0.0.1:8081/v1/webhooks/whatsapp",
			Env:   []string{"WANOTIFY_WEBHOOK_SECRET=" + devWebhookSec, "WANOTIFY_WEBHOOK_VERIFY_TOKEN=" + devWebhookToken},
			Ready: localstack.HTTPReady("http://127.0.0.1:8081/readyz")},
		{Name: "sink", Bin: "sink", Optional: true, Address: "admin http://127.0.0.1:9465/metrics",
			Ready: localstack.HTTPReady("http://127.0.0.1:9465/readyz")},
		{Name: "dispatcher", Bin: "dispatcher", Optional: true, Address: "admin http://127.0.0.1:9464/metrics",
			Env:   []string{"WANOTIFY_XPRESSBOT_API_KEY=" + devProviderKey, "WANOTIFY_XPRESSBOT_BASE_URL=http://127.0.0.1:8090"},
			Ready: localstack.HTTPReady("http://127.0.0.1:9464/readyz")},
		{Name: "ingest", Bin: "ingest", Optional: true, Address: "http://127.0.0.1:8080/v1/notifications (API key: " + devIngestKey + ")",
			Env:   []string{"WANOTIFY_INGEST_API_KEYS=demo:" + hex.EncodeToString(keyHash[:])},
			Ready: localstack.HTTPReady("http://127.0.0.1:8080/readyz")},
	}}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := stack.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "local:", err)
		os.Exit(1)
	}
}
