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
# Two test processes. Known open bug (docs/ARCHITECTURE.md §8): the gradients of upsampler training through the
# frozen UNet's feature hook intermittently come out NaN, only after many other tests have run in the same process
# (reproduced in a fresh process under heavy GC pressure too; cause not found yet). The training tests therefore run
# first, in their own process; every test still runs, none is skipped or retried.
training_classes=(SelfCascade.Tests.Training. UpsamplerModuleTests TrainingOutputSafetyTests)
training=$(printf 'FullyQualifiedName~%s|' "${training_classes[@]}"); training=${training%|}
others=$(printf 'FullyQualifiedName!~%s&' "${training_classes[@]}"); others=${others%&}  # VSTest filters have no !(...)
dotnet build tests/SelfCascade.Tests/SelfCascade.Tests.csproj -c Release
rc=$?
if [ $rc -eq 0 ]; then
  dotnet test tests/SelfCascade.Tests/SelfCascade.Tests.csproj -c Release --no-build \
    --filter "($filter)&($training)" \
    --logger "trx;LogFileName=training.trx" --results-directory "$results" "${args[@]}"
  rc1=$?
  dotnet test tests/SelfCascade.Tests/SelfCascade.Tests.csproj -c Release --no-build \
    --filter "($filter)&$others" \
    --logger "trx;LogFileName=results.trx" --results-directory "$results" "${args[@]}"
  rc2=$?
  rc=$(( rc1 != 0 || rc2 != 0 ))
fi
passed=0; failed=0; total=0; files=0
for trx in "$results/training.trx" "$results/results.trx"; do
  [ -f "$trx" ] || continue
  files=$((files + 1))
  if ! grep -q '<Counters [^>]* executed="[1-9]' "$trx"; then echo "no test ran in $(basename "$trx")"; rc=1; fi
  # The TRX summary holds the counters: <Counters total=".." executed=".." passed=".." failed=".." ...>
  counters=$(grep -o '<Counters [^>]*>' "$trx" | head -1)
  p=$(sed -n 's/.* passed="\([0-9]*\)".*/\1/p' <<<"$counters")
  f=$(sed -n 's/.* failed="\([0-9]*\)".*/\1/p' <<<"$counters")
  t=$(sed -n 's/.* total="\([0-9]*\)".*/\1/p' <<<"$counters")
  passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0})); total=$((total + ${t:-0}))
done
if [ "$files" -eq 0 ]; then
  echo "no test results were written (build failure?)"
  echo "0 passed, 1 failed"
  exit 1
fi
skipped=$(( total - passed - failed ))
echo "${passed} passed, ${failed} failed, ${skipped} skipped"
if [ "$passed" -eq 0 ]; then echo "no test ran"; exit 1; fi
if [ "$failed" -ne 0 ] || [ $rc -ne 0 ]; then exit 1; fi
exit 0
