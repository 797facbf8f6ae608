/* child: start a helper program that cannot outlive polyrope (see child.h). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>
#include "pr_status.h"
#include "child.h"

static volatile sig_atomic_t child_pid, child_signal;

static void forward(int sig)
{
    child_signal = sig;
    if (child_pid > 0)
        kill((pid_t)child_pid, sig);
}

int pr_child_run(int *wstatus, const char *path, char *const argv[], const char *out)
{
    static const int sigs[] = {SIGINT, SIGTERM};
    sigset_t block, old;
    sigemptyset(&block);
    for (int i = 0; i < 2; i++)
        sigaddset(&block, sigs[i]);
    /* no signal between fork and the handlers: it is held until they are in place */
    sigprocmask(SIG_BLOCK, &block, &old);
    pid_t parent = getpid();
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        /* dies with the parent; if the parent is already gone, the death signal would never come */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) || getppid() != parent)
            _exit(127);
        if (out) {
            int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
            if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
                _exit(126);
            close(fd);
        }
        sigprocmask(SIG_SETMASK, &old, 0);
        execv(path, argv);
        _exit(127);
    }
    if (pid < 0) {
        int e = errno;
        sigprocmask(SIG_SETMASK, &old, 0);
        errno = e;
        return PR_EIO;
    }
    struct sigaction sa, saved[2];
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = forward;
    sigemptyset(&sa.sa_mask);
    child_signal = 0;
    child_pid = pid;
    /* a signal this process ignores (started by nohup, say) stays ignored */
    for (int i = 0; i < 2; i++)
        if (!sigaction(sigs[i], 0, &saved[i]) && saved[i].sa_handler != SIG_IGN)
            sigaction(sigs[i], &sa, 0);
    sigprocmask(SIG_SETMASK, &old, 0);
    int st = PR_OK, e = 0;
    while (waitpid(pid, wstatus, 0) < 0)
        if (errno != EINTR) {
            e = errno;
            st = PR_EIO;
            break;
        }
    child_pid = 0;
    for (int i = 0; i < 2; i++)
        sigaction(sigs[i], &saved[i], 0);
    /* the signal was meant for this process too: it now gets it as it would have */
    if (child_signal)
        raise(child_signal);
    errno = e;
    return st;
}

int pr_child_which(char *buf, size_t len, const char *name)
{
    const char *path = getenv("PATH");
    char *copy = path ? strdup(path) : 0, *save = 0;
    int found = 0;
    for (char *dir = copy ? strtok_r(copy, ":", &save) : 0; dir && !found; dir = strtok_r(0, ":", &save)) {
        struct stat sb;
        snprintf(buf, len, "%s/%s", *dir ? dir : ".", name);
        found = !stat(buf, &sb) && S_ISREG(sb.st_mode) && (sb.st_mode & S_IXUSR);
    }
    free(copy);
    return found;
}
