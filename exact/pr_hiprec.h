/* pr_hiprec: high-precision reference attention and gradients (issue 7) */
#ifndef PR_HIPREC_H
#define PR_HIPREC_H

#endif
