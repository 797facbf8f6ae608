/* pr_xtoeplitz: exact Toeplitz products with FLINT (issue 4) */
#ifndef PR_XTOEPLITZ_H
#define PR_XTOEPLITZ_H

#endif
