#!/usr/bin/python3
"""Re-checks trials dumped by `polyrope check C4 C6 --dump DIR` outside polyrope: exact rational
arithmetic (fractions.Fraction) and mpmath at 60 digits, no polyrope code.

C4: the exact Toeplitz product / correlation of the dumped doubles, its max error against the
engine's output y (must lie in the dumped [err_lo, err_hi]), the a-priori bound recomputed from
its formula (direct path: gamma_n max(|A||b|) exactly; FFT path: Percival's form in mpmath), the
observed ratio err/bound, and: a "pass" must have err <= bound.
C6: M_ij = sigma sum_t Q[i,a_t] w_t(i-j) K[j,b_t] and R = sigma B^2 max_l sum_t |w_t(l)| exactly;
the observed max|M|/R and: a "pass" must have max|M| <= R.
Usage: check_recheck.py DIR. Exit 1 on any disagreement, or if no trial of C4 or C6 was found."""
import os
import sys
from fractions import Fraction as F

import mpmath
import numpy as np

mpmath.mp.dps = 60
U = F(1, 2**53)


def read_trial(path):
    meta, arrays, observed = {}, {}, []
    d = os.path.dirname(path)
    with open(path) as f:
        for line in f:
            parts = line.split()
            if not parts:
                continue
            if parts[0] == "array":
                name, rows, cols = parts[1], int(parts[2]), int(parts[3])
                a = np.load(os.path.join(d, parts[4]))
                assert a.shape == (rows, cols) and a.dtype == np.float64, (path, name, a.shape)
                arrays[name] = [F(float(v)) for v in a.reshape(-1)]
            elif parts[0] == "observed":
                # observed CONFIG vdec vhex bound bdec bhex verdict
                observed.append((parts[1], float.fromhex(parts[3]), float.fromhex(parts[6]), parts[7]))
            else:
                meta[parts[0]] = parts[1:]
    return meta, arrays, observed


def hexval(meta, key):
    return F(float.fromhex(meta[key][1]))


def c4(meta, A, obs):
    n, op, path = int(meta["n"][0]), meta["op"][0], meta["path"][0]
    t, x, y = A["t"], A["x"], A["y"]
    if op == "correlate":
        # c(l) = sum_{i-j=l} x_i t_j, l = -(n-1)..n-1: pr_toeplitz_correlate(y, x, t)
        exact = [sum((x[i] * t[i - l] for i in range(n) if 0 <= i - l < n), F(0)) for l in range(-(n - 1), n)]
        absx = [sum((abs(x[i]) * abs(t[i - l]) for i in range(n) if 0 <= i - l < n), F(0)) for l in range(-(n - 1), n)]
        a, b = x, t
    else:
        trans, causal = "trans" in op, "causal" in op

        def sym(l):  # entry l = i - j of op(T)
            orig = -l if trans else l
            return F(0) if causal and orig < 0 else t[orig + n - 1]
        ts = [sym(l) for l in range(-(n - 1), n)]
        exact = [sum((ts[i - j + n - 1] * x[j] for j in range(n)), F(0)) for i in range(n)]
        absx = [sum((abs(ts[i - j + n - 1]) * abs(x[j]) for j in range(n)), F(0)) for i in range(n)]
        a, b = ts, x
    assert len(y) == len(exact)
    err = max(abs(y[i] - exact[i]) for i in range(len(y)))
    assert hexval(meta, "err_lo") <= err <= hexval(meta, "err_hi"), ("err", float(err), meta["err_lo"], meta["err_hi"])
    if path == "direct":
        gamma = n * U / (1 - n * U)
        bound = gamma * max(absx)
        blo = bhi = bound
    else:
        L = int(meta["L"][0])
        k = 0
        while (1 << k) < L:
            k += 1
        u = mpmath.mpf(2) ** -53
        g = (1 + u) ** (6 * k + 2) * (1 + u * mpmath.sqrt(5)) ** (3 * k + 1) - 1
        na = mpmath.sqrt(sum(mpmath.mpf(v.numerator) / v.denominator * mpmath.mpf(v.numerator) / v.denominator for v in a))
        nb = mpmath.sqrt(sum(mpmath.mpf(v.numerator) / v.denominator * mpmath.mpf(v.numerator) / v.denominator for v in b))
        bm = na * nb * g
        # mpmath at 60 digits: a relative 1e-50 brackets it
        blo = F(mpmath.nstr(bm * (1 - mpmath.mpf(10) ** -50), 70))
        bhi = F(mpmath.nstr(bm * (1 + mpmath.mpf(10) ** -50), 70))
    assert hexval(meta, "bound_lo") <= bhi and blo <= hexval(meta, "bound_hi"), \
        ("bound", float(blo), meta["bound_lo"], meta["bound_hi"])
    (cfg, v, bd, verdict), = obs
    assert cfg == path + "/" + op, (cfg, path, op)
    if err == 0:
        assert v == 0.0, ("zero error, observed", v)
    else:
        ratio = err / bhi
        assert F(v) >= ratio * (1 - F(1, 2**50)) and F(v) <= err / blo * (1 + F(1, 2**50)), ("ratio", v, float(ratio))
    if verdict == "pass":
        assert err <= blo, ("a pass with err > bound", float(err), float(blo))
    return verdict


def c6(meta, A, obs):
    n, d, s = int(meta["n"][0]), int(meta["d"][0]), int(meta["s"][0])
    sigma = hexval(meta, "sigma")
    Q, K, w, ab = A["Q"], A["K"], A["w"], A["ab"]
    L = 2 * n - 1
    M = 0
    for i in range(n):
        for j in range(n):
            m = sum((Q[i * d + int(ab[2 * t])] * w[t * L + i - j + n - 1] * K[j * d + int(ab[2 * t + 1])]
                     for t in range(s)), F(0))
            M = max(M, abs(sigma * m))
    B = max(max(abs(v) for v in Q), max(abs(v) for v in K))
    R = sigma * B * B * max(sum((abs(w[t * L + l]) for t in range(s)), F(0)) for l in range(L))
    (cfg, v, bd, verdict), = obs
    assert cfg in ("tight", meta["config"][0]), (cfg, meta["config"])
    ratio = M / R
    assert F(v) >= ratio and F(v) <= ratio * (1 + F(1, 2**50)), ("ratio", v, float(ratio))
    if verdict == "pass":
        assert M <= R, ("a pass with max|M| > R", float(M), float(R))
    return verdict


def main():
    top = sys.argv[1]
    counts = {}
    for claim, fn in (("C4", c4), ("C6", c6)):
        cdir = os.path.join(top, claim)
        if not os.path.isdir(cdir):
            continue
        for trial in sorted(os.listdir(cdir)):
            path = os.path.join(cdir, trial, "trial.txt")
            meta, A, obs = read_trial(path)
            try:
                verdict = fn(meta, A, obs)
            except AssertionError as e:
                print("check_recheck: %s %s disagrees: %s (replay: %s)" % (claim, trial, e, " ".join(meta["replay"])))
                return 1
            counts[claim] = counts.get(claim, 0) + 1
            print("check_recheck: %s %s: %s confirmed (%s)" % (claim, trial, verdict, obs[0][0]))
    if counts.get("C4", 0) == 0 or counts.get("C6", 0) == 0:
        print("check_recheck: no dumped trial of C4 or C6 under %s" % top)
        return 1
    print("check_recheck: %d C4 and %d C6 trials re-checked in exact arithmetic" % (counts["C4"], counts["C6"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
