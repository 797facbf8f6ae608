/* polyrope sweep: a preset or a grid into a self-describing CSV; --resume, --shard, --merge. */
#include <stdlib.h>
#include <string.h>
#include "pr_status.h"
#include "cli.h"
#include "commands.h"
#include "sweep.h"

static const char details_grid[] =
    "With PRESET, runs that experiment's grid (--size picks tiny, quick or full); --grid then\n"
    "replaces the values of the axes it names. Without PRESET, --grid must name every axis of\n"
    "the 'error' preset (one attention run per configuration, error against the guarantee).\n"
    "\n"
    "grid syntax: AXIS=VALUES;AXIS=VALUES;...   VALUES is a comma list whose items are\n"
    "  a value       n=256,512   pos=rope,general   eps=1e-3\n"
    "  A..B*F        geometric, A, A*F, ... up to B:   n=64..4096*2\n"
    "  A..B+S        arithmetic, A, A+S, ... up to B:  B=0.5..2+0.5\n"
    "The last axis varies fastest. A value listed twice is refused; a range's values that round\n"
    "to the one before are dropped with a note (n=1..8*1.1 rounds to 1,1,1,1,1,2,..: n=1..7).\n"
    "axes (Bs is B/sqrt(ln n)) and their values; a preset narrows some (sweep --list):\n";

static const char details_rest[] =
    "RoPE, rope-neox and general W act on pairs of coordinates: only pos=identity takes odd d.\n"
    "Every value is checked, and the configurations counted against --max-configs, before any\n"
    "work: bad input is exit 2 with one line, and no file is written.\n"
    "\n"
    "CSV: '#' lines (version, git commit, build type, libraries, machine, preset, grid, shard,\n"
    "command), then a header row idx,key,<axes>,status,<outputs>, then one row per configuration.\n"
    "Each row is one write of a whole line, then fsync: a sweep killed at any moment continues\n"
    "with --resume (finished keys are skipped, a torn last line is dropped, nothing repeats).\n"
    "A resumed file must be this sweep's: every row is checked (idx, key, values, status,\n"
    "numbers, no repeats) and a file with another row is refused, naming its line.\n"
    "\n"
    "presets (polyrope sweep --list):  factorise degree error scaling threshold rope-vs-general\n"
    "\n"
    "many machines: --shard K/N runs configurations idx with idx mod N = K-1; then merge:\n"
    "  parallel polyrope sweep scaling --shard {}/4 --out part{}.csv --resume ::: 1 2 3 4\n"
    "  polyrope sweep --merge scaling.csv part1.csv part2.csv part3.csv part4.csv\n"
    "--merge takes every shard K/N of one N, each complete, all of one grid and of one build\n"
    "(the same '# git commit:' and '# build type:' lines; a shard given twice is kept once);\n"
    "anything else is refused before OUT.csv is written.\n"
    "Slurm job array (experiments/sweep-slurm.sh; installed in <datadir>/polyrope):\n"
    "  sbatch --array=1-16 experiments/sweep-slurm.sh scaling 16 out/    then\n"
    "  polyrope sweep --merge scaling.csv out/scaling-*.csv\n"
    "\n"
    "Duration: before any row, the run's CPU time is predicted from the preset's cost model\n"
    "(per-row operation counts times constants measured on the project's 2-core machine:\n"
    "experiments/presets.c) and printed; past --max-minutes the sweep is refused unless --yes.\n"
    "A row past its CPU budget (--row-seconds; the degree preset's default is 120 s) is\n"
    "stopped and recorded with status 'not finished within its CPU-time budget'.\n"
    "Progress (rows, elapsed, ETA) goes to stderr: redrawn on a terminal, otherwise one line\n"
    "a minute at most.";

/* the --help details, with the axes' domains from the table that checks them; caller frees */
static char *details_text(void)
{
    char *buf = 0;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return 0;
    fputs(details_grid, f);
    pr_grid_domains(f, "  ");
    fputs(details_rest, f);
    if (fclose(f)) {
        free(buf);
        return 0;
    }
    return buf;
}

static int list_presets(void)
{
    printf("%-16s %-8s %s\n", "preset", "claims", "what it measures");
    for (int i = 0; i < pr_npresets; i++) {
        const pr_preset_t *p = &pr_presets[i];
        printf("%-16s %-8s %s\n", p->name, p->claims, p->summary);
        printf("%-16s axes %s; outputs %s\n", "", p->axes, p->columns);
        if (p->limits)
            printf("%-16s limits %s\n", "", p->limits);
    }
    return 0;
}

/* the range values that rounded onto others, said once per axis (the grid is still run) */
static void merged_notes(const pr_grid_t *g)
{
    for (int i = 0; i < g->naxes; i++)
        if (g->ax[i].merged)
            fprintf(stderr, "polyrope sweep: note: axis %s: %d range values rounded to the value before them and were "
                    "dropped; it takes %d values\n", g->ax[i].name, g->ax[i].merged, g->ax[i].nv);
}

/* the run's predicted CPU time: past max_minutes refused (exit 2) unless yes (the driver
 * prints it once the output is open) */
static int predicted_ok(const pr_preset_t *p, const pr_grid_t *g, const pr_sweep_opts_t *so, double max_minutes,
                        int yes)
{
    double budget = pr_sweep_row_budget(p, so), secs = pr_sweep_predict(p, g, so->shard_k, so->shard_n, budget);
    char t[32], b[64] = "";
    pr_sweep_duration(t, sizeof t, secs);
    if (budget > 0)
        snprintf(b, sizeof b, ", rows stopped at %g s", budget);
    if (secs > 60 * max_minutes && !yes)
        return pr_cli_fail("sweep", "%s: predicted %s of CPU%s, past --max-minutes %g: add --yes to run it anyway, "
                           "or narrow the grid (or split it with --shard K/N)", p->name, t, b, max_minutes);
    return 0;
}

int pr_cmd_sweep(int argc, char **argv)
{
    const char *grid = 0, *out = 0, *shard = "1/1", *size = "quick", *merge = 0;
    int resume = 0, list = 0, quiet = 0, yes = 0;
    long max_configs = PR_GRID_MAX_CONFIGS;
    double max_minutes = 60, row_seconds = 0;
    pr_opt_t opts[] = {
        {.name = "grid", .type = PR_OPT_STRING, .dest = &grid, .help = "axis values, e.g. \"n=256,512;d=2,4;B=0.5,1\" (syntax above)"},
        {.name = "size", .type = PR_OPT_CHOICE, .dest = &size, .help = "which of the preset's grids", .choices = "tiny|quick|full"},
        {.name = "out", .type = PR_OPT_STRING, .dest = &out, .help = "the CSV to write (required)"},
        {.name = "resume", .type = PR_OPT_FLAG, .dest = &resume, .help = "continue an existing --out, skipping finished rows"},
        {.name = "shard", .type = PR_OPT_STRING, .dest = &shard, .help = "run shard K of N (K/N, 1-based)"},
        {.name = "merge", .type = PR_OPT_STRING, .dest = &merge, .help = "merge the shard CSVs given as arguments into this CSV"},
        {.name = "max-configs", .type = PR_OPT_INT, .dest = &max_configs, .lo = 1, .hi = 1e6,
         .help = "refuse a grid (or a merge) of more configurations than N (N <= 1e6)"},
        {.name = "max-minutes", .type = PR_OPT_DOUBLE, .dest = &max_minutes, .lo = 0, .hi = 1e7,
         .help = "refuse a run predicted to take more CPU minutes than this (unless --yes)"},
        {.name = "yes", .type = PR_OPT_FLAG, .dest = &yes, .help = "run even past --max-minutes"},
        {.name = "row-seconds", .type = PR_OPT_DOUBLE, .dest = &row_seconds, .lo = 0, .hi = 1e7,
         .help = "CPU budget of one row in seconds (0: the preset's; degree 120, others none)"},
        {.name = "quiet", .type = PR_OPT_FLAG, .dest = &quiet, .help = "no prediction or progress lines on stderr"},
        {.name = "list", .type = PR_OPT_FLAG, .dest = &list, .help = "list the presets, their claims and axes"},
    };
    char *details = details_text();
    pr_cmd_spec_t spec = {"sweep", "[PRESET] | --merge OUT.csv IN.csv...",
                          "Sweep n, d, B, eps, W, algorithm, polynomial and seed into a self-describing CSV.",
                          details, opts, sizeof opts / sizeof opts[0]};
    char **pos = malloc(sizeof(char *) * (argc + 1));
    if (!pos || !details) {
        free(pos), free(details);
        return pr_cli_fail_status("sweep", PR_ENOMEM, "arguments");
    }
    int npos, rc = pr_cli_parse(&spec, argc, argv, pos, &npos);
    char *cmdline = 0;
    free(details); /* only --help used it */
    if (rc) {
        free(pos);
        return rc < 0 ? 0 : rc;
    }
    pr_cli_pin_malloc_warn("sweep");
    if (list) {
        free(pos);
        return list_presets();
    }
    cmdline = pr_sweep_cmdline(argc, argv);
    if (merge) {
        /* merging reads the grid from the files: options of a run would be ignored */
        static const char *const run_only[] = {"grid", "size", "out", "resume", "shard", "max-minutes", "yes", "row-seconds"};
        for (int i = 0; i < 8; i++)
            if (pr_cli_given(&spec, run_only[i])) {
                rc = pr_cli_fail("sweep", "--merge does not take --%s: polyrope sweep --merge OUT.csv IN.csv...", run_only[i]);
                goto done;
            }
        rc = pr_sweep_merge(merge, pos, npos, max_configs, cmdline);
        goto done;
    }
    if (npos > 1) {
        rc = pr_cli_fail("sweep", "one PRESET at most, got '%s' and '%s'", pos[0], pos[1]);
        goto done;
    }
    if (!npos && !grid) {
        rc = pr_cli_fail("sweep", "give a PRESET or --grid (see polyrope sweep --help, --list)");
        goto done;
    }
    if (!npos && pr_cli_given(&spec, "size")) {
        rc = pr_cli_fail("sweep", "--size picks one of a PRESET's grids: give a PRESET, or drop --size");
        goto done;
    }
    if (!out) {
        rc = pr_cli_fail("sweep", "--out FILE.csv is required");
        goto done;
    }
    pr_sweep_opts_t so = {.out = out, .resume = resume, .progress = quiet ? 0 : -1, .command = cmdline,
                          .max_configs = max_configs, .row_seconds = row_seconds};
    if (!pr_sweep_shard_parse(&so.shard_k, &so.shard_n, shard)) {
        rc = pr_cli_fail("sweep", "--shard expects K/N with 1 <= K <= N, got '%s'", shard);
        goto done;
    }
    const pr_preset_t *p = pr_preset_find(npos ? pos[0] : "error");
    if (!p) {
        rc = pr_cli_fail("sweep", "unknown preset '%s' (polyrope sweep --list shows them)", pos[0]);
        goto done;
    }
    pr_grid_t g;
    char err[512];
    /* a bare grid must say every axis (pr_sweep_check): there is no preset default to fall back on */
    int st = npos ? pr_preset_grid_max(&g, p, size, grid, max_configs, err, sizeof err)
                  : pr_grid_parse_max(&g, grid, max_configs, err, sizeof err);
    if (!st && !npos)
        st = pr_sweep_check(p, &g, max_configs, err, sizeof err);
    if (st) {
        rc = st == PR_EINVAL || st == PR_EBUDGET ? pr_cli_fail("sweep", "--grid: %s", err) : pr_cli_fail_status("sweep", st, "grid");
    } else if (!(rc = predicted_ok(p, &g, &so, max_minutes, yes))) {
        merged_notes(&g);
        rc = pr_sweep_run(p, &g, &so);
    }
    pr_grid_clear(&g);
done:
    free(cmdline);
    free(pos);
    return rc;
}
