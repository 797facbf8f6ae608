/* pr_vec: small checks on double arrays that every entry point needs. */
#ifndef PR_VEC_H
#define PR_VEC_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* PR_OK if every x[i] is finite, PR_ENONFINITE otherwise. */
int pr_vec_check_finite(const double *x, size_t len);
/* max |x[i]| (0 for len = 0) */
double pr_vec_max_abs(const double *x, size_t len);
/* max |x[i] - y[i]| */
double pr_vec_max_abs_diff(const double *x, const double *y, size_t len);
/* PR_OK and *out = a*b, or PR_ESIZE if the product overflows size_t */
int pr_size_mul(size_t *out, size_t a, size_t b);

#ifdef __cplusplus
}
#endif
#endif
