#include <ctype.h>
#include <limits.h>
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
        if (len + 1 >= cap)
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
                return PR_ENPY_HEADER;
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

static int parse_header(const char *h, size_t len, int *ndim, long *shape)
{
    cursor_t c = {h, h + len};
    int have_descr = 0, have_order = 0, have_shape = 0, dtype_ok = 0, fortran = 0;
    if (!eat(&c, '{'))
        return PR_ENPY_HEADER;
    while (!eat(&c, '}')) {
        char key[32], val[32];
        int st = parse_str(&c, key, sizeof key);
        if (st || !eat(&c, ':'))
            return PR_ENPY_HEADER;
        if (!strcmp(key, "descr") && !have_descr) {
            if (parse_str(&c, val, sizeof val))
                return PR_ENPY_HEADER;
            dtype_ok = !strcmp(val, "<f8");
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
            if ((st = parse_shape(&c, ndim, shape)))
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
    if (!dtype_ok)
        return PR_ENPY_DTYPE;
    if (fortran)
        return PR_ENPY_ORDER;
    return PR_OK;
}

static int read_open(FILE *f, double **data, int *ndim, long *shape)
{
    unsigned char pre[12];
    size_t got = fread(pre, 1, 8, f);
    if (got < 6 || memcmp(pre, npy_magic, 6))
        return got < 6 && !memcmp(pre, npy_magic, got) ? PR_ENPY_TRUNCATED : PR_ENPY_MAGIC;
    if (got < 8)
        return PR_ENPY_TRUNCATED;
    int major = pre[6], minor = pre[7];
    if (minor != 0 || major < 1 || major > 3)
        return PR_ENPY_VERSION;
    size_t lenbytes = major == 1 ? 2 : 4, hlen = 0;
    if (fread(pre + 8, 1, lenbytes, f) != lenbytes)
        return PR_ENPY_TRUNCATED;
    for (size_t i = lenbytes; i-- > 0;)
        hlen = hlen << 8 | pre[8 + i];
    struct stat sb;
    if (fstat(fileno(f), &sb))
        return PR_EIO;
    size_t pos = 8 + lenbytes;
    if ((unsigned long long)sb.st_size < pos + hlen)
        return PR_ENPY_TRUNCATED;
    char *h = malloc(hlen ? hlen : 1);
    if (!h)
        return PR_ENOMEM;
    if (fread(h, 1, hlen, f) != hlen) {
        free(h);
        return PR_ENPY_TRUNCATED;
    }
    /* the dictionary may only be followed by the space and newline padding */
    size_t dl = hlen;
    while (dl > 0 && (h[dl - 1] == ' ' || h[dl - 1] == '\n'))
        dl--;
    int st = hlen == 0 || h[hlen - 1] != '\n' ? PR_ENPY_HEADER : parse_header(h, dl, ndim, shape);
    free(h);
    if (st)
        return st;
    size_t count = 1, bytes;
    for (int i = 0; i < *ndim; i++)
        if (pr_size_mul(&count, count, (size_t)shape[i]))
            return PR_ENPY_HEADER;
    if (pr_size_mul(&bytes, count, sizeof(double)))
        return PR_ENPY_HEADER;
    unsigned long long have = (unsigned long long)sb.st_size - (pos + hlen);
    if (have < bytes)
        return PR_ENPY_TRUNCATED;
    if (have > bytes)
        return PR_ENPY_SHAPE; /* more data than the shape holds: the header is wrong */
    double *x = malloc(bytes ? bytes : 1);
    if (!x)
        return PR_ENOMEM;
    if (fread(x, 1, bytes, f) != bytes) {
        free(x);
        return PR_ENPY_TRUNCATED;
    }
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

int pr_npy_read(double **data, int *ndim, long shape[PR_NPY_MAXDIM], const char *path)
{
    *data = 0;
    *ndim = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return PR_EIO;
    int st = read_open(f, data, ndim, shape);
    fclose(f);
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
