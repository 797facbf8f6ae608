#!/bin/bash
# A polyrope sweep as a Slurm job array: task K of N runs shard K/N into its own CSV.
#   sbatch --array=1-16 experiments/sweep-slurm.sh PRESET 16 OUTDIR [more sweep options]
#   polyrope sweep --merge PRESET.csv OUTDIR/PRESET-*.csv        (after the array finishes)
# A requeued or preempted task continues where it stopped (--resume); rerunning the array
# fills in whatever is missing. Set POLYROPE to the binary if it is not on PATH.
#SBATCH --job-name=polyrope-sweep
#SBATCH --cpus-per-task=1
#SBATCH --time=04:00:00
#SBATCH --requeue
set -euo pipefail
preset=${1:?usage: sbatch --array=1-N sweep-slurm.sh PRESET N OUTDIR [options]}
shards=${2:?number of shards N (equal to the array size)}
outdir=${3:?output folder}
shift 3
k=${SLURM_ARRAY_TASK_ID:?run this with sbatch --array=1-N}
mkdir -p "$outdir"
exec "${POLYROPE:-polyrope}" sweep "$preset" --shard "$k/$shards" --resume \
     --out "$outdir/$preset-$k.csv" "$@"
