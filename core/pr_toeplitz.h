/* pr_toeplitz: FFT Toeplitz engine (issue 4) */
#ifndef PR_TOEPLITZ_H
#define PR_TOEPLITZ_H

#endif
