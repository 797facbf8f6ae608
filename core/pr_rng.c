#include <math.h>
#include "pr_rng.h"

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

void pr_rng_init(pr_rng_t r, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&x);
}

uint64_t pr_rng_u64(pr_rng_t r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3];
    s[2] ^= t; s[3] = rotl(s[3], 45);
    return result;
}

double pr_rng_uniform(pr_rng_t r) { return (double)(pr_rng_u64(r) >> 11) * 0x1.0p-53; }

double pr_rng_range(pr_rng_t r, double lo, double hi) { return lo + (hi - lo) * pr_rng_uniform(r); }

uint64_t pr_rng_below(pr_rng_t r, uint64_t m)
{
    /* rejection sampling: no modulo bias */
    uint64_t lim = UINT64_MAX - UINT64_MAX % m, x;
    do x = pr_rng_u64(r); while (x >= lim);
    return x % m;
}

double pr_rng_normal(pr_rng_t r)
{
    double u1 = 1.0 - pr_rng_uniform(r), u2 = pr_rng_uniform(r);
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

void pr_rng_fill(double *x, long len, double b, pr_rng_t r)
{
    for (long i = 0; i < len; i++)
        x[i] = pr_rng_range(r, -b, b);
}
