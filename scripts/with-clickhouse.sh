#!/usr/bin/env bash
# Runs a command against a throwaway, real ClickHouse server (26.7).
#
#   scripts/with-clickhouse.sh go test ./...
#
# Fetches the server library (scripts/fetch-clickhouse.sh), builds
# services/clickhouse into ./bin/wanotify-clickhouse, starts it in its own
# session on two free loopback ports with a temporary data directory, and runs
# the command with
#
#   WANOTIFY_TEST_CLICKHOUSE_ADDR=127.0.0.1:<native port>
#   WANOTIFY_TEST_CLICKHOUSE_HTTP=127.0.0.1:<http port>
#   WANOTIFY_CH_LIB=<path to libchdb.so>
#
# Afterwards it stops the server it started (SIGTERM, then SIGKILL after
# WANOTIFY_CH_STOP_TIMEOUT seconds, default 30), removes the data directory
# and exits with the command's status. It only ever signals the one process it
# started. The command runs in the foreground: Ctrl-C reaches it directly,
# while the launcher, in its own session, is stopped in order afterwards. If
# this script is killed outright, the launcher stops itself (-parent-pid).
#
# If WANOTIFY_TEST_CLICKHOUSE_ADDR is already set, the command runs against
# that server and nothing is started.
set -euo pipefail

if [[ $# -eq 0 ]]; then
	echo "usage: $0 command [args...]" >&2
	exit 2
fi

log() { printf 'with-clickhouse: %s\n' "$*" >&2; }

if [[ -n "${WANOTIFY_TEST_CLICKHOUSE_ADDR:-}" ]]; then
	log "using the server at ${WANOTIFY_TEST_CLICKHOUSE_ADDR}"
	exec "$@"
fi

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
start_timeout="${WANOTIFY_CH_START_TIMEOUT:-60}"
stop_timeout="${WANOTIFY_CH_STOP_TIMEOUT:-30}"

lib="$(bash "${root}/scripts/fetch-clickhouse.sh" | tail -n 1)"
[[ -f "$lib" ]] || {
	log "fetch-clickhouse.sh did not produce the library"
	exit 1
}

bin="${root}/bin/wanotify-clickhouse"
mkdir -p "${root}/bin"
# Serialize build-and-start with other runs in this working copy, so that no
# run replaces the binary while another is about to execute it.
exec 8>"${root}/bin/.wanotify-clickhouse.lock"
flock -w 300 8 || {
	log "timed out waiting for ${root}/bin/.wanotify-clickhouse.lock"
	exit 1
}
(cd "$root" && CGO_ENABLED=0 go build -o "$bin" ./services/clickhouse)

tmp="$(mktemp -d "${TMPDIR:-/tmp}/wanotify-clickhouse.XXXXXX")"
launcher_log="${tmp}/launcher.log"
pid=""

# is_ours reports whether $pid is still the launcher this script started:
# our child, running our binary.
is_ours() {
	[[ -n "$pid" ]] || return 1
	kill -0 "$pid" 2>/dev/null || return 1
	local exe
	exe="$(readlink "/proc/${pid}/exe" 2>/dev/null)" || return 1
	# "(deleted)": another run rebuilt the binary after ours started.
	[[ "$exe" == "$bin" || "$exe" == "$bin (deleted)" ]] || return 1
	[[ "$(awk '{print $4}' "/proc/${pid}/stat" 2>/dev/null)" == "$$" ]]
}

stop_launcher() {
	[[ -n "$pid" ]] || return 0
	if is_ours; then
		kill -TERM "$pid" 2>/dev/null || true
		local deadline=$((SECONDS + stop_timeout))
		while kill -0 "$pid" 2>/dev/null && [[ "$(awk '{print $3}' "/proc/${pid}/stat" 2>/dev/null)" != "Z" ]]; do
			if ((SECONDS >= deadline)); then
				log "launcher ${pid} did not stop within ${stop_timeout}s; killing it"
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
	tcp_port="$(pick_port)"
	http_port="$(pick_port "$tcp_port")"
	rm -rf "${tmp}/data"
	# setsid: the launcher gets its own session, so a terminal hang-up or
	# Ctrl-C reaches this script, which then stops it in order.
	# -parent-pid: should this script be killed outright, the launcher still
	# stops itself.
	setsid "$bin" -lib "$lib" -data-dir "${tmp}/data" -tcp-port "$tcp_port" -http-port "$http_port" -parent-pid "$$" \
		</dev/null >"$launcher_log" 2>&1 8>&- &
	pid=$!
}

started=""
begin_us="${EPOCHREALTIME/./}"
for attempt in 1 2 3; do
	start_launcher
	deadline=$((SECONDS + start_timeout))
	while ((SECONDS < deadline)); do
		if grep -q '^clickhouse ready ' "$launcher_log" 2>/dev/null; then
			started=1
			break
		fi
		if ! kill -0 "$pid" 2>/dev/null; then
			break
		fi
		sleep 0.05
	done
	[[ -z "$started" ]] || break
	if kill -0 "$pid" 2>/dev/null; then
		log "ClickHouse not ready within ${start_timeout}s"
		break
	fi
	wait "$pid" 2>/dev/null || true
	pid=""
	# Another process may have taken a port between the check and the bind.
	grep -qi 'address already in use' "$launcher_log" || break
	log "port clash (attempt ${attempt}); retrying on other ports"
done

if [[ -z "$started" ]]; then
	log "ClickHouse failed to start; launcher log:"
	cat "$launcher_log" >&2 || true
	exit 1
fi
log "$(grep -m1 '^clickhouse ready ' "$launcher_log") (pid ${pid}, started in $(((${EPOCHREALTIME/./} - begin_us) / 1000)) ms)"
exec 8>&- # release the build lock; the launcher does not hold it

export WANOTIFY_TEST_CLICKHOUSE_ADDR="127.0.0.1:${tcp_port}"
export WANOTIFY_TEST_CLICKHOUSE_HTTP="127.0.0.1:${http_port}"
export WANOTIFY_CH_LIB="$lib"

status=0
"$@" || status=$?

stop_launcher
exit "$status"
