#!/usr/bin/env bash
# Fuzzes one parser with libFuzzer: tests/fuzz/run.sh TARGET SECONDS [libFuzzer options...]
# TARGET is npy, cli, grid, csv, baseline or preset (tests/fuzz/fuzz_TARGET.c). Builds (once, then
# incrementally) a clang build with -fsanitize=fuzzer,address,undefined in $PR_FUZZ_BUILD
# (default build-fuzz), then fuzzes on one core for SECONDS from the seed corpus
# tests/fuzz/corpus/TARGET and what earlier runs added, $PR_FUZZ_BUILD/fuzz-corpus/TARGET (new
# inputs go there). TARGET all runs every target in turn. A crash, hang (> 10 s) or blow-up
# (> 2 GB) is kept as tests/fuzz/regressions/TARGET/crash-*|timeout-*|oom-*, which the fast suite
# then replays. Prints the executions and the time fuzzed; exit status 0 when nothing was found.
# libFuzzer stops at the first find; to go on past known ones (still kept), add
#   -fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1    (one worker: one core)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
if [ $# -lt 2 ] || { [ "$1" != all ] && [ ! -f "$here/fuzz_$1.c" ]; } || ! [[ $2 =~ ^[0-9]+$ ]]; then
  echo "usage: tests/fuzz/run.sh TARGET SECONDS [libFuzzer options]; TARGET all or one of:" \
       $(cd "$here" && ls fuzz_*.c | sed 's/fuzz_\(.*\)\.c/\1/') >&2
  exit 2
fi
target=$1 seconds=$2
shift 2
if [ "$target" = all ]; then
  found=0
  for t in $(cd "$here" && ls fuzz_*.c | sed 's/fuzz_\(.*\)\.c/\1/'); do
    "$0" "$t" "$seconds" "$@" || found=1
  done
  exit $found
fi
build=${PR_FUZZ_BUILD:-$root/build-fuzz}
if [ ! -f "$build/build.ninja" ]; then
  CC=clang meson setup "$build" "$root" -Dfuzz=true -Db_sanitize=address,undefined \
    -Dbuildtype=debugoptimized -Db_lundef=false >/dev/null
fi
meson compile -C "$build" "fuzz_$target" >/dev/null
bin=$build/tests/fuzz/fuzz_$target
work=$build/fuzz-corpus/$target
regs=$here/regressions/$target
mkdir -p "$work" "$regs"
before=$(ls "$regs" | wc -l)
log=$build/fuzz-$target.log
echo "fuzz $target: ${seconds}s on one core, log $log" >&2
status=0
start=$(date +%s)
"$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=8192 -print_final_stats=1 \
  -artifact_prefix="$regs/" "$@" "$work" "$here/corpus/$target" >"$log" 2>&1 || status=$?
secs=$(( $(date +%s) - start ))
# the final stats, or with -fork=1 the last progress line, or the last line before a crash
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
[ -n "$execs" ] || execs=$(grep -aoE '^#[0-9]+' "$log" | tail -1 | tr -d '#')
echo "fuzz $target: ${execs:-?} executions in $secs s, exit status $status" >&2
after=$(ls "$regs" | wc -l)
if [ "$status" -ne 0 ] || [ "$after" -ne "$before" ]; then
  grep -aE "ERROR: |runtime error|fuzz: |SUMMARY|Test unit written" "$log" | head -20 >&2 || true
  echo "fuzz $target: FOUND something; kept in $regs (replay: build/tests/fuzz/replay_$target FILE)" >&2
  exit 1
fi
