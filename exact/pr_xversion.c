#include <arb.h>
#include <flint/flint.h>
#include <gmp.h>
#include <mpfr.h>
#include "pr_version.h"
#include "pr_xversion.h"

void pr_xversion_fprint(FILE *f, const char *prefix)
{
    pr_version_fprint(f, prefix);
    fprintf(f, "%sexact libraries: GMP %s, MPFR %s, FLINT %s, Arb %s\n", prefix, gmp_version,
            mpfr_get_version(), flint_version, arb_version);
}
