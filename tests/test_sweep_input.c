/* polyrope sweep against bad and hostile input: every grid value outside its axis's domain or
 * its preset's limits, grids past the --max-configs cap (refused before any range is expanded),
 * range values that round together, resumed files and merge inputs with junk rows, missing or
 * mixed shards, impossible output paths, and pr_csv_read on malformed bytes (fixed cases plus
 * seeded random mutations of a real sweep CSV). Bad input is exit 2 with one line on stderr,
 * before any work: no output file appears and an existing one is left as it was. */
#include <errno.h>
#include <math.h>
#include <sys/stat.h>
#include "polyrope.h"
#include "pr_test.h"
#include "../experiments/sweep.h"
#include "sweep_util.h"

static char dir[] = "/tmp/pr_sweepin_XXXXXX";
static char logp[300];

static int exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

static int lines_of(const char *s)
{
    int k = 0;
    for (; s && *s; s++)
        k += *s == '\n';
    return k;
}

/* runs polyrope; expects exit `want`; for exit 2 one line on stderr containing `says` */
static void expect(int want, const char *says, char *const *args, const char *what)
{
    int rc = run_polyrope(logp, args);
    char *log = slurp(logp, 0);
    PR_CHECK(rc == want, "%s: exit %d, want %d; output: %s", what, rc, want, log ? log : "");
    if (want == 2)
        PR_CHECK(log && lines_of(log) == 1 && strstr(log, says), "%s: want one line saying '%s', got: %s", what, says,
                 log ? log : "");
    free(log);
}

static void write_file(const char *path, const char *text, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(text, 1, len, f);
        fclose(f);
    }
}

/* ---- grids ---- */

static void check_domains(void)
{
    /* each refused by the parser or by the preset's check, with words naming the cause */
    static const struct {
        const char *preset, *grid, *says;
    } bad[] = {
        {"factorise", "n=0", "axis n takes integers in [1"},
        {"factorise", "n=-1", "axis n takes integers"},
        {"factorise", "d=0", "axis d takes integers"},
        {"factorise", "d=3", "axis d of preset factorise takes even integers"},
        {"rope-vs-general", "d=5", "even integers"},
        {"error", "d=3;pos=rope", "3 is odd, but pos=rope"},
        {"error", "d=1;pos=identity", "axis d of preset error takes integers in [2"},
        {"error", "algo=dense", "takes one of fft|lowrank"},
        {"factorise", "B=-1", "axis B takes numbers in (0"},
        {"factorise", "B=0", "axis B takes numbers in (0"},
        {"error", "eps=0", "axis eps takes numbers in (0, 1)"},
        {"error", "eps=2", "axis eps takes numbers in (0, 1)"},
        {"error", "eps=1", "axis eps takes numbers in (0, 1)"},
        {"factorise", "seed=-1", "axis seed takes integers in [0"},
        {"factorise", "seed=1e300", "axis seed takes integers"},
        {"degree", "R=0", "axis R takes numbers in (0"},
        {"degree", "R=-2", "axis R takes numbers in (0"},
        {"threshold", "Bs=0", "axis Bs takes numbers in (0"},
        {"threshold", "Bs=-0.5", "axis Bs takes numbers in (0"},
        {"threshold", "n=2", "axis n of preset threshold takes integers in [4"},
        {"scaling", "n=1", "axis n of preset scaling takes integers in [2"},
        {"factorise", "n=abc", "'abc' is not a number"},
        {"factorise", "n=1.5", "takes integers"},
        {"factorise", "B=nan", "'nan' is not a number"},
        {"factorise", "B=inf", "'inf' is not finite"},
        {"factorise", "B=1e999", "'1e999' is past the largest double"},
        {"error", "eps=1e-400", "'1e-400' is below the least double"},
        {"factorise", "n=1..1e999*2", "'1e999' is past the largest double"},
        {"factorise", "n=1..8*x", "'x' is not a number"},
        {"factorise", "n=8,,16", "axis n: an empty value"},
        {"factorise", "n=8,16,", "axis n: an empty value"},
        {"factorise", "n=4,4", "value 4 is given twice"},
        {"factorise", "n=4..16*2,16", "value 16 is given twice"},
        {"factorise", "pos=cube", "takes one of rope|rope-neox|general|identity"},
        {"factorise", "eps=1e-3", "no axis 'eps'"},
    };
    char out[300], err[512];
    snprintf(out, sizeof out, "%s/never.csv", dir);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        pr_grid_t g;
        const pr_preset_t *p = pr_preset_find(bad[i].preset);
        err[0] = 0;
        int st = pr_preset_grid(&g, p, "tiny", bad[i].grid, err, sizeof err);
        pr_grid_clear(&g);
        PR_CHECK(st == PR_EINVAL && strstr(err, bad[i].says), "%s --grid '%s': status %d, err '%s', want '%s'",
                 bad[i].preset, bad[i].grid, st, err, bad[i].says);
        /* and on the command line: exit 2, one line, no file */
        expect(2, bad[i].says, (char *[]){"sweep", (char *)bad[i].preset, "--size", "tiny", "--grid", (char *)bad[i].grid,
                                          "--out", out, 0}, bad[i].grid);
        PR_CHECK(!exists(out), "%s --grid '%s' created its --out", bad[i].preset, bad[i].grid);
        unlink(out);
    }
    /* a bare grid (preset error) is checked the same way */
    expect(2, "axis n takes integers",
           (char *[]){"sweep", "--grid", "n=0;d=2;B=1;eps=1e-3;pos=rope;algo=fft;poly=chebyshev;seed=1", "--out", out, 0},
           "bare grid n=0");
    expect(2, "must give axis seed", (char *[]){"sweep", "--grid", "n=8;d=2;B=1;eps=1e-3;pos=rope;algo=fft;poly=chebyshev",
                                                "--out", out, 0}, "bare grid without seed");
    expect(2, "--size picks", (char *[]){"sweep", "--size", "tiny", "--grid", "n=8;d=2;B=1;eps=1e-3;pos=rope;algo=fft;"
                                         "poly=chebyshev;seed=1", "--out", out, 0}, "bare grid with --size");
    expect(2, "--shard expects K/N", (char *[]){"sweep", "factorise", "--shard", "1/99999999999999999999", "--out", out, 0},
           "shard overflow");
    PR_CHECK(!exists(out), "a refused bare grid created its --out");

    /* a subnormal is a number (eps=5e-324 is a valid, if hopeless, target) */
    pr_grid_t gs;
    PR_CHECK(pr_grid_parse(&gs, "eps=5e-324", err, sizeof err) == PR_OK && gs.ax[0].nv == 1, "eps=5e-324: %s", err);
    pr_grid_clear(&gs);

    /* every grid of every preset is inside its limits (the limits parse, the presets run) */
    for (int i = 0; i < pr_npresets; i++) {
        static const char *const sizes[] = {"tiny", "quick", "full"};
        for (int s = 0; s < 3; s++) {
            pr_grid_t g;
            err[0] = 0;
            int st = pr_preset_grid(&g, &pr_presets[i], sizes[s], 0, err, sizeof err);
            PR_CHECK(st == PR_OK, "preset %s --size %s: %s", pr_presets[i].name, sizes[s], err);
            pr_grid_clear(&g);
        }
    }
}

/* the length of range A..B*F or A..B+S as the parser counts it, in exact-enough doubles */
static double range_len(double lo, double hi, char op, double step)
{
    double q = op == '*' ? log(hi / lo) / log(step) : (hi - lo) / step;
    return floor(q + 1e-9) + 1;
}

static void check_budget(pr_rng_t rng)
{
    pr_grid_t g;
    char err[512] = "";
    /* the cases of the issue: refused before any value is made, so at once */
    double t0 = pr_timing_wall();
    int st = pr_grid_parse(&g, "n=1..4096*1.0001", err, sizeof err);
    pr_grid_clear(&g);
    PR_CHECK(st == PR_EBUDGET && strstr(err, "--max-configs") && strstr(err, "10000"), "n=1..4096*1.0001: %d %s", st, err);
    st = pr_grid_parse(&g, "n=1..67108864+1e-300", err, sizeof err);
    pr_grid_clear(&g);
    PR_CHECK(st == PR_EBUDGET, "an endless arithmetic range: %d %s", st, err);
    st = pr_grid_parse(&g, "B=1e-300..1e300*1.0000000000000002", err, sizeof err);
    pr_grid_clear(&g);
    PR_CHECK(st == PR_EBUDGET, "an endless geometric range: %d %s", st, err);
    /* an axis of many items, each within the cap, is capped as a whole */
    char many[4096] = "n=";
    for (int k = 0; k < 300; k++)
        snprintf(many + strlen(many), sizeof many - strlen(many), "%s%d..%d+1", k ? "," : "", 100 * k + 1, 100 * k + 100);
    st = pr_grid_parse(&g, many, err, sizeof err);
    pr_grid_clear(&g);
    PR_CHECK(st == PR_EBUDGET, "300 ranges of 100 values: %d %s", st, err);
    /* the product of the issue (142,704,000 configurations) */
    st = pr_grid_parse(&g, "n=16..4096*1.01;d=2..64+1;B=0.1..10+0.01;seed=1..1000+1", err, sizeof err);
    pr_grid_clear(&g);
    PR_CHECK(st == PR_EBUDGET && strstr(err, "configurations"), "a huge product: %d %s", st, err);
    PR_CHECK(pr_timing_wall() - t0 < 2, "refusals took %.2f s: something was expanded", pr_timing_wall() - t0);

    /* random grids: accepted exactly when the true product is within the cap, and then each
     * axis holds its range's values, distinct, in order, merged + nv = the range's length */
    for (int trial = 0; trial < 300; trial++) {
        char text[512] = "", *w = text;
        double prod = 1;
        long max = (long)pr_rng_range(rng, 1, 2000);
        static const char *const axes[] = {"n", "B", "eps", "seed"};
        double len[4];
        int naxes = 1 + trial % 4;
        for (int a = 0; a < naxes; a++) {
            int integer = a == 0 || a == 3;
            char op = pr_rng_range(rng, 0, 1) < 0.5 ? '*' : '+';
            double lo, hi, step;
            if (a == 2) { /* eps in (0, 1) */
                lo = pr_rng_range(rng, 1e-6, 0.1), hi = pr_rng_range(rng, lo, 0.9);
            } else {
                lo = integer ? floor(pr_rng_range(rng, 1, 50)) : pr_rng_range(rng, 0.01, 5);
                hi = lo + pr_rng_range(rng, 0, 200);
            }
            step = op == '*' ? 1 + pr_rng_range(rng, 0.001, 1) : pr_rng_range(rng, 0.01, 20);
            w += snprintf(w, text + sizeof text - w, "%s%s=%.17g..%.17g%c%.17g", a ? ";" : "", axes[a], lo, hi, op, step);
            len[a] = range_len(lo, hi, op, step);
            prod *= len[a];
        }
        int st2 = pr_grid_parse_max(&g, text, max, err, sizeof err);
        /* accepted: at most max configurations after merging; refused: more before merging */
        if (st2 == PR_OK) {
            PR_CHECK(pr_grid_count(&g) <= max, "'%s' max %ld: %ld configurations accepted", text, max, pr_grid_count(&g));
            for (int a = 0; a < g.naxes; a++) {
                const pr_axis_t *ax = &g.ax[a];
                PR_CHECK(ax->nv + ax->merged == (int)len[a], "'%s': axis %s has %d + %d merged values, want %.0f", text,
                         ax->name, ax->nv, ax->merged, len[a]);
                for (int k = 1; k < ax->nv; k++)
                    PR_CHECK(strtod(ax->v[k], 0) > strtod(ax->v[k - 1], 0), "'%s': axis %s values %s, %s not increasing",
                             text, ax->name, ax->v[k - 1], ax->v[k]);
            }
        } else {
            PR_CHECK(st2 == PR_EBUDGET && prod > max, "'%s' max %ld: status %d (%s) for a product of %.0f", text, max, st2,
                     err, prod);
        }
        pr_grid_clear(&g);
    }

    /* the command line names the cap and the option; --max-configs raises it */
    char out[300];
    snprintf(out, sizeof out, "%s/budget.csv", dir);
    expect(2, "--max-configs", (char *[]){"sweep", "factorise", "--grid", "n=1..4096*1.0001", "--out", out, 0},
           "n=1..4096*1.0001");
    expect(2, "--max-configs", (char *[]){"sweep", "factorise", "--size", "full", "--max-configs", "100", "--out", out, 0},
           "full grid over --max-configs 100");
    PR_CHECK(!exists(out), "a refused grid created its --out");
    expect(0, "", (char *[]){"sweep", "factorise", "--size", "tiny", "--grid", "n=8..16*2;B=1..3+1", "--max-configs", "36",
                             "--out", out, "--quiet", 0}, "a grid of exactly --max-configs 36");
    unlink(out);
    expect(2, "--max-configs", (char *[]){"sweep", "factorise", "--size", "tiny", "--grid", "n=8..16*2;B=1..3+1",
                                          "--max-configs", "35", "--out", out, 0}, "one past --max-configs 35");
    unlink(out);
}

static void check_rounding(void)
{
    char out[300];
    snprintf(out, sizeof out, "%s/round.csv", dir);
    /* n=1..8*1.1 rounds to 1,1,1,1,1,2,...: each integer once, and the drop is said */
    int rc = run_polyrope(logp, (char *[]){"sweep", "factorise", "--size", "tiny", "--grid", "n=1..8*1.1;d=2;pos=rope",
                                           "--out", out, "--quiet", 0});
    char *log = slurp(logp, 0);
    PR_CHECK(rc == 0 && log && strstr(log, "axis n: 15 range values rounded") && lines_of(log) == 1,
             "n=1..8*1.1: exit %d, said: %s", rc, log ? log : "");
    free(log);
    char **rows, *buf;
    int nl, nr = data_rows(&rows, &buf, out, &nl);
    PR_CHECK(nr == 7, "n=1..8*1.1: %d rows, want 7 (n = 1..7)", nr);
    for (int i = 0; i < nr; i++) {
        char want[64];
        snprintf(want, sizeof want, "%d,n=%d;", i, i + 1);
        PR_CHECK(!strncmp(rows[i], want, strlen(want)), "row %d is %s, want %s...", i, rows[i], want);
    }
    free(rows), free(buf);
    unlink(out);
}

/* ---- output paths ---- */

static void check_paths(void)
{
    char sub[300], f[300];
    snprintf(sub, sizeof sub, "%s/sub", dir);
    snprintf(f, sizeof f, "%s/nodir/x.csv", dir);
    mkdir(sub, 0755);
    expect(2, "is empty", (char *[]){"sweep", "factorise", "--size", "tiny", "--out", "", 0}, "--out ''");
    expect(2, "is a directory", (char *[]){"sweep", "factorise", "--size", "tiny", "--out", sub, 0}, "--out DIR");
    expect(2, "is a directory", (char *[]){"sweep", "factorise", "--size", "tiny", "--out", sub, "--resume", 0},
           "--out DIR --resume");
    expect(2, "cannot write", (char *[]){"sweep", "factorise", "--size", "tiny", "--out", f, 0}, "--out in no folder");
    expect(2, "cannot write", (char *[]){"sweep", "factorise", "--size", "tiny", "--out", "/proc/pr_sweep.csv", 0},
           "--out in /proc");
    expect(2, "not a regular file", (char *[]){"sweep", "factorise", "--size", "tiny", "--out", "/dev/null", "--resume", 0},
           "--out /dev/null --resume");
    /* a path with a newline is quoted as \x0a: the message stays one line */
    snprintf(f, sizeof f, "%s/no\ndir/x.csv", dir);
    expect(2, "no\\x0adir", (char *[]){"sweep", "factorise", "--size", "tiny", "--out", f, 0}, "--out with a newline");
}

/* ---- pr_csv_read ---- */

static int read_status(const char *path, const char *text, size_t len, char *err, size_t errlen, pr_csv_t *t)
{
    write_file(path, text, len);
    err[0] = 0;
    return pr_csv_read(t, path, 0, err, errlen);
}

/* the invariants of a table pr_csv_read accepted */
static void csv_invariants(const pr_csv_t *t, const char *what)
{
    PR_CHECK(t->ncols >= 1 && t->ncols <= PR_CSV_MAXCOLS, "%s: %d columns", what, t->ncols);
    for (long r = 0; r < t->nrows; r++)
        for (int c = 0; c < t->ncols; c++)
            PR_CHECK(t->rows[r][c] && !strpbrk(t->rows[r][c], ",\n"), "%s: row %ld field %d", what, r, c);
    for (int i = 0; i < t->ncomments; i++)
        PR_CHECK(t->comments[i][0] == '#' && !strchr(t->comments[i], '\n'), "%s: comment %d", what, i);
}

static void check_csv(pr_rng_t rng)
{
    char path[300], err[512];
    snprintf(path, sizeof path, "%s/in.csv", dir);
    pr_csv_t t;
    static const struct {
        const char *text, *says;
        int st;
    } cases[] = {
        {"# c\na,b\n1,2\n", 0, PR_OK},
        {"a,b\r\n1,2\r\n", 0, PR_OK},
        {"a,b\n1,2\n3,", 0, PR_OK},                    /* a torn last line is dropped */
        {"a,b\n\"1,2\n", 0, PR_OK},                    /* no quoting: a quote is a character */
        {"a,b\n\"1,2,3\n", "more fields", PR_EINVAL},
        {"a,b\n1\n", "fewer fields", PR_EINVAL},
        {"a,b\n1,2,3\n", "more fields", PR_EINVAL},
        {"a,a\n1,2\n", "names column 'a' twice", PR_EINVAL},
        {"a,b\n# late\n1,2\n", "comment after the header", PR_EINVAL},
        {"", "no header row", PR_EINVAL},
        {"# only\n", "no header row", PR_EINVAL},
        {"a,b", "no header row", PR_EINVAL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int st = read_status(path, cases[i].text, strlen(cases[i].text), err, sizeof err, &t);
        PR_CHECK(st == cases[i].st && (!cases[i].says || strstr(err, cases[i].says)), "csv '%s': status %d, err '%s'",
                 cases[i].text, st, err);
        if (!st)
            csv_invariants(&t, cases[i].text);
        pr_csv_clear(&t);
    }
    PR_CHECK(read_status(path, "a,b\n1,2\n3,4\n", 12, err, sizeof err, &t) == PR_OK && t.nrows == 2 &&
                 t.lineno[1] == 3 && !strcmp(t.rows[1][1], "4"), "a plain CSV");
    pr_csv_clear(&t);
    /* a NUL byte is refused, not read as the end of a shorter line */
    PR_CHECK(read_status(path, "a,b\n1,2\0,3\n", 11, err, sizeof err, &t) == PR_EINVAL && strstr(err, "line 2 contains a NUL"),
             "NUL byte: %s", err);
    pr_csv_clear(&t);
    /* 65 columns; a line past PR_CSV_MAXLINE */
    char cols[1024] = "c0";
    for (int k = 1; k < PR_CSV_MAXCOLS + 1; k++)
        snprintf(cols + strlen(cols), sizeof cols - strlen(cols), ",c%d", k);
    strcat(cols, "\n");
    PR_CHECK(read_status(path, cols, strlen(cols), err, sizeof err, &t) == PR_EINVAL && strstr(err, "more than 64 columns"),
             "65 columns: %s", err);
    pr_csv_clear(&t);
    size_t big = PR_CSV_MAXLINE + 10;
    char *longl = malloc(big + 8);
    memcpy(longl, "a,b\n", 4);
    memset(longl + 4, 'x', big);
    longl[4 + big] = '\n';
    PR_CHECK(read_status(path, longl, big + 5, err, sizeof err, &t) == PR_EINVAL && strstr(err, "line 2 is longer"),
             "a long line: %s", err);
    pr_csv_clear(&t);
    free(longl);
    /* a directory, a device, a missing file */
    PR_CHECK(pr_csv_read(&t, dir, 0, err, sizeof err) == PR_EINVAL && strstr(err, "a directory"), "a directory: %s", err);
    PR_CHECK(pr_csv_read(&t, "/dev/zero", 0, err, sizeof err) == PR_EINVAL && strstr(err, "not a regular file"),
             "/dev/zero: %s", err);
    PR_CHECK(pr_csv_read(&t, "/nonexistent.csv", 0, err, sizeof err) == PR_EIO, "a missing file: %s", err);

    /* seeded mutations of a real sweep CSV: accepted with the invariants, or refused with a reason */
    char src[300];
    snprintf(src, sizeof src, "%s/src.csv", dir);
    PR_CHECK(run_polyrope(logp, (char *[]){"sweep", "factorise", "--size", "tiny", "--out", src, "--quiet", 0}) == 0,
             "tiny sweep for the mutations");
    size_t n;
    char *base = slurp(src, &n), *m = malloc(n + 64);
    static const char alphabet[] = {',', '\n', '\r', '#', '"', 0, 'x', '1', ' ', '\xff'};
    for (int trial = 0; base && trial < 400; trial++) {
        size_t len = n;
        memcpy(m, base, n);
        int edits = 1 + trial % 4;
        for (int e = 0; e < edits; e++) {
            size_t at = (size_t)pr_rng_range(rng, 0, (double)len);
            int kind = (int)pr_rng_range(rng, 0, 3);
            char c = alphabet[(int)pr_rng_range(rng, 0, sizeof alphabet)];
            if (kind == 0 && at < len)
                m[at] = c; /* replace */
            else if (kind == 1 && len < n + 60) {
                memmove(m + at + 1, m + at, len - at), m[at] = c, len++; /* insert */
            } else if (at < len) {
                memmove(m + at, m + at + 1, len - at - 1), len--; /* delete */
            }
        }
        if (trial % 50 == 49)
            len = (size_t)pr_rng_range(rng, 0, (double)len); /* truncate */
        int st = read_status(path, m, len, err, sizeof err, &t);
        PR_CHECK(st == PR_OK || (st == PR_EINVAL && err[0]), "mutation %d: status %d err '%s'", trial, st, err);
        if (!st)
            csv_invariants(&t, "mutation");
        pr_csv_clear(&t);
    }
    free(base), free(m);
}

/* ---- resume ---- */

static const char *grid = "n=8,16;d=2,4;B=1;pos=rope,general;seed=1";

/* the reference file with its data line `line` (1-based among data rows, 0: none) replaced by
 * `repl` and `extra` appended (NULL: nothing) */
static void doctored(const char *out, const char *ref, int line, const char *repl, const char *extra)
{
    char *text = slurp(ref, 0);
    FILE *f = fopen(out, "w");
    int data = -1; /* the header row is data line 0 */
    for (char *save = 0, *l = strtok_r(text, "\n", &save); l; l = strtok_r(0, "\n", &save)) {
        data += l[0] != '#';
        fprintf(f, "%s\n", data == line && line > 0 ? repl : l);
    }
    if (extra)
        fputs(extra, f);
    fclose(f);
    free(text);
}

static void check_resume(void)
{
    char ref[300], out[300];
    snprintf(ref, sizeof ref, "%s/ref.csv", dir);
    snprintf(out, sizeof out, "%s/res.csv", dir);
    PR_CHECK(run_polyrope(logp, (char *[]){"sweep", "factorise", "--grid", (char *)grid, "--out", ref, "--quiet", 0}) == 0,
             "reference sweep");
    char **rows, *buf;
    int nl, nr = data_rows(&rows, &buf, ref, &nl);
    PR_CHECK(nr == 8, "reference rows %d", nr);
    if (nr != 8)
        return;
    char *hdr = slurp(ref, 0), *h = hdr ? strstr(hdr, "\nidx,key") : 0;
    if (h)
        *strchr(h + 1, '\n') = 0;
    char l2[512], l5[512], h2[512];
    snprintf(l2, sizeof l2, "%s\n", rows[1]);
    snprintf(h2, sizeof h2, "%s\n", h ? h + 1 : "");
    snprintf(l5, sizeof l5, "%s", rows[4]);
    /* data lines 1-3 are kept as they are; each case breaks one thing */
    const struct {
        int line;
        const char *repl, *extra, *says;
    } cases[] = {
        {0, 0, l2, "repeats idx 1"},                                             /* a duplicated row */
        {0, 0, h2, "a second header row"},                           /* a second header */
        {2, "1,n=8;d=2;B=1;pos=rope;seed=1,8,2,1,rope,1,ok,1,1,1,1", 0, "is not that of idx 1"}, /* a bogus key */
        {2, "99,n=8;d=2;B=1;pos=rope;seed=1,8,2,1,rope,1,ok,1,1,1,1", 0, "idx '99' is not one of 0..7"},
        {2, "-1,n=8;d=2;B=1;pos=rope;seed=1,8,2,1,rope,1,ok,1,1,1,1", 0, "idx '-1'"},
        {2, "x1,n=8;d=2;B=1;pos=rope;seed=1,8,2,1,rope,1,ok,1,1,1,1", 0, "idx 'x1'"},
        {2, "1,n=8;d=2;B=1;pos=general;seed=1,8,4,1,general,1,ok,1,1,1,1", 0, "d is '4', not that of idx 1"},
        {2, "1,n=8;d=2;B=1;pos=general;seed=1,8,2,1,general,1,fine,1,1,1,1", 0, "status 'fine'"},
        {2, "1,n=8;d=2;B=1;pos=general;seed=1,8,2,1,general,1,ok,1,one,1,1", 0, "output 2 'one' is not a number"},
        {2, "1,n=8;d=2;B=1;pos=general;seed=1,8,2,1,general,1,invalid argument,1,nan,nan,nan", 0, "not nan"},
        {2, "1,n=8;d=2;B=1;pos=general;seed=1,8,2,1,general,1,ok,1,1,1", 0, "fewer fields"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        doctored(out, ref, cases[i].line, cases[i].repl, cases[i].extra);
        /* keep only the header and data lines 1..3 (+ the doctored extra) */
        char *before = slurp(out, 0);
        expect(2, cases[i].says, (char *[]){"sweep", "factorise", "--grid", (char *)grid, "--out", out, "--resume", 0},
               cases[i].says);
        char *after = slurp(out, 0);
        PR_CHECK(before && after && !strcmp(before, after), "a refused resume changed %s (%s)", out, cases[i].says);
        free(before), free(after);
        unlink(out);
    }
    /* the lines are named: after c comment lines and the header, idx 1 is line c + 3 */
    int c = 0;
    for (char *s = hdr; s && *s == '#'; s = strchr(s, '\n') + 1)
        c++;
    char says[64];
    snprintf(says, sizeof says, "line %d repeats idx 1 of line %d", c + 10, c + 3);
    doctored(out, ref, 0, 0, l2);
    expect(2, says, (char *[]){"sweep", "factorise", "--grid", (char *)grid, "--out", out, "--resume", 0}, "line numbers");
    /* a row of another shard */
    char sh[300];
    snprintf(sh, sizeof sh, "%s/sh.csv", dir);
    PR_CHECK(run_polyrope(logp, (char *[]){"sweep", "factorise", "--grid", (char *)grid, "--shard", "1/2", "--out", sh,
                                           "--quiet", 0}) == 0, "shard 1/2");
    FILE *f = fopen(sh, "a");
    fprintf(f, "%s\n", rows[1]);
    fclose(f);
    expect(2, "idx 1 is not in shard 1/2", (char *[]){"sweep", "factorise", "--grid", (char *)grid, "--shard", "1/2",
                                                      "--out", sh, "--resume", 0}, "a row of another shard");
    /* a valid partial file resumes to the reference rows */
    doctored(out, ref, 0, 0, 0);
    char *text = slurp(out, 0), *cut = text ? strstr(text, l5) : 0;
    if (cut) {
        write_file(out, text, (size_t)(cut - text));
        expect(0, "", (char *[]){"sweep", "factorise", "--grid", (char *)grid, "--out", out, "--resume", "--quiet", 0},
               "a valid resume");
        char *a = slurp(out, 0), *b = slurp(ref, 0);
        char *da = a ? strstr(a, "\nidx,") : 0, *db = b ? strstr(b, "\nidx,") : 0;
        PR_CHECK(da && db && !strcmp(da, db), "resumed rows differ from the reference");
        free(a), free(b);
    }
    free(text);
    free(rows), free(buf), free(hdr);
}

/* ---- merge ---- */

static void check_merge(void)
{
    char p[4][300], q[300], m[300], bad[300], sub[300], tiny[300];
    for (int k = 0; k < 3; k++) {
        char s[8];
        snprintf(p[k], sizeof p[k], "%s/p%d.csv", dir, k + 1);
        snprintf(s, sizeof s, "%d/3", k + 1);
        PR_CHECK(run_polyrope(logp, (char *[]){"sweep", "factorise", "--grid", (char *)grid, "--shard", s, "--out", p[k],
                                               "--quiet", 0}) == 0, "shard %s", s);
    }
    snprintf(q, sizeof q, "%s/q1.csv", dir);
    snprintf(m, sizeof m, "%s/merged.csv", dir);
    snprintf(bad, sizeof bad, "%s/bad.csv", dir);
    snprintf(sub, sizeof sub, "%s/sub", dir);
    snprintf(tiny, sizeof tiny, "%s/tiny.csv", dir);
    PR_CHECK(run_polyrope(logp, (char *[]){"sweep", "factorise", "--grid", (char *)grid, "--shard", "1/4", "--out", q,
                                           "--quiet", 0}) == 0, "shard 1/4");
    PR_CHECK(run_polyrope(logp, (char *[]){"sweep", "factorise", "--size", "tiny", "--shard", "2/3", "--out", tiny,
                                           "--quiet", 0}) == 0, "tiny shard 2/3");
    expect(2, "shard 3/3 is missing", (char *[]){"sweep", "--merge", m, p[0], p[1], 0}, "a missing shard");
    expect(2, "shard 1/3 is missing", (char *[]){"sweep", "--merge", m, p[1], p[2], p[2], 0}, "shard 1 missing, 3 twice");
    expect(2, "is shard 1/4", (char *[]){"sweep", "--merge", m, p[0], p[1], p[2], q, 0}, "mixed shard counts");
    expect(2, "different sweeps", (char *[]){"sweep", "--merge", m, p[0], tiny, p[2], 0}, "shards of different grids");
    /* an unfinished shard: its last row cut */
    char *text = slurp(p[1], 0);
    size_t len = strlen(text);
    char *last = text + len - 2;
    while (last > text && *last != '\n')
        last--;
    write_file(bad, text, (size_t)(last - text + 1));
    expect(2, "has 2 of its 3 rows", (char *[]){"sweep", "--merge", m, p[0], bad, p[2], 0}, "an unfinished shard");
    /* a junk row in an input */
    write_file(bad, text, len);
    FILE *f = fopen(bad, "a");
    fputs("4,n=8;d=2;B=1;pos=rope;seed=1,8,2,1,rope,1,ok,1,1,1,1\n", f);
    fclose(f);
    expect(2, "is not that of idx 4", (char *[]){"sweep", "--merge", m, p[0], bad, p[2], 0}, "a bogus key in a shard");
    free(text);
    /* usage: paths and arguments */
    expect(2, "'factorise' is a preset, not a CSV", (char *[]){"sweep", "factorise", "--merge", m, p[0], p[1], p[2], 0},
           "a preset before --merge");
    expect(2, "does not take --grid", (char *[]){"sweep", "--merge", m, "--grid", "n=8", p[0], p[1], p[2], 0},
           "--merge with --grid");
    expect(2, "is also an input", (char *[]){"sweep", "--merge", p[0], p[0], p[1], p[2], 0}, "out is an input");
    expect(2, "is empty", (char *[]){"sweep", "--merge", "", p[0], p[1], p[2], 0}, "--merge ''");
    expect(2, "is a directory", (char *[]){"sweep", "--merge", sub, p[0], p[1], p[2], 0}, "--merge DIR");
    char nodir[300];
    snprintf(nodir, sizeof nodir, "%s/nodir/m.csv", dir);
    expect(2, "cannot write", (char *[]){"sweep", "--merge", nodir, p[0], p[1], p[2], 0}, "--merge in no folder");
    PR_CHECK(!exists(m), "a refused merge wrote %s", m);
    /* nothing else was left in the folder (no temporary files) */
    char cmd[600];
    snprintf(cmd, sizeof cmd, "ls '%s' | grep -q tmp", dir);
    PR_CHECK(system(cmd) != 0, "a refused merge left a temporary file in %s", dir);
    /* the complete set merges, a shard given twice is kept once */
    expect(0, "", (char *[]){"sweep", "--merge", m, p[2], p[0], p[1], p[0], 0}, "a complete merge");
    PR_CHECK(exists(m), "no merged file");
}

int main(void)
{
    pr_rng_t rng;
    pr_rng_init(rng, pr_test_seed("test_sweep_input", 12));
    if (!mkdtemp(dir))
        return 1;
    snprintf(logp, sizeof logp, "%s/log.txt", dir);
    check_domains();
    check_budget(rng);
    check_rounding();
    check_paths();
    check_csv(rng);
    check_resume();
    check_merge();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (!pr_test_failed_count && system(cmd))
        return 1;
    return pr_test_finish("test_sweep_input");
}
