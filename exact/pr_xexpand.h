/* pr_xexpand: exact-arithmetic run of the expansion (issue 7) */
#ifndef PR_XEXPAND_H
#define PR_XEXPAND_H

#endif
