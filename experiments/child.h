/* child: the helper programs polyrope starts (polyrope check under reproduce, gnuplot under
 * plot, reproduce --jobs' sweeps) die with it and receive its SIGINT and SIGTERM, so no orphan
 * outlives a killed run. */
#ifndef PR_CHILD_H
#define PR_CHILD_H

#include <sys/resource.h>
#include <sys/types.h>

/* children started and not yet waited for, at most */
enum { PR_CHILD_MAX = 64 };

/* Runs path with argv (argv[0] its name, NULL-terminated) as a child process and waits for it;
 * its stdout and stderr go to out (created or truncated) when out is not NULL. The child gets
 * SIGKILL if this process dies (PR_SET_PDEATHSIG), and SIGINT or SIGTERM sent to this process
 * while it waits is passed on to the child, then raised again here once the child has ended.
 * *wstatus gets the child's wait status. Returns PR_OK, or PR_EIO if it could not be started
 * or waited for (errno says why). */
int pr_child_run(int *wstatus, const char *path, char *const argv[], const char *out);

/* pr_child_run in two halves, for children side by side: starts the child (*pid gets its pid)
 * and returns. From then until the last started child has been waited for, SIGINT and SIGTERM
 * sent to this process go to every running child; once one came, no child starts any more
 * (PR_EIO, errno EINTR) and the signal is raised here when the last child has ended.
 * PR_EIO also with PR_CHILD_MAX children running (errno EAGAIN). */
int pr_child_start(pid_t *pid, const char *path, char *const argv[], const char *out);
/* Waits for one started child to end: *pid gets its pid, *wstatus its wait status and *ru
 * (unless NULL) its resource usage (CPU time). PR_EIO with errno ECHILD when none is running. */
int pr_child_wait(pid_t *pid, int *wstatus, struct rusage *ru);

#endif
