package service

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wanotify/wanotify/pkg/config"
	"github.com/wanotify/wanotify/pkg/kafkaconf"
)

// TestMain lets the test binary run itself as a service process.
func TestMain(m *testing.M) {
	if os.Getenv("WANOTIFY_SERVICE_TEST_CHILD") == "warn" {
		Main("child", func(e *config.Env) (Body, error) {
			kc := kafkaconf.Load(e, "child")
			if err := kc.Validate(); err != nil {
				return nil, err
			}
			return func(context.Context, *Runtime) error { return nil }, nil
		}, Options{})
	}
	if os.Getenv("WANOTIFY_SERVICE_TEST_CHILD") == "1" {
		Main("child", func(e *config.Env) (Body, error) {
			return func(ctx context.Context, rt *Runtime) error {
				rt.SetReady(true)
				<-ctx.Done()
				time.Sleep(100 * time.Millisecond) // drain
				return nil
			}, nil
		}, Options{})
	}
	os.Exit(m.Run())
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func status(url string) int {
	resp, err := http.Get(url)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestSIGTERMFlipsReadinessFirstThenExitsCleanly(t *testing.T) {
	addr := freeAddr(t)
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "WANOTIFY_SERVICE_TEST_CHILD=1", "WANOTIFY_ADMIN_ADDR="+addr,
		"WANOTIFY_SHUTDOWN_READINESS_GRACE=1s")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	ready := "http://" + addr + "/readyz"
	deadline := time.Now().Add(10 * time.Second)
	for status(ready) != 200 {
		if time.Now().After(deadline) {
			t.Fatal("child never became ready")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// The process keeps serving with readiness 503 for the 1 s grace.
	sawUnready := false
	for deadline := time.Now().Add(5 * time.Second); !sawUnready && time.Now().Before(deadline); {
		if status(ready) == 503 {
			sawUnready = true
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !sawUnready {
		t.Fatal("readiness never reported 503 while the process drained")
	}
	if h := status("http://" + addr + "/healthz"); h != 200 {
		t.Errorf("healthz during drain = %d, want 200", h)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child exited with %v, want a clean exit", err)
	}
}

func TestInvalidConfigurationExits2NamingTheVariable(t *testing.T) {
	e := config.New(func(k string) (string, bool) {
		if k == "WANOTIFY_LOG_LEVEL" {
			return "loud", true
		}
		return "", false
	}, nil)
	code := Run(context.Background(), "t", e, func(e *config.Env) (Body, error) {
		return nil, errors.New("WANOTIFY_X: bad")
	}, Options{}, make(chan os.Signal))
	if code != 2 {
		t.Fatalf("exit code %d, want 2", code)
	}
}

func TestBodyErrorExits1(t *testing.T) {
	e := config.New(func(string) (string, bool) { return "", false }, nil)
	code := Run(context.Background(), "t", e, func(e *config.Env) (Body, error) {
		return func(ctx context.Context, rt *Runtime) error { return fmt.Errorf("boom") }, nil
	}, Options{}, make(chan os.Signal))
	if code != 1 {
		t.Fatalf("exit code %d, want 1", code)
	}
}

// TestInsecureSettingsAreLoggedAtStart: what was accepted although it
// is insecure (here SASL PLAIN without TLS, explicitly allowed, and
// unverified TLS certificates) is a warning in the service's first log
// lines, naming the variable.
func TestInsecureSettingsAreLoggedAtStart(t *testing.T) {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "WANOTIFY_SERVICE_TEST_CHILD=warn", "WANOTIFY_ADMIN_ADDR=",
		"WANOTIFY_KAFKA_BROKERS=kafka.example:9092", "WANOTIFY_KAFKA_SASL_MECHANISM=PLAIN",
		"WANOTIFY_KAFKA_SASL_USERNAME=u", "WANOTIFY_KAFKA_SASL_PASSWORD=p", "WANOTIFY_KAFKA_ALLOW_INSECURE_SASL=true")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	for _, want := range []string{`"variable":"WANOTIFY_KAFKA_ALLOW_INSECURE_SASL"`, "SASL PLAIN without TLS", `"level":"WARN"`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("start log lacks %s:\n%s", want, out)
		}
	}
}
