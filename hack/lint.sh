#!/usr/bin/env bash
# make lint: golangci-lint (.golangci.yml; pinned in hack/golangci-lint, built once into the
# cache), shellcheck on every shell script of the repository, and no comment or doc that points at
# an issue number: issues live outside the repository, so say what the reference meant instead.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
"$ROOT/hack/install-packages.sh"
status=0

lint=$("$ROOT/hack/build-stack-tools.sh" golangci-lint | sed -n 's/^golangci-lint=//p')
echo "lint: golangci-lint ($("$lint" version --short 2>/dev/null || echo unknown))"
"$lint" run ./... || status=1

# Every tracked shell script: *.sh, .ci/run and executables with a shell shebang.
mapfile -t scripts < <(git ls-files | while read -r f; do
  case $f in
  *.sh | .ci/run) echo "$f" ;;
  *) [ -x "$f" ] && head -c 64 "$f" 2>/dev/null | grep -qE '^#!.*\b(ba)?sh\b' && echo "$f" ;;
  esac
done | sort -u)
echo "lint: shellcheck ${#scripts[@]} scripts"
shellcheck --severity=style "${scripts[@]}" || status=1

# "issue 13", "issue #13", "issues 4 and 6", and a reference broken over two comment lines.
# shellcheck disable=SC2016 # the single quotes hold an awk program
refs=$(git ls-files -z -- ':!*.sum' ':!hack/lint.sh' | xargs -0 awk '
  FNR == 1 { prev = "" }
  { line = tolower($0) }
  prev ~ /issues?[[:space:]]*$/ && line ~ /^[[:space:]]*(\/\/|#)?[[:space:]]*#?[0-9]+/ { print FILENAME ":" FNR - 1 ": " prevline }
  line ~ /(^|[^a-z])issues?[[:space:]]+#?[0-9]+/ { print FILENAME ":" FNR ": " $0 }
  { prev = line; prevline = $0 }' 2>/dev/null || true)
if [ -n "$refs" ]; then
  echo "lint: these lines point at issue numbers; say what the issue meant instead:" >&2
  echo "$refs" >&2
  status=1
fi
exit $status
