/* pr_certexp: the certified sup-norm error of a polynomial for exp (claims C7, C8, C9) and its
 * Taylor models; the exact printing of coefficients. The constructions in Arb are in
 * pr_certexp_construct.c, the certified least degree in pr_certexp_degree.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "pr_status.h"
#include "pr_certexp_impl.h"

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

/* the Taylor models of E (pr_certexp_impl.h) */
void pr_certexp_tm_init(pr_certexp_tm_t *c, const arb_poly_t P, pr_expoly_setting_t setting, int m, slong prec)
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

void pr_certexp_tm_clear(pr_certexp_tm_t *c)
{
    for (int k = 0; k <= c->m + 1; k++)
        arb_poly_clear(c->D + k);
}

/* E^{(k)}(x)/k! for one k; x may be a ball (then an enclosure over it) */
void pr_certexp_tm_deriv(arb_t y, const pr_certexp_tm_t *c, int k, const arb_t x, const arb_t fx, slong prec)
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
void pr_certexp_tm_expfac(arb_t f, const pr_certexp_tm_t *c, const arb_t x, slong prec)
{
    if (c->setting == PR_EXPOLY_EXP_REL || c->sigma < 0)
        arb_neg(f, x);
    else
        arb_set(f, x);
    arb_exp(f, f, prec);
}

/* e[0..K]: Taylor coefficients of E at x */
void pr_certexp_tm_coeffs(arb_ptr e, const pr_certexp_tm_t *c, const arb_t x, int K, slong prec)
{
    arb_t f;
    arb_init(f);
    pr_certexp_tm_expfac(f, c, x, prec);
    for (int k = 0; k <= K; k++)
        pr_certexp_tm_deriv(e + k, c, k, x, f, prec);
    arb_clear(f);
}

/* Upper bound of |E| on [x0 - h, x0 + h] from the coefficients e[0..m] and the remainder:
 * the quadratic part maximised exactly (endpoints and vertex), the rest by Σ|e_k| h^k.
 * Taylor's theorem with Lagrange remainder; the bound behind the certified eps_A of C7/C8 and,
 * through ||Õ - O|| <= 2 eps_A/(1 - eps_A) ||V||, of C9. */
static void piece_bound(arb_t ub, const pr_certexp_tm_t *c, arb_srcptr e, const arb_t x0, const arb_t h, slong prec)
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
    pr_certexp_tm_expfac(f, c, ball, prec);
    pr_certexp_tm_deriv(t, c, m + 1, ball, f, prec);
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
    pr_certexp_op_d(arb_add, x0, x0, b, ARF_PREC_EXACT);
    arb_mul_2exp_si(x0, x0, -1);
    arb_set_d(h, b);
    pr_certexp_op_d(arb_add, h, h, -a, ARF_PREC_EXACT);
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
    pr_certexp_tm_t c;
    int m = tm_order(arb_poly_length(P) - 1);
    pr_certexp_tm_init(&c, P, setting, m, prec);
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
        pr_certexp_tm_coeffs(e, &c, x0, 0, prec);
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
        pr_certexp_tm_coeffs(e, &c, x0, m, prec);
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
    pr_certexp_tm_clear(&c);
    return short_prec && r->verdict == PR_CERT_UNKNOWN;
done:
    /* refuted before the cover was complete: the bound over the pieces examined */
    bound_from_above(r->bound, umax);
    arb_clear(x0); arb_clear(h); arb_clear(ub); arb_clear(th); arb_clear(ae);
    arf_clear(umax);
    _arb_vec_clear(e, m + 1);
    free(st);
    pr_certexp_tm_clear(&c);
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
