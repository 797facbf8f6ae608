/* pr_expoly: polynomial approximations of exp (issue 3) */
#ifndef PR_EXPOLY_H
#define PR_EXPOLY_H

#endif
