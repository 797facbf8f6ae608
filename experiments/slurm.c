/* slurm: reproduce's jobs as one Slurm job array (slurm.h). */
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
#include "jobs.h"
#include "pr_status.h"
#include "sweep.h"

static const char *const cmd = "reproduce";

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

/* DIR/slurm/array.sh: task T runs job T-1 of J as reproduce --jobs would (its output and log in
 * DIR/parts, the check's in DIR/check.txt); jobs.txt lists them for a reader. 0, or -1 with err. */
static int write_array(const char *sdir, const char *exe, const pr_jobs_t *J, char *err, size_t errlen)
{
    char path[PATH_MAX + 32], jobs[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/array.sh", sdir);
    snprintf(jobs, sizeof jobs, "%s/jobs.txt", sdir);
    FILE *f = fopen(path, "w"), *t = fopen(jobs, "w");
    if (!f || !t) {
        snprintf(err, errlen, "cannot write %.300s: %s", f ? jobs : path, strerror(errno));
        if (f)
            fclose(f);
        if (t)
            fclose(t);
        return -1;
    }
    fprintf(f, "#!/bin/sh\n# polyrope reproduce --%s --slurm: one task per job of jobs.txt. Each sweep resumes its\n"
               "# shard, so a requeued task or a resubmitted array keeps the rows already written.\n"
               "#SBATCH --cpus-per-task=1\n#SBATCH --requeue\nset -eu\ncase \"$SLURM_ARRAY_TASK_ID\" in\n",
            J->size);
    fprintf(t, "# task, predicted CPU s, command > log (polyrope reproduce --%s --slurm)\n", J->size);
    for (int j = 0; j < J->njobs && !err[0]; j++) {
        char *argv[16], buf[8192], log[PATH_MAX + 64];
        if (pr_jobs_argv(argv, buf, sizeof buf, J, j)) {
            snprintf(err, errlen, "job %d's command is too long: use a shorter --out", j + 1);
            break;
        }
        pr_jobs_log(log, sizeof log, J, j);
        fprintf(f, "%d) exec ", j + 1);
        sh_quote(f, exe);
        fprintf(t, "%d %.1f polyrope", j + 1, J->job[j].predicted);
        for (int a = 1; argv[a]; a++) {
            fputc(' ', f);
            sh_quote(f, argv[a]);
            fprintf(t, " %s", argv[a]);
        }
        fprintf(f, " >");
        sh_quote(f, log);
        fprintf(f, " 2>&1 ;;\n");
        fprintf(t, " > %s\n", log);
    }
    fprintf(f, "*) echo \"array.sh: no task $SLURM_ARRAY_TASK_ID (tasks 1-%d)\" >&2; exit 2 ;;\nesac\n", J->njobs);
    int bad = ferror(f) | ferror(t);
    bad |= fclose(f) | fclose(t);
    if (!err[0] && (bad || chmod(path, 0755)))
        snprintf(err, errlen, "cannot write %.300s: %s", path, strerror(errno));
    return err[0] ? -1 : 0;
}

/* the command that merges, as the user types it */
static void merge_command(FILE *f, const char *dir, const char *size, int workers)
{
    fprintf(f, "polyrope reproduce --%s --out ", size);
    sh_quote(f, dir);
    fprintf(f, " --slurm-merge --jobs %d", workers);
}

/* sbatch's argv: its options (the array throttled to `workers` tasks at once), the extra words,
 * the script; NULL on no memory */
static char **sbatch_argv(char **words, int ntasks, int workers, const char *sdir, int wait, const char *script,
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
    if (asprintf(&words[1], "--array=1-%d%%%d", ntasks, workers) < 0 || asprintf(&words[2], "--output=%s/task-%%a.log", sdir) < 0) {
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

int pr_slurm_usable(const char *extra)
{
    char sbatch[4096];
    if (!pr_child_which(sbatch, sizeof sbatch, "sbatch"))
        return pr_cli_fail(cmd, "--slurm: sbatch not found on PATH; run on a Slurm submit host (Debian: apt-get "
                                "install slurm-client) or run reproduce without --slurm");
    if (extra && has_control(extra))
        return pr_cli_fail(cmd, "--sbatch has a control character: give sbatch options separated by spaces");
    return 0;
}

int pr_slurm_submit(const char *dir, const char *size, int workers, const char *extra, int wait, int resume)
{
    char sbatch[4096], exe[PATH_MAX], absdir[PATH_MAX], sdir[PATH_MAX + 8], err[512] = "";
    int rc = pr_slurm_usable(extra);
    if (rc || !pr_child_which(sbatch, sizeof sbatch, "sbatch"))
        return rc ? rc : 2;
    /* the tasks run this very binary and write into this folder: both by absolute path */
    if (!realpath("/proc/self/exe", exe) || !realpath(dir, absdir))
        return pr_cli_fail(cmd, "--slurm: cannot resolve the absolute path of %s: %s", dir, strerror(errno));
    pr_jobs_t J;
    int st = pr_jobs_plan(&J, size, absdir, workers, err, sizeof err);
    if (st)
        return st == PR_EINVAL ? pr_cli_fail(cmd, "%s", err) : pr_cli_fail_status(cmd, st, "planning");
    /* a fresh run starts from empty parts, as reproduce --jobs does; --resume keeps them */
    for (int j = 0; !resume && j < J.njobs; j++) {
        char part[PATH_MAX + 64];
        pr_jobs_output(part, sizeof part, &J, j);
        unlink(part);
    }
    snprintf(sdir, sizeof sdir, "%s/slurm", absdir);
    char parts[PATH_MAX + 8];
    snprintf(parts, sizeof parts, "%s/parts", absdir);
    if ((mkdir(sdir, 0755) && errno != EEXIST) || (mkdir(parts, 0755) && errno != EEXIST))
        snprintf(err, sizeof err, "cannot create %.300s/slurm or parts: %s", absdir, strerror(errno));
    else
        write_array(sdir, exe, &J, err, sizeof err);
    int ntasks = J.njobs;
    pr_jobs_clear(&J);
    if (err[0])
        return pr_cli_fail(cmd, "--slurm: %s", err);
    char script[PATH_MAX + 32], out[PATH_MAX + 32], *words[3] = {0, 0, 0};
    snprintf(script, sizeof script, "%s/array.sh", sdir);
    snprintf(out, sizeof out, "%s/sbatch.txt", sdir);
    char **argv = sbatch_argv(words, ntasks, workers, sdir, wait, script, extra);
    if (!argv)
        return pr_cli_fail(cmd, "out of memory");
    fprintf(stderr, "polyrope reproduce: submitting %d tasks, at most %d at once (%s/jobs.txt), with sbatch%s\n", ntasks,
            workers, sdir, wait ? " --wait: waiting for every task to end" : "");
    int status = 0;
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
    if (wait) {
        /* a failed task leaves its shard incomplete: the merge says which, its claims are not run */
        if (!WIFEXITED(status) || WEXITSTATUS(status))
            fprintf(stderr, "polyrope reproduce: job array %ld ended with a failed task (%s/task-*.log and "
                            "parts/*.log say which); merging what is there\n", jobid, sdir);
        else
            fprintf(stderr, "polyrope reproduce: job array %ld finished; merging\n", jobid);
        return 0;
    }
    printf("submitted job array %ld: %d tasks, listed in %s/jobs.txt\nwhen it has finished, merge and report "
           "with:\n  ", jobid, ntasks, sdir);
    merge_command(stdout, dir, size, workers);
    printf("\n");
    return 0;
}
