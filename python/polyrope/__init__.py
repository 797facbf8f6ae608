"""polyrope from Python: RoPE attention, and the certified error of anyone's attention kernel.

    attention(q, k, v, ...)  float64 attention of numpy arrays through libpolyrope
                             (the dense reference, or the FFT / low-rank fast paths)
    certify(o, q, k, v, ...) a proved enclosure [lower, upper] of max|o - O_true| per head,
                             O_true the real-number attention of q, k, v, and a verdict against
                             |o - O_true| <= atol + rtol |O_true| (docs/certify.md)

Arrays: numpy float64, float32 or float16 (widened exactly), bfloat16 as its 16-bit patterns
(uint16 or int16 with bf16=True, or an ml_dtypes bfloat16 array); shapes (n, d), (h, n, d) or
(b, h, n, d), K and V with h_kv heads dividing Q's (grouped-query attention). A tensor with a
.numpy() method (torch) is read through it, detached and on the CPU first; a bfloat16 torch
tensor through t.view(torch.int16) with bf16=True.

Only the standard library (ctypes) and numpy. The shared library is $POLYROPE_LIB when set
(the build tree's tests set it), else the one `meson install` put beside this module's record
(_config.py), else whatever the dynamic loader finds: libpolyrope-exact (certify() needs it; it
loads libpolyrope, which attention() needs), or libpolyrope alone (attention() only).
"""
import ctypes
import ctypes.util
import dataclasses
import math
import os

import numpy as np

__all__ = ["attention", "certify", "Certificate", "HeadCertificate", "PolyropeError"]

VERDICTS = ("certified", "refuted", "unknown")
_POS = {"rope": 0, "rope-neox": 1, "identity": 3}  # pr_pos_kind_t; 4 is a custom W
_POS_CUSTOM = 4
_CERT_POS = {"rope": 0, "rope-neox": 1, "identity": 2}  # PR_CERTIFY_POS_*
_ALGOS = {"exact": 0, "fft": 1, "lowrank": 2}  # pr_flat_algo_t
_DTYPES = ("float64", "float32", "float16", "bfloat16")  # PR_CERTIFY_FLOAT64 ... in order


class PolyropeError(RuntimeError):
    """The library refused or failed: .status is its pr_status code, the message says why."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


# ---- the shared library ----

class _Problem(ctypes.Structure):  # pr_certify_problem_t
    _fields_ = [("pos", ctypes.c_int), ("rope_base", ctypes.c_double), ("scale", ctypes.c_int),
                ("sigma", ctypes.c_double), ("causal", ctypes.c_int), ("alibi", ctypes.c_double)]


class _Opts(ctypes.Structure):  # pr_certify_opts_t
    _fields_ = [("atol", ctypes.c_double), ("rtol", ctypes.c_double), ("dtype", ctypes.c_int),
                ("max_fallback_s", ctypes.c_double), ("prec", ctypes.c_long)]


class _Result(ctypes.Structure):  # pr_certify_result_t
    _fields_ = [("lower", ctypes.c_double), ("upper", ctypes.c_double),
                ("worst_row", ctypes.c_long), ("worst_col", ctypes.c_long),
                ("ulps_lower", ctypes.c_double), ("ulps_upper", ctypes.c_double),
                ("verdict", ctypes.c_int), ("witness_row", ctypes.c_long), ("witness_col", ctypes.c_long),
                ("rows", ctypes.c_long), ("rows_fallback", ctypes.c_long),
                ("bound_max", ctypes.c_double), ("time_s", ctypes.c_double),
                ("rows_open", ctypes.c_long)]


_lib_handle = None


def _library_path():
    env = os.environ.get("POLYROPE_LIB")
    if env:
        return env
    for name in ("polyrope-exact", "polyrope"):
        try:
            from . import _config  # written by meson install
            path = os.path.join(_config.LIBDIR, "lib%s.so" % name)
            if os.path.exists(path):
                return path
        except ImportError:
            pass
    return ctypes.util.find_library("polyrope-exact") or ctypes.util.find_library("polyrope")


def _lib():
    global _lib_handle
    if _lib_handle is not None:
        return _lib_handle
    path = _library_path()
    if not path:
        raise OSError("libpolyrope not found: install polyrope (meson install) or set POLYROPE_LIB "
                      "to the path of libpolyrope-exact.so (or libpolyrope.so, without certify())")
    lib = ctypes.CDLL(path)
    dp, cl, ci, cd = ctypes.POINTER(ctypes.c_double), ctypes.c_long, ctypes.c_int, ctypes.c_double
    lib.pr_strerror.restype = ctypes.c_char_p
    lib.pr_strerror.argtypes = [ci]
    lib.pr_flat_attention.restype = ci
    lib.pr_flat_attention.argtypes = [dp, dp, ctypes.c_char_p, ctypes.c_size_t, dp, dp, dp, dp,
                                      cl, cl, cl, cl, cl, ci, cd, cd, ci, cd, ci, cd]
    if hasattr(lib, "pr_certify_forward_heads"):
        rp, pp, op = ctypes.POINTER(_Result), ctypes.POINTER(_Problem), ctypes.POINTER(_Opts)
        lib.pr_certify_forward_heads.restype = ci
        lib.pr_certify_forward_heads.argtypes = [rp, dp, dp, dp, dp, ci, ci, ci, ci, ci, pp, op]
        lib.pr_certify_backward_heads.restype = ci
        lib.pr_certify_backward_heads.argtypes = [rp, dp, dp, dp, dp, dp, dp, dp, ci, ci, ci, ci, ci, pp, op]
        lib.pr_certify_forward_heads_w.restype = ci
        lib.pr_certify_forward_heads_w.argtypes = [rp, dp, dp, dp, dp, dp, ci, ci, ci, ci, ci, pp, op]
        lib.pr_certify_backward_heads_w.restype = ci
        lib.pr_certify_backward_heads_w.argtypes = [rp, dp, dp, dp, dp, dp, dp, dp, dp, ci, ci, ci, ci, ci, pp, op]
    _lib_handle = lib
    return lib


def _ptr(a):
    return None if a is None else a.ctypes.data_as(ctypes.POINTER(ctypes.c_double))


def _fail(status, what):
    raise PolyropeError(status, "%s: %s" % (what, _lib().pr_strerror(status).decode()))


# ---- inputs ----

@dataclasses.dataclass
class _Array:
    name: str
    x: np.ndarray      # float64, C order, (b, h, n, d)
    dtype: str         # the caller's dtype, one of _DTYPES
    shape: tuple       # the caller's shape


def _widen(name, x, bf16):
    """x as exact float64 values and its dtype name; TypeError for what cannot be widened exactly"""
    if not isinstance(x, np.ndarray) and hasattr(x, "numpy"):
        # a tensor (torch and the like): its numpy view, off the autograd graph and the device
        for step in ("detach", "cpu"):
            x = getattr(x, step)() if hasattr(x, step) else x
        try:
            x = x.numpy()
        except (TypeError, RuntimeError) as e:
            raise TypeError("%s: a tensor numpy cannot hold (%s); for bfloat16 pass "
                            "t.view(torch.int16) with bf16=True" % (name, str(e).splitlines()[0])) from None
    x = np.asarray(x)
    dt = x.dtype
    if dt.name == "bfloat16" or (bf16 and dt.kind in "iu" and dt.itemsize == 2):
        bits = x.view(np.uint16).astype(np.uint32) << 16
        return bits.view(np.float32).astype(np.float64), "bfloat16"
    if dt.kind == "f" and dt.itemsize in (8, 4, 2):
        return x.astype(np.float64), {8: "float64", 4: "float32", 2: "float16"}[dt.itemsize]
    if dt.kind in "iu" and dt.itemsize == 2:
        raise TypeError("%s: 16-bit integers; pass bf16=True if they hold bfloat16 bits, else floats" % name)
    if dt.kind == "c":
        raise TypeError("%s: complex numbers (%s); attention inputs are real" % (name, dt))
    raise TypeError("%s: dtype %s; give float64, float32, float16 or bfloat16" % (name, dt))


def _heads(name, x, bf16=False, candidate=False):
    """x widened, as (b, h, n, d); a candidate (o, dq, ...) may hold NaN or Inf: certify refutes it"""
    w, dtype = _widen(name, x, bf16)
    if w.ndim not in (2, 3, 4) or 0 in w.shape:
        raise ValueError("%s: shape %s; expected (n, d), (h, n, d) or (b, h, n, d), none zero"
                         % (name, tuple(w.shape)))
    bad = ~np.isfinite(w)
    if not candidate and bad.any():
        raise ValueError("%s: entry %s is %s; every entry must be finite"
                         % (name, tuple(int(i) for i in np.argwhere(bad)[0]), w[bad][0]))
    shape = tuple(w.shape)
    full = (1,) * (4 - w.ndim) + shape
    return _Array(name, np.ascontiguousarray(w.reshape(full)), dtype, shape)


def _group(q, k, v):
    """heads per kv head; ValueError unless K, V match each other and Q (grouped-query allowed)"""
    for a in (k, v):
        if len(a.shape) != len(q.shape):
            raise ValueError("%s: shape %s has rank %d, q %s has %d; give the same rank"
                             % (a.name, a.shape, len(a.shape), q.shape, len(q.shape)))
    if k.x.shape != v.x.shape:
        raise ValueError("k %s and v %s: shapes differ" % (k.shape, v.shape))
    (b, h, n, d), (bk, hk, nk, dk) = q.x.shape, k.x.shape
    if (b, n, d) != (bk, nk, dk):
        raise ValueError("q %s and k %s: batch, n and d must agree" % (q.shape, k.shape))
    if h % hk:
        raise ValueError("q has %d heads, k and v %d: the query heads must be a multiple of the "
                         "key/value heads (grouped-query attention)" % (h, hk))
    return h // hk


def _sigma(scale, d):
    if scale == "inv-d":
        return 1.0 / d
    if scale == "inv-sqrt-d":
        return 1.0 / math.sqrt(d)
    if isinstance(scale, (int, float)) and not isinstance(scale, bool) and math.isfinite(scale) and scale > 0:
        return float(scale)
    raise ValueError("scale %r: give 'inv-d' (1/d), 'inv-sqrt-d' (1/sqrt(d)) or a number > 0" % (scale,))


def _general_w(w, n, d):
    """a general W as exact float64, C order, of shape (2n-1, d, d); ValueError otherwise"""
    wx, _ = _widen("w", w, False)
    if wx.shape != (2 * n - 1, d, d):
        raise ValueError("w: shape %s; expected (2n-1, d, d) = %s" % (tuple(wx.shape), (2 * n - 1, d, d)))
    if not np.isfinite(wx).all():
        raise ValueError("w: every entry must be finite")
    return np.ascontiguousarray(wx)


def _options(pos, causal, alibi, rope_base, choices):
    if not isinstance(pos, str) or pos not in choices:
        raise ValueError("pos %r: give one of %s" % (pos, ", ".join(repr(c) for c in choices)))
    if not (isinstance(alibi, (int, float)) and math.isfinite(alibi) and alibi >= 0):
        raise ValueError("alibi %r: give a slope >= 0 (0: none)" % (alibi,))
    if pos != "identity" and not (isinstance(rope_base, (int, float)) and math.isfinite(rope_base)
                                  and rope_base > 1):
        raise ValueError("rope_base %r: give a number > 1" % (rope_base,))
    if causal not in (False, True, 0, 1):
        raise ValueError("causal %r: give True or False" % (causal,))


# ---- attention ----

def attention(q, k, v, *, pos="rope", w=None, causal=False, alibi=0.0, scale="inv-d",
              rope_base=10000.0, algo="exact", eps=1e-6, bf16=False, return_bound=False):
    """O = softmax(σ M + bias) V in float64, per head, with the options of `polyrope attn`.

    q (.., h, n, d); k, v (.., h_kv, n, d), h_kv dividing h. pos 'rope' (interleaved pairs),
    'rope-neox' (rotate-half) or 'identity' (q, k as given, e.g. already rotated); or w, a
    (2n-1, d, d) array of position matrices indexed by l+n-1 (attn --w). scale 'inv-d',
    'inv-sqrt-d' or a number; causal; alibi a slope (-slope*|i-j|). algo 'exact' (the dense
    reference), 'fft' or 'lowrank' (target eps on max|Õ - O| for every head: the polynomial is
    chosen once, for the worst head, and all heads run on one plan). Returns an array of q's shape,
    and with return_bound=True also the fast path's a-priori bound per head (NaN for exact; a double
    estimate, not a certificate: use certify()). bf16=True reads 16-bit integer arrays as the
    bits of bfloat16 numbers (float arrays are read as they are).
    """
    qa, ka, va = _heads("q", q, bf16), _heads("k", k, bf16), _heads("v", v, bf16)
    _group(qa, ka, va)
    _options(pos, causal, alibi, rope_base, _POS)
    if algo not in _ALGOS:
        raise ValueError("algo %r: give 'exact', 'fft' or 'lowrank'" % (algo,))
    if not (isinstance(eps, (int, float)) and math.isfinite(eps) and eps > 0):
        raise ValueError("eps %r: give a target > 0" % (eps,))
    b, h, n, d = qa.x.shape
    wa, kind = None, _POS[pos]
    if w is not None:
        wa, kind = _general_w(w, n, d), _POS_CUSTOM
    out = np.empty(qa.x.shape)
    bound = np.empty((b, h))
    msg = ctypes.create_string_buffer(512)
    st = _lib().pr_flat_attention(_ptr(out), _ptr(bound), msg, len(msg), _ptr(qa.x), _ptr(ka.x), _ptr(va.x),
                                  _ptr(wa), b, h, ka.x.shape[1], n, d, kind, float(rope_base),
                                  _sigma(scale, d), int(bool(causal)), float(alibi), _ALGOS[algo], float(eps))
    if st:
        raise PolyropeError(st, "attention: " + (msg.value.decode() or _lib().pr_strerror(st).decode()))
    out = out.reshape(qa.shape)
    if return_bound:
        return out, bound.reshape(qa.shape[:-2])
    return out


# ---- certify ----

@dataclasses.dataclass(frozen=True)
class HeadCertificate:
    """One head's certificate: lower <= max|cand - true| <= upper, proved."""
    head: tuple          # (b, h) of this head in (b, h, n, d)
    lower: float
    upper: float
    index: tuple         # the element (into the candidate's own shape) whose proved lower bound is `lower`
    ulps: tuple          # (lower, upper) of the same maximum in ulps of the candidate's dtype
    verdict: str         # 'certified', 'refuted' or 'unknown' against atol + rtol |true|
    witness: tuple       # refuted: an element (candidate's shape) proved out of tolerance; else None
    rows: int
    rows_fallback: int   # rows recomputed in Arb because the double pass's bound was too wide (dk, dv: key rows)
    time_s: float
    rows_open: int = 0   # rows with an element left undecided (the Arb budget ran out)


@dataclasses.dataclass(frozen=True)
class Certificate:
    """What certify() proved. verdict: 'refuted' if any head is, else 'unknown' if any is, else
    'certified'. bool(cert) is cert.verdict == 'certified'."""
    verdict: str
    dtype: str
    atol: float
    rtol: float
    output: list         # HeadCertificate per head of o, heads in (b, h) order
    dq: list = None      # per query head (with do and dq)
    dk: list = None      # per key/value head (with do and dk)
    dv: list = None

    def __bool__(self):
        return self.verdict == "certified"

    def __str__(self):
        lines = ["%s (%s candidate, atol %g, rtol %g)" % (self.verdict, self.dtype, self.atol, self.rtol)]
        for name in ("output", "dq", "dk", "dv"):
            for hc in getattr(self, name) or []:
                lines.append("  %s head %s: max|cand - true| in [%.6g, %.6g] (%.3g ulps) at %s: %s"
                             % (name, hc.head, hc.lower, hc.upper, hc.ulps[1], hc.index, hc.verdict))
        return "\n".join(lines)


def _index(shape, bi, hi, row, col):
    """(bi, hi, row, col) as an index into an array of the given (rank 2, 3 or 4) shape"""
    return ((bi, hi, row, col)[4 - len(shape):]) if row >= 0 else None


def _head_certs(results, idxs, shape):
    out = []
    for (bi, hi), r in zip(idxs, results):
        out.append(HeadCertificate(
            head=(bi, hi), lower=r.lower, upper=r.upper,
            index=_index(shape, bi, hi, r.worst_row, r.worst_col), ulps=(r.ulps_lower, r.ulps_upper),
            verdict=VERDICTS[r.verdict] if 0 <= r.verdict < 3 else "unknown",
            witness=_index(shape, bi, hi, r.witness_row, r.witness_col),
            rows=r.rows, rows_fallback=r.rows_fallback, time_s=r.time_s, rows_open=r.rows_open))
    return out


def _overall(lists):
    verdicts = [hc.verdict for lst in lists if lst for hc in lst]
    if "refuted" in verdicts:
        return "refuted"
    return "unknown" if "unknown" in verdicts else "certified"


def certify(o, q, k, v, *, atol=0.0, rtol=0.0, pos=None, w=None, causal=False, alibi=0.0, scale="inv-d",
            rope_base=10000.0, do=None, dq=None, dk=None, dv=None, bf16=False, max_fallback_s=-1.0,
            prec=0):
    """Certified error of a candidate attention output o (and gradients) against the true attention.

    o has q's shape and dtype-of-choice; q, k, v and the options as attention(): pos 'rope' (the
    default), 'rope-neox' or 'identity', or instead w, a general W of shape (2n-1, d, d) indexed by
    l+n-1 and shared by every head, its values exact (docs/certify.md L13-L16); a numeric scale is
    that exact double. With do (upstream gradient, q's shape), dq (q's shape), dk and dv (k's
    shape) are certified too (any n, with pos or w; dw is not).
    The verdict of each element is |cand - true| <= atol + rtol |true|. Rows the double pass
    cannot decide go to Arb at prec bits (0: the library's default) within max_fallback_s CPU
    seconds (< 0: the default); past it their verdict is unknown. Returns a Certificate; raises
    ValueError or TypeError for bad input, PolyropeError when the library refuses.
    """
    lib = _lib()
    if not hasattr(lib, "pr_certify_forward_heads"):
        raise PolyropeError(1, "certify: the library loaded has no certification engine: load "
                               "libpolyrope-exact (exact/pr_certify), e.g. POLYROPE_LIB=.../libpolyrope-exact.so")
    oa = _heads("o", o, bf16, candidate=True)
    qa, ka, va = (_heads(nm, x, bf16) for nm, x in (("q", q), ("k", k), ("v", v)))
    _group(qa, ka, va)
    if oa.shape != qa.shape:
        raise ValueError("o: shape %s; expected q's %s" % (oa.shape, qa.shape))
    if w is not None and pos is not None:
        raise ValueError("pos %r and w: w is a general W in place of pos; give one" % (pos,))
    _options("identity" if w is not None else pos or "rope", causal, alibi, rope_base, _CERT_POS)
    for nm, t in (("atol", atol), ("rtol", rtol)):
        if not (isinstance(t, (int, float)) and math.isfinite(t) and t >= 0):
            raise ValueError("%s %r: give a finite number >= 0" % (nm, t))
    grads = {"dq": dq, "dk": dk, "dv": dv}
    if (do is None) != all(g is None for g in grads.values()):
        raise ValueError("gradients: give do together with at least one of dq, dk, dv")
    b, h, n, d = qa.x.shape
    hk = ka.x.shape[1]
    wa = None if w is None else _general_w(w, n, d)
    prob = _Problem(pos=_CERT_POS[pos or "rope"] if wa is None else _CERT_POS["identity"], rope_base=float(rope_base),
                    causal=int(bool(causal)), alibi=float(alibi))
    if isinstance(scale, str):
        _sigma(scale, d)
        prob.scale, prob.sigma = (0 if scale == "inv-d" else 1), 0.0
    else:
        prob.scale, prob.sigma = 2, _sigma(scale, d)
    opts = _Opts(atol=float(atol), rtol=float(rtol), dtype=_DTYPES.index(oa.dtype),
                 max_fallback_s=float(max_fallback_s), prec=int(prec))
    res = (_Result * (b * h))()
    if wa is None:
        st = lib.pr_certify_forward_heads(res, _ptr(oa.x), _ptr(qa.x), _ptr(ka.x), _ptr(va.x), b, h, hk, n, d,
                                          ctypes.byref(prob), ctypes.byref(opts))
    else:
        st = lib.pr_certify_forward_heads_w(res, _ptr(oa.x), _ptr(qa.x), _ptr(ka.x), _ptr(va.x), _ptr(wa), b, h, hk,
                                            n, d, ctypes.byref(prob), ctypes.byref(opts))
    if st:
        _fail(st, "certify")
    qidx = [(bi, hi) for bi in range(b) for hi in range(h)]
    cert = {"output": _head_certs(res, qidx, oa.shape)}
    if do is not None:
        doa = _heads("do", do, bf16)
        if doa.shape != qa.shape:
            raise ValueError("do: shape %s; expected q's %s" % (doa.shape, qa.shape))
        cand, dtypes = {}, []
        for nm, g in grads.items():
            if g is not None:
                ga = _heads(nm, g, bf16, candidate=True)
                want = qa.shape if nm == "dq" else ka.shape
                if ga.shape != want:
                    raise ValueError("%s: shape %s; expected %s" % (nm, ga.shape, want))
                cand[nm] = ga
                dtypes.append(ga.dtype)
        if len(set(dtypes)) > 1:
            raise ValueError("dq, dk, dv: one dtype for all, got %s" % ", ".join(dtypes))
        gopts = _Opts(atol=opts.atol, rtol=opts.rtol, dtype=_DTYPES.index(dtypes[0]),
                      max_fallback_s=opts.max_fallback_s, prec=opts.prec)
        gres = (_Result * (3 * b * h))()
        x = {nm: (cand[nm].x if nm in cand else None) for nm in grads}
        ptrs = [_ptr(x["dq"]), _ptr(x["dk"]), _ptr(x["dv"]), _ptr(qa.x), _ptr(ka.x), _ptr(va.x), _ptr(doa.x)]
        if wa is None:
            st = lib.pr_certify_backward_heads(gres, *ptrs, b, h, hk, n, d, ctypes.byref(prob), ctypes.byref(gopts))
        else:
            st = lib.pr_certify_backward_heads_w(gres, *ptrs, _ptr(wa), b, h, hk, n, d, ctypes.byref(prob),
                                                 ctypes.byref(gopts))
        if st:
            _fail(st, "certify (gradients)")
        group = h // hk
        for t, nm in enumerate(("dq", "dk", "dv")):
            if nm not in cand:
                continue
            if nm == "dq":
                idx = qidx
            else:  # kv head j's result sits at its group's first query head
                idx = [(bi, j) for bi in range(b) for j in range(hk)]
            rs = [gres[3 * (bi * h + (hi if nm == "dq" else hi * group)) + t] for bi, hi in idx]
            cert[nm] = _head_certs(rs, idx, cand[nm].shape)
    lists = [cert.get(nm) for nm in ("output", "dq", "dk", "dv")]
    return Certificate(verdict=_overall(lists), dtype=oa.dtype, atol=float(atol), rtol=float(rtol),
                       output=cert["output"], dq=cert.get("dq"), dk=cert.get("dk"), dv=cert.get("dv"))
