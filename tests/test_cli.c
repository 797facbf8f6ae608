/* The option parser (experiments/cli.c) against its contract: a value is accepted exactly when
 * it parses whole and lies in [lo, hi] (integers compared exactly, doubles bit for bit), and every
 * refusal is exit status 2 with one true line. Randomised integers and doubles (subnormals and
 * the range ends included), then the messages the hardening issue found wrong, then the same
 * through the built polyrope. */
#include <float.h>
#include <limits.h>
#include <math.h>
#include <string.h>
#include <unistd.h>
#include "polyrope.h"
#include "../experiments/cli.h"
#include "pr_test.h"
#include "pr_test_cli.h"

static long n_val, seed_val;
static double eps_val, free_val;
static const char *out_val, *pos_val;
static int json_val;
static pr_opt_t opts[] = {
    {"n", PR_OPT_INT, &n_val, "", 0, 1, 1 << 26, 0},
    {"seed", PR_OPT_INT, &seed_val, "", 0, 0, 9e18, 0},
    {"eps", PR_OPT_DOUBLE, &eps_val, "", 0, 1e-300, 1, 0},
    {"x", PR_OPT_DOUBLE, &free_val, "", 0, 0, 0, 0},
    {"out", PR_OPT_STRING, &out_val, "", 0, 0, 0, 0},
    {"pos", PR_OPT_CHOICE, &pos_val, "", "rope|general", 0, 0, 0},
    {"json", PR_OPT_FLAG, &json_val, "", 0, 0, 0, 0},
};
static pr_cmd_spec_t spec = {"test", "", "", 0, opts, (int)(sizeof opts / sizeof opts[0])};

static char err_text[4096];

/* pr_cli_parse_nopos on "test ARGS..." with stderr caught in err_text */
static int parse(int argc, char **args)
{
    char *argv[16] = {"test"};
    for (int i = 0; i < argc; i++)
        argv[i + 1] = args[i];
    for (int k = 0; k < spec.nopts; k++)
        opts[k].given = 0;
    static FILE *f;
    if (!f)
        f = fopen("test_cli.stderr", "w+");
    fflush(stderr);
    int saved = dup(2);
    rewind(f);
    PR_CHECK(ftruncate(fileno(f), 0) == 0, "ftruncate");
    dup2(fileno(f), 2);
    int rc = pr_cli_parse_nopos(&spec, argc + 1, argv);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    rewind(f);
    size_t len = fread(err_text, 1, sizeof err_text - 1, f);
    err_text[len] = 0;
    PR_CHECK(rc == 0 || rc == 2, "exit status %d", rc);
    PR_CHECK(rc ? pr_test_lines(err_text) == 1 && !strncmp(err_text, "polyrope test: ", 15) : !*err_text,
             "status %d with stderr '%s'", rc, err_text);
    return rc;
}

static int parse1(const char *opt, const char *val)
{
    return parse(2, (char *[]){(char *)opt, (char *)val});
}

int main(void)
{
    pr_rng_t rng;
    pr_rng_init(rng, pr_test_seed("test_cli", 20261128));

    /* integers around and beyond [lo, hi], compared exactly (9e18 + 1 rounds to 9e18 as a double) */
    for (int t = 0; t < 2000; t++) {
        long x;
        switch (t % 4) {
        case 0: x = (long)pr_rng_below(rng, 200) - 100; break;
        case 1: x = (1L << 26) - 50 + (long)pr_rng_below(rng, 100); break;
        case 2: x = 9000000000000000000L - 50 + (long)pr_rng_below(rng, 100); break;
        default: x = (long)(pr_rng_below(rng, UINT64_MAX) ^ (pr_rng_below(rng, 2) << 63)); break;
        }
        const char *opt = t % 2 ? "--n" : "--seed";
        long lo = t % 2 ? 1 : 0, hi = t % 2 ? 1 << 26 : 9000000000000000000L;
        char v[32];
        snprintf(v, sizeof v, "%ld", x);
        n_val = seed_val = -7;
        int rc = parse1(opt, v), ok = lo <= x && x <= hi;
        PR_CHECK(rc == (ok ? 0 : 2) && (!ok || (t % 2 ? n_val : seed_val) == x),
                 "%s %s: status %d, want %d (%s)", opt, v, rc, ok ? 0 : 2, err_text);
    }
    /* doubles from random bit patterns (every exponent, subnormals, inf, nan), printed exactly */
    for (int t = 0; t < 4000; t++) {
        uint64_t bits = pr_rng_below(rng, UINT64_MAX);
        if (t % 4 == 0)
            bits &= 0x800fffffffffffffULL; /* subnormal or zero */
        double x;
        memcpy(&x, &bits, 8);
        char v[40];
        snprintf(v, sizeof v, "%.17g", x);
        free_val = eps_val = -7;
        int rc = parse1("--x", v), ok = isfinite(x);
        uint64_t got;
        memcpy(&got, &free_val, 8);
        PR_CHECK(rc == (ok ? 0 : 2) && (!ok || got == bits), "--x %s: status %d (%s), value %a, want %a", v, rc,
                 err_text, free_val, x);
        rc = parse1("--eps", v);
        ok = isfinite(x) && x >= 1e-300 && x <= 1;
        PR_CHECK(rc == (ok ? 0 : 2) && (!ok || eps_val == x), "--eps %s: status %d (%s)", v, rc, err_text);
        /* a finite number out of range is named as such, never "not finite" */
        PR_CHECK(!isfinite(x) || ok || strstr(err_text, "must lie in [1e-300, 1]"), "--eps %s: '%s'", v, err_text);
    }

    /* the messages that were wrong */
    PR_CHECK(parse1("--eps", "5e-324") == 2 && strstr(err_text, "must lie in [1e-300, 1], got '5e-324'"),
             "--eps 5e-324: %s", err_text);
    PR_CHECK(parse1("--x", "5e-324") == 0 && free_val == 0x1p-1074, "--x 5e-324 (subnormal) refused: %s", err_text);
    PR_CHECK(parse1("--x", "1e-400") == 2 && strstr(err_text, "below the least positive double"), "--x 1e-400: %s",
             err_text);
    PR_CHECK(parse1("--x", "-1e400") == 2 && strstr(err_text, "too large for a double"), "--x -1e400: %s", err_text);
    PR_CHECK(parse1("--x", "nan") == 2 && strstr(err_text, "finite"), "--x nan: %s", err_text);
    PR_CHECK(parse1("--eps", "1.0000001") == 2 && strstr(err_text, "got '1.0000001'"), "--eps 1.0000001: %s",
             err_text);
    PR_CHECK(parse1("--n", "99999999999999999999") == 2 && strstr(err_text, "must lie in [1, 67108864]"),
             "--n 99999999999999999999: %s", err_text);
    PR_CHECK(parse1("--seed", "-99999999999999999999") == 2 && strstr(err_text, "must lie in"), "seed: %s", err_text);
    PR_CHECK(parse1("--seed", "9000000000000000001") == 2, "--seed 9e18+1 accepted (hi is 9e18)");
    const char *junk[] = {"5x", "0x10", "5 ", "", "1e3", "--", "5.0"};
    for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++)
        PR_CHECK(parse1("--n", junk[i]) == 2, "--n '%s' accepted", junk[i]);
    PR_CHECK(parse1("--eps", "1e-3junk") == 2 && strstr(err_text, "expects a finite number"), "%s", err_text);
    PR_CHECK(parse(1, (char *[]){"--eps="}) == 2 && strstr(err_text, "empty"), "--eps=: %s", err_text);
    /* an empty string option is the command's to refuse (it can say what to give instead) */
    PR_CHECK(parse1("--out", "") == 0 && out_val && !*out_val, "--out '': %s", err_text);
    PR_CHECK(parse1("--pos", "") == 2, "--pos ''");
    PR_CHECK(parse1("--pos", "ropeX") == 2 && strstr(err_text, "rope|general"), "--pos ropeX: %s", err_text);
    PR_CHECK(parse(4, (char *[]){"--n", "4", "--n", "8"}) == 2 && strstr(err_text, "--n given twice"),
             "repeated --n: %s", err_text);
    PR_CHECK(parse(4, (char *[]){"--n=4", "--out", "a", "--n=8"}) == 2, "repeated --n=");
    PR_CHECK(parse(2, (char *[]){"--json", "--json"}) == 2, "repeated flag");
    PR_CHECK(parse(1, (char *[]){"--json=1"}) == 2 && strstr(err_text, "takes no value"), "--json=1: %s", err_text);
    PR_CHECK(parse(1, (char *[]){"--n"}) == 2 && strstr(err_text, "needs a value"), "--n at the end: %s", err_text);
    PR_CHECK(parse(1, (char *[]){"--nn"}) == 2 && strstr(err_text, "unknown option '--nn'"), "--nn: %s", err_text);
    PR_CHECK(parse(1, (char *[]){"-n"}) == 2, "-n");
    /* what the user typed is quoted: a newline or an escape in it stays inside the one line
     * (found by fuzzing: "-\n" printed two lines) */
    PR_CHECK(parse(1, (char *[]){"-\n"}) == 2 && strstr(err_text, "'-\\x0a'"), "-\\n: %s", err_text);
    PR_CHECK(parse1("--pos", "\x1b[2Jrope\r") == 2 && strstr(err_text, "got '\\x1b[2Jrope\\x0d'"), "escape: %s",
             err_text);
    PR_CHECK(parse(1, (char *[]){"stray"}) == 2 && strstr(err_text, "unexpected argument"), "stray: %s", err_text);
    PR_CHECK(parse(4, (char *[]){"--n", "-5", "--seed", "0"}) == 2 && strstr(err_text, "got '-5'"), "%s", err_text);
    PR_CHECK(parse(5, (char *[]){"--n", "7", "--json", "--out=", "x"}) == 2, "--out= with a stray");
    PR_CHECK(parse(5, (char *[]){"--n", "7", "--json", "--out=d", "--eps=0.5"}) == 0 && n_val == 7 && json_val &&
                 !strcmp(out_val, "d") && eps_val == 0.5,
             "a good command line: %s", err_text);

    /* the same through the command line: one true line, exit 2, before any work */
    int rc = pr_test_cli_run("test_cli", "attn --eps 5e-324");
    PR_CHECK(rc == 2 && pr_test_lines(pr_test_cli_err) == 1 && !strstr(pr_test_cli_err, "finite") &&
                 strstr(pr_test_cli_err, "5e-324"),
             "attn --eps 5e-324: exit %d, '%s'", rc, pr_test_cli_err);
    rc = pr_test_cli_run("test_cli", "attn --q /tmp");
    PR_CHECK(rc == 2 && pr_test_lines(pr_test_cli_err) == 1 && strstr(pr_test_cli_err, "--q /tmp: Is a directory") &&
                 !*pr_test_cli_out,
             "attn --q /tmp: exit %d, '%s'", rc, pr_test_cli_err);
    rc = pr_test_cli_run("test_cli", "attn --n 8 --n 16");
    PR_CHECK(rc == 2 && pr_test_lines(pr_test_cli_err) == 1 && !*pr_test_cli_out, "attn --n 8 --n 16: exit %d, '%s'",
             rc, pr_test_cli_err);
    unlink("test_cli.stderr");
    return pr_test_finish("test_cli");
}
