#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "pr_status.h"
#include "pr_vec.h"
#include "pr_dense.h"
#include "pr_control.h"
#include "pr_flat.h"

/* status st with a one-line reason in msg (when given) */
static int fail(char *msg, size_t len, int st, const char *fmt, ...)
{
    if (msg && len) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, len, fmt, ap);
        va_end(ap);
    }
    return st;
}

/* the arguments that do not depend on the data: sizes, kinds, options */
static int check_args(char *msg, size_t len, long b, long h, long h_kv, long n, long d, int pos,
                      double rope_base, double sigma, int causal, double alibi, int algo, double eps,
                      const double *w)
{
    if (b <= 0 || h <= 0 || h_kv <= 0 || n <= 0 || d <= 0)
        return fail(msg, len, PR_EINVAL, "sizes b=%ld h=%ld h_kv=%ld n=%ld d=%ld: each must be positive", b, h,
                    h_kv, n, d);
    if (h % h_kv)
        return fail(msg, len, PR_ESHAPE, "%ld query heads are not a multiple of %ld key/value heads", h, h_kv);
    if (n > INT_MAX / 2 || d > INT_MAX)
        return fail(msg, len, PR_ESIZE, "n=%ld or d=%ld is too large", n, d);
    size_t count;
    if (pr_size_mul(&count, (size_t)b, (size_t)h) || pr_size_mul(&count, count, (size_t)n) ||
        pr_size_mul(&count, count, (size_t)d) || pr_size_mul(&count, count, sizeof(double)))
        return fail(msg, len, PR_ESIZE, "b*h*n*d doubles overflow the address space");
    if (b * h > INT_MAX)
        return fail(msg, len, PR_ESIZE, "b*h = %ld heads: at most %d (one plan serves them all)", b * h, INT_MAX);
    if (pos != PR_POS_ROPE && pos != PR_POS_ROPE_NEOX && pos != PR_POS_IDENTITY && pos != PR_POS_CUSTOM)
        return fail(msg, len, PR_EINVAL, "pos %d: use rope, rope-neox, identity or a custom W", pos);
    if (pos == PR_POS_CUSTOM && !w)
        return fail(msg, len, PR_EINVAL, "a custom position W needs its (2n-1, d, d) array");
    if ((pos == PR_POS_ROPE || pos == PR_POS_ROPE_NEOX) && (d % 2))
        return fail(msg, len, PR_EODD, "RoPE needs an even head dimension d, got %ld", d);
    if ((pos == PR_POS_ROPE || pos == PR_POS_ROPE_NEOX) && !(rope_base > 1.0 && isfinite(rope_base)))
        return fail(msg, len, PR_EINVAL, "rope_base %g: must be finite and > 1", rope_base);
    if (!(sigma > 0.0) || !isfinite(sigma))
        return fail(msg, len, PR_EINVAL, "score scale %g: must be finite and > 0", sigma);
    if (causal != 0 && causal != 1)
        return fail(msg, len, PR_EINVAL, "causal %d: use 0 or 1", causal);
    if (!(alibi >= 0.0) || !isfinite(alibi))
        return fail(msg, len, PR_EINVAL, "alibi slope %g: must be finite and >= 0", alibi);
    if (algo != PR_FLAT_EXACT && algo != PR_FLAT_FFT && algo != PR_FLAT_LOWRANK)
        return fail(msg, len, PR_EINVAL, "algo %d: use exact, fft or lowrank", algo);
    if (algo != PR_FLAT_EXACT && !(eps > 0.0 && isfinite(eps)))
        return fail(msg, len, PR_EINVAL, "eps %g: the fast paths need a finite target > 0", eps);
    return PR_OK;
}

static int make_w(pr_posw_t W, const double *w, int n, int d, int pos, double rope_base)
{
    switch (pos) {
    case PR_POS_ROPE:
        return pr_posw_init_rope(W, n, d, rope_base, PR_ROPE_INTERLEAVED);
    case PR_POS_ROPE_NEOX:
        return pr_posw_init_rope(W, n, d, rope_base, PR_ROPE_NEOX);
    case PR_POS_IDENTITY:
        return pr_posw_init_identity(W, n, d);
    default:
        return pr_posw_init_dense(W, w, n, d);
    }
}

/* every head through a fast path on one plan: P chosen once for the worst head (pr_control_forward_heads) */
static int fast_heads(double *O, double *bound, char *msg, size_t len, const double *Q, const double *K,
                      const double *V, const pr_posw_t W, int n, int d, long h, long bh, long bkv,
                      const pr_attn_opts_t *opts, int algo, double eps)
{
    pr_control_opts_t o;
    pr_control_info_t info;
    pr_control_opts_default(&o);
    o.eps = eps;
    o.widen = 1;
    const char *name = algo == PR_FLAT_FFT ? "fft" : "lowrank";
    pr_control_heads_t hd = {(int)bh, (int)bkv, bound, NULL};
    int st = pr_control_forward_heads(O, &info, Q, K, V, W, n, d, opts, &o, algo == PR_FLAT_LOWRANK, &hd);
    char where[64] = "";
    if (st && info.head >= 0 && bh > 1)
        /* name the head: the data of one head may be what is wrong */
        snprintf(where, sizeof where, "head (%ld, %ld): ", info.head / h, info.head % h);
    if (st == PR_EFLOOR)
        return fail(msg, len, st, "%s: eps %g is below the floating-point floor %.3g (R = %.4g from the data, the "
                    "largest over the heads): raise eps or use algo='exact'", name, eps, info.floor, info.R);
    if (st == PR_EBUDGET)
        return fail(msg, len, st, "%s: degree %d needs %.4g terms, past the memory or work budget: raise eps, "
                    "use inputs with smaller entries (R = %.4g) or algo='exact'", name, info.degree, info.terms,
                    info.R);
    if (st == PR_EINVAL && algo == PR_FLAT_LOWRANK)
        return fail(msg, len, st, "lowrank needs factorised positions (rope, rope-neox or identity) and no "
                    "alibi: use algo='fft'");
    if (st)
        return fail(msg, len, st, "%s%s: %s", where, name, pr_strerror(st));
    return PR_OK;
}

/* the dense reference head by head; head (bi, hi) named in a failure */
static int exact_heads(double *O, double *bound, char *msg, size_t len, const double *Q, const double *K,
                       const double *V, const pr_posw_t W, int n, int d, long h, long bh, long bkv,
                       const pr_attn_opts_t *opts)
{
    size_t head = (size_t)n * (size_t)d;
    for (long q = 0; q < bh; q++) {
        size_t kv = (size_t)pr_attn_kv_head(q, bh, bkv) * head;
        if (bound)
            bound[q] = NAN;
        int st = pr_dense_forward(O + q * head, NULL, Q + q * head, K + kv, V + kv, W, n, d, opts);
        if (st && bh > 1)
            return fail(msg, len, st, "head (%ld, %ld): exact: %s", q / h, q % h, pr_strerror(st));
        if (st)
            return fail(msg, len, st, "exact: %s", pr_strerror(st));
    }
    return PR_OK;
}

int pr_flat_attention(double *O, double *bound, char *msg, size_t msg_len,
                      const double *Q, const double *K, const double *V, const double *w,
                      long b, long h, long h_kv, long n, long d,
                      int pos, double rope_base, double sigma, int causal, double alibi,
                      int algo, double eps)
{
    if (msg && msg_len)
        msg[0] = 0;
    int st = check_args(msg, msg_len, b, h, h_kv, n, d, pos, rope_base, sigma, causal, alibi, algo, eps, w);
    if (st)
        return st;
    size_t head = (size_t)n * (size_t)d, total = (size_t)b * (size_t)h * head;
    pr_posw_t W;
    if ((st = make_w(W, w, (int)n, (int)d, pos, rope_base))) {
        memset(O, 0, total * sizeof(double));
        return fail(msg, msg_len, st, "position W: %s", pr_strerror(st));
    }
    pr_attn_opts_t opts;
    pr_attn_opts_default(&opts, (int)d);
    opts.sigma = sigma;
    opts.causal = causal;
    double *beta = 0;
    if (alibi > 0.0) {
        beta = malloc(sizeof(double) * (2 * (size_t)n - 1));
        st = beta ? pr_bias_alibi(beta, (int)n, alibi) : PR_ENOMEM;
        if (st)
            st = fail(msg, msg_len, st, "alibi: %s", pr_strerror(st));
        opts.beta = beta;
    }
    /* a batch (b, h) is b·h query heads over b·h_kv kv heads (pr_attn_kv_head) */
    if (!st && algo == PR_FLAT_EXACT)
        st = exact_heads(O, bound, msg, msg_len, Q, K, V, W, (int)n, (int)d, h, b * h, b * h_kv, &opts);
    else if (!st)
        st = fast_heads(O, bound, msg, msg_len, Q, K, V, W, (int)n, (int)d, h, b * h, b * h_kv, &opts, algo, eps);
    if (st)
        memset(O, 0, total * sizeof(double));
    free(beta);
    pr_posw_clear(W);
    return st;
}
