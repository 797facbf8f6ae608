#include <math.h>
#include <stdint.h>
#include "pr_status.h"
#include "pr_vec.h"

int pr_vec_check_finite(const double *x, size_t len)
{
    /* x·0 is ±0 for a finite x and NaN otherwise: eight running sums per block, which
     * vectorise without a long dependency chain (the dense reference checks its inputs at
     * every call, and a branch per element cost as much as its tiles at n = 256) */
    enum { BLK = 1024 };
    for (size_t i0 = 0; i0 < len; i0 += BLK) {
        size_t m = len - i0 < BLK ? len - i0 : BLK, i = 0;
        const double *y = x + i0;
        double s[8] = {0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0}, t = 0.0;
        for (; i + 8 <= m; i += 8)
            for (int j = 0; j < 8; j++)
                s[j] += y[i + j] * 0.0;
        for (; i < m; i++)
            t += y[i] * 0.0;
        for (int j = 0; j < 8; j++)
            t += s[j];
        if (t != 0.0)
            return PR_ENONFINITE;
    }
    return PR_OK;
}

double pr_vec_max_abs(const double *x, size_t len)
{
    /* fmax(m, |x|) without the call: a NaN x fails the comparison and leaves m, as fmax does
     * (m starts at 0, never NaN); the maximum does not depend on the order, so it vectorises */
    double m = 0.0;
#pragma omp simd reduction(max : m)
    for (size_t i = 0; i < len; i++) {
        double a = fabs(x[i]);
        m = a > m ? a : m;
    }
    return m;
}

double pr_vec_max_abs_diff(const double *x, const double *y, size_t len)
{
    double m = 0.0;
    for (size_t i = 0; i < len; i++)
        m = fmax(m, fabs(x[i] - y[i]));
    return m;
}

int pr_size_mul(size_t *out, size_t a, size_t b)
{
    if (a != 0 && b > SIZE_MAX / a)
        return PR_ESIZE;
    *out = a * b;
    return PR_OK;
}
