#!/usr/bin/env bash
# Fails when `make generate` would change a generated file: regenerates into a scratch copy of
# the tree and compares.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SCRATCH=$(mktemp -d)
trap 'rm -rf "$SCRATCH"' EXIT

tar -C "$ROOT" --exclude=./.git --exclude=./bin -cf - . | tar -C "$SCRATCH" -xf -
(cd "$SCRATCH" && hack/update-codegen.sh >/dev/null)

status=0
for path in pkg/client pkg/apis config/300-poolimage.yaml tasks pipelines; do
  if ! diff -Nr "$ROOT/$path" "$SCRATCH/$path" >"$SCRATCH.diff" 2>&1; then
    echo "generated files under $path are out of date; run 'make generate':"
    head -n 40 "$SCRATCH.diff"
    status=1
  fi
done
rm -f "$SCRATCH.diff"
if [ "$status" -eq 0 ]; then
  echo "generated files are up to date"
fi
exit "$status"
