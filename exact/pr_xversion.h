/* pr_xversion: what built the exact library, for self-describing output. */
#ifndef PR_XVERSION_H
#define PR_XVERSION_H

#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* pr_version_fprint's lines, then one more with the versions of GMP, MPFR, FLINT and Arb that
 * the exact library runs on, each starting with prefix. */
void pr_xversion_fprint(FILE *f, const char *prefix);

#ifdef __cplusplus
}
#endif
#endif
