#!/usr/bin/env bash
# Runs every fuzz target of the project, one after the other, for FUZZTIME each (a Go -fuzztime:
# "1000000x" is an exact number of executions, "10s" a duration), prints the executions each
# made, and copies the corpus the fuzzer grew into the package's testdata/fuzz/<Target>/ so that
# `go test` replays it as seeds (commit those files).
#
#   hack/fuzz.sh                           1,000,000 executions per target (the project's bar), corpora saved
#   FUZZTIME=5000x FUZZ_SAVE=0 hack/fuzz.sh  what `make test` runs (a count, not a duration: with a
#                                          duration, replaying a large corpus can outlast it and
#                                          Go reports "context deadline exceeded")
#   FUZZ_PARALLEL=1 hack/fuzz.sh           one worker (default: GOMAXPROCS)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
FUZZTIME=${FUZZTIME:-1000000x}
FUZZ_SAVE=${FUZZ_SAVE:-1}
parallel=()
[ -n "${FUZZ_PARALLEL:-}" ] && parallel=(-parallel "$FUZZ_PARALLEL")
cache=$(go env GOCACHE)/fuzz

for target in ./pkg/generator:FuzzRender ./pkg/generator:FuzzInputsHash \
  ./pkg/apis/layering/v1alpha1:FuzzValidate ./pkg/apis/layering/v1alpha1:FuzzValidatePushSpec \
  ./pkg/apis/layering/v1alpha1:FuzzFromMachineOSConfig; do
  pkg=${target%%:*} name=${target##*:}
  start=$SECONDS
  log=$(mktemp)
  if ! go test -v "$pkg" -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZTIME" "${parallel[@]}" >"$log" 2>&1; then
    cat "$log"
    echo "fuzz: $name FAILED (the failing input is in $pkg/testdata/fuzz/$name/)" >&2
    exit 1
  fi
  execs=$({ grep -o 'execs: [0-9]*' "$log" || true; } | tail -1 | tr -dc 0-9)
  echo "fuzz: $name ${execs:-0 new} execs in $(( SECONDS - start ))s after replaying the corpus, nothing found"
  rm -f "$log"
  if [ "$FUZZ_SAVE" = 1 ]; then
    import=$(go list "$pkg")
    dst="$pkg/testdata/fuzz/$name"
    mkdir -p "$dst"
    # The grown corpus, smallest entries first, at most 200 of them (the seeds stay small).
    find "$cache/$import/$name" -type f -size -16k -printf '%s %p\n' 2>/dev/null | sort -n | head -200 |
      while read -r _ f; do cp "$f" "$dst/"; done
  fi
done
