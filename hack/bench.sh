#!/usr/bin/env bash
# make bench: the performance figures, each as a line `bench: <name>=<value> goal=<goal>`
# (baselines as `bench: <name>.<baseline>=<value>`), then the README's table made of them.
#   1. the month-trace replay (controller/poolimage, fake clients, simulated time)
#   3. the controller at scale on a real API server (test/bench/scale; BENCH_POOLS, default 200)
#   4. the generator and reconcile micro-benchmarks
# `make bench-build` (test/bench/build) measures the layer cache on the full stack.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
out=$(mktemp)
trap 'rm -f "$out"' EXIT

# gobench PKG REGEX NAME GOAL...: one bench line per benchmark, from -benchmem output.
gobench() {
  local pkg=$1 re=$2
  shift 2
  go test -run '^$' -bench "$re" -benchmem -count 1 "$pkg" 2>/dev/null | tee -a /dev/stderr | awk -v spec="$*" '
    BEGIN { n = split(spec, a, " "); for (i = 1; i <= n; i += 3) { name[a[i]] = a[i+1]; goal[a[i]] = a[i+2] } }
    /^Benchmark/ {
      b = $1; sub(/-[0-9]+$/, "", b)
      if (!(b in name)) next
      for (i = 2; i <= NF; i++) {
        if ($i == "ns/op") printf "bench: %s_us=%.1f goal=%s\n", name[b], $(i-1) / 1000, goal[b]
        if ($i == "allocs/op") printf "bench: %s_allocs=%s\n", name[b], $(i-1)
        if ($i == "B/op") printf "bench: %s_bytes=%s\n", name[b], $(i-1)
      }
    }'
}

{
  go test -run '^$' -bench 'BenchmarkMonthTrace' -benchtime 1x ./controller/poolimage/ 2>/dev/null | grep '^bench: '
  gobench ./pkg/generator/ 'BenchmarkRender$|BenchmarkInputsHash$' \
    BenchmarkRender generator.render 1000 BenchmarkInputsHash generator.inputs_hash 100
  gobench ./controller/poolimage/ 'BenchmarkReconcile1000Pools' \
    BenchmarkReconcile1000Pools/steady reconcile.fake_1000_pools_steady 1000 \
    BenchmarkReconcile1000Pools/first-build reconcile.fake_1000_pools_first_build 1000
  go run ./test/bench/scale -pools "${BENCH_POOLS:-200}" | grep '^bench: '
} | tee "$out"

echo
# The README's table (hack/benchtable): every figure in it is one printed above. BENCH_README=1
# writes it into README.md between <!-- bench:begin --> and <!-- bench:end -->.
if [ "${BENCH_README:-0}" = 1 ]; then
  go run ./hack/benchtable -block bench -readme README.md < "$out"
  echo "README.md: Performance table (make bench) updated"
fi
go run ./hack/benchtable -block bench < "$out"
