/* slurm: `polyrope reproduce --slurm`. The presets' shards become one Slurm job array (one
 * task per preset shard, each a `polyrope sweep --shard K/N --resume`); the shards are merged
 * back into DIR/PRESET.csv (`sweep --merge`), after which reproduce draws, checks and reports
 * exactly as a local run does. Files: DIR/slurm/array.sh (the batch script), DIR/slurm/jobs.txt
 * (task -> preset and shard), DIR/slurm/PRESET-K.csv (the shards), DIR/slurm/task-T.log. */
#ifndef PR_SLURM_H
#define PR_SLURM_H

/* Default number of shards per preset (fewer when a preset has fewer configurations). */
enum { PR_SLURM_SHARDS = 8 };

/* Writes DIR/slurm/array.sh and jobs.txt for the presets' grids of size ("tiny", "quick",
 * "full") cut into at most `shards` shards each, and submits them with sbatch (found on PATH;
 * extra_args: more sbatch options, words separated by spaces, may be NULL). With wait, sbatch
 * waits until every task has ended (--wait); without, prints the job id and the command that
 * merges. Returns an exit status after printing a one-line error (2 before anything is
 * submitted, 1 when sbatch failed or a task failed). */
int pr_slurm_submit(const char *dir, const char *size, long shards, const char *extra_args, int wait);

/* Merges each preset's shard CSVs from DIR/slurm into DIR/PRESET.csv (pr_sweep_merge), for the
 * same size and shards as the submission. Returns an exit status after one line on stderr: for
 * a missing shard, its task and how to finish it; for an incomplete one, pr_sweep_merge's. */
int pr_slurm_merge(const char *dir, const char *size, long shards, const char *command);

#endif
