/* pr_fast: general-W polynomial-method + FFT forward (issue 5) */
#ifndef PR_FAST_H
#define PR_FAST_H

#endif
