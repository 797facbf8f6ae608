#include <math.h>
#include <stdlib.h>
#include "pr_status.h"
#include "pr_rope.h"

int pr_rope_angles(double *theta, int d, double base)
{
    if (d <= 0 || !(base > 1.0) || !isfinite(base))
        return PR_EINVAL;
    if (d % 2)
        return PR_EODD;
    for (int k = 0; k < d / 2; k++)
        theta[k] = pow(base, -2.0 * k / d);
    return PR_OK;
}

void pr_rope_pair(int *x, int *y, int k, int d, pr_rope_layout_t layout)
{
    if (layout == PR_ROPE_INTERLEAVED) {
        *x = 2 * k;
        *y = 2 * k + 1;
    } else {
        *x = k;
        *y = k + d / 2;
    }
}

int pr_rope_rotate(double *Xr, const double *X, int n, int d, double base,
                   pr_rope_layout_t layout, int sign)
{
    if (n < 0 || d < 0 || (sign != 1 && sign != -1))
        return PR_EINVAL;
    if (d % 2)
        return PR_EODD;
    /* on the heap: d comes from input, and a stack array of d/2 doubles has no bound */
    double *theta = malloc(sizeof(double) * ((size_t)d / 2 + 1));
    if (!theta)
        return PR_ENOMEM;
    int st = pr_rope_angles(theta, d, base);
    if (st) {
        free(theta);
        return st;
    }
    for (long i = 0; i < n; i++) {
        const double *x = X + i * d;
        double *xr = Xr + i * d;
        for (int k = 0; k < d / 2; k++) {
            int a, b;
            pr_rope_pair(&a, &b, k, d, layout);
            double c = cos((double)i * theta[k]), s = sign * sin((double)i * theta[k]);
            double u = x[a], v = x[b];
            xr[a] = u * c - v * s;
            xr[b] = u * s + v * c;
        }
    }
    free(theta);
    return PR_OK;
}

void pr_rope_layout_perm(int *perm, int d)
{
    for (int k = 0; k < d / 2; k++) {
        perm[2 * k] = k;
        perm[2 * k + 1] = k + d / 2;
    }
}
