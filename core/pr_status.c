#include "pr_status.h"

static const char *const pr_messages[PR_ESTATUS_COUNT] = {
    [PR_OK] = "success",
    [PR_EINVAL] = "invalid argument",
    [PR_ENOMEM] = "out of memory",
    [PR_ESIZE] = "sizes too large: the buffers would overflow or not fit in memory",
    [PR_ENONFINITE] = "input contains NaN or Inf",
    [PR_ESHAPE] = "input shapes do not match",
    [PR_EODD] = "RoPE needs an even head dimension d",
    [PR_EBOUND] = "an input entry exceeds the declared bound B",
    [PR_EFLOOR] = "target error is below the floating-point floor of the expansion",
    [PR_EBUDGET] = "term count or memory exceeds the budget",
    [PR_EDOMAIN] = "parameters outside the range where the double-precision method is sound",
    [PR_ECONVERGE] = "iterative construction did not converge",
    [PR_EFFTW] = "FFTW could not make a plan",
    [PR_EIO] = "file could not be opened, read or written",
    [PR_ENPY_MAGIC] = "not an .npy file (bad magic string)",
    [PR_ENPY_VERSION] = "unsupported .npy format version (1.0, 2.0 and 3.0 are read)",
    [PR_ENPY_HEADER] = "malformed .npy header",
    [PR_ENPY_DTYPE] = ".npy dtype is not little-endian float64, float32 or float16 ('<f8', '<f4', '<f2')",
    [PR_ENPY_ORDER] = ".npy array is in Fortran order; save it in C order",
    [PR_ENPY_SHAPE] = ".npy array has the wrong shape",
    [PR_ENPY_TRUNCATED] = ".npy file is shorter than its header says",
    [PR_EPREC] = "working precision too low to decide",
    [PR_ETIME] = "not finished within its CPU-time budget",
};

const char *pr_strerror(int s)
{
    if (s < 0 || s >= PR_ESTATUS_COUNT || pr_messages[s] == 0)
        return "unknown status code";
    return pr_messages[s];
}
