/* cli: option tables for the polyrope subcommands. The --help text is generated from the
 * same table that parses, so it cannot drift from what the command accepts. */
#ifndef PR_CLI_H
#define PR_CLI_H

#include <stdio.h>

typedef enum {
    PR_OPT_INT,      /* long, dest: long*, checked against [lo, hi] */
    PR_OPT_DOUBLE,   /* finite double, dest: double*, checked against [lo, hi] */
    PR_OPT_STRING,   /* dest: const char** */
    PR_OPT_CHOICE,   /* dest: const char**, one of choices "a|b|c" */
    PR_OPT_FLAG      /* dest: int*, set to 1 */
} pr_opt_type_t;

typedef struct {
    const char *name;      /* without the leading -- */
    pr_opt_type_t type;
    void *dest;
    const char *help;
    const char *choices;   /* PR_OPT_CHOICE only */
    double lo, hi;         /* PR_OPT_INT / PR_OPT_DOUBLE; lo == hi means unchecked */
    int given;             /* set by the parser */
} pr_opt_t;

typedef struct {
    const char *name;      /* e.g. "attn" */
    const char *args;      /* positional synopsis, e.g. "[NAME...]" or "" */
    const char *summary;   /* one line */
    const char *details;   /* extra paragraphs for --help, or NULL */
    pr_opt_t *opts;
    int nopts;
} pr_cmd_spec_t;

/* Parses argv[1..argc) (argv[0] is the command name). Positional arguments are
 * returned in pos[0..*npos) (pointers into argv; pos must hold argc entries).
 * Returns 0 on success, 2 after printing a one-line error to stderr, or -1 after
 * printing --help to stdout (the caller then exits 0). */
int pr_cli_parse(pr_cmd_spec_t *spec, int argc, char **argv, char **pos, int *npos);

/* The same for a command that takes no positional arguments: one is a usage error
 * ("unexpected argument", exit status 2). */
int pr_cli_parse_nopos(pr_cmd_spec_t *spec, int argc, char **argv);

void pr_cli_help(FILE *f, const pr_cmd_spec_t *spec);

/* Prints "polyrope CMD: message" to stderr and returns exit status 2 (bad usage or input). */
int pr_cli_fail(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A status from the library as a one-line error: "polyrope CMD: what: pr_strerror(st)". */
int pr_cli_fail_status(const char *cmd, int st, const char *what);

/* JSON output. JSON has no inf or nan: those print as null. Prints "key": v then sep, v with
 * `digits` significant digits (%.*g). */
void pr_cli_json_num(const char *key, double v, int digits, const char *sep);
/* "key": v then sep; a negative v (does not apply) prints as null */
void pr_cli_json_int(const char *key, long v, const char *sep);

/* 1 when option `name` was given on the command line */
int pr_cli_given(const pr_cmd_spec_t *spec, const char *name);

/* Pins glibc's mmap threshold at its default (128 KiB), which also stops glibc from raising it
 * after large frees: every buffer past it then comes from fresh pages, whatever the process
 * allocated and freed before. Without it a sweep row's time depended on the rows before it (its
 * buffers from the heap or from fresh pages): in reproduce --quick the fast backward took 5× as
 * long at n = 8192 as at 4096, and G5's slope read 1.45 (FAILED); pinned, the same run reads
 * 1.03. PR_OK, or PR_EINVAL if glibc refuses; a no-op without glibc's malloc (AddressSanitizer's
 * replaces it). sweep and reproduce call it (rows of a grid must not depend on their order); the
 * benchmarks do not (they time the best of repeated calls, whose buffers glibc may reuse, as in
 * any program calling the library in a loop). */
int pr_cli_pin_malloc(void);

/* pr_cli_pin_malloc, a warning on stderr ("polyrope CMD: warning: ...") when glibc refuses */
void pr_cli_pin_malloc_warn(const char *cmd);

#endif
