#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "pr_status.h"
#include "pr_expoly.h"

#define U_ROUND (DBL_EPSILON / 2)

static const char *const kind_names[] = {"taylor", "chebyshev", "minimax"};
static const char *const setting_names[] = {"exp-rel", "exp-abs", "expneg-abs"};

const char *pr_expoly_kind_name(pr_expoly_kind_t kind)
{
    return (unsigned)kind < 3 ? kind_names[kind] : "unknown";
}

const char *pr_expoly_setting_name(pr_expoly_setting_t setting)
{
    return (unsigned)setting < 3 ? setting_names[setting] : "unknown";
}

static int parse_name(int *out, const char *const *names, const char *name)
{
    for (int k = 0; name && k < 3; k++)
        if (!strcmp(names[k], name)) {
            *out = k;
            return PR_OK;
        }
    return PR_EINVAL;
}

int pr_expoly_kind_parse(pr_expoly_kind_t *kind, const char *name)
{
    int k, st = parse_name(&k, kind_names, name);
    if (!st)
        *kind = (pr_expoly_kind_t)k;
    return st;
}

int pr_expoly_setting_parse(pr_expoly_setting_t *setting, const char *name)
{
    int k, st = parse_name(&k, setting_names, name);
    if (!st)
        *setting = (pr_expoly_setting_t)k;
    return st;
}

void pr_expoly_interval(double *lo, double *hi, pr_expoly_setting_t setting, double R)
{
    *lo = setting == PR_EXPOLY_EXP_REL ? -R : 0.0;
    *hi = R;
}

void pr_expoly_init(pr_expoly_t p)
{
    memset(p, 0, sizeof *p);
}

void pr_expoly_clear(pr_expoly_t p)
{
    free(p->c);
    free(p->cheb);
    memset(p, 0, sizeof *p);
}

double pr_expoly_horner(const double *c, int g, double x)
{
    double y = c[g];
    for (int k = g - 1; k >= 0; k--)
        y = y * x + c[k];
    return y;
}

double pr_expoly_clenshaw(const double *a, int g, double t)
{
    double b1 = 0, b2 = 0;
    for (int k = g; k >= 1; k--) {
        double b0 = 2 * t * b1 - b2 + a[k];
        b2 = b1;
        b1 = b0;
    }
    return t * b1 - b2 + a[0];
}

double pr_expoly_eval(const pr_expoly_t p, double x)
{
    return pr_expoly_horner(p->c, p->degree, x);
}

double pr_expoly_eval_cheb(const pr_expoly_t p, double x)
{
    double t = (2 * x - p->lo - p->hi) / (p->hi - p->lo);
    return pr_expoly_clenshaw(p->cheb, p->degree, t);
}

double pr_expoly_err_at(pr_expoly_setting_t setting, double x, double y)
{
    switch (setting) {
    case PR_EXPOLY_EXP_REL: return y * exp(-x) - 1;
    case PR_EXPOLY_EXP_ABS: return y - exp(x);
    default: return y - exp(-x);
    }
}

/* F1: the derivation is in pr_expoly.h */
double pr_expoly_floor(const double *c, int g, double R, double eps_A)
{
    double S = 0;
    for (int k = g; k >= 0; k--)
        S = S * R + fabs(c[k]);
    return U_ROUND * S * exp(R) / (1 - eps_A);
}

double pr_expoly_floor_taylor(double R, int g)
{
    /* S = Σ_{k<=g} R^k/k!, summed by Horner in the nested form 1 + R(1 + R/2(1 + R/3(...))) */
    double S = 1;
    for (int k = g; k >= 1; k--)
        S = 1 + S * R / k;
    return U_ROUND * S * exp(R);
}

/* C7, C8: the Aggarwal–Alman degree formulas (constants fitted by the experiments) */
static double aa22_second(double L, double l)
{
    return l / log(fmax(M_E, l / L));
}

double pr_expoly_aa22(double L, double delta)
{
    if (!(L > 0) || !(delta > 0 && delta < 1) || !isfinite(L))
        return NAN;
    return fmax(L, aa22_second(L, -log(delta)));
}

double pr_expoly_aa22_neg(double L, double delta)
{
    if (!(L > 0) || !(delta > 0 && delta < 1) || !isfinite(L))
        return NAN;
    double l = -log(delta);
    return fmax(sqrt(L * l), aa22_second(L, l));
}

double pr_expoly_aa22_setting(pr_expoly_setting_t setting, double R, double eps)
{
    switch (setting) {
    case PR_EXPOLY_EXP_REL: return pr_expoly_aa22(2 * R, eps);
    case PR_EXPOLY_EXP_ABS: return pr_expoly_aa22(R, eps);
    default: return pr_expoly_aa22_neg(R, eps);
    }
}

/* ---- the weighted error on t ∈ [-1, 1] of a polynomial in its primary representation ---- */

typedef struct {
    pr_expoly_setting_t setting;
    double mid, rad;      /* x = mid + rad t */
    int g;
    const double *coef;   /* Chebyshev coefficients in t, or monomials in y = x - mid (Taylor) */
    int monomial;
} werr_t;

static double werr(const werr_t *w, double t)
{
    double x = w->mid + w->rad * t;
    double y = w->monomial ? pr_expoly_horner(w->coef, w->g, w->rad * t) : pr_expoly_clenshaw(w->coef, w->g, t);
    return pr_expoly_err_at(w->setting, x, y);
}

/* golden-section search for max |e| on [a, b] (|e| unimodal there, to the sample's resolution) */
static double refine_max(const werr_t *w, double a, double b, double *tbest)
{
    const double r = 0.6180339887498949;
    double c = b - r * (b - a), d = a + r * (b - a);
    double fc = fabs(werr(w, c)), fd = fabs(werr(w, d));
    for (int it = 0; it < 40 && b - a > 1e-15; it++) {
        if (fc >= fd) {
            b = d; d = c; fd = fc;
            c = b - r * (b - a);
            fc = fabs(werr(w, c));
        } else {
            a = c; c = d; fc = fd;
            d = a + r * (b - a);
            fd = fabs(werr(w, d));
        }
    }
    *tbest = fc >= fd ? c : d;
    return fmax(fc, fd);
}

/* Local extrema of e over [-1, 1]: sample at N Chebyshev-distributed points, refine each local
 * maximum of |e| inside its bracket. Writes at most cap points (t, e(t)) in order, returns count. */
static int extrema(const werr_t *w, double *te, double *ee, int cap)
{
    int N = 16 * (w->g + 2) + 32, m = 0;
    double *ts = malloc(sizeof(double) * N), *es = malloc(sizeof(double) * N);
    if (!ts || !es) {
        free(ts); free(es);
        return -1;
    }
    for (int j = 0; j < N; j++) {
        ts[j] = -cos(M_PI * j / (N - 1));
        es[j] = werr(w, ts[j]);
    }
    for (int j = 0; j < N && m < cap; j++) {
        double a = fabs(es[j]);
        int left = j == 0 || a >= fabs(es[j - 1]), right = j == N - 1 || a >= fabs(es[j + 1]);
        if (!left || !right)
            continue;
        double t = ts[j];
        if (j > 0 && j < N - 1)
            refine_max(w, ts[j - 1], ts[j + 1], &t);
        double e = werr(w, t);
        if (fabs(e) < a) {
            t = ts[j];
            e = es[j];
        }
        te[m] = t;
        ee[m++] = e;
    }
    free(ts); free(es);
    return m;
}

static double max_abs_err(const werr_t *w)
{
    int cap = 16 * (w->g + 2) + 32;
    double *te = malloc(sizeof(double) * cap), *ee = malloc(sizeof(double) * cap), mx = NAN;
    if (te && ee) {
        int m = extrema(w, te, ee, cap);
        mx = 0;
        for (int i = 0; i < m; i++)
            mx = fmax(mx, fabs(ee[i]));
    }
    free(te); free(ee);
    return mx;
}

static double fval(pr_expoly_setting_t setting, double x)
{
    return setting == PR_EXPOLY_EXPNEG_ABS ? exp(-x) : exp(x);
}

/* Chebyshev interpolant at first-kind nodes: a_k = (2/(g+1)) Σ_j f(x_j) cos(πk(j+½)/(g+1)), a_0 halved */
static void cheb_interp(double *a, int g, pr_expoly_setting_t setting, double mid, double rad)
{
    int n = g + 1;
    for (int k = 0; k <= g; k++) {
        double s = 0;
        for (int j = 0; j < n; j++)
            s += fval(setting, mid + rad * cos(M_PI * (j + 0.5) / n)) * cos(M_PI * k * (j + 0.5) / n);
        a[k] = s * 2.0 / n;
    }
    a[0] /= 2;
}

/* Gaussian elimination with partial pivoting, A (n×n row-major) x = b in place; -1 if singular */
static int solve(double *A, double *b, int n)
{
    for (int c = 0; c < n; c++) {
        int piv = c;
        for (int r = c + 1; r < n; r++)
            if (fabs(A[r * n + c]) > fabs(A[piv * n + c]))
                piv = r;
        if (A[piv * n + c] == 0)
            return -1;
        if (piv != c) {
            for (int k = 0; k < n; k++) {
                double tmp = A[c * n + k]; A[c * n + k] = A[piv * n + k]; A[piv * n + k] = tmp;
            }
            double tmp = b[c]; b[c] = b[piv]; b[piv] = tmp;
        }
        for (int r = c + 1; r < n; r++) {
            double f = A[r * n + c] / A[c * n + c];
            for (int k = c; k < n; k++)
                A[r * n + k] -= f * A[c * n + k];
            b[r] -= f * b[c];
        }
    }
    for (int r = n - 1; r >= 0; r--) {
        double s = b[r];
        for (int k = r + 1; k < n; k++)
            s -= A[r * n + k] * b[k];
        b[r] = s / A[r * n + r];
    }
    return 0;
}

/* Remez exchange for the weighted error (relative: w = 1/f; additive: w = 1), in the Chebyshev
 * basis on t. Starts from the Chebyshev extrema, stops when the levelled error's extrema agree
 * to 1e-6 relative; keeps the iterate with the smallest max error. a[0..g] in/out. */
static int remez(double *a, int g, pr_expoly_setting_t setting, double mid, double rad)
{
    int n = g + 2, cap = 17 * (g + 2) + 32, st = PR_ENOMEM;
    double *A = malloc(sizeof(double) * n * n), *b = malloc(sizeof(double) * n);
    double *ref = malloc(sizeof(double) * n), *best = malloc(sizeof(double) * (g + 1));
    double *te = malloc(sizeof(double) * cap), *ee = malloc(sizeof(double) * cap);
    double *ts = malloc(sizeof(double) * cap), *es = malloc(sizeof(double) * cap);
    if (!A || !b || !ref || !best || !te || !ee || !ts || !es)
        goto done;
    werr_t w = {setting, mid, rad, g, a, 0};
    double best_err = max_abs_err(&w);
    memcpy(best, a, sizeof(double) * (g + 1));
    /* first reference: quantiles of the equilibrium density ∝ (1 - α t)/√(1 - t²) of the
     * weighted problem (α ≈ R/g for the relative error, 0 otherwise: the Chebyshev extrema);
     * see pr_certexp.c, which runs the same exchange in Arb */
    double alpha = setting == PR_EXPOLY_EXP_REL && g > 0 ? fmin(rad / g, 0.95) : 0;
    for (int i = 0; i < n; i++) {
        double u = M_PI * i / (n - 1), th = u;
        for (int s = 0; s < 50; s++)
            th -= (th + alpha * sin(th) - u) / (1 + alpha * cos(th));
        ref[i] = i == 0 ? -1 : i == n - 1 ? 1 : -cos(th);
    }
    st = PR_OK;
    for (int it = 0; it < 40; it++) {
        for (int i = 0; i < n; i++) {
            double t = ref[i], x = mid + rad * t, f = fval(setting, x);
            double Tm = 1, Tc = t;
            A[i * n] = 1;
            if (g >= 1)
                A[i * n + 1] = t;
            for (int k = 2; k <= g; k++) {
                double Tn = 2 * t * Tc - Tm;
                A[i * n + k] = Tn;
                Tm = Tc;
                Tc = Tn;
            }
            /* P(t_i) - f(t_i) = (-1)^i E / w(t_i) */
            A[i * n + g + 1] = (i % 2 ? 1.0 : -1.0) * (setting == PR_EXPOLY_EXP_REL ? f : 1.0);
            b[i] = f;
        }
        if (solve(A, b, n)) {
            st = best_err < INFINITY ? PR_OK : PR_ECONVERGE;
            break;
        }
        memcpy(a, b, sizeof(double) * (g + 1));
        int m = extrema(&w, te, ee, cap - n);
        if (m < 0) { st = PR_ENOMEM; break; }
        /* merge the old reference in (it alternates by construction, so >= n alternations) */
        for (int i = 0; i < n; i++) {
            int j = m++;
            while (j > 0 && te[j - 1] > ref[i]) {
                te[j] = te[j - 1];
                ee[j] = ee[j - 1];
                j--;
            }
            te[j] = ref[i];
            ee[j] = werr(&w, ref[i]);
        }
        /* keep one extremum per run of equal sign (the largest), then trim the ends to n */
        int k = 0;
        for (int i = 0; i < m; i++) {
            if (k > 0 && (ee[i] > 0) == (es[k - 1] > 0)) {
                if (fabs(ee[i]) > fabs(es[k - 1])) { ts[k - 1] = te[i]; es[k - 1] = ee[i]; }
            } else {
                ts[k] = te[i]; es[k++] = ee[i];
            }
        }
        double mx = 0, mn = INFINITY;
        for (int i = 0; i < k; i++)
            mx = fmax(mx, fabs(es[i]));
        if (mx < best_err) {
            best_err = mx;
            memcpy(best, a, sizeof(double) * (g + 1));
        }
        if (k < n)
            break;   /* fewer alternations than n: the error is at rounding level; keep the best */
        int lo = 0, hi = k - 1;
        while (hi - lo + 1 > n) {
            if (fabs(es[lo]) < fabs(es[hi])) lo++; else hi--;
        }
        for (int i = 0; i < n; i++) {
            ref[i] = ts[lo + i];
            mn = fmin(mn, fabs(es[lo + i]));
        }
        if (mx - mn <= 1e-6 * mx)
            break;
    }
    memcpy(a, best, sizeof(double) * (g + 1));
done:
    free(A); free(b); free(ref); free(best); free(te); free(ee); free(ts); free(es);
    return st;
}

/* Chebyshev coefficients in t -> monomials in t; with aabs, the same recurrence on |a| and the
 * absolute values of the T_k coefficients (the signs of 2tT_k and -T_{k-1} agree termwise). */
static void cheb_to_mono(long double *b, const double *a, int g, int absolute, long double *work)
{
    long double *Tm = work, *Tc = work + (g + 1), *Tn = work + 2 * (g + 1);
    memset(b, 0, sizeof(long double) * (g + 1));
    memset(work, 0, sizeof(long double) * 3 * (g + 1));
    Tm[0] = 1;                       /* T_0 */
    b[0] = absolute ? fabs(a[0]) : a[0];
    if (g == 0)
        return;
    Tc[1] = 1;                       /* T_1 */
    b[1] += absolute ? fabs(a[1]) : a[1];
    for (int k = 2; k <= g; k++) {
        for (int j = 0; j <= k; j++) {
            long double up = j > 0 ? 2 * Tc[j - 1] : 0;
            Tn[j] = absolute ? up + Tm[j] : up - Tm[j];
        }
        long double ak = absolute ? fabs(a[k]) : a[k];
        for (int j = 0; j <= k; j++)
            b[j] += ak * Tn[j];
        long double *tmp = Tm; Tm = Tc; Tc = Tn; Tn = tmp;
    }
}

/* monomials in t -> Chebyshev coefficients (t^k = 2^{1-k} Σ C(k, j) T_{k-2j}, halved for T_0) */
static void mono_to_cheb(double *a, const long double *b, int g, long double *work)
{
    /* build iteratively: multiply the Chebyshev series of t^{k-1} by t (t T_j = (T_{j+1} + T_{|j-1|})/2) */
    long double *pw = work, *nx = work + (g + 1), *acc = work + 2 * (g + 1);
    memset(work, 0, sizeof(long double) * 3 * (g + 1));
    pw[0] = 1;
    acc[0] = b[0];
    for (int k = 1; k <= g; k++) {
        memset(nx, 0, sizeof(long double) * (g + 1));
        for (int j = 0; j < k; j++) {
            nx[j + 1] += j == 0 ? pw[0] : pw[j] / 2;
            if (j > 0)
                nx[j - 1] += pw[j] / 2;
        }
        memcpy(pw, nx, sizeof(long double) * (g + 1));
        for (int j = 0; j <= k; j++)
            acc[j] += b[k] * pw[j];
    }
    for (int j = 0; j <= g; j++)
        a[j] = (double)acc[j];
}

/* Σ d_k (x - mid)^k -> Σ c_j x^j by repeated synthetic division (Taylor shift by -mid) */
static void shift(long double *c, const long double *d, int g, long double mid)
{
    memcpy(c, d, sizeof(long double) * (g + 1));
    if (mid == 0)
        return;
    for (int i = 0; i < g; i++)
        for (int j = g - 1; j >= i; j--)
            c[j] -= mid * c[j + 1];
}

static int validate(pr_expoly_kind_t kind, pr_expoly_setting_t setting, double R, int g)
{
    if ((unsigned)kind > 2 || (unsigned)setting > 2)
        return PR_EINVAL;
    if (!(R > 0) || !isfinite(R) || g < 0 || g > PR_EXPOLY_MAX_DEGREE)
        return PR_EINVAL;
    return PR_OK;
}

int pr_expoly_fit(pr_expoly_t p, pr_expoly_kind_t kind, pr_expoly_setting_t setting, double R, int g)
{
    int st = validate(kind, setting, R, g);
    if (st)
        return st;
    pr_expoly_clear(p);
    p->kind = kind;
    p->setting = setting;
    p->R = R;
    p->degree = g;
    pr_expoly_interval(&p->lo, &p->hi, setting, R);
    double mid = (p->lo + p->hi) / 2, rad = (p->hi - p->lo) / 2;
    int n = g + 1;
    p->c = malloc(sizeof(double) * n);
    p->cheb = malloc(sizeof(double) * n);
    /* the basis conversions run in long double: only the final rounding to double is at u */
    long double *d = malloc(sizeof(long double) * n), *dabs = malloc(sizeof(long double) * n);
    long double *cl = malloc(sizeof(long double) * n), *cabs = malloc(sizeof(long double) * n);
    long double *work = malloc(sizeof(long double) * 3 * n);
    if (!p->c || !p->cheb || !d || !dabs || !cl || !cabs || !work) {
        st = PR_ENOMEM;
        goto done;
    }
    werr_t w = {setting, mid, rad, g, p->cheb, 0};
    double *dd = p->c;   /* Taylor's y-monomials in double, for the eps_A sample, until c is written */
    if (kind == PR_EXPOLY_TAYLOR) {
        /* d_k = f(mid) s^k / k! in y = x - mid; the Chebyshev form of Σ d_k (rad t)^k for Clenshaw */
        long double s = setting == PR_EXPOLY_EXPNEG_ABS ? -1 : 1, rk = 1;
        d[0] = fval(setting, mid);
        for (int k = 1; k <= g; k++)
            d[k] = d[k - 1] * s / k;
        for (int k = 0; k <= g; k++, rk *= rad) {
            cl[k] = d[k] * rk;
            dabs[k] = fabsl(d[k]) * (k + 2);   /* exp(mid) and k divisions */
            dd[k] = (double)d[k];
        }
        mono_to_cheb(p->cheb, cl, g, work);
        w.coef = dd;
        w.monomial = 1;
    } else {
        cheb_interp(p->cheb, g, setting, mid, rad);
        if (kind == PR_EXPOLY_MINIMAX && (st = remez(p->cheb, g, setting, mid, rad)))
            goto done;
        long double rk = 1;
        cheb_to_mono(d, p->cheb, g, 0, work);
        cheb_to_mono(dabs, p->cheb, g, 1, work);
        for (int k = 0; k <= g; k++, rk *= rad) {
            d[k] /= rk;
            dabs[k] = dabs[k] / rk * (g + 2);   /* ≈ g+1 rounded additions per coefficient */
        }
    }
    p->eps_A = max_abs_err(&w);
    shift(cl, d, g, mid);
    /* abs version of the shift: Σ |d_k| (x + |mid|)^k, times the shift's own g roundings */
    shift(cabs, dabs, g, -fabsl(mid));
    double X = fmax(fabs(p->lo), fabs(p->hi)), wmax = setting == PR_EXPOLY_EXP_REL ? exp(R) : 1;
    long double ld_err = 0, rnd = 0;
    for (int k = g; k >= 0; k--) {
        p->c[k] = (double)cl[k];
        ld_err = ld_err * X + cabs[k];
        rnd = rnd * X + fabs(p->c[k]);
    }
    /* long double work at LDBL_EPSILON/2 per operation, then one rounding to double per c_k */
    p->conv_err = wmax * (double)((mid != 0 ? g + 1 : 1) * (LDBL_EPSILON / 2) * ld_err + U_ROUND * rnd);
    p->floor = pr_expoly_floor(p->c, g, X, fmin(p->eps_A, 0.5));
    if (setting != PR_EXPOLY_EXP_REL)
        p->floor *= exp(-X);
    if (!(p->eps_A >= 0) || !(p->conv_err <= 1e-3))
        st = PR_EDOMAIN;
done:
    free(d); free(dabs); free(cl); free(cabs); free(work);
    if (st)
        pr_expoly_clear(p);
    return st;
}

int pr_expoly_fit_eps(pr_expoly_t p, pr_expoly_kind_t kind, pr_expoly_setting_t setting, double R,
                      double eps)
{
    int st = validate(kind, setting, R, 0);
    if (st || !(eps > 0 && eps < 1))
        return PR_EINVAL;
    /* scan upward with the cheap constructions; minimax then steps down from Chebyshev's degree */
    pr_expoly_kind_t scan = kind == PR_EXPOLY_MINIMAX ? PR_EXPOLY_CHEBYSHEV : kind;
    int g;
    for (g = 0; g <= PR_EXPOLY_MAX_DEGREE; g++) {
        if ((st = pr_expoly_fit(p, scan, setting, R, g)))
            return st;
        if (p->conv_err > eps / 4) {
            pr_expoly_clear(p);
            return PR_EDOMAIN;
        }
        if (p->eps_A + p->conv_err <= eps)
            break;
    }
    if (g > PR_EXPOLY_MAX_DEGREE) {
        pr_expoly_clear(p);
        return PR_EDOMAIN;
    }
    if (kind != PR_EXPOLY_MINIMAX)
        return PR_OK;
    pr_expoly_t q;
    pr_expoly_init(q);
    int best = -1;
    for (int h = g; h >= 0; h--) {
        if ((st = pr_expoly_fit(q, PR_EXPOLY_MINIMAX, setting, R, h)) && st != PR_EDOMAIN)
            break;
        if (st || q->eps_A + q->conv_err > eps)
            break;
        best = h;
        pr_expoly_clear(p);
        *p = *q;
        pr_expoly_init(q);
    }
    pr_expoly_clear(q);
    if (best < 0) {
        /* minimax at Chebyshev's degree missed the criterion (rounding): fall back upward */
        for (int h = g + 1; h <= PR_EXPOLY_MAX_DEGREE; h++) {
            if ((st = pr_expoly_fit(p, PR_EXPOLY_MINIMAX, setting, R, h)))
                return st;
            if (p->eps_A + p->conv_err <= eps)
                return PR_OK;
        }
        pr_expoly_clear(p);
        return PR_EDOMAIN;
    }
    return PR_OK;
}
