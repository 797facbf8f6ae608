#include <math.h>
#include <stdio.h>
#include <time.h>
#include <sys/resource.h>
#include <unistd.h>
#include "pr_timing.h"

static double pr_clock(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

double pr_timing_wall(void)
{
    return pr_clock(CLOCK_MONOTONIC);
}

double pr_timing_cpu(void)
{
    return pr_clock(CLOCK_PROCESS_CPUTIME_ID);
}

double pr_timing_peak_rss_mib(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024.0; /* kilobytes on Linux */
}

double pr_timing_rss_mib(void)
{
    long pages_total, pages_res;
    FILE *f = fopen("/proc/self/statm", "r");
    int ok = f && fscanf(f, "%ld %ld", &pages_total, &pages_res) == 2;
    if (f)
        fclose(f);
    return ok ? pages_res * (double)sysconf(_SC_PAGESIZE) / 1048576.0 : NAN;
}
