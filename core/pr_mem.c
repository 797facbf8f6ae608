#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include "pr_status.h"
#include "pr_mem.h"

void pr_mem_init(pr_mem_t M, int dry)
{
    M->dry = dry;
    M->bytes = 0.0;
    M->failed = 0;
}

/* counts the request; 1 when it should be made (not dry, size representable) */
static int take(pr_mem_struct *M, size_t count, size_t size, size_t *len)
{
    M->bytes += (double)count * (double)size;
    if (M->dry)
        return 0;
    if (size && count > SIZE_MAX / size) {
        M->failed = 1;
        return 0;
    }
    *len = count && size ? count * size : 1;
    return 1;
}

void *pr_mem_alloc(pr_mem_t M, size_t count, size_t size)
{
    size_t len;
    if (!take(M, count, size, &len))
        return NULL;
    void *p = malloc(len);
    M->failed |= !p;
    return p;
}

void *pr_mem_zalloc(pr_mem_t M, size_t count, size_t size)
{
    size_t len;
    if (!take(M, count, size, &len))
        return NULL;
    void *p = calloc(len, 1);
    M->failed |= !p;
    return p;
}

double *pr_mem_big(pr_mem_t M, size_t count, size_t size)
{
    size_t len;
    void *p = NULL;
    if (!take(M, count, size, &len))
        return NULL;
    if (posix_memalign(&p, (size_t)2 << 20, len)) {
        M->failed = 1;
        return NULL;
    }
    madvise(p, len, MADV_HUGEPAGE);
    return p;
}

void pr_mem_note(pr_mem_t M, double bytes)
{
    M->bytes += bytes;
}

int pr_mem_status(const pr_mem_t M)
{
    return M->failed ? PR_ENOMEM : PR_OK;
}
