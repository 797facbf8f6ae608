/* .npy reader: the memory reader and the file reader (the same bytes through a path) agree on
 * status, shape, dtype and data, with and without PR_NPY_ASK_BF16; a success accounts for every
 * byte, and each double is the file's element widened exactly (checked against an independent
 * widening by float casts and scaling); a success writes back (float64) and reads back bit for
 * bit, and has an attention layout when its rank is 2 to 4. Without PR_NPY_ASK_BF16 the status
 * differs only for '<u2' and '<i2' (then PR_ENPY_DTYPE). */
#include <math.h>
#include "polyrope.h"
#include "fuzz.h"

/* the element at p of dtype t, widened by other means than pr_npy's (NaN: only its NaN-ness) */
static double ref_widen(const uint8_t *p, pr_npy_dtype_t t)
{
    if (t == PR_NPY_F64) {
        double x;
        memcpy(&x, p, 8);
        return x;
    }
    if (t == PR_NPY_F32 || t == PR_NPY_BF16) {
        uint32_t u = t == PR_NPY_F32 ? (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                                           (uint32_t)p[3] << 24
                                     : ((uint32_t)p[0] | (uint32_t)p[1] << 8) << 16;
        float f;
        memcpy(&f, &u, 4);
        return (double)f;
    }
    unsigned h = p[0] | p[1] << 8, e = h >> 10 & 31, m = h & 1023;
    double v = e == 31 ? (m ? NAN : INFINITY) : e ? (1024 + m) * 0x1p-25 * (double)(1u << e) : m * 0x1p-24;
    return h >> 15 ? -v : v;
}

static int same_value(double a, double b)
{
    return (isnan(a) && isnan(b)) || (!memcmp(&a, &b, 8));
}

static int check(pr_npy_info_t *info_out, const uint8_t *data, size_t size, int flags)
{
    double *x, *y;
    pr_npy_info_t info, info2;
    int st = pr_npy_load_mem(&x, &info, data, size, flags);
    int nd = info.ndim;
    FUZZ_CHECK((st == PR_OK) == (x != 0), "status %d with data %p", st, (void *)x);
    FUZZ_CHECK(st == PR_OK || nd == 0, "status %d with ndim %d", st, nd);
    FUZZ_CHECK(st >= 0 && st < PR_ESTATUS_COUNT && st != PR_EINVAL, "status %d", st);
    const char *hint = pr_npy_hint(st, &info);
    FUZZ_CHECK(hint && !strchr(hint, '\n'), "hint for status %d", st);
    int st2 = pr_npy_load(&y, &info2, fuzz_file(data, size), flags);
    FUZZ_CHECK(st2 == st && info2.ndim == nd, "file reader: status %d ndim %d, memory reader: %d %d", st2,
               info2.ndim, st, nd);
    FUZZ_CHECK(!strcmp(info.descr, info2.descr), "descr %s vs %s", info.descr, info2.descr);
    size_t count = 1;
    for (int i = 0; st == PR_OK && i < nd; i++) {
        FUZZ_CHECK(info.shape[i] >= 0 && info.shape[i] == info2.shape[i], "dimension %d: %ld vs %ld", i,
                   info.shape[i], info2.shape[i]);
        count *= (size_t)info.shape[i];
    }
    if (st == PR_OK) {
        pr_npy_dtype_t t = info.dtype;
        size_t es = t == PR_NPY_F64 ? 8 : t == PR_NPY_F32 ? 4 : 2;
        FUZZ_CHECK(t == info2.dtype, "dtype %d vs %d", t, info2.dtype);
        FUZZ_CHECK(t != PR_NPY_BF16 || flags, "bfloat16 without asking");
        FUZZ_CHECK(nd >= 0 && nd <= PR_NPY_MAXDIM, "ndim %d", nd);
        FUZZ_CHECK(count * es < size && size - count * es >= 10, "%zu elements in %zu bytes", count, size);
        const uint8_t *tail = data + size - es * count;
        for (size_t i = 0; i < count; i++)
            FUZZ_CHECK(same_value(x[i], ref_widen(tail + es * i, t)), "element %zu: %a", i, x[i]);
        FUZZ_CHECK(!memcmp(x, y, 8 * count), "file and memory readers disagree on the data");
        /* an attention layout exactly for ranks 2 to 4 without a zero dimension */
        pr_npy_heads_t hs;
        int hst = pr_npy_heads(&hs, &info);
        FUZZ_CHECK((hst == PR_OK) == (nd >= 2 && nd <= 4 && count > 0), "heads status %d, ndim %d", hst, nd);
        FUZZ_CHECK(hst || (size_t)(hs.b * hs.h * hs.n * hs.d) == count, "heads do not hold the count");
        /* written back (float64, version 1.0, canonical header), it reads back the same */
        if (count <= 4096) {
            char path[64];
            snprintf(path, sizeof path, "/proc/self/fd/%d", memfd_create("pr_fuzz_w", 0));
            FUZZ_CHECK(pr_npy_write(path, x, nd, info.shape) == PR_OK, "write back");
            double *z;
            pr_npy_info_t info3;
            FUZZ_CHECK(pr_npy_load(&z, &info3, path, 0) == PR_OK && info3.ndim == nd, "read back");
            FUZZ_CHECK(info3.dtype == PR_NPY_F64 && !memcmp(info3.shape, info.shape, sizeof(long) * nd) &&
                           !memcmp(z, x, 8 * count),
                       "round trip");
            free(z);
            close(atoi(path + 14));
        }
    }
    free(x);
    free(y);
    *info_out = info;
    return st;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pr_npy_info_t plain, bf16;
    int st = check(&plain, data, size, 0), st_bf16 = check(&bf16, data, size, PR_NPY_ASK_BF16);
    int int16 = !strcmp(bf16.descr, "<u2") || !strcmp(bf16.descr, "<i2");
    FUZZ_CHECK(st == st_bf16 || (int16 && st == PR_ENPY_DTYPE), "status %d, asking bfloat16 %d (descr %s)", st,
               st_bf16, bf16.descr);
    FUZZ_CHECK(!int16 || st != PR_OK, "16-bit integers read without asking");
    return 0;
}
