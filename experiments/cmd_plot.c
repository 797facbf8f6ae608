/* polyrope plot: draws PNG and PDF figures from sweep CSVs with the gnuplot script of their
 * preset (plots/<preset>.gp), run as a child process. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "child.h"
#include "cli.h"
#include "commands.h"
#include "sweep.h"

#ifndef PR_SOURCE_ROOT
#define PR_SOURCE_ROOT "."
#endif
#ifndef PR_DATADIR
#define PR_DATADIR "/usr/local/share/polyrope"
#endif

static int is_file(const char *path, mode_t mode_bits)
{
    struct stat sb;
    return !stat(path, &sb) && S_ISREG(sb.st_mode) && (sb.st_mode & mode_bits) == mode_bits;
}

/* the script plots/<name>.gp of a preset of the table (never a name read from a file): from
 * $POLYROPE_PLOTS, the source tree when built in place, else installed */
static int find_script(char *buf, size_t len, const pr_preset_t *p)
{
    const char *env = getenv("POLYROPE_PLOTS");
    const char *dirs[] = {env, PR_SOURCE_ROOT "/plots", PR_DATADIR "/plots"};
    for (int i = 0; i < 3; i++) {
        if (!dirs[i] || !*dirs[i])
            continue;
        snprintf(buf, len, "%s/%s.gp", dirs[i], p->name);
        if (is_file(buf, S_IRUSR))
            return 1;
    }
    return 0;
}

/* Every value from outside (file names, CSV cells) reaches gnuplot only inside a single-quoted
 * string, where gnuplot expands nothing (no backquotes, no @macros, no escapes) and a quote is
 * written twice. Control characters are refused before: they never come from polyrope sweep. */
static int has_control(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 1;
    return 0;
}

static void gp_string(FILE *f, const char *s)
{
    fputc('\'', f);
    for (; *s; s++) {
        if (*s == '\'')
            fputc('\'', f);
        fputc(*s, f);
    }
    fputc('\'', f);
}

/* The script's "# series: COL COL" line names the columns whose distinct values make the
 * legend's series; they reach gnuplot as COL_values='v1 v2 ...' (in CSV order), and the
 * combinations present in rows whose status is ok as combos='v1:w1 v2:w2 ...', so a script
 * draws no empty series. */
static int seen_before(const pr_csv_t *t, long r, const int *cols, int ncols, int need_ok)
{
    int st = pr_csv_col(t, "status");
    for (long q = 0; q < r; q++) {
        if (need_ok && st >= 0 && strcmp(t->rows[q][st], "ok"))
            continue;
        int same = 1;
        for (int k = 0; k < ncols && same; k++)
            same = !strcmp(t->rows[q][cols[k]], t->rows[r][cols[k]]);
        if (same)
            return 1;
    }
    return 0;
}

/* a series value is a word of a space-separated list: no spaces, no control characters */
static int bad_value(const char *v)
{
    return !*v || has_control(v) || strchr(v, ' ');
}

/* writes the series variables; returns the column of a value that cannot be one, else -1 */
static int series_vars(FILE *f, const char *script, const pr_csv_t *t, long *bad_row)
{
    FILE *s = fopen(script, "r");
    char line[512] = "";
    int cols[8], ncols = 0, st = pr_csv_col(t, "status");
    if (!s)
        return -1;
    while (fgets(line, sizeof line, s))
        if (!strncmp(line, "# series:", 9))
            break;
    fclose(s);
    if (strncmp(line, "# series:", 9))
        return -1;
    char *save = 0;
    for (char *col = strtok_r(line + 9, " \t\n", &save); col && ncols < 8; col = strtok_r(0, " \t\n", &save)) {
        int c = pr_csv_col(t, col);
        for (long r = 0; c >= 0 && r < t->nrows; r++)
            if (bad_value(t->rows[r][c])) {
                *bad_row = r;
                return c;
            }
        /* the variable's name is the script's own (its "# series:" line), never the CSV's */
        fprintf(f, "%s_values=", col);
        char *list = 0;
        size_t len = 0;
        FILE *l = open_memstream(&list, &len);
        for (long r = 0, first = 1; l && c >= 0 && r < t->nrows; r++)
            if (!seen_before(t, r, &c, 1, 0)) {
                fprintf(l, "%s%s", first ? "" : " ", t->rows[r][c]);
                first = 0;
            }
        if (l)
            fclose(l);
        gp_string(f, list ? list : "");
        free(list);
        fprintf(f, "; ");
        if (c >= 0)
            cols[ncols++] = c;
    }
    char *list = 0;
    size_t len = 0;
    FILE *l = open_memstream(&list, &len);
    for (long r = 0, first = 1; l && ncols && r < t->nrows; r++) {
        if ((st >= 0 && strcmp(t->rows[r][st], "ok")) || seen_before(t, r, cols, ncols, 1))
            continue;
        for (int k = 0; k < ncols; k++)
            fprintf(l, "%s%s", k ? ":" : first ? "" : " ", t->rows[r][cols[k]]);
        first = 0;
    }
    if (l)
        fclose(l);
    fprintf(f, "combos=");
    gp_string(f, list ? list : "");
    fprintf(f, "; ");
    free(list);
    return -1;
}

int pr_plot_csv(const char *csv)
{
    const char *cmd = "plot";
    char gp[4096], script[4096], err[512];
    if (!pr_child_which(gp, sizeof gp, "gnuplot"))
        return pr_cli_fail(cmd, "gnuplot not found on PATH; install it (Debian: apt-get install gnuplot-nox) "
                                "and run polyrope plot again");
    size_t len = strlen(csv);
    if (len < 5 || strcmp(csv + len - 4, ".csv"))
        return pr_cli_fail(cmd, "%s: expected a .csv file written by polyrope sweep", csv);
    if (has_control(csv))
        return pr_cli_fail(cmd, "the CSV path has a control character (newline, tab...); rename the file");
    pr_csv_t t;
    if (pr_csv_read(&t, csv, 0, err, sizeof err))
        return pr_cli_fail(cmd, "%s", err);
    const char *name = pr_csv_comment(&t, "preset");
    if (!name) {
        pr_csv_clear(&t);
        return pr_cli_fail(cmd, "%s has no '# preset:' line: not written by polyrope sweep", csv);
    }
    /* the script is chosen by an exact match in the table of presets, never by the CSV's text */
    const pr_preset_t *preset = pr_preset_find(name);
    if (!preset) {
        int rc = pr_cli_fail(cmd, "%s names the preset '%.60s', which is not one of polyrope's (polyrope sweep --list)",
                             csv, has_control(name) ? "(unprintable)" : name);
        pr_csv_clear(&t);
        return rc;
    }
    if (!t.nrows) {
        pr_csv_clear(&t);
        return pr_cli_fail(cmd, "%s has no data rows yet: run the sweep first", csv);
    }
    if (!find_script(script, sizeof script, preset)) {
        pr_csv_clear(&t);
        return pr_cli_fail(cmd, "no gnuplot script %s.gp in %s/plots or %s/plots (set POLYROPE_PLOTS to its folder)",
                           preset->name, PR_SOURCE_ROOT, PR_DATADIR);
    }
    char *vars = 0, *base = strndup(csv, len - 4);
    size_t vlen = 0;
    FILE *f = open_memstream(&vars, &vlen);
    if (!f || !base) {
        if (f)
            fclose(f);
        free(vars);
        pr_csv_clear(&t);
        free(base);
        return pr_cli_fail(cmd, "out of memory");
    }
    fprintf(f, "csv=");
    gp_string(f, csv);
    fprintf(f, "; out=");
    gp_string(f, base);
    fprintf(f, "; ");
    /* the PNG's title line; the PDF, for a paper, has none (plots/style.gp) */
    const char *commit = pr_csv_comment(&t, "git commit"), *machine = pr_csv_comment(&t, "machine");
    char stamp[640];
    snprintf(stamp, sizeof stamp, "polyrope %s, %s", commit && !has_control(commit) ? commit : "(unknown commit)",
             machine && !has_control(machine) ? machine : "(unknown machine)");
    fprintf(f, "stamp=");
    gp_string(f, stamp);
    fprintf(f, "; ");
    long bad_row = 0;
    int bad_col = series_vars(f, script, &t, &bad_row);
    fclose(f);
    if (bad_col >= 0) {
        int rc = pr_cli_fail(cmd, "%s: row %ld's %s has a space or control character: not a value polyrope sweep writes",
                             csv, bad_row + 1, t.cols[bad_col]);
        pr_csv_clear(&t);
        free(vars);
        free(base);
        return rc;
    }
    pr_csv_clear(&t);

    int status = 0, rc = 0;
    char *argv[] = {"gnuplot", "-e", vars, script, 0};
    if (pr_child_run(&status, gp, argv, 0)) {
        rc = pr_cli_fail(cmd, "cannot run %s: %s", gp, strerror(errno));
    } else if (!WIFEXITED(status) || WEXITSTATUS(status)) {
        fprintf(stderr, "polyrope plot: gnuplot failed on %s with %s (its messages are above)\n", csv, script);
        rc = 1;
    } else {
        static const char *const ext[] = {".png", ".pdf"};
        for (int i = 0; i < 2 && !rc; i++) {
            char path[4096];
            snprintf(path, sizeof path, "%s%s", base, ext[i]);
            struct stat sb;
            if (stat(path, &sb) || sb.st_size == 0) {
                fprintf(stderr, "polyrope plot: gnuplot wrote no %s\n", path);
                rc = 1;
            } else {
                printf("%s\n", path);
            }
        }
    }
    free(vars);
    free(base);
    return rc;
}

int pr_cmd_plot(int argc, char **argv)
{
    pr_cmd_spec_t spec = {"plot", "CSV...", "Draw PNG and PDF figures from sweep CSVs (FILE.csv -> FILE.png, FILE.pdf).",
                          "The script is plots/<preset>.gp for the CSV's '# preset:' line, which must name one of\n"
                          "polyrope sweep --list (no other script is ever run), found in $POLYROPE_PLOTS, the source\n"
                          "tree, then the installed data folder. Each script reads only the CSV; values from it reach\n"
                          "gnuplot as quoted data, never as code. gnuplot (pngcairo and pdfcairo terminals) must be\n"
                          "on PATH. Prints the files written. Every script loads plots/style.gp: one colour and marker\n"
                          "per algorithm, the PDF 3.3 in wide (one column) with 7 pt text, the PNG the same figure at\n"
                          "250 dpi under a title line naming the commit and machine (from the CSV), which the PDF omits.\n"
                          "example: polyrope sweep factorise --size tiny --out f.csv && polyrope plot f.csv",
                          0, 0};
    char **pos = malloc(sizeof(char *) * (argc + 1));
    int npos, rc = pr_cli_parse(&spec, argc, argv, pos, &npos);
    if (!rc && !npos)
        rc = pr_cli_fail("plot", "give one or more CSV files (polyrope plot --help)");
    for (int i = 0; !rc && i < npos; i++)
        rc = pr_plot_csv(pos[i]);
    free(pos);
    return rc < 0 ? 0 : rc;
}
