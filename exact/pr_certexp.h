/* pr_certexp: certified error of exp polynomials, certified least degree (issue 3) */
#ifndef PR_CERTEXP_H
#define PR_CERTEXP_H

#endif
