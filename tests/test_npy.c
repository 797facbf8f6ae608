/* .npy reader and writer: round trips of every rank up to PR_NPY_MAXDIM (bit-exact),
 * hand-made files of versions 1.0, 2.0 and 3.0 with free key order and spacing, and every
 * kind of bad file giving its own status. Against numpy (tests/npy_numpy.py, $PR_NPY_NUMPY, run
 * by /usr/bin/python3): every float16 and bfloat16 pattern and float32 samples widen exactly as
 * numpy widens them, every attention shape in every dtype reads back, and what numpy writes in
 * other dtypes and orders is refused with its hint. */
#include <math.h>
#include <string.h>
#include <errno.h>
#include <sys/stat.h>
#include <sys/wait.h>
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

/* the bytes of tmp (malloc'ed) */
static unsigned char *slurp(size_t *len)
{
    FILE *f = fopen(tmp, "rb");
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    rewind(f);
    unsigned char *b = malloc(*len + 1);
    *len = fread(b, 1, *len, f);
    fclose(f);
    return b;
}

/* pr_npy_read on tmp, checked against pr_npy_read_mem on its bytes (same status, shape, data) */
static int read_status(void)
{
    double *x, *y;
    int nd, nd2;
    long shape[PR_NPY_MAXDIM], shape2[PR_NPY_MAXDIM];
    int st = pr_npy_read(&x, &nd, shape, tmp);
    PR_CHECK(st != PR_OK || x != 0, "data set on success");
    PR_CHECK(st == PR_OK || x == 0, "data left NULL on failure (status %d)", st);
    size_t len;
    unsigned char *b = slurp(&len);
    int st2 = pr_npy_read_mem(&y, &nd2, shape2, b, len);
    int same = st2 == st && nd2 == nd;
    for (int i = 0; same && st == PR_OK && i < nd; i++)
        same = shape[i] == shape2[i];
    size_t count = 1;
    for (int i = 0; st == PR_OK && i < nd; i++)
        count *= (size_t)shape[i];
    PR_CHECK(same && (st || !memcmp(x, y, 8 * count)), "read_mem disagrees with read: status %d vs %d", st2, st);
    free(b);
    free(x);
    free(y);
    return st;
}

/* a pipe giving len bytes of buf, as a path (/dev/fd/N); the writer is a child process */
static const char *pipe_path(const void *buf, size_t len, pid_t *pid)
{
    static char path[64];
    int fd[2];
    if (pipe(fd))
        return 0;
    *pid = fork();
    if (*pid == 0) {
        close(fd[0]);
        _exit(write(fd[1], buf, len) == (ssize_t)len ? 0 : 1);
    }
    close(fd[1]);
    snprintf(path, sizeof path, "/dev/fd/%d", fd[0]);
    return path;
}

static int read_pipe(const void *buf, size_t len, double **x, int *nd, long *shape)
{
    pid_t pid = -1;
    const char *path = pipe_path(buf, len, &pid);
    PR_CHECK(path && pid >= 0, "cannot make a pipe or fork");
    if (!path || pid < 0)
        return -1;
    int fd = atoi(path + 8), st = pr_npy_read(x, nd, shape, path);
    close(fd);
    waitpid(pid, 0, 0);
    return st;
}

/* bitwise equal, or both NaN (numpy's float32 to float64 quiets a signalling NaN; ours keeps it) */
static int same_double(double a, double b)
{
    return (isnan(a) && isnan(b)) || !memcmp(&a, &b, sizeof a);
}

/* DIR/NAME.npy read with flags against numpy's widening DIR/NAME_f64.npy: the count of mismatches
 * (printed), -1 if either file could not be read */
static long against_numpy(const char *dir, const char *name, int flags, pr_npy_dtype_t want_dtype)
{
    char path[512], wpath[512];
    snprintf(path, sizeof path, "%s/%s.npy", dir, name);
    snprintf(wpath, sizeof wpath, "%s/%s_f64.npy", dir, name);
    double *x, *w;
    pr_npy_info_t info, winfo;
    int st = pr_npy_load(&x, &info, path, flags), st2 = pr_npy_load(&w, &winfo, wpath, 0);
    PR_CHECK(st == PR_OK && st2 == PR_OK, "%s: status %d (%s), its float64 twin %d", name, st, pr_npy_hint(st, &info),
             st2);
    if (st || st2) {
        free(x);
        free(w);
        return -1;
    }
    PR_CHECK(info.dtype == want_dtype, "%s: dtype %s, want %s", name, pr_npy_dtype_name(info.dtype),
             pr_npy_dtype_name(want_dtype));
    int same = info.ndim == winfo.ndim;
    size_t count = 1;
    for (int i = 0; same && i < info.ndim; i++) {
        same = info.shape[i] == winfo.shape[i];
        count *= (size_t)info.shape[i];
    }
    PR_CHECK(same, "%s: shape differs from numpy's", name);
    long bad = 0;
    for (size_t i = 0; same && i < count; i++)
        if (!same_double(x[i], w[i]) && bad++ < 5)
            fprintf(stderr, "  %s[%zu]: %a, numpy %a\n", name, i, x[i], w[i]);
    PR_CHECK(bad == 0, "%s: %ld of %zu values differ from numpy's widening", name, bad, count);
    free(x);
    free(w);
    return bad;
}

static void numpy_files(uint64_t seed)
{
    const char *script = getenv("PR_NPY_NUMPY");
    PR_CHECK(script != 0, "set PR_NPY_NUMPY to tests/npy_numpy.py (meson test does)");
    if (!script)
        return;
    char dir[] = "test_npy_numpy.XXXXXX", cmd[1024];
    PR_CHECK(mkdtemp(dir) != 0, "mkdtemp");
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s' %s %llu", script, dir, (unsigned long long)seed);
    int rc = system(cmd);
    PR_CHECK(rc == 0, "%s: exit %d", cmd, rc);
    if (rc)
        return;
    /* every pattern of the 16-bit formats; float32 samples */
    against_numpy(dir, "f16_all", 0, PR_NPY_F16);
    against_numpy(dir, "bf16_u2", PR_NPY_ASK_BF16, PR_NPY_BF16);
    against_numpy(dir, "bf16_i2", PR_NPY_ASK_BF16, PR_NPY_BF16);
    against_numpy(dir, "f32_samples", 0, PR_NPY_F32);
    /* attention shapes: (n, d), (h, n, d), (b, h, n, d) in each dtype */
    static const struct {
        const char *tag;
        int flags;
        pr_npy_dtype_t dtype;
    } dts[] = {{"f8", 0, PR_NPY_F64}, {"f4", 0, PR_NPY_F32}, {"f2", 0, PR_NPY_F16},
               {"u2", PR_NPY_ASK_BF16, PR_NPY_BF16}, {"i2", PR_NPY_ASK_BF16, PR_NPY_BF16}};
    for (size_t t = 0; t < sizeof dts / sizeof dts[0]; t++)
        for (int rank = 2; rank <= 4; rank++) {
            char name[64], path[512];
            snprintf(name, sizeof name, "shape_%s_%d", dts[t].tag, rank);
            against_numpy(dir, name, dts[t].flags, dts[t].dtype);
            snprintf(path, sizeof path, "%s/%s.npy", dir, name);
            double *x;
            pr_npy_info_t info;
            pr_npy_heads_t hs;
            int st = pr_npy_load(&x, &info, path, dts[t].flags);
            int hst = st ? st : pr_npy_heads(&hs, &info);
            PR_CHECK(hst == PR_OK && hs.b == (rank == 4 ? 2 : 1) && hs.h == (rank >= 3 ? 3 : 1) && hs.n == 5 &&
                         hs.d == 4, "%s: heads status %d", name, hst);
            free(x);
        }
    /* refused, with what to do */
    static const struct {
        const char *name;
        int flags, status;
        const char *hint;
    } refused[] = {
        {"big_endian_f8", 0, PR_ENPY_DTYPE, "big-endian"},
        {"big_endian_f4", PR_NPY_ASK_BF16, PR_ENPY_DTYPE, "big-endian"},
        {"fortran", 0, PR_ENPY_ORDER, "ascontiguousarray"},
        {"int32", PR_NPY_ASK_BF16, PR_ENPY_DTYPE, "integers"},
        {"int64", 0, PR_ENPY_DTYPE, "integers"},
        {"uint8", 0, PR_ENPY_DTYPE, "integers"},
        {"bool", 0, PR_ENPY_DTYPE, "booleans"},
        {"complex", 0, PR_ENPY_DTYPE, "complex"},
        {"longdouble", 0, PR_ENPY_DTYPE, "float size"},
        {"bf16_u2", 0, PR_ENPY_DTYPE, "bfloat16 bits only when asked"},
        {"bf16_i2", 0, PR_ENPY_DTYPE, "bfloat16 bits only when asked"},
    };
    for (size_t t = 0; t < sizeof refused / sizeof refused[0]; t++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s.npy", dir, refused[t].name);
        double *x;
        pr_npy_info_t info;
        int st = pr_npy_load(&x, &info, path, refused[t].flags);
        const char *hint = pr_npy_hint(st, &info);
        PR_CHECK(st == refused[t].status && !x && info.ndim == 0 && strstr(hint, refused[t].hint) &&
                     !strchr(hint, '\n'),
                 "%s: status %d, hint \"%s\"", refused[t].name, st, hint);
    }
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    PR_CHECK(system(cmd) == 0, "%s", cmd);
}

/* pr_npy_ulp: the spacing at powers of two, inside binades, at zero and in the subnormals */
static void ulps(void)
{
    static const struct {
        pr_npy_dtype_t t;
        double x, want;
    } c[] = {
        {PR_NPY_F64, 1.0, 0x1p-52},     {PR_NPY_F64, -1.5, 0x1p-52},   {PR_NPY_F64, 0x1.fffffffffffffp0, 0x1p-52},
        {PR_NPY_F64, 0.0, 0x1p-1074},   {PR_NPY_F64, 0x1p-1030, 0x1p-1074},
        {PR_NPY_F32, 1.0, 0x1p-23},     {PR_NPY_F32, 3.0, 0x1p-22},    {PR_NPY_F32, 0x1p-130, 0x1p-149},
        {PR_NPY_F32, 0.0, 0x1p-149},    {PR_NPY_F16, 1.0, 0x1p-10},    {PR_NPY_F16, 65504.0, 32.0},
        {PR_NPY_F16, 0x1p-20, 0x1p-24}, {PR_NPY_F16, 0x1p-14, 0x1p-24}, {PR_NPY_BF16, 1.0, 0x1p-7},
        {PR_NPY_BF16, -0.0, 0x1p-133},  {PR_NPY_BF16, 0x1p100, 0x1p93},
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        double u = pr_npy_ulp(c[i].t, c[i].x);
        PR_CHECK(u == c[i].want, "ulp of %a in %s: %a, want %a", c[i].x, pr_npy_dtype_name(c[i].t), u, c[i].want);
    }
    PR_CHECK(isnan(pr_npy_ulp(PR_NPY_F32, INFINITY)) && isnan(pr_npy_ulp(PR_NPY_F16, NAN)), "ulp of non-finite");
}

/* pr_npy_heads_group: grouped-query heads */
static void groups(void)
{
    pr_npy_heads_t q = {2, 8, 16, 4}, kv = {2, 2, 16, 4};
    long g;
    PR_CHECK(pr_npy_heads_group(&g, &q, &kv) == PR_OK && g == 4, "8 over 2 heads: group %ld", g);
    kv.h = 3;
    PR_CHECK(pr_npy_heads_group(&g, &q, &kv) == PR_ESHAPE && g == 0, "8 over 3 heads");
    kv.h = 8;
    kv.n = 15;
    PR_CHECK(pr_npy_heads_group(&g, &q, &kv) == PR_ESHAPE, "n differs");
    kv.n = 16;
    kv.b = 1;
    PR_CHECK(pr_npy_heads_group(&g, &q, &kv) == PR_ESHAPE, "batch differs");
    pr_npy_info_t info = {.ndim = 1, .shape = {4}};
    pr_npy_heads_t hs;
    PR_CHECK(pr_npy_heads(&hs, &info) == PR_ENPY_SHAPE, "rank 1");
    info.ndim = 5;
    PR_CHECK(pr_npy_heads(&hs, &info) == PR_ENPY_SHAPE, "rank 5");
    info = (pr_npy_info_t){.ndim = 3, .shape = {2, 0, 4}};
    PR_CHECK(pr_npy_heads(&hs, &info) == PR_ENPY_SHAPE, "a zero dimension");
}

int main(void)
{
    pr_rng_t rng;
    uint64_t seed = pr_test_seed("test_npy", 20261123);
    pr_rng_init(rng, seed);
    numpy_files(seed);
    ulps();
    groups();

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
        {1, 0, "{'descr': '<c8', 'fortran_order': False, 'shape': (6,), }", 6, -1, PR_ENPY_DTYPE},
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
        {1, 0, "{'descr': '<f8', 'fortran_order': False, 'shape': (99999999999, 99999999999, 99999999999), }", 0, -1, PR_ESIZE},
        /* a zero dimension does not excuse an overflowing other one (numpy refuses it too) */
        {1, 0, "{'descr': '<f8', 'fortran_order': False, 'shape': (0, 4611686018427387904, 8), }", 0, -1, PR_ESIZE},
        {1, 0, "{'descr': '<f8', 'fortran_order': False, 'shape': (0, 9223372036854775807), }", 0, -1, PR_ESIZE},
        {1, 0, "{'descr': '<f8', 'fortran_order': False, 'shape': (0, 576460752303423488), }", 0, -1, PR_OK},
        /* a key with a NUL or a byte outside printable ASCII */
        {1, 0, "{'descr\x01': '<f8', 'fortran_order': False, 'shape': (6,), }", 6, -1, PR_ENPY_HEADER},
        {1, 0, "{'descr': '<f8\xc3\xa9', 'fortran_order': False, 'shape': (6,), }", 6, -1, PR_ENPY_HEADER},
        {1, 0, "{'descr': '<f8', 'fortran_order': False, 'shape': {'a': (6,)}, }", 6, -1, PR_ENPY_HEADER},
        {1, 0, "{'descr': {'descr': '<f8'}, 'fortran_order': False, 'shape': (6,), }", 6, -1, PR_ENPY_HEADER},
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
    /* 'descr' followed by a NUL inside the quotes: once read as 'descr' */
    {
        char f[128] = "\x93NUMPY\x01\x00\x76\x00{'descr\0x': '<f8', 'fortran_order': False, 'shape': (0,), }";
        size_t dl = 10 + strlen(f + 10) + 1 + strlen(f + 10 + strlen(f + 10) + 1);
        memset(f + dl, ' ', 128 - dl - 1);
        f[127] = '\n';
        write_bytes(f, 128);
        int st = read_status();
        PR_CHECK(st == PR_ENPY_HEADER, "NUL inside a key: got %d (%s)", st, pr_strerror(st));
    }
    write_bytes("\x93NUMPZ\x01\x00", 8);
    PR_CHECK(read_status() == PR_ENPY_MAGIC, "bad magic");
    write_bytes("hello world, not numpy", 22);
    PR_CHECK(read_status() == PR_ENPY_MAGIC, "text file");
    write_bytes("", 0);
    PR_CHECK(read_status() == PR_ENPY_TRUNCATED, "empty file");
    write_bytes("\x93NUM", 4);
    PR_CHECK(read_status() == PR_ENPY_TRUNCATED, "cut inside the magic");
    /* shorter than the prefix and not the magic (found by fuzzing: the file reader said truncated) */
    write_bytes("\x93N\x18\x93", 4);
    PR_CHECK(read_status() == PR_ENPY_MAGIC, "4 bytes, not the magic");
    /* a header without its closing newline */
    write_bytes("\x93NUMPY\x01\x00\x04\x00{}  ", 14);
    PR_CHECK(read_status() == PR_ENPY_HEADER, "no newline");
    double *y;
    int nd;
    long shape[PR_NPY_MAXDIM];

    /* every proper prefix of a good file is truncated, one byte more is junk, from memory and
     * from a pipe (the pipe's size is unknown: read as far as the header says) */
    write_raw(2, 0, good[1], v, 6, -1);
    size_t len;
    unsigned char *b = slurp(&len);
    for (size_t cut = 0; cut < len; cut++) {
        int st = pr_npy_read_mem(&y, &nd, shape, b, cut);
        PR_CHECK(st == PR_ENPY_TRUNCATED && !y && !nd, "prefix of %zu of %zu bytes: got %d", cut, len, st);
    }
    b = realloc(b, len + 1);
    b[len] = 0;
    PR_CHECK(pr_npy_read_mem(&y, &nd, shape, b, len + 1) == PR_ENPY_SHAPE, "one byte of junk");
    int st = read_pipe(b, len, &y, &nd, shape);
    PR_CHECK(st == PR_OK && nd == 2 && shape[0] == 2 && shape[1] == 3 && !memcmp(y, v, sizeof v),
             "from a pipe: status %d (%s)", st, pr_strerror(st));
    free(y);
    st = read_pipe(b, len + 1, &y, &nd, shape);
    PR_CHECK(st == PR_ENPY_SHAPE, "from a pipe with junk: status %d", st);
    st = read_pipe(b, len - 1, &y, &nd, shape);
    PR_CHECK(st == PR_ENPY_TRUNCATED, "from a cut pipe: status %d", st);
    free(b);
    /* a header promising 2^60 bytes over a pipe of a few: truncated, without allocating them */
    write_raw(1, 0, "{'descr': '<f8', 'fortran_order': False, 'shape': (131072, 1048576, 1024), }", v, 6, -1);
    b = slurp(&len);
    st = read_pipe(b, len, &y, &nd, shape);
    PR_CHECK(st == PR_ENPY_TRUNCATED, "a pipe shorter than its header: status %d", st);
    free(b);
    unlink(tmp);

    /* a directory is named as one (was: "shorter than its header") */
    errno = 0;
    st = pr_npy_read(&y, &nd, shape, ".");
    PR_CHECK(st == PR_EIO && errno == EISDIR && !y, "a directory: status %d, errno %d (%s)", st, errno,
             strerror(errno));
    PR_CHECK(pr_npy_read(&y, &nd, shape, "no/such/dir/file.npy") == PR_EIO, "missing file");
    PR_CHECK(pr_npy_write("no/such/dir/file.npy", v, 1, (long[]){6}) == PR_EIO, "unwritable path");
    return pr_test_finish("test_npy");
}
