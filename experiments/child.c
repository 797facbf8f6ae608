/* child: start a helper program that cannot outlive polyrope (see child.h). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>
#include "pr_status.h"
#include "child.h"

static const int sigs[] = {SIGINT, SIGTERM};
/* the running children (0: a free slot), and the signal passed on to them */
static volatile sig_atomic_t child_pid[PR_CHILD_MAX], child_signal;
static int running;
static struct sigaction saved[2];

static void forward(int sig)
{
    child_signal = sig;
    for (int i = 0; i < PR_CHILD_MAX; i++)
        if (child_pid[i] > 0)
            kill((pid_t)child_pid[i], sig);
}

int pr_child_start(pid_t *pid_out, const char *path, char *const argv[], const char *out)
{
    if (running && child_signal) {
        errno = EINTR;
        return PR_EIO;
    }
    int slot = 0;
    while (slot < PR_CHILD_MAX && child_pid[slot])
        slot++;
    if (slot == PR_CHILD_MAX) {
        errno = EAGAIN;
        return PR_EIO;
    }
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
        /* the handlers of the parent are not the child's */
        for (int i = 0; running && i < 2; i++)
            sigaction(sigs[i], &saved[i], 0);
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
    if (!running++) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = forward;
        sigemptyset(&sa.sa_mask);
        child_signal = 0;
        /* a signal this process ignores (started by nohup, say) stays ignored */
        for (int i = 0; i < 2; i++)
            if (!sigaction(sigs[i], 0, &saved[i]) && saved[i].sa_handler != SIG_IGN)
                sigaction(sigs[i], &sa, 0);
    }
    child_pid[slot] = pid;
    sigprocmask(SIG_SETMASK, &old, 0);
    *pid_out = pid;
    return PR_OK;
}

/* waits for pid (-1: any of ours) */
static int wait_for(pid_t *pid, int *wstatus, struct rusage *ru, pid_t which)
{
    if (!running) {
        errno = ECHILD;
        return PR_EIO;
    }
    pid_t got;
    while ((got = wait4(which, wstatus, 0, ru)) < 0)
        if (errno != EINTR)
            return PR_EIO;
    for (int i = 0; i < PR_CHILD_MAX; i++)
        if (child_pid[i] == got) {
            child_pid[i] = 0;
            running--;
        }
    *pid = got;
    if (!running) {
        for (int i = 0; i < 2; i++)
            sigaction(sigs[i], &saved[i], 0);
        /* the signal was meant for this process too: it now gets it as it would have */
        if (child_signal)
            raise(child_signal);
    }
    return PR_OK;
}

int pr_child_wait(pid_t *pid, int *wstatus, struct rusage *ru)
{
    return wait_for(pid, wstatus, ru, -1);
}

int pr_child_run(int *wstatus, const char *path, char *const argv[], const char *out)
{
    pid_t pid;
    int st = pr_child_start(&pid, path, argv, out);
    return st ? st : wait_for(&pid, wstatus, 0, pid);
}
