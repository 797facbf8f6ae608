/* polyrope reproduce --tiny end to end: CSVs with their self-describing header, figures that
 * are real PNG and PDF files, REPORT.md with one line per claim of docs/claims.md and honest
 * verdicts; polyrope plot without gnuplot fails with a clear message. Then the hostile cases:
 * plot runs only the presets' own scripts and never a CSV value as gnuplot code; a bad --out
 * or a --resume of another size is refused before any work; a preset whose CSV cannot be
 * written leaves its claims "not run" (exit 1), never passed; the check child dies with a
 * reproduce killed by SIGKILL, and gets a SIGTERM sent to it. */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <time.h>
#include "polyrope.h"
#include "pr_test.h"
#include "pr_test_cli.h"
#include "../experiments/sweep.h"
#include "sweep_util.h"

static const char *const claim_ids[] = {"C1", "C2", "C3", "C4", "C5", "C6", "C7", "C8", "C9", "C10",
                                        "C11", "C12", "C14", "G1", "G2", "G3", "G4", "G5", "F1"};

static int has_magic(const char *path, const char *magic, size_t len)
{
    size_t n = 0;
    char *b = slurp(path, &n);
    int ok = b && n > len && !memcmp(b, magic, len);
    free(b);
    return ok;
}

/* text with every `from` replaced by `to`; caller frees */
static char *replace_all(const char *text, const char *from, const char *to)
{
    size_t n = 0, lf = strlen(from), lt = strlen(to);
    for (const char *p = strstr(text, from); p; p = strstr(p + lf, from))
        n++;
    char *out = malloc(strlen(text) + n * lt + 1), *w = out;
    for (const char *p = text, *q; (q = strstr(p, from)) || *p; p = q + lf) {
        if (!q) {
            strcpy(w, p);
            return out;
        }
        memcpy(w, p, (size_t)(q - p));
        w += q - p;
        memcpy(w, to, lt);
        w += lt;
    }
    *w = 0;
    return out;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    PR_CHECK(f && fputs(text, f) >= 0 && !fclose(f), "cannot write %s", path);
}

static int exists(const char *path)
{
    struct stat sb;
    return !stat(path, &sb);
}

/* the verdict cell of claim id in REPORT.md ("" if there is no line for it) */
static void report_verdict(char *buf, size_t len, const char *report, const char *id)
{
    char needle[16];
    snprintf(needle, sizeof needle, "\n| %s | ", id);
    const char *l = report ? strstr(report, needle) : 0, *start = 0;
    buf[0] = 0;
    int bars = 0;
    for (const char *p = l ? l + 1 : ""; *p && *p != '\n'; p++)
        if (*p == '|' && p[-1] != '\\') {
            if (++bars == 3)
                start = p + 2;
            if (bars == 4 && start && p - 1 > start) {
                snprintf(buf, len, "%.*s", (int)(p - 1 - start), start);
                return;
            }
        }
}

/* plot on hostile CSVs made from a good one (scaling.csv of the run): the script comes only from
 * the table of presets, and no CSV value or file name ever runs as gnuplot code */
static void plot_hostile(const char *out)
{
    char path[512], log[] = "plot.log";
    snprintf(path, sizeof path, "%s/scaling.csv", out);
    char *good = slurp(path, 0);
    PR_CHECK(good && strstr(good, ",general,") && strstr(good, "\n# preset: scaling\n"), "%s is not as expected", path);
    if (!good)
        return;
    /* a preset that is no preset: one line naming it (it used to be printed after being freed) */
    char *t = replace_all(good, "\n# preset: scaling\n", "\n# preset: no-such-preset-xyz\n");
    write_file("unknown.csv", t);
    free(t);
    int rc = run_polyrope(log, (char *[]){"plot", "unknown.csv", 0});
    char *msg = slurp(log, 0);
    PR_CHECK(rc == 2 && msg && pr_test_lines(msg) == 1 && strstr(msg, "'no-such-preset-xyz'"),
             "plot of a CSV naming an unknown preset: exit %d, '%s'", rc, msg ? msg : "");
    free(msg);
    /* a preset line that walks to a script of the CSV's author */
    char cwd[512], line[1200];
    PR_CHECK(getcwd(cwd, sizeof cwd) != 0, "getcwd");
    write_file("evil.gp", "system('touch MARK_SCRIPT')\n");
    snprintf(line, sizeof line, "\n# preset: ../../../../../../../../../../../../../../..%s/evil\n", cwd);
    t = replace_all(good, "\n# preset: scaling\n", line);
    write_file("traversal.csv", t);
    free(t);
    setenv("POLYROPE_PLOTS", cwd, 1);
    rc = run_polyrope(log, (char *[]){"plot", "traversal.csv", 0});
    t = replace_all(good, "\n# preset: scaling\n", "\n# preset: evil\n");
    write_file("evil.csv", t);
    free(t);
    int rc2 = run_polyrope(log, (char *[]){"plot", "evil.csv", 0});
    unsetenv("POLYROPE_PLOTS");
    PR_CHECK(rc == 2 && rc2 == 2 && !exists("MARK_SCRIPT"),
             "plot ran a script named by the CSV: exit %d and %d (POLYROPE_PLOTS=%s), MARK_SCRIPT %s", rc, rc2, cwd,
             exists("MARK_SCRIPT") ? "created" : "absent");
    /* values that would be gnuplot code if spliced into a command: plotted as data */
    t = replace_all(good, ",general,", ",general';system('touch${IFS}MARK_VALUE');`touch${IFS}MARK_BQ`;x='@x,");
    write_file("values.csv", t);
    free(t);
    rc = run_polyrope(log, (char *[]){"plot", "values.csv", 0});
    PR_CHECK(rc == 0 && exists("values.png") && !exists("MARK_VALUE") && !exists("MARK_BQ"),
             "plot of hostile values: exit %d, MARK_VALUE %s, MARK_BQ %s (log plot.log)", rc,
             exists("MARK_VALUE") ? "created" : "absent", exists("MARK_BQ") ? "created" : "absent");
    /* and a file name that would be */
    const char *name = "q';system('touch${IFS}MARK_NAME');'.csv";
    write_file(name, good);
    rc = run_polyrope(log, (char *[]){"plot", (char *)name, 0});
    PR_CHECK(rc == 0 && !exists("MARK_NAME"), "plot of %s: exit %d, MARK_NAME %s", name, rc,
             exists("MARK_NAME") ? "created" : "absent");
    /* a series value with a space cannot be a word of gnuplot's lists: refused in one line */
    t = replace_all(good, ",general,", ",gen eral,");
    write_file("space.csv", t);
    free(t);
    rc = run_polyrope(log, (char *[]){"plot", "space.csv", 0});
    msg = slurp(log, 0);
    PR_CHECK(rc == 2 && msg && pr_test_lines(msg) == 1 && strstr(msg, "space"), "plot of a value with a space: exit %d, '%s'",
             rc, msg ? msg : "");
    free(msg);
    free(good);
}

/* bad --out: one line, exit 2, nothing done (the file is untouched, no REPORT.md anywhere) */
static void bad_out(void)
{
    char log[] = "out.log";
    write_file("a-file", "keep\n");
    const char *outs[] = {"a-file", "", "a-file/sub", "/proc", "/proc/polyrope-results"};
    for (int i = 0; i < 5; i++) {
        int rc = run_polyrope(log, (char *[]){"reproduce", "--tiny", "--out", (char *)outs[i], 0});
        char *msg = slurp(log, 0), *kept = slurp("a-file", 0);
        PR_CHECK(rc == 2 && msg && pr_test_lines(msg) == 1 && !strstr(msg, "REPORT") && kept && !strcmp(kept, "keep\n"),
                 "reproduce --out '%s': exit %d, '%s'", outs[i], rc, msg ? msg : "");
        free(msg), free(kept);
    }
}

/* --resume of a --tiny folder with --quick: refused in one line before any work */
static void resume_other_size(const char *out)
{
    char path[512];
    snprintf(path, sizeof path, "%s/REPORT.md", out);
    char *before = slurp(path, 0);
    int rc = run_polyrope("resume.log", (char *[]){"reproduce", "--quick", "--resume", "--out", (char *)out, 0});
    char *msg = slurp("resume.log", 0), *after = slurp(path, 0);
    PR_CHECK(rc == 2 && msg && pr_test_lines(msg) == 1 && strstr(msg, "--tiny") && before && after && !strcmp(before, after),
             "reproduce --quick --resume of a --tiny run: exit %d, '%s'", rc, msg ? msg : "");
    free(msg), free(before), free(after);
}

/* a preset whose CSV cannot be written (a folder stands in its place): its claims are "not run"
 * with the reason, never passed, the exit status is 1, and the other claims are unaffected */
static void csv_unwritable(void)
{
    mkdir("blocked", 0755);
    mkdir("blocked/degree.csv", 0755);
    int rc = run_polyrope("blocked.log", (char *[]){"reproduce", "--tiny", "--out", "blocked", 0});
    char *report = slurp("blocked/REPORT.md", 0), v[64];
    PR_CHECK(rc == 1 && report, "reproduce with degree.csv unwritable: exit %d (log blocked.log)", rc);
    for (int i = 0; report && i < 2; i++) {
        report_verdict(v, sizeof v, report, i ? "C8" : "C7");
        PR_CHECK(!strcmp(v, "not run"), "%s with degree.csv unwritable: '%s'", i ? "C8" : "C7", v);
    }
    report_verdict(v, sizeof v, report, "C1");
    PR_CHECK(!strcmp(v, "passed"), "C1 with degree.csv unwritable: '%s'", v);
    PR_CHECK(report && strstr(report, "*passed* only when every experiment and check it rests on ran"),
             "REPORT.md does not say what passed means");
    free(report);
}

/* the pids whose parent is this process, killed (survivors of a failed test) */
static void kill_children(void)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    while (d && (e = readdir(d))) {
        char path[300], buf[512];
        snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
        FILE *f = fopen(path, "r");
        size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
        if (f)
            fclose(f);
        buf[n] = 0;
        char *paren = strrchr(buf, ')');
        int ppid = 0;
        if (paren && sscanf(paren + 1, " %*c %d", &ppid) == 1 && ppid == getpid())
            kill(atoi(e->d_name), SIGKILL);
    }
    if (d)
        closedir(d);
}

/* reaps every child within secs: how many ended by SIGKILL, by SIGTERM, otherwise; 0 if some
 * are still running then (they are killed) */
static int reap_all(int *by_kill, int *by_term, int *other, double secs)
{
    *by_kill = *by_term = *other = 0;
    for (double waited = 0; waited < secs; waited += 0.01) {
        int st;
        pid_t pid;
        while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
            *by_kill += WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL;
            *by_term += WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM;
            *other += !WIFSIGNALED(st) || (WTERMSIG(st) != SIGKILL && WTERMSIG(st) != SIGTERM);
        }
        if (pid < 0 && errno == ECHILD)
            return 1;
        nanosleep(&(struct timespec){0, 10000000}, 0);
    }
    kill_children();
    while (waitpid(-1, 0, WNOHANG) > 0)
        ;
    return 0;
}

/* starts reproduce into dir and returns its pid once its check child has opened check.txt */
static pid_t start_until_check(const char *dir, int resume)
{
    char check[256];
    snprintf(check, sizeof check, "%s/check.txt", dir);
    unlink(check);
    pid_t pid = spawn_polyrope("kill.log", resume ? (char *[]){"reproduce", "--tiny", "--resume", "--out", (char *)dir, 0}
                                                  : (char *[]){"reproduce", "--tiny", "--out", (char *)dir, 0});
    for (int i = 0; pid > 0 && i < 300000 && !exists(check); i++) {
        if (waitpid(pid, 0, WNOHANG) == pid) {
            PR_CHECK(0, "reproduce ended before its check phase (log kill.log)");
            return -1;
        }
        nanosleep(&(struct timespec){0, 1000000}, 0);
    }
    PR_CHECK(exists(check), "no check phase within 300 s (log kill.log)");
    return exists(check) ? pid : -1;
}

/* Children die with reproduce. This process adopts orphans (a subreaper), so a check child that
 * outlived reproduce ends up here: after SIGKILL it must have been killed (PR_SET_PDEATHSIG),
 * not have run on; after SIGTERM reproduce passes it on and ends by it, leaving no orphan. */
static void children_die(void)
{
    PR_CHECK(!prctl(PR_SET_CHILD_SUBREAPER, 1), "cannot become a subreaper");
    int k, t, o, st = 0;
    pid_t pid = start_until_check("killed", 0);
    if (pid > 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &st, 0);
        int done = reap_all(&k, &t, &o, 60);
        PR_CHECK(done && k == 1 && o == 0,
                 "after kill -9 of reproduce in its check phase: %d children killed, %d ended otherwise%s", k, o,
                 done ? "" : ", some still running after 60 s");
    }
    pid = start_until_check("killed", 1);
    if (pid > 0) {
        kill(pid, SIGTERM);
        waitpid(pid, &st, 0);
        int done = reap_all(&k, &t, &o, 60);
        PR_CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM && done && k + t + o == 0,
                 "after SIGTERM to reproduce in its check phase: it ended with status 0x%x; %d orphans%s", st, k + t + o,
                 done ? "" : ", some still running after 60 s");
    }
}

/* the data rows of dir/PRESET.csv with the timing columns (names ending in time_s) cut out,
 * one string; caller frees */
static char *rows_without_time(const char *dir, const char *preset)
{
    char path[512], err[256];
    snprintf(path, sizeof path, "%s/%s.csv", dir, preset);
    pr_csv_t t;
    if (pr_csv_read(&t, path, 0, err, sizeof err))
        return 0;
    char *buf = 0;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    for (long r = 0; f && r < t.nrows; r++) {
        for (int c = 0; c < t.ncols; c++) {
            size_t l = strlen(t.cols[c]);
            if (l < 6 || strcmp(t.cols[c] + l - 6, "time_s"))
                fprintf(f, "%s,", t.rows[r][c]);
        }
        fputc('\n', f);
    }
    if (f)
        fclose(f);
    pr_csv_clear(&t);
    return buf;
}

/* --jobs 2 (shards and the check as child processes, merged) gives the serial run's rows, time
 * columns aside, and the same verdicts */
static void jobs_same_rows(const char *serial, const char *dir)
{
    char out[512], log[512], path[600];
    snprintf(out, sizeof out, "%s/jobs2", dir);
    snprintf(log, sizeof log, "%s/jobs2.log", dir);
    int rc = run_polyrope(log, (char *[]){"reproduce", "--tiny", "--jobs", "2", "--out", out, 0});
    PR_CHECK(rc == 0 || rc == 1, "reproduce --tiny --jobs 2 exited %d (log %s)", rc, log);
    for (int p = 0; p < pr_npresets; p++) {
        char *a = rows_without_time(serial, pr_presets[p].name), *b = rows_without_time(out, pr_presets[p].name);
        PR_CHECK(a && b && *a && !strcmp(a, b), "%s: --jobs 2 rows differ from the serial run's:\n%s\n--- serial:\n%s",
                 pr_presets[p].name, b ? b : "(none)", a ? a : "(none)");
        free(a), free(b);
    }
    char *ra, *rb;
    snprintf(path, sizeof path, "%s/REPORT.md", serial);
    ra = slurp(path, 0);
    snprintf(path, sizeof path, "%s/REPORT.md", out);
    rb = slurp(path, 0);
    for (size_t i = 0; ra && rb && i < sizeof claim_ids / sizeof claim_ids[0]; i++) {
        char va[64], vb[64];
        report_verdict(va, sizeof va, ra, claim_ids[i]);
        report_verdict(vb, sizeof vb, rb, claim_ids[i]);
        PR_CHECK(*va && !strcmp(va, vb), "%s: serial '%s', --jobs 2 '%s'", claim_ids[i], va, vb);
    }
    PR_CHECK(rb && strstr(rb, "## Time") && strstr(rb, "| check all |"), "REPORT.md of --jobs 2 has no time table");
    free(ra), free(rb);
}

/* SIGTERM to reproduce --jobs 2 while its jobs run: passed on to them, no new one starts, and
 * reproduce ends by the signal once they have ended (it used to go on to merge and report) */
static void jobs_sigterm(void)
{
    PR_CHECK(!prctl(PR_SET_CHILD_SUBREAPER, 1), "cannot become a subreaper");
    pid_t pid = spawn_polyrope("jobsterm.log", (char *[]){"reproduce", "--tiny", "--jobs", "2", "--out", "jobsterm", 0});
    for (int i = 0; pid > 0 && i < 300000 && !exists("jobsterm/parts"); i++)
        nanosleep(&(struct timespec){0, 1000000}, 0);
    int st = 0, k, t, o;
    kill(pid, SIGTERM);
    waitpid(pid, &st, 0);
    int done = reap_all(&k, &t, &o, 60);
    PR_CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM && done && k + t + o == 0 && !exists("jobsterm/REPORT.md"),
             "SIGTERM to reproduce --jobs 2: it ended with status 0x%x; %d orphans%s; REPORT.md %s (log jobsterm.log)", st,
             k + t + o, done ? "" : ", some still running after 60 s", exists("jobsterm/REPORT.md") ? "written" : "absent");
}

int main(void)
{
    pr_test_seed("test_reproduce", 0); /* deterministic: the presets carry their seeds */
    char dir[] = "/tmp/pr_repro_XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    char out[256], log[256], path[512];
    snprintf(out, sizeof out, "%s/results", dir);
    snprintf(log, sizeof log, "%s/log.txt", dir);
    int rc = run_polyrope(log, (char *[]){"reproduce", "--tiny", "--out", out, 0}), repro_rc = rc;
    /* 1 says a claim FAILED somewhere in the library (test_checks owns that); the job itself
     * must still finish and write everything */
    PR_CHECK(rc == 0 || rc == 1, "reproduce --tiny exited %d (log %s)", rc, log);
    if (rc == 1)
        printf("note: reproduce --tiny reports a claim that did not pass (tiny grids leave some inconclusive); see %s/results/REPORT.md\n", dir);

    snprintf(path, sizeof path, "%s/REPORT.md", out);
    char *report = slurp(path, 0);
    PR_CHECK(report != 0, "no %s", path);
    for (size_t i = 0; report && i < sizeof claim_ids / sizeof claim_ids[0]; i++) {
        char needle[16];
        snprintf(needle, sizeof needle, "\n| %s | ", claim_ids[i]);
        char *line = strstr(report, needle);
        PR_CHECK(line != 0, "REPORT.md has no line for %s", claim_ids[i]);
        if (!line)
            continue;
        char *end = strchr(line + 1, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        char copy[1024];
        snprintf(copy, sizeof copy, "%.*s", (int)(len < 1000 ? len : 1000), line + 1);
        int verdicts = !!strstr(copy, "| passed |") + !!strstr(copy, "| FAILED |") + !!strstr(copy, "| inconclusive |") +
                       !!strstr(copy, "| not run |");
        PR_CHECK(verdicts == 1, "claim line without exactly one verdict: %s", copy);
    }
    PR_CHECK(report && strstr(report, "git commit:") && strstr(report, "machine:") && strstr(report, "MPFR"),
             "REPORT.md lacks the machine and library versions");
    free(report);

    /* every preset left a CSV with its header, a PNG and a PDF */
    for (int p = 0; p < pr_npresets; p++) {
        snprintf(path, sizeof path, "%s/%s.csv", out, pr_presets[p].name);
        char *csv = slurp(path, 0);
        PR_CHECK(csv && strstr(csv, "# git commit:") && strstr(csv, "# build type:") && strstr(csv, "# grid:") &&
                     strstr(csv, "# command: polyrope reproduce") && strstr(csv, "\nidx,key,"),
                 "%s: header incomplete", path);
        free(csv);
        snprintf(path, sizeof path, "%s/%s.png", out, pr_presets[p].name);
        PR_CHECK(has_magic(path, "\x89PNG\r\n\x1a\n", 8), "%s is not a PNG", path);
        snprintf(path, sizeof path, "%s/%s.pdf", out, pr_presets[p].name);
        PR_CHECK(has_magic(path, "%PDF", 4), "%s is not a PDF", path);
    }

    /* polyrope plot with no gnuplot on PATH says so */
    snprintf(path, sizeof path, "%s/factorise.csv", out);
    const char *old = getenv("PATH");
    char *saved = old ? strdup(old) : 0;
    setenv("PATH", dir, 1);
    rc = run_polyrope(log, (char *[]){"plot", path, 0});
    if (saved)
        setenv("PATH", saved, 1);
    free(saved);
    char *msg = slurp(log, 0);
    PR_CHECK(rc == 2 && msg && strstr(msg, "gnuplot not found"), "plot without gnuplot: exit %d, '%s'", rc, msg ? msg : "");
    free(msg);
    /* and plot refuses a file that is not a sweep CSV */
    snprintf(path, sizeof path, "%s/REPORT.md", out);
    PR_CHECK(run_polyrope(log, (char *[]){"plot", path, 0}) == 2, "plot of a non-CSV");

    /* a normal run has evidence for every claim */
    snprintf(path, sizeof path, "%s/REPORT.md", out);
    report = slurp(path, 0);
    PR_CHECK(report && !strstr(report, "| not run |"), "a claim of the plain --tiny run was not run: see %s", path);
    free(report);

    jobs_same_rows(out, dir);

    /* the hostile cases run in dir */
    PR_CHECK(!chdir(dir), "cannot enter %s", dir);
    plot_hostile(out);
    bad_out();
    resume_other_size(out);
    csv_unwritable();
    children_die();
    jobs_sigterm();

    char cmd[300];
    snprintf(cmd, sizeof cmd, "cd / && rm -rf '%s'", dir);
    if (!pr_test_failed_count && repro_rc == 0 && system(cmd))
        return 1;
    return pr_test_finish("test_reproduce");
}
