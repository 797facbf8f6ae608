/* pr_backward: fast backward (issue 6) */
#ifndef PR_BACKWARD_H
#define PR_BACKWARD_H

#endif
