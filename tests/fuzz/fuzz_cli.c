/* option parser: argv from the bytes (split at NUL, at most 32 arguments), parsed with the
 * option table of `polyrope attn` itself (pr_cmd_attn_args_init: every option type, its ranges
 * and choices, so the two cannot drift). Contract: status 0, 2 or -1 (help); 2 prints one line
 * "polyrope attn: ..." and nothing else; 0 prints nothing, every given value lies in its range
 * (integers exactly, doubles finite) and every choice is one of its choices (an empty string
 * option is the command's to refuse); -1 prints the help, beginning with the usage line. */
#include <math.h>
#include "../../experiments/cmd_attn.h"
#include "fuzz.h"

enum { MAXARGS = 32 };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pr_cmd_attn_args_t a;
    pr_cmd_attn_args_init(&a);
    pr_cmd_spec_t spec = a.spec;
    pr_opt_t *opts = a.opts;

    /* argv[0] is the command; the arguments are the NUL-separated pieces of the input */
    char *buf = fuzz_string(data, size), *argv[MAXARGS + 1] = {"attn"}, *posv[MAXARGS + 1];
    int argc = 1;
    for (size_t i = 0; i <= size && argc <= MAXARGS;) {
        argv[argc++] = buf + i;
        i += strlen(buf + i) + 1;
    }
    int nopos = size && (data[0] & 1); /* both entry points */

    char *err = 0, *outp = 0;
    size_t errlen = 0, outlen = 0;
    FILE *saved_err = stderr, *saved_out = stdout;
    stderr = open_memstream(&err, &errlen);
    stdout = open_memstream(&outp, &outlen);
    FUZZ_CHECK(stderr && stdout, "open_memstream");
    int npos = 0, rc = nopos ? pr_cli_parse_nopos(&spec, argc, argv) : pr_cli_parse(&spec, argc, argv, posv, &npos);
    fclose(stderr);
    fclose(stdout);
    stderr = saved_err;
    stdout = saved_out;

    FUZZ_CHECK(rc == 0 || rc == 2 || rc == -1, "status %d", rc);
    if (rc == 2)
        FUZZ_CHECK(fuzz_lines(err, errlen) == 1 && err[errlen - 1] == '\n' && !strncmp(err, "polyrope attn: ", 15) &&
                       !outlen,
                   "a refusal must be one line on stderr, got '%s'", err);
    else
        FUZZ_CHECK(!errlen, "status %d with stderr '%s'", rc, err);
    if (rc == -1)
        FUZZ_CHECK(!strncmp(outp, "usage: polyrope attn", 20), "help: '%.40s'", outp);
    if (rc == 0) {
        FUZZ_CHECK(!outlen, "status 0 with stdout");
        FUZZ_CHECK(npos >= 0 && npos < argc && (!nopos || !npos), "%d positional arguments of %d", npos, argc);
        for (int k = 0; k < spec.nopts; k++) {
            pr_opt_t *o = &opts[k];
            if (!o->given)
                continue;
            if (o->type == PR_OPT_INT) {
                long x = *(long *)o->dest, lo = (long)o->lo, hi = o->hi >= 0x1p63 ? __LONG_MAX__ : (long)o->hi;
                FUZZ_CHECK(lo == hi || (lo <= x && x <= hi), "--%s %ld outside [%ld, %ld]", o->name, x, lo, hi);
            } else if (o->type == PR_OPT_DOUBLE) {
                double x = *(double *)o->dest;
                FUZZ_CHECK(isfinite(x) && (o->lo == o->hi || (o->lo <= x && x <= o->hi)), "--%s %g", o->name, x);
            } else if (o->type == PR_OPT_STRING || o->type == PR_OPT_CHOICE) {
                const char *v = *(const char **)o->dest;
                FUZZ_CHECK(v && (*v || o->type == PR_OPT_STRING), "--%s empty", o->name);
                if (o->type == PR_OPT_CHOICE) {
                    size_t len = strlen(v);
                    const char *c = strstr(o->choices, v);
                    FUZZ_CHECK(c && (c == o->choices || c[-1] == '|') && (c[len] == '|' || !c[len]),
                               "--%s '%s' not in %s", o->name, v, o->choices);
                }
            } else {
                FUZZ_CHECK(*(int *)o->dest == 1, "--%s flag not set", o->name);
            }
        }
    }
    free(err);
    free(outp);
    free(buf);
    return 0;
}
