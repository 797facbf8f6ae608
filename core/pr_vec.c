#include <math.h>
#include <stdint.h>
#include "pr_status.h"
#include "pr_vec.h"

int pr_vec_check_finite(const double *x, size_t len)
{
    /* x·0 is ±0 for a finite x and NaN otherwise: a sum per block, which vectorises (the dense
     * reference checks its inputs at every call; a per-element branch cost as much as its
     * tiles at n = 256) */
    enum { BLK = 1024 };
    for (size_t i0 = 0; i0 < len; i0 += BLK) {
        size_t m = len - i0 < BLK ? len - i0 : BLK;
        double s = 0.0;
#pragma omp simd reduction(+ : s)
        for (size_t i = 0; i < m; i++)
            s += x[i0 + i] * 0.0;
        if (s != 0.0)
            return PR_ENONFINITE;
    }
    return PR_OK;
}

double pr_vec_max_abs(const double *x, size_t len)
{
    double m = 0.0;
    for (size_t i = 0; i < len; i++)
        m = fmax(m, fabs(x[i]));
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
