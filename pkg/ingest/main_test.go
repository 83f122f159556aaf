package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/mux"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"

	"github.com/wanotify/wanotify/pkg/config"
	"github.com/wanotify/wanotify/pkg/senders"
	"github.com/wanotify/wanotify/pkg/service"
	"github.com/wanotify/wanotify/pkg/telemetry"
	"github.com/wanotify/wanotify/pkg/testinfra"
	"github.com/wanotify/wanotify/pkg/topics"
)

// tel holds the global tracer and meter providers the tests run under,
// as a service process does after telemetry.Setup.
var tel *telemetry.Telemetry

func TestMain(m *testing.M) {
	var err error
	tel, err = telemetry.Setup(context.Background(), telemetry.Config{ServiceName: "ingest-test", SampleRatio: 1, LogLevel: "error"}, io.Discard)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	if code == 0 {
		code = checkDeclaredCodesSeen()
	}
	if code == 0 {
		if err := goleak.Find(goleak.IgnoreCurrent()); err != nil {
			fmt.Fprintln(os.Stderr, "goroutine leak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// Keys of the test tenants; the configuration holds only their hashes.
const (
	keyAcme   = "acme-key-1"
	keyAcme2  = "acme-key-2"
	keyGlobex = "globex-key"
)

func testConfig(brokers []string) Config {
	e := config.New(func(string) (string, bool) { return "", false }, nil)
	c := Load(e)
	c.APIKeys = []string{"acme:" + HashKey(keyAcme), "acme:" + HashKey(keyAcme2), "globex:" + HashKey(keyGlobex)}
	c.Kafka.Brokers = brokers
	c.ProduceTimeout = 2 * time.Second
	c.Senders = testSenders
	return c
}

// testSenders: acme owns acme-main (its default) and acme-alt, globex owns
// globex-main; both may send any template and free text.
var testSenders = func() *senders.Registry {
	r, err := senders.New(senders.File{
		Senders: []senders.Sender{
			{Name: "acme-main", Tenants: []string{"acme"}, NumberID: "100"},
			{Name: "acme-alt", Tenants: []string{"acme"}, NumberID: "101"},
			{Name: "globex-main", Tenants: []string{"globex"}, NumberID: "200"},
		},
		Tenants: []senders.Tenant{
			{Name: "acme", DefaultSender: "acme-main", FreeText: true},
			{Name: "globex", DefaultSender: "globex-main", FreeText: true},
		},
	}, "test")
	if err != nil {
		panic(err)
	}
	return r
}()

type harness struct {
	t       testing.TB
	brokers []string
	srv     *Server
	router  *mux.Router
	admin   *mux.Router // the admin listener's routes, apart as in production
	rt      *service.Runtime
}

// newHarness serves the API over a kfake cluster with every topic of
// topics.yaml, through a producer built exactly as Run builds it.
func newHarness(t testing.TB, edit func(c *Config)) *harness {
	t.Helper()
	brokers := testinfra.KafkaWithTopics(t, 3)
	return newHarnessOn(t, brokers, edit, nil)
}

func newHarnessOn(t testing.TB, brokers []string, edit func(c *Config), reader StatusReader, extra ...kgo.Opt) *harness {
	t.Helper()
	c := testConfig(brokers)
	if edit != nil {
		edit(&c)
	}
	opts, err := ProducerOpts(c)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(append(opts, extra...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	srv, err := NewServer(c, cl, reader, nil)
	if err != nil {
		t.Fatal(err)
	}
	rt := &service.Runtime{Name: "ingest", Telemetry: tel}
	rt.SetHealthy(true)
	admin := mux.NewRouter()
	rt.AdminRoutes(admin)
	return &harness{t: t, brokers: brokers, srv: srv, router: srv.Router(), admin: admin, rt: rt}
}

type reply struct {
	code   int
	header http.Header
	body   []byte
}

func (r reply) problem(t *testing.T) Problem {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != ProblemContentType {
		t.Fatalf("status %d with Content-Type %q, want %s: %s", r.code, ct, ProblemContentType, r.body)
	}
	var p Problem
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatalf("problem body: %v: %s", err, r.body)
	}
	if p.Status != r.code || p.Type == "" || p.Title == "" {
		t.Fatalf("problem %+v does not match status %d", p, r.code)
	}
	return p
}

func (r reply) hasField(t *testing.T, field string) {
	t.Helper()
	p := r.problem(t)
	for _, f := range p.Errors {
		if f.Field == field {
			return
		}
	}
	t.Fatalf("no error naming %q: %s", field, r.body)
}

// do sends a request through the full router and checks that the answer
// is one the route declares (and so one schemas/openapi.yaml documents).
func (h *harness) do(method, path, key string, body []byte, hdr ...string) reply {
	h.t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req := httptest.NewRequest(method, path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i+1] == "" {
			req.Header.Del(hdr[i])
		} else {
			req.Header.Set(hdr[i], hdr[i+1])
		}
	}
	w := httptest.NewRecorder()
	h.router.ServeHTTP(w, req)
	res := w.Result()
	b, _ := io.ReadAll(res.Body)
	noteAnswer(h.t, h.router, req, res.StatusCode)
	return reply{code: res.StatusCode, header: res.Header, body: b}
}

// adminGet sends a GET to the admin listener's routes.
func (h *harness) adminGet(path string) reply {
	h.t.Helper()
	w := httptest.NewRecorder()
	h.admin.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
	res := w.Result()
	b, _ := io.ReadAll(res.Body)
	return reply{code: res.StatusCode, header: res.Header, body: b}
}

func (h *harness) post(key string, body string, hdr ...string) reply {
	h.t.Helper()
	return h.do(http.MethodPost, "/v1/notifications", key, []byte(body), hdr...)
}

var (
	seenMu sync.Mutex
	seen   = map[string]map[int]bool{}
)

// noteAnswer fails the test when a route answers with a status it does not
// declare, and records the answer for checkDeclaredCodesSeen.
func noteAnswer(t testing.TB, router *mux.Router, req *http.Request, code int) {
	t.Helper()
	var m mux.RouteMatch
	if !router.Match(req, &m) || m.Route == nil {
		return
	}
	name := m.Route.GetName()
	for _, rt := range apiRoutes {
		if rt.name == name && !slices.Contains(rt.codes, code) {
			t.Errorf("%s answered %d, which it does not declare (%v)", name, code, rt.codes)
		}
	}
	seenMu.Lock()
	if seen[name] == nil {
		seen[name] = map[int]bool{}
	}
	seen[name][code] = true
	seenMu.Unlock()
}

// checkDeclaredCodesSeen makes sure each declared status is produced by at
// least one test, when the whole suite ran.
func checkDeclaredCodesSeen() int {
	if f := flagValue("test.run"); f != "" {
		return 0
	}
	var missing []string
	for _, rt := range apiRoutes {
		for _, c := range rt.codes {
			if !seen[rt.name][c] {
				missing = append(missing, fmt.Sprintf("%s %d", rt.name, c))
			}
		}
	}
	if len(missing) > 0 {
		fmt.Fprintln(os.Stderr, "declared status codes no test produced:", strings.Join(missing, ", "))
		return 1
	}
	return 0
}

func flagValue(name string) string {
	for i, a := range os.Args {
		a = strings.TrimLeft(a, "-")
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v
		}
		if a == name && i+1 < len(os.Args) {
			return os.Args[i+1]
		}
	}
	return ""
}

// laneTopics are the topics ingest writes, one per lane.
var laneTopics = []string{topics.Critical, topics.Requested, topics.Bulk}

// endOffset is the number of records on the lanes' topics.
func endOffset(t testing.TB, brokers []string) int64 {
	t.Helper()
	adm := kadm.NewClient(testinfra.Client(t, brokers))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	offs, err := adm.ListEndOffsets(ctx, laneTopics...)
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	offs.Each(func(o kadm.ListedOffset) { total += o.Offset })
	return total
}

// consume reads want records of the lanes' topics from the start.
func consume(t *testing.T, brokers []string, want int) []*kgo.Record {
	t.Helper()
	cl := testinfra.Client(t, brokers, kgo.ConsumeTopics(laneTopics...), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out []*kgo.Record
	for len(out) < want {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("got %d records, want %d", len(out), want)
		}
		out = append(out, fs.Records()...)
	}
	return out
}

const otpBody = `{"event_type":"otp","user_id":"u-1001","event_time":"2026-11-28T10:00:00Z","recipient":"+44 7100 900123",
 "template":{"name":"otp_code","language":"en_US","parameters":["482913"]},"ttl":300,"metadata":{"request_id":"r-77"}}`

func testinfraBrokers(t testing.TB) []string {
	t.Helper()
	return testinfra.KafkaWithTopics(t, 3)
}
