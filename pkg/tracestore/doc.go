// Package tracestore keeps OpenTelemetry spans in ClickHouse, so one
// machine can follow a notification's trace without an external
// collector: a small OTLP/gRPC receiver (Receiver) writes every span it
// gets into the table otel_traces, and Store reads a trace back, finds
// the traces of a notification by its wanotify.notification_id attribute
// and renders them as a tree with durations (notifyctl trace).
//
// The table, its companion otel_traces_trace_id_ts and the materialized
// view between them have the schema of the OpenTelemetry Collector's
// ClickHouse exporter (exporter/clickhouseexporter, Map attributes), and
// the values are written as it writes them (hex trace and span ids,
// SpanKind "Server"/"Client"/…, StatusCode "Unset"/"Ok"/"Error",
// attribute values as strings). A production deployment can therefore
// replace the receiver with a real collector (otlp receiver →
// clickhouse exporter) and keep reading with notifyctl trace, or a
// console built on the same table.
package tracestore
