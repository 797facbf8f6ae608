"""polyrope.attention against the command line (the same engine, bit for bit), the mpmath oracle
of the real-number problem (within the dense reference's own error estimate), the fast paths'
bounds, and properties: batches and grouped-query heads are per-head runs, dtypes widen exactly.
Seed: $PR_TEST_SEED (default below), printed on failure through the test's name and message."""
import json
import os
import subprocess

import numpy as np
import pytest

import polyrope

SEED = int(os.environ.get("PR_TEST_SEED", "20261128"))
POLYROPE = os.environ.get("POLYROPE", "polyrope")
ORACLE = os.environ.get("PR_ORACLE")


def rng(tag):
    return np.random.default_rng([SEED, tag])


def qkv(r, shape, kv_shape=None, B=1.0):
    kv_shape = kv_shape or shape
    return (r.uniform(-B, B, shape), r.uniform(-B, B, kv_shape), r.uniform(-B, B, kv_shape))


def cli_attn(tmp_path, q, k, v, *args):
    """polyrope attn on .npy files of q, k, v: (o, the JSON report)"""
    for name, x in (("q", q), ("k", k), ("v", v)):
        np.save(tmp_path / (name + ".npy"), x)
    out = tmp_path / "out"
    cmd = [POLYROPE, "attn", "--q", str(tmp_path / "q.npy"), "--k", str(tmp_path / "k.npy"),
           "--v", str(tmp_path / "v.npy"), "--out", str(out), "--json"] + list(args)
    run = subprocess.run(cmd, capture_output=True, text=True)
    assert run.returncode == 0, "seed %d: %s: %s" % (SEED, " ".join(cmd), run.stderr)
    return np.load(out / "o.npy"), json.loads(run.stdout)


OPTION_SETS = [
    ({}, []),
    ({"causal": True}, ["--causal"]),
    ({"pos": "rope-neox", "scale": "inv-sqrt-d", "alibi": 0.25}, ["--pos", "rope-neox", "--scale", "inv-sqrt-d",
                                                                  "--alibi", "0.25"]),
    ({"pos": "identity", "rope_base": 500.0, "causal": True}, ["--pos", "identity", "--rope-base", "500",
                                                              "--causal"]),
    ({"rope_base": 123.5, "alibi": 1.0}, ["--rope-base", "123.5", "--alibi", "1"]),
]


@pytest.mark.parametrize("case", range(len(OPTION_SETS)))
def test_same_as_cli(tmp_path, case):
    kw, args = OPTION_SETS[case]
    q, k, v = qkv(rng(case), (37, 8), B=2.0)
    o_cli, _ = cli_attn(tmp_path, q, k, v, *args)
    o = polyrope.attention(q, k, v, **kw)
    assert o.dtype == np.float64 and o.shape == q.shape
    assert np.array_equal(o, o_cli), "seed %d, options %s: max diff %g" % (SEED, kw, np.abs(o - o_cli).max())


def test_fft_path_same_as_cli_and_within_its_bound(tmp_path):
    q, k, v = qkv(rng(10), (64, 4))
    o_cli, rep = cli_attn(tmp_path, q, k, v, "--algo", "fft", "--eps", "1e-6", "--causal")
    o, bound = polyrope.attention(q, k, v, algo="fft", eps=1e-6, causal=True, return_bound=True)
    assert np.array_equal(o, o_cli), "seed %d" % SEED
    assert bound.shape == () and bound == rep["bound"] and bound <= 1e-6
    exact = polyrope.attention(q, k, v, causal=True)
    assert np.abs(o - exact).max() <= bound, "seed %d" % SEED
    _, b_exact = polyrope.attention(q, k, v, return_bound=True)
    assert np.isnan(b_exact)


@pytest.mark.skipif(not ORACLE, reason="PR_ORACLE (tests/attn_mpmath.py) not set")
@pytest.mark.parametrize("scale,causal,alibi", [("inv-d", False, 0.0), ("inv-sqrt-d", True, 0.5)])
def test_real_number_attention_within_the_estimate(tmp_path, scale, causal, alibi):
    """the mpmath oracle of the definition (60 digits) against attention(): within err_est, the
    dense reference's a-priori bound on its own error (pr_dense_error_est, attn --json)"""
    q, k, v = qkv(rng(20), (9, 6), B=3.0)
    args = ["--scale", scale, "--alibi", repr(alibi)] + (["--causal"] if causal else [])
    _, rep = cli_attn(tmp_path, q, k, v, *args)
    o = polyrope.attention(q, k, v, scale=scale, causal=causal, alibi=alibi)
    np.save(tmp_path / "o.npy", o)
    files = [str(tmp_path / (f + ".npy")) for f in "qkvo"]
    run = subprocess.run(["/usr/bin/python3", ORACLE] + files + ["10000", scale, repr(alibi), str(int(causal))],
                         capture_output=True, text=True, check=True)
    err = float(run.stdout)
    assert err <= rep["err_est"], "seed %d: |O - O_true| = %g > err_est %g" % (SEED, err, rep["err_est"])


def test_batches_and_grouped_query_heads_are_per_head_runs():
    r = rng(30)
    q, k, v = qkv(r, (2, 6, 20, 8), (2, 3, 20, 8))
    o = polyrope.attention(q, k, v, causal=True)
    assert o.shape == q.shape
    for b in range(2):
        for h in range(6):
            one = polyrope.attention(q[b, h], k[b, h // 2], v[b, h // 2], causal=True)
            assert np.array_equal(o[b, h], one), "seed %d: head (%d, %d)" % (SEED, b, h)
    # (h, n, d) is (1, h, n, d); repeated kv heads are the same as grouped ones
    o3 = polyrope.attention(q[1], k[1], v[1], causal=True)
    assert np.array_equal(o3, o[1])
    rep = polyrope.attention(q, np.repeat(k, 2, axis=1), np.repeat(v, 2, axis=1), causal=True)
    assert np.array_equal(rep, o)


def test_dtypes_widen_exactly():
    r = rng(40)
    q, k, v = qkv(r, (3, 16, 8))
    for dt in (np.float32, np.float16):
        q2, k2, v2 = (x.astype(dt) for x in (q, k, v))
        want = polyrope.attention(q2.astype(np.float64), k2.astype(np.float64), v2.astype(np.float64))
        assert np.array_equal(polyrope.attention(q2, k2, v2), want), dt
    # bfloat16: the top 16 bits of a float32, given as uint16 or int16 patterns
    bits = [(x.astype(np.float32).view(np.uint32) >> 16).astype(np.uint16) for x in (q, k, v)]
    wide = [(b.astype(np.uint32) << 16).view(np.float32).astype(np.float64) for b in bits]
    want = polyrope.attention(*wide)
    assert np.array_equal(polyrope.attention(*bits, bf16=True), want)
    assert np.array_equal(polyrope.attention(*(b.view(np.int16) for b in bits), bf16=True), want)
    # in-memory big-endian and Fortran-ordered arrays hold the same numbers
    assert np.array_equal(polyrope.attention(q.astype(">f8"), np.asfortranarray(k), v), polyrope.attention(q, k, v))


class FakeTensor:
    """what attention() uses of a torch tensor: detach(), cpu(), numpy()"""

    def __init__(self, x, fails=False):
        self.x, self.fails, self.calls = x, fails, []

    def detach(self):
        self.calls.append("detach")
        return self

    def cpu(self):
        self.calls.append("cpu")
        return self

    def numpy(self):
        if self.fails:
            raise TypeError("Got unsupported ScalarType BFloat16")
        return self.x


def test_tensors_through_numpy():
    q, k, v = qkv(rng(45), (2, 12, 4))
    t = FakeTensor(q.astype(np.float32))
    assert np.array_equal(polyrope.attention(t, k, v), polyrope.attention(q.astype(np.float32), k, v))
    assert t.calls == ["detach", "cpu"]
    with pytest.raises(TypeError, match="t.view.torch.int16. with bf16=True"):
        polyrope.attention(q, FakeTensor(k, fails=True), v)


def test_custom_w_is_the_rope_of_the_same_matrices():
    """a general W given as the dense RoPE matrices W_l = R_{-l} (attn --w) matches pos='rope'"""
    r = rng(50)
    n, d = 12, 4
    q, k, v = qkv(r, (n, d))
    theta = 10000.0 ** (-2.0 * np.arange(d // 2) / d)
    w = np.zeros((2 * n - 1, d, d))
    for idx, l in enumerate(range(-(n - 1), n)):
        for kk, t in enumerate(theta):
            c, s = np.cos(-l * t), np.sin(-l * t)
            w[idx, 2 * kk:2 * kk + 2, 2 * kk:2 * kk + 2] = [[c, -s], [s, c]]
    o = polyrope.attention(q, k, v, w=w)
    ref = polyrope.attention(q, k, v)
    # two roundings of the same scores (cos/sin of -lθ vs the rotations' products): |ΔM| of a few
    # ulps of d·max|q||k| moves O by about that times max|v|
    assert np.abs(o - ref).max() <= 64 * d * np.finfo(float).eps, "seed %d" % SEED


BAD = [
    (lambda q, k, v: polyrope.attention(q.astype(np.complex128), k, v), TypeError, "complex"),
    (lambda q, k, v: polyrope.attention(q.astype(np.int32), k, v), TypeError, "dtype int32"),
    (lambda q, k, v: polyrope.attention(q.astype(np.int16), k, v), TypeError, "bf16=True"),
    (lambda q, k, v: polyrope.attention(q.astype(np.int32), k, v, bf16=True), TypeError, "dtype int32"),
    (lambda q, k, v: polyrope.attention(q[0], k, v), ValueError, "rank"),
    (lambda q, k, v: polyrope.attention(q[None, None, None], k, v), ValueError, "expected (n, d)"),
    (lambda q, k, v: polyrope.attention(q, k[:, :5], v[:, :5]), ValueError, "batch, n and d"),
    (lambda q, k, v: polyrope.attention(q, k[:2], v[:2]), ValueError, "multiple of the key/value heads"),
    (lambda q, k, v: polyrope.attention(q, k, v[:1]), ValueError, "shapes differ"),
    (lambda q, k, v: polyrope.attention(np.where(q > 0.9, np.nan, q), k, v), ValueError, "must be finite"),
    (lambda q, k, v: polyrope.attention(q[..., :5], k[..., :5], v[..., :5]), polyrope.PolyropeError, "even"),
    (lambda q, k, v: polyrope.attention(q, k, v, pos="alibi"), ValueError, "pos 'alibi'"),
    (lambda q, k, v: polyrope.attention(q, k, v, scale=0), ValueError, "scale 0"),
    (lambda q, k, v: polyrope.attention(q, k, v, alibi=-1), ValueError, "alibi -1"),
    (lambda q, k, v: polyrope.attention(q, k, v, rope_base=1), ValueError, "rope_base 1"),
    (lambda q, k, v: polyrope.attention(q, k, v, algo="flash"), ValueError, "algo 'flash'"),
    (lambda q, k, v: polyrope.attention(q, k, v, algo="fft", eps=0), ValueError, "eps 0"),
    (lambda q, k, v: polyrope.attention(q, k, v, w=np.zeros((3, 3))), ValueError, "(2n-1, d, d)"),
    (lambda q, k, v: polyrope.attention(q, k, v, algo="fft", eps=1e-300), polyrope.PolyropeError, "floor"),
    (lambda q, k, v: polyrope.attention(q, k, v, algo="lowrank", alibi=0.5), polyrope.PolyropeError, "lowrank"),
]


@pytest.mark.parametrize("case", range(len(BAD)))
def test_bad_input_is_a_clear_exception(case):
    call, exc, words = BAD[case]
    q, k, v = qkv(rng(60), (3, 10, 6))
    with pytest.raises(exc) as info:
        call(q, k, v)
    msg = str(info.value)
    assert words in msg and "\n" not in msg, msg
