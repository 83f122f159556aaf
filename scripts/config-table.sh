#!/usr/bin/env bash
# Prints README's configuration table: every variable each service reads,
# taken from the binaries themselves (`<service> --help-markdown`), with
# the services that read it.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${1:-bin}"
services=(ingest dispatcher webhook sink notifyctl broker)
declare -A rows users
for s in "${services[@]}"; do
  [ -x "$bin/$s" ] || { echo "missing $bin/$s (run make build)" >&2; exit 1; }
  while IFS= read -r line; do
    name="$(sed -E 's/^\| `([A-Z0-9_]+)`.*/\1/' <<<"$line")"
    rows[$name]="$line"
    users[$name]="${users[$name]:+${users[$name]}, }$s"
  done < <("$bin/$s" --help-markdown)
done
echo "| variable | default | description | read by |"
echo "|---|---|---|---|"
for name in $(printf '%s\n' "${!rows[@]}" | sort); do
  echo "${rows[$name]} ${users[$name]} |"
done
