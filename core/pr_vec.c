#include <math.h>
#include <stdint.h>
#include "pr_status.h"
#include "pr_vec.h"

int pr_vec_check_finite(const double *x, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!isfinite(x[i]))
            return PR_ENONFINITE;
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
