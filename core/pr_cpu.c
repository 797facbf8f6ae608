/* pr_cpu: the vector kernels' one CPU check (pr_cpu.h). */
#include <stdlib.h>
#include <string.h>
#include "pr_cpu.h"

int pr_cpu_kernel_ok(pr_cpu_feature_t feature, const char *force_env)
{
    const char *force = force_env ? getenv(force_env) : NULL;
    if (force && !strcmp(force, "generic"))
        return 0;
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    if (feature == PR_CPU_AVX512F)
        return __builtin_cpu_supports("avx512f") != 0;
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    (void)feature;
    return 0;
#endif
}
