#!/usr/bin/env bash
# regress-at.sh COMMIT: replays the model's regression traces (controller/poolimage,
# TestModelTraces, one or more per reconciler defect found) against the reconciler of COMMIT, to show
# which fail there. The model files of this checkout are copied into a temporary worktree of
# COMMIT; the few names the model uses that COMMIT does not have are substituted (listed
# below). Prints one line per trace: FAIL or PASS, then `regress: commit=C traces=T fail=F`.
#
#	hack/regress-at.sh 43160f7      # the reconciler before the hardening
set -euo pipefail
commit=${1:?usage: hack/regress-at.sh COMMIT}
root=$(git rev-parse --show-toplevel)
dir=$(mktemp -d)
trap 'git -C "$root" worktree remove --force "$dir" >/dev/null 2>&1 || rm -rf "$dir"' EXIT
git -C "$root" worktree add --detach "$dir" "$commit" >/dev/null 2>&1
pi="$dir/controller/poolimage"
cp "$root"/controller/poolimage/model_test.go "$root"/controller/poolimage/model_world_test.go \
	"$root"/controller/poolimage/model_trace_test.go "$pi/"
# Names that came with the hardening: the event reason of an early hold release, and the client the
# reconciler reads live PoolImages with.
if ! grep -q 'ReasonHoldReleased' "$dir/pkg/apis/layering/v1alpha1/"*.go; then
	sed -i 's/v1alpha1\.ReasonHoldReleased/"HoldReleased"/g' "$pi/model_test.go" "$pi/model_world_test.go"
fi
if ! grep -q 'PoolImageClient ' "$pi/reconciler.go"; then
	sed -i '/^\t\tPoolImageClient: *layeringClient,$/d' "$pi/model_world_test.go"
fi
out=$( { cd "$dir" && go test -count=1 -run '^TestModelTraces$' -v ./controller/poolimage/ 2>&1; } || true)
if ! grep -q -- '--- ' <<<"$out"; then
	echo "$out" >&2
	echo "regress: the model does not build against $commit" >&2
	exit 1
fi
grep -E '^    --- (FAIL|PASS)' <<<"$out" | sed -E 's/^    --- (FAIL|PASS): TestModelTraces\/([^ ]*) \(.*/\1 \2/'
total=$(grep -cE '^    --- (FAIL|PASS)' <<<"$out")
fail=$(grep -cE '^    --- FAIL' <<<"$out" || true)
echo "regress: commit=$(git -C "$root" rev-parse --short "$commit") traces=$total fail=$fail"
