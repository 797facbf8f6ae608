/* slurm: `polyrope reproduce --slurm`. The jobs of reproduce --jobs N (jobs.h: each preset's
 * shards and the check) become one Slurm job array, one task per job, at most N at once; once
 * it has run, `reproduce --slurm-merge` merges the parts and reports exactly as --jobs does.
 * Files: DIR/slurm/array.sh (the batch script), DIR/slurm/jobs.txt (task -> command and log),
 * DIR/slurm/task-T.log (Slurm's output of task T), DIR/parts/ (the jobs' outputs and logs). */
#ifndef PR_SLURM_H
#define PR_SLURM_H

/* --jobs when --slurm or --slurm-merge is given without it */
enum { PR_SLURM_JOBS = 8 };

/* 0 when sbatch is on PATH and extra (the --sbatch words, may be NULL) can be passed; else the
 * exit status 2 after a one-line error. Checked before any work or output. */
int pr_slurm_usable(const char *extra);

/* Plans the jobs of a reproduce run of size ("tiny", "quick", "full") for `workers` tasks at
 * once (pr_jobs_plan), writes DIR/slurm/array.sh and jobs.txt and submits them with sbatch
 * (found on PATH; extra: more sbatch options, words separated by spaces, may be NULL). Without
 * resume the jobs' old outputs are removed first. With wait, sbatch waits until every task
 * has ended (--wait) and the caller merges; without, prints the job id and the command that
 * merges. Returns an exit status after printing a one-line error (2 before anything is
 * submitted, 1 when sbatch failed). */
int pr_slurm_submit(const char *dir, const char *size, int workers, const char *extra, int wait, int resume);

#endif
