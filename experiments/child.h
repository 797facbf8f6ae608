/* child: the helper programs polyrope starts (polyrope check under reproduce, gnuplot under
 * plot) die with it and receive its SIGINT and SIGTERM, so no orphan outlives a killed run. */
#ifndef PR_CHILD_H
#define PR_CHILD_H

#include <stddef.h>

/* Runs path with argv (argv[0] its name, NULL-terminated) as a child process and waits for it;
 * its stdout and stderr go to out (created or truncated) when out is not NULL. The child gets
 * SIGKILL if this process dies (PR_SET_PDEATHSIG), and SIGINT or SIGTERM sent to this process
 * while it waits is passed on to the child, then raised again here once the child has ended.
 * *wstatus gets the child's wait status. Returns PR_OK, or PR_EIO if it could not be started
 * or waited for (errno says why). */
int pr_child_run(int *wstatus, const char *path, char *const argv[], const char *out);

/* The executable `name` on $PATH, as a path in buf (len bytes); 1 if found, else 0. */
int pr_child_which(char *buf, size_t len, const char *name);

#endif
