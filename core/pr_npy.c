#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "pr_status.h"
#include "pr_vec.h"
#include "pr_npy.h"

static const char npy_magic[6] = {'\x93', 'N', 'U', 'M', 'P', 'Y'};

/* The header dictionary: {'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }
 * Keys in any order, either quote, free whitespace; every other key or value is refused. */
typedef struct {
    const char *p, *end;
} cursor_t;

static void skip_ws(cursor_t *c)
{
    while (c->p < c->end && isspace((unsigned char)*c->p))
        c->p++;
}

static int eat(cursor_t *c, char ch)
{
    skip_ws(c);
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return 1;
    }
    return 0;
}

/* a quoted string into buf (at most cap-1 characters) */
static int parse_str(cursor_t *c, char *buf, size_t cap)
{
    skip_ws(c);
    if (c->p >= c->end || (*c->p != '\'' && *c->p != '"'))
        return PR_ENPY_HEADER;
    char q = *c->p++;
    size_t len = 0;
    while (c->p < c->end && *c->p != q) {
        /* printable ASCII only: a NUL would end the key early ('descr\0x' read as 'descr') */
        if (len + 1 >= cap || *c->p < 0x20 || *c->p > 0x7e)
            return PR_ENPY_HEADER;
        buf[len++] = *c->p++;
    }
    if (c->p >= c->end)
        return PR_ENPY_HEADER;
    c->p++;
    buf[len] = 0;
    return PR_OK;
}

static int parse_word(cursor_t *c, const char *w)
{
    skip_ws(c);
    size_t len = strlen(w);
    if ((size_t)(c->end - c->p) >= len && !memcmp(c->p, w, len)) {
        c->p += len;
        return 1;
    }
    return 0;
}

/* (a, b, ...) with an optional trailing comma; () is a scalar */
static int parse_shape(cursor_t *c, int *ndim, long *shape)
{
    if (!eat(c, '('))
        return PR_ENPY_HEADER;
    *ndim = 0;
    if (eat(c, ')'))
        return PR_OK;
    for (;;) {
        skip_ws(c);
        if (c->p >= c->end || !isdigit((unsigned char)*c->p))
            return PR_ENPY_HEADER;
        long v = 0;
        while (c->p < c->end && isdigit((unsigned char)*c->p)) {
            if (v > (LONG_MAX - 9) / 10)
                return PR_ESIZE;
            v = 10 * v + (*c->p++ - '0');
        }
        if (*ndim >= PR_NPY_MAXDIM)
            return PR_ENPY_SHAPE;
        shape[(*ndim)++] = v;
        int comma = eat(c, ',');
        if (eat(c, ')'))
            return *ndim == 1 && !comma ? PR_ENPY_HEADER : PR_OK; /* (3) is not a tuple */
        if (!comma)
            return PR_ENPY_HEADER;
    }
}

/* the dtype of a descr, or -1 when unsupported; numpy writes '<' for little-endian */
static int descr_dtype(const char *descr, int flags)
{
    if (!strcmp(descr, "<f8"))
        return PR_NPY_F64;
    if (!strcmp(descr, "<f4"))
        return PR_NPY_F32;
    if (!strcmp(descr, "<f2"))
        return PR_NPY_F16;
    if ((flags & PR_NPY_ASK_BF16) && (!strcmp(descr, "<u2") || !strcmp(descr, "<i2")))
        return PR_NPY_BF16;
    return -1;
}

static int parse_header(const char *h, size_t len, int flags, pr_npy_info_t *info)
{
    cursor_t c = {h, h + len};
    int have_descr = 0, have_order = 0, have_shape = 0, dtype = -1, fortran = 0;
    if (!eat(&c, '{'))
        return PR_ENPY_HEADER;
    while (!eat(&c, '}')) {
        char key[32], val[sizeof info->descr];
        int st = parse_str(&c, key, sizeof key);
        if (st || !eat(&c, ':'))
            return PR_ENPY_HEADER;
        if (!strcmp(key, "descr") && !have_descr) {
            if (parse_str(&c, val, sizeof val))
                return PR_ENPY_HEADER;
            dtype = descr_dtype(val, flags);
            memcpy(info->descr, val, sizeof val);
            have_descr = 1;
        } else if (!strcmp(key, "fortran_order") && !have_order) {
            if (parse_word(&c, "False"))
                fortran = 0;
            else if (parse_word(&c, "True"))
                fortran = 1;
            else
                return PR_ENPY_HEADER;
            have_order = 1;
        } else if (!strcmp(key, "shape") && !have_shape) {
            if ((st = parse_shape(&c, &info->ndim, info->shape)))
                return st;
            have_shape = 1;
        } else {
            return PR_ENPY_HEADER;
        }
        if (!eat(&c, ',')) {
            if (!eat(&c, '}'))
                return PR_ENPY_HEADER;
            break;
        }
    }
    skip_ws(&c);
    if (c.p != c.end || !have_descr || !have_order || !have_shape)
        return PR_ENPY_HEADER;
    if (dtype < 0)
        return PR_ENPY_DTYPE;
    if (fortran)
        return PR_ENPY_ORDER;
    info->dtype = (pr_npy_dtype_t)dtype;
    return PR_OK;
}

static size_t dtype_size(pr_npy_dtype_t t)
{
    return t == PR_NPY_F64 ? 8 : t == PR_NPY_F32 ? 4 : 2;
}

/* The whole parser, over the first n bytes of a file: PR_OK when b[0..n) is exactly a valid
 * .npy (data at b + *off, *count elements of info->dtype); PR_ENPY_TRUNCATED with *need > n
 * when the file must be longer (*need is then the least length that could be valid); any
 * other status is final. The file and memory readers both use it, so the fuzzed parser is the
 * one that reads files. */
static int parse_npy(size_t *need, size_t *off, size_t *count, pr_npy_info_t *info, int flags,
                     const unsigned char *b, size_t n)
{
    *need = 0;
    size_t m = n < 6 ? n : 6;
    if (memcmp(b, npy_magic, m))
        return PR_ENPY_MAGIC;
    if (n < 8) {
        *need = 8;
        return PR_ENPY_TRUNCATED;
    }
    int major = b[6], minor = b[7];
    if (minor != 0 || major < 1 || major > 3)
        return PR_ENPY_VERSION;
    size_t lenbytes = major == 1 ? 2 : 4, hlen = 0, pos = 8 + lenbytes;
    if (n < pos) {
        *need = pos;
        return PR_ENPY_TRUNCATED;
    }
    for (size_t i = lenbytes; i-- > 0;)
        hlen = hlen << 8 | b[8 + i];
    if (n - pos < hlen) {
        *need = pos + hlen;
        return PR_ENPY_TRUNCATED;
    }
    const char *h = (const char *)b + pos;
    /* the dictionary may only be followed by the space and newline padding */
    size_t dl = hlen;
    while (dl > 0 && (h[dl - 1] == ' ' || h[dl - 1] == '\n'))
        dl--;
    if (hlen == 0 || h[hlen - 1] != '\n')
        return PR_ENPY_HEADER;
    int st = parse_header(h, dl, flags, info);
    if (st)
        return st;
    /* every dimension counts, even beside a zero: numpy refuses such shapes too; the doubles
     * the data widen to must fit as well as the file's bytes */
    size_t nonzero = 1, bytes, size = dtype_size(info->dtype);
    int zero = 0;
    for (int i = 0; i < info->ndim; i++) {
        if (!info->shape[i])
            zero = 1;
        else if (pr_size_mul(&nonzero, nonzero, (size_t)info->shape[i]))
            return PR_ESIZE;
    }
    if (pr_size_mul(&bytes, nonzero, sizeof(double)) || bytes > PTRDIFF_MAX - pos - hlen)
        return PR_ESIZE;
    *count = zero ? 0 : nonzero;
    bytes = *count * size;
    *off = pos + hlen;
    if (n - *off < bytes) {
        *need = *off + bytes;
        return PR_ENPY_TRUNCATED;
    }
    if (n - *off > bytes)
        return PR_ENPY_SHAPE; /* more data than the shape holds: the header is wrong */
    return PR_OK;
}

/* A float of ebits exponent and mbits fraction bits (IEEE layout, in the low bits of u) as the
 * double of the same value: exact, since every such float is a double. A NaN keeps its sign
 * and payload (shifted to the top of the double's fraction, as numpy widens float16). */
static double widen(uint32_t u, int ebits, int mbits)
{
    uint32_t frac = u & ((1u << mbits) - 1), e = (u >> mbits) & ((1u << ebits) - 1);
    int bias = (1 << (ebits - 1)) - 1;
    uint64_t bits;
    if (e == (1u << ebits) - 1) {
        bits = 0x7ff0000000000000ull | (uint64_t)frac << (52 - mbits);
    } else {
        double v = e ? ldexp((double)(frac | 1u << mbits), (int)e - bias - mbits)
                     : ldexp((double)frac, 1 - bias - mbits);
        memcpy(&bits, &v, 8);
    }
    bits |= (uint64_t)(u >> (ebits + mbits) & 1) << 63;
    double x;
    memcpy(&x, &bits, 8);
    return x;
}

/* the data of a parsed file (at buf + off, little-endian), as doubles; buf is used up */
static int take_data(double **data, unsigned char *buf, size_t off, size_t count, pr_npy_dtype_t dtype)
{
    if (dtype == PR_NPY_F64) {
        /* in place: the file's bytes are already the doubles' */
        memmove(buf, buf + off, count * 8);
        double *x = realloc(buf, count ? count * 8 : 1);
        if (!x)
            x = (double *)buf; /* a failed shrink keeps the larger block */
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        for (size_t i = 0; i < count; i++) {
            uint64_t u;
            memcpy(&u, x + i, 8);
            u = __builtin_bswap64(u);
            memcpy(x + i, &u, 8);
        }
#endif
        *data = x;
        return PR_OK;
    }
    double *x = malloc(count ? count * sizeof(double) : 1); /* count * 8 checked by parse_npy */
    if (!x) {
        free(buf);
        return PR_ENOMEM;
    }
    const unsigned char *p = buf + off;
    for (size_t i = 0; i < count; i++) {
        if (dtype == PR_NPY_F32) {
            uint32_t u = (uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 | (uint32_t)p[4 * i + 2] << 16 |
                         (uint32_t)p[4 * i + 3] << 24;
            x[i] = widen(u, 8, 23);
        } else {
            uint32_t u = (uint32_t)p[2 * i] | (uint32_t)p[2 * i + 1] << 8;
            x[i] = dtype == PR_NPY_F16 ? widen(u, 5, 10) : widen(u, 8, 7); /* bfloat16: float32's top half */
        }
    }
    free(buf);
    *data = x;
    return PR_OK;
}

static void info_clear(pr_npy_info_t *info)
{
    memset(info, 0, sizeof *info);
}

int pr_npy_load_mem(double **data, pr_npy_info_t *info, const void *buf, size_t len, int flags)
{
    *data = 0;
    info_clear(info);
    size_t need, off, count;
    int st = parse_npy(&need, &off, &count, info, flags, len ? buf : "", len);
    if (st) {
        info->ndim = 0;
        return st;
    }
    unsigned char *copy = malloc(len ? len : 1);
    if (!copy)
        return PR_ENOMEM;
    memcpy(copy, buf, len);
    st = take_data(data, copy, off, count, info->dtype);
    if (st)
        info->ndim = 0;
    return st;
}

/* Reads f as far as the parser asks: the prefix, the header, then exactly the data it declares,
 * growing the buffer only as bytes arrive (a header cannot make us allocate what is not there),
 * and one byte more to tell trailing junk. Works for pipes as for files. */
static int read_stream(double **data, pr_npy_info_t *info, int flags, FILE *f, long long size)
{
    unsigned char *buf = 0;
    size_t n = 0, cap = 0, need, off = 0, count = 0;
    int st, eof = 0;
    for (;;) {
        st = parse_npy(&need, &off, &count, info, flags, buf ? buf : (const unsigned char *)"", n);
        if (st == PR_OK && !eof)
            need = n + 1; /* is there more? */
        else if (st != PR_ENPY_TRUNCATED || eof)
            break;
        /* a regular file's size already says how much of the rest is there */
        int short_file = size >= 0 && (unsigned long long)need > (unsigned long long)size;
        size_t goal = short_file ? (size_t)size : need;
        if (goal <= n) {
            eof = 1;
            continue;
        }
        if (goal > cap) {
            /* a pipe grows by at most the bytes it has given (at least 1 MiB) per step */
            size_t step = cap > (1 << 20) ? cap : (1 << 20), want = goal;
            if (size < 0 && goal - cap > step)
                want = cap + step;
            unsigned char *nb = realloc(buf, want);
            if (!nb) {
                st = PR_ENOMEM;
                break;
            }
            buf = nb;
            cap = want;
        }
        size_t want = (goal < cap ? goal : cap) - n, got = fread(buf + n, 1, want, f);
        n += got;
        if (got < want) {
            if (ferror(f)) {
                st = PR_EIO;
                break;
            }
            eof = 1;
        }
        eof |= short_file && n == goal;
    }
    if (st == PR_OK)
        return take_data(data, buf, off, count, info->dtype);
    free(buf);
    return st;
}

/* Reads f as far as the parser asks for the header (parse_npy sets off once the header is
 * parsed), never into the data; a header longer than the file is not allocated, and a pipe's
 * grows by 1 MiB at most per step (as read_stream). */
static int read_header(pr_npy_info_t *info, int flags, FILE *f, long long size)
{
    unsigned char *buf = 0;
    size_t n = 0, need, off = 0, count;
    int st;
    while ((st = parse_npy(&need, &off, &count, info, flags, buf ? buf : (const unsigned char *)"", n)) ==
               PR_ENPY_TRUNCATED && !off) {
        if (size >= 0 && (unsigned long long)need > (unsigned long long)size)
            break;
        size_t goal = size < 0 && need - n > (1 << 20) ? n + (1 << 20) : need;
        unsigned char *nb = realloc(buf, goal);
        if (!nb) {
            st = PR_ENOMEM;
            break;
        }
        buf = nb;
        size_t got = fread(buf + n, 1, goal - n, f);
        n += got;
        if (n < goal) {
            st = ferror(f) ? PR_EIO : PR_ENPY_TRUNCATED;
            break;
        }
    }
    free(buf);
    return st == PR_ENPY_TRUNCATED && off ? PR_OK : st;
}

/* f opened from path for reading, or a status (a directory: PR_EIO with errno EISDIR); *size the
 * file's bytes, -1 for a pipe */
static int open_file(FILE **f, long long *size, const char *path)
{
    *f = fopen(path, "rb");
    if (!*f)
        return PR_EIO;
    struct stat sb;
    int st = PR_OK;
    if (fstat(fileno(*f), &sb)) {
        st = PR_EIO;
    } else if (S_ISDIR(sb.st_mode)) {
        errno = EISDIR; /* callers print strerror: "Is a directory" */
        st = PR_EIO;
    }
    *size = !st && S_ISREG(sb.st_mode) ? (long long)sb.st_size : -1;
    return st;
}

/* fclose keeping errno for the caller's message */
static void close_file(FILE *f)
{
    int err = errno;
    fclose(f);
    errno = err;
}

int pr_npy_peek(pr_npy_info_t *info, const char *path, int flags)
{
    info_clear(info);
    FILE *f;
    long long size;
    int st = open_file(&f, &size, path);
    if (f && !st)
        st = read_header(info, flags, f, size);
    if (f)
        close_file(f);
    if (st)
        info->ndim = 0;
    return st;
}

int pr_npy_load(double **data, pr_npy_info_t *info, const char *path, int flags)
{
    *data = 0;
    info_clear(info);
    FILE *f;
    long long size;
    int st = open_file(&f, &size, path);
    if (f && !st)
        st = read_stream(data, info, flags, f, size);
    if (f)
        close_file(f);
    if (st)
        info->ndim = 0;
    return st;
}

const char *pr_npy_hint(int status, const pr_npy_info_t *info)
{
    const char *d = info->descr;
    if (status == PR_ENPY_ORDER)
        return "Fortran order; save np.ascontiguousarray(arr) instead";
    if (status != PR_ENPY_DTYPE || !d[0])
        return pr_strerror(status);
    char kind = d[1];
    if (d[0] == '>')
        return "big-endian data; save arr.astype(arr.dtype.newbyteorder('<'))";
    if (kind == 'c')
        return "complex numbers; attention inputs are real";
    if ((kind == 'u' || kind == 'i') && !strcmp(d + 2, "2"))
        return "16-bit integers; read as bfloat16 bits only when asked (polyrope --bf16, Python bf16=True), "
               "else save floats (arr.astype('<f4'))";
    if (kind == 'u' || kind == 'i' || kind == 'b')
        return "integers or booleans; save floats (arr.astype('<f4'))";
    if (kind == 'f')
        return "a float size other than 8, 4 or 2 bytes; save arr.astype('<f8')";
    return "an unsupported dtype; save float64, float32 or float16 ('<f8', '<f4', '<f2')";
}

const char *pr_npy_dtype_name(pr_npy_dtype_t dtype)
{
    switch (dtype) {
    case PR_NPY_F64: return "float64";
    case PR_NPY_F32: return "float32";
    case PR_NPY_F16: return "float16";
    case PR_NPY_BF16: return "bfloat16";
    }
    return "unknown";
}

double pr_npy_ulp(pr_npy_dtype_t dtype, double x)
{
    static const int prec[] = {53, 24, 11, 8}, emin[] = {-1022, -126, -14, -126};
    if (!isfinite(x) || (unsigned)dtype > PR_NPY_BF16)
        return NAN;
    int e = emin[dtype];
    if (x != 0) {
        int k;
        frexp(x, &k); /* 2^(k-1) <= |x| < 2^k */
        if (k - 1 > e)
            e = k - 1;
    }
    return ldexp(1.0, e - prec[dtype] + 1);
}

int pr_npy_read_mem(double **data, int *ndim, long shape[PR_NPY_MAXDIM], const void *buf, size_t len)
{
    pr_npy_info_t info;
    int st = pr_npy_load_mem(data, &info, buf, len, 0);
    *ndim = info.ndim;
    memcpy(shape, info.shape, sizeof info.shape);
    return st;
}

int pr_npy_read(double **data, int *ndim, long shape[PR_NPY_MAXDIM], const char *path)
{
    pr_npy_info_t info;
    int st = pr_npy_load(data, &info, path, 0);
    *ndim = info.ndim;
    memcpy(shape, info.shape, sizeof info.shape);
    return st;
}

int pr_npy_read_shape(double **data, const char *path, int ndim, const long *want)
{
    int nd;
    long shape[PR_NPY_MAXDIM];
    int st = pr_npy_read(data, &nd, shape, path);
    if (st)
        return st;
    int same = nd == ndim;
    for (int i = 0; same && i < nd; i++)
        same = shape[i] == want[i];
    if (!same) {
        free(*data);
        *data = 0;
        return PR_ENPY_SHAPE;
    }
    return PR_OK;
}

int pr_npy_heads(pr_npy_heads_t *heads, const pr_npy_info_t *info)
{
    int nd = info->ndim;
    if (nd < 2 || nd > 4)
        return PR_ENPY_SHAPE;
    for (int i = 0; i < nd; i++)
        if (info->shape[i] <= 0)
            return PR_ENPY_SHAPE;
    heads->b = nd == 4 ? info->shape[0] : 1;
    heads->h = nd >= 3 ? info->shape[nd - 3] : 1;
    heads->n = info->shape[nd - 2];
    heads->d = info->shape[nd - 1];
    return PR_OK;
}

int pr_npy_heads_group(long *group, const pr_npy_heads_t *q, const pr_npy_heads_t *kv)
{
    *group = 0;
    if (q->b != kv->b || q->n != kv->n || kv->h <= 0 || q->h % kv->h)
        return PR_ESHAPE;
    *group = q->h / kv->h;
    return PR_OK;
}

int pr_npy_write(const char *path, const double *data, int ndim, const long *shape)
{
    if (ndim < 0 || ndim > PR_NPY_MAXDIM)
        return PR_EINVAL;
    char dict[64 + 24 * PR_NPY_MAXDIM];
    int len = snprintf(dict, sizeof dict, "{'descr': '<f8', 'fortran_order': False, 'shape': (");
    size_t count = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0 || pr_size_mul(&count, count, (size_t)shape[i]))
            return PR_EINVAL;
        len += snprintf(dict + len, sizeof dict - len, "%ld,%s", shape[i], i + 1 < ndim ? " " : "");
    }
    if (ndim > 1)
        len--; /* (3,) keeps its comma; (3, 4) does not */
    len += snprintf(dict + len, sizeof dict - len, "), }");
    /* version 1.0: with at most PR_NPY_MAXDIM dimensions the header always fits its 2-byte
     * length; magic + version + length + dict + padding + newline is a multiple of 64 */
    size_t pre = 10, total = (pre + len + 1 + 63) / 64 * 64, hlen = total - pre;
    unsigned char head[10 + sizeof dict + 64];
    memcpy(head, npy_magic, 6);
    head[6] = 1;
    head[7] = 0;
    head[8] = (unsigned char)hlen;
    head[9] = (unsigned char)(hlen >> 8);
    memcpy(head + pre, dict, len);
    memset(head + pre + len, ' ', hlen - len - 1);
    head[total - 1] = '\n';
    FILE *f = fopen(path, "wb");
    if (!f)
        return PR_EIO;
    int ok = fwrite(head, 1, total, f) == total;
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    for (size_t i = 0; ok && i < count; i++) {
        uint64_t u;
        memcpy(&u, data + i, 8);
        u = __builtin_bswap64(u);
        ok = fwrite(&u, 8, 1, f) == 1;
    }
#else
    ok = ok && fwrite(data, sizeof(double), count, f) == count;
#endif
    ok = (fclose(f) == 0) && ok;
    return ok ? PR_OK : PR_EIO;
}
