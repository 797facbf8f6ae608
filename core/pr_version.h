/* pr_version: what built this library, for self-describing output. */
#ifndef PR_VERSION_H
#define PR_VERSION_H

#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

const char *pr_version(void);      /* e.g. "0.1.0" */
const char *pr_git_commit(void);   /* git describe of the source tree, or "unknown" */
const char *pr_build_type(void);   /* meson buildtype */
/* One line per fact, each starting with prefix (e.g. "# "): version, commit, build type,
 * compiler, and the versions of FFTW and OpenBLAS (this library's; pr_xversion_fprint adds the
 * exact library's GMP, MPFR, FLINT and Arb). */
void pr_version_fprint(FILE *f, const char *prefix);

#ifdef __cplusplus
}
#endif
#endif
