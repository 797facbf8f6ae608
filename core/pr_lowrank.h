/* pr_lowrank: low-rank path for factorised RoPE (issue 5) */
#ifndef PR_LOWRANK_H
#define PR_LOWRANK_H

#endif
