package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/wanotify/wanotify/pkg/cli"
	"github.com/wanotify/wanotify/pkg/testinfra"
	"github.com/wanotify/wanotify/pkg/topics"
	"github.com/wanotify/wanotify/pkg/tracestore"
	"github.com/wanotify/wanotify/pkg/webhook"
)

type stackOptions struct{ otlpEndpoint string }

type stackOption func(*stackOptions)

// withOTLP makes the stack export its spans over OTLP/gRPC to endpoint,
// as the services do with WANOTIFY_OTLP_ENDPOINT.
func withOTLP(endpoint string) stackOption {
	return func(o *stackOptions) { o.otlpEndpoint = endpoint }
}

// traceOut is notifyctl trace -o json.
type traceOut struct {
	ID     string `json:"id"`
	Traces []struct {
		TraceID  string             `json:"trace_id"`
		Kind     string             `json:"kind"`
		LinkedBy string             `json:"linked_by"`
		Spans    int                `json:"spans"`
		Tree     []*tracestore.Node `json:"tree"`
	} `json:"traces"`
}

// TestTraceOnOneMachine: the services export OTLP to the local trace
// store, which writes the spans into ClickHouse; notifyctl trace finds a
// delivered notification's trace by its id and prints the span tree
// (ingest → dispatcher → provider call → status → sink) with durations,
// and the provider's webhook traces linked to it by
// wanotify.notification_id.
func TestTraceOnOneMachine(t *testing.T) {
	traces := testinfra.ClickHouseDatabase(t)
	ctx, cancel := context.WithCancel(context.Background())
	store := tracestore.New(traces.Conn, traces.Name)
	if err := store.Ensure(ctx, 0); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- tracestore.NewReceiver(store, nil).Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-served })

	s := startStack(t, withOTLP(ln.Addr().String()))
	c := caller()
	id := s.publish(t, c.traceparent(), `{"event_type":"invoice.reminder","idempotency_key":"e2e-trace-store-1",`+
		`"recipient":"+447100900123","text":{"body":"Your invoice INV-3001 is ready"}}`)
	s.waitStatus(t, id, 45*time.Second, "read")
	// The webhooks were taken (read is in ClickHouse); what is still in
	// the batch span processor goes out now.
	fctx, fcancel := context.WithTimeout(ctx, 10*time.Second)
	defer fcancel()
	if err := s.tel.Tracer.ForceFlush(fctx); err != nil {
		t.Fatal(err)
	}

	t.Setenv("WANOTIFY_CLICKHOUSE_ADDR", traces.Server.Addr)
	t.Setenv("WANOTIFY_CLICKHOUSE_DATABASE", traces.Name)
	var out traceOut
	var stdout, stderr bytes.Buffer
	if code := cli.MainIO([]string{"trace", id, "--wait", "20s", "-o", "json"}, strings.NewReader(""), &stdout, &stderr); code != cli.ExitOK {
		t.Fatalf("notifyctl trace: exit %d\n%s%s", code, stdout.String(), stderr.String())
	}
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		t.Fatalf("notifyctl trace -o json: %v\n%s", err, stdout.String())
	}

	var note *tracestore.Node
	webhookStatuses := map[string]bool{}
	for _, tr := range out.Traces {
		switch tr.Kind {
		case "notification":
			// The public route starts its own trace and keeps the
			// caller's span as a link on its root.
			if tr.TraceID == c.trace.String() || len(tr.Tree) != 1 {
				t.Fatalf("notification trace %s with %d roots, want a trace of its own (not the caller's %s) with one root", tr.TraceID, len(tr.Tree), c.trace)
			}
			note = tr.Tree[0]
			linked := false
			for _, l := range note.Span.Links {
				linked = linked || l.TraceID == c.trace.String()
			}
			if !linked {
				t.Errorf("the notification trace's root %q has no link to the caller's trace %s: %+v", note.Span.Name, c.trace, note.Span.Links)
			}
		case "webhook":
			if tr.LinkedBy != tracestore.AttrNotificationID || len(tr.Tree) != 1 || tr.Tree[0].Span.Name != "POST "+webhook.DefaultPath {
				t.Errorf("webhook trace %s: linked by %q, %d roots", tr.TraceID, tr.LinkedBy, len(tr.Tree))
				continue
			}
			root := tr.Tree[0]
			if root.Span.Attributes[tracestore.AttrNotificationID] != id || root.Span.Duration <= 0 {
				t.Errorf("webhook root span %+v", root.Span)
			}
			pub := child(root, topics.Status+" publish")
			if pub == nil || child(pub, topics.Status+" receive") == nil {
				t.Errorf("webhook trace %s lacks publish → sink receive", tr.TraceID)
			}
			for _, st := range root.Span.Statuses {
				webhookStatuses[st] = true
			}
		}
	}
	if note == nil {
		t.Fatalf("no notification trace in %s", stdout.String())
	}
	// ingest → dispatcher → provider call → status event → sink.
	if note.Span.Name != "POST /v1/notifications" || note.Span.Attributes[tracestore.AttrNotificationID] != id || note.Span.Duration <= 0 {
		t.Fatalf("root span %+v", note.Span)
	}
	var send *tracestore.Node
	receives := 0
	for _, r := range note.Children {
		if r.Span.Name == topics.Requested+" receive" {
			receives++
			if s := child(r, "send"); s != nil {
				send = s
			}
		}
	}
	if receives != 2 || send == nil {
		t.Fatalf("under the ingest span: %d consume spans of %s (want 2: dispatcher, sink), send span %v", receives, topics.Requested, send != nil)
	}
	call := child(send, "xpressbot send")
	if call == nil || call.Span.Kind != "Client" || call.Span.Duration <= 0 {
		t.Fatalf("provider call under send: %+v", call)
	}
	pub := child(send, topics.Status+" publish")
	if pub == nil || child(pub, topics.Status+" receive") == nil {
		t.Fatal("send → status publish → sink receive missing")
	}
	for _, st := range []string{"sent", "delivered", "read"} {
		if !webhookStatuses[st] {
			t.Errorf("no linked webhook trace carries status %s (saw %v)", st, webhookStatuses)
		}
	}

	// The table: the tree with durations, the webhook traces after it.
	stdout.Reset()
	stderr.Reset()
	if code := cli.MainIO([]string{"trace", id}, strings.NewReader(""), &stdout, &stderr); code != cli.ExitOK {
		t.Fatalf("notifyctl trace: exit %d\n%s", code, stderr.String())
	}
	text := stdout.String()
	for _, want := range []string{
		"trace " + note.Span.TraceID,
		"webhook trace (linked by " + tracestore.AttrNotificationID + ")",
		"POST /v1/notifications",
		"├─ " + topics.Requested + " receive",
		"└─ send",
		"xpressbot send",
		"outcome=accepted",
		"statuses=read",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("notifyctl trace output lacks %q:\n%s", want, text)
		}
	}
	t.Logf("notifyctl trace %s:\n%s", id, text)

	// An id without spans is "not found" (exit 3).
	if code := cli.MainIO([]string{"trace", "00000000-0000-5000-8000-000000000000"}, strings.NewReader(""), &stdout, &stderr); code != cli.ExitNotFound {
		t.Errorf("trace of an unknown id: exit %d", code)
	}
}

func child(n *tracestore.Node, name string) *tracestore.Node {
	for _, c := range n.Children {
		if c.Span.Name == name {
			return c
		}
	}
	return nil
}
