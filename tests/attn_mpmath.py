#!/usr/bin/python3
"""Independent oracle of tests/test_attn_honest.c: RoPE attention (interleaved pairs) from its
real-number definition in mpmath at 60 digits, theta_k = base^(-2k/d), angles m*theta_k,
sigma = 1/d or 1/sqrt(d), ALiBi -slope*|i-j|, causal mask; prints max |O - O_true| for the
double O given.
usage: attn_mpmath.py Q.npy K.npy V.npy O.npy BASE inv-d|inv-sqrt-d SLOPE CAUSAL"""
import sys
import mpmath as mp
import numpy as np

mp.mp.dps = 60
qf, kf, vf, of, base, scale, slope, causal = sys.argv[1:9]
Q, K, V, O = (np.load(f) for f in (qf, kf, vf, of))
n, d = Q.shape
base, slope, causal = mp.mpf(float(base)), mp.mpf(float(slope)), int(causal)
theta = [mp.power(base, mp.mpf(-2 * k) / d) for k in range(d // 2)]
sigma = 1 / mp.mpf(d) if scale == "inv-d" else 1 / mp.sqrt(d)


def rot(x, m):
    y = [mp.mpf(float(t)) for t in x]
    for k in range(d // 2):
        c, s = mp.cos(m * theta[k]), mp.sin(m * theta[k])
        a, b = y[2 * k], y[2 * k + 1]
        y[2 * k], y[2 * k + 1] = a * c - b * s, a * s + b * c
    return y


Qr = [rot(Q[i], i) for i in range(n)]
Kr = [rot(K[j], j) for j in range(n)]
err = mp.mpf(0)
for i in range(n):
    js = range(i + 1) if causal else range(n)
    M = {j: sigma * mp.fsum(a * b for a, b in zip(Qr[i], Kr[j])) - slope * abs(i - j) for j in js}
    top = max(M.values())
    w = {j: mp.exp(M[j] - top) for j in js}
    tot = mp.fsum(w.values())
    for c in range(d):
        o = mp.fsum(w[j] * mp.mpf(float(V[j][c])) for j in js) / tot
        err = max(err, abs(mp.mpf(float(O[i][c])) - o))
print(mp.nstr(err, 25))
