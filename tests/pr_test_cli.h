/* pr_test_cli: running the built polyrope ($POLYROPE, set by tests/meson.build) from a test and
 * reading back what it printed. */
#ifndef PR_TEST_CLI_H
#define PR_TEST_CLI_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* stdout and stderr of the last pr_test_cli_run */
static char pr_test_cli_out[1 << 16], pr_test_cli_err[1 << 16];

static inline void pr_test_slurp(char *buf, size_t cap, const char *path)
{
    FILE *f = fopen(path, "rb");
    size_t len = f ? fread(buf, 1, cap - 1, f) : 0;
    buf[len] = 0;
    if (f)
        fclose(f);
}

/* A fresh folder under /tmp as the working directory, removed at exit, so that a test's scratch
 * files land nowhere else whichever folder it is run from ($POLYROPE made absolute first).
 * 0, or -1 if the folder cannot be made or entered. */
static char pr_test_cli_dir[64];
static inline void pr_test_cli_rmdir(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "cd / && rm -rf '%s'", pr_test_cli_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", pr_test_cli_dir);
}
static inline int pr_test_cli_tmpdir(const char *test)
{
    const char *bin = getenv("POLYROPE");
    char *abs = bin && strchr(bin, '/') ? realpath(bin, NULL) : NULL;
    if (abs) {
        setenv("POLYROPE", abs, 1);
        free(abs);
    }
    snprintf(pr_test_cli_dir, sizeof pr_test_cli_dir, "/tmp/%.32s_XXXXXX", test);
    if (!mkdtemp(pr_test_cli_dir) || chdir(pr_test_cli_dir))
        return -1;
    return atexit(pr_test_cli_rmdir) ? -1 : 0;
}

/* Runs `$POLYROPE args` (polyrope from PATH when unset) with stdout and stderr in the files
 * TAG.out and TAG.err (tests run side by side in one folder: each its own tag), read back into
 * pr_test_cli_out and pr_test_cli_err. Returns the exit status (-1 if it did not exit). */
static inline int pr_test_cli_run(const char *tag, const char *args)
{
    const char *bin = getenv("POLYROPE");
    char cmd[4096], out[256], err[256];
    snprintf(out, sizeof out, "%s.out", tag);
    snprintf(err, sizeof err, "%s.err", tag);
    snprintf(cmd, sizeof cmd, "'%s' %s >%s 2>%s", bin ? bin : "polyrope", args, out, err);
    int ws = system(cmd);
    pr_test_slurp(pr_test_cli_out, sizeof pr_test_cli_out, out);
    pr_test_slurp(pr_test_cli_err, sizeof pr_test_cli_err, err);
    return WIFEXITED(ws) ? WEXITSTATUS(ws) : -1;
}

/* number of lines of s */
static inline int pr_test_lines(const char *s)
{
    int k = 0;
    for (; *s; s++)
        k += *s == '\n';
    return k;
}

/* the number `key` of a --json object printed to pr_test_cli_out (NAN for null or missing) */
static inline double pr_test_cli_json(const char *key)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\": ", key);
    const char *p = strstr(pr_test_cli_out, pat);
    return p && strncmp(p + strlen(pat), "null", 4) ? strtod(p + strlen(pat), NULL) : NAN;
}

#endif
