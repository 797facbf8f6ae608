/* pr_cpu: whether this CPU runs a vector kernel. Each kernel family has an environment variable
 * ($POLYROPE_FAST_KERNEL, $POLYROPE_BACKWARD_KERNEL, $POLYROPE_DENSE_KERNEL) that, set to
 * "generic", forces its portable path on any CPU, so that the suite tests both paths here. */
#ifndef PR_CPU_H
#define PR_CPU_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    PR_CPU_AVX2_FMA = 0,  /* AVX2 and FMA */
    PR_CPU_AVX512F = 1    /* AVX-512 Foundation */
} pr_cpu_feature_t;

/* 1 if the CPU has feature and $force_env is not "generic", else 0 (also off x86-64 or GCC) */
int pr_cpu_kernel_ok(pr_cpu_feature_t feature, const char *force_env);

#ifdef __cplusplus
}
#endif
#endif
