#!/bin/bash
# Fast suite: reproduce --slurm without a cluster. A stand-in sbatch on PATH runs the array's
# tasks one after another (as one node would) and records its arguments; the output folder's
# name has a space and a quote, which array.sh must keep as data. Checks the refusals (one line,
# exit 2, before anything is submitted), the generated array against the presets' shards, a
# merge that matches a local run row for row, and a merge with a shard missing. The real cluster
# is tests/slurm/test_slurm.sh (slow suite).
set -uo pipefail
: "${POLYROPE:?set POLYROPE to the polyrope binary}"
POLYROPE=$(realpath "$POLYROPE")
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/polyrope-slurm-fake.XXXXXX")
trap 'rm -rf "$work"' EXIT
fails=0
check() { # CONDITION-STATUS MESSAGE
  if [ "$1" != 0 ]; then echo "FAIL: $2"; fails=$((fails + 1)); else echo "ok: $2"; fi
}

mkdir -p "$work/bin"
cat >"$work/bin/sbatch" <<'EOF'
#!/bin/bash
printf '%s\n' "$@" >"$FAKE_SBATCH_ARGS"
n=0 out=/dev/null script=
for a; do
  case $a in
    --array=1-*) n=${a#--array=1-} ;;
    --output=*) out=${a#--output=} ;;
    -*) ;;
    *) script=$a ;;
  esac
done
echo 4242
for ((k = 1; k <= n; k++)); do
  SLURM_ARRAY_TASK_ID=$k "$script" >"${out//%a/$k}" 2>&1 || exit 1
done
EOF
chmod +x "$work/bin/sbatch"
export FAKE_SBATCH_ARGS=$work/sbatch-args

# refusals: exit 2, one line on stderr, nothing submitted
refuse() { # WHAT ARGS...
  local what=$1
  shift
  rm -f "$FAKE_SBATCH_ARGS"
  PATH=$work/bin:$PATH "$POLYROPE" reproduce --tiny "$@" >"$work/r.out" 2>"$work/r.err"
  local rc=$?
  [ $rc = 2 ] && [ "$(wc -l <"$work/r.err")" = 1 ] && [ ! -e "$FAKE_SBATCH_ARGS" ]
  check $? "$what: exit $rc, stderr: $(cat "$work/r.err")"
}
refuse "--wait without --slurm" --wait --out "$work/x"
refuse "--sbatch without --slurm" --sbatch "-p x" --out "$work/x"
refuse "--slurm with --slurm-merge" --slurm --slurm-merge --out "$work/x"
refuse "--slurm-shards alone" --slurm-shards 2 --out "$work/x"
refuse "--sbatch with a newline" --slurm --sbatch $'-p\nx' --out "$work/x"
# no sbatch on PATH (an empty PATH folder)
mkdir -p "$work/empty"
PATH=$work/empty "$POLYROPE" reproduce --tiny --slurm --out "$work/x" >"$work/r.out" 2>"$work/r.err"
rc=$?
[ $rc = 2 ] && [ "$(wc -l <"$work/r.err")" = 1 ] && grep -q 'sbatch not found' "$work/r.err"
check $? "no sbatch on PATH: exit $rc, stderr: $(cat "$work/r.err")"

# submit and wait: the folder's name is data in array.sh, never shell code
cd "$work" || exit 1
dir="$work/o'ut \$(touch INJECTED) \`touch INJECTED\` dir"
PATH=$work/bin:$PATH "$POLYROPE" reproduce --tiny --slurm --wait --slurm-shards 2 --sbatch "--partition=p1 --time=1:00:00" \
  --out "$dir" >"$work/s.out" 2>"$work/s.err"
rc=$?
[ $rc -le 1 ] && [ -f "$dir/REPORT.md" ] && [ ! -e "$work/INJECTED" ]
check $? "reproduce --slurm --wait through the stand-in sbatch: exit $rc, $(tail -n 2 "$work/s.err")"
grep -qx -- '--wait' "$FAKE_SBATCH_ARGS" && grep -qx -- '--partition=p1' "$FAKE_SBATCH_ARGS" &&
  grep -qx -- '--time=1:00:00' "$FAKE_SBATCH_ARGS" && grep -qx -- '--parsable' "$FAKE_SBATCH_ARGS"
check $? "sbatch got --parsable, --wait and the --sbatch words: $(tr '\n' ' ' <"$FAKE_SBATCH_ARGS")"
# one task per shard: min(2, configurations) per preset, as jobs.txt and --array say
tasks=$(grep -vc '^#' "$dir/slurm/jobs.txt")
grep -qx -- "--array=1-$tasks" "$FAKE_SBATCH_ARGS" && [ "$tasks" -ge 6 ] && [ "$tasks" -le 12 ]
check $? "array of $tasks tasks, one per line of jobs.txt"

# the same rows as a local run (every column but wall times)
"$POLYROPE" reproduce --tiny --out "$work/local" >/dev/null 2>&1
# the data rows without the wall-time columns
strip() { grep -v '^#' "$1" | awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) keep[i] = $i !~ /time_s$/ }
  { s = ""; for (i = 1; i <= NF; i++) if (keep[i]) s = s $i ","; print s }'; }
for p in factorise degree error scaling threshold rope-vs-general; do
  diff <(strip "$dir/$p.csv") <(strip "$work/local/$p.csv") >/dev/null
  check $? "$p: the merged CSV has the local run's rows"
done
grep -q '^!\[factorise.png' "$dir/REPORT.md"
check $? "REPORT.md shows the figures inline"

# a shard missing: the merge names the preset, exit 2, no report
rm -f "$dir/REPORT.md" "$dir/slurm/degree-2.csv"
"$POLYROPE" reproduce --tiny --slurm-merge --slurm-shards 2 --out "$dir" >"$work/m.out" 2>"$work/m.err"
rc=$?
[ $rc = 2 ] && [ "$(wc -l <"$work/m.err")" = 1 ] && grep -q 'degree-2.csv (task [0-9]*) is missing' "$work/m.err" &&
  [ ! -e "$dir/REPORT.md" ]
check $? "merge with degree-2.csv missing: exit $rc, $(tail -n 1 "$work/m.err")"
# a shard cut short (a task killed mid-way): pr_sweep_merge's one line names its missing rows
sed -i '$d' "$dir/slurm/factorise-1.csv"
"$POLYROPE" reproduce --tiny --slurm-merge --slurm-shards 2 --out "$dir" >"$work/m.out" 2>"$work/m.err"
rc=$?
[ $rc = 2 ] && [ "$(wc -l <"$work/m.err")" = 1 ] && grep -q 'factorise-1.csv (shard 1/2) has' "$work/m.err" &&
  [ ! -e "$dir/REPORT.md" ]
check $? "merge with factorise-1.csv short of a row: exit $rc, $(cat "$work/m.err")"
# submitting again finishes both
PATH=$work/bin:$PATH "$POLYROPE" reproduce --tiny --slurm --wait --slurm-shards 2 --out "$dir" >/dev/null 2>"$work/s2.err"
rc=$?
[ $rc -le 1 ] && [ -f "$dir/REPORT.md" ] && [ -f "$dir/slurm/degree-2.csv" ] &&
  diff <(strip "$dir/factorise.csv") <(strip "$work/local/factorise.csv") >/dev/null
check $? "submitting again fills in the missing shard and row: exit $rc"

# without --wait: the job id and the merge command, nothing merged yet
rm -rf "$work/n"
PATH=$work/bin:$PATH "$POLYROPE" reproduce --tiny --slurm --out "$work/n" >"$work/n.out" 2>&1
rc=$?
[ $rc = 0 ] && grep -q '^submitted job array 4242: ' "$work/n.out" &&
  grep -q "^  polyrope reproduce --tiny --out '$work/n' --slurm-merge$" "$work/n.out" && [ ! -e "$work/n/REPORT.md" ]
check $? "--slurm prints the job id and the merge command: exit $rc, $(cat "$work/n.out")"

echo "$fails failed"
[ $fails = 0 ]
