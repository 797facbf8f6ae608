/* polyrope reproduce: every preset into CSVs and figures, the proofs-check claims, and
 * REPORT.md with one line per claim of docs/claims.md. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "pr_status.h"
#include "pr_timing.h"
#include "pr_xversion.h"
#include "child.h"
#include "cli.h"
#include "commands.h"
#include "jobs.h"
#include "slurm.h"
#include "sweep.h"

/* Every claim of docs/claims.md, and where its evidence comes from: a preset, or
 * `polyrope check ID` for the claims that are exact identities rather than measurements. */
static const struct {
    const char *id, *statement, *source;
} claims[] = {
    {"C1", "M is a sum of s rescaled Toeplitz matrices", "check"},
    {"C2", "P(M) = Σ_e α_e diag(u_e) T_e diag(v_e)", "check"},
    {"C3", "term count C(s+g, g); degree-k part C(s+k-1, k)", "check"},
    {"C4", "FFT Toeplitz product = dense product", "check"},
    {"C5", "forward cost Θ(C(s+g,g)(d+1) n log n); crossover n* against dense", "scaling"},
    {"C6", "max|M| ≤ R = σB² max_ℓ Σ|w_ab(ℓ)|", "factorise"},
    {"C7", "certified least degree (of the construction) for e^x tracks the Aggarwal-Alman bound", "degree"},
    {"C8", "certified least degree (of the construction) for e^-x on [0, L] tracks Θ(max{√(L log 1/δ), ...})", "degree"},
    {"C9", "‖Õ - O‖∞ ≤ 2ε_A/(1-ε_A)‖V‖∞", "error"},
    {"C10", "B = o(√log n) ⇒ g = o(log n), terms n^o(1); blow-up past B ≈ √log n", "threshold"},
    {"C11", "RoPE factorises: Q_i R_{j-i} K_jᵀ = (R_iQ_i)·(R_jK_j)", "factorise"},
    {"C12", "low-rank features C(d+g, g) against Toeplitz terms C(2d+g, g)", "rope-vs-general"},
    {"C14", "W_ℓ = I reduces to plain attention", "check"},
    {"G1", "closed-form backward = derivative", "check"},
    {"G2", "rows of dM sum to 0; dL/dX = A1ᵀ dQ", "check"},
    {"G3", "fast backward = dense backward on the same P", "check"},
    {"G4", "gradient error ≤ the propagated bound for ε", "error"},
    {"G5", "backward cost near-linear in n; crossover n*", "scaling"},
    {"F1", "double's floor grows like e^{2R}·u", "threshold"},
};
enum { NCLAIMS = sizeof claims / sizeof claims[0] };

/* what each verdict means, stated once in REPORT.md */
#define REPORT_MEANING                                                                                              \
    "A claim is *passed* only when every experiment and check it rests on ran to the end (every configuration "      \
    "of its grid, every row ok) and passed. *FAILED*: one of them failed. *not run*: one of them did not run or "     \
    "left no evidence (the evidence column says why). *inconclusive*: all ran, but the data cannot decide (too few "  \
    "sizes, too narrow a range, an undefined ratio). A measurement marked *info* (timing checks, the a-priori "    \
    "floor of F1) is shown but decides nothing. The exit status is 0 only when every claim passed (or is info); "  \
    "1 if any claim FAILED, was not run or is inconclusive. "                                                     \
    "--tiny's grids are too small to decide the timing and degree claims: a tiny run is a smoke test, not evidence."

typedef struct {
    pr_verdict_t verdict;
    char detail[640];
    char figure[128];
} outcome_t;

/* what a preset (or, last, the check) was predicted to take and took: CPU seconds of its
 * processes, and the wall time of its part of the run (serial runs only) */
typedef struct {
    double predicted, cpu, wall;
} cost_t;

/* CPU seconds of this process and of its reaped children so far */
static double cpu_now(void)
{
    struct rusage a, b;
    getrusage(RUSAGE_SELF, &a);
    getrusage(RUSAGE_CHILDREN, &b);
    return a.ru_utime.tv_sec + a.ru_stime.tv_sec + b.ru_utime.tv_sec + b.ru_stime.tv_sec +
           1e-6 * (a.ru_utime.tv_usec + a.ru_stime.tv_usec + b.ru_utime.tv_usec + b.ru_stime.tv_usec);
}


static void stderr_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void stderr_note(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "polyrope reproduce: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static int claim_index(const char *id)
{
    for (int i = 0; i < NCLAIMS; i++)
        if (!strcmp(claims[i].id, id))
            return i;
    return -1;
}

/* plots dir/<name>.csv and reads the verdicts of its claims into oc; why (when not empty) says
 * why the preset has no evidence: its claims are then "not run", with the reason */
static void finish_preset(outcome_t *oc, const pr_preset_t *p, const char *dir, const char *why_in)
{
    char csv[4096], err[256], why[320];
    snprintf(csv, sizeof csv, "%s/%s.csv", dir, p->name);
    snprintf(why, sizeof why, "%s", why_in);
    pr_claim_result_t res[8];
    int nres = 0, plotted = 0;
    if (!why[0]) {
        plotted = !pr_plot_csv(csv);
        if (!plotted)
            stderr_note("%s: no figure (see above); verdicts still come from the CSV", p->name);
        pr_csv_t t;
        if (pr_csv_read(&t, csv, 0, err, sizeof err)) {
            snprintf(why, sizeof why, "its CSV could not be read back: %s", err);
        } else {
            nres = p->verdict(res, &t);
            pr_csv_clear(&t);
        }
    }
    for (const char *c = p->claims; *c;) {
        char id[8];
        size_t n = strcspn(c, " ");
        snprintf(id, sizeof id, "%.*s", (int)n, c);
        c += n + (c[n] == ' ');
        int k = claim_index(id);
        if (k < 0)
            continue;
        if (plotted)
            snprintf(oc[k].figure, sizeof oc[k].figure, "%s.png", p->name);
        oc[k].verdict = PR_VERDICT_NOT_RUN;
        snprintf(oc[k].detail, sizeof oc[k].detail, "%s: %s", p->name, why[0] ? why : "no verdict for this claim");
        for (int r = 0; r < nres; r++)
            if (!why[0] && !strcmp(res[r].claim, id)) {
                oc[k].verdict = res[r].verdict;
                snprintf(oc[k].detail, sizeof oc[k].detail, "%s (%s.csv)", res[r].detail, p->name);
            }
    }
}

/* runs one preset into dir/<name>.csv in this process, then finish_preset */
static void run_preset(outcome_t *oc, cost_t *cost, const pr_preset_t *p, const char *dir, const char *size, int resume,
                       const char *cmdline)
{
    char csv[4096], err[256], why[320] = "";
    snprintf(csv, sizeof csv, "%s/%s.csv", dir, p->name);
    double t0 = pr_timing_wall(), c0 = cpu_now();
    pr_grid_t g;
    int st = pr_preset_grid(&g, p, size, 0, err, sizeof err);
    if (st)
        snprintf(why, sizeof why, "its grid is invalid: %s", err);
    else if (!resume && unlink(csv) && errno != ENOENT)
        snprintf(why, sizeof why, "the old %s.csv cannot be removed: %s", p->name, strerror(errno));
    if (!why[0]) {
        pr_sweep_opts_t so = {.out = csv, .resume = 1, .shard_k = 1, .shard_n = 1, .progress = -1, .command = cmdline};
        if (pr_sweep_run(p, &g, &so))
            snprintf(why, sizeof why, "the sweep did not run to the end (see the message above)");
    }
    pr_grid_clear(&g);
    cost->cpu = cpu_now() - c0, cost->wall = pr_timing_wall() - t0;
    finish_preset(oc, p, dir, why);
}

static int read_checks(outcome_t *chk, const char *out, char *why, size_t whylen);

/* `polyrope check` on every claim as one child process (it dies with this one), its table kept
 * in dir/check.txt; each claim's row gives its verdict (pass, FAIL, unknown,
 * info). Returns 0, or -1 when the check could not run to the end (why says how). */
static int run_checks(outcome_t *chk, const char *dir, const char *trials, char *why, size_t whylen)
{
    char out[4096];
    snprintf(out, sizeof out, "%s/check.txt", dir);
    /* this very binary, even if a rebuild has replaced the file since it started */
    char *argv_t[] = {"polyrope", "check", "all", "--trials", (char *)trials, 0};
    char *argv_full[] = {"polyrope", "check", "all", 0};
    int status = 0;
    if (pr_child_run(&status, "/proc/self/exe", trials ? argv_t : argv_full, out)) {
        snprintf(why, whylen, "it could not be started: %s", strerror(errno));
        return -1;
    }
    if (WIFSIGNALED(status)) {
        snprintf(why, whylen, "it was killed by signal %d", WTERMSIG(status));
        return -1;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) > 1) {
        snprintf(why, whylen, "it exited with status %d", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        return -1;
    }
    return read_checks(chk, out, why, whylen);
}

/* the verdict of each claim's row of check.txt (pass, FAIL, unknown, info) */
static int read_checks(outcome_t *chk, const char *out, char *why, size_t whylen)
{
    FILE *f = fopen(out, "r");
    if (!f) {
        snprintf(why, whylen, "check.txt cannot be read: %s", strerror(errno));
        return -1;
    }
    char line[1024];
    while (fgets(line, sizeof line, f)) {
        char id[16], trials_s[32], worst[32], bound[32], verdict[32];
        if (sscanf(line, "%15s %31s %31s %31s %31s", id, trials_s, worst, bound, verdict) != 5)
            continue;
        int k = claim_index(id);
        if (k < 0)
            continue;
        chk[k].verdict = !strcmp(verdict, "pass") ? PR_VERDICT_PASSED
                       : !strcmp(verdict, "FAIL") ? PR_VERDICT_FAILED
                       : !strcmp(verdict, "info") ? PR_VERDICT_INFO
                                                  : PR_VERDICT_INCONCLUSIVE;
        snprintf(chk[k].detail, sizeof chk[k].detail, "polyrope check %s: %s, worst %s against bound %s (check.txt)", id,
                 verdict, worst, bound);
    }
    fclose(f);
    return 0;
}

/* One verdict from the experiment's and the check's. "info" is shown but decides nothing;
 * otherwise the claim is passed only when every piece that decides it passed: a failure fails
 * it, then a piece that did not run or was inconclusive says so. */
static void combine(outcome_t *oc, const outcome_t *chk, int has_experiment)
{
    static const pr_verdict_t order[] = {PR_VERDICT_FAILED, PR_VERDICT_NOT_RUN, PR_VERDICT_INCONCLUSIVE,
                                         PR_VERDICT_PASSED};
    pr_verdict_t a = has_experiment ? oc->verdict : PR_VERDICT_INFO, b = chk->verdict;
    if (!has_experiment)
        snprintf(oc->detail, sizeof oc->detail, "%s", chk->detail);
    else {
        size_t len = strlen(oc->detail);
        snprintf(oc->detail + len, sizeof oc->detail - len, "; %s", chk->detail);
    }
    /* nothing that decides it: an inconclusive claim, however much was measured */
    oc->verdict = PR_VERDICT_INCONCLUSIVE;
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++)
        if (a == order[i] || b == order[i]) {
            oc->verdict = order[i];
            break;
        }
}

/* a table cell: '|' would end the cell, so it is escaped */
static void cell(FILE *f, const char *s)
{
    fputs("| ", f);
    for (; *s; s++) {
        if (*s == '|')
            fputc('\\', f);
        fputc(*s, f);
    }
    fputc(' ', f);
}

static int write_report(const char *dir, const outcome_t *oc, const cost_t *cost, const char *size, const char *cmdline,
                        double secs)
{
    char path[4096], tmp[4200], machine[512], when[64];
    snprintf(path, sizeof path, "%s/REPORT.md", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return pr_cli_fail("reproduce", "cannot write %s: %s", tmp, strerror(errno));
    time_t now = time(0);
    strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S UTC", gmtime(&now));
    pr_machine_string(machine, sizeof machine);
    int counts[PR_VERDICT_INFO + 1] = {0};
    for (int i = 0; i < NCLAIMS; i++)
        counts[oc[i].verdict]++;
    fprintf(f, "# polyrope reproduce: report\n\n");
    fprintf(f, "`%s` (%s grids), finished %s in %.0f s.\n\n", cmdline, size, when, secs);
    fprintf(f, "%d claims: %d passed, %d failed, %d not run, %d inconclusive.\n\n", NCLAIMS,
            counts[PR_VERDICT_PASSED], counts[PR_VERDICT_FAILED], counts[PR_VERDICT_NOT_RUN],
            counts[PR_VERDICT_INCONCLUSIVE]);
    fprintf(f, "%s\n\n", REPORT_MEANING);
    fprintf(f, "| claim | statement | verdict | evidence | figure |\n|---|---|---|---|---|\n");
    for (int i = 0; i < NCLAIMS; i++) {
        char fig[300] = "";
        if (oc[i].figure[0])
            snprintf(fig, sizeof fig, "[%s](%s)", oc[i].figure, oc[i].figure);
        const char *cells[] = {claims[i].id, claims[i].statement, pr_verdict_name(oc[i].verdict), oc[i].detail, fig};
        for (int c = 0; c < 5; c++)
            cell(f, cells[c]);
        fputs("|\n", f);
    }
    /* each figure inline once, under the claims it shows */
    for (int i = 0, first = 1; i < NCLAIMS; i++) {
        int seen = !oc[i].figure[0];
        for (int j = 0; j < i && !seen; j++)
            seen = !strcmp(oc[j].figure, oc[i].figure);
        if (seen)
            continue;
        fprintf(f, "%s\n![%s: claims", first ? "\n## Figures\n" : "", oc[i].figure);
        for (int j = i; j < NCLAIMS; j++)
            if (!strcmp(oc[j].figure, oc[i].figure))
                fprintf(f, " %s", claims[j].id);
        fprintf(f, "](%s)\n", oc[i].figure);
        first = 0;
    }
    fprintf(f, "\n## Time\n\nPredicted by the cost models of experiments/presets.c (CPU seconds on the project's 2-core "
               "machine) against the CPU seconds measured here (wall seconds in a serial run).\n\n"
               "| part | predicted CPU s | CPU s | wall s |\n|---|---|---|---|\n");
    for (int i = 0; i <= pr_npresets; i++) {
        char wall[32] = "-";
        if (cost[i].wall > 0)
            snprintf(wall, sizeof wall, "%.1f", cost[i].wall);
        fprintf(f, "| %s | %.1f | %.1f | %s |\n", i < pr_npresets ? pr_presets[i].name : "check all", cost[i].predicted,
                cost[i].cpu, wall);
    }
    fprintf(f, "\n## Machine and libraries\n\n- machine: %s\n", machine);
    pr_xversion_fprint(f, "- ");
    fprintf(f, "\n## Files\n\nEach `PRESET.csv` is self-describing (its `#` lines give the grid, seed column, "
               "version and command); `PRESET.png` and `PRESET.pdf` are drawn from it by `polyrope plot`.\n");
    if (fclose(f) || rename(tmp, path))
        return pr_cli_fail("reproduce", "cannot write %s: %s", path, strerror(errno));
    printf("%s\n", path);
    /* exit 0 promises that every claim passed: an undecided claim is not a passed one */
    return counts[PR_VERDICT_FAILED] || counts[PR_VERDICT_NOT_RUN] || counts[PR_VERDICT_INCONCLUSIVE]
               ? 1
               : 0;
}

/* --out must be a folder this process can create files in; refused before any work */
static int check_out(const char *out)
{
    struct stat sb;
    if (!*out)
        return pr_cli_fail("reproduce", "--out is empty: give a folder for the results");
    if (strlen(out) > 3000)
        return pr_cli_fail("reproduce", "--out is longer than 3000 bytes: give a shorter folder path");
    if (!stat(out, &sb) && !S_ISDIR(sb.st_mode))
        return pr_cli_fail("reproduce", "--out %s exists and is not a folder: give a folder (created if missing)", out);
    if (mkdir(out, 0755) && errno != EEXIST)
        return pr_cli_fail("reproduce", "--out %s: cannot create the folder: %s", out, strerror(errno));
    char probe[3100];
    snprintf(probe, sizeof probe, "%s/.polyrope-probe-XXXXXX", out);
    int fd = mkstemp(probe);
    if (fd < 0)
        return pr_cli_fail("reproduce", "--out %s: cannot write into the folder: %s", out, strerror(errno));
    close(fd);
    unlink(probe);
    return 0;
}

/* --resume continues the CSVs of an interrupted run of the same size: a CSV of another grid
 * is refused before any work (else its claims would have no evidence) */
static int check_resume(const char *out, const char *size)
{
    static const char *const sizes[] = {"tiny", "quick", "full"};
    for (int i = 0; i < pr_npresets; i++) {
        const pr_preset_t *p = &pr_presets[i];
        char csv[4096], err[512];
        snprintf(csv, sizeof csv, "%s/%s.csv", out, p->name);
        pr_csv_t t;
        if (access(csv, F_OK) || pr_csv_read(&t, csv, 0, err, sizeof err))
            continue; /* missing: run afresh; unreadable: the sweep says why */
        const char *theirs = pr_csv_comment(&t, "grid"), *which = 0;
        int same = 0;
        for (int k = 0; k < 3 && theirs; k++) {
            pr_grid_t g;
            char *text = pr_preset_grid(&g, p, sizes[k], 0, err, sizeof err) ? 0 : pr_grid_text(&g);
            pr_grid_clear(&g);
            if (text && !strcmp(text, theirs)) {
                which = sizes[k];
                same = !strcmp(sizes[k], size);
            }
            free(text);
        }
        pr_csv_clear(&t);
        if (!same)
            return pr_cli_fail("reproduce",
                               "--resume: %s is not from a --%s run (%s%s); resume with that size or use another --out",
                               csv, size, which ? "it is from --" : "its grid is another", which ? which : "");
    }
    return 0;
}

/* the wall time of the jobs on `workers` processes, longest first (as pr_jobs_run starts them),
 * each on the worker free first */
static double makespan(const pr_jobs_t *J, int workers)
{
    double free_at[64] = {0}, end = 0;
    workers = workers < 1 ? 1 : workers > 64 ? 64 : workers;
    for (int j = 0; j < J->njobs; j++) {
        int w = 0;
        for (int i = 1; i < workers; i++)
            if (free_at[i] < free_at[w])
                w = i;
        free_at[w] += J->job[j].predicted;
        end = free_at[w] > end ? free_at[w] : end;
    }
    return end;
}

/* the predicted duration, printed; past max_minutes refused (exit 2) unless yes */
static int predicted_ok(cost_t *cost, const pr_jobs_t *J, int workers, double max_minutes, int yes, int resume)
{
    for (int j = 0; j < J->njobs; j++) {
        const pr_preset_t *p = J->job[j].preset;
        cost[p ? (int)(p - pr_presets) : pr_npresets].predicted += J->job[j].predicted;
    }
    double wall = makespan(J, workers);
    char t[32], c[32];
    pr_sweep_duration(t, sizeof t, wall);
    pr_sweep_duration(c, sizeof c, J->predicted);
    if (wall > 60 * max_minutes && !yes)
        return pr_cli_fail("reproduce", "--%s: predicted %s on %d process%s (%s of CPU), past --max-minutes %g: add --yes "
                           "to run it anyway, or give --jobs N to spread it over N cores",
                           J->size, t, workers, workers > 1 ? "es" : "", c, max_minutes);
    stderr_note("--%s: %d presets and the check, predicted %s%s on %d process%s (%s of CPU; cost models: "
                "experiments/presets.c)", J->size, pr_npresets, resume ? "at most " : "", t, workers,
                workers > 1 ? "es" : "", c);
    return 0;
}

/* The jobs' results into verdicts, however the jobs ran (child processes here, or elsewhere
 * such as a Slurm array): ok[j] says job j ran to the end, cpu[j] its CPU seconds (either may
 * be NULL: nothing known), why (when not empty) why none has evidence. Each preset's parts are
 * merged into DIR/PRESET.csv and judged as in a serial run; the check's table is read. */
static void collect_jobs(outcome_t *oc, outcome_t *chk, cost_t *cost, const pr_jobs_t *J, const int *ok,
                         const double *cpu, const char *why, const char *cmdline)
{
    for (int j = 0; cpu && j < J->njobs; j++) {
        const pr_preset_t *p = J->job[j].preset;
        cost[p ? (int)(p - pr_presets) : pr_npresets].cpu += cpu[j];
    }
    for (int i = 0; i < pr_npresets; i++) {
        const pr_preset_t *p = &pr_presets[i];
        char pwhy[320];
        snprintf(pwhy, sizeof pwhy, "%s", why);
        for (int j = 0; !pwhy[0] && j < J->njobs; j++)
            if (J->job[j].preset == p && !(ok && ok[j]))
                snprintf(pwhy, sizeof pwhy, "shard %ld/%ld did not run to the end (see parts/%s.%ld-of-%ld.log)",
                         J->job[j].k, J->job[j].n, p->name, J->job[j].k, J->job[j].n);
        if (!pwhy[0] && pr_jobs_merge(J, p, cmdline))
            snprintf(pwhy, sizeof pwhy, "its shards could not be merged (see the message above)");
        finish_preset(oc, p, J->dir, pwhy);
    }
    char out[4200], cwhy[256] = "";
    snprintf(out, sizeof out, "%s/check.txt", J->dir);
    for (int j = 0; j < J->njobs; j++)
        if (!J->job[j].preset && !(ok && ok[j]))
            snprintf(cwhy, sizeof cwhy, "it did not run to the end");
    if (cwhy[0] || read_checks(chk, out, cwhy, sizeof cwhy)) {
        stderr_note("polyrope check did not run to the end: %s (see %s)", cwhy, out);
        for (int k = 0; k < NCLAIMS; k++)
            snprintf(chk[k].detail, sizeof chk[k].detail, "polyrope check %s: not run (%s)", claims[k].id, cwhy);
    }
}

/* every preset's shards and the check as child processes, `workers` at a time, then
 * collect_jobs */
static void run_jobs(outcome_t *oc, outcome_t *chk, cost_t *cost, const pr_jobs_t *J, int workers, int resume,
                     const char *cmdline, int ran_elsewhere)
{
    int *ok = calloc(J->njobs, sizeof *ok);
    double *cpu = calloc(J->njobs, sizeof *cpu);
    char why[320] = "";
    /* a fresh run starts from empty parts: --resume keeps them (each job resumes its own) */
    for (int j = 0; !resume && !ran_elsewhere && j < J->njobs; j++) {
        char part[4200];
        pr_jobs_output(part, sizeof part, J, j);
        unlink(part);
    }
    if (!ok || !cpu)
        snprintf(why, sizeof why, "out of memory");
    else if (ran_elsewhere) /* on Slurm (slurm.h): the merge and check.txt tell what ran */
        for (int j = 0; j < J->njobs; j++)
            ok[j] = 1;
    else if (pr_jobs_run(ok, cpu, J, workers))
        snprintf(why, sizeof why, "the jobs could not all be started or waited for: %s", strerror(errno));
    collect_jobs(oc, chk, cost, J, ok, cpu, why, cmdline);
    free(ok);
    free(cpu);
}

/* every preset in this process, one after the other, then the check */
static void run_serial(outcome_t *oc, outcome_t *chk, cost_t *cost, const char *out, const char *size, int resume,
                       const char *cmdline)
{
    for (int i = 0; i < pr_npresets; i++) {
        const pr_preset_t *p = &pr_presets[i];
        char pred[32], took[32];
        pr_sweep_duration(pred, sizeof pred, cost[i].predicted);
        stderr_note("[%d/%d] %s (%s): running, predicted %s", i + 1, pr_npresets, p->name, p->claims, pred);
        run_preset(oc, &cost[i], p, out, size, resume, cmdline);
        pr_sweep_duration(took, sizeof took, cost[i].wall);
        stderr_note("[%d/%d] %s: done in %s (%.1f s CPU, predicted %.1f s)", i + 1, pr_npresets, p->name, took,
                    cost[i].cpu, cost[i].predicted);
    }
    stderr_note("polyrope check all (proofs-check, output in %s/check.txt)", out);
    char why[256];
    double t0 = pr_timing_wall(), c0 = cpu_now();
    if (run_checks(chk, out, strcmp(size, "full") ? "3" : 0, why, sizeof why)) {
        stderr_note("polyrope check did not run to the end: %s (see %s/check.txt)", why, out);
        for (int k = 0; k < NCLAIMS; k++)
            snprintf(chk[k].detail, sizeof chk[k].detail, "polyrope check %s: not run (%s)", claims[k].id, why);
    }
    cost[pr_npresets].cpu = cpu_now() - c0, cost[pr_npresets].wall = pr_timing_wall() - t0;
}

int pr_cmd_reproduce(int argc, char **argv)
{
    int quick = 0, full = 0, tiny = 0, resume = 0, yes = 0, slurm = 0, slurm_wait = 0, slurm_merge = 0;
    const char *sbatch = 0;
    long jobs = 1;
    double max_minutes = 60;
    const char *out = "results";
    pr_opt_t opts[] = {
        {.name = "quick", .type = PR_OPT_FLAG, .dest = &quick, .help = "small grids, about a minute on 2 cores (the default)"},
        {.name = "full", .type = PR_OPT_FLAG, .dest = &full, .help = "the full grids: about 35 min of CPU, predicted at the start (--jobs 2 spreads it over 2 cores)"},
        {.name = "tiny", .type = PR_OPT_FLAG, .dest = &tiny, .help = "the smallest grids, seconds: a smoke test of the whole job"},
        {.name = "out", .type = PR_OPT_STRING, .dest = &out, .help = "folder for the CSVs, figures and REPORT.md (created if missing; must be writable)"},
        {.name = "resume", .type = PR_OPT_FLAG, .dest = &resume, .help = "keep the rows of an interrupted run in --out and finish it (give the same size)"},
        {.name = "jobs", .type = PR_OPT_INT, .dest = &jobs, .lo = 1, .hi = 64,
         .help = "run the presets' shards and the check as N processes side by side (1..64)"},
        {.name = "max-minutes", .type = PR_OPT_DOUBLE, .dest = &max_minutes, .lo = 0, .hi = 1e7,
         .help = "refuse a run predicted to take longer than this on --jobs processes (unless --yes)"},
        {.name = "yes", .type = PR_OPT_FLAG, .dest = &yes, .help = "run even past --max-minutes"},
        {.name = "slurm", .type = PR_OPT_FLAG, .dest = &slurm, .help = "submit the jobs of --jobs N (default 8) as one Slurm job array; prints the merge command"},
        {.name = "wait", .type = PR_OPT_FLAG, .dest = &slurm_wait, .help = "with --slurm: wait for the array, then merge and report"},
        {.name = "slurm-merge", .type = PR_OPT_FLAG, .dest = &slurm_merge, .help = "once the array has run: merge its parts, then figures and REPORT.md"},
        {.name = "sbatch", .type = PR_OPT_STRING, .dest = &sbatch, .help = "with --slurm: more sbatch options, e.g. \"--partition=p --time=2:00:00\""},
    };
    pr_cmd_spec_t spec = {"reproduce", "", "Run every experiment; write CSVs, figures and REPORT.md with each claim's verdict.",
                          "Writes DIR/PRESET.csv, DIR/PRESET.png and DIR/PRESET.pdf for each preset (polyrope sweep\n"
                          "--list), DIR/check.txt from polyrope check all (--trials 3 unless --full), and DIR/REPORT.md\n"
                          "with one line per claim: id, statement, verdict (the experiment's and the check's together),\n"
                          "evidence, figure, and each preset's predicted and measured time.\n"
                          "Before any work the run's duration is predicted from each preset's cost model (calibrated\n"
                          "on the project's 2-core machine: experiments/presets.c) and printed; past --max-minutes the\n"
                          "run is refused unless --yes. Progress goes to stderr: a line per preset (or job), and at\n"
                          "most one a minute in between when stderr is not a terminal.\n"
                          "--jobs N cuts each preset into shards (sweep --shard) by predicted cost and runs them and the\n"
                          "check as N child processes, longest first; their CSVs (DIR/parts) are merged into the same\n"
                          "DIR/PRESET.csv rows a serial run writes (time columns aside).\n"
                          "A degree row still searching after 120 s of CPU is stopped and recorded as 'not finished\n"
                          "within its CPU-time budget': its claim is then inconclusive, never passed.\n"
                          "passed: every experiment and check the claim rests on ran to the end and passed.\n"
                          "FAILED: one of them failed. not run: one of them did not run (the evidence says why).\n"
                          "inconclusive: all ran, but the data cannot decide (e.g. --tiny's grids are too small).\n"
                          "Exit status 0 only when every claim passed; 1 if any claim FAILED, was not run or is\n"
                          "inconclusive (a --tiny run, a smoke test, leaves some claims inconclusive).",
                          opts, sizeof opts / sizeof opts[0]};
    int rc = pr_cli_parse_nopos(&spec, argc, argv);
    if (rc)
        return rc < 0 ? 0 : rc;
    pr_cli_pin_malloc_warn("reproduce");
    if (quick + full + tiny > 1)
        return pr_cli_fail("reproduce", "give one of --quick, --full, --tiny");
    const char *size = full ? "full" : tiny ? "tiny" : "quick";
    if (slurm + slurm_merge > 1 || (!slurm && (slurm_wait || sbatch)))
        return pr_cli_fail("reproduce", "--wait and --sbatch go with --slurm; --slurm submits, --slurm-merge merges "
                                        "once the array has run (docs/cli.md, Slurm)");
    if ((slurm || slurm_merge) && !pr_cli_given(&spec, "jobs"))
        jobs = PR_SLURM_JOBS;
    if ((rc = check_out(out)) || (resume && (rc = check_resume(out, size))) || (slurm && (rc = pr_slurm_usable(sbatch))))
        return rc;
    yes |= slurm_merge; /* predicted and accepted when it was submitted */
    pr_jobs_t J;
    char err[320];
    int st = pr_jobs_plan(&J, size, out, (int)jobs, err, sizeof err);
    if (st)
        return st == PR_EINVAL ? pr_cli_fail("reproduce", "%s", err) : pr_cli_fail_status("reproduce", st, "planning");
    cost_t cost[pr_npresets + 1];
    memset(cost, 0, sizeof cost);
    char *cmdline = 0;
    if ((rc = predicted_ok(cost, &J, (int)jobs, max_minutes, yes, resume)) || !(cmdline = pr_sweep_cmdline(argc, argv))) {
        pr_jobs_clear(&J);
        return rc ? rc : pr_cli_fail("reproduce", "out of memory");
    }
    /* Slurm (slurm.h): the jobs run as an array; then on as --jobs, on the parts they left */
    if (slurm && ((rc = pr_slurm_submit(out, size, (int)jobs, sbatch, slurm_wait, resume)) || !slurm_wait)) {
        pr_jobs_clear(&J);
        free(cmdline);
        return rc;
    }
    double t0 = pr_timing_wall();
    outcome_t oc[NCLAIMS], chk[NCLAIMS];
    memset(oc, 0, sizeof oc);
    /* a claim no preset answers has no evidence (never the zero verdict, "passed") */
    for (int k = 0; k < NCLAIMS; k++) {
        oc[k].verdict = chk[k].verdict = PR_VERDICT_NOT_RUN;
        snprintf(oc[k].detail, sizeof oc[k].detail, "no preset answers it");
        snprintf(chk[k].detail, sizeof chk[k].detail, "polyrope check %s: not run (no row in check.txt)", claims[k].id);
        chk[k].figure[0] = 0;
    }
    if (jobs > 1 || slurm || slurm_merge)
        run_jobs(oc, chk, cost, &J, (int)jobs, resume, cmdline, slurm || slurm_merge);
    else
        run_serial(oc, chk, cost, out, size, resume, cmdline);
    pr_jobs_clear(&J);
    for (int k = 0; k < NCLAIMS; k++)
        combine(&oc[k], &chk[k], strcmp(claims[k].source, "check") != 0);
    rc = write_report(out, oc, cost, size, cmdline, pr_timing_wall() - t0);
    if (rc != 2)
        stderr_note("report in %s/REPORT.md, figures and CSVs beside it", out);
    free(cmdline);
    return rc;
}
