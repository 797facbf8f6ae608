#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "pr_status.h"
#include "pr_vec.h"
#include "pr_posw.h"

int pr_posw_init(pr_posw_t W, int n, int d, int s)
{
    memset(W, 0, sizeof(*W));
    if (n <= 0 || d <= 0 || s < 0)
        return PR_EINVAL;
    size_t len;
    if (pr_size_mul(&len, (size_t)s, 2 * (size_t)n - 1) || len > SIZE_MAX / sizeof(double))
        return PR_ESIZE;
    W->a = malloc(sizeof(int) * (s ? s : 1));
    W->b = malloc(sizeof(int) * (s ? s : 1));
    W->w = calloc(len ? len : 1, sizeof(double));
    if (!W->a || !W->b || !W->w) {
        pr_posw_clear(W);
        return PR_ENOMEM;
    }
    W->n = n;
    W->d = d;
    W->s = s;
    W->kind = PR_POS_CUSTOM;
    W->rope_base = 0.0;
    return PR_OK;
}

void pr_posw_clear(pr_posw_t W)
{
    free(W->a);
    free(W->b);
    free(W->w);
    memset(W, 0, sizeof(*W));
}

/* The RoPE block support: for each pair (x, y), the four entries of its 2×2 block, s = 2d. */
static void rope_support(pr_posw_t W, pr_rope_layout_t layout)
{
    int d = W->d;
    for (int k = 0; k < d / 2; k++) {
        int x, y;
        pr_rope_pair(&x, &y, k, d, layout);
        int pa[4] = {x, x, y, y}, pb[4] = {x, y, x, y};
        for (int t = 0; t < 4; t++) {
            W->a[4 * k + t] = pa[t];
            W->b[4 * k + t] = pb[t];
        }
    }
}

int pr_posw_init_rope(pr_posw_t W, int n, int d, double base, pr_rope_layout_t layout)
{
    if (d % 2)
        return PR_EODD;
    int st = pr_posw_init(W, n, d, 2 * d);
    if (st)
        return st;
    double *theta = malloc(sizeof(double) * (d / 2));
    if (!theta) {
        pr_posw_clear(W);
        return PR_ENOMEM;
    }
    if ((st = pr_rope_angles(theta, d, base))) {
        free(theta);
        pr_posw_clear(W);
        return st;
    }
    rope_support(W, layout);
    /* W_ℓ = R_{-ℓ}: block [[cos ℓθ, sin ℓθ], [-sin ℓθ, cos ℓθ]] */
    for (int k = 0; k < d / 2; k++) {
        double *wxx = pr_posw_seq(W, 4 * k), *wxy = pr_posw_seq(W, 4 * k + 1);
        double *wyx = pr_posw_seq(W, 4 * k + 2), *wyy = pr_posw_seq(W, 4 * k + 3);
        for (long l = -(n - 1); l <= n - 1; l++) {
            long i = pr_posw_index(n, l);
            double c = cos((double)l * theta[k]), s = sin((double)l * theta[k]);
            wxx[i] = c;
            wxy[i] = s;
            wyx[i] = -s;
            wyy[i] = c;
        }
    }
    free(theta);
    W->kind = layout == PR_ROPE_INTERLEAVED ? PR_POS_ROPE : PR_POS_ROPE_NEOX;
    W->rope_base = base;
    return PR_OK;
}

int pr_posw_init_general(pr_posw_t W, int n, int d, pr_rng_t rng)
{
    if (d % 2)
        return PR_EODD;
    int st = pr_posw_init(W, n, d, 2 * d);
    if (st)
        return st;
    rope_support(W, PR_ROPE_INTERLEAVED);
    pr_rng_fill(W->w, (long)W->s * (2L * n - 1), 1.0, rng);
    W->kind = PR_POS_GENERAL;
    return PR_OK;
}

int pr_posw_init_identity(pr_posw_t W, int n, int d)
{
    int st = pr_posw_init(W, n, d, d);
    if (st)
        return st;
    for (int k = 0; k < d; k++) {
        W->a[k] = W->b[k] = k;
        double *w = pr_posw_seq(W, k);
        for (long i = 0; i < 2L * n - 1; i++)
            w[i] = 1.0;
    }
    W->kind = PR_POS_IDENTITY;
    return PR_OK;
}

int pr_posw_init_dense(pr_posw_t W, const double *w3, int n, int d)
{
    if (n <= 0 || d <= 0)
        return PR_EINVAL;
    size_t L = 2 * (size_t)n - 1, dd = (size_t)d * d;
    if (pr_vec_check_finite(w3, L * dd))
        return PR_ENONFINITE;
    int s = 0;
    for (size_t ab = 0; ab < dd; ab++)
        for (size_t l = 0; l < L; l++)
            if (w3[l * dd + ab] != 0.0) {
                s++;
                break;
            }
    int st = pr_posw_init(W, n, d, s);
    if (st)
        return st;
    int k = 0;
    for (size_t ab = 0; ab < dd; ab++) {
        int used = 0;
        for (size_t l = 0; l < L; l++)
            used |= w3[l * dd + ab] != 0.0;
        if (!used)
            continue;
        W->a[k] = (int)(ab / d);
        W->b[k] = (int)(ab % d);
        double *w = pr_posw_seq(W, k);
        for (size_t l = 0; l < L; l++)
            w[l] = w3[l * dd + ab];
        k++;
    }
    return PR_OK;
}

void pr_posw_to_dense(double *w3, const pr_posw_t W)
{
    size_t L = 2 * (size_t)W->n - 1, dd = (size_t)W->d * W->d;
    memset(w3, 0, sizeof(double) * L * dd);
    for (int k = 0; k < W->s; k++) {
        const double *w = pr_posw_seq(W, k);
        for (size_t l = 0; l < L; l++)
            w3[l * dd + (size_t)W->a[k] * W->d + W->b[k]] += w[l];
    }
}

double pr_posw_max_rowsum(const pr_posw_t W)
{
    size_t L = 2 * (size_t)W->n - 1;
    double m = 0.0;
    /* offsets in blocks, sequences inside a block: contiguous reads, the same sums */
    enum { BLK = 256 };
    for (size_t l0 = 0; l0 < L; l0 += BLK) {
        size_t nl = L - l0 < BLK ? L - l0 : BLK;
        double sum[BLK] = {0};
        for (int k = 0; k < W->s; k++) {
            const double *w = W->w + (size_t)k * L + l0;
            for (size_t l = 0; l < nl; l++)
                sum[l] += fabs(w[l]);
        }
        for (size_t l = 0; l < nl; l++)
            m = fmax(m, sum[l]);
    }
    return m;
}

int pr_posw_is_factorised(const pr_posw_t W)
{
    return W->kind == PR_POS_ROPE || W->kind == PR_POS_ROPE_NEOX;
}

const char *pr_pos_kind_name(pr_pos_kind_t kind)
{
    switch (kind) {
    case PR_POS_ROPE: return "rope";
    case PR_POS_ROPE_NEOX: return "rope-neox";
    case PR_POS_GENERAL: return "general";
    case PR_POS_IDENTITY: return "identity";
    default: return "custom";
    }
}
