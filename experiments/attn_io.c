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

int pr_cmd_attn_peek(int *nd, long *shape, const char *path, const char *opt)
{
    double *x;
    int st = pr_npy_read(&x, nd, shape, path);
    free(x);
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
