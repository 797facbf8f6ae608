/* pr_status: status codes shared by every module, and their explanations.
 * Every fallible function returns one of these; there is no global error state. */
#ifndef PR_STATUS_H
#define PR_STATUS_H

#ifdef __cplusplus
extern "C" {
#endif

enum {
    PR_OK = 0,
    PR_EINVAL,        /* an argument is outside its documented range */
    PR_ENOMEM,        /* allocation failed */
    PR_ESIZE,         /* sizes whose buffers would overflow or not fit */
    PR_ENONFINITE,    /* NaN or Inf in an input */
    PR_ESHAPE,        /* shapes of the inputs do not match */
    PR_EODD,          /* RoPE needs an even head dimension d */
    PR_EBOUND,        /* an entry exceeds the declared bound B */
    PR_EFLOOR,        /* target error below the floating-point floor */
    PR_EBUDGET,       /* the term count or memory exceeds the budget */
    PR_EDOMAIN,       /* parameters outside the range where the double method is sound */
    PR_ECONVERGE,     /* an iterative construction did not converge */
    PR_EFFTW,         /* FFTW could not make a plan */
    PR_EIO,           /* a file could not be opened, read or written */
    PR_ENPY_MAGIC,    /* .npy: not an .npy file (bad magic string) */
    PR_ENPY_VERSION,  /* .npy: unsupported format version */
    PR_ENPY_HEADER,   /* .npy: malformed header dictionary */
    PR_ENPY_DTYPE,    /* .npy: dtype is not little-endian float64/32/16 */
    PR_ENPY_ORDER,    /* .npy: Fortran order is not supported */
    PR_ENPY_SHAPE,    /* .npy: array has the wrong shape */
    PR_ENPY_TRUNCATED,/* .npy: file shorter than its header says */
    PR_EPREC,         /* working precision too low to decide */
    PR_ETIME,         /* a piece of work passed its CPU-time budget and was stopped */
    PR_ESTATUS_COUNT  /* number of codes; not a status */
};

/* A one-line explanation of status s (never NULL). */
const char *pr_strerror(int s);

#ifdef __cplusplus
}
#endif
#endif
