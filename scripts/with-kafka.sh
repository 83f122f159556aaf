#!/usr/bin/env bash
# Runs a command against a throwaway Apache Kafka broker (the version
# docker-compose.yml runs), started from jars, with no Docker.
#
#   scripts/with-kafka.sh go test ./pkg/e2e/...
#
# Fetches the broker's jars (scripts/fetch-kafka.sh), builds services/kafka
# into ./bin/wanotify-kafka, starts it in its own session on two free
# loopback ports with a temporary data directory (a single KRaft node,
# broker and controller, with settings for tests: replication factors 1,
# transaction state log min ISR 1, no rebalance delay, no automatic topic
# creation, short group sessions, a 768 MB heap), waits until it answers
# metadata, and runs the command with
#
#   WANOTIFY_TEST_KAFKA=apache
#   WANOTIFY_TEST_KAFKA_BROKERS=127.0.0.1:<port>
#   WANOTIFY_KAFKA_LIBS=<the jars' directory>
#
# pkg/testinfra then gives each test the broker, emptied, one test at a
# time. Afterwards it stops the broker it started (SIGTERM, then SIGKILL
# after WANOTIFY_KAFKA_STOP_TIMEOUT seconds, default 30), removes the data
# directory and exits with the command's status. The command runs in the
# foreground: Ctrl-C reaches it directly, while the launcher, in its own
# session, is stopped in order afterwards. If this script is killed outright,
# the launcher stops itself (-parent-pid), and the kernel kills the JVM when
# the launcher ends, however it ends.
#
# Without java or mvn the command runs on kfake with a warning, except with
# CI=true, where that (like a broker that does not start) is a failure. If
# WANOTIFY_TEST_KAFKA_BROKERS is already set, the command runs against that
# broker and nothing is started.
set -euo pipefail

if [[ $# -eq 0 ]]; then
	echo "usage: $0 command [args...]" >&2
	exit 2
fi

log() { printf 'with-kafka: %s\n' "$*" >&2; }

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

if [[ -n "${WANOTIFY_TEST_KAFKA_BROKERS:-}" ]]; then
	log "using the broker at ${WANOTIFY_TEST_KAFKA_BROKERS}"
	export WANOTIFY_TEST_KAFKA=apache
	# The chaos scenario starts brokers of its own from the jars.
	if [[ -z "${WANOTIFY_KAFKA_LIBS:-}" ]] && command -v java >/dev/null && command -v mvn >/dev/null; then
		WANOTIFY_KAFKA_LIBS="$(bash "${root}/scripts/fetch-kafka.sh" | tail -n 1)"
		export WANOTIFY_KAFKA_LIBS
	fi
	exec "$@"
fi

for tool in java mvn; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		if [[ "${CI:-}" == "true" ]]; then
			log "error: ${tool} not found; Apache Kafka cannot run (the machine image has OpenJDK 17 and Maven; on Debian: apt-get install -y openjdk-17-jre-headless maven)"
			exit 1
		fi
		log "warning: ${tool} not found; running on kfake instead of Apache Kafka"
		export WANOTIFY_TEST_KAFKA=kfake
		exec "$@"
	fi
done

start_timeout="${WANOTIFY_KAFKA_START_TIMEOUT:-120}"
stop_timeout="${WANOTIFY_KAFKA_STOP_TIMEOUT:-30}"
heap="${WANOTIFY_KAFKA_HEAP:-768m}"

libs="$(bash "${root}/scripts/fetch-kafka.sh" | tail -n 1)"
[[ -d "$libs" ]] || {
	log "fetch-kafka.sh did not produce the jars"
	exit 1
}

bin="${root}/bin/wanotify-kafka"
mkdir -p "${root}/bin"
# Serialize build-and-start with other runs in this working copy, so that no
# run replaces the binary while another is about to execute it.
exec 8>"${root}/bin/.wanotify-kafka.lock"
flock -w 300 8 || {
	log "timed out waiting for ${root}/bin/.wanotify-kafka.lock"
	exit 1
}
(cd "$root" && CGO_ENABLED=0 go build -o "$bin" ./services/kafka)

tmp="$(mktemp -d "${TMPDIR:-/tmp}/wanotify-kafka.XXXXXX")"
launcher_log="${tmp}/launcher.log"
pid=""

# is_ours reports whether $pid is still the launcher this script started:
# our child, running our binary.
is_ours() {
	[[ -n "$pid" ]] || return 1
	kill -0 "$pid" 2>/dev/null || return 1
	local exe
	exe="$(readlink "/proc/${pid}/exe" 2>/dev/null)" || return 1
	[[ "$exe" == "$bin" || "$exe" == "$bin (deleted)" ]] || return 1
	[[ "$(awk '{print $4}' "/proc/${pid}/stat" 2>/dev/null)" == "$$" ]]
}

stop_launcher() {
	[[ -n "$pid" ]] || return 0
	if is_ours; then
		kill -TERM "$pid" 2>/dev/null || true
		# The launcher kills the JVM after its own stop timeout; give it a
		# little more before killing the launcher (which kills the JVM).
		local deadline=$((SECONDS + stop_timeout + 10))
		while kill -0 "$pid" 2>/dev/null && [[ "$(awk '{print $3}' "/proc/${pid}/stat" 2>/dev/null)" != "Z" ]]; do
			if ((SECONDS >= deadline)); then
				log "launcher ${pid} did not stop within $((stop_timeout + 10))s; killing it"
				if is_ours; then
					kill -KILL "$pid" 2>/dev/null || true
				fi
				break
			fi
			sleep 0.1
		done
	fi
	local rc=0
	wait "$pid" 2>/dev/null || rc=$?
	if ((rc != 0)); then
		log "launcher ${pid} exited with status ${rc}; its log:"
		cat "$launcher_log" >&2 || true
		tail -n 50 "${tmp}/data/broker.log" >&2 2>/dev/null || true
	fi
	pid=""
}

# shellcheck disable=SC2317 # invoked by the EXIT trap
cleanup() {
	local status=$?
	stop_launcher
	rm -rf "$tmp"
	exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# A port is taken when something listens on it (IPv4 or IPv6, any address).
port_taken() {
	local hex
	hex="$(printf '%04X' "$1")"
	awk -v p=":${hex}" 'NR > 1 && $4 == "0A" && substr($2, length($2) - 4) == p { found = 1 } END { exit !found }' \
		/proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# pick_port prints a port below the kernel's ephemeral range that nothing
# listens on and that differs from $1.
pick_port() {
	local p
	for _ in $(seq 1 200); do
		p=$((20000 + RANDOM % 12000))
		[[ "$p" != "${1:-}" ]] || continue
		port_taken "$p" || {
			echo "$p"
			return 0
		}
	done
	return 1
}

start_launcher() {
	port="$(pick_port)"
	cport="$(pick_port "$port")"
	rm -rf "${tmp}/data"
	setsid "$bin" -libs "$libs" -data-dir "${tmp}/data" -port "$port" -controller-port "$cport" \
		-heap "$heap" -start-timeout "${start_timeout}s" -stop-timeout "${stop_timeout}s" -parent-pid "$$" \
		</dev/null >"$launcher_log" 2>&1 8>&- &
	pid=$!
}

started=""
begin_us="${EPOCHREALTIME/./}"
for attempt in 1 2 3; do
	start_launcher
	while kill -0 "$pid" 2>/dev/null; do
		if grep -q '^kafka ready ' "$launcher_log" 2>/dev/null; then
			started=1
			break
		fi
		sleep 0.1
	done
	[[ -z "$started" ]] || break
	wait "$pid" 2>/dev/null || true
	pid=""
	# Another process may have taken a port between the check and the bind.
	grep -qi 'address already in use' "$launcher_log" "${tmp}/data/broker.log" 2>/dev/null || break
	log "port clash (attempt ${attempt}); retrying on other ports"
done

if [[ -z "$started" ]]; then
	log "Apache Kafka failed to start; launcher log:"
	cat "$launcher_log" >&2 || true
	log "broker log (last 50 lines):"
	tail -n 50 "${tmp}/data/broker.log" >&2 2>/dev/null || true
	exit 1
fi
log "$(grep -m1 '^kafka ready ' "$launcher_log") (launcher ${pid}, started in $(((${EPOCHREALTIME/./} - begin_us) / 1000)) ms)"
exec 8>&- # release the build lock; the launcher does not hold it

export WANOTIFY_TEST_KAFKA=apache
export WANOTIFY_TEST_KAFKA_BROKERS="127.0.0.1:${port}"
export WANOTIFY_KAFKA_LIBS="$libs"

status=0
"$@" || status=$?

stop_launcher
exit "$status"
