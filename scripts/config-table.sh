#!/usr/bin/env bash
# Prints README's configuration table: every variable each service reads,
# taken from the binaries themselves (`<service> --help-markdown`), with
# the services that read it and, where they differ, each one's default.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${1:-bin}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
for s in ingest dispatcher webhook sink notifyctl broker traces; do
  [ -x "$bin/$s" ] || { echo "missing $bin/$s (run make build)" >&2; exit 1; }
  "$bin/$s" --help-markdown | sed "s|^|$s\t|" >>"$tmp/rows"
done
# The Cloud API client's variables are read when it is selected.
WANOTIFY_PROVIDER=cloudapi "$bin/dispatcher" --help-markdown | sed "s|^|dispatcher\t|" >>"$tmp/rows"
host="$(hostname)"
awk -F'\t' -v host="$host" '
{
  svc = $1; line = $2
  gsub(host, "<hostname>", line)
  split(line, f, " \\| ")
  name = f[1]; sub(/^\| /, "", name)
  def = f[2]; desc = f[3]; sub(/ \|$/, "", desc)
  if (!(name in seen)) { seen[name] = 1; order[++n] = name; descs[name] = desc }
  key = name SUBSEP svc
  if (!(key in have)) { have[key] = 1; users[name] = users[name] (users[name] ? ", " : "") svc; defs[name, ++cnt[name]] = def; dsvc[name, cnt[name]] = svc }
}
END {
  print "| variable | default | description | read by |"
  print "|---|---|---|---|"
  # sort names
  for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (order[j] < order[i]) { t = order[i]; order[i] = order[j]; order[j] = t }
  for (i = 1; i <= n; i++) {
    name = order[i]; same = 1
    for (k = 2; k <= cnt[name]; k++) if (defs[name, k] != defs[name, 1]) same = 0
    if (same) d = defs[name, 1]
    else { d = ""; for (k = 1; k <= cnt[name]; k++) d = d (d ? "; " : "") dsvc[name, k] ": " (defs[name, k] == "" ? "(empty)" : defs[name, k]) }
    printf "| %s | %s | %s | %s |\n", name, d, descs[name], users[name]
  }
}' "$tmp/rows"
