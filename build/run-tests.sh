#!/usr/bin/env bash
# Runs every test project and prints one closing line "N passed, M failed" summing all suites.
# Exits non-zero when any test fails or any suite fails to build or run.
set -uo pipefail
cd "$(dirname "$0")/.."

export AOTEVENTS_BINARY="${AOTEVENTS_BINARY:-$PWD/artifacts/aotevents}"
results=artifacts/test-results
rm -rf "$results"; mkdir -p "$results"

passed=0; failed=0; status=0
for project in tests/*/*.Tests.csproj; do
  name=$(basename "$project" .csproj)
  echo "=== $name"
  log="$results/$name.log"
  dotnet test "$project" -c Release --nologo --logger "trx;LogFileName=$name.trx" \
    --results-directory "$results" 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  trx="$results/$name.trx"
  if [ -f "$trx" ]; then
    counters=$(grep -o '<Counters [^>]*>' "$trx" | head -n1)
    p=$(sed -n 's/.* passed="\([0-9]*\)".*/\1/p' <<<"$counters")
    f=$(sed -n 's/.* failed="\([0-9]*\)".*/\1/p' <<<"$counters")
    passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0}))
  else
    echo "no results from $name (build or run failure)"
    failed=$((failed + 1))
  fi
  [ "$rc" -ne 0 ] && status=1
done

echo "$passed passed, $failed failed"
[ "$failed" -gt 0 ] && status=1
exit $status
