/* Claims whose modules have not landed on this branch yet: each says so, and checks nothing. */
#include "check_impl.h"

int pr_check_c5(pr_check_result_t *res, const pr_check_opts_t *opts)
{
    return pr_check_not_built(res, "the fast forward (core/pr_fast) for timing");
}

int pr_check_c10(pr_check_result_t *res, const pr_check_opts_t *opts)
{
    return pr_check_not_built(res, "the certified least degree and the fast forward");
}

int pr_check_g3(pr_check_result_t *res, const pr_check_opts_t *opts)
{
    return pr_check_not_built(res, "the fast backward (core/pr_backward)");
}

int pr_check_g4(pr_check_result_t *res, const pr_check_opts_t *opts)
{
    return pr_check_not_built(res, "the fast backward and its propagated bound");
}

int pr_check_g5(pr_check_result_t *res, const pr_check_opts_t *opts)
{
    return pr_check_not_built(res, "the fast backward (core/pr_backward) for timing");
}
