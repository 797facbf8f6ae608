/* polyrope: RoPE attention in almost linear time (libpolyrope, double precision).
 * One header per module; this one includes them all, in layer order (docs/modules.md). It needs
 * no Arb, FLINT, GMP or MPFR: the certified and exact checkers are polyrope-exact.h's. */
#ifndef POLYROPE_H
#define POLYROPE_H

#include "pr_status.h"
#include "pr_version.h"
#include "pr_rng.h"
#include "pr_vec.h"
#include "pr_timing.h"
#include "pr_budget.h"
#include "pr_rope.h"
#include "pr_posw.h"
#include "pr_attn.h"
#include "pr_npy.h"
#include "pr_dense.h"
#include "pr_expoly.h"
#include "pr_toeplitz.h"
#include "pr_mem.h"
#include "pr_expand.h"
#include "pr_fast.h"
#include "pr_lowrank.h"
#include "pr_backward.h"
#include "pr_control.h"
#include "pr_auto.h"
#include "pr_flat.h"
#include "pr_problem.h"

#endif
