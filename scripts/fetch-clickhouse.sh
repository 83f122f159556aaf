#!/usr/bin/env bash
# Fetches the ClickHouse server library used for local development and tests.
#
# The npm package @chdb/lib-linux-x64-gnu ships ClickHouse built as a shared
# library (libchdb.so). pkg/chlocal loads it and opens real native/HTTP
# listeners, which gives every machine a real ClickHouse without Docker.
# Production uses a real ClickHouse cluster; this is for dev/test only.
#
# The download is kept in a cache outside the working copy so that clones, CI
# runs and worktrees on the same machine share one copy:
#
#   ${WANOTIFY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/wanotify}
#
# The script is idempotent (a second run returns immediately), safe to run
# concurrently (flock), verifies the tarball against a pinned sha256, and
# prints the absolute path of libchdb.so as the last line on stdout. All other
# output goes to stderr.
set -euo pipefail

# Pin exactly this version: other releases (including the "latest" tag) do not
# start listeners from the library entry point.
readonly CHDB_PKG="@chdb/lib-linux-x64-gnu"
readonly CHDB_VERSION="26.7.3-stable.1"
readonly TARBALL_NAME="chdb-lib-linux-x64-gnu-${CHDB_VERSION}.tgz"
readonly TARBALL_SHA256="c0d32b129e988f2b9a9a31c9141aecf5e1e2453f9a079efc4d36ab8e3f92b2ad"
readonly LIB_SIZE=566330096
readonly LIB_SHA256="36ad4e999882821ef13cf2d0f52c93f48e6ee1b4498b35a201c23ce4b8d15bf5"

log() { printf 'fetch-clickhouse: %s\n' "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}

cache="${WANOTIFY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/wanotify}"
libdir="${cache}/chdb-${CHDB_VERSION}"
lib="${libdir}/libchdb.so"
stamp="${libdir}/.verified"
tarball="${cache}/${TARBALL_NAME}"

# installed reports whether the library was fully extracted and verified. The
# stamp is written only after the library has been renamed into place, so a
# present stamp with the expected size means a complete install.
installed() {
	[[ -f "$stamp" && -f "$lib" ]] || return 1
	[[ "$(cat "$stamp")" == "$TARBALL_SHA256" ]] || return 1
	[[ "$(stat -c %s "$lib")" == "$LIB_SIZE" ]] || return 1
}

if installed; then
	printf '%s\n' "$lib"
	exit 0
fi

mkdir -p "$cache"
command -v flock >/dev/null || die "flock not found (apt-get install -y util-linux)"
command -v sha256sum >/dev/null || die "sha256sum not found (apt-get install -y coreutils)"

exec 9>"${cache}/.fetch-clickhouse.lock"
if ! flock -n 9; then
	log "another fetch is running; waiting for ${cache}/.fetch-clickhouse.lock"
	flock -w 1800 9 || die "timed out waiting for the cache lock"
fi

# Another run may have finished while we waited for the lock.
if installed; then
	printf '%s\n' "$lib"
	exit 0
fi

tmp="$(mktemp -d "${cache}/.fetch.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

sha_of() { sha256sum "$1" | cut -d' ' -f1; }

if [[ -f "$tarball" ]] && [[ "$(sha_of "$tarball")" == "$TARBALL_SHA256" ]]; then
	log "reusing ${tarball}"
else
	command -v npm >/dev/null || die "npm not found (apt-get install -y npm)"
	log "downloading ${CHDB_PKG}@${CHDB_VERSION} (about 178 MB)"
	(cd "$tmp" && npm pack --silent "${CHDB_PKG}@${CHDB_VERSION}") >&2 ||
		die "npm pack ${CHDB_PKG}@${CHDB_VERSION} failed"
	[[ -f "${tmp}/${TARBALL_NAME}" ]] || die "npm pack did not produce ${TARBALL_NAME}"
	got="$(sha_of "${tmp}/${TARBALL_NAME}")"
	[[ "$got" == "$TARBALL_SHA256" ]] ||
		die "sha256 mismatch for ${TARBALL_NAME}: got ${got}, want ${TARBALL_SHA256}"
	mv -f "${tmp}/${TARBALL_NAME}" "$tarball"
fi

log "extracting libchdb.so (about 566 MB)"
tar -xzf "$tarball" -C "$tmp" package/libchdb.so
[[ "$(stat -c %s "${tmp}/package/libchdb.so")" == "$LIB_SIZE" ]] ||
	die "extracted libchdb.so has an unexpected size"
got="$(sha_of "${tmp}/package/libchdb.so")"
[[ "$got" == "$LIB_SHA256" ]] ||
	die "sha256 mismatch for libchdb.so: got ${got}, want ${LIB_SHA256}"
mkdir -p "$libdir"
rm -f "$stamp"
chmod 0755 "${tmp}/package/libchdb.so"
mv -f "${tmp}/package/libchdb.so" "$lib"
printf '%s\n' "$TARBALL_SHA256" >"${tmp}/stamp"
mv -f "${tmp}/stamp" "$stamp"
log "installed ${lib}"

printf '%s\n' "$lib"
