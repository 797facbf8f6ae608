/* polyrope plot's figures (issue 17), on sweeps of randomly chosen small grids of every preset:
 * every script runs without a gnuplot warning (no empty series: low-rank on general W has no
 * timings or errors, which once stopped scaling.gp with "undefined value"), the PDF is one column
 * wide (3.3 in), the PNG the same figure at 250 dpi, and the title line naming the commit and
 * machine is in the PNG only: the PDF of a CSV with another commit and machine is the same file
 * (bar its creation date), the PNG is not. Seed: PR_SEED. Needs gnuplot (else skipped, 77). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "pr_rng.h"
#include "pr_test.h"
#include "pr_test_cli.h"

static char *slurp(const char *path, long *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = 0;
    *len = 0;
    if (f && !fseek(f, 0, SEEK_END) && (*len = ftell(f)) > 0 && !fseek(f, 0, SEEK_SET) && (buf = malloc(*len + 1)))
        buf[fread(buf, 1, *len, f)] = 0;
    if (f)
        fclose(f);
    return buf;
}

/* the PNG's width in pixels (IHDR), -1 if not a PNG */
static long png_width(const char *path)
{
    long len;
    unsigned char *b = (unsigned char *)slurp(path, &len);
    long w = -1;
    if (b && len > 24 && !memcmp(b, "\x89PNG", 4) && !memcmp(b + 12, "IHDR", 4))
        w = ((long)b[16] << 24) | ((long)b[17] << 16) | ((long)b[18] << 8) | b[19];
    free(b);
    return w;
}

/* the PDF's page width in points (MediaBox), -1 if none */
static double pdf_width(const char *path)
{
    long len;
    char *b = slurp(path, &len);
    double x0, y0, x1 = -1, y1;
    char *m = b ? memmem(b, len, "/MediaBox [", 11) : 0;
    if (!m || sscanf(m + 11, "%lf %lf %lf %lf", &x0, &y0, &x1, &y1) != 4)
        x1 = -1;
    free(b);
    return x1;
}

/* the PDF without its /CreationDate and /ModDate values: the rest is the figure */
static char *pdf_body(const char *path, long *len)
{
    char *b = slurp(path, len);
    static const char *const keys[] = {"/CreationDate (", "/ModDate ("};
    for (int k = 0; b && k < 2; k++)
        for (char *p = b; (p = memmem(p, *len - (p - b), keys[k], strlen(keys[k]))); p++)
            for (char *q = p + strlen(keys[k]); q < b + *len && *q != ')'; q++)
                *q = 'x';
    return b;
}

/* gnuplot said nothing but that it widened an axis holding a single value (tiny grids) */
static int only_range_notes(const char *err)
{
    for (const char *l = err; *l; l += strcspn(l, "\n") + (l[strcspn(l, "\n")] != 0))
        if (strncmp(l, "Warning: empty ", 15) || strncmp(l + 16, " range [", 8))
            return 0;
    return 1;
}

/* a random subset of the words of list, comma separated, always with those in must */
static void subset(char *out, size_t cap, pr_rng_t rng, const char *list, const char *must)
{
    char copy[256], *save = 0;
    snprintf(copy, sizeof copy, "%s", list);
    out[0] = 0;
    for (char *w = strtok_r(copy, ",", &save); w; w = strtok_r(0, ",", &save))
        if (strstr(must, w) || pr_rng_uniform(rng) < 0.5)
            snprintf(out + strlen(out), cap - strlen(out), "%s%s", out[0] ? "," : "", w);
}

int main(void)
{
    if (system("command -v gnuplot >/dev/null 2>&1")) {
        printf("SKIP: gnuplot not on PATH\n");
        return 77;
    }
    pr_rng_t rng;
    uint64_t seed = pr_test_seed("test_plot", 17);
    pr_rng_init(rng, seed);
    char algos[64], pos[64], ns[64];
    subset(algos, sizeof algos, rng, "dense,fft,lowrank", "fft,lowrank");
    subset(pos, sizeof pos, rng, "rope,general", "general");
    snprintf(ns, sizeof ns, "%d,%d", 8 << (int)(pr_rng_uniform(rng) * 3), 64 << (int)(pr_rng_uniform(rng) * 2));
    /* each preset's tiny grid, scaling and error with low-rank on general W among the series */
    const struct {
        const char *preset, *grid;
    } runs[] = {
        {"factorise", 0}, {"degree", 0}, {"threshold", 0}, {"rope-vs-general", 0}, {"scaling", "scaling"}, {"error", "error"},
    };
    for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) {
        char args[1024], csv[64], png[64], pdf[64], grid[256] = "";
        snprintf(csv, sizeof csv, "plot-%s.csv", runs[i].preset);
        snprintf(png, sizeof png, "plot-%s.png", runs[i].preset);
        snprintf(pdf, sizeof pdf, "plot-%s.pdf", runs[i].preset);
        unlink(csv);
        if (runs[i].grid && !strcmp(runs[i].grid, "scaling"))
            snprintf(grid, sizeof grid, " --grid 'n=%s;algo=%s;pos=%s'", ns, algos, pos);
        else if (runs[i].grid)
            snprintf(grid, sizeof grid, " --grid 'algo=fft,lowrank;pos=%s'", pos); /* its algorithms */
        snprintf(args, sizeof args, "sweep %s --size tiny --quiet%s --out %s", runs[i].preset, grid, csv);
        int rc = pr_test_cli_run("plot-sweep", args);
        PR_CHECK(rc == 0, "polyrope %s: exit %d: %s", args, rc, pr_test_cli_err);
        snprintf(args, sizeof args, "plot %s", csv);
        rc = pr_test_cli_run("plot-run", args);
        PR_CHECK(rc == 0 && only_range_notes(pr_test_cli_err), "polyrope %s (seed %llu): exit %d, stderr '%s'", args,
                 (unsigned long long)seed, rc, pr_test_cli_err);
        long w = png_width(png);
        double pw = pdf_width(pdf);
        PR_CHECK(w == 825, "%s: %ld pixels wide, not 3.3 in at 250 dpi (825)", png, w);
        PR_CHECK(pw >= 237 && pw <= 238, "%s: %g pt wide, not one column (3.3 in = 237.6 pt)", pdf, pw);
        if (rc || i != 0)
            continue;
        /* the stamp: another commit and machine in the CSV's header */
        char cmd[512];
        snprintf(cmd, sizeof cmd, "sed -e 's/^# git commit: .*/# git commit: 0123456789ab-other/' "
                                  "-e 's/^# machine: .*/# machine: another machine/' %s > plot-stamp.csv", csv);
        PR_CHECK(system(cmd) == 0, "%s", cmd);
        rc = pr_test_cli_run("plot-run", "plot plot-stamp.csv");
        PR_CHECK(rc == 0, "plot plot-stamp.csv: exit %d: %s", rc, pr_test_cli_err);
        long l1, l2, p1, p2;
        char *a = pdf_body(pdf, &l1), *b = pdf_body("plot-stamp.pdf", &l2);
        char *c = slurp(png, &p1), *d = slurp("plot-stamp.png", &p2);
        PR_CHECK(a && b && l1 == l2 && !memcmp(a, b, l1), "the PDF depends on the commit or machine (%ld and %ld bytes)", l1, l2);
        PR_CHECK(c && d && (p1 != p2 || memcmp(c, d, p1)), "the PNG does not show the commit and machine");
        free(a), free(b), free(c), free(d);
    }
    return pr_test_finish("test_plot");
}
