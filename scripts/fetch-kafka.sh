#!/usr/bin/env bash
# Fetches the Apache Kafka broker used for tests, benchmarks, the chaos
# scenario and `make run KAFKA=apache`: the server jars of the version
# docker-compose.yml runs (org.apache.kafka:kafka_2.13 and its runtime
# dependencies), resolved from Maven Central by scripts/kafka/pom.xml.
#
# The jars are kept in a cache outside the working copy, next to the
# ClickHouse library, so clones, CI runs and worktrees share one copy:
#
#   ${WANOTIFY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/wanotify}/kafka-<version>/libs
#
# Maven checks every download's SHA-1 (--strict-checksums); the script then
# checks every jar against the SHA-256 list committed in
# scripts/kafka/jars.sha256 and refuses a class path that differs in any jar.
# It is idempotent (a second run returns at once), safe to run concurrently
# (flock), and prints the absolute path of the libs directory as the last
# line on stdout; everything else goes to stderr.
#
#   scripts/fetch-kafka.sh                 fetch (or reuse) and verify
#   scripts/fetch-kafka.sh --update-sums   after changing the pom: resolve
#                                          and rewrite scripts/kafka/jars.sha256
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
pom="${root}/scripts/kafka/pom.xml"
sums="${root}/scripts/kafka/jars.sha256"

log() { printf 'fetch-kafka: %s\n' "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}

update=""
[[ "${1:-}" == "--update-sums" ]] && update=1

version="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$pom")"
[[ -n "$version" ]] || die "no <kafka.version> in ${pom}"
compose_version="$(sed -n 's:^ *image\: apache/kafka\:\([^@]*\).*$:\1:p' "${root}/docker-compose.yml" | head -n1)"
if [[ -n "$compose_version" && "$compose_version" != "$version" ]]; then
	die "scripts/kafka/pom.xml pins Kafka ${version} but docker-compose.yml runs apache/kafka:${compose_version}; keep them equal"
fi

cache="${WANOTIFY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/wanotify}"
dir="${cache}/kafka-${version}"
libs="${dir}/libs"
stamp="${dir}/.verified"
want="$(sha256sum "$sums" | cut -d' ' -f1)"

# installed reports whether the libs directory was fully fetched and checked
# against the current list. The stamp holds the list's own checksum and is
# written only after the directory was renamed into place.
installed() {
	[[ -z "$update" && -f "$stamp" && -d "$libs" ]] || return 1
	[[ "$(cat "$stamp")" == "$want" ]]
}

if installed; then
	printf '%s\n' "$libs"
	exit 0
fi

command -v java >/dev/null || die "java not found (the machine image has OpenJDK 17; on Debian: apt-get install -y openjdk-17-jre-headless)"
command -v mvn >/dev/null || die "mvn not found (on Debian: apt-get install -y maven)"
command -v flock >/dev/null || die "flock not found (apt-get install -y util-linux)"
command -v sha256sum >/dev/null || die "sha256sum not found (apt-get install -y coreutils)"

mkdir -p "$cache"
exec 9>"${cache}/.fetch-kafka.lock"
if ! flock -n 9; then
	log "another fetch is running; waiting for ${cache}/.fetch-kafka.lock"
	flock -w 1800 9 || die "timed out waiting for the cache lock"
fi
if installed; then
	printf '%s\n' "$libs"
	exit 0
fi

tmp="$(mktemp -d "${cache}/.fetch-kafka.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

log "resolving Apache Kafka ${version} (kafka_2.13 and its runtime dependencies, about 45 MB) with Maven"
mvn -B -q --strict-checksums -f "$pom" \
	dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="${tmp}/libs" >"${tmp}/mvn.log" 2>&1 || {
	cat "${tmp}/mvn.log" >&2
	die "mvn dependency:copy-dependencies failed"
}

(cd "${tmp}/libs" && sha256sum -- *.jar | sort -k2) >"${tmp}/got.sha256"
if [[ -n "$update" ]]; then
	cp "${tmp}/got.sha256" "$sums"
	want="$(sha256sum "$sums" | cut -d' ' -f1)"
	log "wrote ${sums} ($(wc -l <"$sums") jars)"
elif ! diff -u "$sums" "${tmp}/got.sha256" >&2; then
	die "the resolved jars differ from ${sums} (above: - committed, + resolved)"
fi

rm -rf "$libs" "$stamp"
mkdir -p "$dir"
mv "${tmp}/libs" "$libs"
printf '%s\n' "$want" >"${tmp}/stamp"
mv -f "${tmp}/stamp" "$stamp"
log "installed ${libs}"
printf '%s\n' "$libs"
