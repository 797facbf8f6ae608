/* pr_auto: the `--algo auto` cost model (docs/cli.md, attn). One layer above error control
 * (pr_control) and below the commands (docs/modules.md).
 *
 * Every constant of the model is measured where it runs: each applicable path (the dense
 * reference, the low-rank path, the FFT path) is timed on the leading rows of the problem itself,
 * with the degree error control chooses for the full problem, and the time is scaled by the
 * path's growth in n. With an upstream gradient the calibration runs the forward and the backward
 * together, so the backward/forward ratio of each path is this machine's too. */
#ifndef PR_AUTO_H
#define PR_AUTO_H

#include "pr_attn.h"
#include "pr_posw.h"
#include "pr_control.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The three ways to compute attention, in the order of pr_auto_t's arrays. */
typedef enum { PR_AUTO_DENSE = 0, PR_AUTO_LOWRANK = 1, PR_AUTO_FFT = 2 } pr_auto_algo_t;

/* The command line's name of the algorithm: "dense", "lowrank", "fft". */
const char *pr_auto_algo_name(pr_auto_algo_t algo);

typedef struct {
    int backward;           /* 1 when the forward and the backward were timed together */
    int n_cal;              /* calibration size: the first n_cal rows, W's offsets |ℓ| < n_cal */
    int n_cal_dense;        /* the dense reference's: doubled from n_cal until a run takes 30 ms */
    double t_cal[3];        /* seconds measured there: dense, low-rank, FFT (plan + execute) */
    double fft_fixed;       /* FFT: the part of t_cal[2] that does not grow with n (term tables,
                               allocations), from a second calibration at n_cal/2; 0 if none */
    double t[3];            /* predicted at n: dense ∝ n², low-rank ∝ n, FFT fft_fixed + the rest
                               ∝ L log L; INFINITY where the path does not apply or refuses the
                               target */
    int status[3];          /* why a path was ruled out (PR_OK when it was timed) */
    pr_auto_algo_t pick;    /* the least predicted time */
} pr_auto_t;

/* Cost model calibrated on this machine: runs each applicable path on the leading n_cal <= 1024
 * rows (with the degrees the full problem needs for o->eps), times it, and scales. dO (n×d) NULL:
 * the forward alone; else the forward and the backward for that upstream gradient (with dw when
 * W is not factorised), as `attn --backward` runs them. A fast path that error control or the
 * budget (pr_control_budget, at the full size) refuses, or whose operation count (low-rank
 * 4 n F (d+1); FFT terms (d+2) 3 L log2 L) passes 8 times the dense n² (s + d), is not timed
 * (its status says why). */
int pr_auto_predict(pr_auto_t *a, const double *Q, const double *K, const double *V,
                    const double *dO, const pr_posw_t W, int n, int d, const pr_attn_opts_t *opts,
                    const pr_control_opts_t *o);

#ifdef __cplusplus
}
#endif
#endif
