/* proofs-check: one seeded randomised check per claim of DESIGN.md §4 (issue 7). */
#ifndef PR_CHECKS_H
#define PR_CHECKS_H

#endif
