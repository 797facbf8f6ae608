/* docs/certify.md L3 (revised: Horner's rounding per coefficient, Σ γ_{2k+1}|c_k|0.35^k): the double pass's
 * exp ê = pr_certify_exp_eval meets |ê - e^x| <= ε_e·e^x, proved in Arb at 128 bits for each x, on random x in
 * [-700, 0], near 0 and at the reduction's boundaries (x/ln 2 - 1/2 near an integer); ε_e itself is the
 * lemma's value, between 4u and 8u (4.98u) (it was about 58u with γ₂₈ on every coefficient). The same for L21's
 * compensated e^{x_h + x_l} (pr_certify_exp_comp) within ε_e2, about 1.02u. */
#include <fenv.h>
#include <math.h>
#include <stdio.h>
#include <arb.h>
#include "pr_test.h"
#include "pr_status.h"
#include "pr_rng.h"
#include "pr_certify_impl.h"

/* x's check: 1 when |ê - e^x| <= eps·e^x is proved (comp: L21's compensated exp of x + xl, within eps2, else
 * L3's of x); *rel gets the error relative to e^x (midpoint) */
static int check_x(const cexp_t *ex, double x, double xl, int comp, double *rel)
{
    double e = comp ? pr_certify_exp_comp(ex, x, xl) : pr_certify_exp_eval(ex, x);
    arb_t t, d, b;
    arb_init(t);
    arb_init(d);
    arb_init(b);
    arb_set_d(t, x);
    if (comp)
        cert_add_d(t, t, xl, 128);
    arb_exp(t, t, 128);
    arb_set_d(d, e);
    arb_sub(d, d, t, 128);
    arb_abs(d, d);
    cert_mul_d(b, t, comp ? ex->eps2 : ex->eps, 128);
    int ok = arb_le(d, b);
    arb_div(d, d, t, 128);
    *rel = arf_get_d(arb_midref(d), ARF_RND_NEAR);
    arb_clear(t);
    arb_clear(d);
    arb_clear(b);
    return ok;
}

int main(void)
{
    pr_rng_t rng;
    uint64_t seed = pr_test_seed("test_certify_exp", 1503);
    pr_rng_init(rng, seed);
    double u = 0x1p-53;
    cexp_t ex;
    PR_CHECK_OK(pr_certify_exp_init(&ex, u));
    PR_CHECK(ex.eps > 4.0 * u && ex.eps < 8.0 * u, "ε_e = %.17g = %.3f u, not the lemma's about 6u", ex.eps, ex.eps / u);
    PR_CHECK(ex.eps2 > 0.9 * u && ex.eps2 < 1.2 * u, "ε_e2 = %.3f u, not L21's about 1.02u", ex.eps2 / u);
    double worst = 0.0, worst2 = 0.0;
    int bad = 0;
    for (int t = 0; t < 120000 && bad < 5; t++) {
        double x;
        if (t % 3 == 0) /* anywhere in [-700, 0] */
            x = -700.0 * pr_rng_uniform(rng);
        else if (t % 3 == 1) /* near 0 */
            x = -ldexp(pr_rng_uniform(rng), -(int)(60 * pr_rng_uniform(rng)));
        else /* where x·log2(e) - 1/2 is near an integer: |r| near its largest */
            x = -((double)(long)(1000 * pr_rng_uniform(rng)) + 0.5) * 0.6931471805599453 + 1e-9 * (pr_rng_uniform(rng) - 0.5);
        x = x < -700.0 ? -700.0 : x;
        /* the compensated exp's low part: up to 2^-20, or at the scale of x's rounding */
        int comp = t >= 60000;
        double xl = !comp ? 0.0 : t % 2 ? ldexp(pr_rng_uniform(rng) - 0.5, -19) : (pr_rng_uniform(rng) - 0.5) * u * fabs(x);
        double rel;
        int ok = check_x(&ex, x, xl, comp, &rel);
        *(comp ? &worst2 : &worst) = fmax(comp ? worst2 : worst, rel);
        if (!ok)
            bad++;
        PR_CHECK(ok, "x = %a + %a (%s): |ê - e^x|/e^x = %.3g u above its bound %.3g u (seed %llu)", x, xl,
                 comp ? "L21" : "L3", rel / u, (comp ? ex.eps2 : ex.eps) / u, (unsigned long long)seed);
    }
    /* ε_e2 is sharp: the errors seen reach above its half (so a halved ε_e2 fails this test) */
    PR_CHECK(worst2 > 0.5 * ex.eps2, "L21: largest error seen %.3f u, below half of ε_e2 = %.3f u", worst2 / u,
             ex.eps2 / u);
    printf("test_certify_exp: ε_e = %.3f u, largest error seen %.3f u; L21's ε_e2 = %.3f u, largest seen %.3f u\n",
           ex.eps / u, worst / u, ex.eps2 / u, worst2 / u);
    return pr_test_finish("test_certify_exp");
}
