package main

import (
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
	"github.com/wanotify/wanotify/pkg/ingest"
	"github.com/wanotify/wanotify/pkg/service"
	"github.com/wanotify/wanotify/pkg/testinfra"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestInternalEndpointsOnlyOnTheAdminListener runs ingest as main.go
// does: the API port answers 404 on /metrics and the probes (an Ingress
// in front of it must not expose them), the admin listener serves them.
func TestInternalEndpointsOnlyOnTheAdminListener(t *testing.T) {
	brokers := testinfra.KafkaWithTopics(t, 3)
	api, admin := freeAddr(t), freeAddr(t)
	env := map[string]string{
		"WANOTIFY_INGEST_ADDR":         api,
		"WANOTIFY_ADMIN_ADDR":          admin,
		"WANOTIFY_KAFKA_BROKERS":       strings.Join(brokers, ","),
		"WANOTIFY_INGEST_STATUS_READS": "false",
		"WANOTIFY_LOG_LEVEL":           "error",
	}
	e := config.New(func(k string) (string, bool) { v, ok := env[k]; return v, ok }, nil)
	signals := make(chan os.Signal, 1)
	exit := make(chan int, 1)
	go func() {
		exit <- service.Run(context.Background(), "ingest", e, ingest.Configure, service.Options{DefaultAdminAddr: ingest.DefaultAdminAddr}, signals)
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if code, _ := get(t, "http://"+admin+"/readyz"); code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the admin listener never reported ready")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The API itself is on the public port.
	if code, _ := get(t, "http://"+api+"/v1/notifications/n-1"); code != http.StatusUnauthorized {
		t.Errorf("API port GET /v1/notifications/n-1 without a key: %d, want 401", code)
	}
	if code, body := get(t, "http://"+admin+"/metrics"); code != http.StatusOK || !strings.Contains(body, "wanotify_ingest_requests_total") {
		t.Errorf("admin /metrics: %d, want 200 with the ingest metrics", code)
	}
	if code, _ := get(t, "http://"+admin+"/healthz"); code != http.StatusOK {
		t.Errorf("admin /healthz: %d", code)
	}
	for _, p := range []string{"/metrics", "/healthz", "/readyz"} {
		if code, _ := get(t, "http://"+api+p); code != http.StatusNotFound {
			t.Errorf("API port %s: %d, want 404", p, code)
		}
	}
	signals <- syscall.SIGTERM
	select {
	case code := <-exit:
		if code != 0 {
			t.Fatalf("exit code %d", code)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("ingest did not stop")
	}
}

func TestDefaultAdminAddrIsLoopbackAndApart(t *testing.T) {
	host, port, err := net.SplitHostPort(ingest.DefaultAdminAddr)
	if err != nil || !net.ParseIP(host).IsLoopback() {
		t.Fatalf("DefaultAdminAddr %q is not a loopback host:port", ingest.DefaultAdminAddr)
	}
	if port == "8080" || port == "9464" || port == "9465" {
		t.Fatalf("DefaultAdminAddr %q shares a port with another service", ingest.DefaultAdminAddr)
	}
}
