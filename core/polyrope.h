/* polyrope: RoPE attention in almost linear time, with certified checkers.
 * One header per module; this one includes them all. */
#ifndef POLYROPE_H
#define POLYROPE_H

#include "pr_status.h"
#include "pr_version.h"
#include "pr_rng.h"
#include "pr_vec.h"
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
#include "pr_timing.h"
#include "pr_budget.h"
#include "pr_flat.h"
#include "pr_problem.h"
#include "pr_certexp.h"
#include "pr_xtoeplitz.h"
#include "pr_hiprec.h"
#include "pr_xexpand.h"

#endif
