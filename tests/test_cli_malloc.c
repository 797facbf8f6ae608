/* pr_cli_pin_malloc (the CLI's first call): after a large block is freed, a 1 MiB block still
 * comes from fresh pages (glibc's mmap), not from the heap the large one raised the threshold
 * to. Without the pin glibc serves it from the heap, so a sweep row's allocation cost (page
 * faults or none) depended on the rows before it: reproduce --quick's G5 read 1.45 instead of
 * 1.03. The mmapped bit is glibc's chunk flag (size field, bit 1), read only under glibc's own
 * malloc (AddressSanitizer replaces it: there only the call's status is checked). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "pr_status.h"
#include "../experiments/cli.h"
#include "pr_test.h"

#if defined(__GLIBC__) && !defined(__SANITIZE_ADDRESS__)
#define GLIBC_MALLOC 1
static int mmapped(const void *p)
{
    size_t head;
    memcpy(&head, (const void *)((uintptr_t)p - sizeof head), sizeof head);
    return (int)((head >> 1) & 1);
}
#endif

int main(void)
{
    PR_CHECK_OK(pr_cli_pin_malloc());
#if defined(GLIBC_MALLOC)
    for (size_t big = (size_t)1 << 23; big <= (size_t)1 << 26; big <<= 1) {
        char *a = malloc(big);
        PR_CHECK(a != NULL, "malloc(%zu)", big);
        memset(a, 1, big);
        free(a);
        char *b = malloc((size_t)1 << 20);
        PR_CHECK(b != NULL && mmapped(b), "after freeing %zu bytes, 1 MiB came from the heap (the threshold moved)",
                 big);
        free(b);
    }
#else
    printf("test_cli_malloc: not glibc's malloc (or AddressSanitizer's): the blocks' origin is not checked\n");
#endif
    return pr_test_finish("test_cli_malloc");
}
