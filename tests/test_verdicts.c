/* The verdict of every preset (presets.c) on CSVs built here: a complete, good CSV passes (so
 * each test below can fail), and no CSV whose evidence is missing or undecidable passes: a row
 * with an error status, a missing row, column or '# configurations:' line, a repeated idx (all
 * "not run"), NaN or inf/inf values, too few sizes, a NaN slope (inconclusive), and wrong values
 * hidden behind a long detail line (failed). Values are drawn from the printed seed. */
#include <math.h>
#include <stdarg.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include "polyrope.h"
#include "pr_test.h"
#include "../experiments/sweep.h"

static pr_rng_t rng;
static char dir[] = "/tmp/pr_verdicts_XXXXXX";
static char last_detail[512];

/* ---- building CSVs as polyrope sweep writes them ---- */

typedef struct {
    char *text;
    size_t len;
    FILE *f;
    long idx;
} csv_t;

static void csv_begin(csv_t *c, const char *preset, long nconf, const char *axes, const char *cols)
{
    c->text = 0, c->len = 0, c->idx = 0;
    c->f = open_memstream(&c->text, &c->len);
    fprintf(c->f, "# polyrope sweep: a self-describing CSV (lines starting with # are comments)\n# preset: %s\n"
                  "# configurations: %ld\nidx,key,%s,status,%s\n",
            preset, nconf, axes, cols);
}

/* one row: key "a=1;b=2" (its values are the axis columns), status, outputs (printf format) */
static void csv_row(csv_t *c, const char *key, const char *status, const char *fmt, ...)
{
    fprintf(c->f, "%ld,%s,", c->idx++, key);
    for (const char *k = key; *k;) {
        const char *eq = strchr(k, '='), *end = strchr(k, ';');
        size_t n = end ? (size_t)(end - eq - 1) : strlen(eq + 1);
        fprintf(c->f, "%.*s,", (int)n, eq + 1);
        k = end ? end + 1 : eq + 1 + n;
    }
    fprintf(c->f, "%s,", status);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(c->f, fmt, ap);
    va_end(ap);
    fputc('\n', c->f);
}

static char *csv_end(csv_t *c)
{
    fclose(c->f);
    return c->text;
}

/* text with the first `from` after the start of data row `row` (-1: anywhere) replaced by `to` */
static char *subst(const char *text, long row, const char *from, const char *to)
{
    const char *start = text;
    if (row >= 0) {
        start = strstr(text, "\nidx,");
        for (long r = 0; start && r <= row; r++)
            start = strchr(start + 1, '\n');
        start = start ? start + 1 : text + strlen(text);
    }
    const char *at = strstr(start, from);
    PR_CHECK(at != 0, "test bug: no '%s' in row %ld", from, row);
    if (!at)
        return strdup(text);
    size_t pre = (size_t)(at - text);
    char *out = malloc(strlen(text) + strlen(to) + 1);
    memcpy(out, text, pre);
    strcpy(out + pre, to);
    strcat(out, at + strlen(from));
    return out;
}

static long data_rows(const char *text)
{
    long n = -1; /* the header row */
    for (const char *l = text; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : 0)
        n += *l != '#';
    return n;
}

/* the verdict of `claim` by `preset`'s verdict function on the CSV text */
static pr_verdict_t verdict_of(const char *preset, const char *text, const char *claim)
{
    char path[256], err[256];
    snprintf(path, sizeof path, "%s/v.csv", dir);
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) < 0 || fclose(f)) {
        PR_CHECK(0, "cannot write %s", path);
        return PR_VERDICT_PASSED;
    }
    pr_csv_t t;
    if (pr_csv_read(&t, path, 0, err, sizeof err)) {
        PR_CHECK(0, "test bug: %s", err);
        return PR_VERDICT_PASSED;
    }
    const pr_preset_t *p = pr_preset_find(preset);
    pr_claim_result_t res[8];
    memset(res, 0x55, sizeof res); /* no field may be left unset */
    int n = p->verdict(res, &t);
    pr_csv_clear(&t);
    for (int k = 0; k < n; k++) {
        PR_CHECK(memchr(res[k].detail, 0, sizeof res[k].detail) != 0, "%s: detail not terminated", preset);
        if (!strcmp(res[k].claim, claim)) {
            snprintf(last_detail, sizeof last_detail, "%s", res[k].detail);
            return res[k].verdict;
        }
    }
    PR_CHECK(0, "%s gave no verdict for %s", preset, claim);
    return PR_VERDICT_PASSED;
}

static void expect(const char *what, const char *preset, const char *text, const char *claim, pr_verdict_t want)
{
    pr_verdict_t got = verdict_of(preset, text, claim);
    PR_CHECK(got == want, "%s %s (%s): %s, expected %s; detail: %s\n--- CSV:\n%s", preset, claim, what,
             pr_verdict_name(got), pr_verdict_name(want), last_detail, text);
}

/* ---- one good CSV per preset; variant v changes one thing ---- */

static double noise(void) { return pr_rng_range(rng, 0.95, 1.05); }

static char *factorise_csv(const char *rope_err_bound)
{
    csv_t c;
    csv_begin(&c, "factorise", 4, "n,d,B,pos,seed", "R,max_abs_M,err,bound");
    int first = 1;
    for (int n = 8; n <= 16; n *= 2)
        for (int p = 0; p < 2; p++) {
            char key[128];
            snprintf(key, sizeof key, "n=%d;d=2;B=1;pos=%s;seed=1", n, p ? "general" : "rope");
            double R = pr_rng_range(rng, 0.5, 2), m = R * pr_rng_range(rng, 0.1, 1);
            char eb[64];
            snprintf(eb, sizeof eb, "%.17g,1e-14", 1e-14 * pr_rng_range(rng, 0, 0.9));
            csv_row(&c, key, "ok", "%.17g,%.17g,%s", R, m, p ? "nan,nan" : first && rope_err_bound ? rope_err_bound : eb);
            first &= p;
        }
    return csv_end(&c);
}

static char *degree_csv(int uncertified)
{
    csv_t c;
    csv_begin(&c, "degree", 8, "R,eps,fn,poly", "degree,certified,err_bound,aa,double_degree");
    for (int R = 1; R <= 64; R *= 4)
        for (int f = 0; f < 2; f++) {
            char key[128];
            snprintf(key, sizeof key, "R=%d;eps=0.001;fn=%s;poly=chebyshev", R, f ? "expneg-abs" : "exp-abs");
            double aa = 1.2 * R + 1, g = round(1.3 * aa * noise());
            csv_row(&c, key, "ok", "%.0f,%d,1e-4,%.17g,%.0f", g, !(uncertified && R == 16), aa, g);
        }
    return csv_end(&c);
}

enum { ER_GOOD, ER_INFINF, ER_NANGRAD, ER_REFUSED, ER_NOT_APPLICABLE };
static char *error_csv(int v)
{
    csv_t c;
    csv_begin(&c, "error", 4, "n,d,B,eps,pos,algo,poly,seed",
              "degree,terms,R,err_inf,bound,dq_err,dq_bound,dk_err,dk_bound,dv_err,dv_bound");
    int k = 0;
    for (int a = 0; a < 2; a++)
        for (int p = 0; p < 2; p++, k++) {
            char key[160];
            snprintf(key, sizeof key, "n=16;d=2;B=0.5;eps=0.001;pos=%s;algo=%s;poly=chebyshev;seed=1",
                     p ? "general" : "rope", a ? "lowrank" : "fft");
            double e[4], b[4];
            for (int i = 0; i < 4; i++)
                b[i] = pr_rng_range(rng, 1e-4, 1e-3), e[i] = b[i] * pr_rng_range(rng, 0, 0.9);
            if (v == ER_INFINF && k == 2)
                e[0] = b[0] = INFINITY;
            if (v == ER_NANGRAD && k == 1)
                e[2] = NAN;
            /* refused by the error control, or the low-rank path on a general W: no numbers */
            if ((v == ER_REFUSED || v == ER_NOT_APPLICABLE) && k == 3)
                csv_row(&c, key, v == ER_REFUSED ? pr_strerror(PR_EBUDGET) : "ok", "nan,nan,nan,nan,nan,nan,nan,nan,nan,nan,nan");
            else
                csv_row(&c, key, "ok", "3,35,0.3,%.17g,%.17g,%.17g,%.17g,%.17g,%.17g,%.17g,%.17g", e[0], b[0], e[1], b[1],
                        e[2], b[2], e[3], b[3]);
        }
    return csv_end(&c);
}

/* n = 128..8192 (nmax sizes), pos p0..p(npos-1), algo dense and fft; times like n² and n log n,
 * the last fft series like n² when last_quadratic; with nan_time 1 one fft time is NaN, with 2
 * all of the first fft series (a series that does not apply) */
static char *scaling_csv(int nmax, int npos, int last_quadratic, int nan_time)
{
    csv_t c;
    csv_begin(&c, "scaling", (long)nmax * npos * 2, "n,d,B,eps,pos,algo,seed", "degree,terms,time_s,back_time_s,model");
    for (int i = 0, n = 128; i < nmax; i++, n *= 2)
        for (int p = 0; p < npos; p++)
            for (int a = 0; a < 2; a++) {
                char key[160];
                snprintf(key, sizeof key, "n=%d;d=2;B=0.5;eps=0.001;pos=p%02d-a-long-position-name;algo=%s;seed=1", n,
                         p, a ? "fft" : "dense");
                double quad = 1e-9 * n * n, nlogn = 1e-7 * n * log2(n);
                double t = (!a || (last_quadratic && p == npos - 1) ? quad : nlogn) * noise();
                if (nan_time && a && p == 0 && (i == nmax - 2 || nan_time == 2))
                    t = NAN;
                csv_row(&c, key, "ok", "%s,%s,%.17g,%.17g,%.17g", a ? "3" : "nan", a ? "35" : "nan", t, 2 * t * noise(),
                        a ? 35.0 * 3 * n * log2(n) : (double)n * n * 4);
            }
    return csv_end(&c);
}

/* ns values of n, the Bs of bs (count nb); exponent below 1 at the least Bs, above at the
 * largest, except for the last n when last_fails; nan_mid makes one middle exponent NaN; n
 * values are 256 + k, or 1e300·(k+1) when huge_n (too wide for any detail line) */
static char *threshold_csv(int ns, const double *bs, int nb, int last_fails, int nan_mid, int huge_n)
{
    csv_t c;
    csv_begin(&c, "threshold", (long)ns * nb, "n,Bs,seed",
              "d,eps,B,R,degree,terms,exponent,ran,time_s,dense_time_s,floor,lost_bits");
    for (int k = 0; k < ns; k++)
        for (int j = 0; j < nb; j++) {
            char key[400];
            double n = huge_n ? 1e300 * (k + 1) : 256 + k;
            snprintf(key, sizeof key, "n=%.12g;Bs=%.12g;seed=1", n, bs[j]);
            double e = j == 0 ? pr_rng_range(rng, 0.3, 0.9) : j == nb - 1 ? pr_rng_range(rng, 1.1, 2) : pr_rng_range(rng, 0.5, 1.5);
            if (last_fails && k == ns - 1 && j == nb - 1)
                e = 0.8;
            /* the NaN exponent is of a row that ran (one that did not has none: the blow-up) */
            int mid = nan_mid && k == 0 && j == 1, ran = e < 1 || mid;
            char es[32] = "nan";
            if (!mid)
                snprintf(es, sizeof es, "%.17g", e);
            csv_row(&c, key, "ok", "4,%.17g,%.17g,%.17g,3,35,%s,%d,%s,0.01,%.17g,%.17g", 1 / n, bs[j], bs[j] * 2, es, ran,
                    ran ? "0.001" : "nan", 1e-12, 10.0 * bs[j]);
        }
    return csv_end(&c);
}

/* C(m, k) as an exact integer, the oracle of C12's counts */
static double binom(int m, int k)
{
    unsigned long long r = 1;
    for (int i = 1; i <= k; i++)
        r = r * (unsigned long long)(m - k + i) / (unsigned long long)i;
    return (double)r;
}

enum { RG_GOOD, RG_NAN_FEATURES, RG_NAN_DEGREE, RG_WRONG, RG_REFUSED };
static char *rope_general_csv(int v)
{
    csv_t c;
    csv_begin(&c, "rope-vs-general", 4, "n,d,B,eps,seed",
              "degree_lowrank,features,degree_fft,terms,lowrank_time_s,fft_time_s,err_lowrank,bound_lowrank,err_fft,"
              "bound_fft");
    int k = 0;
    for (int d = 2; d <= 4; d += 2)
        for (int e = 2; e <= 4; e += 2, k++) {
            char key[128];
            snprintf(key, sizeof key, "n=32;d=%d;B=0.5;eps=1e-%d;seed=1", d, e);
            int gl = 1 + (int)pr_rng_below(rng, 5), gf = gl + (int)pr_rng_below(rng, 2);
            double f = binom(d + gl, gl), T = binom(2 * d + gf, gf);
            if (v == RG_NAN_FEATURES && k == 1)
                f = NAN;
            if (v == RG_WRONG && k == 3)
                T += 1;
            char gfs[32];
            snprintf(gfs, sizeof gfs, "%d", gf);
            if (v == RG_REFUSED && k == 1) {
                /* a configuration the error control refused has no numbers (reproduce --full has 26) */
                csv_row(&c, key, pr_strerror(PR_EBUDGET), "nan,nan,nan,nan,nan,nan,nan,nan,nan,nan");
                continue;
            }
            csv_row(&c, key, "ok", "%d,%.17g,%s,%.17g,0.001,0.002,1e-5,1e-3,1e-5,1e-3", gl, f,
                    v == RG_NAN_DEGREE && k == 2 ? "nan" : gfs, T);
        }
    return csv_end(&c);
}

/* ---- the checks ---- */

/* every way the evidence can be incomplete makes each claim of the preset "not run" */
static void incomplete_evidence(const char *preset, const char *good, const char *claims)
{
    long rows = data_rows(good);
    long r = (long)pr_rng_below(rng, (uint64_t)rows);
    char conf[64], last_idx[32];
    snprintf(conf, sizeof conf, "# configurations: %ld\n", rows);
    snprintf(last_idx, sizeof last_idx, "%ld,", rows - 1);
    char *bad[6], *what[6] = {"a row with an error status", "the first row with an error status", "a missing row",
                              "no configurations line", "a repeated idx", "no status column"};
    bad[0] = subst(good, r, ",ok,", ",out of memory,");
    bad[1] = subst(good, 0, ",ok,", ",budget exceeded,");
    bad[2] = strdup(good);
    bad[2][strlen(bad[2]) - 1] = 0;
    *strrchr(bad[2], '\n') = 0;
    strcat(bad[2], "\n");
    bad[3] = subst(good, -1, conf, "");
    bad[4] = subst(good, rows - 1, last_idx, "0,");
    bad[5] = subst(good, -1, ",status,", ",state,");
    for (int m = 0; m < 6; m++) {
        for (const char *c = claims; *c;) {
            char id[8];
            size_t n = strcspn(c, " ");
            snprintf(id, sizeof id, "%.*s", (int)n, c);
            c += n + (c[n] == ' ');
            char what_r[96];
            snprintf(what_r, sizeof what_r, m ? "%s" : "%s (row %ld)", what[m], r);
            expect(what_r, preset, bad[m], id, PR_VERDICT_NOT_RUN);
        }
        free(bad[m]);
    }
}

int main(void)
{
    pr_rng_init(rng, pr_test_seed("test_verdicts", 13));
    if (!mkdtemp(dir))
        return 1;
    char *t;

    /* factorise: C11 and C6 as ratios; a rope row's err/bound NaN or inf/inf decides nothing */
    t = factorise_csv(0);
    expect("good", "factorise", t, "C11", PR_VERDICT_PASSED);
    expect("good", "factorise", t, "C6", PR_VERDICT_PASSED);
    incomplete_evidence("factorise", t, "C11 C6");
    free(t);
    t = factorise_csv("inf,inf");
    expect("err = bound = inf", "factorise", t, "C11", PR_VERDICT_INCONCLUSIVE);
    free(t);
    t = factorise_csv("nan,1e-14");
    expect("err NaN, bound finite", "factorise", t, "C11", PR_VERDICT_INCONCLUSIVE);
    free(t);
    t = factorise_csv("2e-14,1e-14");
    expect("err above bound", "factorise", t, "C11", PR_VERDICT_FAILED);
    free(t);

    /* degree: C7 and C8 */
    t = degree_csv(0);
    expect("good", "degree", t, "C7", PR_VERDICT_PASSED);
    expect("good", "degree", t, "C8", PR_VERDICT_PASSED);
    incomplete_evidence("degree", t, "C7 C8");
    free(t);
    t = degree_csv(1);
    expect("a degree not certified", "degree", t, "C7", PR_VERDICT_INCONCLUSIVE);
    free(t);

    /* error: C9 and G4 */
    t = error_csv(ER_GOOD);
    expect("good", "error", t, "C9", PR_VERDICT_PASSED);
    expect("good", "error", t, "G4", PR_VERDICT_PASSED);
    incomplete_evidence("error", t, "C9 G4");
    free(t);
    t = error_csv(ER_INFINF);
    expect("err_inf = bound = inf", "error", t, "C9", PR_VERDICT_INCONCLUSIVE);
    free(t);
    t = error_csv(ER_NANGRAD);
    expect("dk_err NaN", "error", t, "G4", PR_VERDICT_INCONCLUSIVE);
    free(t);
    t = error_csv(ER_NOT_APPLICABLE);
    expect("a row that does not apply", "error", t, "C9", PR_VERDICT_PASSED);
    expect("a row that does not apply", "error", t, "G4", PR_VERDICT_PASSED);
    free(t);
    t = error_csv(ER_REFUSED);
    expect("a row refused by the budget", "error", t, "C9", PR_VERDICT_PASSED);
    PR_CHECK(strstr(last_detail, "1 configurations refused"), "a refused row is not reported: %s", last_detail);
    free(t);

    /* scaling: C5 and G5 from log-log slopes */
    t = scaling_csv(7, 2, 0, 0);
    expect("good", "scaling", t, "C5", PR_VERDICT_PASSED);
    expect("good", "scaling", t, "G5", PR_VERDICT_PASSED);
    incomplete_evidence("scaling", t, "C5 G5");
    free(t);
    t = scaling_csv(2, 2, 0, 0);
    expect("two sizes: NaN slope", "scaling", t, "C5", PR_VERDICT_INCONCLUSIVE);
    free(t);
    t = scaling_csv(7, 2, 0, 1);
    expect("a NaN time in the upper half", "scaling", t, "C5", PR_VERDICT_INCONCLUSIVE);
    free(t);
    t = scaling_csv(7, 2, 0, 2);
    expect("a series that does not apply", "scaling", t, "C5", PR_VERDICT_PASSED);
    free(t);
    t = scaling_csv(7, 12, 1, 0);
    expect("24 series, the last quadratic", "scaling", t, "C5", PR_VERDICT_FAILED);
    free(t);

    /* threshold: C10 (three Bs per n at least), F1 shown only */
    static const double bs3[] = {0.25, 1, 2}, bs2[] = {0.25, 2}, bs4[] = {0.25, 0.5, 1, 2};
    t = threshold_csv(2, bs3, 3, 0, 0, 0);
    expect("good", "threshold", t, "C10", PR_VERDICT_PASSED);
    expect("good", "threshold", t, "F1", PR_VERDICT_INFO);
    incomplete_evidence("threshold", t, "C10 F1");
    free(t);
    t = threshold_csv(2, bs2, 2, 0, 0, 0);
    expect("two Bs per n", "threshold", t, "C10", PR_VERDICT_INCONCLUSIVE);
    free(t);
    t = threshold_csv(2, bs4, 4, 0, 1, 0);
    expect("a NaN exponent", "threshold", t, "C10", PR_VERDICT_INCONCLUSIVE);
    free(t);
    t = threshold_csv(70, bs3, 3, 1, 0, 0);
    expect("70 n, the last without blow-up", "threshold", t, "C10", PR_VERDICT_FAILED);
    free(t);
    t = threshold_csv(3, bs3, 3, 0, 0, 1);
    expect("n too wide for the detail line", "threshold", t, "C10", PR_VERDICT_PASSED);
    free(t);

    /* rope-vs-general: C12 from exact counts */
    t = rope_general_csv(RG_GOOD);
    expect("good", "rope-vs-general", t, "C12", PR_VERDICT_PASSED);
    incomplete_evidence("rope-vs-general", t, "C12");
    free(t);
    t = rope_general_csv(RG_NAN_FEATURES);
    expect("features NaN", "rope-vs-general", t, "C12", PR_VERDICT_INCONCLUSIVE);
    free(t);
    t = rope_general_csv(RG_NAN_DEGREE);
    expect("degree_fft NaN", "rope-vs-general", t, "C12", PR_VERDICT_INCONCLUSIVE);
    free(t);
    t = rope_general_csv(RG_REFUSED);
    expect("a row refused by the budget", "rope-vs-general", t, "C12", PR_VERDICT_PASSED);
    PR_CHECK(strstr(last_detail, "1 configurations refused"), "a refused row is not reported: %s", last_detail);
    free(t);
    t = rope_general_csv(RG_WRONG);
    expect("a term count off by one", "rope-vs-general", t, "C12", PR_VERDICT_FAILED);
    free(t);

    char path[256];
    snprintf(path, sizeof path, "%s/v.csv", dir);
    unlink(path);
    rmdir(dir);
    return pr_test_finish("test_verdicts");
}
