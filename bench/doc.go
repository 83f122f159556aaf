// Package bench is the benchmark harness behind `make bench`: it starts the
// real services as separate processes (or runs a piece in-process where
// that is the honest measure), drives them with independent load
// generators (wrk with the Lua scripts under bench/wrk, and an open-loop
// fixed-rate Go generator for latency at a given rate), measures a bare
// baseline in the same run on the same machine for every figure that has
// one, and renders one table, which cmd/benchtable prints and writes to
// BENCHMARKS.md together with the machine description and the command.
//
// Shared machines are noisy (identical runs differ by up to ±20%), so a
// figure alone says little: each is shown next to its baseline, measured
// in alternation with it, as the median of several runs.
//
// By default the harness starts a kfake broker process of its own on a
// free loopback port (memory only, a fresh one per run) and uses the
// ClickHouse server that scripts/with-clickhouse.sh started. Setting
// WANOTIFY_KAFKA_BROKERS and WANOTIFY_CLICKHOUSE_ADDR points it at real
// clusters instead (see Config). BENCH_KAFKA=apache (make bench
// KAFKA=apache) runs the sink, dispatcher and end-to-end groups a second
// time, right after their kfake runs, on one Apache Kafka broker the
// harness starts from scripts/fetch-kafka.sh's jars, and prints the two
// brokers' headline figures side by side with their ratio.
package bench
