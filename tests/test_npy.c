/* .npy reader and writer: round trips of every rank up to PR_NPY_MAXDIM (bit-exact),
 * hand-made files of versions 1.0, 2.0 and 3.0 with free key order and spacing, and every
 * kind of bad file giving its own status. */
#include <math.h>
#include <string.h>
#include <unistd.h>
#include "polyrope.h"
#include "pr_test.h"

static const char *tmp = "test_npy.tmp.npy";

/* writes magic, version, header length, the dictionary padded to 64 with a newline, data */
static void write_raw(int major, int minor, const char *dict, const double *data, size_t count,
                      long trunc)
{
    size_t lenbytes = major == 1 ? 2 : 4, pre = 8 + lenbytes, dl = strlen(dict);
    size_t total = (pre + dl + 1 + 63) / 64 * 64, hlen = total - pre;
    unsigned char *buf = calloc(total + 8 * count, 1);
    memcpy(buf, "\x93NUMPY", 6);
    buf[6] = (unsigned char)major;
    buf[7] = (unsigned char)minor;
    for (size_t i = 0; i < lenbytes; i++)
        buf[8 + i] = (unsigned char)(hlen >> (8 * i));
    memcpy(buf + pre, dict, dl);
    memset(buf + pre + dl, ' ', hlen - dl - 1);
    buf[total - 1] = '\n';
    memcpy(buf + total, data, 8 * count);
    size_t len = total + 8 * count;
    if (trunc >= 0)
        len = (size_t)trunc;
    FILE *f = fopen(tmp, "wb");
    fwrite(buf, 1, len, f);
    fclose(f);
    free(buf);
}

static void write_bytes(const char *bytes, size_t len)
{
    FILE *f = fopen(tmp, "wb");
    fwrite(bytes, 1, len, f);
    fclose(f);
}

static int read_status(void)
{
    double *x;
    int nd;
    long shape[PR_NPY_MAXDIM];
    int st = pr_npy_read(&x, &nd, shape, tmp);
    PR_CHECK(st != PR_OK || x != 0, "data set on success");
    PR_CHECK(st == PR_OK || x == 0, "data left NULL on failure (status %d)", st);
    free(x);
    return st;
}

int main(void)
{
    pr_rng_t rng;
    pr_rng_init(rng, pr_test_seed("test_npy", 20261123));

    /* round trips, including 0-d, empty and special values */
    for (int trial = 0; trial < 40; trial++) {
        int nd = (int)pr_rng_below(rng, PR_NPY_MAXDIM + 1);
        long shape[PR_NPY_MAXDIM], got[PR_NPY_MAXDIM];
        size_t count = 1;
        for (int i = 0; i < nd; i++) {
            shape[i] = (long)pr_rng_below(rng, nd > 4 ? 3 : 7);
            count *= (size_t)shape[i];
        }
        double *x = malloc(sizeof(double) * (count ? count : 1)), *y;
        for (size_t i = 0; i < count; i++)
            x[i] = pr_rng_normal(rng) * pow(10.0, (double)pr_rng_below(rng, 600) - 300.0);
        if (count > 2) {
            x[0] = -0.0;
            x[1] = NAN;
            x[2] = 0x1p-1074;
        }
        PR_CHECK_OK(pr_npy_write(tmp, x, nd, shape));
        int gnd;
        PR_CHECK_OK(pr_npy_read(&y, &gnd, got, tmp));
        int same = gnd == nd && y;
        for (int i = 0; same && i < nd; i++)
            same = got[i] == shape[i];
        PR_CHECK(same, "round trip shape: trial %d ndim %d got %d", trial, nd, gnd);
        PR_CHECK(same && !memcmp(x, y, 8 * count), "round trip data: trial %d", trial);
        /* the header is a multiple of 64 and the file exactly header + data */
        FILE *f = fopen(tmp, "rb");
        fseek(f, 0, SEEK_END);
        long size = ftell(f);
        fclose(f);
        PR_CHECK((size - 8 * (long)count) % 64 == 0, "header alignment: size %ld", size);
        free(y);
        PR_CHECK(pr_npy_read_shape(&y, tmp, nd, shape) == PR_OK, "read_shape, right shape");
        free(y);
        if (nd > 0) {
            shape[0]++;
            PR_CHECK(pr_npy_read_shape(&y, tmp, nd, shape) == PR_ENPY_SHAPE && y == 0, "read_shape, wrong shape");
        }
        PR_CHECK(pr_npy_read_shape(&y, tmp, nd + 1, shape) == PR_ENPY_SHAPE, "read_shape, wrong rank");
        free(x);
    }

    /* versions 2.0 and 3.0, odd spacing and key order, double quotes */
    double v[6] = {1, 2, 3, 4, 5, 6};
    const char *good[] = {
        "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }",
        "{\"shape\":(2,3),\"fortran_order\":False,\"descr\":\"<f8\"}",
        "{ 'fortran_order' : False , 'descr' : '<f8' , 'shape' : ( 2 , 3 , ) }",
    };
    for (int major = 1; major <= 3; major++)
        for (int g = 0; g < 3; g++) {
            write_raw(major, 0, good[g], v, 6, -1);
            double *y;
            long want[2] = {2, 3};
            int st = pr_npy_read_shape(&y, tmp, 2, want);
            PR_CHECK(st == PR_OK && !memcmp(y, v, sizeof v), "good file: version %d.0, header %s, status %d",
                     major, good[g], st);
            free(y);
        }

    /* bad files, one status each */
    struct {
        int major, minor;
        const char *dict;
        size_t count;
        long trunc;
        int want;
    } bad[] = {
        {1, 0, "{'descr': '>f8', 'fortran_order': False, 'shape': (6,), }", 6, -1, PR_ENPY_DTYPE},
        {1, 0, "{'descr': '<f4', 'fortran_order': False, 'shape': (6,), }", 3, -1, PR_ENPY_DTYPE},
        {1, 0, "{'descr': '<i8', 'fortran_order': False, 'shape': (6,), }", 6, -1, PR_ENPY_DTYPE},
        {1, 0, "{'descr': '<f8', 'fortran_order': True, 'shape': (2, 3), }", 6, -1, PR_ENPY_ORDER},
        {1, 0, "{'descr': '<f8', 'fortran_order': False, 'shape': (7,), }", 6, -1, PR_ENPY_TRUNCATED},
        {1, 0, "{'descr': '<f8', 'fortran_order': False, 'shape': (5,), }", 6, -1, PR_ENPY_SHAPE},
        {1, 0, "{'descr': '<f8', 'fortran_order': False, 'shape': (6,), }", 6, 100, PR_ENPY_TRUNCATED},
        {1, 0, "{'descr': '<f8', 'fortran_order': False, 'shape': (6,), }", 6, 30, PR_ENPY_TRUNCATED},
        {1, 0, "{'descr': '<f8', 'fortran_order': False, 'shape': (6,), }", 6, 9, PR_ENPY_TRUNCATED},
        {1, 0, "{'descr': '<f8', 'fortran_order': False, 'shape': (6), }", 6, -1, PR_ENPY_HEADER},
        {1, 0, "{'descr': '<f8', 'fortran_order': False}", 6, -1, PR_ENPY_HEADER},
        {1, 0, "{'descr': '<f8', 'fortran_order': 0, 'shape': (6,), }", 6, -1, PR_ENPY_HEADER},
        {1, 0, "{'descr': '<f8', 'fortran_order': False, 'shape': (6,), 'x': 1}", 6, -1, PR_ENPY_HEADER},
        {1, 0, "{'descr': '<f8', 'descr': '<f8', 'fortran_order': False, 'shape': (6,)}", 6, -1, PR_ENPY_HEADER},
        {1, 0, "{'descr': '<f8', 'fortran_order': False, 'shape': (-6,), }", 6, -1, PR_ENPY_HEADER},
        {1, 0, "{'descr': '<f8', 'fortran_order': False, 'shape': (6,), } junk", 6, -1, PR_ENPY_HEADER},
        {1, 0, "{'descr': '<f8', 'fortran_order': False, 'shape': (99999999999, 99999999999, 99999999999), }", 0, -1, PR_ENPY_HEADER},
        {1, 0, "{'descr': '<f8', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1), }", 1, -1, PR_ENPY_SHAPE},
        {1, 0, "{'descr': '<f8, 'fortran_order': False, 'shape': (6,), }", 6, -1, PR_ENPY_HEADER},
        {4, 0, "{'descr': '<f8', 'fortran_order': False, 'shape': (6,), }", 6, -1, PR_ENPY_VERSION},
        {1, 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (6,), }", 6, -1, PR_ENPY_VERSION},
        {0, 0, "{'descr': '<f8', 'fortran_order': False, 'shape': (6,), }", 6, -1, PR_ENPY_VERSION},
    };
    for (size_t t = 0; t < sizeof bad / sizeof bad[0]; t++) {
        write_raw(bad[t].major, bad[t].minor, bad[t].dict, v, bad[t].count, bad[t].trunc);
        int st = read_status();
        PR_CHECK(st == bad[t].want, "bad file %zu (%s, truncated to %ld): got %d (%s), want %d", t, bad[t].dict,
                 bad[t].trunc, st, pr_strerror(st), bad[t].want);
    }
    write_bytes("\x93NUMPZ\x01\x00", 8);
    PR_CHECK(read_status() == PR_ENPY_MAGIC, "bad magic");
    write_bytes("hello world, not numpy", 22);
    PR_CHECK(read_status() == PR_ENPY_MAGIC, "text file");
    write_bytes("", 0);
    PR_CHECK(read_status() == PR_ENPY_TRUNCATED, "empty file");
    write_bytes("\x93NUM", 4);
    PR_CHECK(read_status() == PR_ENPY_TRUNCATED, "cut inside the magic");
    /* a header without its closing newline */
    write_bytes("\x93NUMPY\x01\x00\x04\x00{}  ", 14);
    PR_CHECK(read_status() == PR_ENPY_HEADER, "no newline");
    unlink(tmp);
    double *y;
    int nd;
    long shape[PR_NPY_MAXDIM];
    PR_CHECK(pr_npy_read(&y, &nd, shape, "no/such/dir/file.npy") == PR_EIO, "missing file");
    PR_CHECK(pr_npy_write("no/such/dir/file.npy", v, 1, (long[]){6}) == PR_EIO, "unwritable path");
    return pr_test_finish("test_npy");
}
