package webhook

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wanotify/wanotify/pkg/config"
	"github.com/wanotify/wanotify/pkg/metawebhook"
	"github.com/wanotify/wanotify/pkg/service"
	"github.com/wanotify/wanotify/pkg/testinfra"
)

func env(vars map[string]string) *config.Env {
	return config.New(func(k string) (string, bool) { v, ok := vars[k]; return v, ok }, nil)
}

func TestConfigureRefusesBadSettingsNamingTheVariable(t *testing.T) {
	cases := []struct {
		vars map[string]string
		want string
	}{
		{map[string]string{}, EnvSecret},
		{map[string]string{EnvSecret: "short-secret"}, "at least 32"},
		{map[string]string{EnvSecret: "change-me-webhook-secret"}, "example value"},
		{map[string]string{EnvSecret: DevSecret, EnvAddr: "0.0.0.0:8081"}, "not a loopback address"},
		{map[string]string{EnvSecret: svcSecret, EnvFormat: "xml"}, EnvFormat},
		{map[string]string{EnvSecret: svcSecret, EnvMaxBody: "0"}, EnvMaxBody},
		{map[string]string{EnvSecret: svcSecret, EnvPath: "/metrics"}, EnvPath},
		{map[string]string{EnvSecret: svcSecret, EnvPath: "webhooks"}, EnvPath},
		{map[string]string{EnvSecret: svcSecret, EnvAddr: "8081"}, EnvAddr},
		{map[string]string{EnvSecret: svcSecret, EnvSignatureHeader: "X Sig"}, EnvSignatureHeader},
		{map[string]string{EnvSecret: svcSecret, EnvProduceTimeout: "0s"}, EnvProduceTimeout},
		{map[string]string{EnvSecret: svcSecret, EnvProvider: strings.Repeat("p", 33)}, EnvProvider},
		{map[string]string{EnvSecret: svcSecret, EnvFormat: "envelope", EnvEnvelopeField: ""}, EnvEnvelopeField},
		{map[string]string{EnvSecret: svcSecret, "WANOTIFY_KAFKA_BROKERS": "nohost"}, "WANOTIFY_KAFKA_BROKERS"},
		{map[string]string{EnvSecret: svcSecret, EnvBodyMemory: "1048576"}, EnvBodyMemory}, // below the 4 MiB default body
		{map[string]string{EnvSecret: svcSecret, EnvBodyReadTimeout: "0s"}, EnvBodyReadTimeout},
	}
	for _, c := range cases {
		_, err := Configure(env(c.vars))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Configure(%v) = %v, want an error naming %s", c.vars, err, c.want)
		}
	}
	if _, err := Configure(env(map[string]string{EnvSecret: svcSecret})); err != nil {
		t.Errorf("defaults with a secret: %v", err)
	}
	if _, err := Configure(env(map[string]string{EnvSecret: DevSecret})); err != nil {
		t.Errorf("the development secret on the loopback default address: %v", err)
	}
	// The secret is never shown, not even its default.
	for _, v := range config.Registered() {
		if (v.Name == EnvSecret || v.Name == EnvVerifyToken) && (!v.Secret || v.Default != "") {
			t.Errorf("%s registered as %+v, want a secret without default", v.Name, v)
		}
	}
}

// svcSecret is a webhook secret of the required length.
const svcSecret = "svc-secret-0123456789abcdef-0123456789"

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestServiceEndToEnd runs the service as main.go does: the webhook path
// on the public listener, the admin endpoints on their own (the public
// port answers 404 on them), ready once Kafka answers, storing a signed
// webhook, exporting its metrics, and stopping cleanly.
func TestServiceEndToEnd(t *testing.T) {
	brokers := testinfra.KafkaWithTopics(t, 3)
	addr, admin := freeAddr(t), freeAddr(t)
	e := env(map[string]string{
		EnvAddr: addr, "WANOTIFY_ADMIN_ADDR": admin, EnvSecret: svcSecret, EnvVerifyToken: "tok",
		"WANOTIFY_KAFKA_BROKERS": strings.Join(brokers, ","), "WANOTIFY_LOG_LEVEL": "error",
	})
	signals := make(chan os.Signal, 1)
	exit := make(chan int, 1)
	go func() {
		exit <- service.Run(context.Background(), ServiceName, e, Configure, service.Options{DefaultAdminAddr: DefaultAdminAddr}, signals)
	}()
	base, adminBase := "http://"+addr, "http://"+admin
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get(adminBase + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}

	for _, p := range []string{"/metrics", "/healthz", "/readyz"} {
		resp, err := http.Get(base + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("public port %s: %d, want 404", p, resp.StatusCode)
		}
	}

	resp, err := http.Get(base + DefaultPath + "?hub.mode=subscribe&hub.verify_token=tok&hub.challenge=42")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(b) != "42" {
		t.Fatalf("handshake: %d %q", resp.StatusCode, b)
	}

	body := mustJSON(t, metaPayload(metaStatus("wamid.svc", "delivered", "447700900123", 1764324002)))
	req, _ := http.NewRequest(http.MethodPost, base+DefaultPath, bytes.NewReader(body))
	req.Header.Set(metawebhook.DefaultSignatureHeader, metawebhook.Sign([]byte(svcSecret), body))
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("webhook: %d", resp.StatusCode)
	}
	recs := consumeStatus(t, brokers, 1)
	if ev := decodeEvent(t, recs[0]); ev.EventID != "wh/wamid.svc/delivered" {
		t.Fatalf("stored %s", ev.EventID)
	}

	resp, err = http.Get(adminBase + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	m, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`wanotify_webhook_requests_total{outcome="accepted"} 1`,
		`wanotify_webhook_requests_total{outcome="verified"} 1`,
		`wanotify_webhook_statuses_total{result="produced",status="delivered"} 1`,
		`wanotify_webhook_produce_duration_seconds_count{result="ok"} 1`,
	} {
		if !strings.Contains(string(m), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(string(m), svcSecret) {
		t.Error("/metrics shows the secret")
	}

	signals <- syscall.SIGTERM
	select {
	case code := <-exit:
		if code != 0 {
			t.Fatalf("exit code %d", code)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("service did not stop")
	}
	if _, err := http.Get(adminBase + "/healthz"); err == nil {
		t.Error("still listening after shutdown")
	}
}
