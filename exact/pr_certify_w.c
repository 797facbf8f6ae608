/* pr_certify for a general W (attn's --w): the scores M_ij = σ Σ_{(a,b)∈S} Q_ia w_ab(i-j) K_jb in
 * double with their proved bound (docs/certify.md L13), for pr_certify.c's double pass (L3-L5
 * unchanged), and in Arb for its fallback rows (L14). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "pr_status.h"
#include "pr_attn.h"
#include "pr_posw.h"
#include "pr_vec.h"
#include "pr_certify_impl.h"

#define TB 16   /* support entries per partial sum of a score (L13's depth) */
#define JT 128  /* keys per tile of the scores */

/* om[ℓ+n-1] >= ‖|W_ℓ|‖₂ by Schur's test: ‖|W|‖₂² <= (max row sum)(max column sum) of |W| (L13);
 * rs, cs: d doubles of scratch each */
static double schur_bounds(double *om, const pr_posw_struct *W, double u, double *rs, double *cs)
{
    int n = W->n, d = W->d;
    long L = 2 * (long)n - 1;
    double g = pr_certify_gamma(2.0 * W->s, u), mx = 0.0;
    for (long t = 0; t < L; t++) {
        memset(rs, 0, sizeof(double) * d);
        memset(cs, 0, sizeof(double) * d);
        for (int k = 0; k < W->s; k++) {
            double a = fabs(W->w[(size_t)k * L + t]);
            rs[W->a[k]] += a;
            cs[W->b[k]] += a;
        }
        double r = 0.0, c = 0.0;
        for (int a = 0; a < d; a++) {
            r = rs[a] > r ? rs[a] : r;
            c = cs[a] > c ? cs[a] : c;
        }
        /* each sum of at most s nonnegative terms, computed: the exact one is below it times 1 + γ_2s;
         * every product rounded up (pr_certify_up adds an ulp: an underflowed product stays above) */
        om[t] = pr_certify_up(sqrt(pr_certify_up(pr_certify_up(r * (1.0 + g)) * pr_certify_up(c * (1.0 + g)))));
        mx = om[t] > mx ? om[t] : mx;
    }
    return mx;
}

int pr_certify_w_setup(pass_t *ps, double *om_max, const pr_posw_struct *W, const double *K)
{
    const cert_prob_t *p = ps->p;
    int n = p->n, d = p->d, s = W->s;
    size_t L = 2 * (size_t)n - 1;
    ps->W = W;
    ps->Kt = malloc(sizeof(double) * (size_t)n * d);
    ps->wrev = malloc(sizeof(double) * (s ? (size_t)s * L : 1));
    ps->om = malloc(sizeof(double) * L);
    double *scratch = malloc(sizeof(double) * 2 * d);
    if (!ps->Kt || !ps->wrev || !ps->om || !scratch) {
        free(scratch);
        return PR_ENOMEM;
    }
    for (int j = 0; j < n; j++)
        for (int c = 0; c < d; c++)
            ps->Kt[(size_t)c * n + j] = K[(size_t)j * d + c];
    for (int k = 0; k < s; k++)
        for (size_t t = 0; t < L; t++)
            ps->wrev[k * L + t] = W->w[k * L + L - 1 - t];
    *om_max = schur_bounds(ps->om, W, p->u, scratch, scratch + d);
    free(scratch);
    /* L13: |ŝ - σT| <= σ̂ A (γ + s_r + u(1 + u)(1 + γ)) + σ̂·s·η·max|K| + (2s + 2)η·max(1, σ̂),
     * γ = γ_{TB + ⌈s/TB⌉ + 1}, A <= nQ·om·nK; two more η for the bias and the shift (L2) */
    double u = p->u, g = pr_certify_gamma((s < TB ? s : TB) + (s + TB - 1) / TB + 1, u);
    ps->cs = pr_certify_up((g + p->sig_rel + u * (1.0 + u) * (1.0 + g)) * 1.001);
    ps->tiny = pr_certify_up((2.0 * s + 4.0) * ETA * (p->sig > 1.0 ? p->sig : 1.0)) +
               pr_certify_underflow_carry(p->sig * s, pr_vec_max_abs(K, (size_t)n * d));
    return PR_OK;
}

void pr_certify_w_scores(double *S, double *part, const pass_t *ps, int i0, int mi, int w)
{
    const cert_prob_t *p = ps->p;
    const pr_posw_struct *W = ps->W;
    int n = p->n, d = p->d;
    size_t L = 2 * (size_t)n - 1;
    memset(S, 0, sizeof(double) * (size_t)mi * w);
    /* tiles of JT keys and blocks of TB support entries keep a block's K and w slices in cache
     * for all its rows; each score sums TB-term partial sums: depth TB + ⌈s/TB⌉ (L13) */
    for (int j0 = 0; j0 < w; j0 += JT)
        for (int k0 = 0; k0 < W->s; k0 += TB) {
            int k1 = W->s - k0 < TB ? W->s : k0 + TB;
            for (int r = 0; r < mi; r++) {
                int i = i0 + r, jn = p->causal ? i + 1 : n, m = (jn < j0 + JT ? jn : j0 + JT) - j0;
                if (m <= 0)
                    continue;
                memset(part, 0, sizeof(double) * m);
                for (int k = k0; k < k1; k++) {
                    double q = ps->Qr[(size_t)i * d + W->a[k]];
                    if (q == 0.0)
                        continue; /* its terms are exactly 0 */
                    /* w_k(i - j) for j = j0, j0 + 1, ...: the reversed sequence from n - 1 - i + j0 on */
                    const double *wk = ps->wrev + k * L + (size_t)(n - 1 - i + j0);
                    const double *kt = ps->Kt + (size_t)W->b[k] * n + j0;
#pragma omp simd
                    for (int j = 0; j < m; j++)
                        part[j] += q * wk[j] * kt[j];
                }
                double *srow = S + (size_t)r * w + j0;
                for (int j = 0; j < m; j++)
                    srow[j] += part[j];
            }
        }
    for (int r = 0; r < mi; r++) {
        int jn = p->causal ? i0 + r + 1 : n;
        for (int j = 0; j < jn; j++)
            S[(size_t)r * w + j] *= p->sig;
    }
}

int pr_certify_w_arb_scores(arb_ptr A, const double *Q_i, const double *K, const arb_t sig, int i,
                            const pr_posw_struct *W, const cert_prob_t *p, slong prec)
{
    int n = p->n, d = p->d, s = W->s, jn = p->causal ? i + 1 : n;
    size_t L = 2 * (size_t)n - 1;
    arb_ptr x = _arb_vec_init(s ? s : 1), y = _arb_vec_init(s ? s : 1);
    for (int j = 0; j < jn; j++) {
        size_t t = (size_t)(i - j + n - 1);
        /* Q_ia·w_ab(ℓ) (exact at prec >= 106) and K_jb, as balls: the dot product is the score's ball */
        for (int k = 0; k < s; k++) {
            arb_set_d(x + k, Q_i[W->a[k]]);
            cert_mul_d(x + k, x + k, W->w[k * L + t], prec);
            arb_set_d(y + k, K[(size_t)j * d + W->b[k]]);
        }
        arb_dot(A + j, NULL, 0, x, 1, y, 1, s, prec);
        arb_mul(A + j, A + j, sig, prec);
    }
    _arb_vec_clear(x, s ? s : 1);
    _arb_vec_clear(y, s ? s : 1);
    return jn;
}

int pr_certify_w_arb_row(arb_ptr O, const double *Q_i, const double *K, arb_srcptr Vb, const arb_t sig, int i,
                         const pass_t *ps, slong prec)
{
    const cert_prob_t *p = ps->p;
    arb_ptr A = _arb_vec_init(p->n);
    arb_t S;
    arb_init(S);
    int jn = pr_certify_w_arb_scores(A, Q_i, K, sig, i, ps->W, p, prec);
    pr_certify_arb_softmax(A, S, i, jn, p, prec);
    pr_certify_arb_pv(O, A, S, Vb, jn, p, prec);
    arb_clear(S);
    _arb_vec_clear(A, p->n);
    return PR_OK;
}

int pr_certify_forward_w(pr_certify_result_t *res, const double *O_cand, const double *Q, const double *K,
                         const double *V, const double *w3, int n, int d, const pr_certify_problem_t *prob,
                         const pr_certify_opts_t *opts)
{
    if (!res || !w3 || n < 1 || d < 1)
        return PR_EINVAL;
    memset(res, 0, sizeof(*res));
    pr_posw_t W;
    memset(W, 0, sizeof(W));
    int st = pr_posw_init_dense(W, w3, n, d);
    if (!st)
        st = pr_certify_forward_posw(res, O_cand, Q, K, V, W, n, d, prob, opts);
    pr_posw_clear(W);
    return st;
}

int pr_certify_forward_heads_w(pr_certify_result_t *res, const double *O_cand, const double *Q, const double *K,
                               const double *V, const double *w3, int batch, int heads, int kv_heads, int n, int d,
                               const pr_certify_problem_t *prob, const pr_certify_opts_t *opts)
{
    if (!res || !O_cand || !Q || !K || !V || !w3 || batch < 1 || heads < 1 || kv_heads < 1 || n < 1 || d < 1)
        return PR_EINVAL;
    if (heads % kv_heads)
        return PR_ESHAPE;
    pr_posw_t W;
    memset(W, 0, sizeof(W)); /* cleared whatever pr_posw_init_dense returns */
    int st = pr_posw_init_dense(W, w3, n, d);
    size_t nd = (size_t)n * d;
    for (int t = 0; !st && t < batch * heads; t++) {
        size_t qo = (size_t)t * nd, ko = (size_t)pr_attn_kv_head(t, heads, kv_heads) * nd;
        st = pr_certify_forward_posw(res + t, O_cand + qo, Q + qo, K + ko, V + ko, W, n, d, prob, opts);
    }
    pr_posw_clear(W);
    return st;
}
