/* slurm: reproduce's presets as one Slurm job array, and the merge of its shards (slurm.h). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "child.h"
#include "cli.h"
#include "slurm.h"
#include "sweep.h"

static const char *const cmd = "reproduce";

/* the shards of preset p: at most `shards`, never more than its configurations; 0 on a bad grid */
static long preset_shards(const pr_preset_t *p, const char *size, long shards, char *err, size_t errlen)
{
    pr_grid_t g;
    long n = 0;
    if (!pr_preset_grid(&g, p, size, 0, err, errlen)) {
        long count = pr_grid_count(&g);
        n = count < shards ? count : shards;
    }
    pr_grid_clear(&g);
    return n;
}

/* s in single quotes for sh: nothing inside is expanded; a quote is closed, escaped, reopened */
static void sh_quote(FILE *f, const char *s)
{
    fputc('\'', f);
    for (; *s; s++)
        if (*s == '\'')
            fputs("'\\''", f);
        else
            fputc(*s, f);
    fputc('\'', f);
}

static int has_control(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 1;
    return 0;
}

/* DIR/slurm/array.sh: task T runs shard K/N of its preset; jobs.txt lists them for a reader.
 * Returns the number of tasks, or 0 with err filled. */
static long write_array(const char *sdir, const char *dir, const char *exe, const char *size, long shards,
                        char *err, size_t errlen)
{
    char path[PATH_MAX + 32], jobs[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/array.sh", sdir);
    snprintf(jobs, sizeof jobs, "%s/jobs.txt", sdir);
    FILE *f = fopen(path, "w"), *j = fopen(jobs, "w");
    long task = 0;
    if (!f || !j) {
        snprintf(err, errlen, "cannot write %.300s: %s", f ? jobs : path, strerror(errno));
        if (f)
            fclose(f);
        if (j)
            fclose(j);
        return 0;
    }
    fprintf(f, "#!/bin/sh\n# polyrope reproduce --%s --slurm: one task per preset shard (jobs.txt); each resumes\n"
               "# its shard, so a requeued task or a resubmitted array keeps the rows already written.\n"
               "#SBATCH --cpus-per-task=1\n#SBATCH --requeue\nset -eu\ncase \"$SLURM_ARRAY_TASK_ID\" in\n",
            size);
    fprintf(j, "# task preset shard csv (polyrope reproduce --%s --slurm; logs in task-TASK.log)\n", size);
    for (int i = 0; i < pr_npresets && !err[0]; i++) {
        const pr_preset_t *p = &pr_presets[i];
        long n = preset_shards(p, size, shards, err, errlen);
        for (long k = 1; k <= n; k++) {
            char csv[PATH_MAX + 64];
            snprintf(csv, sizeof csv, "%s/slurm/%s-%ld.csv", dir, p->name, k);
            fprintf(f, "%ld) exec ", ++task);
            sh_quote(f, exe);
            fprintf(f, " sweep %s --size %s --shard %ld/%ld --resume --quiet --out ", p->name, size, k, n);
            sh_quote(f, csv);
            fprintf(f, " ;;\n");
            fprintf(j, "%ld %s %ld/%ld %s\n", task, p->name, k, n, csv);
        }
    }
    fprintf(f, "*) echo \"array.sh: no task $SLURM_ARRAY_TASK_ID (tasks 1-%ld)\" >&2; exit 2 ;;\nesac\n", task);
    int bad = ferror(f) | ferror(j);
    bad |= fclose(f) | fclose(j);
    if (!err[0] && (bad || chmod(path, 0755)))
        snprintf(err, errlen, "cannot write %.300s: %s", path, strerror(errno));
    return err[0] ? 0 : task;
}

/* the command that merges, as the user types it */
static void merge_command(FILE *f, const char *dir, const char *size, long shards)
{
    fprintf(f, "polyrope reproduce --%s --out ", size);
    sh_quote(f, dir);
    fprintf(f, " --slurm-merge");
    if (shards != PR_SLURM_SHARDS)
        fprintf(f, " --slurm-shards %ld", shards);
}

/* sbatch's argv: its options, the extra words, the script; NULL on no memory */
static char **sbatch_argv(char **words, long ntasks, const char *sdir, int wait, const char *script,
                          const char *extra)
{
    int nx = 0;
    char *copy = extra ? strdup(extra) : 0, *save = 0;
    char **argv = calloc(16 + (extra ? strlen(extra) : 0), sizeof *argv);
    if (!argv || (extra && !copy)) {
        free(argv);
        free(copy);
        return 0;
    }
    words[0] = copy; /* freed by the caller */
    argv[nx++] = "sbatch";
    argv[nx++] = "--parsable";
    if (asprintf(&words[1], "--array=1-%ld", ntasks) < 0 || asprintf(&words[2], "--output=%s/task-%%a.log", sdir) < 0) {
        free(argv);
        return 0;
    }
    argv[nx++] = words[1];
    argv[nx++] = words[2];
    argv[nx++] = "--job-name=polyrope-reproduce";
    if (wait)
        argv[nx++] = "--wait";
    for (char *w = copy ? strtok_r(copy, " ", &save) : 0; w; w = strtok_r(0, " ", &save))
        argv[nx++] = w;
    argv[nx++] = (char *)script;
    argv[nx] = 0;
    return argv;
}

int pr_slurm_submit(const char *dir, const char *size, long shards, const char *extra, int wait)
{
    char sbatch[4096], exe[PATH_MAX], absdir[PATH_MAX], sdir[PATH_MAX + 8], err[512] = "";
    if (!pr_child_which(sbatch, sizeof sbatch, "sbatch"))
        return pr_cli_fail(cmd, "--slurm: sbatch not found on PATH; run on a Slurm submit host (Debian: apt-get "
                                "install slurm-client) or run reproduce without --slurm");
    if (extra && has_control(extra))
        return pr_cli_fail(cmd, "--sbatch has a control character: give sbatch options separated by spaces");
    /* the tasks run this very binary and write into this folder: both by absolute path */
    if (!realpath("/proc/self/exe", exe) || !realpath(dir, absdir))
        return pr_cli_fail(cmd, "--slurm: cannot resolve the absolute path of %s: %s", dir, strerror(errno));
    snprintf(sdir, sizeof sdir, "%s/slurm", absdir);
    if (mkdir(sdir, 0755) && errno != EEXIST)
        return pr_cli_fail(cmd, "--slurm: cannot create %s: %s", sdir, strerror(errno));
    long ntasks = write_array(sdir, absdir, exe, size, shards, err, sizeof err);
    if (!ntasks)
        return pr_cli_fail(cmd, "--slurm: %s", err);
    char script[PATH_MAX + 32], out[PATH_MAX + 32], *words[3] = {0, 0, 0};
    snprintf(script, sizeof script, "%s/array.sh", sdir);
    snprintf(out, sizeof out, "%s/sbatch.txt", sdir);
    char **argv = sbatch_argv(words, ntasks, sdir, wait, script, extra);
    if (!argv)
        return pr_cli_fail(cmd, "out of memory");
    fprintf(stderr, "polyrope reproduce: submitting %ld tasks (%s/jobs.txt) with sbatch%s\n", ntasks, sdir,
            wait ? " --wait: waiting for every task to end" : "");
    int status = 0, rc = 0;
    if (pr_child_run(&status, sbatch, argv, out))
        rc = pr_cli_fail(cmd, "--slurm: cannot run %s: %s", sbatch, strerror(errno));
    for (int i = 0; i < 3; i++)
        free(words[i]);
    free(argv);
    if (rc)
        return rc;
    char line[256] = "";
    FILE *f = fopen(out, "r");
    if (f) {
        if (!fgets(line, sizeof line, f))
            line[0] = 0;
        fclose(f);
    }
    long jobid = strtol(line, 0, 10);
    if (jobid <= 0) {
        fprintf(stderr, "polyrope reproduce: --slurm: sbatch submitted nothing (its messages are in %s)\n", out);
        return 1;
    }
    if (wait && (!WIFEXITED(status) || WEXITSTATUS(status))) {
        fprintf(stderr, "polyrope reproduce: --slurm: job array %ld ended with a failed task (%s/task-*.log "
                        "say which); submit again to finish it (rows already written are kept)\n", jobid, sdir);
        return 1;
    }
    if (wait) {
        fprintf(stderr, "polyrope reproduce: job array %ld finished; merging\n", jobid);
        return 0;
    }
    printf("submitted job array %ld: %ld tasks, listed in %s/jobs.txt\nwhen it has finished, merge and report "
           "with:\n  ", jobid, ntasks, sdir);
    merge_command(stdout, dir, size, shards);
    printf("\n");
    return 0;
}

int pr_slurm_merge(const char *dir, const char *size, long shards, const char *command)
{
    char err[512] = "";
    int rc = 0;
    long task = 0; /* the array task of each shard, as write_array numbers them */
    for (int i = 0; i < pr_npresets && !rc; i++) {
        const pr_preset_t *p = &pr_presets[i];
        long n = preset_shards(p, size, shards, err, sizeof err);
        if (!n)
            return pr_cli_fail(cmd, "--slurm-merge: preset %s: %s", p->name, err);
        char **in = calloc(n, sizeof *in), out[PATH_MAX + 64];
        snprintf(out, sizeof out, "%s/%s.csv", dir, p->name);
        for (long k = 0; in && k < n && !rc; k++) {
            task++;
            if (asprintf(&in[k], "%s/slurm/%s-%ld.csv", dir, p->name, k + 1) < 0)
                in[k] = 0, rc = pr_cli_fail(cmd, "out of memory");
            else if (access(in[k], F_OK))
                rc = pr_cli_fail(cmd, "--slurm-merge: %.300s (task %ld) is missing: that task failed or has not run "
                                      "(slurm/task-%ld.log); submit again with --slurm (rows already written are "
                                      "kept), then merge", in[k], task, task);
        }
        if (!in)
            rc = pr_cli_fail(cmd, "out of memory");
        /* an incomplete shard: pr_sweep_merge's line names it and its missing rows */
        if (!rc)
            rc = pr_sweep_merge(out, in, (int)n, 0, command);
        for (long k = 0; in && k < n; k++)
            free(in[k]);
        free(in);
    }
    return rc;
}
