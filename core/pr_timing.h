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

/* Per-call wall time of `call` into out (and its process CPU time into cpu): the calls run in
 * batches of at least 10 ms (one call when a call takes that long, so that clock granularity
 * does not matter), at least PR_TIMED_MIN_REPS batches and 0.2 s in all, and the least per-call
 * mean of a batch is kept: the figure that other jobs on a shared machine inflate least (a mean
 * over all carries every interruption into the ratios and slopes the benchmarks print). `call`
 * returns a status, kept in st; the loop stops at the first nonzero one. */
#define PR_TIMED_MIN_REPS 3
#define PR_TIMED_CPU(st, out, cpu, call)                                        \
    do {                                                                        \
        int reps_ = 0;                                                          \
        long batch_ = 1;                                                        \
        double t0_ = pr_timing_wall(), best_ = 0.0, bestc_ = 0.0;               \
        do {                                                                    \
            double w_ = pr_timing_wall(), c_ = pr_timing_cpu();                 \
            for (long k_ = 0; k_ < batch_ && !((st) = (call)); k_++)            \
                ;                                                               \
            if (st)                                                             \
                break;                                                          \
            w_ = (pr_timing_wall() - w_) / batch_;                              \
            c_ = (pr_timing_cpu() - c_) / batch_;                               \
            if (batch_ == 1 && reps_ == 0 && w_ < 0.01) {                       \
                /* a short call: this one only sizes the batches */             \
                batch_ = (long)(0.01 / (w_ > 1e-7 ? w_ : 1e-7)) + 1;            \
                continue;                                                       \
            }                                                                   \
            best_ = reps_ == 0 || w_ < best_ ? w_ : best_;                      \
            bestc_ = reps_ == 0 || c_ < bestc_ ? c_ : bestc_;                   \
            reps_++;                                                            \
        } while (reps_ < PR_TIMED_MIN_REPS || pr_timing_wall() - t0_ < 0.2);    \
        (out) = best_;                                                          \
        (cpu) = bestc_;                                                         \
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
