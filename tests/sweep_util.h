/* Helpers for the tests of polyrope sweep/plot/reproduce: run the built binary ($POLYROPE)
 * as a child process, and read CSV data rows back. */
#ifndef PR_SWEEP_UTIL_H
#define PR_SWEEP_UTIL_H

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static inline const char *polyrope_bin(void)
{
    const char *p = getenv("POLYROPE");
    if (!p || !*p) {
        fprintf(stderr, "POLYROPE is not set: run this test through meson test\n");
        exit(1);
    }
    return p;
}

/* Starts `polyrope argv...` with stdout and stderr into log (NULL: inherited). */
static inline pid_t spawn_polyrope(const char *log, char *const *args)
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        if (log) {
            int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
            if (fd >= 0) {
                dup2(fd, 1);
                dup2(fd, 2);
            }
        }
        char *argv[64];
        int n = 0;
        argv[n++] = (char *)"polyrope";
        for (int i = 0; args[i] && n < 63; i++)
            argv[n++] = args[i];
        argv[n] = 0;
        execv(polyrope_bin(), argv);
        _exit(127);
    }
    return pid;
}

/* Runs polyrope to the end; returns its exit status (or 128+signal). */
static inline int run_polyrope(const char *log, char *const *args)
{
    int status;
    pid_t pid = spawn_polyrope(log, args);
    if (pid < 0 || waitpid(pid, &status, 0) < 0)
        return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* The whole file as a string (NULL if unreadable); *len gets its size. */
static inline char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc(n + 1);
    if (buf && fread(buf, 1, n, f) != (size_t)n) {
        free(buf);
        buf = 0;
    }
    fclose(f);
    if (buf) {
        buf[n] = 0;
        if (len)
            *len = (size_t)n;
    }
    return buf;
}

/* The data rows of a sweep CSV: every line that is not a comment and not the header
 * (the first non-comment line). Lines point into *buf, which the caller frees. Also reports
 * whether the file ends in a newline (a torn last line would not). */
static inline int data_rows(char ***rows, char **buf, const char *path, int *ends_nl)
{
    size_t len = 0;
    *buf = slurp(path, &len);
    *rows = 0;
    if (!*buf)
        return -1;
    *ends_nl = len > 0 && (*buf)[len - 1] == '\n';
    int n = 0, header = 0;
    *rows = malloc(sizeof(char *) * (len / 2 + 1));
    for (char *save = 0, *l = strtok_r(*buf, "\n", &save); l; l = strtok_r(0, "\n", &save)) {
        if (l[0] == '#')
            continue;
        if (!header++)
            continue;
        (*rows)[n++] = l;
    }
    return n;
}

#endif
