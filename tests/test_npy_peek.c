/* pr_npy_peek, the header alone (attn checks sizes on it before reading data): the same parser as
 * pr_npy_load, so on every prefix of a file and every corrupted header byte its status is the
 * load's of the header alone (a valid header being PR_OK, whatever follows), and its shape and
 * dtype are the load's; version 2.0 headers past the 1 MiB steps, from a file and from a pipe; a
 * header longer than its file, a directory and a missing file refused. Seed: $PR_SEED. */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#include "polyrope.h"
#include "pr_test.h"

static const char *PATH = "peek_t.npy";

static void put(const unsigned char *b, size_t len)
{
    FILE *f = fopen(PATH, "wb");
    if (!f || (len && fwrite(b, 1, len, f) != len))
        abort();
    fclose(f);
}

static unsigned char *slurp(size_t *len, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        abort();
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    rewind(f);
    unsigned char *b = malloc(*len + 1);
    if (!b || fread(b, 1, *len, f) != *len)
        abort();
    fclose(f);
    return b;
}

/* the peek of b[0..len) as a file against the load of its header b[0..hend) alone: a valid header
 * (the load stops at the data, PR_ENPY_TRUNCATED, or has none, PR_OK) is PR_OK with want's shape
 * when given; any other status is the peek's too */
static void against_load(const unsigned char *b, size_t len, size_t hend, const pr_npy_info_t *want,
                         const char *what)
{
    put(b, len);
    pr_npy_info_t pi, hi;
    double *x;
    int sp = pr_npy_peek(&pi, PATH, 0), sh = pr_npy_load_mem(&x, &hi, b, len < hend ? len : hend, 0);
    free(x);
    int expect = len >= hend && (sh == PR_ENPY_TRUNCATED || sh == PR_OK) ? PR_OK : sh;
    PR_CHECK(sp == expect && (sp ? pi.ndim == 0 : pi.ndim > 0), "%s: peek status %d (%s), the header's load %d (%s)",
             what, sp, pr_strerror(sp), sh, pr_strerror(sh));
    if (!sp && want)
        PR_CHECK(pi.ndim == want->ndim && !memcmp(pi.shape, want->shape, sizeof(long) * want->ndim) &&
                 pi.dtype == want->dtype, "%s: peek's shape or dtype is not the load's", what);
}

/* a version 2.0 float64 file of shape (rows, 3) whose header is padded to about pad bytes */
static unsigned char *v2_file(size_t *len, size_t *hend, long rows, size_t pad)
{
    char dict[96];
    int dl = snprintf(dict, sizeof dict, "{'descr': '<f8', 'fortran_order': False, 'shape': (%ld, 3), }", rows);
    size_t hlen = (pad > (size_t)dl + 1 ? pad : (size_t)dl + 1), total;
    hlen += (64 - (12 + hlen) % 64) % 64;
    *hend = 12 + hlen;
    total = *hend + 8 * 3 * (size_t)rows;
    unsigned char *b = malloc(total);
    if (!b)
        abort();
    memcpy(b, "\x93NUMPY\x02\x00", 8);
    for (int i = 0; i < 4; i++)
        b[8 + i] = (unsigned char)(hlen >> (8 * i));
    memset(b + 12, ' ', hlen);
    memcpy(b + 12, dict, (size_t)dl);
    b[*hend - 1] = '\n';
    for (size_t i = 0; i < 3 * (size_t)rows; i++) {
        double v = 0.5 * (double)i;
        memcpy(b + *hend + 8 * i, &v, 8);
    }
    *len = total;
    return b;
}

int main(void)
{
    pr_rng_t rng;
    pr_rng_init(rng, pr_test_seed("test_npy_peek", 20261128));
    char what[160];
    for (int trial = 0; trial < 12; trial++) {
        int ndim = 1 + (int)pr_rng_below(rng, 4);
        long shape[4];
        size_t count = 1;
        for (int i = 0; i < ndim; i++)
            count *= (size_t)(shape[i] = 1 + (long)pr_rng_below(rng, 5));
        double *x = malloc(sizeof(double) * count);
        pr_rng_fill(x, (long)count, 1.0, rng);
        PR_CHECK_OK(pr_npy_write(PATH, x, ndim, shape));
        free(x);
        size_t len;
        unsigned char *b = slurp(&len, PATH);
        size_t hend = 10 + (size_t)(b[8] | b[9] << 8);
        pr_npy_info_t full;
        double *y;
        PR_CHECK_OK(pr_npy_load_mem(&y, &full, b, len, 0));
        free(y);
        /* every prefix through the header and a little data, and the whole file */
        for (size_t l = 0; l <= len; l = l < hend + 9 || l == len ? l + 1 : len) {
            snprintf(what, sizeof what, "trial %d (rank %d, %zu bytes): prefix %zu", trial, ndim, len, l);
            against_load(b, l, hend, &full, what);
        }
        /* one header byte at a time replaced (past the length bytes, which fix where the header ends) */
        for (int k = 0; k < 24; k++) {
            unsigned char *c = malloc(len);
            memcpy(c, b, len);
            size_t at = pr_rng_below(rng, 8) ? 10 + pr_rng_below(rng, hend - 10) : pr_rng_below(rng, 8);
            static const char alphabet[] = "0123456789,() '\"<>f8fTrueFalse{}:\n\x01\xff";
            c[at] = (unsigned char)alphabet[pr_rng_below(rng, sizeof alphabet - 1)];
            snprintf(what, sizeof what, "trial %d: byte %zu set to 0x%02x", trial, at, c[at]);
            against_load(c, len, hend, NULL, what);
            free(c);
        }
        free(b);
    }
    /* a 2 MiB version 2.0 header: from a file, then from a pipe (read in 1 MiB steps) */
    size_t len, hend;
    unsigned char *b = v2_file(&len, &hend, 5, (size_t)2 << 20);
    pr_npy_info_t want = {2, {5, 3}, PR_NPY_F64, ""};
    against_load(b, len, hend, &want, "a 2 MiB header");
    unlink("peek_fifo");
    PR_CHECK(mkfifo("peek_fifo", 0600) == 0, "mkfifo: %s", strerror(errno));
    signal(SIGPIPE, SIG_IGN);
    pid_t pid = fork();
    if (pid == 0) {
        FILE *f = fopen("peek_fifo", "wb");
        if (f) {
            fwrite(b, 1, len, f);
            fclose(f);
        }
        _exit(0);
    }
    pr_npy_info_t pi;
    int st = pr_npy_peek(&pi, "peek_fifo", 0);
    waitpid(pid, NULL, 0);
    PR_CHECK(st == PR_OK && pi.ndim == 2 && pi.shape[0] == 5 && pi.shape[1] == 3, "a 2 MiB header through a pipe: "
             "status %d (%s)", st, pr_strerror(st));
    unlink("peek_fifo");
    /* a header claiming 1 GiB in a file of 2 MiB: truncated, not allocated */
    for (int i = 0; i < 4; i++)
        b[8 + i] = (unsigned char)((1u << 30) >> (8 * i));
    put(b, len);
    st = pr_npy_peek(&pi, PATH, 0);
    PR_CHECK(st == PR_ENPY_TRUNCATED && pi.ndim == 0, "a 1 GiB header in a 2 MiB file: status %d", st);
    free(b);
    mkdir("peek_dir", 0700);
    errno = 0;
    st = pr_npy_peek(&pi, "peek_dir", 0);
    PR_CHECK(st == PR_EIO && errno == EISDIR, "a directory: status %d, errno %d", st, errno);
    rmdir("peek_dir");
    PR_CHECK(pr_npy_peek(&pi, "peek_no_such_file.npy", 0) == PR_EIO, "a missing file");
    unlink(PATH);
    return pr_test_finish("test_npy_peek");
}
