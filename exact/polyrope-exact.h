/* polyrope-exact: polyrope's certified and exact checkers (libpolyrope-exact, on Arb, FLINT,
 * MPFR and GMP), on top of polyrope.h (libpolyrope). One header per module; this one includes
 * them all. */
#ifndef POLYROPE_EXACT_H
#define POLYROPE_EXACT_H

#include "polyrope.h"
#include "pr_xversion.h"
#include "pr_certexp.h"
#include "pr_xtoeplitz.h"
#include "pr_hiprec.h"
#include "pr_xexpand.h"
#include "pr_certify.h"

#endif
