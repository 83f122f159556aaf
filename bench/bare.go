package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/gorilla/mux"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wanotify/wanotify/pkg/topics"
)

// The bare baselines: the least code that does the same I/O as a service,
// with none of its checks, so the ratio of the two is what the service's
// own work costs. They run as separate processes (the harness binary
// re-run with -role), like the services they are compared with.

// bareRequest is decoded from a publish body, as a handler that at least
// looks at what it forwards would.
type bareRequest struct {
	IdempotencyKey string `json:"idempotency_key"`
	EventType      string `json:"event_type"`
	UserID         string `json:"user_id"`
	Recipient      string `json:"recipient"`
	Template       *struct {
		Name       string   `json:"name"`
		Language   string   `json:"language"`
		Parameters []string `json:"parameters"`
	} `json:"template"`
	TTL      int               `json:"ttl"`
	Metadata map[string]string `json:"metadata"`
}

// ServeBareIngest serves POST /v1/notifications on addr until ctx ends: a
// gorilla/mux handler that decodes the JSON body and ProduceSyncs the same
// bytes to notifications.requested, keyed by recipient, acks=all, no
// linger (the ingest service's producer settings), answering 202.
func ServeBareIngest(ctx context.Context, addr string, kafkaOpts []kgo.Opt) error {
	cl, err := kgo.NewClient(append(kafkaOpts, kgo.ProducerLinger(0), kgo.DefaultProduceTopic(topics.Requested))...)
	if err != nil {
		return err
	}
	defer cl.Close()
	r := mux.NewRouter()
	r.HandleFunc("/v1/notifications", func(w http.ResponseWriter, req *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, 64<<10))
		if err != nil {
			http.Error(w, "unreadable body", http.StatusBadRequest)
			return
		}
		var n bareRequest
		if err := json.Unmarshal(body, &n); err != nil || n.Recipient == "" {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		if err := cl.ProduceSync(req.Context(), &kgo.Record{Key: []byte(n.Recipient), Value: body}).FirstErr(); err != nil {
			http.Error(w, "not written", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		_, _ = io.WriteString(w, `{"id":"`+n.IdempotencyKey+`"}`)
	}).Methods(http.MethodPost)
	return serveBare(ctx, addr, r)
}

// ServeBareWebhook serves POST path on addr: reads the body and produces
// the same bytes to notifications.status (acks=all, no linger), without
// verifying or parsing anything, answering 200.
func ServeBareWebhook(ctx context.Context, addr, path string, kafkaOpts []kgo.Opt) error {
	cl, err := kgo.NewClient(append(kafkaOpts, kgo.ProducerLinger(0), kgo.DefaultProduceTopic(topics.Status))...)
	if err != nil {
		return err
	}
	defer cl.Close()
	return serveBare(ctx, addr, BareWebhookHandler(cl, path))
}

// BareWebhookHandler is the webhook receiver's baseline: POST path
// produces the body it read (at most 1 MiB), as it is, to cl's default
// produce topic, keyed by a counter, and answers 200 once Kafka has it.
func BareWebhookHandler(cl *kgo.Client, path string) *mux.Router {
	var seq atomic.Int64
	r := mux.NewRouter()
	r.HandleFunc(path, func(w http.ResponseWriter, req *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, 1<<20))
		if err != nil {
			http.Error(w, "unreadable body", http.StatusBadRequest)
			return
		}
		// Keys spread the records over the partitions as recipients do.
		key := strconv.AppendInt(nil, seq.Add(1), 10)
		if err := cl.ProduceSync(req.Context(), &kgo.Record{Key: key, Value: body}).FirstErr(); err != nil {
			http.Error(w, "not written", http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	}).Methods(http.MethodPost)
	return r
}

func serveBare(ctx context.Context, addr string, r *mux.Router) error {
	r.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: r, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// RunBareRelay is the dispatcher's baseline: consume the lanes' topics
// (notifications.critical, .requested, .bulk) in a consumer group, POST each record to the provider's send endpoint
// (concurrency calls in flight), and on success produce a status record to
// the same partition of notifications.status. Offsets are autocommitted:
// no transactions, no dedupe markers, no ordering per recipient, no rate
// limit, no breaker.
func RunBareRelay(ctx context.Context, kafkaOpts []kgo.Opt, sendURL, apiKey string, concurrency int) error {
	cl, err := kgo.NewClient(append(kafkaOpts,
		// A group of its own per start: on a real cluster an earlier run's
		// committed offsets must not decide where this one begins.
		kgo.ConsumerGroup("wanotify-bench-bare-relay-"+strconv.FormatInt(time.Now().UnixNano(), 36)),
		kgo.ConsumeTopics(topics.Critical, topics.Requested, topics.Bulk),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.DefaultProduceTopic(topics.Status),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
	)...)
	if err != nil {
		return err
	}
	defer cl.Close()
	hc := NewHTTPClient(concurrency)
	sem := make(chan struct{}, concurrency)
	var failures atomic.Int64
	for {
		fs := cl.PollRecords(ctx, 5000)
		if ctx.Err() != nil {
			return nil
		}
		fs.EachError(func(t string, p int32, err error) { fmt.Printf("fetch %s/%d: %v\n", t, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			sem <- struct{}{}
			go func() {
				defer func() { <-sem }()
				out, err := relayOne(ctx, hc, sendURL, apiKey, r)
				if err != nil {
					if failures.Add(1) <= 5 {
						fmt.Printf("relay: %v\n", err)
					}
					return
				}
				cl.Produce(ctx, out, nil)
			}()
		})
	}
}

// relayOne sends one notification the way a provider client would and
// returns its status record.
func relayOne(ctx context.Context, hc *http.Client, sendURL, apiKey string, r *kgo.Record) (*kgo.Record, error) {
	var n struct {
		NotificationID string `json:"notification_id"`
		Recipient      string `json:"recipient"`
		Sender         string `json:"sender"`
		IdempotencyKey string `json:"idempotency_key"`
		Template       *struct {
			Name       string   `json:"name"`
			Language   string   `json:"language"`
			Parameters []string `json:"parameters"`
		} `json:"template"`
	}
	if err := json.Unmarshal(r.Value, &n); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	body, _ := json.Marshal(map[string]any{
		"phone_number_id": n.Sender, "to": n.Recipient, "type": "template", "template": n.Template,
		"biz_opaque_callback_data": n.NotificationID, "idempotency_key": n.IdempotencyKey,
	})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, sendURL, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-API-Key", apiKey)
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("send: %d %s", resp.StatusCode, answer)
	}
	var env struct {
		Data struct {
			MessageID string `json:"message_id"`
		} `json:"data"`
	}
	_ = json.Unmarshal(answer, &env)
	status, _ := json.Marshal(map[string]any{
		"notification_id": n.NotificationID, "status": "accepted", "recipient": n.Recipient,
		"provider_message_id": env.Data.MessageID, "occurred_at": time.Now().UTC(),
	})
	return &kgo.Record{Key: r.Key, Value: status, Partition: r.Partition}, nil
}
