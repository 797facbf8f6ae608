/* pr_rng: a seeded, reproducible generator (xoshiro256** seeded by splitmix64).
 * The same seed gives the same stream on every machine. */
#ifndef PR_RNG_H
#define PR_RNG_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    uint64_t s[4];
} pr_rng_struct;
typedef pr_rng_struct pr_rng_t[1];

void pr_rng_init(pr_rng_t r, uint64_t seed);
uint64_t pr_rng_u64(pr_rng_t r);
/* uniform in [0, 1), 53 random bits */
double pr_rng_uniform(pr_rng_t r);
/* uniform in [lo, hi) */
double pr_rng_range(pr_rng_t r, double lo, double hi);
/* uniform integer in [0, m), m > 0 */
uint64_t pr_rng_below(pr_rng_t r, uint64_t m);
/* standard normal (Box-Muller) */
double pr_rng_normal(pr_rng_t r);
/* fill x[0..len) uniformly in [-b, b) */
void pr_rng_fill(double *x, long len, double b, pr_rng_t r);

#ifdef __cplusplus
}
#endif
#endif
