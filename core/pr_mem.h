/* pr_mem: allocations that can be counted without being made (issue 14's dry run).
 *
 * A structure's allocating function takes a pr_mem_t and makes every allocation through it.
 * Run once with dry = 1, it allocates nothing and M->bytes is what it would hold: the memory
 * estimate checked against a budget before anything is allocated. Run for real, M->bytes is what
 * it holds. One function does both, so estimate and allocation cannot drift (tests compare the
 * two exactly). Allocations made by another module (FFTW's spectra) are counted with
 * pr_mem_note at their known size. */
#ifndef PR_MEM_H
#define PR_MEM_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int dry;            /* 1: count only, every allocation returns NULL */
    double bytes;       /* bytes asked so far, in double (+Inf past it, never wrapped) */
    int failed;         /* a real allocation failed or its size passed size_t */
} pr_mem_struct;
typedef pr_mem_struct pr_mem_t[1];

void pr_mem_init(pr_mem_t M, int dry);

/* count × size bytes, counted (the product in double: a dry run of sizes past size_t still counts
 * them): malloc'd (uninitialised), or NULL when dry, count × size passes size_t or malloc fails
 * (those two set failed). count = 0 still returns a pointer. Pass a large count and a small
 * size as two factors rather than their product, which could wrap around. */
void *pr_mem_alloc(pr_mem_t M, size_t count, size_t size);

/* the same, zeroed */
void *pr_mem_zalloc(pr_mem_t M, size_t count, size_t size);

/* count × size bytes (size a multiple of 8), 2 MiB aligned and advised to transparent huge pages
 * (first-touch page faults otherwise dominate planning on virtual machines); free() releases
 * them. Uninitialised. */
double *pr_mem_big(pr_mem_t M, size_t count, size_t size);

/* bytes allocated elsewhere (e.g. pr_toeplitz_spec_alloc): counted only */
void pr_mem_note(pr_mem_t M, double bytes);

/* PR_ENOMEM if a real allocation failed, else PR_OK (a dry run never fails) */
int pr_mem_status(const pr_mem_t M);

#ifdef __cplusplus
}
#endif
#endif
