#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arb_mat.h>
#include "pr_status.h"
#include "pr_certexp.h"

#define TM_ORDER 48   /* highest Taylor-model order m on a piece (tm_order chooses) */
/* Remez stops once the levelled |E| spreads by less than this relative amount; the least-degree
 * search tightens it (REMEZ_SPREAD_MIN at the finest) where a degree is undecided */
#define REMEZ_SPREAD 1e-6
#define REMEZ_SPREAD_MIN 1e-15

/* z = x op d for a double d, at precision prec (ARF_PREC_EXACT for exact) */
static void op_d(void (*op)(arb_t, const arb_t, const arb_t, slong), arb_t z, const arb_t x, double d,
                 slong prec)
{
    arb_t t;
    arb_init(t);
    arb_set_d(t, d);
    op(z, x, t, prec);
    arb_clear(t);
}

const char *pr_cert_verdict_name(pr_cert_verdict_t v)
{
    return v == PR_CERT_CERTIFIED ? "certified" : v == PR_CERT_REFUTED ? "refuted" : "unknown";
}

void pr_certexp_init(pr_certexp_t r)
{
    r->verdict = PR_CERT_UNKNOWN;
    arb_init(r->bound);
    arb_init(r->lower);
    arb_init(r->witness_x);
    arb_init(r->witness_err);
    r->witness = NAN;
    r->pieces = 0;
    r->prec = 0;
    for (int k = 0; k < PR_CERTEXP_NBRANCH; k++)
        r->branch[k] = 0;
}

void pr_certexp_clear(pr_certexp_t r)
{
    arb_clear(r->bound);
    arb_clear(r->lower);
    arb_clear(r->witness_x);
    arb_clear(r->witness_err);
}

/* ---- derivatives of the error E in closed form ----
 * EXP_REL:  E = e^{-x} P - 1, E^{(k)} = e^{-x} D_k with D_0 = P, D_{k+1} = D_k' - D_k.
 * additive: E = P - e^{σx},   E^{(k)} = D_k - σ^k e^{σx} with D_k = P^{(k)}. */
typedef struct {
    pr_expoly_setting_t setting;
    int sigma, m;
    arb_poly_struct D[TM_ORDER + 2];
} tm_t;

static void tm_init(tm_t *c, const arb_poly_t P, pr_expoly_setting_t setting, int m, slong prec)
{
    c->setting = setting;
    c->sigma = setting == PR_EXPOLY_EXPNEG_ABS ? -1 : 1;
    c->m = m;
    for (int k = 0; k <= m + 1; k++)
        arb_poly_init(c->D + k);
    arb_poly_set(c->D, P);
    for (int k = 1; k <= m + 1; k++) {
        arb_poly_derivative(c->D + k, c->D + k - 1, prec);
        if (setting == PR_EXPOLY_EXP_REL)
            arb_poly_sub(c->D + k, c->D + k, c->D + k - 1, prec);
    }
}

static void tm_clear(tm_t *c)
{
    for (int k = 0; k <= c->m + 1; k++)
        arb_poly_clear(c->D + k);
}

/* E^{(k)}(x)/k! for one k; x may be a ball (then an enclosure over it) */
static void tm_deriv(arb_t y, const tm_t *c, int k, const arb_t x, const arb_t fx, slong prec)
{
    arb_poly_evaluate_horner(y, c->D + k, x, prec);
    if (c->setting == PR_EXPOLY_EXP_REL) {
        arb_mul(y, y, fx, prec);
        if (k == 0)
            arb_sub_ui(y, y, 1, prec);
    } else if (c->sigma < 0 && k % 2) {
        arb_add(y, y, fx, prec);
    } else {
        arb_sub(y, y, fx, prec);
    }
    if (k >= 2) {
        arb_t f;
        arb_init(f);
        arb_fac_ui(f, k, prec);
        arb_div(y, y, f, prec);
        arb_clear(f);
    }
}

/* the exponential factor: e^{-x} (EXP_REL) or e^{σx} */
static void tm_expfac(arb_t f, const tm_t *c, const arb_t x, slong prec)
{
    if (c->setting == PR_EXPOLY_EXP_REL || c->sigma < 0)
        arb_neg(f, x);
    else
        arb_set(f, x);
    arb_exp(f, f, prec);
}

/* e[0..K]: Taylor coefficients of E at x */
static void tm_coeffs(arb_ptr e, const tm_t *c, const arb_t x, int K, slong prec)
{
    arb_t f;
    arb_init(f);
    tm_expfac(f, c, x, prec);
    for (int k = 0; k <= K; k++)
        tm_deriv(e + k, c, k, x, f, prec);
    arb_clear(f);
}

/* Upper bound of |E| on [x0 - h, x0 + h] from the coefficients e[0..m] and the remainder:
 * the quadratic part maximised exactly (endpoints and vertex), the rest by Σ|e_k| h^k.
 * Taylor's theorem with Lagrange remainder; the bound behind the certified eps_A of C7/C8 and,
 * through ||Õ - O|| <= 2 eps_A/(1 - eps_A) ||V||, of C9. */
static void piece_bound(arb_t ub, const tm_t *c, arb_srcptr e, const arb_t x0, const arb_t h, slong prec)
{
    int m = c->m;
    arb_t q, t, hk, ball, f;
    arb_init(q); arb_init(t); arb_init(hk); arb_init(ball); arb_init(f);
    if (arb_contains_zero(e + 2)) {
        arb_abs(ub, e + 0);
        arb_abs(t, e + 1); arb_mul(t, t, h, prec); arb_add(ub, ub, t, prec);
        arb_abs(t, e + 2); arb_mul(t, t, h, prec); arb_mul(t, t, h, prec); arb_add(ub, ub, t, prec);
    } else {
        for (int sgn = -1; sgn <= 1; sgn += 2) {
            arb_mul_si(t, h, sgn, prec);
            arb_mul(q, e + 2, t, prec);
            arb_add(q, q, e + 1, prec);
            arb_mul(q, q, t, prec);
            arb_add(q, q, e + 0, prec);
            arb_abs(q, q);
            if (sgn < 0) arb_set(ub, q); else arb_max(ub, ub, q, prec);
        }
        /* vertex s* = -e1/(2 e2), unless it certainly lies outside [-h, h] */
        arb_div(t, e + 1, e + 2, prec);
        arb_mul_2exp_si(t, t, -1);
        arb_abs(t, t);
        if (!arb_gt(t, h)) {
            arb_sqr(q, e + 1, prec);
            arb_div(q, q, e + 2, prec);
            arb_mul_2exp_si(q, q, -2);
            arb_sub(q, e + 0, q, prec);
            arb_abs(q, q);
            arb_max(ub, ub, q, prec);
        }
    }
    arb_mul(hk, h, h, prec);
    for (int k = 3; k <= m; k++) {
        arb_mul(hk, hk, h, prec);
        arb_abs(t, e + k);
        arb_addmul(ub, t, hk, prec);
    }
    /* remainder: sup over the piece of |E^{(m+1)}|/(m+1)! times h^{m+1} */
    arb_set(ball, x0);
    arb_add_error(ball, h);
    tm_expfac(f, c, ball, prec);
    tm_deriv(t, c, m + 1, ball, f, prec);
    arb_abs(t, t);
    arb_mul(hk, hk, h, prec);
    arb_addmul(ub, t, hk, prec);
    arb_clear(q); arb_clear(t); arb_clear(hk); arb_clear(ball); arb_clear(f);
}

typedef struct {
    double a, b;
    int depth;
} piece_t;

/* centre x0 and radius h of [a, b], exactly */
static void piece_centre(arb_t x0, arb_t h, double a, double b)
{
    arb_set_d(x0, a);
    op_d(arb_add, x0, x0, b, ARF_PREC_EXACT);
    arb_mul_2exp_si(x0, x0, -1);
    arb_set_d(h, b);
    op_d(arb_add, h, h, -a, ARF_PREC_EXACT);
    arb_mul_2exp_si(h, h, -1);
}

/* records |E(x0)| = |e0| in the lower bound; 1 (refuted, witness set) if it exceeds th.
 * A witness refutes degree g - 1 in the certified least degree (C7, C8). */
static int note_centre(pr_certexp_t r, const arb_t x0, const arb_t e0, const arb_t th, slong prec)
{
    arb_t a;
    arb_init(a);
    arb_abs(a, e0);
    arb_max(r->lower, r->lower, a, prec);
    int refuted = arb_gt(a, th), larger = 1;
    if (refuted && r->verdict == PR_CERT_REFUTED) {
        arb_t w;
        arb_init(w);
        arb_abs(w, r->witness_err);
        larger = arb_gt(a, w);
        arb_clear(w);
    }
    /* keep the witness with the largest |E| */
    if (refuted && larger) {
        r->verdict = PR_CERT_REFUTED;
        arb_set(r->witness_x, x0);
        arb_set(r->witness_err, e0);
        r->witness = arf_get_d(arb_midref(x0), ARF_RND_NEAR);
    }
    arb_clear(a);
    return refuted;
}

/* 9/8 of the upper end of the lower bound, into t */
static arb_srcptr lower_tight(arb_t t, const arb_t lower, slong prec)
{
    arf_t u;
    arf_init(u);
    arb_get_ubound_arf(u, lower, prec);
    arb_set_arf(t, u);
    arb_mul_ui(t, t, 9, prec);
    arb_mul_2exp_si(t, t, -3);
    arf_clear(u);
    return t;
}

/* Pieces one attempt may bound before it stops tightening the bound: the tightening bisects
 * while the bound is above 9/8 of the largest |E| seen, which evaluation noise (low precision,
 * wide coefficient balls) can keep true at every depth. */
#define SUP_PIECE_BUDGET 20000

/* A ball whose upper end is exactly u = the upper end of b (and whose lower end is <= 0):
 * radius r >= u/2 (a 30-bit mag), midpoint u - r exact. The verdict tested on the ball is then
 * the one printed, with no rounding of u. */
static void bound_from_above(arb_t bound, const arf_t u)
{
    arf_t m;
    mag_t r;
    arf_init(m); mag_init(r);
    arf_mul_2exp_si(m, u, -1);
    arf_get_mag(r, m);
    arf_set_mag(m, r);
    arf_sub(arb_midref(bound), u, m, ARF_PREC_EXACT, ARF_RND_DOWN);
    mag_set(arb_radref(bound), r);
    arf_clear(m); mag_clear(r);
}

/* umax = max(umax, upper end of ub), exactly (arb_union would round the radius up) */
static void note_ub(arf_t umax, const arb_t ub)
{
    arf_t u;
    arf_init(u);
    arb_get_ubound_arf(u, ub, ARF_PREC_EXACT);
    arf_max(umax, umax, u);
    arf_clear(u);
}

/* The order m of the pieces' Taylor models: the remainder's derivative, evaluated over a piece
 * in the power basis, is overestimated by about Σ|c_k| X^k (huge for large R), so its factor
 * h^{m+1} must be small: a higher order for higher degrees keeps the pieces wide (R = 90,
 * g = 208: 56000 pieces at m = 16, 178 at m = 48; R = 64, g = 149: 3601 at 16, 107 at 48) */
static int tm_order(slong g)
{
    slong m = g / 3;
    return (int)(m < 16 ? 16 : m > TM_ORDER ? TM_ORDER : m);
}

/* one attempt at precision prec; returns 1 if the precision was visibly too low */
static int sup_at_prec(pr_certexp_t r, const arb_poly_t P, pr_expoly_setting_t setting, double R,
                       double thresh, slong prec, int npieces0)
{
    double lo, hi;
    pr_expoly_interval(&lo, &hi, setting, R);
    tm_t c;
    int m = tm_order(arb_poly_length(P) - 1);
    tm_init(&c, P, setting, m, prec);
    /* every piece on the stack has depth <= 48 and the stack grows by one per level */
    int cap = npieces0 + 64 * 2 + 16, top = 0, uncovered = 0, short_prec = 0;
    piece_t *st = malloc(sizeof(piece_t) * cap);
    arb_ptr e = _arb_vec_init(m + 1);
    arb_t x0, h, ub, th, ae;
    arf_t umax;
    arb_init(x0); arb_init(h); arb_init(ub); arb_init(th); arb_init(ae);
    arf_init(umax);
    arb_set_d(th, thresh);
    arb_zero(r->bound);
    arb_zero(r->lower);
    r->verdict = PR_CERT_UNKNOWN;
    r->pieces = 0;
    r->prec = prec;
    /* Chebyshev-graded pieces: the error oscillates fastest near the ends */
    double mid = (lo + hi) / 2, rad = (hi - lo) / 2, prev = hi;
    for (int j = 1; j <= npieces0; j++) {
        double x = j == npieces0 ? lo : mid + rad * cos(M_PI * j / npieces0);
        st[top++] = (piece_t){x, prev, 0};
        prev = x;
    }
    /* first pass over the centres: a lower bound of sup|E| near it (the least-degree search
     * extrapolates from it), and the largest witness if there is one */
    for (int j = 0; j < top; j++) {
        piece_centre(x0, h, st[j].a, st[j].b);
        tm_coeffs(e, &c, x0, 0, prec);
        note_centre(r, x0, e, th, prec);
    }
    if (r->verdict == PR_CERT_REFUTED)
        goto done;
    /* Certified needs every piece of the cover bounded below thresh: one piece that is not
     * (and cannot be bisected further) makes the verdict unknown, whatever the others do. */
    while (top > 0) {
        piece_t pc = st[--top];
        r->pieces++;
        r->branch[PR_CERTEXP_BR_PIECE]++;
        piece_centre(x0, h, pc.a, pc.b);
        tm_coeffs(e, &c, x0, m, prec);
        if (note_centre(r, x0, e, th, prec)) {
            r->branch[PR_CERTEXP_BR_REFUTE]++;
            goto done;
        }
        if (mag_cmp_2exp_si(arb_radref(e), (slong)floor(log2(thresh)) - 8) > 0)
            short_prec = 1;
        piece_bound(ub, &c, e, x0, h, prec);
        int below = arb_lt(ub, th);
        /* accept a piece below the threshold once its bound is within 1/8 of the largest error
         * seen (so the reported bound is tight), after 40 halvings, or past the piece budget */
        if (below && (pc.depth >= 40 || r->pieces >= SUP_PIECE_BUDGET
                      || arb_le(ub, lower_tight(ae, r->lower, prec)))) {
            r->branch[PR_CERTEXP_BR_ACCEPT]++;
            note_ub(umax, ub);
            continue;
        }
        double m2 = pc.a + (pc.b - pc.a) / 2;
        if (!below && (short_prec || pc.depth >= 48 || !(m2 > pc.a && m2 < pc.b) || top + 2 > cap
                       || r->pieces >= SUP_PIECE_BUDGET)) {
            /* not below thresh and not to be split: this piece is not covered */
            r->branch[PR_CERTEXP_BR_UNCOVERED]++;
            note_ub(umax, ub);
            uncovered++;
            continue;
        }
        if (below && (short_prec || !(m2 > pc.a && m2 < pc.b) || top + 2 > cap)) {
            /* below thresh but the tightening cannot go on: covered, bound less tight */
            r->branch[PR_CERTEXP_BR_ACCEPT]++;
            note_ub(umax, ub);
            continue;
        }
        r->branch[PR_CERTEXP_BR_SPLIT]++;
        st[top++] = (piece_t){m2, pc.b, pc.depth + 1};
        st[top++] = (piece_t){pc.a, m2, pc.depth + 1};
    }
    bound_from_above(r->bound, umax);
    /* decided on the bound as stored and printed (its upper end is the largest piece's, so
     * with every piece below thresh this holds; kept as the statement the verdict rests on) */
    if (!uncovered && arb_lt(r->bound, th))
        r->verdict = PR_CERT_CERTIFIED;
    arb_clear(x0); arb_clear(h); arb_clear(ub); arb_clear(th); arb_clear(ae);
    arf_clear(umax);
    _arb_vec_clear(e, m + 1);
    free(st);
    tm_clear(&c);
    return short_prec && r->verdict == PR_CERT_UNKNOWN;
done:
    /* refuted before the cover was complete: the bound over the pieces examined */
    bound_from_above(r->bound, umax);
    arb_clear(x0); arb_clear(h); arb_clear(ub); arb_clear(th); arb_clear(ae);
    arf_clear(umax);
    _arb_vec_clear(e, m + 1);
    free(st);
    tm_clear(&c);
    return 0;
}

/* bits needed: the evaluation cancels from Σ|c_k| X^k down to thresh·(min weight factor) */
static slong auto_prec(const arb_poly_t P, pr_expoly_setting_t setting, double R, double thresh)
{
    double lo, hi;
    pr_expoly_interval(&lo, &hi, setting, R);
    double X = fmax(fabs(lo), fabs(hi)), l2S = -1100;
    for (slong k = 0; k < arb_poly_length(P); k++) {
        double ck = arf_get_d(arb_midref(P->coeffs + k), ARF_RND_UP);
        if (ck != 0)
            l2S = fmax(l2S, log2(fabs(ck)) + k * log2(X) + log2((double)arb_poly_length(P)));
    }
    double wl = setting == PR_EXPOLY_EXP_REL ? R / M_LN2 : 0;
    return 96 + (slong)ceil(fmax(l2S, 0) + wl - log2(thresh));
}

int pr_certexp_sup(pr_certexp_t r, const arb_poly_t P, pr_expoly_setting_t setting, double R,
                   double thresh, slong prec)
{
    if (!(R > 0) || !isfinite(R) || !(thresh > 0) || !isfinite(thresh) || arb_poly_length(P) == 0
        || (unsigned)setting > 2)
        return PR_EINVAL;
    if (prec <= 0)
        prec = auto_prec(P, setting, R, thresh);
    int n0 = (int)arb_poly_length(P) / 2 + 8;
    for (int attempt = 0; attempt < 3; attempt++, prec *= 2) {
        if (!sup_at_prec(r, P, setting, R, thresh, prec, n0))
            break;
        r->branch[PR_CERTEXP_BR_RETRY]++;
    }
    return PR_OK;
}

int pr_certexp_sup_d(pr_certexp_t r, const double *c, int g, pr_expoly_setting_t setting, double R,
                     double thresh, slong prec)
{
    if (g < 0)
        return PR_EINVAL;
    arb_poly_t P;
    arb_poly_init(P);
    arb_poly_fit_length(P, g + 1);
    for (int k = 0; k <= g; k++) {
        if (!isfinite(c[k])) {
            arb_poly_clear(P);
            return PR_ENONFINITE;
        }
        arb_set_d(P->coeffs + k, c[k]);
    }
    _arb_poly_set_length(P, g + 1);
    _arb_poly_normalise(P);
    int st = pr_certexp_sup(r, P, setting, R, thresh, prec);
    arb_poly_clear(P);
    return st;
}

/* ---- constructions in Arb ---- */

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
        op_d(arb_add, x, x, mid, prec);
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
static void err_at(arb_ptr es, const tm_t *c, arb_srcptr xs, int N, slong prec)
{
    arb_t f;
    arb_init(f);
    for (int j = 0; j < N; j++) {
        tm_expfac(f, c, xs + j, prec);
        tm_deriv(es + j, c, 0, xs + j, f, prec);
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
    tm_t c;
    tm_init(&c, P, setting, 2, prec);
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
                tm_coeffs(e3, &c, x, 2, prec);
                arb_div(t, e3 + 1, e3 + 2, prec);
                arb_mul_2exp_si(t, t, -1);
                arb_sub(t, x, t, prec);
                double xn = arbd(t);
                if (!(xn > tx[j - 1] && xn < tx[j + 1]))
                    break;
                arb_get_mid_arb(x, t);
            }
            tm_coeffs(e3, &c, x, 0, prec);
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
            tm_coeffs(e3, &c, x, 0, prec);
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
    tm_clear(&c);
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
            op_d(arb_mul, x, t, rad, prec);
            op_d(arb_add, x, x, mid, prec);
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

static int construct(arb_poly_t P, double *xref, pr_expoly_kind_t kind, pr_expoly_setting_t setting, double R,
                     int g, double spread, slong prec)
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
    return construct(P, NULL, kind, setting, R, g, REMEZ_SPREAD, prec);
}

/* ---- certified least degree ---- */

void pr_certexp_degree_init(pr_certexp_degree_t d)
{
    d->degree = -1;
    d->verdict = PR_CERT_UNKNOWN;
    pr_certexp_init(d->at);
    pr_certexp_init(d->below);
    arb_poly_init(d->poly);
    d->constructions = 0;
    d->refuted_all = -1;
    arb_init(d->lower_all);
}

void pr_certexp_degree_clear(pr_certexp_degree_t d)
{
    pr_certexp_clear(d->at);
    pr_certexp_clear(d->below);
    arb_poly_clear(d->poly);
    arb_clear(d->lower_all);
}

/* a rough starting degree: where the Chebyshev (or Taylor) coefficient bound times the
 * weight drops below eps; only the search's speed depends on it */
static int degree_guess(pr_expoly_kind_t kind, pr_expoly_setting_t setting, double R, double eps)
{
    double lo, hi;
    pr_expoly_interval(&lo, &hi, setting, R);
    double mid = (lo + hi) / 2, rad = (hi - lo) / 2;
    /* log of f(mid) times the largest weight: the scale of both remainders */
    double base = (setting == PR_EXPOLY_EXPNEG_ABS ? -mid : mid) + (setting == PR_EXPOLY_EXP_REL ? R : 0);
    for (int g = 0; g < 1000000; g++) {
        /* Taylor: rad^{g+1}/(g+1)!; Chebyshev: 2 I_{g+1}(rad) ≈ 2 (rad/2)^{g+1}/(g+1)! e^{rad²/(4(g+2))} */
        double lerr = kind == PR_EXPOLY_TAYLOR
            ? (g + 1) * log(rad) - lgamma(g + 2.0) + base
            : log(2.0) + (g + 1) * log(rad / 2) - lgamma(g + 2.0) + rad * rad / (4 * (g + 2)) + base;
        if (lerr < log(eps)) {
            /* the relative minimax spends its error where e^x is small: about 0.8 R degrees
             * fewer than Chebyshev interpolation (observed for R in [2, 32]) */
            if (kind == PR_EXPOLY_MINIMAX && setting == PR_EXPOLY_EXP_REL)
                g -= (int)(0.8 * R);
            return g > 0 ? g : 0;
        }
    }
    return 1000000;
}

/* precision of a construction: the target's cancellation (e^{2X}/eps) plus the basis
 * conversion's growth: T_k has coefficients up to (1+√2)^k, the shift to x = mid + rad t up
 * to 2^k more */
static slong construct_prec(pr_expoly_setting_t setting, double R, double eps, int g)
{
    double lo, hi;
    pr_expoly_interval(&lo, &hi, setting, R);
    double X = fmax(fabs(lo), fabs(hi));
    return 96 + (slong)ceil((2 * X - log(eps)) / M_LN2 + 2.5 * g);
}

int pr_certexp_certify_degree(pr_certexp_t r, arb_poly_t P, pr_expoly_kind_t kind, pr_expoly_setting_t setting,
                              double R, double eps, int g)
{
    if (!(R > 0) || !isfinite(R) || !(eps > 0 && eps < 1) || g < 0)
        return PR_EINVAL;
    int st = pr_certexp_construct(P, kind, setting, R, g, construct_prec(setting, R, eps, g));
    if (!st)
        st = pr_certexp_sup(r, P, setting, R, eps, 0);
    return st;
}

/* de la Vallée Poussin: if E of P (degree n - 2) alternates in sign at the exact points
 * x[0] < ... < x[n-1], every polynomial Q of degree <= n - 2 has sup|E_Q| >= min_i |E(x_i)|
 * (else Q - P, over the positive weight, would alternate at n points: n - 1 roots). L gets that
 * minimum as a ball; returns 1 if the signs certainly alternate, else 0. */
static int dlvp_lower(arb_t L, const arb_poly_t P, const double *x, int n, pr_expoly_setting_t setting, slong prec)
{
    tm_t c;
    tm_init(&c, P, setting, 0, prec);
    arb_t xi, f, e;
    arb_init(xi); arb_init(f); arb_init(e);
    int ok = n >= 2, prev = 0;
    for (int i = 0; ok && i < n; i++) {
        arb_set_d(xi, x[i]);
        tm_expfac(f, &c, xi, prec);
        tm_deriv(e, &c, 0, xi, f, prec);
        int sg = arb_is_positive(e) ? 1 : arb_is_negative(e) ? -1 : 0;
        ok = sg != 0 && sg != prev && (i == 0 || x[i] > x[i - 1]);
        prev = sg;
        arb_abs(e, e);
        if (i == 0)
            arb_set(L, e);
        else
            arb_min(L, L, e, prec);
    }
    arb_clear(xi); arb_clear(f); arb_clear(e);
    tm_clear(&c);
    return ok;
}

/* Degree h for every polynomial, by the best approximation: Remez at h with its stopping spread
 * tightened from REMEZ_SPREAD by 1000 per round down to spread_min. REFUTED when de la Vallée Poussin proves
 * E*_h > eps (the lower bound in L), CERTIFIED when the Remez polynomial is certified below eps
 * (into P and r), UNKNOWN when neither happens by REMEZ_SPREAD_MIN. */
static int best_decide(pr_cert_verdict_t *v, arb_t L, pr_certexp_t r, arb_poly_t P, pr_expoly_setting_t setting,
                       double R, double eps, int h, double spread_min)
{
    int st = PR_OK, n = h + 2;
    double *x = malloc(sizeof(double) * n);
    slong prec = construct_prec(setting, R, eps, h);
    arb_t th;
    arb_init(th);
    arb_set_d(th, eps);
    *v = PR_CERT_UNKNOWN;
    for (double spread = REMEZ_SPREAD; spread >= spread_min; spread /= 1000) {
        if ((st = construct(P, x, PR_EXPOLY_MINIMAX, setting, R, h, spread, prec)))
            break;
        if (dlvp_lower(L, P, x, n, setting, prec) && arb_gt(L, th)) {
            *v = PR_CERT_REFUTED;
            break;
        }
        if ((st = pr_certexp_sup(r, P, setting, R, eps, 0)))
            break;
        if (r->verdict == PR_CERT_CERTIFIED) {
            *v = PR_CERT_CERTIFIED;
            break;
        }
    }
    arb_clear(th);
    free(x);
    return st;
}

/* log of the error estimate of a result: the largest |E| seen (a lower bound, close to sup|E|
 * after the pass over all piece centres), or the certified bound */
static double log_err(const pr_certexp_t r)
{
    const arb_struct *v = arf_is_zero(arb_midref(r->lower)) ? r->bound : r->lower;
    double x = arf_get_d(arb_midref(v), ARF_RND_NEAR);
    if (x == 0)
        x = mag_get_d(arb_radref(v));
    return x > 0 ? log(x) : -INFINITY;
}

/* Every degree below *hi fails. Minimax: de la Vallée Poussin proves E*_{*hi-1} > eps, hence
 * for every polynomial of degree <= *hi - 1 (best approximation errors do not grow with the
 * degree); where Remez's polynomial at *hi - 1 is neither certified nor so refuted, Remez is
 * tightened; certified, it becomes the new *hi (the search's Remez stopped early). Taylor and
 * Chebyshev: the certified minimax least degree g* refutes every degree < g* at once; each
 * degree of the construction in [g*, *hi) is refuted by a witness of its own (a degree
 * certified there, the error not being monotone, becomes the new *hi). CERTIFIED in
 * d->verdict when every degree below *hi is refuted. lo: the degree the search refuted (its
 * witness is in d->below). */
static int prove_below(pr_certexp_degree_t d, int *hi, int lo, pr_expoly_kind_t kind, pr_expoly_setting_t setting,
                       double R, double eps, int max_degree, pr_certexp_progress_fn progress, void *arg)
{
    int st = PR_OK, h = *hi - 1, done = 0, floor_deg = -1;
    arb_poly_t B;
    arb_t L;
    arb_poly_init(B);
    arb_init(L);
    if (kind != PR_EXPOLY_MINIMAX) {
        pr_certexp_degree_t m;
        pr_certexp_degree_init(m);
        st = pr_certexp_least_degree_progress(m, PR_EXPOLY_MINIMAX, setting, R, eps, -1, max_degree, progress, arg);
        d->constructions += m->constructions;
        if (!st && m->verdict == PR_CERT_CERTIFIED && m->refuted_all >= 0) {
            d->refuted_all = m->refuted_all;
            arb_set(d->lower_all, m->lower_all);
            floor_deg = m->refuted_all;
        }
        pr_certexp_degree_clear(m);
        if (st == PR_EDOMAIN)
            st = PR_OK;
        if (floor_deg < 0 && *hi > 16)
            floor_deg = *hi - 1;   /* no proof from below: walking every degree would cost
                                      about *hi constructions; the verdict stays unknown */
    }
    for (; h > floor_deg && !st && !done; h--) {
        pr_cert_verdict_t v;
        pr_certexp_t r;
        pr_certexp_init(r);
        if (progress)
            progress(arg, h, "proving lower degrees fail");
        if (kind == PR_EXPOLY_MINIMAX) {
            st = best_decide(&v, L, r, B, setting, R, eps, h, REMEZ_SPREAD_MIN);
            d->constructions++;
            if (!st && v == PR_CERT_REFUTED) {
                d->refuted_all = h;
                arb_set(d->lower_all, L);
                done = 1;
            }
        } else if (h == lo) {
            v = PR_CERT_REFUTED;   /* the search's witness, in d->below */
        } else {
            st = pr_certexp_certify_degree(r, B, kind, setting, R, eps, h);
            d->constructions++;
            v = r->verdict;
        }
        if (st || v == PR_CERT_UNKNOWN) {
            pr_certexp_clear(r);
            break;
        }
        if (v == PR_CERT_CERTIFIED) {
            *hi = h;
            pr_certexp_clear(d->at);
            *d->at = *r;
            arb_poly_swap(d->poly, B);
        } else if (h != lo && h == *hi - 1 && kind != PR_EXPOLY_MINIMAX) {
            pr_certexp_clear(d->below);
            *d->below = *r;
        } else {
            pr_certexp_clear(r);
        }
    }
    if (!st && (done || h <= floor_deg) && (floor_deg < 0 || d->refuted_all == floor_deg))
        d->verdict = PR_CERT_CERTIFIED;
    arb_poly_clear(B);
    arb_clear(L);
    return st;
}

int pr_certexp_least_degree(pr_certexp_degree_t d, pr_expoly_kind_t kind, pr_expoly_setting_t setting,
                            double R, double eps, int g_hint, int max_degree)
{
    return pr_certexp_least_degree_progress(d, kind, setting, R, eps, g_hint, max_degree, NULL, NULL);
}

int pr_certexp_least_degree_progress(pr_certexp_degree_t d, pr_expoly_kind_t kind, pr_expoly_setting_t setting,
                                     double R, double eps, int g_hint, int max_degree,
                                     pr_certexp_progress_fn progress, void *arg)
{
    if (!(R > 0) || !isfinite(R) || !(eps > 0 && eps < 1) || (unsigned)kind > 2 || (unsigned)setting > 2
        || max_degree < 0)
        return PR_EINVAL;
    int g = g_hint >= 0 ? g_hint : degree_guess(kind, setting, R, eps);
    if (g > max_degree + 8)
        return PR_EDOMAIN;   /* far past the budget: do not build a huge polynomial to find out */
    g = g > max_degree ? max_degree : g;
    d->degree = -1;
    d->verdict = PR_CERT_UNKNOWN;
    d->constructions = 0;
    d->refuted_all = -1;
    /* The search keeps the least certified degree hi and the largest refuted degree lo; it is
     * done when hi = lo + 1. Each step extrapolates log sup|E| linearly in g from the last two
     * degrees tried (the error decays about geometrically in g), then clamps into (lo, hi). */
    int lo = -1, hi = -1, st = PR_OK, gp = -1;
    double lp = 0, le = log(eps);
    arb_poly_t Q;
    arb_poly_init(Q);
    for (int step = 0; step < 4 * max_degree + 8; step++) {
        pr_certexp_t r;
        pr_certexp_init(r);
        if (progress)
            progress(arg, g, "searching");
        if ((st = pr_certexp_certify_degree(r, Q, kind, setting, R, eps, g))) {
            pr_certexp_clear(r);
            break;
        }
        d->constructions++;
        double l = log_err(r);
        if (r->verdict == PR_CERT_UNKNOWN) {
            pr_certexp_clear(r);
            break;
        }
        if (r->verdict == PR_CERT_CERTIFIED) {
            hi = g;
            pr_certexp_clear(d->at);
            *d->at = *r;
            arb_poly_swap(d->poly, Q);
        } else {
            lo = g;
            pr_certexp_clear(d->below);
            *d->below = *r;
        }
        if (hi == 0 || (hi >= 0 && hi == lo + 1))
            break;
        /* next degree: extrapolate, or step by one without a usable slope */
        int next = hi >= 0 && lo < 0 ? g - 1 : g + 1;
        if (gp >= 0 && gp != g && isfinite(l) && isfinite(lp) && (l - lp) / (g - gp) < 0) {
            /* the pre-asymptotic errors (near 1) decay slowly and would send the extrapolation
             * far: move at most max(4, g/2) degrees per step */
            double slope = (l - lp) / (g - gp), step = fmax(4, g / 2), jump = (le - l) / slope;
            next = g + (int)ceil(fmax(-step, fmin(step, jump)));
        }
        if (hi >= 0 && next >= hi)
            next = hi - 1;
        if (next <= lo)
            next = lo + 1;
        if (next > max_degree) {
            st = PR_EDOMAIN;
            break;
        }
        gp = g;
        lp = l;
        g = next;
    }
    if (!st && hi == 0)
        d->verdict = PR_CERT_CERTIFIED;
    else if (!st && hi > 0 && hi == lo + 1)
        st = prove_below(d, &hi, lo, kind, setting, R, eps, max_degree, progress, arg);
    d->degree = hi;
    arb_poly_clear(Q);
    return st;
}

double pr_certexp_cost_seconds(int *g_est, slong *prec_est, pr_expoly_kind_t kind, pr_expoly_setting_t setting,
                               double R, double eps, int g, int single)
{
    if (!(R > 0) || !isfinite(R) || !(eps > 0 && eps < 1))
        return NAN;
    if (!single)
        g = degree_guess(kind, setting, R, eps);
    *g_est = g;
    *prec_est = construct_prec(setting, R, eps, g);
    /* the cubic was fitted at eps = 1e-6 (896 bits at R = 90); past that precision each
     * operation costs more, like p^1.4 (fitted on R = 50, eps = 1e-300: 2262 bits, 184 s; and
     * R = 20, eps = 1e-200: 1381 bits, 16 s) */
    double x = g / 207.0, t = 6.3 * x * x * x * fmax(1.0, pow(*prec_est / 896.0, 1.4));
    return single ? t / 20 : t;
}

char *pr_certexp_arf_str(const arf_t x)
{
    fmpz_t m, e;
    fmpz_init(m); fmpz_init(e);
    arf_get_fmpz_2exp(m, e, x);
    char *ms = fmpz_get_str(NULL, 10, m), *es = fmpz_get_str(NULL, 10, e);
    size_t len = strlen(ms) + strlen(es) + 8;
    char *out = flint_malloc(len);
    snprintf(out, len, "%s*2^(%s)", ms, es);
    flint_free(ms); flint_free(es);
    fmpz_clear(m); fmpz_clear(e);
    return out;
}

int pr_certexp_write_coeffs(FILE *f, const arb_poly_t P)
{
    for (slong k = 0; k < arb_poly_length(P); k++) {
        if (!arf_is_finite(arb_midref(P->coeffs + k)))
            return PR_ENONFINITE;
        char *s = pr_certexp_arf_str(arb_midref(P->coeffs + k));
        int w = fprintf(f, "%s\n", s);
        flint_free(s);
        if (w < 0)
            return PR_EIO;
    }
    return PR_OK;
}
