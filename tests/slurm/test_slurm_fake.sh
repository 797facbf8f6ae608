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
    --array=1-*) n=${a#--array=1-}; n=${n%%%*} ;;
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
PATH=$work/bin:$PATH "$POLYROPE" reproduce --tiny --slurm --wait --jobs 3 --sbatch "--partition=p1 --time=1:00:00" \
  --out "$dir" >"$work/s.out" 2>"$work/s.err"
rc=$?
[ $rc -le 1 ] && [ -f "$dir/REPORT.md" ] && [ ! -e "$work/INJECTED" ]
check $? "reproduce --slurm --wait through the stand-in sbatch: exit $rc, $(tail -n 2 "$work/s.err")"
grep -qx -- '--wait' "$FAKE_SBATCH_ARGS" && grep -qx -- '--partition=p1' "$FAKE_SBATCH_ARGS" &&
  grep -qx -- '--time=1:00:00' "$FAKE_SBATCH_ARGS" && grep -qx -- '--parsable' "$FAKE_SBATCH_ARGS"
check $? "sbatch got --parsable, --wait and the --sbatch words: $(tr '\n' ' ' <"$FAKE_SBATCH_ARGS")"
# one task per job (every preset's shards and the check), at most --jobs at once
tasks=$(grep -vc '^#' "$dir/slurm/jobs.txt")
grep -qx -- "--array=1-$tasks%3" "$FAKE_SBATCH_ARGS" && [ "$tasks" -ge 7 ] && [ -s "$dir/check.txt" ] &&
  [ "$(ls "$dir"/parts/*.csv | wc -l)" = $((tasks - 1)) ]
check $? "array of $tasks tasks, at most 3 at once: one per line of jobs.txt, a part per shard, check.txt"

# the same rows as a local run (every column but wall times)
"$POLYROPE" reproduce --tiny --out "$work/local" >/dev/null 2>&1
# the claim and verdict columns of REPORT.md's table
verdicts() { awk -F' [|] ' '/^[|] [CGF][0-9]+ [|]/ { print $1, $3 }' "$1"; }
# the data rows without the wall-time columns
strip() { grep -v '^#' "$1" | awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) keep[i] = $i !~ /time_s$/ }
  { s = ""; for (i = 1; i <= NF; i++) if (keep[i]) s = s $i ","; print s }'; }
for p in factorise degree error scaling threshold rope-vs-general; do
  diff <(strip "$dir/$p.csv") <(strip "$work/local/$p.csv") >/dev/null
  check $? "$p: the merged CSV has the local run's rows"
done
grep -q '^!\[factorise.png' "$dir/REPORT.md" && diff <(verdicts "$dir/REPORT.md") <(verdicts "$work/local/REPORT.md")
check $? "REPORT.md shows the figures inline, with the local run's verdicts"

# a task that left nothing (degree's last part) and one cut short (a row of factorise's first):
# their claims are not run, with the reason, never passed; the others as before
deg=$(ls "$dir"/parts/degree.*.csv | tail -n 1)
fac=$(ls "$dir"/parts/factorise.*.csv | head -n 1)
rm -f "$deg"
sed -i '$d' "$fac"
"$POLYROPE" reproduce --tiny --slurm-merge --jobs 3 --out "$dir" >"$work/m.out" 2>"$work/m.err"
rc=$?
verdict() { awk -F' [|] ' -v c="$1" '$1 == "| " c { print $3 }' "$dir/REPORT.md"; }
[ $rc = 1 ] && [ "$(verdict C7)" = "not run" ] && [ "$(verdict C11)" = "not run" ] && [ "$(verdict C9)" = passed ] &&
  grep -q 'C7 .*could not be merged' "$dir/REPORT.md"
check $? "merge with a part missing and one short: exit $rc, C7 $(verdict C7), C11 $(verdict C11), C9 $(verdict C9)"
# submitting again with --resume finishes both, keeping every other row
PATH=$work/bin:$PATH "$POLYROPE" reproduce --tiny --slurm --wait --resume --jobs 3 --out "$dir" >/dev/null 2>"$work/s2.err"
rc=$?
[ $rc -le 1 ] && [ -f "$deg" ] && [ "$(verdict C7)" = "$(verdict C7 "$work/local")" ] &&
  diff <(strip "$dir/factorise.csv") <(strip "$work/local/factorise.csv") >/dev/null &&
  diff <(strip "$dir/degree.csv") <(strip "$work/local/degree.csv") >/dev/null
check $? "--slurm --resume fills in the missing part and row: exit $rc"

# without --wait: the job id and the merge command, nothing merged yet
rm -rf "$work/n"
PATH=$work/bin:$PATH "$POLYROPE" reproduce --tiny --slurm --out "$work/n" >"$work/n.out" 2>&1
rc=$?
[ $rc = 0 ] && grep -q '^submitted job array 4242: ' "$work/n.out" &&
  grep -q "^  polyrope reproduce --tiny --out '$work/n' --slurm-merge --jobs 8$" "$work/n.out" && [ ! -e "$work/n/REPORT.md" ]
check $? "--slurm prints the job id and the merge command: exit $rc, $(cat "$work/n.out")"

echo "$fails failed"
[ $fails = 0 ]
