#!/usr/bin/env bash
# The README's test command: build, run every test not marked slow/GPU (`--slow`: slow ones too), print "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
# libtorch's OpenMP threads spin while waiting; on a busy 2-core machine (another build or test process) that turns
# a 0.2 s tiny-model run into 30 s. Passive waiting costs nothing measurable here.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
# Tests marked [Trait("Category", "Slow")] (> ~20 s each) are skipped unless asked for with `--slow` or
# SELFCASCADE_TESTS=all; GPU tests always need a GPU machine. Other arguments go to `dotnet test`.
filter="Category!=Slow&Category!=Gpu"
[ "${SELFCASCADE_TESTS:-}" = "all" ] && filter="Category!=Gpu"
args=()
for a in "$@"; do
  if [ "$a" = "--slow" ]; then filter="Category!=Gpu"; else args+=("$a"); fi
done
results="$(pwd)/TestResults"; rm -rf "$results"; mkdir -p "$results"
dotnet test tests/SelfCascade.Tests/SelfCascade.Tests.csproj -c Release \
  --filter "$filter" \
  --logger "trx;LogFileName=results.trx" --results-directory "$results" "${args[@]}"
rc=$?
trx="$results/results.trx"
if [ ! -f "$trx" ]; then
  echo "no test results were written (build failure?)"
  echo "0 passed, 1 failed"
  exit 1
fi
# The TRX summary holds the counters: <Counters total=".." executed=".." passed=".." failed=".." ...>
counters=$(grep -o '<Counters [^>]*>' "$trx" | head -1)
passed=$(sed -n 's/.* passed="\([0-9]*\)".*/\1/p' <<<"$counters")
failed=$(sed -n 's/.* failed="\([0-9]*\)".*/\1/p' <<<"$counters")
total=$(sed -n 's/.* total="\([0-9]*\)".*/\1/p' <<<"$counters")
passed=${passed:-0}; failed=${failed:-0}; total=${total:-0}
skipped=$(( total - passed - failed ))
echo "${passed} passed, ${failed} failed, ${skipped} skipped"
if [ "$passed" -eq 0 ]; then echo "no test ran"; exit 1; fi
if [ "$failed" -ne 0 ] || [ $rc -ne 0 ]; then exit 1; fi
exit 0
