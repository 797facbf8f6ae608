#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include "pr_status.h"
#include "cli.h"

int pr_cli_fail(const char *cmd, const char *fmt, ...)
{
    /* messages quote what the user gave, which may hold a newline or an escape sequence: those
     * print as \xNN so the message stays one line and cannot drive the terminal */
    char buf[8192];
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    fprintf(stderr, "polyrope %s: ", cmd);
    for (const char *p = buf; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c < 0x20 || c == 0x7f)
            fprintf(stderr, "\\x%02x", c);
        else
            fputc(c, stderr);
    }
    fputs(len >= (int)sizeof buf ? "...\n" : "\n", stderr);
    return 2;
}

int pr_cli_fail_status(const char *cmd, int st, const char *what)
{
    return pr_cli_fail(cmd, "%s: %s", what, pr_strerror(st));
}

static int choice_ok(const char *choices, const char *v)
{
    size_t len = strlen(v);
    for (const char *p = choices; *p;) {
        const char *bar = strchr(p, '|');
        size_t n = bar ? (size_t)(bar - p) : strlen(p);
        if (n == len && strncmp(p, v, n) == 0)
            return 1;
        if (!bar)
            break;
        p = bar + 1;
    }
    return 0;
}

/* [lo, hi] of an integer option as longs: comparing in double would round a long near hi onto it */
static long int_bound(double b)
{
    return b >= 0x1p63 ? LONG_MAX : b <= -0x1p63 ? LONG_MIN : (long)b;
}

static int set_value(const char *cmd, pr_opt_t *o, const char *v)
{
    char *end;
    int checked = o->lo != o->hi;
    /* an empty number or choice is refused here; an empty string is the command's to refuse, with
     * what to give instead (a file name, a folder) */
    if ((o->type == PR_OPT_INT || o->type == PR_OPT_DOUBLE || o->type == PR_OPT_CHOICE) && !*v)
        return pr_cli_fail(cmd, "--%s needs a value, got an empty string", o->name);
    switch (o->type) {
    case PR_OPT_INT: {
        errno = 0;
        long x = strtol(v, &end, 10);
        if (end == v || *end)
            return pr_cli_fail(cmd, "--%s expects an integer, got '%s'", o->name, v);
        long lo = int_bound(ceil(o->lo)), hi = int_bound(floor(o->hi));
        if (checked && (errno == ERANGE || x < lo || x > hi))
            return pr_cli_fail(cmd, "--%s must lie in [%ld, %ld], got '%s'", o->name, lo, hi, v);
        if (errno == ERANGE)
            return pr_cli_fail(cmd, "--%s: '%s' does not fit in a 64-bit integer [%ld, %ld]", o->name, v,
                               LONG_MIN, LONG_MAX);
        *(long *)o->dest = x;
        break;
    }
    case PR_OPT_DOUBLE: {
        errno = 0;
        double x = strtod(v, &end);
        if (end == v || *end || isnan(x) || (isinf(x) && errno != ERANGE))
            return pr_cli_fail(cmd, "--%s expects a finite number, got '%s'", o->name, v);
        /* ERANGE: beyond the largest double, or below the least positive one (0 then); a
         * subnormal result is the correctly rounded value and is kept */
        if (errno == ERANGE && (isinf(x) || x == 0))
            return pr_cli_fail(cmd, "--%s: '%s' is %s (doubles reach %g to %g in magnitude)", o->name, v,
                               isinf(x) ? "too large for a double" : "nonzero but below the least positive double",
                               0x1p-1074, DBL_MAX);
        if (checked && (x < o->lo || x > o->hi))
            return pr_cli_fail(cmd, "--%s must lie in [%g, %g], got '%s'", o->name, o->lo, o->hi, v);
        *(double *)o->dest = x;
        break;
    }
    case PR_OPT_CHOICE:
        if (!choice_ok(o->choices, v))
            return pr_cli_fail(cmd, "--%s must be one of %s, got '%s'", o->name, o->choices, v);
        /* fall through */
    case PR_OPT_STRING:
        *(const char **)o->dest = v;
        break;
    case PR_OPT_FLAG:
        *(int *)o->dest = 1;
        break;
    }
    o->given = 1;
    return 0;
}

int pr_cli_parse(pr_cmd_spec_t *spec, int argc, char **argv, char **pos, int *npos)
{
    *npos = 0;
    int only_pos = 0;
    for (int i = 1; i < argc; i++) {
        char *arg = argv[i];
        if (only_pos || arg[0] != '-' || arg[1] == '\0') {
            pos[(*npos)++] = arg;
            continue;
        }
        if (!strcmp(arg, "--")) {
            only_pos = 1;
            continue;
        }
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            pr_cli_help(stdout, spec);
            return -1;
        }
        if (arg[1] != '-')
            return pr_cli_fail(spec->name, "unknown option '%s' (see polyrope %s --help)", arg, spec->name);
        const char *name = arg + 2, *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        pr_opt_t *o = 0;
        for (int k = 0; k < spec->nopts; k++)
            if (strlen(spec->opts[k].name) == len && !strncmp(spec->opts[k].name, name, len))
                o = &spec->opts[k];
        if (!o)
            return pr_cli_fail(spec->name, "unknown option '--%.*s' (see polyrope %s --help)",
                               (int)len, name, spec->name);
        /* the second would silently override the first: a script's mistake, not a wish */
        if (o->given)
            return pr_cli_fail(spec->name, "--%s given twice; give it once", o->name);
        const char *v = 0;
        if (o->type == PR_OPT_FLAG) {
            if (eq)
                return pr_cli_fail(spec->name, "--%s takes no value", o->name);
        } else if (eq) {
            v = eq + 1;
        } else if (i + 1 < argc) {
            v = argv[++i];
        } else {
            return pr_cli_fail(spec->name, "--%s needs a value", o->name);
        }
        if (set_value(spec->name, o, v))
            return 2;
    }
    return 0;
}

int pr_cli_parse_nopos(pr_cmd_spec_t *spec, int argc, char **argv)
{
    char *pos[argc > 0 ? argc : 1];
    int npos, rc = pr_cli_parse(spec, argc, argv, pos, &npos);
    if (!rc && npos)
        rc = pr_cli_fail(spec->name, "unexpected argument '%s' (see polyrope %s --help)", pos[0], spec->name);
    return rc;
}

void pr_cli_help(FILE *f, const pr_cmd_spec_t *spec)
{
    fprintf(f, "usage: polyrope %s [options]%s%s\n\n%s\n", spec->name, spec->args[0] ? " " : "",
            spec->args, spec->summary);
    if (spec->details)
        fprintf(f, "\n%s\n", spec->details);
    fprintf(f, "\noptions:\n");
    for (int k = 0; k < spec->nopts; k++) {
        const pr_opt_t *o = &spec->opts[k];
        char lhs[96];
        const char *meta = o->type == PR_OPT_INT ? " N" : o->type == PR_OPT_DOUBLE ? " X"
                         : o->type == PR_OPT_FLAG ? "" : o->type == PR_OPT_CHOICE ? " " : " S";
        snprintf(lhs, sizeof lhs, "--%s%s%s", o->name, meta, o->type == PR_OPT_CHOICE ? o->choices : "");
        fprintf(f, "  %-34s %s", lhs, o->help);
        /* the default is whatever dest holds before parsing */
        switch (o->type) {
        case PR_OPT_INT: fprintf(f, " (default %ld)", *(long *)o->dest); break;
        case PR_OPT_DOUBLE: fprintf(f, " (default %g)", *(double *)o->dest); break;
        case PR_OPT_STRING:
        case PR_OPT_CHOICE:
            if (*(const char **)o->dest)
                fprintf(f, " (default %s)", *(const char **)o->dest);
            break;
        case PR_OPT_FLAG: break;
        }
        fputc('\n', f);
    }
    fprintf(f, "  %-34s %s\n", "--help", "print this help and exit");
}

void pr_cli_json_num(const char *key, double v, int digits, const char *sep)
{
    if (isfinite(v))
        printf("\"%s\": %.*g%s", key, digits, v, sep);
    else
        printf("\"%s\": null%s", key, sep);
}

void pr_cli_json_int(const char *key, long v, const char *sep)
{
    if (v >= 0)
        printf("\"%s\": %ld%s", key, v, sep);
    else
        printf("\"%s\": null%s", key, sep);
}

/* AddressSanitizer replaces malloc (and refuses mallopt): nothing to pin there */
#if defined(__SANITIZE_ADDRESS__)
#define PR_ASAN_MALLOC 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PR_ASAN_MALLOC 1
#endif
#endif

int pr_cli_pin_malloc(void)
{
#if defined(__GLIBC__) && !defined(PR_ASAN_MALLOC)
    return mallopt(M_MMAP_THRESHOLD, 128 * 1024) == 1 ? PR_OK : PR_EINVAL;
#else
    return PR_OK;
#endif
}

void pr_cli_pin_malloc_warn(const char *cmd)
{
    if (pr_cli_pin_malloc())
        fprintf(stderr, "polyrope %s: warning: glibc refused to pin its mmap threshold: a row's time may depend on "
                "the rows before it\n", cmd);
}

int pr_cli_given(const pr_cmd_spec_t *spec, const char *name)
{
    for (int k = 0; k < spec->nopts; k++)
        if (!strcmp(spec->opts[k].name, name))
            return spec->opts[k].given;
    return 0;
}
