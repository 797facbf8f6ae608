/* jobs: the work of `polyrope reproduce` as a list of jobs, each a preset's shard (a `polyrope
 * sweep` into a part CSV) or the claims' check (`polyrope check all`), so that it can run as
 * child processes side by side (reproduce --jobs N) or elsewhere (a Slurm array), and then be
 * merged into the CSVs a serial run writes. */
#ifndef PR_JOBS_H
#define PR_JOBS_H

#include <stddef.h>
#include "sweep.h"

typedef struct {
    const pr_preset_t *preset; /* NULL: the check job */
    long k, n;                 /* shard k of n of the preset's grid */
    double predicted;          /* CPU seconds (the cost model; rows capped at their budget) */
} pr_job_t;

typedef struct {
    int njobs;
    pr_job_t *job;        /* the longest predicted first */
    const char *size;     /* "tiny", "quick" or "full" */
    const char *dir;      /* the run's folder; parts go to DIR/parts */
    double predicted;     /* their sum */
} pr_jobs_t;

/* Plans the jobs of a reproduce run of this size into dir for `workers` processes: each
 * preset cut into shards no longer than a quarter of a worker's share (its rows spread over
 * them by idx mod N), plus the check job. PR_OK, PR_ENOMEM, or PR_EINVAL with err filled (a
 * preset's grid is invalid). */
int pr_jobs_plan(pr_jobs_t *J, const char *size, const char *dir, int workers, char *err, size_t errlen);
void pr_jobs_clear(pr_jobs_t *J);

/* The output of job j: DIR/parts/PRESET.K-of-N.csv, or DIR/check.txt for the check job. */
void pr_jobs_output(char *buf, size_t len, const pr_jobs_t *J, int j);
/* The log of job j (its stdout and stderr): DIR/parts/PRESET.K-of-N.log or DIR/check.txt. */
void pr_jobs_log(char *buf, size_t len, const pr_jobs_t *J, int j);

/* The command of job j as an argv for `polyrope` (argv[0] "polyrope", NULL-terminated, at most
 * 16 entries), its strings in buf: a sweep with --resume (a job run again continues its part)
 * and --yes (the run was predicted as a whole), or check all. PR_OK or PR_ESIZE. */
int pr_jobs_argv(char **argv, char *buf, size_t len, const pr_jobs_t *J, int j);

/* Runs every job as a child process of this very binary, at most `workers` at once, longest
 * first, with a progress line on stderr when one ends (and at most one a minute otherwise).
 * ok[j] gets 1 when job j exited 0 (check: 0 or 1, its claims decide), its CPU seconds
 * cpu[j] (may be NULL). Returns PR_OK, or PR_EIO when a child could not be started or waited
 * for (a signal stops the run: the children get it, no new one starts). */
int pr_jobs_run(int *ok, double *cpu, const pr_jobs_t *J, int workers);

/* Merges preset p's part CSVs into DIR/PRESET.csv (sweep --merge). Returns an exit status. */
int pr_jobs_merge(const pr_jobs_t *J, const pr_preset_t *p, const char *command);

#endif
