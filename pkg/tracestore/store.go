package tracestore

import (
	"context"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
)

//go:embed schema.sql
var schemaSQL string

// AttrNotificationID is the span attribute that names the notification a
// span works on (ingest's request, the dispatcher's attempt, the webhook
// request): the key from a notification id to its traces.
const AttrNotificationID = "wanotify.notification_id"

// Store writes spans to and reads them from one ClickHouse database.
type Store struct {
	conn driver.Conn
	db   string
}

// New returns a store on database db (which Ensure creates if needed).
func New(conn driver.Conn, db string) *Store { return &Store{conn: conn, db: db} }

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Ensure creates the database and the tables if they are missing;
// retentionDays > 0 adds the exporter's TTL (0 keeps spans forever).
func (s *Store) Ensure(ctx context.Context, retentionDays int) error {
	if !identRE.MatchString(s.db) {
		return fmt.Errorf("database name %q is not a plain identifier", s.db)
	}
	if err := s.conn.Exec(ctx, "CREATE DATABASE IF NOT EXISTS "+s.db); err != nil {
		return fmt.Errorf("create database %s: %w", s.db, err)
	}
	ttl, ttlTS := "", ""
	if retentionDays > 0 {
		ttl = fmt.Sprintf("TTL toDateTime(Timestamp) + toIntervalDay(%d)", retentionDays)
		ttlTS = fmt.Sprintf("TTL toDateTime(Start) + toIntervalDay(%d)", retentionDays)
	}
	sql := strings.NewReplacer("{db}", s.db, "{ttl}", ttl, "{ttl_ts}", ttlTS).Replace(schemaSQL)
	for _, stmt := range strings.Split(sql, ";") {
		if strings.TrimSpace(stmt) == "" {
			continue
		}
		if err := s.conn.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("create trace tables: %w", err)
		}
	}
	return nil
}

// Write inserts every span of rss in one batch.
func (s *Store) Write(ctx context.Context, rss []*tracepb.ResourceSpans) (int, error) {
	batch, err := s.conn.PrepareBatch(ctx, "INSERT INTO "+s.db+".otel_traces")
	if err != nil {
		return 0, fmt.Errorf("prepare span insert: %w", err)
	}
	defer func() { _ = batch.Abort() }()
	n := 0
	for _, rs := range rss {
		resAttrs := attrMap(rs.GetResource().GetAttributes())
		service := resAttrs["service.name"]
		for _, ss := range rs.GetScopeSpans() {
			scope := ss.GetScope()
			for _, sp := range ss.GetSpans() {
				var (
					evTimes []time.Time
					evNames []string
					evAttrs []map[string]string
					lTrace  []string
					lSpan   []string
					lState  []string
					lAttrs  []map[string]string
				)
				for _, e := range sp.GetEvents() {
					evTimes = append(evTimes, time.Unix(0, int64(e.GetTimeUnixNano())).UTC())
					evNames = append(evNames, e.GetName())
					evAttrs = append(evAttrs, attrMap(e.GetAttributes()))
				}
				for _, l := range sp.GetLinks() {
					lTrace = append(lTrace, hex.EncodeToString(l.GetTraceId()))
					lSpan = append(lSpan, hex.EncodeToString(l.GetSpanId()))
					lState = append(lState, l.GetTraceState())
					lAttrs = append(lAttrs, attrMap(l.GetAttributes()))
				}
				start, end := sp.GetStartTimeUnixNano(), sp.GetEndTimeUnixNano()
				var dur uint64
				if end > start {
					dur = end - start
				}
				err := batch.Append(
					time.Unix(0, int64(start)).UTC(),
					hex.EncodeToString(sp.GetTraceId()),
					hex.EncodeToString(sp.GetSpanId()),
					hex.EncodeToString(sp.GetParentSpanId()),
					sp.GetTraceState(),
					sp.GetName(),
					spanKind(sp.GetKind()),
					service,
					resAttrs,
					scope.GetName(),
					scope.GetVersion(),
					attrMap(sp.GetAttributes()),
					dur,
					statusCode(sp.GetStatus().GetCode()),
					sp.GetStatus().GetMessage(),
					evTimes, evNames, evAttrs,
					lTrace, lSpan, lState, lAttrs,
				)
				if err != nil {
					return 0, fmt.Errorf("append span: %w", err)
				}
				n++
			}
		}
	}
	if n == 0 {
		return 0, nil
	}
	if err := batch.Send(); err != nil {
		return 0, fmt.Errorf("insert %d spans: %w", n, err)
	}
	return n, nil
}

// spanKind and statusCode write what the collector's ClickHouse exporter
// writes (pdata's String of the enum).
func spanKind(k tracepb.Span_SpanKind) string {
	switch k {
	case tracepb.Span_SPAN_KIND_INTERNAL:
		return "Internal"
	case tracepb.Span_SPAN_KIND_SERVER:
		return "Server"
	case tracepb.Span_SPAN_KIND_CLIENT:
		return "Client"
	case tracepb.Span_SPAN_KIND_PRODUCER:
		return "Producer"
	case tracepb.Span_SPAN_KIND_CONSUMER:
		return "Consumer"
	}
	return "Unspecified"
}

func statusCode(c tracepb.Status_StatusCode) string {
	switch c {
	case tracepb.Status_STATUS_CODE_OK:
		return "Ok"
	case tracepb.Status_STATUS_CODE_ERROR:
		return "Error"
	}
	return "Unset"
}

func attrMap(kvs []*commonpb.KeyValue) map[string]string {
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		m[kv.GetKey()] = valueString(kv.GetValue())
	}
	return m
}

// valueString renders an attribute value as pdata's AsString does:
// scalars plainly, arrays and maps as JSON.
func valueString(v *commonpb.AnyValue) string {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case *commonpb.AnyValue_IntValue:
		return strconv.FormatInt(x.IntValue, 10)
	case *commonpb.AnyValue_BoolValue:
		return strconv.FormatBool(x.BoolValue)
	case *commonpb.AnyValue_DoubleValue:
		return strconv.FormatFloat(x.DoubleValue, 'f', -1, 64)
	case *commonpb.AnyValue_BytesValue:
		return hex.EncodeToString(x.BytesValue)
	case nil:
		return ""
	}
	b, _ := json.Marshal(rawValue(v))
	return string(b)
}

func rawValue(v *commonpb.AnyValue) any {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case *commonpb.AnyValue_IntValue:
		return x.IntValue
	case *commonpb.AnyValue_BoolValue:
		return x.BoolValue
	case *commonpb.AnyValue_DoubleValue:
		return x.DoubleValue
	case *commonpb.AnyValue_ArrayValue:
		out := []any{}
		for _, e := range x.ArrayValue.GetValues() {
			out = append(out, rawValue(e))
		}
		return out
	case *commonpb.AnyValue_KvlistValue:
		out := map[string]any{}
		for _, kv := range x.KvlistValue.GetValues() {
			out[kv.GetKey()] = rawValue(kv.GetValue())
		}
		return out
	}
	return nil
}

// Span is one stored span.
type Span struct {
	TraceID      string            `json:"trace_id"`
	SpanID       string            `json:"span_id"`
	ParentSpanID string            `json:"parent_span_id,omitempty"`
	Name         string            `json:"name"`
	Kind         string            `json:"kind"`
	Service      string            `json:"service"`
	Start        time.Time         `json:"start"`
	Duration     time.Duration     `json:"duration_ns"`
	StatusCode   string            `json:"status_code"`
	StatusMsg    string            `json:"status_message,omitempty"`
	Attributes   map[string]string `json:"attributes,omitempty"`
	Links        []Link            `json:"links,omitempty"`
	// Statuses are the wanotify.status of the span's "status" events:
	// what a webhook request carried (sent, delivered, read, failed).
	Statuses []string `json:"statuses,omitempty"`
}

// Link is a span link: the span it points to.
type Link struct {
	TraceID string `json:"trace_id"`
	SpanID  string `json:"span_id"`
}

// Spans returns every stored span of trace traceID (hex), oldest first.
func (s *Store) Spans(ctx context.Context, traceID string) ([]Span, error) {
	rows, err := s.conn.Query(ctx, `SELECT TraceId, SpanId, ParentSpanId, SpanName, SpanKind, ServiceName, Timestamp, Duration,
		StatusCode, StatusMessage, SpanAttributes, Links.TraceId, Links.SpanId,
		arrayFilter(x -> x != '', arrayMap((n, a) -> if(n = 'status', a['wanotify.status'], ''), Events.Name, Events.Attributes))
		FROM `+s.db+`.otel_traces WHERE TraceId = ? ORDER BY Timestamp, SpanId`, traceID)
	if err != nil {
		return nil, fmt.Errorf("read trace %s: %w", traceID, err)
	}
	defer rows.Close()
	var out []Span
	for rows.Next() {
		var (
			sp     Span
			dur    uint64
			lt, ls []string
		)
		if err := rows.Scan(&sp.TraceID, &sp.SpanID, &sp.ParentSpanID, &sp.Name, &sp.Kind, &sp.Service, &sp.Start, &dur,
			&sp.StatusCode, &sp.StatusMsg, &sp.Attributes, &lt, &ls, &sp.Statuses); err != nil {
			return nil, fmt.Errorf("read trace %s: %w", traceID, err)
		}
		sp.Duration = time.Duration(dur)
		for i := range lt {
			if i < len(ls) {
				sp.Links = append(sp.Links, Link{TraceID: lt[i], SpanID: ls[i]})
			}
		}
		out = append(out, sp)
	}
	return out, rows.Err()
}

// TraceRef is a trace that worked on a notification.
type TraceRef struct {
	TraceID string    `json:"trace_id"`
	Start   time.Time `json:"start"`
	// Root is the name of the span with the attribute that begins it
	// earliest (the ingest request, a webhook request).
	Root string `json:"root"`
}

// TracesOf returns the traces in which a span carries
// wanotify.notification_id = id (or lists it in wanotify.notification_ids,
// a webhook batch), oldest first.
func (s *Store) TracesOf(ctx context.Context, id string) ([]TraceRef, error) {
	rows, err := s.conn.Query(ctx, `SELECT TraceId, min(Timestamp) AS start, argMin(SpanName, Timestamp)
		FROM `+s.db+`.otel_traces
		WHERE SpanAttributes['`+AttrNotificationID+`'] = ? OR has(JSONExtract(SpanAttributes['wanotify.notification_ids'], 'Array(String)'), ?)
		GROUP BY TraceId ORDER BY start`, id, id)
	if err != nil {
		return nil, fmt.Errorf("find traces of %s: %w", id, err)
	}
	defer rows.Close()
	var out []TraceRef
	for rows.Next() {
		var r TraceRef
		if err := rows.Scan(&r.TraceID, &r.Start, &r.Root); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// sortSpans orders siblings by start time.
func sortSpans(ss []*Node) {
	sort.SliceStable(ss, func(i, j int) bool { return ss[i].Span.Start.Before(ss[j].Span.Start) })
}
