/* polyrope attn: .npy inputs and --out (cmd_attn.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "cmd_attn.h"

static const char *CMD = "attn";

int pr_cmd_attn_load(double **x, const char *path, const char *opt, int ndim, const long *want)
{
    int nd;
    long shape[PR_NPY_MAXDIM];
    int st = pr_npy_read(x, &nd, shape, path);
    if (st)
        return pr_cli_fail(CMD, "--%s %s: %s", opt, path, st == PR_EIO ? strerror(errno) : pr_strerror(st));
    int same = nd == ndim;
    for (int i = 0; same && i < nd; i++)
        same = shape[i] == want[i];
    if (!same) {
        char got[160] = "(", wants[160] = "(";
        for (int i = 0; i < nd; i++)
            snprintf(got + strlen(got), sizeof got - strlen(got), "%ld%s", shape[i], i + 1 < nd ? ", " : "");
        for (int i = 0; i < ndim; i++)
            snprintf(wants + strlen(wants), sizeof wants - strlen(wants), "%ld%s", want[i], i + 1 < ndim ? ", " : "");
        free(*x);
        *x = 0;
        return pr_cli_fail(CMD, "--%s %s: shape %s), expected %s) to match the other inputs", opt, path, got, wants);
    }
    size_t len = 1;
    for (int i = 0; i < nd; i++)
        len *= (size_t)shape[i];
    if (pr_vec_check_finite(*x, len)) {
        free(*x);
        *x = 0;
        return pr_cli_fail(CMD, "--%s %s: contains NaN or Inf; every entry must be finite", opt, path);
    }
    return 0;
}

int pr_cmd_attn_peek(pr_npy_info_t *info, const char *path, const char *opt)
{
    int st = pr_npy_peek(info, path, 0);
    if (st)
        return pr_cli_fail(CMD, "--%s %s: %s", opt, path, st == PR_EIO ? strerror(errno) : pr_strerror(st));
    return 0;
}

void pr_cmd_attn_out_discard(pr_cmd_attn_out_t *os)
{
    for (int i = 0; i < os->count; i++)
        if (os->tmp[i][0])
            unlink(os->tmp[i]);
    if (os->made_dir)
        rmdir(os->dir);
    os->count = 0;
    os->made_dir = 0;
}

int pr_cmd_attn_out_prepare(pr_cmd_attn_out_t *os, const char *dir, const char *const *names, int count)
{
    memset(os, 0, sizeof *os);
    os->dir = dir;
    struct stat sb;
    if (!*dir)
        return pr_cli_fail(CMD, "--out: an empty directory name; give a directory, e.g. --out run1");
    if (mkdir(dir, 0777) == 0)
        os->made_dir = 1;
    else if (errno != EEXIST)
        return pr_cli_fail(CMD, "--out %s: cannot create the directory: %s", dir, strerror(errno));
    if (stat(dir, &sb) || !S_ISDIR(sb.st_mode)) {
        pr_cmd_attn_out_discard(os);
        return pr_cli_fail(CMD, "--out %s: exists and is not a directory; give a directory", dir);
    }
    mode_t mask = umask(0);
    umask(mask);
    for (int i = 0; i < count; i++) {
        os->name[i] = names[i];
        os->count = i + 1;
        if ((size_t)snprintf(os->path[i], sizeof os->path[i], "%s/%s", dir, names[i]) >= sizeof os->path[i] ||
            (size_t)snprintf(os->tmp[i], sizeof os->tmp[i], "%s/.%s.XXXXXX", dir, names[i]) >= sizeof os->tmp[i]) {
            os->tmp[i][0] = 0;
            pr_cmd_attn_out_discard(os);
            return pr_cli_fail(CMD, "--out %s: the path is too long", dir);
        }
        if (!stat(os->path[i], &sb) && (S_ISDIR(sb.st_mode) || access(os->path[i], W_OK))) {
            os->tmp[i][0] = 0;
            pr_cmd_attn_out_discard(os);
            return pr_cli_fail(CMD, "--out %s: %s %s; remove it or choose another --out", dir, os->path[i],
                               S_ISDIR(sb.st_mode) ? "is a directory" : "is not writable");
        }
        int fd = mkstemp(os->tmp[i]);
        if (fd < 0) {
            int e = errno;
            os->tmp[i][0] = 0;
            pr_cmd_attn_out_discard(os);
            return pr_cli_fail(CMD, "--out %s: cannot write there: %s", dir, strerror(e));
        }
        fchmod(fd, 0666 & ~mask);   /* mkstemp makes 0600; the outputs get the usual mode */
        close(fd);
    }
    return 0;
}

int pr_cmd_attn_out_write(pr_cmd_attn_out_t *os, const char *name, const double *x, int ndim, const long *shape)
{
    for (int i = 0; i < os->count; i++)
        if (!strcmp(os->name[i], name)) {
            if (pr_npy_write(os->tmp[i], x, ndim, shape))
                return pr_cli_fail(CMD, "--out: cannot write %s: %s", os->path[i], strerror(errno));
            return 0;
        }
    return pr_cli_fail_status(CMD, PR_EINVAL, name);
}

int pr_cmd_attn_out_commit(pr_cmd_attn_out_t *os)
{
    for (int i = 0; i < os->count; i++) {
        if (rename(os->tmp[i], os->path[i]))
            return pr_cli_fail(CMD, "--out: cannot rename %s to %s: %s", os->tmp[i], os->path[i], strerror(errno));
        os->tmp[i][0] = 0;
    }
    os->made_dir = 0;
    return 0;
}

/* "(2, 4, 16, 8)" */
static const char *shape_str(char *buf, size_t len, int nd, const long *shape)
{
    size_t l = (size_t)snprintf(buf, len, "(");
    for (int i = 0; i < nd && l < len; i++)
        l += (size_t)snprintf(buf + l, len - l, "%ld%s", shape[i], i + 1 < nd ? ", " : ")");
    return buf;
}

/* the outputs' shapes (O, dQ as Q; dK, dV as K) from lay's rank, b, h, h_kv, n and d */
static void layout_shapes(pr_cmd_attn_layout_t *lay)
{
    for (int t = 0; t < 2; t++) {
        long full[4] = {lay->b, t ? lay->h_kv : lay->h, lay->n, lay->d}, *sh = t ? lay->kshape : lay->qshape;
        for (int i = 0; i < lay->ndim; i++)
            sh[i] = full[4 - lay->ndim + i];
    }
}

int pr_cmd_attn_layout_generated(pr_cmd_attn_layout_t *lay, long n, long d, long heads, long kv_heads)
{
    long h = heads ? heads : 1, hk = kv_heads ? kv_heads : h, group;
    pr_npy_heads_t qh = {1, h, n, d}, kh = {1, hk, n, d};
    if (kv_heads && !heads)
        return pr_cli_fail(CMD, "--kv-heads %ld needs --heads: give --heads H, a multiple of it", kv_heads);
    if (pr_npy_heads_group(&group, &qh, &kh))
        return pr_cli_fail(CMD, "--kv-heads %ld does not divide --heads %ld: grouped-query attention needs H a "
                           "multiple of K", hk, h);
    *lay = (pr_cmd_attn_layout_t){heads ? 3 : 2, 1, h, hk, n, d, {0}, {0}};
    layout_shapes(lay);
    return 0;
}

int pr_cmd_attn_layout(pr_cmd_attn_layout_t *lay, const char *const files[4], int backward)
{
    static const char *opt[4] = {"q", "k", "v", "do"};
    pr_npy_info_t info[4];
    pr_npy_heads_t hs[4];
    char s1[96], s2[96];
    int given = -1;
    memset(lay, 0, sizeof *lay);
    for (int t = 0; t < 4; t++) {
        if (!files[t])
            continue;
        int rc = pr_cmd_attn_peek(&info[t], files[t], opt[t]);
        if (rc)
            return rc;
        if (pr_npy_heads(&hs[t], &info[t]))
            return pr_cli_fail(CMD, "--%s %s: shape %s; attention inputs are (n, d), (h, n, d) or (b, h, n, d) with "
                               "every dimension at least 1", opt[t], files[t],
                               shape_str(s1, sizeof s1, info[t].ndim, info[t].shape));
        given = given < 0 ? t : given;
    }
    if (given < 0)
        return pr_cmd_attn_layout_generated(lay, 0, 0, 0, 0);
    /* the first file given fixes n, d, b and the rank; the heads: Q's (or dO's), K's (or V's) */
    const pr_npy_heads_t *f = &hs[given];
    long hq = files[0] ? hs[0].h : files[3] ? hs[3].h : 1, hk = files[1] ? hs[1].h : files[2] ? hs[2].h : 1, group;
    for (int t = given + 1; t < 4; t++) {
        if (!files[t])
            continue;
        /* b and n by pr_npy_heads_group against the first file's with this file's heads (rank and d
         * are the caller's to compare) */
        pr_npy_heads_t first = {f->b, hs[t].h, f->n, f->d};
        if (info[t].ndim != info[given].ndim || hs[t].d != f->d || pr_npy_heads_group(&group, &first, &hs[t])) {
            /* what would match: the first file's rank, b, n, d with this file's heads */
            long want[4] = {f->b, hs[t].h, f->n, f->d}, *w = want + 4 - info[given].ndim;
            return pr_cli_fail(CMD, "--%s %s: shape %s, expected %s to match --%s %s (b, n and d agree; K, V may have "
                               "fewer heads than Q)", opt[t], files[t],
                               shape_str(s1, sizeof s1, info[t].ndim, info[t].shape),
                               shape_str(s2, sizeof s2, info[given].ndim, w), opt[given], files[given]);
        }
    }
    if (files[1] && files[2] && hs[1].h != hs[2].h)
        return pr_cli_fail(CMD, "--v %s: %ld heads, --k %s %ld: K and V must have the same shape", files[2],
                           hs[2].h, files[1], hs[1].h);
    if (files[0] && files[3] && hs[3].h != hq)
        return pr_cli_fail(CMD, "--do %s: %ld heads, --q %s %ld: dO has Q's shape", files[3], hs[3].h, files[0], hq);
    /* generated inputs beside files are one head */
    if (f->b * (hq > hk ? hq : hk) > 1) {
        for (int t = 0; t < 3 + backward; t++)
            if (!files[t])
                return pr_cli_fail(CMD, "--%s %s holds %ld heads: give --q, --k, --v%s as files too (generated "
                                   "inputs beside files are one head)", opt[given], files[given], f->b *
                                   (given == 1 || given == 2 ? hk : hq), backward ? " and --do" : "");
    }
    pr_npy_heads_t qh = {f->b, hq, f->n, f->d}, kh = {f->b, hk, f->n, f->d};
    if (pr_npy_heads_group(&group, &qh, &kh))
        return pr_cli_fail(CMD, "%ld key/value heads do not divide %ld query heads: grouped-query attention needs h a "
                           "multiple of h_kv (give K, V with a divisor of Q's heads)", hk, hq);
    *lay = (pr_cmd_attn_layout_t){info[given].ndim, f->b, hq, hk, f->n, f->d, {0}, {0}};
    layout_shapes(lay);
    return 0;
}
