/* sweep: grids, configurations, the CSV format, and the resumable/shardable driver. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>
#include "pr_status.h"
#include "pr_timing.h"
#include "pr_version.h"
#include "sweep.h"

static void seterr(char *err, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void seterr(char *err, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, len, fmt, ap);
    va_end(ap);
}

/* ------------------------------------------------------------------ grids */

/* The axes a grid may name, with what their values must be. */
static const struct {
    const char *name, *choices; /* choices NULL: a number; "int": an integer */
} known_axes[] = {
    {"n", "int"}, {"d", "int"}, {"B", 0}, {"Bs", 0}, {"eps", 0}, {"R", 0},
    {"fn", "exp-rel|exp-abs|expneg-abs"}, {"pos", "rope|rope-neox|general|identity"},
    {"algo", "dense|lowrank|fft"}, {"poly", "taylor|chebyshev|minimax"}, {"seed", "int"},
};
enum { NKNOWN = sizeof known_axes / sizeof known_axes[0] };

static int known_axis(const char *name)
{
    for (int i = 0; i < NKNOWN; i++)
        if (!strcmp(known_axes[i].name, name))
            return i;
    return -1;
}

static int in_choices(const char *choices, const char *v)
{
    size_t len = strlen(v);
    for (const char *p = choices; *p;) {
        const char *bar = strchr(p, '|');
        size_t n = bar ? (size_t)(bar - p) : strlen(p);
        if (n == len && !strncmp(p, v, n))
            return 1;
        if (!bar)
            break;
        p = bar + 1;
    }
    return 0;
}

static int push_value(pr_axis_t *a, const char *v)
{
    char **nv = realloc(a->v, sizeof(char *) * (a->nv + 1));
    if (!nv)
        return PR_ENOMEM;
    a->v = nv;
    if (!(a->v[a->nv] = strdup(v)))
        return PR_ENOMEM;
    a->nv++;
    return PR_OK;
}

static int parse_number(double *x, const char *s)
{
    char *end;
    errno = 0;
    *x = strtod(s, &end);
    return !errno && end != s && !*end && isfinite(*x);
}

static int push_number(pr_axis_t *a, double x, int integer, char *err, size_t errlen)
{
    char buf[64];
    if (integer) {
        if (x != floor(x) || fabs(x) > 9e15) {
            seterr(err, errlen, "axis %s takes integers, got %.12g", a->name, x);
            return PR_EINVAL;
        }
        snprintf(buf, sizeof buf, "%.0f", x);
    } else {
        snprintf(buf, sizeof buf, "%.12g", x);
    }
    return push_value(a, buf);
}

/* One item of a value list: a number, a word, or a range A..B*F / A..B+S. */
static int parse_item(pr_axis_t *a, int kind, char *item, char *err, size_t errlen)
{
    const char *choices = known_axes[kind].choices;
    int integer = choices && !strcmp(choices, "int");
    if (choices && !integer) {
        if (!in_choices(choices, item)) {
            seterr(err, errlen, "axis %s takes %s, got '%s'", a->name, choices, item);
            return PR_EINVAL;
        }
        return push_value(a, item);
    }
    char *dots = strstr(item, "..");
    if (!dots) {
        double x;
        if (!parse_number(&x, item)) {
            seterr(err, errlen, "axis %s: '%s' is not a finite number", a->name, item);
            return PR_EINVAL;
        }
        return push_number(a, x, integer, err, errlen);
    }
    *dots = 0;
    char *hi = dots + 2, *op = strpbrk(hi, "*+");
    if (!op) {
        seterr(err, errlen, "axis %s: range '%s..%s' needs a step: A..B*F (geometric) or A..B+S (arithmetic)",
               a->name, item, hi);
        return PR_EINVAL;
    }
    char opc = *op;
    *op = 0;
    double lo, h, step;
    if (!parse_number(&lo, item) || !parse_number(&h, hi) || !parse_number(&step, op + 1)) {
        seterr(err, errlen, "axis %s: range bounds and step must be finite numbers", a->name);
        return PR_EINVAL;
    }
    if (h < lo || (opc == '*' && (lo <= 0 || step <= 1)) || (opc == '+' && step <= 0)) {
        seterr(err, errlen, "axis %s: range %g..%g%c%g is empty or endless (need A <= B, F > 1 with A > 0, S > 0)",
               a->name, lo, h, opc, step);
        return PR_EINVAL;
    }
    /* counting steps avoids accumulating rounding; the slack admits B itself */
    for (long k = 0;; k++) {
        double x = opc == '*' ? lo * pow(step, (double)k) : lo + step * (double)k;
        if (x > h * (1 + 1e-12))
            break;
        if (k >= 100000) {
            seterr(err, errlen, "axis %s: range has more than 100000 values", a->name);
            return PR_EINVAL;
        }
        int st = push_number(a, integer ? round(x) : x, integer, err, errlen);
        if (st)
            return st;
    }
    return PR_OK;
}

const pr_axis_t *pr_grid_axis(const pr_grid_t *g, const char *name)
{
    for (int i = 0; i < g->naxes; i++)
        if (!strcmp(g->ax[i].name, name))
            return &g->ax[i];
    return 0;
}

int pr_grid_parse(pr_grid_t *g, const char *text, char *err, size_t errlen)
{
    memset(g, 0, sizeof *g);
    char *copy = strdup(text), *save = 0;
    if (!copy)
        return PR_ENOMEM;
    int st = PR_OK;
    for (char *part = strtok_r(copy, ";", &save); part && !st; part = strtok_r(0, ";", &save)) {
        while (*part == ' ')
            part++;
        if (!*part)
            continue;
        char *eq = strchr(part, '=');
        if (!eq) {
            seterr(err, errlen, "'%s' is not AXIS=VALUES", part);
            st = PR_EINVAL;
            break;
        }
        *eq = 0;
        int kind = known_axis(part);
        if (kind < 0) {
            seterr(err, errlen, "unknown axis '%s' (axes: n d B Bs eps R fn pos algo poly seed)", part);
            st = PR_EINVAL;
            break;
        }
        if (pr_grid_axis(g, part)) {
            seterr(err, errlen, "axis %s given twice", part);
            st = PR_EINVAL;
            break;
        }
        if (g->naxes == PR_GRID_MAXAXES) {
            st = PR_EINVAL;
            break;
        }
        pr_axis_t *a = &g->ax[g->naxes++];
        if (!(a->name = strdup(part))) {
            st = PR_ENOMEM;
            break;
        }
        char *save2 = 0;
        for (char *item = strtok_r(eq + 1, ",", &save2); item && !st; item = strtok_r(0, ",", &save2)) {
            while (*item == ' ')
                item++;
            char *e = item + strlen(item);
            while (e > item && e[-1] == ' ')
                *--e = 0;
            st = parse_item(a, kind, item, err, errlen);
        }
        if (!st && a->nv == 0) {
            seterr(err, errlen, "axis %s has no values", a->name);
            st = PR_EINVAL;
        }
    }
    free(copy);
    return st;
}

void pr_grid_clear(pr_grid_t *g)
{
    for (int i = 0; i < g->naxes; i++) {
        for (int k = 0; k < g->ax[i].nv; k++)
            free(g->ax[i].v[k]);
        free(g->ax[i].v);
        free(g->ax[i].name);
    }
    g->naxes = 0;
}

int pr_grid_set_axis(pr_grid_t *g, const pr_axis_t *src)
{
    pr_axis_t *a = (pr_axis_t *)pr_grid_axis(g, src->name);
    if (!a) {
        if (g->naxes == PR_GRID_MAXAXES)
            return PR_EINVAL;
        a = &g->ax[g->naxes++];
        memset(a, 0, sizeof *a);
        if (!(a->name = strdup(src->name)))
            return PR_ENOMEM;
    } else {
        for (int k = 0; k < a->nv; k++)
            free(a->v[k]);
        a->nv = 0;
    }
    for (int k = 0; k < src->nv; k++)
        if (push_value(a, src->v[k]))
            return PR_ENOMEM;
    return PR_OK;
}

long pr_grid_count(const pr_grid_t *g)
{
    long c = 1;
    for (int i = 0; i < g->naxes; i++)
        c *= g->ax[i].nv;
    return g->naxes ? c : 0;
}

/* "AXIS=V,V;AXIS=V" of g, or with one value per axis (val) a configuration's key; caller frees */
static char *axes_text(const pr_grid_t *g, const char *const *val)
{
    char *buf = 0;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return 0;
    for (int i = 0; i < g->naxes; i++) {
        fprintf(f, "%s%s=", i ? ";" : "", g->ax[i].name);
        for (int k = 0; k < (val ? 1 : g->ax[i].nv); k++)
            fprintf(f, "%s%s", k ? "," : "", val ? val[i] : g->ax[i].v[k]);
    }
    fclose(f);
    return buf;
}

char *pr_grid_text(const pr_grid_t *g)
{
    return axes_text(g, 0);
}

void pr_cfg_at(pr_cfg_t *c, const pr_grid_t *g, long idx)
{
    c->grid = g;
    c->idx = idx;
    for (int i = g->naxes - 1; i >= 0; i--) {
        c->val[i] = g->ax[i].v[idx % g->ax[i].nv];
        idx /= g->ax[i].nv;
    }
}

const char *pr_cfg_str(const pr_cfg_t *c, const char *axis)
{
    for (int i = 0; i < c->grid->naxes; i++)
        if (!strcmp(c->grid->ax[i].name, axis))
            return c->val[i];
    return 0;
}

double pr_cfg_double(const pr_cfg_t *c, const char *axis)
{
    const char *v = pr_cfg_str(c, axis);
    return v ? strtod(v, 0) : NAN;
}

long pr_cfg_long(const pr_cfg_t *c, const char *axis)
{
    const char *v = pr_cfg_str(c, axis);
    return v ? strtol(v, 0, 10) : -1;
}

char *pr_cfg_key(const pr_cfg_t *c)
{
    return axes_text(c->grid, c->val);
}

const char *pr_verdict_name(pr_verdict_t v)
{
    switch (v) {
    case PR_VERDICT_PASSED: return "passed";
    case PR_VERDICT_FAILED: return "FAILED";
    case PR_VERDICT_INCONCLUSIVE: return "inconclusive";
    case PR_VERDICT_NOT_BUILT: return "not built yet";
    case PR_VERDICT_NOT_RUN: return "not run";
    case PR_VERDICT_INFO: return "info";
    }
    return "?";
}

const pr_preset_t *pr_preset_find(const char *name)
{
    for (int i = 0; i < pr_npresets; i++)
        if (!strcmp(pr_presets[i].name, name))
            return &pr_presets[i];
    return 0;
}

int pr_preset_grid(pr_grid_t *g, const pr_preset_t *p, const char *size, const char *user,
                   char *err, size_t errlen)
{
    const char *base = !strcmp(size, "tiny") ? p->grid_tiny : !strcmp(size, "full") ? p->grid_full : p->grid_quick;
    int st = pr_grid_parse(g, base, err, errlen);
    if (st || !user)
        return st;
    pr_grid_t u;
    st = pr_grid_parse(&u, user, err, errlen);
    for (int i = 0; i < u.naxes && !st; i++) {
        if (!pr_grid_axis(g, u.ax[i].name)) {
            seterr(err, errlen, "preset %s has no axis '%s' (its axes: %s)", p->name, u.ax[i].name, p->axes);
            st = PR_EINVAL;
        } else {
            st = pr_grid_set_axis(g, &u.ax[i]);
        }
    }
    pr_grid_clear(&u);
    return st;
}

/* ------------------------------------------------------------------ CSV */

static int split_fields(char **fields, int max, char *line)
{
    int n = 0;
    for (char *p = line;;) {
        if (n == max)
            return -1;
        fields[n++] = p;
        char *c = strchr(p, ',');
        if (!c)
            break;
        *c = 0;
        p = c + 1;
    }
    return n;
}

void pr_csv_clear(pr_csv_t *t)
{
    for (int i = 0; i < t->ncomments; i++)
        free(t->comments[i]);
    free(t->comments);
    for (int i = 0; i < t->ncols; i++)
        free(t->cols[i]);
    for (long r = 0; r < t->nrows; r++) {
        free(t->rows[r][0]);
        free(t->rows[r]);
        free(t->lines[r]);
    }
    free(t->rows);
    free(t->lines);
    memset(t, 0, sizeof *t);
}

int pr_csv_read(pr_csv_t *t, const char *path, int truncate_torn, char *err, size_t errlen)
{
    memset(t, 0, sizeof *t);
    FILE *f = fopen(path, "r");
    if (!f) {
        seterr(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return PR_EIO;
    }
    char *line = 0;
    size_t cap = 0;
    ssize_t len;
    long good = 0; /* bytes up to the end of the last complete line */
    int st = PR_OK;
    while ((len = getline(&line, &cap, f)) > 0) {
        if (line[len - 1] != '\n')
            break; /* torn: written by a process killed mid-line (not by this driver's single write) */
        good += len;
        line[--len] = 0;
        if (len && line[len - 1] == '\r')
            line[--len] = 0;
        if (line[0] == '#') {
            char **c = realloc(t->comments, sizeof(char *) * (t->ncomments + 1));
            if (!c || !(c[t->ncomments] = strdup(line))) {
                t->comments = c ? c : t->comments;
                st = PR_ENOMEM;
                break;
            }
            t->comments = c;
            t->ncomments++;
            continue;
        }
        if (!len)
            continue;
        if (!t->ncols) {
            char *fields[PR_CSV_MAXCOLS];
            int n = split_fields(fields, PR_CSV_MAXCOLS, line);
            if (n < 0) {
                seterr(err, errlen, "%s: header row has too many columns", path);
                st = PR_EINVAL;
                break;
            }
            for (int i = 0; i < n; i++)
                t->cols[t->ncols++] = strdup(fields[i]);
            continue;
        }
        char *raw = strdup(line), *copy = strdup(line);
        char **fields = malloc(sizeof(char *) * t->ncols);
        char ***rows = realloc(t->rows, sizeof(char **) * (t->nrows + 1));
        if (rows)
            t->rows = rows;
        char **lines = realloc(t->lines, sizeof(char *) * (t->nrows + 1));
        if (lines)
            t->lines = lines;
        if (!raw || !copy || !fields || !rows || !lines) {
            free(raw), free(copy), free(fields);
            st = PR_ENOMEM;
            break;
        }
        int n = split_fields(fields, t->ncols, copy);
        if (n != t->ncols || strchr(fields[t->ncols - 1], ',')) {
            seterr(err, errlen, "%s: a data row has %s fields than the header's %d", path,
                   n < t->ncols ? "fewer" : "more", t->ncols);
            free(raw), free(copy), free(fields);
            st = PR_EINVAL;
            break;
        }
        t->rows[t->nrows] = fields;
        t->lines[t->nrows++] = raw;
    }
    free(line);
    fclose(f);
    if (!st && truncate_torn && truncate(path, good)) {
        seterr(err, errlen, "cannot cut the torn last line of %s: %s", path, strerror(errno));
        st = PR_EIO;
    }
    if (!st && !t->ncols) {
        seterr(err, errlen, "%s has no header row", path);
        st = PR_EINVAL;
    }
    if (st == PR_ENOMEM)
        seterr(err, errlen, "out of memory reading %s", path);
    if (st)
        pr_csv_clear(t);
    return st;
}

int pr_csv_col(const pr_csv_t *t, const char *name)
{
    for (int i = 0; i < t->ncols; i++)
        if (!strcmp(t->cols[i], name))
            return i;
    return -1;
}

const char *pr_csv_comment(const pr_csv_t *t, const char *tag)
{
    size_t len = strlen(tag);
    for (int i = 0; i < t->ncomments; i++) {
        const char *c = t->comments[i];
        if (!strncmp(c, "# ", 2) && !strncmp(c + 2, tag, len) && c[2 + len] == ':')
            return c + 3 + len + (c[3 + len] == ' ');
    }
    return 0;
}

const char *pr_csv_str(const pr_csv_t *t, long r, const char *col)
{
    int c = pr_csv_col(t, col);
    return c < 0 ? 0 : t->rows[r][c];
}

double pr_csv_num(const pr_csv_t *t, long r, const char *col)
{
    const char *s = pr_csv_str(t, r, col);
    char *end;
    if (!s)
        return NAN;
    double x = strtod(s, &end);
    return end == s || *end ? NAN : x;
}

/* ------------------------------------------------------------------ the driver */

char *pr_sweep_cmdline(int argc, char **argv)
{
    char *buf = 0;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return 0;
    fputs("polyrope", f);
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strpbrk(a, " ;\"'*$") || !*a)
            fprintf(f, " \"%s\"", a);
        else
            fprintf(f, " %s", a);
    }
    fclose(f);
    /* the header is line-based: keep the command on one line */
    for (char *p = buf; p && *p; p++)
        if (*p == '\n')
            *p = ' ';
    return buf;
}

void pr_machine_string(char *buf, size_t len)
{
    struct utsname u;
    char cpu[160] = "unknown cpu";
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f) {
        char line[512];
        while (fgets(line, sizeof line, f))
            if (!strncmp(line, "model name", 10)) {
                char *c = strchr(line, ':');
                if (c) {
                    snprintf(cpu, sizeof cpu, "%s", c + 2);
                    cpu[strcspn(cpu, "\n")] = 0;
                }
                break;
            }
        fclose(f);
    }
    if (uname(&u))
        snprintf(u.sysname, sizeof u.sysname, "unknown"), u.release[0] = u.machine[0] = 0;
    snprintf(buf, len, "%s %s %s, %s, %ld cores", u.sysname, u.release, u.machine, cpu,
             sysconf(_SC_NPROCESSORS_ONLN));
}

/* the whole buffer in one write(2) and then fsync: a row is in the file completely or not at all */
static int write_all_sync(int fd, const char *buf, size_t len)
{
    ssize_t w = write(fd, buf, len);
    if (w != (ssize_t)len)
        return PR_EIO;
    return fsync(fd) ? PR_EIO : PR_OK;
}

static char *header_text(const pr_preset_t *p, const pr_grid_t *g, const pr_sweep_opts_t *o)
{
    char *buf = 0, *grid = pr_grid_text(g), machine[512];
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f || !grid) {
        if (f)
            fclose(f);
        free(buf);
        free(grid);
        return 0;
    }
    pr_machine_string(machine, sizeof machine);
    fprintf(f, "# polyrope sweep: a self-describing CSV (lines starting with # are comments)\n");
    pr_version_fprint(f, "# ");
    fprintf(f, "# machine: %s\n# preset: %s\n# claims: %s\n# grid: %s\n# configurations: %ld\n",
            machine, p->name, p->claims, grid, pr_grid_count(g));
    if (o->shard_n > 1)
        fprintf(f, "# shard: %ld/%ld\n", o->shard_k, o->shard_n);
    fprintf(f, "# seed: the seed column of each row\n# command: %s\n", o->command ? o->command : "polyrope sweep");
    fprintf(f, "idx,key");
    for (int i = 0; i < g->naxes; i++)
        fprintf(f, ",%s", g->ax[i].name);
    fprintf(f, ",status,%s\n", p->columns);
    fclose(f);
    free(grid);
    return buf;
}

/* 1 if the file is what a run killed while writing the header leaves: shorter than a header,
 * starting as every sweep's first line does (pr_csv_read has found no header row in it) */
static int torn_header(const char *path, const char *header)
{
    char buf[8192];
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    size_t first = strcspn(header, "\n");
    return n < strlen(header) && !memcmp(buf, header, n < first ? n : first);
}

/* Does the existing file belong to this sweep? Compares the tagged lines and the header row. */
static int same_sweep(const pr_csv_t *t, const char *header, char *why, size_t len)
{
    static const char *const tags[] = {"preset", "grid", "shard"};
    int ok = 1;
    for (int k = 0; k < 3 && ok; k++) {
        char needle[32];
        snprintf(needle, sizeof needle, "# %s: ", tags[k]);
        const char *mine = strstr(header, needle);
        const char *theirs = pr_csv_comment(t, tags[k]);
        size_t ml = mine ? strcspn(mine + strlen(needle), "\n") : 0;
        if ((mine == 0) != (theirs == 0) ||
            (mine && (strlen(theirs) != ml || strncmp(theirs, mine + strlen(needle), ml)))) {
            snprintf(why, len, "its '%s' line differs", tags[k]);
            ok = 0;
        }
    }
    if (ok) {
        /* the header row is the last line of header */
        const char *last = header + strlen(header) - 1, *start = last;
        while (start > header && start[-1] != '\n')
            start--;
        size_t hl = (size_t)(last - start);
        char *joined = 0;
        size_t jl = 0;
        FILE *f = open_memstream(&joined, &jl);
        for (int i = 0; f && i < t->ncols; i++)
            fprintf(f, "%s%s", i ? "," : "", t->cols[i]);
        if (f)
            fclose(f);
        if (!joined || jl != hl || strncmp(joined, start, hl)) {
            snprintf(why, len, "its columns differ");
            ok = 0;
        }
        free(joined);
    }
    return ok;
}

/* rate and ETA count only the rows computed in this run, not those a resume skipped */
static void progress_line(const pr_preset_t *p, long done, long total, long computed, double elapsed, int final)
{
    double rate = elapsed > 0 ? computed / elapsed : 0;
    double eta = rate > 0 ? (total - done) / rate : 0;
    fprintf(stderr, "\rpolyrope sweep %s: %ld/%ld rows, %.2f rows/s, ETA %ld:%02ld   %s", p->name, done,
            total, rate, (long)eta / 60, (long)eta % 60, final ? "\n" : "");
    fflush(stderr);
}

static int in_shard(long idx, const pr_sweep_opts_t *o)
{
    return o->shard_n <= 1 || idx % o->shard_n == o->shard_k - 1;
}

static int key_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int pr_sweep_run(const pr_preset_t *p, const pr_grid_t *g, const pr_sweep_opts_t *o)
{
    const char *cmd = "sweep";
    long total = pr_grid_count(g), mine = 0;
    for (long i = 0; i < total; i++)
        mine += in_shard(i, o);
    char *header = header_text(p, g, o);
    if (!header) {
        fprintf(stderr, "polyrope %s: out of memory\n", cmd);
        return 1;
    }
    int ncols = 0;
    for (const char *c = p->columns; c; c = strchr(c, ','), c = c ? c + 1 : 0)
        ncols++;

    char **done = 0; /* finished keys, pointing into keys */
    long ndone = 0;
    pr_csv_t keys = {0};
    struct stat sb;
    int exists = stat(o->out, &sb) == 0;
    int rc = 0;
    if (exists && !o->resume) {
        fprintf(stderr, "polyrope %s: %s exists; add --resume to continue it, or remove it to start again\n", cmd,
                o->out);
        free(header);
        return 2;
    }
    int fresh = !exists;
    if (exists) {
        pr_csv_t t;
        char err[512], why[128];
        /* look before cutting anything: only a file of this very sweep is touched */
        int st = pr_csv_read(&t, o->out, 0, err, sizeof err);
        if (st == PR_EINVAL && torn_header(o->out, header)) {
            fresh = 1; /* killed while writing the header: nothing to keep */
        } else if (st) {
            fprintf(stderr, "polyrope %s: cannot resume: %s\n", cmd, err);
            free(header);
            return 2;
        } else if (!same_sweep(&t, header, why, sizeof why)) {
            fprintf(stderr, "polyrope %s: cannot resume %s: %s from this sweep; use another --out\n", cmd, o->out,
                    why);
            pr_csv_clear(&t);
            free(header);
            return 2;
        } else {
            /* ours: read it again, now cutting a torn last line off the file */
            pr_csv_clear(&t);
            st = pr_csv_read(&t, o->out, 1, err, sizeof err);
            done = st ? 0 : malloc(sizeof(char *) * (t.nrows + 1));
            if (!done) {
                fprintf(stderr, "polyrope %s: cannot resume: %s\n", cmd, st ? err : "out of memory");
                if (!st)
                    pr_csv_clear(&t);
                free(header);
                return st ? 2 : 1;
            }
            int kc = pr_csv_col(&t, "key");
            for (long r = 0; r < t.nrows; r++)
                done[ndone++] = t.rows[r][kc];
            qsort(done, ndone, sizeof(char *), key_cmp);
            keys = t;
        }
    }
    int fd = open(o->out, O_WRONLY | O_CREAT | O_APPEND | (fresh ? O_TRUNC : 0), 0644);
    if (fd < 0) {
        fprintf(stderr, "polyrope %s: cannot write %s: %s\n", cmd, o->out, strerror(errno));
        rc = 1;
        goto out;
    }
    if (fresh && write_all_sync(fd, header, strlen(header))) {
        fprintf(stderr, "polyrope %s: cannot write %s: %s\n", cmd, o->out, strerror(errno));
        rc = 1;
        goto out;
    }
    int show = o->progress < 0 ? isatty(2) : o->progress;
    double t0 = pr_timing_wall(), last = 0;
    long count = 0, skipped = 0;
    double *vals = malloc(sizeof(double) * ncols);
    if (!vals) {
        rc = 1;
        goto out;
    }
    for (long idx = 0; idx < total && !rc; idx++) {
        if (!in_shard(idx, o))
            continue;
        pr_cfg_t cfg;
        pr_cfg_at(&cfg, g, idx);
        char *key = pr_cfg_key(&cfg);
        if (!key) {
            rc = 1;
            break;
        }
        if (ndone && bsearch(&key, done, ndone, sizeof(char *), key_cmp)) {
            free(key);
            skipped++;
            count++;
            continue;
        }
        for (int k = 0; k < ncols; k++)
            vals[k] = NAN;
        int st = p->row(vals, &cfg);
        char *line = 0;
        size_t ll = 0;
        FILE *f = open_memstream(&line, &ll);
        if (!f) {
            free(key);
            rc = 1;
            break;
        }
        fprintf(f, "%ld,%s", idx, key);
        for (int i = 0; i < g->naxes; i++)
            fprintf(f, ",%s", cfg.val[i]);
        if (st) {
            /* the status text, kept to one CSV field */
            char msg[160];
            snprintf(msg, sizeof msg, "%s", pr_strerror(st));
            for (char *c = msg; *c; c++)
                if (*c == ',')
                    *c = ';';
            fprintf(f, ",%s", msg);
        } else {
            fprintf(f, ",ok");
        }
        for (int k = 0; k < ncols; k++)
            fprintf(f, ",%.10g", st ? NAN : vals[k]);
        fputc('\n', f);
        fclose(f);
        free(key);
        if (!line || write_all_sync(fd, line, ll)) {
            fprintf(stderr, "polyrope %s: cannot write a row to %s: %s\n", cmd, o->out, strerror(errno));
            rc = 1;
        }
        free(line);
        count++;
        double t = pr_timing_wall();
        if (show && t - last > 0.2 && count < mine) {
            progress_line(p, count, mine, count - skipped, t - t0, 0);
            last = t;
        }
    }
    if (show && !rc)
        progress_line(p, count, mine, count - skipped, pr_timing_wall() - t0, 1);
    free(vals);
out:
    if (fd >= 0)
        close(fd);
    free(done);
    pr_csv_clear(&keys);
    free(header);
    return rc;
}

/* ------------------------------------------------------------------ merge */

typedef struct {
    long idx;
    const char *line, *key;
} merge_row_t;

static int merge_cmp(const void *a, const void *b)
{
    const merge_row_t *x = a, *y = b;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

int pr_sweep_merge(const char *out, char **in, int nin, const char *command)
{
    const char *cmd = "sweep --merge";
    if (nin < 1)
        return fprintf(stderr, "polyrope %s: give the shard CSVs to merge after OUT.csv\n", cmd), 2;
    pr_csv_t *t = calloc(nin, sizeof *t);
    merge_row_t *rows = 0;
    long nrows = 0;
    int rc = 0;
    char err[512];
    if (!t)
        return 1;
    for (int i = 0; i < nin && !rc; i++) {
        if (pr_csv_read(&t[i], in[i], 0, err, sizeof err)) {
            fprintf(stderr, "polyrope %s: %s\n", cmd, err);
            rc = 2;
            break;
        }
        static const char *const tags[] = {"preset", "grid"};
        for (int k = 0; k < 2 && !rc; k++) {
            const char *a = pr_csv_comment(&t[0], tags[k]), *b = pr_csv_comment(&t[i], tags[k]);
            if (!a || !b || strcmp(a, b)) {
                fprintf(stderr, "polyrope %s: %s and %s come from different sweeps (their '%s' lines differ)\n", cmd,
                        in[0], in[i], tags[k]);
                rc = 2;
            }
        }
        int same = t[i].ncols == t[0].ncols;
        for (int c = 0; same && c < t[0].ncols; c++)
            same = !strcmp(t[i].cols[c], t[0].cols[c]);
        if (!rc && !same) {
            fprintf(stderr, "polyrope %s: %s and %s have different columns\n", cmd, in[0], in[i]);
            rc = 2;
        }
        if (!rc && (pr_csv_col(&t[i], "idx") != 0 || pr_csv_col(&t[i], "key") != 1)) {
            fprintf(stderr, "polyrope %s: %s is not a polyrope sweep CSV (no idx,key columns)\n", cmd, in[i]);
            rc = 2;
        }
        merge_row_t *nr = rc ? 0 : realloc(rows, sizeof *rows * (nrows + t[i].nrows + 1));
        if (!rc && !nr)
            rc = 1;
        if (nr)
            rows = nr;
        for (long r = 0; !rc && r < t[i].nrows; r++)
            rows[nrows++] = (merge_row_t){strtol(t[i].rows[r][0], 0, 10), t[i].lines[r], t[i].rows[r][1]};
    }
    FILE *f = 0;
    char *tmp = 0;
    if (!rc) {
        qsort(rows, nrows, sizeof *rows, merge_cmp);
        if (asprintf(&tmp, "%s.tmp.%ld", out, (long)getpid()) < 0 || !(f = fopen(tmp, "w"))) {
            fprintf(stderr, "polyrope %s: cannot write %s: %s\n", cmd, tmp ? tmp : out, strerror(errno));
            rc = 1;
        }
    }
    if (!rc) {
        for (int c = 0; c < t[0].ncomments; c++) {
            const char *line = t[0].comments[c];
            if (strncmp(line, "# shard:", 8) && strncmp(line, "# command:", 10) && strncmp(line, "# merged", 8))
                fprintf(f, "%s\n", line);
        }
        fprintf(f, "# merged from %d files\n# command: %s\n", nin, command);
        for (int c = 0; c < t[0].ncols; c++)
            fprintf(f, "%s%s", c ? "," : "", t[0].cols[c]);
        fputc('\n', f);
        long kept = 0, dups = 0;
        for (long r = 0; r < nrows; r++) {
            if (r && rows[r].idx == rows[r - 1].idx) {
                dups++;
                if (strcmp(rows[r].key, rows[r - 1].key)) {
                    fprintf(stderr, "polyrope %s: rows with idx %ld have different keys (%s, %s)\n", cmd,
                            rows[r].idx, rows[r - 1].key, rows[r].key);
                    rc = 2;
                }
                continue;
            }
            fprintf(f, "%s\n", rows[r].line);
            kept++;
        }
        if (fflush(f) || fsync(fileno(f)))
            rc = 1;
        if (fclose(f))
            rc = 1;
        if (!rc && rename(tmp, out)) {
            fprintf(stderr, "polyrope %s: cannot rename %s to %s: %s\n", cmd, tmp, out, strerror(errno));
            rc = 1;
        }
        if (rc)
            unlink(tmp);
        const char *conf = pr_csv_comment(&t[0], "configurations");
        long want = conf ? strtol(conf, 0, 10) : kept;
        if (!rc && kept < want)
            fprintf(stderr, "polyrope %s: warning: %s has %ld of %ld configurations (a shard missing or unfinished?)\n",
                    cmd, out, kept, want);
        if (!rc && dups)
            fprintf(stderr, "polyrope %s: %ld duplicate rows dropped\n", cmd, dups);
    }
    free(tmp);
    free(rows);
    for (int i = 0; i < nin; i++)
        pr_csv_clear(&t[i]);
    free(t);
    return rc;
}
