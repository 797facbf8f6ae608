/* pr_test: the harness every unit test uses. Seeds are fixed, printed, and overridable
 * with PR_SEED so that any failure replays exactly. */
#ifndef PR_TEST_H
#define PR_TEST_H

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static long pr_test_failed_count = 0, pr_test_passed_count = 0;

/* The seed from PR_SEED, or dflt; printed so a failing run can be replayed. */
static inline uint64_t pr_test_seed(const char *test, uint64_t dflt)
{
    const char *e = getenv("PR_SEED");
    uint64_t seed = e && *e ? strtoull(e, 0, 0) : dflt;
    printf("%s: seed %" PRIu64 " (replay with PR_SEED=%" PRIu64 ")\n", test, seed, seed);
    return seed;
}

/* Records one check; on failure prints where, the condition, and a printf-style
 * description of the inputs that replay it. */
#define PR_CHECK(cond, ...)                                                               \
    do {                                                                                  \
        if (cond) {                                                                       \
            pr_test_passed_count++;                                                       \
        } else {                                                                          \
            pr_test_failed_count++;                                                       \
            fprintf(stderr, "FAIL %s:%d: %s\n  ", __FILE__, __LINE__, #cond);             \
            fprintf(stderr, __VA_ARGS__);                                                 \
            fputc('\n', stderr);                                                          \
        }                                                                                 \
    } while (0)

/* A library call that must succeed. */
#define PR_CHECK_OK(call)                                                                 \
    do {                                                                                  \
        int pr_st_ = (call);                                                              \
        PR_CHECK(pr_st_ == 0, "%s returned %d: %s", #call, pr_st_, pr_strerror(pr_st_)); \
    } while (0)

/* Prints the closing "N passed, N failed" line and returns the exit status. */
static inline int pr_test_finish(const char *test)
{
    printf("%s: %ld passed, %ld failed\n", test, pr_test_passed_count, pr_test_failed_count);
    return pr_test_failed_count ? 1 : 0;
}

#endif
