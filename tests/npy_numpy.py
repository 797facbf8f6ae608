#!/usr/bin/python3
"""Files as numpy writes them, for tests/test_npy.c: each NAME.npy of a supported dtype has
NAME_f64.npy beside it, numpy's own widening to float64 (bfloat16: float32's top half, widened).
usage: npy_numpy.py DIR SEED"""
import sys
import numpy as np

out, seed = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(seed)
np.seterr(invalid="ignore")  # widening a signalling NaN raises the flag; the value stays a NaN


def save(name, x, wide=None):
    np.save("%s/%s.npy" % (out, name), x)
    if wide is not None:
        np.save("%s/%s_f64.npy" % (out, name), np.ascontiguousarray(wide, dtype="<f8"))


def bf16_wide(bits):
    return (bits.astype(np.uint32) << 16).view(np.float32).astype(np.float64)


# every float16 and every bfloat16 pattern (subnormals, infinities and NaNs included)
every = np.arange(65536, dtype=np.uint16)
save("f16_all", every.view("<f2"), every.view("<f2").astype(np.float64))
save("bf16_u2", every.astype("<u2"), bf16_wide(every))
save("bf16_i2", every.view("<i2"), bf16_wide(every))
# float32: random bit patterns and the edges
special = np.array([0, 0x80000000, 1, 0x807fffff, 0x00800000, 0x7f7fffff, 0x7f800000, 0xff800000,
                    0x7fc00000, 0x3f800000], dtype=np.uint32)
f32 = np.concatenate([special, rng.integers(0, 2**32, 100000, dtype=np.uint64).astype(np.uint32)]).view("<f4")
save("f32_samples", f32, f32.astype(np.float64))
# the attention shapes in every dtype
for rank, shape in ((2, (5, 4)), (3, (3, 5, 4)), (4, (2, 3, 5, 4))):
    x = rng.standard_normal(shape)
    for dt in ("<f8", "<f4", "<f2"):
        y = x.astype(dt)
        save("shape_%s_%d" % (dt[1:], rank), y, y.astype(np.float64))
    bits = (x.astype(np.float32).view(np.uint32) >> 16).astype("<u2")
    save("shape_u2_%d" % rank, bits, bf16_wide(bits))
    save("shape_i2_%d" % rank, bits.view("<i2"), bf16_wide(bits))
# refused: one of each kind
x = rng.standard_normal((4, 6))
save("big_endian_f8", x.astype(">f8"))
save("big_endian_f4", x.astype(">f4"))
save("fortran", np.asfortranarray(x))
save("int32", (x * 10).astype("<i4"))
save("int64", (x * 10).astype("<i8"))
save("uint8", (x * 10).astype("|u1"))
save("bool", x > 0)
save("complex", x.astype("<c16"))
save("longdouble", x.astype(np.longdouble))
