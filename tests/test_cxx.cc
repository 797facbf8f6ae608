// The public headers from C++: every declaration must have C linkage (extern "C"), or this
// program does not link. It calls into each module and checks what it gets back:
// the dense output is a convex combination of V's rows, the FFT path meets its own bound
// against it, an .npy round trip is exact, and the expansion's term count is C(s+g, g) (C3).
#include <cmath>
#include <cstdio>
#include <cstring>
#include <vector>
#include "polyrope.h"
#include "pr_test.h"

int main()
{
    uint64_t seed = pr_test_seed("test_cxx", 20261128);
    pr_rng_t rng;
    pr_rng_init(rng, seed);
    const int n = 48, d = 4;
    std::vector<double> Q(n * d), K(n * d), V(n * d), O(n * d), Of(n * d), R(n * d);
    pr_rng_fill(Q.data(), n * d, 1.0, rng);
    pr_rng_fill(K.data(), n * d, 1.0, rng);
    pr_rng_fill(V.data(), n * d, 1.0, rng);

    pr_posw_t W;
    PR_CHECK_OK(pr_posw_init_rope(W, n, d, PR_ROPE_BASE_DEFAULT, PR_ROPE_INTERLEAVED));
    pr_attn_opts_t opts;
    pr_attn_opts_default(&opts, d);
    PR_CHECK_OK(pr_dense_forward(O.data(), NULL, Q.data(), K.data(), V.data(), W, n, d, &opts));
    for (int c = 0; c < d; c++) {
        double lo = INFINITY, hi = -INFINITY;
        for (int j = 0; j < n; j++)
            lo = fmin(lo, V[j * d + c]), hi = fmax(hi, V[j * d + c]);
        for (int i = 0; i < n; i++)
            PR_CHECK(O[i * d + c] >= lo - 1e-12 && O[i * d + c] <= hi + 1e-12,
                     "O[%d][%d] = %g outside [%g, %g] (seed %llu)", i, c, O[i * d + c], lo, hi,
                     (unsigned long long)seed);
    }

    pr_control_opts_t fo;
    pr_control_opts_default(&fo);
    pr_control_info_t info;
    PR_CHECK_OK(pr_control_forward_fft(Of.data(), &info, Q.data(), K.data(), V.data(), W, n, d, &opts, &fo));
    double err = pr_vec_max_abs_diff(Of.data(), O.data(), (size_t)n * d);
    PR_CHECK(err <= info.bound, "fft path error %g above its bound %g (seed %llu)", err, info.bound,
             (unsigned long long)seed);

    long shape[2] = {n, d};
    PR_CHECK_OK(pr_npy_write("cxx_o.npy", O.data(), 2, shape));
    double *back = NULL;
    PR_CHECK_OK(pr_npy_read_shape(&back, "cxx_o.npy", 2, shape));
    PR_CHECK(back && !memcmp(back, O.data(), sizeof(double) * n * d), "npy round trip changed O");
    free(back);

    fmpz_t total;
    fmpz_init(total);
    fmpz *by_degree = _fmpz_vec_init(4);
    PR_CHECK_OK(pr_xexpand_count(total, by_degree, 2 * d, 3));
    PR_CHECK(fmpz_equal_si(total, (slong)pr_expand_binom(2 * d, 3)), "C(s+g, g) for s = %d, g = 3", 2 * d);
    _fmpz_vec_clear(by_degree, 4);
    fmpz_clear(total);

    PR_CHECK(std::strlen(pr_strerror(PR_EBUDGET)) > 0, "pr_strerror");
    pr_posw_clear(W);
    return pr_test_finish("test_cxx");
}
