/* jobs: reproduce's work as shards and a check, run side by side (see jobs.h). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include "pr_status.h"
#include "pr_timing.h"
#include "proofs-check/checks.h"
#include "child.h"
#include "jobs.h"

/* at most this many shards of one preset: a part CSV each */
enum { MAX_SHARDS = 16 };

/* the check's trials: `check all`'s default for --full, 3 otherwise (as reproduce runs it) */
static const char *check_trials(const char *size)
{
    return strcmp(size, "full") ? "3" : 0;
}

/* predicted CPU seconds of `polyrope check all` (proofs-check's own calibrated costs) */
static double check_cost(const char *size)
{
    const char *t = check_trials(size);
    pr_check_opts_t o = {t ? atol(t) : 20, 20261123, PR_FAULT_NONE, 0, NULL, NULL, 0, NULL, NULL};
    double sum = 0;
    for (int i = 0; i < pr_ncheck; i++) {
        double c;
        if (!pr_check_predict(&c, &pr_checks[i], &o))
            sum += c;
    }
    return sum;
}

static int job_cmp(const void *a, const void *b)
{
    const pr_job_t *x = a, *y = b;
    return (x->predicted < y->predicted) - (x->predicted > y->predicted);
}

/* the shards of one preset: costs of its rows summed by idx mod n */
static int plan_preset(pr_jobs_t *J, const pr_preset_t *p, const pr_grid_t *g, double target)
{
    long count = pr_grid_count(g);
    double budget = p->row_seconds > 0 ? p->row_seconds : 0, *cost = malloc(sizeof(double) * (count ? count : 1));
    if (!cost)
        return PR_ENOMEM;
    double total = 0;
    for (long idx = 0; idx < count; idx++) {
        pr_cfg_t cfg;
        pr_cfg_at(&cfg, g, idx);
        total += cost[idx] = pr_sweep_row_cost(p, &cfg, budget);
    }
    long n = isfinite(target) && target > 0 ? (long)ceil(total / target) : 1;
    n = n < 1 ? 1 : n > MAX_SHARDS ? MAX_SHARDS : n > count ? (count ? count : 1) : n;
    for (long k = 1; k <= n; k++) {
        pr_job_t *j = &J->job[J->njobs++];
        *j = (pr_job_t){p, k, n, 0};
        for (long idx = k - 1; idx < count; idx += n)
            j->predicted += cost[idx];
    }
    J->predicted += total;
    free(cost);
    return PR_OK;
}

int pr_jobs_plan(pr_jobs_t *J, const char *size, const char *dir, int workers, char *err, size_t errlen)
{
    memset(J, 0, sizeof *J);
    J->size = size, J->dir = dir;
    pr_grid_t *g = calloc(pr_npresets, sizeof *g);
    double *pred = calloc(pr_npresets, sizeof *pred), check = check_cost(size), total = check;
    J->job = malloc(sizeof(pr_job_t) * (pr_npresets * MAX_SHARDS + 1));
    int st = g && pred && J->job ? PR_OK : PR_ENOMEM;
    for (int i = 0; i < pr_npresets && !st; i++) {
        const pr_preset_t *p = &pr_presets[i];
        char e[256];
        if ((st = pr_preset_grid(&g[i], p, size, 0, e, sizeof e)))
            snprintf(err, errlen, "preset %s: its grid is invalid: %s", p->name, e);
        else
            total += pred[i] = pr_sweep_predict(p, &g[i], 1, 1, p->row_seconds > 0 ? p->row_seconds : 0);
    }
    /* shards of at most a quarter of a worker's share: the longest-first schedule then ends
     * within about a quarter share of an even split */
    double target = workers > 1 ? total / (4.0 * workers) : INFINITY;
    for (int i = 0; i < pr_npresets && !st; i++)
        st = plan_preset(J, &pr_presets[i], &g[i], target);
    if (!st) {
        J->job[J->njobs++] = (pr_job_t){0, 1, 1, check};
        J->predicted += check;
        qsort(J->job, J->njobs, sizeof *J->job, job_cmp);
    }
    for (int i = 0; g && i < pr_npresets; i++)
        pr_grid_clear(&g[i]);
    free(g);
    free(pred);
    if (st)
        pr_jobs_clear(J);
    return st;
}

void pr_jobs_clear(pr_jobs_t *J)
{
    free(J->job);
    J->job = 0;
    J->njobs = 0;
}

static void job_path(char *buf, size_t len, const pr_jobs_t *J, int j, const char *ext)
{
    const pr_job_t *b = &J->job[j];
    if (!b->preset)
        snprintf(buf, len, "%s/check.txt", J->dir);
    else
        snprintf(buf, len, "%s/parts/%s.%ld-of-%ld.%s", J->dir, b->preset->name, b->k, b->n, ext);
}

void pr_jobs_output(char *buf, size_t len, const pr_jobs_t *J, int j)
{
    job_path(buf, len, J, j, "csv");
}

void pr_jobs_log(char *buf, size_t len, const pr_jobs_t *J, int j)
{
    job_path(buf, len, J, j, "log");
}

int pr_jobs_argv(char **argv, char *buf, size_t len, const pr_jobs_t *J, int j)
{
    const pr_job_t *b = &J->job[j];
    char out[4096], shard[64];
    pr_jobs_output(out, sizeof out, J, j);
    snprintf(shard, sizeof shard, "%ld/%ld", b->k, b->n);
    const char *t = check_trials(J->size);
    const char *sweep[] = {"polyrope", "sweep", b->preset ? b->preset->name : "", "--size", J->size, "--shard", shard,
                           "--out", out, "--resume", "--yes", 0};
    const char *check[] = {"polyrope", "check", "all", t ? "--trials" : 0, t, 0};
    const char *const *src = b->preset ? sweep : check;
    size_t used = 0;
    int n = 0;
    for (; src[n]; n++) {
        size_t l = strlen(src[n]) + 1;
        if (used + l > len)
            return PR_ESIZE;
        argv[n] = memcpy(buf + used, src[n], l);
        used += l;
    }
    argv[n] = 0;
    return PR_OK;
}

/* CPU seconds of a child from its rusage */
static double rusage_seconds(const struct rusage *ru)
{
    return ru->ru_utime.tv_sec + ru->ru_stime.tv_sec + 1e-6 * (ru->ru_utime.tv_usec + ru->ru_stime.tv_usec);
}

static void job_name(char *buf, size_t len, const pr_job_t *b)
{
    if (b->preset)
        snprintf(buf, len, "%s %ld/%ld", b->preset->name, b->k, b->n);
    else
        snprintf(buf, len, "check all");
}

int pr_jobs_run(int *ok, double *cpu, const pr_jobs_t *J, int workers)
{
    pid_t *pid = calloc(J->njobs ? J->njobs : 1, sizeof *pid);
    if (!pid)
        return PR_ENOMEM;
    char parts[4200];
    snprintf(parts, sizeof parts, "%s/parts", J->dir);
    if (mkdir(parts, 0755) && errno != EEXIST) {
        free(pid);
        return PR_EIO;
    }
    pr_progress_t pg;
    pr_progress_start(&pg, 1);
    int next = 0, running = 0, done = 0, st = PR_OK;
    double spent = 0, left = J->predicted;
    /* after a failed start (a signal came), the running children are still waited for */
    while (next < J->njobs || running) {
        while (!st && next < J->njobs && running < workers) {
            char *argv[16], buf[8192], log[4200];
            pr_jobs_log(log, sizeof log, J, next);
            ok[next] = 0;
            st = pr_jobs_argv(argv, buf, sizeof buf, J, next);
            if (!st)
                st = pr_child_start(&pid[next], "/proc/self/exe", argv, log);
            running += !st;
            next += !st;
        }
        if (!running)
            break;
        int ws;
        struct rusage ru;
        pid_t got;
        /* the child's own CPU time comes with it, for the prediction's check */
        if (pr_child_wait(&got, &ws, &ru)) {
            st = PR_EIO;
            break;
        }
        int j = 0;
        while (j < next && pid[j] != got)
            j++;
        if (j == next)
            continue; /* not one of ours */
        running--, done++;
        ok[j] = WIFEXITED(ws) && (WEXITSTATUS(ws) == 0 || (!J->job[j].preset && WEXITSTATUS(ws) == 1));
        if (cpu)
            cpu[j] = rusage_seconds(&ru);
        spent += J->job[j].predicted, left -= J->job[j].predicted;
        char name[128], el[32], eta[32];
        double t = pr_timing_wall() - pg.t0;
        pr_sweep_duration(el, sizeof el, t);
        /* what is left as predicted, shared by the workers, scaled by the wall time the jobs so
         * far took against their prediction (once they weigh a minute): a busy machine shows */
        pr_sweep_duration(eta, sizeof eta, left / workers * (spent > 60 ? t * workers / spent : 1));
        job_name(name, sizeof name, &J->job[j]);
        pr_progress_due(&pg, 1);
        pr_progress_print(&pg, 1, "polyrope reproduce: [%d/%d] %s %s (%.1f s CPU, predicted %.1f s); %s elapsed, ETA %s",
                          done, J->njobs, name, ok[j] ? "done" : "FAILED (see its .log)", rusage_seconds(&ru),
                          J->job[j].predicted, el, eta);
    }
    free(pid);
    return st;
}

int pr_jobs_merge(const pr_jobs_t *J, const pr_preset_t *p, const char *command)
{
    char out[4200], *in[MAX_SHARDS], store[MAX_SHARDS][4200];
    int nin = 0;
    for (int j = 0; j < J->njobs && nin < MAX_SHARDS; j++)
        if (J->job[j].preset == p) {
            pr_jobs_output(store[nin], sizeof store[nin], J, j);
            in[nin] = store[nin];
            nin++;
        }
    snprintf(out, sizeof out, "%s/%s.csv", J->dir, p->name);
    return pr_sweep_merge(out, in, nin, 0, command);
}
