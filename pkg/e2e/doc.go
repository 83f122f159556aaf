// Package e2e holds the end-to-end tests of the whole pipeline: every
// service (ingest, dispatcher, webhook receiver, sink) runs against one
// in-process Kafka-protocol broker, the real ClickHouse server of the test
// run and the in-process provider simulator, and the tests look at what an
// operator would see: one trace per notification across both Kafka hops
// and the provider call, the metrics each service exposes on /metrics, the
// JSON logs, and the final state in communication_logs.
//
// Run them with `bash scripts/with-clickhouse.sh go test ./pkg/e2e/...`
// (make test does); without ClickHouse they skip, and with CI=true they
// fail.
package e2e
