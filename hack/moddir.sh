#!/usr/bin/env bash
# hack/moddir.sh [-C DIR] MODULE: prints the directory of MODULE, at the version DIR's go.mod
# (default: the repository's) requires, downloading it first. `go list -m -f '{{.Dir}}'` alone
# prints nothing while the module is not in the module cache yet (a new machine, an empty
# GOMODCACHE), and a script that goes on with an empty path fails far from the cause. Every
# script that needs a module's files gets them through this one; test/scripts checks it.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
dir=$ROOT
if [ "${1:-}" = -C ]; then
  dir=$2
  shift 2
fi
mod=${1:?usage: hack/moddir.sh [-C DIR] MODULE}
cd "$dir"
# Downloads the zip into the module cache when it is missing (a no-op when it is there).
if ! out=$(go mod download "$mod" 2>&1); then
  echo "moddir: cannot download $mod for $dir: $out" >&2
  exit 1
fi
path=$(go list -m -f '{{.Dir}}' "$mod")
if [ -z "$path" ] || [ ! -d "$path" ]; then
  echo "moddir: $mod (required by $dir/go.mod) has no directory in the module cache ($(go env GOMODCACHE)) after go mod download" >&2
  exit 1
fi
echo "$path"
