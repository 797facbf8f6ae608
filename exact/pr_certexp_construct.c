/* pr_certexp: the constructions of pr_expoly in Arb (Taylor, Chebyshev interpolation, minimax by
 * Remez exchange), sound for any R since nothing is rounded to double (math.md §8; C7, C8). */
#include <math.h>
#include <stdlib.h>
#include <arb_mat.h>
#include "pr_status.h"
#include "pr_certexp_impl.h"

void pr_certexp_taylor_fmpq(fmpq_poly_t P, int g, int sign)
{
    fmpz_t den, num;
    fmpz_init(den);
    fmpz_init(num);
    fmpz_fac_ui(den, (ulong)g);
    fmpq_poly_zero(P);
    fmpq_poly_fit_length(P, g + 1);
    /* Σ (±1)^k (g!/k!) x^k / g! */
    for (int k = 0; k <= g; k++) {
        fmpz_fac_ui(num, (ulong)g);
        fmpz_t kf;
        fmpz_init(kf);
        fmpz_fac_ui(kf, (ulong)k);
        fmpz_divexact(num, num, kf);
        fmpz_clear(kf);
        if (sign < 0 && k % 2)
            fmpz_neg(num, num);
        fmpz_set(P->coeffs + k, num);
    }
    fmpz_set(P->den, den);
    _fmpq_poly_set_length(P, g + 1);
    fmpq_poly_canonicalise(P);
    fmpz_clear(den);
    fmpz_clear(num);
}

/* Σ a_k T_k((x - mid)/rad) in the power basis of x, coefficients rounded to midpoints */
static void cheb_to_x(arb_poly_t P, arb_srcptr a, int g, double mid, double rad, slong prec)
{
    arb_poly_t Tm, Tc, Tn, twot;
    arb_poly_init(Tm); arb_poly_init(Tc); arb_poly_init(Tn); arb_poly_init(twot);
    arb_poly_one(Tm);
    arb_poly_zero(P);
    arb_poly_scalar_mul(P, Tm, a + 0, prec);
    arb_poly_set_coeff_si(Tc, 1, 1);
    arb_poly_set_coeff_si(twot, 1, 2);
    for (int k = 1; k <= g; k++) {
        if (k >= 2) {
            arb_poly_mul(Tn, twot, Tc, prec);
            arb_poly_sub(Tn, Tn, Tm, prec);
            arb_poly_swap(Tm, Tc);
            arb_poly_swap(Tc, Tn);
        }
        arb_poly_scalar_mul(Tn, Tc, a + k, prec);
        arb_poly_add(P, P, Tn, prec);
    }
    /* t = (x - mid)/rad: scale by rad^{-k}, then shift by -mid */
    arb_t s, rk;
    arb_init(s); arb_init(rk);
    arb_one(rk);
    arb_set_d(s, rad);
    arb_inv(s, s, prec);
    for (slong k = 0; k < arb_poly_length(P); k++) {
        arb_mul(P->coeffs + k, P->coeffs + k, rk, prec);
        arb_mul(rk, rk, s, prec);
    }
    arb_set_d(s, -mid);
    arb_poly_taylor_shift(P, P, s, prec);
    for (slong k = 0; k < arb_poly_length(P); k++)
        arb_get_mid_arb(P->coeffs + k, P->coeffs + k);
    arb_clear(s); arb_clear(rk);
    arb_poly_clear(Tm); arb_poly_clear(Tc); arb_poly_clear(Tn); arb_poly_clear(twot);
}

static void fval_arb(arb_t y, pr_expoly_setting_t setting, const arb_t x, slong prec)
{
    if (setting == PR_EXPOLY_EXPNEG_ABS)
        arb_neg(y, x), arb_exp(y, y, prec);
    else
        arb_exp(y, x, prec);
}

static void cheb_interp_arb(arb_ptr a, int g, pr_expoly_setting_t setting, double mid, double rad, slong prec)
{
    int n = g + 1;
    /* cos(π i/(2n)) for i in [0, 4n): the DCT angles πk(j+½)/n = π k(2j+1)/(2n) */
    arb_ptr cs = _arb_vec_init(4 * n), fx = _arb_vec_init(n);
    arb_t x;
    arb_init(x);
    for (int i = 0; i < 4 * n; i++) {
        fmpq_t q;
        fmpq_init(q);
        fmpq_set_si(q, i, 2 * n);
        arb_cos_pi_fmpq(cs + i, q, prec);
        fmpq_clear(q);
    }
    for (int j = 0; j < n; j++) {
        arb_set_d(x, rad);
        arb_mul(x, x, cs + (2 * j + 1), prec);
        pr_certexp_op_d(arb_add, x, x, mid, prec);
        fval_arb(fx + j, setting, x, prec);
    }
    for (int k = 0; k <= g; k++) {
        arb_zero(a + k);
        for (int j = 0; j < n; j++)
            arb_addmul(a + k, fx + j, cs + ((long)k * (2 * j + 1)) % (4 * n), prec);
        arb_mul_si(a + k, a + k, 2, prec);
        arb_div_si(a + k, a + k, n, prec);
    }
    arb_mul_2exp_si(a + 0, a + 0, -1);
    arb_clear(x);
    _arb_vec_clear(cs, 4 * n);
    _arb_vec_clear(fx, n);
}

/* e(x) and its sign at the points xs[0..N) into es */
static void err_at(arb_ptr es, const pr_certexp_tm_t *c, arb_srcptr xs, int N, slong prec)
{
    arb_t f;
    arb_init(f);
    for (int j = 0; j < N; j++) {
        pr_certexp_tm_expfac(f, c, xs + j, prec);
        pr_certexp_tm_deriv(es + j, c, 0, xs + j, f, prec);
    }
    arb_clear(f);
}

static double arbd(const arb_t x)
{
    return arf_get_d(arb_midref(x), ARF_RND_NEAR);
}

/* The next Remez reference from the error of P: local extrema of |E| on a dense graded sample,
 * refined by Newton steps on E' (using E''), one per sign run, trimmed to n at the ends.
 * Returns 0 with ref[0..n) (in t) and the spread (max - min)/max of |E| there, or 1 when E has
 * fewer than n alternations (the error is at the precision's noise). */
static int remez_reference(double *ref, double *spread, const arb_poly_t P, int g, pr_expoly_setting_t setting,
                           double mid, double rad, slong prec)
{
    int n = g + 2, N = 8 * (g + 2) + 16, m = 0, k = 0, res = 1;
    double *tx = malloc(sizeof(double) * N), *ex = malloc(sizeof(double) * N);
    double *ts = malloc(sizeof(double) * (N + n)), *es = malloc(sizeof(double) * (N + n)), *px = malloc(sizeof(double) * N);
    arb_ptr xs = _arb_vec_init(N), ev = _arb_vec_init(N), e3 = _arb_vec_init(3);
    arb_t t, x;
    arb_init(t); arb_init(x);
    pr_certexp_tm_t c;
    pr_certexp_tm_init(&c, P, setting, 2, prec);
    for (int j = 0; j < N; j++) {
        tx[j] = mid - rad * cos(M_PI * j / (N - 1));
        arb_set_d(xs + j, tx[j]);
    }
    err_at(ev, &c, xs, N, prec);
    for (int j = 0; j < N; j++) {
        double v = fabs(arbd(ev + j));
        if ((j > 0 && v < fabs(arbd(ev + j - 1))) || (j < N - 1 && v < fabs(arbd(ev + j + 1))))
            continue;
        double xj = tx[j], ej = arbd(ev + j);
        if (j > 0 && j < N - 1) {
            arb_set_d(x, xj);
            for (int s = 0; s < 6; s++) {
                pr_certexp_tm_coeffs(e3, &c, x, 2, prec);
                arb_div(t, e3 + 1, e3 + 2, prec);
                arb_mul_2exp_si(t, t, -1);
                arb_sub(t, x, t, prec);
                double xn = arbd(t);
                if (!(xn > tx[j - 1] && xn < tx[j + 1]))
                    break;
                arb_get_mid_arb(x, t);
            }
            pr_certexp_tm_coeffs(e3, &c, x, 0, prec);
            if (fabs(arbd(e3)) > fabs(ej)) {
                xj = arbd(x);
                ej = arbd(e3);
            }
        }
        px[m] = xj;
        ex[m++] = ej;
    }
    /* the old reference alternates by construction: merging it in keeps >= n alternations */
    int mr = 0;
    double *qx = malloc(sizeof(double) * (m + n)), *qe = malloc(sizeof(double) * (m + n));
    for (int i = 0, j = 0; i < m || j < n;) {
        double xr = j < n ? mid + rad * ref[j] : INFINITY;
        if (i < m && px[i] <= xr) {
            qx[mr] = px[i]; qe[mr++] = ex[i++];
        } else {
            arb_set_d(x, xr);
            pr_certexp_tm_coeffs(e3, &c, x, 0, prec);
            qx[mr] = xr; qe[mr++] = arbd(e3);
            j++;
        }
    }
    for (int i = 0; i < mr; i++) {
        if (k > 0 && (qe[i] > 0) == (es[k - 1] > 0)) {
            if (fabs(qe[i]) > fabs(es[k - 1])) { ts[k - 1] = qx[i]; es[k - 1] = qe[i]; }
        } else {
            ts[k] = qx[i]; es[k++] = qe[i];
        }
    }
    free(qx);
    free(qe);
    if (k >= n) {
        int lo = 0, hi = k - 1;
        while (hi - lo + 1 > n) {
            if (fabs(es[lo]) < fabs(es[hi])) lo++; else hi--;
        }
        double mx = 0, mn = INFINITY;
        for (int i = 0; i < n; i++) {
            ref[i] = (ts[lo + i] - mid) / rad;
            mx = fmax(mx, fabs(es[lo + i]));
            mn = fmin(mn, fabs(es[lo + i]));
        }
        *spread = (mx - mn) / mx;
        res = 0;
    }
    pr_certexp_tm_clear(&c);
    arb_clear(t); arb_clear(x);
    _arb_vec_clear(xs, N); _arb_vec_clear(ev, N); _arb_vec_clear(e3, 3);
    free(tx); free(ex); free(ts); free(es); free(px);
    return res;
}

/* Remez exchange in Arb with midpoint arithmetic (the result is exact once rounded to midpoints;
 * only its quality, not its certification, depends on convergence). Starts from the reference of
 * the Chebyshev interpolant's error, which is already near-equioscillating. a[0..g] in
 * (Chebyshev coefficients in t), P out. */
static int remez_arb(arb_ptr a, arb_poly_t P, double *xref, int g, pr_expoly_setting_t setting, double mid,
                     double rad, double spread_target, slong prec)
{
    int n = g + 2, st = PR_OK;
    double *ref = malloc(sizeof(double) * n), spread = 1;
    arb_mat_t A, b, sol;
    arb_mat_init(A, n, n); arb_mat_init(b, n, 1); arb_mat_init(sol, n, 1);
    arb_t t, T0, T1, Tn, f, x;
    arb_init(t); arb_init(T0); arb_init(T1); arb_init(Tn); arb_init(f); arb_init(x);
    cheb_to_x(P, a, g, mid, rad, prec);
    for (int i = 0; i < n; i++)
        ref[i] = -cos(M_PI * i / (n - 1));
    /* First reference. For the relative error the weighted polynomial e^{-x} P(x) equioscillates
     * like the equilibrium measure of [-1, 1] in the linear external field of strength α ≈ R/g,
     * density ∝ (1 - α t)/√(1 - t²): with t = -cos θ, its quantiles solve θ + α sin θ = π u.
     * (Fitted against converged references; α = 0 gives the Chebyshev extrema.) */
    double alpha = setting == PR_EXPOLY_EXP_REL ? fmin(rad / g, 0.95) : 0;
    for (int i = 0; i < n; i++) {
        double u = M_PI * i / (n - 1), th = u;
        for (int s = 0; s < 50; s++)
            th -= (th + alpha * sin(th) - u) / (1 + alpha * cos(th));
        ref[i] = i == 0 ? -1 : i == n - 1 ? 1 : -cos(th);
    }
    for (int it = 0; it < 40; it++) {
        if (it > 0) {
            if (remez_reference(ref, &spread, P, g, setting, mid, rad, prec) || spread <= spread_target)
                break;
        }
        for (int i = 0; i < n; i++) {
            arb_set_d(t, ref[i]);
            arb_one(T0);
            arb_set(T1, t);
            arb_one(arb_mat_entry(A, i, 0));
            if (g >= 1)
                arb_set(arb_mat_entry(A, i, 1), t);
            for (int k = 2; k <= g; k++) {
                arb_mul(Tn, T1, t, prec); arb_mul_2exp_si(Tn, Tn, 1); arb_sub(Tn, Tn, T0, prec);
                arb_swap(T0, T1); arb_swap(T1, Tn);
                arb_set(arb_mat_entry(A, i, k), T1);
            }
            pr_certexp_op_d(arb_mul, x, t, rad, prec);
            pr_certexp_op_d(arb_add, x, x, mid, prec);
            fval_arb(f, setting, x, prec);
            arb_set(arb_mat_entry(b, i, 0), f);
            /* P(t_i) - f(t_i) = (-1)^i E / w(t_i) */
            if (setting == PR_EXPOLY_EXP_REL) arb_set(T0, f); else arb_one(T0);
            if (i % 2 == 0) arb_neg(T0, T0);
            arb_set(arb_mat_entry(A, i, g + 1), T0);
        }
        if (!arb_mat_approx_solve(sol, A, b, prec)) {
            st = PR_ECONVERGE;
            break;
        }
        for (int k = 0; k <= g; k++)
            arb_get_mid_arb(a + k, arb_mat_entry(sol, k, 0));
        cheb_to_x(P, a, g, mid, rad, prec);
    }
    /* P alternates on ref: the solve's reference, or the extrema of P's error found after it */
    for (int i = 0; xref && i < n; i++)
        xref[i] = i == 0 ? mid - rad : i == n - 1 ? mid + rad : mid + rad * ref[i];
    arb_clear(t); arb_clear(T0); arb_clear(T1); arb_clear(Tn); arb_clear(f); arb_clear(x);
    arb_mat_clear(A); arb_mat_clear(b); arb_mat_clear(sol);
    free(ref);
    return st;
}

int pr_certexp_construct_ref(arb_poly_t P, double *xref, pr_expoly_kind_t kind, pr_expoly_setting_t setting,
                             double R, int g, double spread, slong prec)
{
    if (!(R > 0) || !isfinite(R) || g < 0 || (unsigned)kind > 2 || (unsigned)setting > 2 || prec < 32)
        return PR_EINVAL;
    double lo, hi;
    pr_expoly_interval(&lo, &hi, setting, R);
    double mid = (lo + hi) / 2, rad = (hi - lo) / 2;
    if (kind == PR_EXPOLY_TAYLOR) {
        /* balls containing the exact Taylor polynomial: certification then covers it */
        int sigma = setting == PR_EXPOLY_EXPNEG_ABS ? -1 : 1;
        fmpq_poly_t q;
        fmpq_poly_init(q);
        pr_certexp_taylor_fmpq(q, g, sigma);
        arb_poly_set_fmpq_poly(P, q, prec);
        fmpq_poly_clear(q);
        if (mid != 0) {
            arb_t s;
            arb_init(s);
            arb_set_d(s, sigma * mid);
            arb_exp(s, s, prec);
            arb_poly_scalar_mul(P, P, s, prec);
            arb_set_d(s, -mid);
            arb_poly_taylor_shift(P, P, s, prec);
            arb_clear(s);
        }
        return PR_OK;
    }
    arb_ptr a = _arb_vec_init(g + 1);
    cheb_interp_arb(a, g, setting, mid, rad, prec);
    for (int k = 0; k <= g; k++)
        arb_get_mid_arb(a + k, a + k);
    int st = PR_OK;
    if (kind == PR_EXPOLY_CHEBYSHEV || (g == 0 && !xref))
        cheb_to_x(P, a, g, mid, rad, prec);
    else
        st = remez_arb(a, P, xref, g, setting, mid, rad, spread, prec);
    _arb_vec_clear(a, g + 1);
    return st;
}

int pr_certexp_construct(arb_poly_t P, pr_expoly_kind_t kind, pr_expoly_setting_t setting, double R,
                         int g, slong prec)
{
    return pr_certexp_construct_ref(P, NULL, kind, setting, R, g, REMEZ_SPREAD, prec);
}

