/* polyrope sweep: a preset or a grid into a self-describing CSV; --resume, --shard, --merge. */
#include <stdlib.h>
#include <string.h>
#include "pr_status.h"
#include "cli.h"
#include "commands.h"
#include "sweep.h"

static const char details[] =
    "With PRESET, runs that experiment's grid (--size picks tiny, quick or full); --grid then\n"
    "replaces the values of the axes it names. Without PRESET, --grid must name every axis of\n"
    "the 'error' preset (one attention run per configuration, error against the guarantee).\n"
    "\n"
    "grid syntax: AXIS=VALUES;AXIS=VALUES;...   VALUES is a comma list whose items are\n"
    "  a value       n=256,512   pos=rope,general   eps=1e-3\n"
    "  A..B*F        geometric, A, A*F, ... up to B:   n=64..4096*2\n"
    "  A..B+S        arithmetic, A, A+S, ... up to B:  B=0.5..2+0.5\n"
    "axes: n d (integers), B, Bs (B/sqrt(ln n)), eps, R (numbers), fn exp-rel|exp-abs|expneg-abs,\n"
    "  pos rope|rope-neox|general|identity, algo dense|lowrank|fft,\n"
    "  poly taylor|chebyshev|minimax, seed (integer). The last axis varies fastest.\n"
    "\n"
    "CSV: '#' lines (version, git commit, build type, libraries, machine, preset, grid, shard,\n"
    "command), then a header row idx,key,<axes>,status,<outputs>, then one row per configuration.\n"
    "Each row is one write of a whole line, then fsync: a sweep killed at any moment continues\n"
    "with --resume (finished keys are skipped, a torn last line is dropped, nothing repeats).\n"
    "\n"
    "presets (polyrope sweep --list):  factorise degree error scaling threshold rope-vs-general\n"
    "\n"
    "many machines: --shard K/N runs configurations idx with idx mod N = K-1; then merge:\n"
    "  parallel polyrope sweep scaling --shard {}/4 --out part{}.csv --resume ::: 1 2 3 4\n"
    "  polyrope sweep --merge scaling.csv part1.csv part2.csv part3.csv part4.csv\n"
    "Slurm job array (experiments/sweep-slurm.sh; installed in <datadir>/polyrope):\n"
    "  sbatch --array=1-16 experiments/sweep-slurm.sh scaling 16 out/    then\n"
    "  polyrope sweep --merge scaling.csv out/scaling-*.csv\n"
    "\n"
    "A progress line (rows, rate, ETA) goes to stderr when it is a terminal.";

static int list_presets(void)
{
    printf("%-16s %-8s %s\n", "preset", "claims", "what it measures");
    for (int i = 0; i < pr_npresets; i++) {
        const pr_preset_t *p = &pr_presets[i];
        printf("%-16s %-8s %s\n", p->name, p->claims, p->summary);
        printf("%-16s axes %s; outputs %s\n", "", p->axes, p->columns);
    }
    return 0;
}

/* is name one of the comma-separated axes in list? */
static int axis_listed(const char *list, const char *name)
{
    size_t len = strlen(name);
    for (const char *p = list; p; p = strchr(p, ','), p = p ? p + 1 : 0)
        if (!strncmp(p, name, len) && (p[len] == ',' || !p[len]))
            return 1;
    return 0;
}

static int parse_shard(long *k, long *n, const char *s)
{
    char *end;
    *k = strtol(s, &end, 10);
    if (end == s || *end != '/')
        return 0;
    const char *t = end + 1;
    *n = strtol(t, &end, 10);
    return end != t && !*end && *n >= 1 && *k >= 1 && *k <= *n;
}

int pr_cmd_sweep(int argc, char **argv)
{
    const char *grid = 0, *out = 0, *shard = "1/1", *size = "quick", *merge = 0;
    int resume = 0, list = 0, quiet = 0;
    pr_opt_t opts[] = {
        {.name = "grid", .type = PR_OPT_STRING, .dest = &grid, .help = "axis values, e.g. \"n=256,512;d=2,4;B=0.5,1\" (syntax above)"},
        {.name = "size", .type = PR_OPT_CHOICE, .dest = &size, .help = "which of the preset's grids", .choices = "tiny|quick|full"},
        {.name = "out", .type = PR_OPT_STRING, .dest = &out, .help = "the CSV to write (required)"},
        {.name = "resume", .type = PR_OPT_FLAG, .dest = &resume, .help = "continue an existing --out, skipping finished rows"},
        {.name = "shard", .type = PR_OPT_STRING, .dest = &shard, .help = "run shard K of N (K/N, 1-based)"},
        {.name = "merge", .type = PR_OPT_STRING, .dest = &merge, .help = "merge the shard CSVs given as arguments into this CSV"},
        {.name = "quiet", .type = PR_OPT_FLAG, .dest = &quiet, .help = "no progress line even on a terminal"},
        {.name = "list", .type = PR_OPT_FLAG, .dest = &list, .help = "list the presets, their claims and axes"},
    };
    pr_cmd_spec_t spec = {"sweep", "[PRESET] | --merge OUT.csv IN.csv...",
                          "Sweep n, d, B, eps, W, algorithm, polynomial and seed into a self-describing CSV.",
                          details, opts, sizeof opts / sizeof opts[0]};
    char **pos = malloc(sizeof(char *) * (argc + 1));
    int npos, rc = pr_cli_parse(&spec, argc, argv, pos, &npos);
    char *cmdline = 0;
    if (rc) {
        free(pos);
        return rc < 0 ? 0 : rc;
    }
    if (list) {
        free(pos);
        return list_presets();
    }
    cmdline = pr_sweep_cmdline(argc, argv);
    if (merge) {
        rc = pr_sweep_merge(merge, pos, npos, cmdline);
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
    if (!out) {
        rc = pr_cli_fail("sweep", "--out FILE.csv is required");
        goto done;
    }
    pr_sweep_opts_t so = {.out = out, .resume = resume, .progress = quiet ? 0 : -1, .command = cmdline};
    if (!parse_shard(&so.shard_k, &so.shard_n, shard)) {
        rc = pr_cli_fail("sweep", "--shard expects K/N with 1 <= K <= N, got '%s'", shard);
        goto done;
    }
    const pr_preset_t *p = pr_preset_find(npos ? pos[0] : "error");
    if (!p) {
        rc = pr_cli_fail("sweep", "unknown preset '%s' (polyrope sweep --list shows them)", pos[0]);
        goto done;
    }
    pr_grid_t g;
    char err[256];
    int st = npos ? pr_preset_grid(&g, p, size, grid, err, sizeof err) : pr_grid_parse(&g, grid, err, sizeof err);
    if (!st && !npos) {
        /* a bare grid must say every axis: there is no preset default to fall back on */
        char axes[128];
        snprintf(axes, sizeof axes, "%s", p->axes);
        for (char *sv = 0, *a = strtok_r(axes, ",", &sv); a && !st; a = strtok_r(0, ",", &sv))
            if (!pr_grid_axis(&g, a)) {
                snprintf(err, sizeof err, "--grid without a preset must give axis %s (needs: %s)", a, p->axes);
                st = PR_EINVAL;
            }
        for (int i = 0; i < g.naxes && !st; i++)
            if (!axis_listed(p->axes, g.ax[i].name)) {
                snprintf(err, sizeof err, "axis %s is not used here (axes: %s)", g.ax[i].name, p->axes);
                st = PR_EINVAL;
            }
    }
    if (st)
        rc = st == PR_EINVAL ? pr_cli_fail("sweep", "--grid: %s", err) : pr_cli_fail_status("sweep", st, "grid");
    else
        rc = pr_sweep_run(p, &g, &so);
    pr_grid_clear(&g);
done:
    free(cmdline);
    free(pos);
    return rc;
}
