"""polyrope.certify: the enclosure contains the truth (mpmath at 60 digits on small heads; the
float64 reference within its own error estimate on larger ones), a correct float32 kernel is
certified at the tolerance its error deserves and refuted just below it, kernels with known bugs
are refuted, batches and grouped-query heads are per-head certificates, gradients (from attn
--backward) are certified and a perturbed one refuted, a general W (w=) with its gradients, bad
input raises one-line exceptions.
Seed: $PR_TEST_SEED."""
import subprocess

import numpy as np
import pytest

import kernels
import polyrope
from test_attention import POLYROPE, ORACLE, SEED, cli_attn, qkv, rng


def worst(cert):
    return max(hc.upper for hc in cert.output), max(hc.lower for hc in cert.output)


@pytest.mark.skipif(not ORACLE, reason="PR_ORACLE (tests/attn_mpmath.py) not set")
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_enclosure_contains_the_real_number_error(tmp_path, dtype):
    q, k, v = qkv(rng(100), (10, 6), B=2.0)
    o = kernels.attention(q, k, v, dtype=dtype, causal=True).astype(dtype)
    cert = polyrope.certify(o, q, k, v, causal=True, atol=1.0)  # |O| <= 2, so certified
    (hc,) = cert.output
    for name, x in (("q", q), ("k", k), ("v", v), ("o", o.astype(np.float64))):
        np.save(tmp_path / (name + ".npy"), x)
    run = subprocess.run(["/usr/bin/python3", ORACLE] + [str(tmp_path / (f + ".npy")) for f in "qkvo"]
                         + ["10000", "inv-d", "0", "1"], capture_output=True, text=True, check=True)
    err = float(run.stdout)  # 60 digits: its own error is far below the enclosure's width
    assert hc.lower <= err <= hc.upper, "seed %d: %r not in [%r, %r]" % (SEED, err, hc.lower, hc.upper)
    assert cert.dtype == np.dtype(dtype).name and hc.verdict == "certified"
    assert hc.upper <= hc.lower * (1 + 1e-6), "seed %d: float candidate, enclosure [%r, %r] not tight" % (
        SEED, hc.lower, hc.upper)
    # the worst index names an element whose error is the maximum
    assert o.shape == q.shape and len(hc.index) == 2


def test_enclosure_against_the_float64_reference(tmp_path):
    """larger n: the float32 candidate's error (~1e-7) is far above float64's, so the float64
    reference's distance to the candidate lies within [lower - e, upper + e], e its err_est"""
    q, k, v = qkv(rng(110), (128, 16), B=2.0)
    _, rep = cli_attn(tmp_path, q, k, v, "--scale", "inv-sqrt-d")
    ref = polyrope.attention(q, k, v, scale="inv-sqrt-d")
    o = kernels.attention(q, k, v, scale=1 / 4.0)
    cert = polyrope.certify(o, q, k, v, scale="inv-sqrt-d", atol=1e-5)
    (hc,) = cert.output
    dist, e = np.abs(o - ref).max(), rep["err_est"]
    assert hc.lower - e <= dist <= hc.upper + e, "seed %d: %r vs [%r, %r] ± %r" % (SEED, dist, hc.lower,
                                                                                  hc.upper, e)
    assert abs(o - ref)[hc.index] >= hc.lower - e


def test_correct_kernel_certified_at_its_error_refuted_just_below():
    q, k, v = qkv(rng(120), (3, 96, 16), B=2.0)
    o = kernels.attention(q, k, v, causal=True)
    first = polyrope.certify(o, q, k, v, causal=True, atol=1.0)
    assert first.verdict == "certified" and bool(first)
    up, lo = worst(first)
    assert 0 < lo <= up < 1e-5
    at = polyrope.certify(o, q, k, v, causal=True, atol=up * (1 + 1e-9))
    below = polyrope.certify(o, q, k, v, causal=True, atol=lo * (1 - 1e-6))
    assert at.verdict == "certified", "seed %d: at atol = upper %r: %s" % (SEED, up, at)
    assert below.verdict == "refuted" and not below, "seed %d: below lower %r: %s" % (SEED, lo, below)
    bad = [hc for hc in below.output if hc.verdict == "refuted"]
    assert bad and all(hc.witness is not None for hc in bad)
    w = bad[0].witness
    assert abs(o[w] - polyrope.attention(q, k, v, causal=True)[w]) > lo * (1 - 1e-6) * 0.999


@pytest.mark.parametrize("bug", list(kernels.bugs(*qkv(rng(0), (4, 8)))))
def test_known_bugs_are_refuted(bug):
    q, k, v = qkv(rng(130), (2, 64, 8), B=2.0)
    o = kernels.bugs(q, k, v)[bug]
    good = kernels.attention(q, k, v, causal=True)
    assert polyrope.certify(good, q, k, v, causal=True, atol=1e-5).verdict == "certified"
    cert = polyrope.certify(o, q, k, v, causal=True, atol=1e-5)
    assert cert.verdict == "refuted", "seed %d, %s: %s" % (SEED, bug, cert)


def test_rope_layouts_and_identity():
    q, k, v = qkv(rng(140), (32, 8))
    neox = kernels.attention(q, k, v, layout="neox")
    assert polyrope.certify(neox, q, k, v, pos="rope-neox", atol=1e-5).verdict == "certified"
    assert polyrope.certify(neox, q, k, v, pos="rope", atol=1e-5).verdict == "refuted"
    # Q and K rotated by the kernel beforehand: pos="identity"
    qr, kr = kernels.rope(q), kernels.rope(k)
    o = kernels.attention(q, k, v)
    assert polyrope.certify(o, qr, kr, v, pos="identity", atol=1e-5).verdict == "certified"


def test_batches_and_grouped_query_heads_are_per_head_certificates():
    q, k, v = qkv(rng(150), (2, 4, 24, 8), (2, 2, 24, 8))
    o = kernels.attention(q, k, v, causal=True, dtype=np.float16).astype(np.float16)
    cert = polyrope.certify(o, q, k, v, causal=True, atol=1e-2)
    assert [hc.head for hc in cert.output] == [(b, h) for b in range(2) for h in range(4)]
    for hc in cert.output:
        b, h = hc.head
        one = polyrope.certify(o[b, h], q[b, h], k[b, h // 2], v[b, h // 2], causal=True, atol=1e-2).output[0]
        assert (one.lower, one.upper, one.verdict) == (hc.lower, hc.upper, hc.verdict), hc
        assert hc.index[:2] == (b, h) and one.index == hc.index[2:]
    assert cert.dtype == "float16"


def test_dtypes_of_the_candidate():
    """the float64 reference rounded to each dtype: within half an ulp (round to nearest; a
    bfloat16 cut from a float32 by truncation, within one), up to the reference's own error,
    err_est ~ 1e-15 here, which V in [1, 2) (so |O| >= 1, ulp >= 2^-23 in float32) makes
    below 1e-6 ulps"""
    q, k, _ = qkv(rng(160), (16, 4))
    v = rng(161).uniform(1, 2, (16, 4))
    ref = polyrope.attention(q, k, v)
    bits = (ref.astype(np.float32).view(np.uint32) >> 16).astype(np.uint16)
    for cand, name, most in ((ref, "float64", None), (ref.astype(np.float32), "float32", 0.5),
                             (ref.astype(np.float16), "float16", 0.5), (bits, "bfloat16", 1.0)):
        cert = polyrope.certify(cand, q, k, v, atol=1e-2, bf16=(name == "bfloat16"))
        (hc,) = cert.output
        assert cert.dtype == name and hc.verdict == "certified", cert
        assert most is None or hc.ulps[0] <= most + 1e-6, "%s: %r ulps" % (name, hc.ulps)
        assert hc.ulps[0] <= hc.ulps[1]
    # a NaN in the candidate is no input error: it is refuted
    bad = ref.astype(np.float32)
    bad[3, 1] = np.nan
    (hc,) = polyrope.certify(bad, q, k, v, atol=1.0).output
    assert hc.verdict == "refuted" and hc.upper == np.inf


def cli_backward(tmp_path, tag, q, k, v, do):
    """o, dq, dk, dv of one head from attn --backward --causal (float64)"""
    d = tmp_path / tag
    d.mkdir()
    for name, x in (("q", q), ("k", k), ("v", v), ("do", do)):
        np.save(d / (name + ".npy"), x)
    subprocess.run([POLYROPE, "attn", "--q", str(d / "q.npy"), "--k", str(d / "k.npy"), "--v", str(d / "v.npy"),
                    "--do", str(d / "do.npy"), "--backward", "--causal", "--out", str(d / "out")],
                   check=True, capture_output=True)
    return [np.load(d / "out" / (f + ".npy")) for f in ("o", "dq", "dk", "dv")]


def test_gradients(tmp_path):
    n, d = 24, 4
    q, k, v = qkv(rng(170), (n, d))
    do = rng(171).uniform(-1, 1, (n, d))
    o, dq, dk, dv = (x.astype(np.float32) for x in cli_backward(tmp_path, "one", q, k, v, do))
    cert = polyrope.certify(o, q, k, v, causal=True, atol=1e-6, do=do, dq=dq, dk=dk, dv=dv)
    assert cert.verdict == "certified", cert
    assert [len(cert.dq), len(cert.dk), len(cert.dv)] == [1, 1, 1]
    dk_bad = dk.copy()
    dk_bad[5, 2] += 1e-3
    cert = polyrope.certify(o, q, k, v, causal=True, atol=1e-6, do=do, dk=dk_bad)
    assert cert.verdict == "refuted" and cert.dk[0].verdict == "refuted" and cert.dq is None, cert
    assert cert.dk[0].witness == (5, 2) or cert.dk[0].index == (5, 2)


def test_gradients_past_512_grouped_query():
    # n = 640 > 512: the gradients' double pass (docs/certify.md L8-L12); two query heads over one
    # kv head, the true dK, dV summed over both; float64 numpy gradients rounded to float32
    n, d = 640, 8
    q, k, v = qkv(rng(180), (2, n, d), kv_shape=(1, n, d))
    do = rng(181).uniform(-1, 1, (2, n, d))
    s = (q @ np.swapaxes(k, -1, -2)) / d
    p = np.exp(s - s.max(axis=-1, keepdims=True))
    p /= p.sum(axis=-1, keepdims=True)
    o = p @ v
    ds = p * (do @ np.swapaxes(v, -1, -2) - (do * o).sum(axis=-1, keepdims=True))
    dq, dk, dv = (ds @ k) / d, (np.swapaxes(ds, -1, -2) @ q / d).sum(axis=0), (np.swapaxes(p, -1, -2) @ do).sum(axis=0)
    f32 = [x.astype(np.float32) for x in (o, dq, dk[None], dv[None])]
    cert = polyrope.certify(*f32[:1], q, k, v, pos="identity", atol=1e-5, do=do, dq=f32[1], dk=f32[2], dv=f32[3])
    assert cert.verdict == "certified", cert
    assert [len(cert.dq), len(cert.dk), len(cert.dv)] == [2, 1, 1]
    assert all(g.upper < 1e-6 for g in cert.dq + cert.dk + cert.dv), cert
    dv_bad = f32[3].copy()
    dv_bad[0, 600, 3] += 1e-4
    cert = polyrope.certify(f32[0], q, k, v, pos="identity", atol=1e-5, do=do, dv=dv_bad)
    assert cert.verdict == "refuted" and cert.dv[0].verdict == "refuted", cert


def test_grouped_query_gradients(tmp_path):
    """h = 4 query heads over 2 kv heads, batch 2: a kv head's true dK, dV sum its query heads'
    (each from attn --backward); the results come per kv head, labelled (b, j)"""
    n, d = 12, 4
    q, k, v = qkv(rng(175), (2, 4, n, d), (2, 2, n, d))
    do = rng(176).uniform(-1, 1, q.shape)
    o, dq = np.empty(q.shape), np.empty(q.shape)
    dk, dv = np.zeros(k.shape), np.zeros(k.shape)
    for b in range(2):
        for h in range(4):
            r = cli_backward(tmp_path, "b%dh%d" % (b, h), q[b, h], k[b, h // 2], v[b, h // 2], do[b, h])
            o[b, h], dq[b, h] = r[0], r[1]
            dk[b, h // 2] += r[2]
            dv[b, h // 2] += r[3]
    f32 = [x.astype(np.float32) for x in (o, dq, dk, dv)]
    cert = polyrope.certify(f32[0], q, k, v, causal=True, atol=1e-6, do=do, dq=f32[1], dk=f32[2], dv=f32[3])
    assert cert.verdict == "certified", cert
    assert [hc.head for hc in cert.dk] == [(b, j) for b in range(2) for j in range(2)] == [hc.head for hc in cert.dv]
    assert [hc.head for hc in cert.dq] == [(b, h) for b in range(2) for h in range(4)]
    assert all(hc.index[:2] == hc.head for hc in cert.dk + cert.dv + cert.dq)
    bad = f32[3].copy()
    bad[1, 1, 3, 2] += 1e-3  # kv head (1, 1)
    cert = polyrope.certify(f32[0], q, k, v, causal=True, atol=1e-6, do=do, dv=bad)
    assert [hc.verdict for hc in cert.dv] == ["certified"] * 3 + ["refuted"], cert
    assert cert.dv[3].witness == (1, 1, 3, 2), cert.dv[3]


def w_attention(q, k, v, w, do, alibi):
    """causal attention with a general W (scores σ Q_i W_{i-j} K_j^T, σ = 1/d, ALiBi -alibi|i-j|) and its
    gradients in float64 numpy, straight from docs/math.md §1, §7; q, do (h, n, d), k, v (n, d)"""
    n, d = k.shape
    ij = np.arange(n)[:, None] - np.arange(n)[None, :]
    wg = w[ij + n - 1]  # (n, n, d, d): W_{i-j}
    s = np.einsum("hia,ijab,jb->hij", q, wg, k) / d - alibi * np.abs(ij)
    s[:, ij < 0] = -np.inf
    p = np.exp(s - s.max(axis=-1, keepdims=True))
    p /= p.sum(axis=-1, keepdims=True)
    o = p @ v
    ds = p * (do @ v.T - (do * o).sum(axis=-1, keepdims=True))
    dq = np.einsum("hij,ijab,jb->hia", ds, wg, k) / d
    dk = np.einsum("hij,hia,ijab->jb", ds, q, wg) / d
    dv = np.einsum("hij,hic->jc", p, do)
    return o, dq, dk, dv


def test_general_w_output_and_gradients():
    """w= past n = 512 with grouped-query heads (two over one kv head), causal and ALiBi: float32
    candidates of numpy's float64 certified, their enclosures hold the float64 reference's distance,
    a perturbed dK refuted; W = I through w= encloses what pos='identity' does"""
    n, d = 520, 4
    q, k, v = qkv(rng(190), (2, n, d), kv_shape=(1, n, d))
    w = rng(191).uniform(-1, 1, (2 * n - 1, d, d)) / d
    do = rng(192).uniform(-1, 1, (2, n, d))
    ref = w_attention(q, k[0], v[0], w, do, 0.25)
    ref = [ref[0], ref[1], ref[2][None], ref[3][None]]
    f32 = [x.astype(np.float32) for x in ref]
    cert = polyrope.certify(f32[0], q, k, v, w=w, causal=True, alibi=0.25, atol=1e-5, do=do, dq=f32[1], dk=f32[2],
                            dv=f32[3])
    assert cert.verdict == "certified", cert
    assert [len(cert.output), len(cert.dq), len(cert.dk), len(cert.dv)] == [2, 2, 1, 1]
    for name, x, r in zip(("output", "dq", "dk", "dv"), f32, ref):
        dist = np.abs(x - r).max()  # numpy's own error is ~1e-13, the float32 rounding's ~1e-8
        hcs = getattr(cert, name)
        assert max(hc.lower for hc in hcs) - 1e-11 <= dist <= max(hc.upper for hc in hcs) + 1e-11, (name, dist, cert)
        assert all(hc.upper <= hc.lower * 1.001 for hc in hcs), cert
    bad = f32[2].copy()
    bad[0, 300, 1] += 1e-3
    cert = polyrope.certify(f32[0], q, k, v, w=w, causal=True, alibi=0.25, atol=1e-5, do=do, dk=bad)
    assert cert.verdict == "refuted" and cert.dk[0].witness == (0, 300, 1), cert
    eye = np.broadcast_to(np.eye(d), (2 * n - 1, d, d))
    a = polyrope.certify(f32[0], q, k, v, w=eye, do=do, dq=f32[1])
    b = polyrope.certify(f32[0], q, k, v, pos="identity", do=do, dq=f32[1])
    for x, y in zip(a.output + a.dq, b.output + b.dq):
        assert x.lower <= y.upper and y.lower <= x.upper, (x, y)


BAD = [
    (dict(o="short"), ValueError, "expected q's"),
    (dict(atol=-1), ValueError, "atol -1"),
    (dict(rtol=float("nan")), ValueError, "rtol nan"),
    (dict(pos="general"), ValueError, "pos 'general'"),
    (dict(do="same"), ValueError, "give do together with"),
    (dict(dq="same"), ValueError, "give do together with"),
    (dict(scale=-2.0), ValueError, "scale -2.0"),
    (dict(q="nan"), ValueError, "must be finite"),
    (dict(k="3heads"), ValueError, "multiple of the key/value heads"),
    (dict(o="complex"), TypeError, "complex"),
    (dict(w="wrong"), ValueError, "w: shape"),
    (dict(w="eye", pos="rope"), ValueError, "pos 'rope' and w"),
]


@pytest.mark.parametrize("case", range(len(BAD)))
def test_bad_input_is_a_clear_exception(case):
    change, exc, words = BAD[case]
    q, k, v = qkv(rng(180), (4, 10, 6))
    args = {"o": polyrope.attention(q, k, v), "q": q, "k": k, "v": v}
    kw = {}
    for key, val in change.items():
        if val == "short":
            args[key] = args[key][:, :5]
        elif val == "nan":
            args[key] = np.where(args[key] > 0.9, np.nan, args[key])
        elif val == "3heads":
            args[key] = args[key][:3]
            args["v"] = args["v"][:3]
        elif val == "complex":
            args[key] = args[key].astype(np.complex64)
        elif val == "same":
            kw[key] = q
        elif val == "wrong":
            kw[key] = np.zeros((3, 6, 6))
        elif val == "eye":
            kw[key] = np.broadcast_to(np.eye(6), (19, 6, 6))
        else:
            kw[key] = val
    with pytest.raises(exc) as info:
        polyrope.certify(args["o"], args["q"], args["k"], args["v"], **kw)
    msg = str(info.value)
    assert words in msg and "\n" not in msg, msg
