"""Candidate attention kernels for the tests: numpy re-implementations of RoPE attention in a
chosen dtype (a "correct float32 kernel"), and the same with one known bug each. Independent of
polyrope: they only follow the definition (docs/math.md §1, §2)."""
import numpy as np


def rope(x, base=10000.0, layout="rope", offset=0):
    """rotate row i of x (.., n, d) by position i + offset; pairs (2k, 2k+1) or (k, k + d/2)"""
    n, d = x.shape[-2:]
    theta = base ** (-2.0 * np.arange(d // 2) / d)
    ang = np.outer(np.arange(n) + offset, theta)
    c, s = np.cos(ang).astype(x.dtype), np.sin(ang).astype(x.dtype)
    y = x.copy()
    if layout == "rope":
        a, b = x[..., 0::2], x[..., 1::2]
        y[..., 0::2], y[..., 1::2] = a * c - b * s, a * s + b * c
    else:
        h = d // 2
        a, b = x[..., :h], x[..., h:]
        y[..., :h], y[..., h:] = a * c - b * s, a * s + b * c
    return y


def attention(q, k, v, dtype=np.float32, scale=None, causal=False, layout="rope", mask_shift=0,
              offset_k=0, base=10000.0):
    """softmax(scale (R q)(R k)^T) v computed in dtype; q (.., h, n, d), k, v (.., h_kv, n, d).
    The keyword arguments beyond the problem's inject the known bugs."""
    q, k, v = (np.asarray(t, dtype=dtype) for t in (q, k, v))
    n, d = q.shape[-2:]
    if q.ndim >= 3 and k.shape[-3] != q.shape[-3]:
        rep = q.shape[-3] // k.shape[-3]
        k, v = np.repeat(k, rep, axis=-3), np.repeat(v, rep, axis=-3)
    sigma = dtype(1.0 / d) if scale is None else dtype(scale)
    qr, kr = rope(q, base, layout), rope(k, base, layout, offset_k)
    s = sigma * (qr @ np.swapaxes(kr, -1, -2))
    if causal:
        i, j = np.indices((n, n))
        s = np.where(j <= i + mask_shift, s, dtype(-np.inf))
    s = s - s.max(axis=-1, keepdims=True)
    p = np.exp(s)
    return (p @ v) / p.sum(axis=-1, keepdims=True)


def bugs(q, k, v, causal=True):
    """name -> the output of a kernel with that known bug (float32)"""
    return {
        "neox layout instead of interleaved": attention(q, k, v, causal=causal, layout="neox"),
        "missing scale": attention(q, k, v, causal=causal, scale=1.0),
        "mask one off (sees the next key)": attention(q, k, v, causal=causal, mask_shift=1),
        "keys one position off": attention(q, k, v, causal=causal, offset_k=1),
    }
