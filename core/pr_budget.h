/* pr_budget: resource limits as one mechanism (issue 12). A size computed from input is a product
 * of ints; it is formed in double (exact below 2^53, +Inf instead of wrapping around) and checked
 * against a memory budget and a work budget before anything is allocated or started. A refusal
 * is PR_EBUDGET with a record of which limit was hit, the amount asked and what asked it, so that
 * the caller can name the option that raises it (pr_budget_explain). A double chooses here; it
 * certifies nothing. */
#ifndef PR_BUDGET_H
#define PR_BUDGET_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

enum { PR_BUDGET_NONE = 0, PR_BUDGET_MEMORY = 1, PR_BUDGET_WORK = 2 };

typedef struct {
    double max_bytes;   /* memory a run may hold; 0: no limit */
    double max_ops;     /* floating-point operations a run may do (estimated); 0: no limit */
    int hit;            /* after a refusal: PR_BUDGET_MEMORY or PR_BUDGET_WORK, else PR_BUDGET_NONE */
    double need;        /* the amount refused (bytes or operations; +Inf past double) */
    const char *what;   /* what needed it (a static string) */
} pr_budget_struct;
typedef pr_budget_struct pr_budget_t[1];

/* Limits (0: none); no refusal recorded. */
void pr_budget_init(pr_budget_t b, double max_bytes, double max_ops);

/* PR_OK if `bytes` (resp. `ops`) is finite, not negative and within the limit (and bytes below
 * SIZE_MAX / 2, so that every size_t product of its parts is exact); else PR_EBUDGET, recorded in b. */
int pr_budget_bytes(pr_budget_t b, double bytes, const char *what);
int pr_budget_ops(pr_budget_t b, double ops, const char *what);

/* One line for the recorded refusal: "WHAT needs 12 GiB of memory, past the limit OPT 6: raise OPT
 * to 12 or more" (memory in GiB, the option's unit; work in operations), without a final newline.
 * mem_opt / ops_opt name the options that raise each limit (e.g. "--max-mem"). */
void pr_budget_explain(char *buf, size_t len, const pr_budget_t b, const char *mem_opt,
                       const char *ops_opt);

#ifdef __cplusplus
}
#endif
#endif
