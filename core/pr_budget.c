#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include "pr_status.h"
#include "pr_budget.h"

void pr_budget_init(pr_budget_t b, double max_bytes, double max_ops)
{
    b->max_bytes = max_bytes > 0.0 ? max_bytes : 0.0;
    b->max_ops = max_ops > 0.0 ? max_ops : 0.0;
    b->hit = PR_BUDGET_NONE;
    b->need = 0.0;
    b->what = "";
}

static int refuse(pr_budget_t b, int hit, double need, const char *what)
{
    b->hit = hit;
    b->need = isnan(need) ? INFINITY : need;
    b->what = what ? what : "the run";
    return PR_EBUDGET;
}

int pr_budget_bytes(pr_budget_t b, double bytes, const char *what)
{
    /* past SIZE_MAX/2 no allocation can succeed and size_t products would wrap: a limit of its own */
    if (!(bytes >= 0.0) || !(bytes < 0.5 * (double)SIZE_MAX) || (b->max_bytes > 0.0 && bytes > b->max_bytes))
        return refuse(b, PR_BUDGET_MEMORY, bytes, what);
    return PR_OK;
}

int pr_budget_ops(pr_budget_t b, double ops, const char *what)
{
    if (!(ops >= 0.0) || !isfinite(ops) || (b->max_ops > 0.0 && ops > b->max_ops))
        return refuse(b, PR_BUDGET_WORK, ops, what);
    return PR_OK;
}

void pr_budget_explain(char *buf, size_t len, const pr_budget_t b, const char *mem_opt,
                       const char *ops_opt)
{
    const char *what = b->what && *b->what ? b->what : "the run";
    const double gib = 1024.0 * 1024.0 * 1024.0;
    if (b->hit == PR_BUDGET_MEMORY) {
        double need = b->need / gib;
        if (!isfinite(b->need))
            snprintf(buf, len, "%s needs more memory than a double can count", what);
        else if (b->max_bytes > 0.0 && b->need < 0.5 * (double)SIZE_MAX)
            snprintf(buf, len, "%s needs %.3g GiB of memory, past the limit %s %.3g: raise %s to %.3g or more",
                     what, need, mem_opt, b->max_bytes / gib, mem_opt, ceil(need * 1000.0) / 1000.0);
        else
            snprintf(buf, len, "%s needs %.3g GiB of memory, more than this machine can address", what, need);
    } else if (b->hit == PR_BUDGET_WORK) {
        if (b->max_ops > 0.0 && isfinite(b->need))
            snprintf(buf, len, "%s needs about %.3g operations, past the limit %s %.3g: raise %s to %.3g or more",
                     what, b->need, ops_opt, b->max_ops, ops_opt, b->need * (1.0 + 1e-3));
        else
            snprintf(buf, len, "%s needs more operations than a double can count", what);
    } else {
        snprintf(buf, len, "%s: %s", what, pr_strerror(PR_EBUDGET));
    }
}
