#!/usr/bin/env bash
# Installs the pinned helm (built from source through the Go module proxy)
# into the cache the deployment checks look in, once per machine.
set -euo pipefail
version="${HELM_VERSION:-v3.22.0}"
dir="${XDG_CACHE_HOME:-$HOME/.cache}/wanotify/helm-$version"
mkdir -p "$dir"
exec 9>"$dir/.lock"
flock 9
if [ ! -x "$dir/helm" ]; then
  echo "building helm $version into $dir (once per machine)" >&2
  GOBIN="$dir" go install "helm.sh/helm/v3/cmd/helm@$version"
fi
echo "$dir/helm"
