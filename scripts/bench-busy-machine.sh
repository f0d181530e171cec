#!/usr/bin/env bash
# The busy-machine measurement in docs/BENCHMARKS.md §4: the README's first command (a 32 -> 64 -> 128 px cascade of
# the embedded model) timed with a competing CPU load, for two builds of the CLI, runs interleaved so both see the
# same background. The caller's OMP_* / SELFCASCADE_THREADS are cleared: each build runs with what it sets itself.
#
# usage: scripts/bench-busy-machine.sh BEFORE.dll AFTER.dll [REPEATS=3] [LOAD_PROCESSES=2] [TIMEOUT_S=900]
#   BEFORE.dll / AFTER.dll: SelfCascade.Cli.dll of two builds (e.g. main's commit and this one).
#   LOAD_PROCESSES: busy-loop processes running during every timed run (0 = none).
# Prints one row per run: build, repeat, wall seconds, CPU seconds (user+sys of the run), 1-minute load average.
set -uo pipefail
before=$1; after=$2; repeats=${3:-3}; load=${4:-2}; limit=${5:-900}
unset OMP_WAIT_POLICY OMP_NUM_THREADS SELFCASCADE_THREADS SELFCASCADE_LIBTORCH
work=$(mktemp -d); trap 'kill ${pids[*]:-} 2>/dev/null; rm -rf "$work"' EXIT
pids=()
for ((i = 0; i < load; i++)); do ( while :; do :; done ) & pids+=($!); done
printf '%-7s %-3s %9s %9s %6s\n' build rep wall_s cpu_s load1
for ((r = 1; r <= repeats; r++)); do
  for build in before after; do
    dll=$before; [ $build = after ] && dll=$after
    start=$(date +%s.%N)
    # GNU time is not everywhere: bash's `times` of a subshell gives the child's CPU seconds.
    cpu=$( { timeout "$limit" dotnet "$dll" generate --prompt "red heart" --size 128x128 --out "$work/$build-$r.png" >/dev/null 2>"$work/err" ; rc=$?; times; exit $rc; } | tail -1 | awk '{ split($1,u,"m"); split($2,s,"m"); sub("s","",u[2]); sub("s","",s[2]); printf "%.1f", u[1]*60+u[2]+s[1]*60+s[2] }')
    wall=$(echo "$(date +%s.%N) - $start" | bc)
    load1=$(cut -d' ' -f1 /proc/loadavg)
    # No image: it ran past TIMEOUT_S (timeout kills it silently) or failed (its first error line is shown).
    if [ -f "$work/$build-$r.png" ]; then wall=$(printf '%.1f' "$wall"); else wall=">$limit"; head -1 "$work/err" >&2; fi
    printf '%-7s %-3s %9s %9s %6s\n' $build $r "$wall" "$cpu" "$load1"
  done
done
