#!/bin/bash
# Slow suite: polyrope on a real (single-node, throwaway) Slurm cluster, against local runs.
#  1. experiments/sweep-slurm.sh as a job array over a small grid, merged with sweep --merge;
#  2. reproduce --tiny --slurm --jobs 2 (returns at once; the printed merge command after it);
#  3. reproduce --tiny --slurm --wait (the default --jobs 8);
# each compared row for row with the same work run locally: the keys and every column but the
# wall times (*time_s), and REPORT.md's verdict of every claim. Exit 77 (skip) only when the
# cluster cannot start here, with the reason. Needs POLYROPE (set by meson) and slurm-wlm, munge.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
: "${POLYROPE:?set POLYROPE to the polyrope binary}"
POLYROPE=$(realpath "$POLYROPE")
export POLYROPE
# shellcheck source=cluster.sh
. "$here/cluster.sh"

work=$(mktemp -d "${TMPDIR:-/tmp}/polyrope-slurm.XXXXXX")
keep=${POLYROPE_SLURM_KEEP:-0}
finish() {
  cluster_stop
  if [ "$keep" = 1 ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap finish EXIT
trap 'exit 130' INT TERM

fail() {
  echo "FAIL: $*"
  echo "logs: $work/cluster/log (rerun with POLYROPE_SLURM_KEEP=1 to keep them)"
  for f in "$work"/cluster/log/*.log; do echo "--- $f"; tail -n 15 "$f"; done
  keep=1
  exit 1
}

if ! cluster_start "$work/cluster"; then
  echo "SKIP: no Slurm cluster in this environment: $cluster_why"
  exit 77
fi
echo "cluster up: $SLURM_CONF ($(sinfo -h -o '%P %D %c %T' | head -n1))"

# waits until job $1 has left the queue (at most $2 seconds)
wait_job() {
  local t
  for ((t = 0; t < $2 * 10; t++)); do
    [ -z "$(squeue -h -j "$1" -o %i 2>/dev/null)" ] && return 0
    sleep 0.1
  done
  return 1
}

# same_rows A B: the data rows of two sweep CSVs agree, column by column (by header name), on
# everything but wall times; prints the first difference
same_rows() {
  awk -F, '
    FNR == 1 { file++ }
    /^#/ { next }
    !hdr[file]++ { for (i = 1; i <= NF; i++) name[file, i] = $i; nf[file] = NF; next }
    { rows[file]++
      line = ""
      for (i = 1; i <= NF; i++) if (name[file, i] !~ /time_s$/) line = line name[file, i] "=" $i ","
      row[file, rows[file]] = line }
    END {
      if (rows[1] != rows[2] || rows[1] == 0) { printf "row counts %d and %d\n", rows[1], rows[2]; exit 1 }
      for (r = 1; r <= rows[1]; r++)
        if (row[1, r] != row[2, r]) { printf "row %d differs:\n  %s\n  %s\n", r, row[1, r], row[2, r]; exit 1 }
      printf "%d rows agree\n", rows[1]
    }' "$1" "$2"
}

# the claim and verdict columns of REPORT.md's table
verdicts() { awk -F' [|] ' '/^[|] [CGF][0-9]+ [|]/ { print $1, $3 }' "$1"; }

compare_reproduce() { # DIR_SLURM DIR_LOCAL
  local p out
  for p in factorise degree error scaling threshold rope-vs-general; do
    out=$(same_rows "$1/$p.csv" "$2/$p.csv") || fail "$p: Slurm and local CSVs differ: $out"
    echo "  $p: $out"
    [ -s "$1/$p.png" ] && [ -s "$1/$p.pdf" ] || fail "$p: no figure from the Slurm run"
  done
  diff <(verdicts "$1/REPORT.md") <(verdicts "$2/REPORT.md") || fail "REPORT.md verdicts differ (above)"
  [ "$(verdicts "$1/REPORT.md" | wc -l)" -ge 19 ] || fail "REPORT.md of $1 has too few claims"
  grep -q '!\[' "$1/REPORT.md" || fail "REPORT.md of $1 shows no figure inline"
}

# 1. sweep-slurm.sh over a small grid, 3 tasks
grid="n=8,16;d=2,4;B=0.5,1;pos=rope,general;seed=1"
echo "1. sbatch --array=1-3 sweep-slurm.sh factorise 3 ($grid)"
job=$(cd "$work" && sbatch --parsable --wait --array=1-3 --output="$work/sweep-%a.log" \
      "$src/experiments/sweep-slurm.sh" factorise 3 "$work/shards" --grid "$grid") ||
  fail "the sweep-slurm.sh array failed (job ${job:-none}): $(cat "$work"/sweep-*.log)"
"$POLYROPE" sweep --merge "$work/slurm.csv" "$work"/shards/factorise-{1,2,3}.csv || fail "merge of the 3 shards"
"$POLYROPE" sweep factorise --grid "$grid" --quiet --out "$work/local.csv" || fail "local sweep"
out=$(same_rows "$work/slurm.csv" "$work/local.csv") || fail "sweep-slurm.sh against local: $out"
echo "  factorise, job $job: $out"

# the local reference of 2 and 3
echo "local: polyrope reproduce --tiny"
"$POLYROPE" reproduce --tiny --out "$work/local" >"$work/local.log" 2>&1
[ $? -le 1 ] || fail "local reproduce --tiny: $(tail -n 3 "$work/local.log")"

# 2. submit, return at once, merge with the printed command
echo "2. polyrope reproduce --tiny --slurm --jobs 2"
"$POLYROPE" reproduce --tiny --slurm --jobs 2 --out "$work/s2" >"$work/s2.out" 2>"$work/s2.err" ||
  fail "reproduce --slurm: $(cat "$work/s2.err")"
cat "$work/s2.out"
job=$(sed -n 's/^submitted job array \([0-9]*\):.*/\1/p' "$work/s2.out")
merge=$(sed -n 's/^  \(polyrope reproduce .*--slurm-merge.*\)$/\1/p' "$work/s2.out")
[ -n "$job" ] && [ -n "$merge" ] || fail "reproduce --slurm printed no job id or merge command"
[ "$(grep -vc '^#' "$work/s2/slurm/jobs.txt")" -ge 7 ] || fail "jobs.txt lists fewer tasks than 6 presets and the check"
wait_job "$job" 600 || fail "job array $job still queued or running after 600 s"
# the printed command, run as printed (polyrope from PATH)
PATH=$(dirname "$POLYROPE"):$PATH bash -c "$merge" >"$work/s2-merge.log" 2>&1
[ $? -le 1 ] || fail "merge command '$merge': $(tail -n 3 "$work/s2-merge.log")"
compare_reproduce "$work/s2" "$work/local"

# 3. submit and wait in one command
echo "3. polyrope reproduce --tiny --slurm --wait"
"$POLYROPE" reproduce --tiny --slurm --wait --out "$work/s3" >"$work/s3.log" 2>&1
[ $? -le 1 ] || fail "reproduce --slurm --wait: $(tail -n 3 "$work/s3.log")"
compare_reproduce "$work/s3" "$work/local"

# a merge before any task ran: every claim not run, none passed
"$POLYROPE" reproduce --tiny --slurm-merge --out "$work/none" >"$work/none.log" 2>&1
[ $? = 1 ] && ! grep -qE '^\| [CGF][0-9]+ \|[^|]*\| passed' "$work/none/REPORT.md" ||
  fail "merge without parts: $(tail -n 3 "$work/none.log")"
echo "PASS"
