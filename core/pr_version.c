#include <fftw3.h>
#include "pr_config.h"
#include "pr_git.h"
#include "pr_version.h"

/* OpenBLAS reports its build configuration, including its version. */
extern char *openblas_get_config(void);

const char *pr_version(void) { return PR_VERSION; }
const char *pr_git_commit(void) { return PR_GIT_COMMIT; }
const char *pr_build_type(void) { return PR_BUILDTYPE; }

void pr_version_fprint(FILE *f, const char *prefix)
{
    fprintf(f, "%spolyrope %s\n", prefix, PR_VERSION);
    fprintf(f, "%sgit commit: %s\n", prefix, PR_GIT_COMMIT);
    fprintf(f, "%sbuild type: %s (%s)\n", prefix, PR_BUILDTYPE, PR_CC);
    fprintf(f, "%slibraries: %s, %s\n", prefix, fftw_version, openblas_get_config());
}
