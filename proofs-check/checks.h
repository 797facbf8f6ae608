/* proofs-check: one seeded randomised check per claim of docs/claims.md (issue 7).
 * Each check draws instances over a range of n, d, B, eps and kinds of W, and reports the worst
 * observed quantity against its bound, with a verdict. Worst values are also kept per
 * configuration, for the accuracy-regression baseline (--record / --baseline). */
#ifndef PR_CHECKS_H
#define PR_CHECKS_H

#include <stdint.h>
#include <stdio.h>
#include "pr_posw.h"
#include "pr_rng.h"

typedef enum {
    PR_CHECK_PASS = 0,     /* every trial within its bound (certified where the check says so) */
    PR_CHECK_FAIL,         /* some trial exceeded its bound */
    PR_CHECK_UNKNOWN,      /* an enclosure straddled the bound: undecided, not a failure */
    PR_CHECK_INFO          /* a timing check: slope and crossover printed, never fails on noise */
} pr_check_verdict_t;

/* called as trial `trial` (from 1) of a check starts, for a progress line */
typedef void (*pr_check_progress_fn)(void *arg, long trial);

/* Deliberately broken inputs, to show that the checks can fail (tests only). */
typedef enum {
    PR_FAULT_NONE = 0,
    PR_FAULT_POLY_COEF,    /* one polynomial coefficient perturbed on the expansion side (C2) */
    PR_FAULT_SYMBOL,       /* one Toeplitz symbol entry wrong on the expansion side (C1) */
    PR_FAULT_GRAD_SIGN     /* the closed-form gradient with a flipped sign (G1) */
} pr_check_fault_t;

typedef struct {
    long trials;           /* trials per check (each check scales its own sizes) */
    uint64_t seed;
    pr_check_fault_t fault;
    long only;             /* 0: trials 1..trials; k ≥ 1: trial k alone (replayable checks) */
    const char *dump;      /* if set, each trial's instance and result go to dump/CLAIM/trial-K/ */
    FILE *show;            /* if set, each trial's instance and result are printed there */
    long prec;             /* Arb precision of the Arb-reference checks (C6, C9, C11, C14, G1,
                              G2); 0: their default, 256 (tests force lower ones) */
    pr_check_progress_fn progress; /* if set, called with progress_arg as each trial starts */
    void *progress_arg;
} pr_check_opts_t;

#define PR_CHECK_MAX_CONFIGS 32
#define PR_CHECK_CONFIG_LEN 48

typedef struct {
    const char *id, *statement, *units;
    long trials;
    double worst, bound;   /* worst observed and the bound it is compared with */
    pr_check_verdict_t verdict;
    char note[400];
    int nconfig;
    char config[PR_CHECK_MAX_CONFIGS][PR_CHECK_CONFIG_LEN];
    double config_worst[PR_CHECK_MAX_CONFIGS];
    long first_fail;       /* trial (from 1) of the first failure, 0 if none; worst and
                              bound then show the worst failing observation */
    char fail_config[PR_CHECK_CONFIG_LEN];
    /* while running: the options and the current trial (from 1; 0 outside a trial) */
    const pr_check_opts_t *opts;
    long cur_trial;
    FILE *rec;             /* the current trial's record (--dump / --replay), or NULL */
    int dump_status;       /* first error writing a dump, PR_OK otherwise */
} pr_check_result_t;

typedef int (*pr_check_fn)(pr_check_result_t *res, const pr_check_opts_t *opts);

typedef struct {
    const char *id;
    const char *statement;
    const char *units;     /* what "worst" and "bound" measure */
    pr_check_fn run;
    int replayable;        /* trials independent: one can be re-run alone (--replay, --dump) */
} pr_check_t;

extern const pr_check_t pr_checks[];
extern const int pr_ncheck;

/* the check with this id (case-insensitive), or NULL */
const pr_check_t *pr_check_find(const char *id);

/* Runs one check into res; returns a status from pr_status.h (a library error, not a verdict).
 * The verdict is PR_CHECK_PASS only if at least one trial ran, every observed value and bound
 * was finite and within (certified where the check says so), and no error occurred: an error
 * or a trial without evidence makes it PR_CHECK_FAIL, with the reason in the note.
 * PR_EINVAL for trials < 1, or opts->only > trials, or only/dump/show on a check that is not
 * replayable. */
int pr_check_run(pr_check_result_t *res, const pr_check_t *c, const pr_check_opts_t *opts);

/* The predicted time of pr_check_run(c, opts), in seconds: a cost model calibrated on the
 * project's machine (release build, one core; see pr_check_cost_table in checks.c), a mean,
 * not a bound, which chooses whether to run (the budget of polyrope check) and never
 * certifies. Most checks cost a fixed part plus one per trial (one trial alone with
 * opts->only); C7 and C8 compute every trial for their fit, also with opts->only; C5 and
 * G5 time at most 3 repetitions at fixed sizes; C10 is fixed. PR_EINVAL for trials < 1. */
int pr_check_predict(double *seconds, const pr_check_t *c, const pr_check_opts_t *opts);

/* Starts trial `trial` (from 0) of a replayable check: seeds rng from (seed, salt, trial) alone,
 * so that any trial can be re-run without the others, and opens the trial's record when
 * dumping or showing (the previous trial's record is closed here, the last by pr_check_run). Returns 1 if the trial is to be run, 0 if opts->only skips it. */
int pr_check_trial(pr_check_result_t *res, pr_rng_t rng, uint64_t salt, long trial);
/* The two halves, for a check whose observations need every trial (a fit, C7 and C8): the
 * trial's own stream, and the opening of its record before its observations (returns 0 if
 * opts->only skips the trial: it is computed but not observed). */
void pr_check_trial_rng(pr_rng_t rng, const pr_check_opts_t *opts, uint64_t salt, long trial);
int pr_check_trial_open(pr_check_result_t *res, long trial);
/* Into the current trial's record (no-ops when not dumping/showing): a parameter, an exact
 * double (written as %a and %.17g), and an array rows×cols (as DIR/.../name.npy and, on
 * --replay, in exact text). */
void pr_check_put(pr_check_result_t *res, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void pr_check_put_d(pr_check_result_t *res, const char *key, double v);
void pr_check_put_vec(pr_check_result_t *res, const char *name, const double *x, long rows, long cols);

/* One trial's observation: updates the worst, the per-configuration worst, and the verdict
 * (ok = 1 within bound, 0 exceeded, -1 undecided). */
void pr_check_observe(pr_check_result_t *res, const char *config, double value, double bound, int ok);
/* The same without counting a trial: a further quantity of the trial just observed, kept under
 * its own configuration so the baseline follows each quantity separately. */
void pr_check_observe_part(pr_check_result_t *res, const char *config, double value, double bound, int ok);
void pr_check_note(pr_check_result_t *res, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* marks a claim whose module has not landed */

void pr_check_print_header(FILE *f);
void pr_check_print(FILE *f, const pr_check_result_t *res);
const char *pr_check_verdict_name(pr_check_verdict_t v);

/* Tolerance for the dense double reference (pr_dense) against the Arb reference, for inputs
 * bounded by B (Q, K, V and dO), R = σB² max_ℓ Σ|w(ℓ)|, s support entries, n tokens.
 * Derivation: M_ij is a sum of s products of size ≤ B² (RoPE: rotated rows, angle error
 * ≤ n u per entry), so |ΔM| ≤ 2(s + 4n + 8)u(R + 1); exp and the row normalisation add
 * ≤ (n + 8)u relative per weight; O is a convex combination of rows of V, so
 * |ΔO| ≤ 2(|ΔM| + (n + 8)u)B. A gradient carries at most three such factors times
 * (B + 1)³ s n (sums over j of dM_ij times w K, each dM_ij a product of P_ij and a
 * difference of size ≤ 2B²): grad = 1 allows 64 × that. */
double pr_check_dense_tol(double R, double B, int s, int n, int grad);

/* The scale of every entry of dQ, dK, dV, dw (scale[0..3]) in the G3 rounding tolerance of a fast
 * gradient against its exact value on the same P (derivation: g3_tol in tests/test_backward.c):
 * n P_abs(R) times 2ν V∞/D_min (dV: ν/D_min) times σ ρ max(Q∞, K∞) for dQ, dK and σ Q∞ K∞ for dw,
 * with pa = P_abs(R) = Σ|c_k| R^k, ρ = max_ℓ Σ|w(ℓ)|, ν = max_i Σ_c |dO_ic|, D_min = min_i e^{lse_i}. */
void pr_check_g3_scales(double scale[4], double pa, double sigma, const double *Q, const double *K,
                        const double *V, const double *dO, const double *lse, const pr_posw_struct *W,
                        int n, int d);

/* Accuracy regression. The record file has one line per claim and configuration:
 *   CLAIM CONFIG WORST
 * and '#' comments (seed and trials). */
int pr_check_record(FILE *f, const pr_check_result_t *res, int nres, const pr_check_opts_t *opts);

/* A parsed baseline. The reader is strict and bounded: lines of at most PR_CHECK_LINE_MAX
 * bytes, no NUL byte, at most PR_CHECK_BASELINE_MAX entries; each non-comment line is exactly
 * CLAIM CONFIG VALUE with CLAIM a known claim id, CONFIG of at most PR_CHECK_CONFIG_LEN - 1
 * characters from [A-Za-z0-9/<>=_.+-], VALUE a finite number ≥ 0, no (CLAIM, CONFIG) twice. */
#define PR_CHECK_LINE_MAX 256
#define PR_CHECK_BASELINE_MAX 100000
typedef struct {
    const char *id;        /* a pr_checks[] id */
    char config[PR_CHECK_CONFIG_LEN];
    double value;
} pr_check_base_entry_t;
typedef struct {
    long n, alloc;
    pr_check_base_entry_t *e;
} pr_check_baseline_t;

/* Reads f into B (initialised here; clear it also after an error). PR_EINVAL for malformed
 * content, with "line N: what" in why (why_len > 0); PR_EIO, PR_ENOMEM. */
int pr_check_baseline_read(pr_check_baseline_t *B, FILE *f, char *why, size_t why_len);
void pr_check_baseline_clear(pr_check_baseline_t *B);
/* A configuration regresses when its worst grew beyond recorded·(1 + margin) (beyond recorded
 * when that was 0). Prints each regression to out; returns the number of regressions. */
int pr_check_baseline_compare(FILE *out, const pr_check_baseline_t *B, const pr_check_result_t *res,
                              int nres, double margin);
/* Both at once on a file (the fuzzed entry point): the number of regressions, or -1 if the
 * file is malformed (the reason printed to out). */
int pr_check_compare(FILE *out, FILE *baseline, const pr_check_result_t *res, int nres, double margin);

#endif
