// Command wanotify-local runs the whole pipeline on one machine (`make
// run`): broker, ClickHouse, topics, the provider simulator and every
// service, each as a supervised process of its own. A component that
// exits is restarted with back-off, alone; only Ctrl-C (or SIGTERM to
// this process) stops the stack.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/wanotify/wanotify/pkg/config"
	"github.com/wanotify/wanotify/pkg/ingest"
	"github.com/wanotify/wanotify/pkg/localstack"
	"github.com/wanotify/wanotify/pkg/senders"
	"github.com/wanotify/wanotify/pkg/webhook"
)

// Local-only credentials. They exist so `make run` needs no setup; a real
// deployment sets its own through the environment.
// The webhook secret is the receiver's own development value, which it
// accepts only on loopback (as ingest does its development key); every
// listener here is on 127.0.0.1.
const (
	devIngestKey    = "dev-key-demo"
	devProviderKey  = "wanotify-local-development-provider-key"
	devWebhookToken = "dev-verify-token"
	devWebhookSec   = webhook.DevSecret
)

// traceEnv points a service's OTLP export at the local trace store, and
// exports every second instead of every five so a trace shows up in
// notifyctl trace quickly.
var traceEnv = []string{"WANOTIFY_OTLP_ENDPOINT=127.0.0.1:4317", "OTEL_BSP_SCHEDULE_DELAY=1000"}

func main() {
	e := config.FromEnv()
	dataDir := e.String("WANOTIFY_LOCAL_DATA_DIR", ".data", "where the local stack keeps broker and ClickHouse data")
	binDir := e.String("WANOTIFY_LOCAL_BIN_DIR", "bin", "where the built service binaries are")
	chLib := e.String("WANOTIFY_CH_LIB", "", "path of libchdb.so (default: the cache of scripts/fetch-clickhouse.sh)")
	// The services read the same registry; the simulator is told its
	// numbers, so only the registry's number ids can send.
	reg := senders.Load(e)
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
		{Name: "traces", Bin: "traces", Optional: true, Address: "OTLP/gRPC 127.0.0.1:4317 → ClickHouse otel_traces (notifyctl trace <notification_id>)",
			Ready: localstack.HTTPReady("http://127.0.0.1:13133/readyz")},
		{Name: "simulator", Bin: "simulator", Optional: true, Address: "http://127.0.0.1:8090 (Xpressbot simulator; /admin/ledger)",
			Env: []string{"WANOTIFY_SIM_ADDR=127.0.0.1:8090", "WANOTIFY_SIM_API_KEY=" + devProviderKey,
				"WANOTIFY_SIM_WEBHOOK_URL=http://127.0.0.1:8081/v1/webhooks/whatsapp", "WANOTIFY_SIM_WEBHOOK_SECRET=" + devWebhookSec,
				"WANOTIFY_SIM_PHONE_NUMBER_IDS=" + numberIDs(reg)},
			Ready:       localstack.HTTPReady("http://127.0.0.1:8090/healthz"),
			RestartNote: "its ledger lived in its memory: it starts empty (the ledger survives restarts of every other component)"},
		{Name: "webhook", Bin: "webhook", Optional: true, Address: "http://127.0.0.1:8081/v1/webhooks/whatsapp, admin http://" + webhook.DefaultAdminAddr + "/metrics",
			Env:   []string{"WANOTIFY_WEBHOOK_SECRET=" + devWebhookSec, "WANOTIFY_WEBHOOK_VERIFY_TOKEN=" + devWebhookToken},
			Ready: localstack.HTTPReady("http://" + webhook.DefaultAdminAddr + "/readyz")},
		{Name: "sink", Bin: "sink", Optional: true, Address: "admin http://127.0.0.1:9465/metrics",
			Ready: localstack.HTTPReady("http://127.0.0.1:9465/readyz")},
		{Name: "dispatcher", Bin: "dispatcher", Optional: true, Address: "admin http://127.0.0.1:9464/metrics",
			Env:   []string{"WANOTIFY_XPRESSBOT_API_KEY=" + devProviderKey, "WANOTIFY_XPRESSBOT_BASE_URL=http://127.0.0.1:8090"},
			Ready: localstack.HTTPReady("http://127.0.0.1:9464/readyz")},
		{Name: "ingest", Bin: "ingest", Optional: true, Address: "http://127.0.0.1:8080/v1/notifications (API key: " + devIngestKey + "), admin http://" + ingest.DefaultAdminAddr + "/metrics",
			Env:   []string{"WANOTIFY_INGEST_API_KEYS=demo:" + hex.EncodeToString(keyHash[:])},
			Ready: localstack.HTTPReady("http://" + ingest.DefaultAdminAddr + "/readyz")},
	}}
	for i, c := range stack.Components {
		switch c.Name {
		case "ingest", "dispatcher", "webhook", "sink":
			stack.Components[i].Env = append(c.Env, traceEnv...)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := stack.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "local:", err)
		os.Exit(1)
	}
}

// numberIDs lists the registry's phone number ids for the simulator.
func numberIDs(r *senders.Registry) string {
	var ids []string
	for _, s := range r.Senders() {
		ids = append(ids, s.NumberID)
	}
	return strings.Join(ids, ",")
}
