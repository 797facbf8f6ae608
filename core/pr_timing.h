/* pr_timing: clocks and memory figures for the benchmarks, commands and proofs-check
 * (in the library because proofs-check and the command line both use them). */
#ifndef PR_TIMING_H
#define PR_TIMING_H

#ifdef __cplusplus
extern "C" {
#endif

/* seconds on the monotonic clock (wall time; only differences mean anything) */
double pr_timing_wall(void);
/* seconds of CPU time used by the whole process (all threads) */
double pr_timing_cpu(void);
/* peak resident memory of the process so far, MiB */
double pr_timing_peak_rss_mib(void);
/* resident memory now (Linux /proc), MiB; NAN where unavailable */
double pr_timing_rss_mib(void);

/* Per-call wall time of `call` into out (and its process CPU time into cpu), repeating it until
 * 0.2 s have passed (at least once). `call` returns a status, kept in st; the loop stops at the
 * first nonzero one. */
#define PR_TIMED_CPU(st, out, cpu, call)                                        \
    do {                                                                        \
        int reps_ = 0;                                                          \
        double t0_ = pr_timing_wall(), c0_ = pr_timing_cpu(), el_;              \
        do {                                                                    \
            if (((st) = (call)))                                                \
                break;                                                          \
            reps_++;                                                            \
        } while ((el_ = pr_timing_wall() - t0_) < 0.2);                         \
        (out) = reps_ ? el_ / reps_ : 0.0;                                      \
        (cpu) = reps_ ? (pr_timing_cpu() - c0_) / reps_ : 0.0;                  \
    } while (0)
/* the same without the CPU time */
#define PR_TIMED(st, out, call)                                                 \
    do {                                                                        \
        double cpu_ignored_;                                                    \
        PR_TIMED_CPU(st, out, cpu_ignored_, call);                              \
        (void)cpu_ignored_;                                                     \
    } while (0)

#ifdef __cplusplus
}
#endif
#endif
