#!/usr/bin/env bash
# make bench-build: the figures measured on the full local stack: the layer cache (cold build vs
# a rebuild after a last-line change, test/bench/build) and a cluster upgrade with the stand-in
# MCO (the e2e test TestUpgradeRollsOutOnce: rollouts per node with and without the prebuild and
# with Follow, base change → promotion), each as `bench: <name>=<value>`, then the README's table
# made of them (BENCH_README=1 writes it into README.md between <!-- bench-build:begin/end -->).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
out=$(mktemp)
trap 'rm -f "$out"' EXIT
{
  go run ./test/bench/build | grep '^bench: '
  go test -count=1 -timeout 30m -tags e2e -run '^TestUpgradeRollsOutOnce$' -v ./test/e2e/ | grep '^bench: '
} | tee "$out"
echo
if [ "${BENCH_README:-0}" = 1 ]; then
  go run ./hack/benchtable -block bench-build -readme README.md < "$out"
  echo "README.md: Performance table (make bench-build) updated"
fi
go run ./hack/benchtable -block bench-build < "$out"
