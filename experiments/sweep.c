/* sweep: grids, configurations, the CSV format, and the resumable/shardable driver. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>
#include "pr_status.h"
#include "pr_timing.h"
#include "pr_xversion.h"
#include "cli.h"
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

/* What the values of an axis must be: words from a list, or numbers in a range. The ranges of
 * n, d, B and seed are attn's (--n, --d, --B, --seed); seeds stop at 2^53, the last integer a
 * grid value (a double) holds exactly. A preset narrows these with its limits. */
enum { DOM_INT = 1, DOM_EVEN = 2, DOM_OPEN_LO = 4, DOM_OPEN_HI = 8 };
typedef struct {
    const char *name;
    const char *words;   /* "a|b|c", or NULL for numbers */
    double lo, hi;
    unsigned flags;
} domain_t;

static const domain_t domains[] = {
    {"n", 0, 1, 1 << 26, DOM_INT},
    {"d", 0, 1, 1 << 16, DOM_INT},
    {"B", 0, 0, 1e150, DOM_OPEN_LO},
    {"Bs", 0, 0, 1e150, DOM_OPEN_LO},
    {"eps", 0, 0, 1, DOM_OPEN_LO | DOM_OPEN_HI},
    {"R", 0, 0, 1e150, DOM_OPEN_LO},
    {"fn", "exp-rel|exp-abs|expneg-abs", 0, 0, 0},
    {"pos", "rope|rope-neox|general|identity", 0, 0, 0},
    {"algo", "dense|lowrank|fft", 0, 0, 0},
    {"poly", "taylor|chebyshev|minimax", 0, 0, 0},
    {"seed", 0, 0, 9007199254740992.0, DOM_INT},
};
enum { NDOMAINS = sizeof domains / sizeof domains[0] };

static const domain_t *domain_of(const char *name)
{
    for (int i = 0; i < NDOMAINS; i++)
        if (!strcmp(domains[i].name, name))
            return &domains[i];
    return 0;
}

/* is v one of the '|'-separated words? */
static int in_words(const char *words, const char *v)
{
    size_t len = strlen(v);
    for (const char *p = words; *p;) {
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

static int in_domain(const domain_t *d, double x)
{
    if (d->flags & DOM_INT && x != floor(x))
        return 0;
    if (d->flags & DOM_EVEN && fmod(x, 2) != 0)
        return 0;
    return (d->flags & DOM_OPEN_LO ? x > d->lo : x >= d->lo) && (d->flags & DOM_OPEN_HI ? x < d->hi : x <= d->hi);
}

/* "integers in [1, 67108864]", "numbers in (0, 1)", "one of rope|general" */
static void domain_text(char *buf, size_t len, const domain_t *d)
{
    if (d->words)
        snprintf(buf, len, "one of %s", d->words);
    else
        snprintf(buf, len, "%s in %c%.16g, %.16g%c", d->flags & DOM_EVEN ? "even integers" : d->flags & DOM_INT ? "integers" : "numbers",
                 d->flags & DOM_OPEN_LO ? '(' : '[', d->lo, d->hi, d->flags & DOM_OPEN_HI ? ')' : ']');
}

void pr_grid_domains(FILE *f, const char *indent)
{
    for (int i = 0; i < NDOMAINS; i++) {
        char buf[128];
        domain_text(buf, sizeof buf, &domains[i]);
        fprintf(f, "%s%-5s %s\n", indent, domains[i].name, buf);
    }
}

/* a->v holds a power of two at least a->nv pointers: it doubles when a->nv reaches one */
static int push_value(pr_axis_t *a, const char *v)
{
    if (!(a->nv & (a->nv - 1))) {
        char **nv = realloc(a->v, sizeof(char *) * (a->nv ? 2 * (size_t)a->nv : 1));
        if (!nv)
            return PR_ENOMEM;
        a->v = nv;
    }
    if (!(a->v[a->nv] = strdup(v)))
        return PR_ENOMEM;
    a->nv++;
    return PR_OK;
}

/* why text s is not a finite double, or NULL when it is one (a subnormal such as 5e-324 is) */
static const char *number_why(double *x, const char *s)
{
    char *end;
    errno = 0;
    *x = strtod(s, &end);
    if (end == s || *end || isnan(*x))
        return "is not a number";
    if (isinf(*x))
        return errno == ERANGE ? "is past the largest double (1.8e308)" : "is not finite";
    if (errno == ERANGE && *x == 0)
        return "is below the least double (4.9e-324): it would be 0";
    return 0;
}

static int parse_number(double *x, const char *s)
{
    return !number_why(x, s);
}

/* the canonical text of x on axis a: integers in full, other numbers as %.12g */
static int number_text(char *buf, size_t len, const pr_axis_t *a, const domain_t *d, double x, char *err, size_t errlen)
{
    if (!in_domain(d, x)) {
        char what[128];
        domain_text(what, sizeof what, d);
        seterr(err, errlen, "axis %s takes %s, got %.17g", a->name, what, x);
        return PR_EINVAL;
    }
    snprintf(buf, len, d->flags & DOM_INT ? "%.0f" : "%.12g", x);
    return PR_OK;
}

/* the budget refusal: "WHAT has [at least] COUNT NOUN, more than the cap ..." */
static int too_many(char *err, size_t errlen, const char *what, const char *atleast, double count, const char *noun, long max)
{
    seterr(err, errlen, "%s has %s%.*g %s, more than the cap of %ld configurations (--max-configs raises it; or narrow "
           "the grid)", what, atleast, count < 1e15 ? 15 : 4, count, noun, max);
    return PR_EBUDGET;
}

/* One item of a value list: a number, a word, or a range A..B*F / A..B+S. Values of a range
 * that round to the one before are dropped (and counted); at most max values in all. */
static int parse_item(pr_axis_t *a, const domain_t *d, char *item, long max, char *err, size_t errlen)
{
    char buf[64], what[160];
    if (d->words) {
        if (!in_words(d->words, item)) {
            seterr(err, errlen, "axis %s takes one of %s, got '%s'", a->name, d->words, item);
            return PR_EINVAL;
        }
        return a->nv >= max ? too_many(err, errlen, a->name, "more than ", (double)max, "values", max)
                            : push_value(a, item);
    }
    char *dots = strstr(item, "..");
    if (!dots) {
        double x;
        const char *why = number_why(&x, item);
        if (why) {
            seterr(err, errlen, "axis %s: '%s' %s", a->name, item, why);
            return PR_EINVAL;
        }
        int st = number_text(buf, sizeof buf, a, d, x, err, errlen);
        if (!st && a->nv >= max)
            st = too_many(err, errlen, a->name, "more than ", (double)max, "values", max);
        return st ? st : push_value(a, buf);
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
    const char *text[3] = {item, hi, op + 1}, *why = 0;
    double *num[3] = {&lo, &h, &step};
    for (int k = 0; k < 3 && !why; k++)
        if ((why = number_why(num[k], text[k]))) {
            seterr(err, errlen, "axis %s: range %s..%s%c%s: '%s' %s", a->name, item, hi, opc, op + 1, text[k], why);
            return PR_EINVAL;
        }
    if (h < lo || (opc == '*' && (lo <= 0 || step <= 1)) || (opc == '+' && step <= 0)) {
        seterr(err, errlen, "axis %s: range %g..%g%c%g is empty or endless (need A <= B, F > 1 with A > 0, S > 0)",
               a->name, lo, h, opc, step);
        return PR_EINVAL;
    }
    /* its length before any value is made; the slack admits B itself despite rounding */
    double q = opc == '*' ? log(h / lo) / log(step) : (h - lo) / step;
    if (!(q + 1 <= (double)(max - a->nv))) {
        snprintf(what, sizeof what, "axis %s: range %g..%g%c%g", a->name, lo, h, opc, step);
        return too_many(err, errlen, what, "", floor(q + 1e-9) + 1, "values", max);
    }
    long count = (long)floor(q + 1e-9) + 1;
    for (long k = 0; k < count; k++) {
        /* counting steps avoids accumulating rounding */
        double x = opc == '*' ? lo * pow(step, (double)k) : lo + step * (double)k;
        int st = number_text(buf, sizeof buf, a, d, d->flags & DOM_INT ? round(x) : x, err, errlen);
        if (st)
            return st;
        if (k && !strcmp(buf, a->v[a->nv - 1]))
            a->merged++;
        else if ((st = push_value(a, buf)))
            return st;
    }
    return PR_OK;
}

static int str_cmp(const void *x, const void *y)
{
    return strcmp(*(char *const *)x, *(char *const *)y);
}

/* a value given twice would make two rows with one key */
static int check_repeats(const pr_axis_t *a, char *err, size_t errlen)
{
    char **s = malloc(sizeof(char *) * (a->nv ? a->nv : 1));
    if (!s)
        return PR_ENOMEM;
    memcpy(s, a->v, sizeof(char *) * a->nv);
    qsort(s, a->nv, sizeof(char *), str_cmp);
    int st = PR_OK;
    for (int k = 1; k < a->nv && !st; k++)
        if (!strcmp(s[k], s[k - 1])) {
            seterr(err, errlen, "axis %s: value %s is given twice", a->name, s[k]);
            st = PR_EINVAL;
        }
    free(s);
    return st;
}

const pr_axis_t *pr_grid_axis(const pr_grid_t *g, const char *name)
{
    for (int i = 0; i < g->naxes; i++)
        if (!strcmp(g->ax[i].name, name))
            return &g->ax[i];
    return 0;
}

static char *trim(char *s)
{
    while (*s == ' ')
        s++;
    char *e = s + strlen(s);
    while (e > s && e[-1] == ' ')
        *--e = 0;
    return s;
}

int pr_grid_parse_max(pr_grid_t *g, const char *text, long max, char *err, size_t errlen)
{
    memset(g, 0, sizeof *g);
    if (max < 1)
        max = PR_GRID_MAX_CONFIGS;
    char *copy = strdup(text), *save = 0;
    if (!copy)
        return PR_ENOMEM;
    int st = PR_OK;
    long configs = 1;
    for (char *part = strtok_r(copy, ";", &save); part && !st; part = strtok_r(0, ";", &save)) {
        part = trim(part);
        if (!*part)
            continue;
        char *eq = strchr(part, '=');
        if (!eq) {
            seterr(err, errlen, "'%s' is not AXIS=VALUES", part);
            st = PR_EINVAL;
            break;
        }
        *eq = 0;
        char *name = trim(part);
        const domain_t *d = domain_of(name);
        if (!d) {
            seterr(err, errlen, "unknown axis '%s' (axes: n d B Bs eps R fn pos algo poly seed)", name);
            st = PR_EINVAL;
            break;
        }
        if (pr_grid_axis(g, name)) {
            seterr(err, errlen, "axis %s given twice", name);
            st = PR_EINVAL;
            break;
        }
        /* every axis is distinct and known: there are fewer of them than PR_GRID_MAXAXES */
        pr_axis_t *a = &g->ax[g->naxes++];
        if (!(a->name = strdup(name))) {
            st = PR_ENOMEM;
            break;
        }
        /* strsep, not strtok: "8,,16" has an empty item, a typo to refuse rather than skip */
        if (!*trim(eq + 1)) {
            seterr(err, errlen, "axis %s has no values", a->name);
            st = PR_EINVAL;
        }
        for (char *rest = eq + 1, *item; !st && (item = strsep(&rest, ","));) {
            if (!*(item = trim(item))) {
                seterr(err, errlen, "axis %s: an empty value (two commas, or one at an end?)", a->name);
                st = PR_EINVAL;
            } else {
                st = parse_item(a, d, item, max, err, errlen);
            }
        }
        if (!st && !a->nv) { /* every item adds a value: kept against a division by zero below */
            seterr(err, errlen, "axis %s has no values", a->name);
            st = PR_EINVAL;
        }
        if (!st)
            st = check_repeats(a, err, errlen);
        /* the product so far, checked without overflow */
        if (!st && configs > max / a->nv)
            st = too_many(err, errlen, "the grid", "at least ", (double)configs * a->nv, "configurations", max);
        if (!st)
            configs *= a->nv;
    }
    free(copy);
    return st;
}

int pr_grid_parse(pr_grid_t *g, const char *text, char *err, size_t errlen)
{
    return pr_grid_parse_max(g, text, PR_GRID_MAX_CONFIGS, err, errlen);
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
    a->merged = src->merged;
    return PR_OK;
}

long pr_grid_count(const pr_grid_t *g)
{
    long c = 1;
    for (int i = 0; i < g->naxes; i++) {
        if (g->ax[i].nv <= 0)
            return 0;
        c = c > LONG_MAX / g->ax[i].nv ? LONG_MAX : c * g->ax[i].nv;
    }
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

/* is name one of the comma-separated axes in list? */
static int axis_listed(const char *list, const char *name)
{
    size_t len = strlen(name);
    for (const char *p = list; p; p = strchr(p, ','), p = p ? p + 1 : 0)
        if (!strncmp(p, name, len) && (p[len] == ',' || !p[len]))
            return 1;
    return 0;
}

/* d narrowed by the limits of preset p on axis a (text "AXIS>=X;AXIS=even;AXIS=W|W") */
static int preset_domain(domain_t *d, const pr_preset_t *p, const char *axis, char *words, size_t wlen,
                         char *err, size_t errlen)
{
    size_t len = strlen(axis);
    for (const char *l = p->limits; l && *l;) {
        size_t n = strcspn(l, ";");
        char item[128];
        snprintf(item, sizeof item, "%.*s", (int)n, l);
        l += n + (l[n] == ';');
        if (strncmp(item, axis, len) || !item[len] || !strchr("<>=", item[len]))
            continue;
        const char *op = item + len, *v = op + 1 + (op[1] == '=');
        double x;
        if (!strcmp(op, "=even") && !d->words) {
            d->flags |= DOM_INT | DOM_EVEN;
            d->lo = 2 * ceil(d->lo / 2);
        } else if (op[0] == '=' && d->words) {
            snprintf(words, wlen, "%s", v);
            d->words = words;
        } else if (op[0] != '=' && !d->words && parse_number(&x, v)) {
            int strict = op[1] != '=';
            if (op[0] == '>' && x >= d->lo)
                d->lo = x, d->flags = (d->flags & ~DOM_OPEN_LO) | (strict ? DOM_OPEN_LO : 0);
            if (op[0] == '<' && x <= d->hi)
                d->hi = x, d->flags = (d->flags & ~DOM_OPEN_HI) | (strict ? DOM_OPEN_HI : 0);
        } else {
            seterr(err, errlen, "preset %s: bad limit '%s'", p->name, item);
            return PR_EINVAL;
        }
    }
    return PR_OK;
}

int pr_sweep_check(const pr_preset_t *p, const pr_grid_t *g, long max, char *err, size_t errlen)
{
    if (max < 1)
        max = PR_GRID_MAX_CONFIGS;
    for (int i = 0; i < g->naxes; i++)
        if (!axis_listed(p->axes, g->ax[i].name)) {
            seterr(err, errlen, "axis %s is not one of preset %s's (axes: %s)", g->ax[i].name, p->name, p->axes);
            return PR_EINVAL;
        }
    char axes[128];
    snprintf(axes, sizeof axes, "%s", p->axes);
    for (char *sv = 0, *a = strtok_r(axes, ",", &sv); a; a = strtok_r(0, ",", &sv))
        if (!pr_grid_axis(g, a)) {
            seterr(err, errlen, "the grid must give axis %s (preset %s needs: %s)", a, p->name, p->axes);
            return PR_EINVAL;
        }
    int odd_d = 0, paired = 0;
    for (int i = 0; i < g->naxes; i++) {
        const pr_axis_t *a = &g->ax[i];
        const domain_t *d0 = domain_of(a->name);
        if (!d0) {
            seterr(err, errlen, "unknown axis '%s'", a->name);
            return PR_EINVAL;
        }
        domain_t d = *d0;
        char words[128], what[160];
        int st = preset_domain(&d, p, a->name, words, sizeof words, err, errlen);
        if (st)
            return st;
        domain_text(what, sizeof what, &d);
        for (int k = 0; k < a->nv; k++) {
            double x = NAN;
            if (d.words ? !in_words(d.words, a->v[k]) : !parse_number(&x, a->v[k]) || !in_domain(&d, x)) {
                seterr(err, errlen, "axis %s of preset %s takes %s, got %s", a->name, p->name, what, a->v[k]);
                return PR_EINVAL;
            }
            if (!strcmp(a->name, "d") && fmod(x, 2) != 0)
                odd_d = (int)x;
            if (!strcmp(a->name, "pos") && strcmp(a->v[k], "identity"))
                paired = k + 1;
        }
    }
    /* RoPE and the general W act on pairs of coordinates (2x2 blocks): only identity takes odd d */
    if (odd_d && paired) {
        seterr(err, errlen, "axis d: %d is odd, but pos=%s pairs coordinates: give even d (odd d only with pos=identity)",
               odd_d, pr_grid_axis(g, "pos")->v[paired - 1]);
        return PR_EINVAL;
    }
    long count = pr_grid_count(g);
    return count > max ? too_many(err, errlen, "the grid", "", (double)count, "configurations", max) : PR_OK;
}

int pr_preset_grid_max(pr_grid_t *g, const pr_preset_t *p, const char *size, const char *user, long max,
                       char *err, size_t errlen)
{
    const char *base = !strcmp(size, "tiny") ? p->grid_tiny : !strcmp(size, "full") ? p->grid_full : p->grid_quick;
    int st = pr_grid_parse_max(g, base, max, err, errlen);
    if (!st && user) {
        pr_grid_t u;
        st = pr_grid_parse_max(&u, user, max, err, errlen);
        for (int i = 0; i < u.naxes && !st; i++) {
            if (!pr_grid_axis(g, u.ax[i].name)) {
                seterr(err, errlen, "preset %s has no axis '%s' (its axes: %s)", p->name, u.ax[i].name, p->axes);
                st = PR_EINVAL;
            } else {
                st = pr_grid_set_axis(g, &u.ax[i]);
            }
        }
        pr_grid_clear(&u);
    }
    return st ? st : pr_sweep_check(p, g, max, err, errlen);
}

int pr_preset_grid(pr_grid_t *g, const pr_preset_t *p, const char *size, const char *user,
                   char *err, size_t errlen)
{
    return pr_preset_grid_max(g, p, size, user, 0, err, errlen);
}

/* ------------------------------------------------------------------ CSV */

/* Splits line at commas into at most max fields; -1 if it has more. */
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
    free(t->lineno);
    memset(t, 0, sizeof *t);
}

/* room for one more of n items in *arr of capacity *cap (doubling: no quadratic copying) */
static int grow(void **arr, long *cap, long n, size_t size)
{
    if (n < *cap)
        return PR_OK;
    long c = *cap ? 2 * *cap : 16;
    void *p = realloc(*arr, size * (size_t)c);
    if (!p)
        return PR_ENOMEM;
    *arr = p;
    *cap = c;
    return PR_OK;
}

/* the header row into t->cols; refuses too many columns and a column named twice */
static int csv_header(pr_csv_t *t, char *line, const char *path, long ln, char *err, size_t errlen)
{
    char *fields[PR_CSV_MAXCOLS];
    int n = split_fields(fields, PR_CSV_MAXCOLS, line);
    if (n < 0) {
        seterr(err, errlen, "%s: line %ld: the header row has more than %d columns", path, ln, PR_CSV_MAXCOLS);
        return PR_EINVAL;
    }
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < i; j++)
            if (!strcmp(fields[i], fields[j])) {
                seterr(err, errlen, "%s: line %ld: the header row names column '%.40s' twice", path, ln, fields[i]);
                return PR_EINVAL;
            }
        if (!(t->cols[t->ncols] = strdup(fields[i])))
            return PR_ENOMEM;
        t->ncols++;
    }
    return PR_OK;
}

/* one data row of exactly t->ncols fields */
static int csv_row(pr_csv_t *t, long *cap, const char *line, const char *path, long ln, char *err, size_t errlen)
{
    long c1 = *cap, c2 = *cap, c3 = *cap;
    if (grow((void **)&t->rows, &c1, t->nrows, sizeof(char **)) || grow((void **)&t->lines, &c2, t->nrows, sizeof(char *)) ||
        grow((void **)&t->lineno, &c3, t->nrows, sizeof(long)))
        return PR_ENOMEM;
    *cap = c1; /* all three grew alike */
    char *raw = strdup(line), *copy = strdup(line);
    char **fields = malloc(sizeof(char *) * t->ncols);
    if (!raw || !copy || !fields) {
        free(raw), free(copy), free(fields);
        return PR_ENOMEM;
    }
    int n = split_fields(fields, t->ncols, copy);
    if (n != t->ncols) {
        seterr(err, errlen, "%s: line %ld: a data row has %s fields than the header's %d", path, ln,
               n < 0 ? "more" : "fewer", t->ncols);
        free(raw), free(copy), free(fields);
        return PR_EINVAL;
    }
    t->rows[t->nrows] = fields;
    t->lines[t->nrows] = raw;
    t->lineno[t->nrows++] = ln;
    return PR_OK;
}

/* One line of at most max bytes, its newline included, into *buf (grown as needed, so a small CSV
 * costs a small buffer); *len is its length, NUL bytes counted. Returns 1 for a line, 0 at the end
 * of the file, -1 past max, -2 out of memory. */
static int read_line(FILE *f, char **buf, size_t *cap, size_t max, size_t *len)
{
    size_t n = 0;
    int c;
    while ((c = getc(f)) != EOF) {
        if (n == max)
            return -1;
        if (n + 1 >= *cap) {
            size_t nc = *cap ? 2 * *cap : 256;
            char *b = realloc(*buf, nc > max + 1 ? max + 1 : nc);
            if (!b)
                return -2;
            *buf = b;
            *cap = nc > max + 1 ? max + 1 : nc;
        }
        (*buf)[n++] = (char)c;
        if (c == '\n')
            break;
    }
    if (!*cap && !(*buf = malloc(*cap = 1)))
        return -2;
    (*buf)[n] = 0;
    *len = n;
    return n > 0;
}

int pr_csv_read(pr_csv_t *t, const char *path, int truncate_torn, char *err, size_t errlen)
{
    memset(t, 0, sizeof *t);
    FILE *f = fopen(path, "r");
    if (!f) {
        seterr(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return PR_EIO;
    }
    /* a directory, a FIFO or a device is no CSV (and /dev/zero would never end) */
    struct stat sb;
    const char *why = fstat(fileno(f), &sb) ? strerror(errno) : S_ISDIR(sb.st_mode) ? "a directory, not a CSV file"
                      : !S_ISREG(sb.st_mode) ? "not a regular file"
                      : sb.st_size > PR_CSV_MAXBYTES ? "larger than 1 GiB: not a sweep CSV" : 0;
    if (why) {
        seterr(err, errlen, "%s: %s", path, why);
        fclose(f);
        return PR_EINVAL;
    }
    char *line = NULL;
    size_t len, lcap = 0;
    long good = 0; /* bytes up to the end of the last complete line */
    long ln = 0, cap = 0, ccap = 0;
    int st = PR_OK, got;
    while (!st && (got = read_line(f, &line, &lcap, PR_CSV_MAXLINE, &len))) {
        ln++;
        if (got == -2) {
            st = PR_ENOMEM;
            break;
        }
        if (got < 0) {
            seterr(err, errlen, "%s: line %ld is longer than %ld bytes", path, ln, PR_CSV_MAXLINE);
            st = PR_EINVAL;
            break;
        }
        if (line[len - 1] != '\n')
            break; /* torn: written by a process killed mid-line (not by this driver's single write) */
        if (memchr(line, 0, len)) {
            seterr(err, errlen, "%s: line %ld contains a NUL byte", path, ln);
            st = PR_EINVAL;
            break;
        }
        good += (long)len;
        line[--len] = 0;
        if (len && line[len - 1] == '\r')
            line[--len] = 0;
        if (line[0] == '#') {
            if (t->ncols) {
                seterr(err, errlen, "%s: line %ld: a comment after the header row", path, ln);
                st = PR_EINVAL;
            } else if (!(st = grow((void **)&t->comments, &ccap, t->ncomments, sizeof(char *)))) {
                if ((t->comments[t->ncomments] = strdup(line)))
                    t->ncomments++;
                else
                    st = PR_ENOMEM;
            }
        } else if (len) {
            st = t->ncols ? csv_row(t, &cap, line, path, ln, err, errlen) : csv_header(t, line, path, ln, err, errlen);
        }
    }
    if (!st && ferror(f)) {
        seterr(err, errlen, "cannot read %s: %s", path, strerror(errno));
        st = PR_EIO;
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
    pr_xversion_fprint(f, "# ");
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

static int in_shard(long idx, long k, long n)
{
    return n <= 1 || idx % n == k - 1;
}

/* the rows of shard k of n among count configurations */
static long shard_rows(long count, long k, long n)
{
    return count > k - 1 ? (count - k) / n + 1 : 0;
}

/* a status as the text of one CSV field */
static void status_field(char *buf, size_t len, int st)
{
    snprintf(buf, len, "%s", st ? pr_strerror(st) : "ok");
    for (char *c = buf; *c; c++)
        if (*c == ',')
            *c = ';';
}

static int long_cmp(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;
    return x < y ? -1 : x > y;
}

/* Is every row of t one this driver writes for preset p, grid g, shard k of n? Its idx in range
 * and in the shard, its key and axis fields those of that idx, its status "ok" or a status text,
 * its outputs numbers (NaN after a failure), each idx once. *done gets the sorted idx. */
static int check_rows(long **done, const pr_csv_t *t, const pr_preset_t *p, const pr_grid_t *g, long k, long n,
                      const char *path, char *err, size_t errlen)
{
    long count = pr_grid_count(g);
    int nout = 1, na = g->naxes;
    for (const char *c = p->columns; (c = strchr(c, ',')); c++)
        nout++;
    *done = 0;
    if (t->ncols != 3 + na + nout || pr_csv_col(t, "idx") != 0 || pr_csv_col(t, "key") != 1) {
        seterr(err, errlen, "%s: its header row is not the one of preset %s", path, p->name);
        return PR_EINVAL;
    }
    /* pairs (idx, row) sorted by idx find a repeated idx */
    long *ix = malloc(sizeof(long) * 2 * (t->nrows ? t->nrows : 1));
    if (!ix)
        return PR_ENOMEM;
    int st = PR_OK;
    for (long r = 0; r < t->nrows && !st; r++) {
        char *const *f = t->rows[r], *end, why[160] = "";
        errno = 0;
        long idx = strtol(f[0], &end, 10);
        pr_cfg_t cfg;
        char *key = 0;
        if (!strcmp(f[0], "idx") && !strcmp(f[1], "key"))
            snprintf(why, sizeof why, "a second header row");
        else if (errno || end == f[0] || *end || idx < 0 || idx >= count)
            snprintf(why, sizeof why, "idx '%.20s' is not one of 0..%ld", f[0], count - 1);
        else if (!in_shard(idx, k, n))
            snprintf(why, sizeof why, "idx %ld is not in shard %ld/%ld", idx, k, n);
        else {
            pr_cfg_at(&cfg, g, idx);
            if (!(key = pr_cfg_key(&cfg))) {
                st = PR_ENOMEM;
                break;
            }
            if (strcmp(key, f[1]))
                snprintf(why, sizeof why, "key '%.40s' is not that of idx %ld (%.60s)", f[1], idx, key);
            for (int i = 0; i < na && !*why; i++)
                if (strcmp(f[2 + i], cfg.val[i]))
                    snprintf(why, sizeof why, "%s is '%.20s', not that of idx %ld (%s)", g->ax[i].name, f[2 + i], idx,
                             cfg.val[i]);
        }
        free(key);
        const char *stat = f[2 + na];
        int ok = !strcmp(stat, "ok"), known = ok;
        for (int s = 1; s < PR_ESTATUS_COUNT && !known; s++) {
            char buf[160];
            status_field(buf, sizeof buf, s);
            known = !strcmp(stat, buf);
        }
        if (!*why && !known)
            snprintf(why, sizeof why, "status '%.40s' is neither ok nor a polyrope status", stat);
        for (int j = 0; j < nout && !*why; j++) {
            const char *v = f[3 + na + j];
            double x = strtod(v, &end);
            if (end == v || *end || (!ok && !isnan(x)))
                snprintf(why, sizeof why, "output %d '%.20s' is not %s", j + 1, v, ok ? "a number" : "nan (the row failed)");
        }
        if (*why) {
            seterr(err, errlen, "%s: line %ld: %s", path, t->lineno[r], why);
            st = PR_EINVAL;
        }
        ix[2 * r] = idx, ix[2 * r + 1] = r;
    }
    if (!st)
        qsort(ix, t->nrows, 2 * sizeof(long), long_cmp);
    for (long r = 1; r < t->nrows && !st; r++)
        if (ix[2 * r] == ix[2 * r - 2]) {
            long a = t->lineno[ix[2 * r - 1]], b = t->lineno[ix[2 * r + 1]];
            seterr(err, errlen, "%s: line %ld repeats idx %ld of line %ld", path, a > b ? a : b, ix[2 * r], a < b ? a : b);
            st = PR_EINVAL;
        }
    for (long r = 0; r < t->nrows && !st; r++)
        ix[r] = ix[2 * r];
    if (st)
        free(ix);
    else
        *done = ix;
    return st;
}

/* An output path that cannot be a CSV file is bad usage, refused before any work. */
static int check_out_path(const char *cmd, const char *opt, const char *out)
{
    struct stat sb;
    if (!*out)
        return pr_cli_fail(cmd, "%s is empty: give it a file name", opt);
    if (!stat(out, &sb) && S_ISDIR(sb.st_mode))
        return pr_cli_fail(cmd, "%s %s is a directory: give a file name, such as %s/out.csv", opt, out,
                       out);
    if (!stat(out, &sb) && !S_ISREG(sb.st_mode))
        return pr_cli_fail(cmd, "%s %s is not a regular file", opt, out);
    return 0;
}

double pr_sweep_row_budget(const pr_preset_t *p, const pr_sweep_opts_t *o)
{
    double s = o && o->row_seconds != 0 ? o->row_seconds : p->row_seconds;
    return s > 0 ? s : 0;
}

double pr_sweep_row_cost(const pr_preset_t *p, const pr_cfg_t *cfg, double row_seconds)
{
    double c = p->cost ? p->cost(cfg) : 0;
    /* a row past its budget is stopped there (a second of slack: RLIMIT_CPU's granularity) */
    return row_seconds > 0 && !(c <= row_seconds) ? row_seconds + 1 : c;
}

double pr_sweep_predict(const pr_preset_t *p, const pr_grid_t *g, long k, long n, double row_seconds)
{
    long total = pr_grid_count(g);
    double sum = 0;
    for (long idx = 0; idx < total; idx++) {
        if (!in_shard(idx, k, n))
            continue;
        pr_cfg_t cfg;
        pr_cfg_at(&cfg, g, idx);
        sum += pr_sweep_row_cost(p, &cfg, row_seconds);
    }
    return sum;
}

void pr_sweep_duration(char *buf, size_t len, double s)
{
    if (!(s < 1e9))
        snprintf(buf, len, "ever");
    else if (s < 9.95)
        snprintf(buf, len, "%.1f s", s);
    else if (s < 90)
        snprintf(buf, len, "%.0f s", s);
    else if (s < 5400)
        snprintf(buf, len, "%.0f min", ceil(s / 60));
    else
        snprintf(buf, len, "%.0f h %02.0f min", floor(s / 3600), ceil(fmod(s, 3600) / 60));
}

void pr_progress_start(pr_progress_t *pg, int mode)
{
    pg->on = mode != 0;
    pg->tty = isatty(2);
    pg->t0 = pr_timing_wall();
    pg->last = pg->t0;
}

int pr_progress_due(pr_progress_t *pg, int final)
{
    if (!pg->on)
        return 0;
    double t = pr_timing_wall();
    /* a log file gets one line a minute: a day's run stays a short file */
    if (!final && t - pg->last < (pg->tty ? 0.2 : 60))
        return 0;
    pg->last = t;
    return 1;
}

void pr_progress_print(pr_progress_t *pg, int final, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (pg->tty)
        fputc('\r', stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs(pg->tty && !final ? "   " : "\n", stderr);
    fflush(stderr);
}

/* One run of the driver: what pr_sweep_run checks, opens and then fills. */
typedef struct {
    const pr_preset_t *p;
    const pr_grid_t *g;
    const pr_sweep_opts_t *o;
    long sk, sn, total, mine;
    int ncols, fd;
    char *header;
    long *done, ndone; /* the idx already in the file, sorted */
} run_t;

/* the grid, shard, path and header, before anything is read or written; 0 or an exit status */
static int run_check(run_t *r)
{
    const char *cmd = "sweep";
    char err[512];
    long max = r->o->max_configs > 0 ? r->o->max_configs : PR_GRID_MAX_CONFIGS;
    int st = pr_sweep_check(r->p, r->g, max, err, sizeof err);
    if (st) {
        (void)pr_cli_fail(cmd, "%s", st == PR_ENOMEM ? "out of memory" : err);
        return st == PR_ENOMEM ? 1 : 2;
    }
    r->sk = r->o->shard_n >= 1 ? r->o->shard_k : 1, r->sn = r->o->shard_n >= 1 ? r->o->shard_n : 1;
    if (r->sk < 1 || r->sk > r->sn) {
        (void)pr_cli_fail(cmd, "shard %ld/%ld: need 1 <= K <= N", r->o->shard_k, r->o->shard_n);
        return 2;
    }
    if ((st = check_out_path(cmd, "--out", r->o->out ? r->o->out : "")))
        return st;
    r->total = pr_grid_count(r->g), r->mine = shard_rows(r->total, r->sk, r->sn);
    if (!(r->header = header_text(r->p, r->g, r->o))) {
        (void)pr_cli_fail(cmd, "out of memory");
        return 1;
    }
    /* every header line must be one pr_csv_read takes back */
    for (const char *l = r->header; *l; l += strcspn(l, "\n") + 1)
        if (strcspn(l, "\n") >= PR_CSV_MAXLINE) {
            (void)pr_cli_fail(cmd, "the grid's text is over %ld bytes, too long for the CSV's header: narrow it", PR_CSV_MAXLINE);
            return 2;
        }
    r->ncols = 1;
    for (const char *c = r->p->columns; (c = strchr(c, ',')); c++)
        r->ncols++;
    return 0;
}

/* An existing --out on --resume: this sweep's, every row checked, a torn last line cut off;
 * r->done gets its rows. *fresh is set when it is only a torn header. 0 or an exit status. */
static int run_resume(run_t *r, int *fresh)
{
    const char *cmd = "sweep", *out = r->o->out;
    char err[512], why[128];
    pr_csv_t t;
    /* look before cutting anything: only a file of this very sweep is touched */
    int st = pr_csv_read(&t, out, 0, err, sizeof err);
    if (st == PR_EINVAL && torn_header(out, r->header)) {
        *fresh = 1; /* killed while writing the header: nothing to keep */
        return 0;
    }
    if (st) {
        (void)pr_cli_fail(cmd, "cannot resume: %s", err);
        return st == PR_ENOMEM ? 1 : 2;
    }
    if (!same_sweep(&t, r->header, why, sizeof why)) {
        (void)pr_cli_fail(cmd, "cannot resume %s: %s from this sweep; use another --out", out, why);
        pr_csv_clear(&t);
        return 2;
    }
    /* every row is checked before the file is cut or a row computed */
    st = check_rows(&r->done, &t, r->p, r->g, r->sk, r->sn, out, err, sizeof err);
    r->ndone = t.nrows;
    pr_csv_clear(&t);
    if (!st) {
        /* ours: read it again, now cutting a torn last line off the file */
        st = pr_csv_read(&t, out, 1, err, sizeof err);
        if (!st && t.nrows != r->ndone)
            seterr(err, sizeof err, "%s changed while it was read", out), st = PR_EINVAL;
        pr_csv_clear(&t);
    }
    if (st) {
        (void)pr_cli_fail(cmd, "cannot resume: %s", st == PR_ENOMEM ? "out of memory" : err);
        return st == PR_ENOMEM || st == PR_EIO ? 1 : 2;
    }
    return 0;
}

/* opens --out (resumed, or fresh with its header); 0 or an exit status */
static int run_open(run_t *r)
{
    const char *cmd = "sweep", *out = r->o->out;
    struct stat sb;
    int exists = stat(out, &sb) == 0, rc;
    if (exists && !r->o->resume) {
        (void)pr_cli_fail(cmd, "%s exists; add --resume to continue it, or remove it to start again", out);
        return 2;
    }
    int fresh = !exists;
    if (exists && (rc = run_resume(r, &fresh)))
        return rc;
    /* the path is checked here, before any row: a file that cannot be opened is bad usage */
    r->fd = open(out, O_WRONLY | O_CREAT | O_APPEND | (fresh ? O_TRUNC : 0), 0644);
    if (r->fd < 0) {
        (void)pr_cli_fail(cmd, "cannot write %s: %s", out, strerror(errno));
        return 2;
    }
    if (fresh && write_all_sync(r->fd, r->header, strlen(r->header))) {
        (void)pr_cli_fail(cmd, "cannot write %s: %s", out, strerror(errno));
        if (!exists)
            unlink(out);
        return 1;
    }
    return 0;
}

/* What a row's child process sends back: its status and outputs, in one write (< PIPE_BUF). */
typedef struct {
    int st;
    double v[PR_CSV_MAXCOLS];
} row_msg_t;

/* p->row in a child process limited to budget CPU seconds (RLIMIT_CPU: the limit is the same on
 * a loaded machine, so a row's outcome does not depend on what else runs). PR_ETIME when the
 * child passed it; *sig gets the signal of a child that crashed (PR_EIO then). */
static int row_limited(double *vals, int ncols, const pr_preset_t *p, const pr_cfg_t *cfg, double budget, int *sig)
{
    int fds[2];
    *sig = 0;
    if (pipe(fds))
        return PR_EIO;
    fflush(stdout);
    fflush(stderr);
    pid_t parent = getpid(), pid = fork();
    if (pid == 0) {
        close(fds[0]);
        rlim_t s = (rlim_t)ceil(budget);
        struct rlimit rl = {s, s + 1};
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) || getppid() != parent || setrlimit(RLIMIT_CPU, &rl))
            _exit(127);
        row_msg_t m;
        memset(&m, 0, sizeof m);
        for (int k = 0; k < ncols; k++)
            m.v[k] = vals[k];
        m.st = p->row(m.v, cfg);
        _exit(write(fds[1], &m, sizeof m) == (ssize_t)sizeof m ? 0 : 126);
    }
    close(fds[1]);
    if (pid < 0) {
        close(fds[0]);
        return PR_EIO;
    }
    row_msg_t m;
    ssize_t got;
    while ((got = read(fds[0], &m, sizeof m)) < 0 && errno == EINTR)
        ;
    close(fds[0]);
    int ws = 0;
    while (waitpid(pid, &ws, 0) < 0 && errno == EINTR)
        ;
    if (got == (ssize_t)sizeof m) {
        memcpy(vals, m.v, sizeof(double) * ncols);
        return m.st;
    }
    if (WIFSIGNALED(ws) && (WTERMSIG(ws) == SIGXCPU || WTERMSIG(ws) == SIGKILL))
        return PR_ETIME;
    *sig = WIFSIGNALED(ws) ? WTERMSIG(ws) : -1;
    return PR_EIO;
}

/* computes configuration idx and appends its line; 0 or an exit status */
static int run_row(run_t *r, long idx, double *vals, double budget)
{
    pr_cfg_t cfg;
    pr_cfg_at(&cfg, r->g, idx);
    char *key = pr_cfg_key(&cfg), *line = 0, stat[160];
    if (!key)
        return 1;
    for (int k = 0; k < r->ncols; k++)
        vals[k] = NAN;
    int sig = 0, rs = budget > 0 ? row_limited(vals, r->ncols, r->p, &cfg, budget, &sig) : r->p->row(vals, &cfg);
    if (sig) {
        (void)pr_cli_fail("sweep", "row %ld (%s) crashed (%s %d): no row written; this is a bug, please report it", idx,
                          key, sig > 0 ? "signal" : "exit", sig);
        free(key);
        return 1;
    }
    size_t ll = 0;
    FILE *f = open_memstream(&line, &ll);
    if (!f) {
        free(key);
        return 1;
    }
    fprintf(f, "%ld,%s", idx, key);
    for (int i = 0; i < r->g->naxes; i++)
        fprintf(f, ",%s", cfg.val[i]);
    status_field(stat, sizeof stat, rs);
    fprintf(f, ",%s", stat);
    for (int k = 0; k < r->ncols; k++)
        fprintf(f, ",%.10g", rs ? NAN : vals[k]);
    fputc('\n', f);
    fclose(f);
    free(key);
    int rc = 0;
    if (!line || write_all_sync(r->fd, line, ll)) {
        (void)pr_cli_fail("sweep", "cannot write a row to %s: %s", r->o->out, strerror(errno));
        rc = 1;
    }
    free(line);
    return rc;
}

/* the predicted cost of the rows a resume skips */
static double resumed_cost(const run_t *r, double budget)
{
    double c = 0;
    for (long i = 0; i < r->ndone; i++) {
        pr_cfg_t cfg;
        pr_cfg_at(&cfg, r->g, r->done[i]);
        c += pr_sweep_row_cost(r->p, &cfg, budget);
    }
    return c;
}

/* every configuration of the shard not already in the file, with progress; 0 or an exit status */
static int run_rows(run_t *r)
{
    double budget = pr_sweep_row_budget(r->p, r->o);
    double *vals = malloc(sizeof(double) * r->ncols);
    if (!vals)
        return 1;
    /* the ETA scales the model's prediction of the rows left by how fast the rows so far went */
    double predicted = pr_sweep_predict(r->p, r->g, r->sk, r->sn, budget), spent = 0;
    const char *label = r->o->label ? r->o->label : r->p->name;
    pr_progress_t pg;
    pr_progress_start(&pg, r->o->progress);
    long count = 0, next = 0;
    if (pg.on) {
        char t[32], b[64] = "";
        pr_sweep_duration(t, sizeof t, predicted - resumed_cost(r, budget));
        if (budget > 0)
            snprintf(b, sizeof b, ", rows stopped at %g s", budget);
        fprintf(stderr, "polyrope sweep %s: %ld rows%s, predicted %s of CPU%s (cost model: experiments/presets.c)\n",
                label, r->mine - r->ndone, r->ndone ? " left" : "", t, b);
    }
    int rc = 0;
    for (long idx = 0; idx < r->total && !rc; idx++) {
        if (!in_shard(idx, r->sk, r->sn))
            continue;
        pr_cfg_t cfg;
        pr_cfg_at(&cfg, r->g, idx);
        double c = pr_sweep_row_cost(r->p, &cfg, budget);
        count++;
        if (next < r->ndone && r->done[next] == idx) {
            next++;
            predicted -= c;
            continue;
        }
        rc = run_row(r, idx, vals, budget);
        spent += c;
        int final = count == r->mine;
        if (!rc && pr_progress_due(&pg, final)) {
            double el = pr_timing_wall() - pg.t0, eta = spent > 0 ? el / spent * (predicted - spent) : predicted - spent;
            char e[32], d[32];
            pr_sweep_duration(d, sizeof d, el);
            pr_sweep_duration(e, sizeof e, final ? spent : fmax(0, eta));
            pr_progress_print(&pg, final, "polyrope sweep %s: %ld/%ld rows, %s %s, %s %s", label, count, r->mine,
                              final ? "done in" : "elapsed", d, final ? "predicted" : "ETA", e);
        }
    }
    free(vals);
    return rc;
}

int pr_sweep_run(const pr_preset_t *p, const pr_grid_t *g, const pr_sweep_opts_t *o)
{
    run_t r = {.p = p, .g = g, .o = o, .fd = -1};
    int rc = run_check(&r);
    if (!rc)
        rc = run_open(&r);
    if (!rc)
        rc = run_rows(&r);
    if (r.fd >= 0)
        close(r.fd);
    free(r.done);
    free(r.header);
    return rc;
}

/* ------------------------------------------------------------------ merge */

/* one input of a merge, read and checked */
typedef struct {
    const char *path;
    pr_csv_t t;
    long k, n;       /* its shard */
    long *idx;       /* its rows' idx, sorted */
} merge_in_t;

typedef struct {
    long idx;
    int file;
    const char *line;
} merge_row_t;

/* by idx, then by the order the files were given: the first copy of a row is kept */
static int merge_cmp(const void *a, const void *b)
{
    const merge_row_t *x = a, *y = b;
    return x->idx != y->idx ? (x->idx < y->idx ? -1 : 1) : (x->file > y->file) - (x->file < y->file);
}

int pr_sweep_shard_parse(long *k, long *n, const char *s)
{
    char *end;
    errno = 0;
    *k = strtol(s, &end, 10);
    if (errno || end == s || *end != '/')
        return 0;
    const char *t = end + 1;
    *n = strtol(t, &end, 10);
    return !errno && end != t && !*end && *n >= 1 && *k >= 1 && *k <= *n;
}

/* reads and checks input m: a complete shard of a sweep of a known preset, every row valid.
 * Its preset and grid go to *p and g (first input) or must equal them. */
static int merge_read(merge_in_t *m, const pr_preset_t **p, pr_grid_t *g, const merge_in_t *first, long max,
                      char *err, size_t errlen)
{
    int st = pr_csv_read(&m->t, m->path, 0, err, errlen);
    if (st)
        return st;
    const char *preset = pr_csv_comment(&m->t, "preset"), *grid = pr_csv_comment(&m->t, "grid");
    const char *shard = pr_csv_comment(&m->t, "shard"), *conf = pr_csv_comment(&m->t, "configurations");
    if (!preset || !grid || !conf) {
        seterr(err, errlen, "%s is not a polyrope sweep CSV (no '# preset:', '# grid:' or '# configurations:' line)", m->path);
        return PR_EINVAL;
    }
    if (first) {
        /* one sweep, and one program: rows of two commits or build types would sit in one CSV
         * under the first file's provenance lines */
        static const char *const tags[] = {"preset", "grid", "git commit", "build type"};
        for (int k = 0; k < 4; k++) {
            const char *a = pr_csv_comment(&first->t, tags[k]), *b = pr_csv_comment(&m->t, tags[k]);
            if (strcmp(a ? a : "", b ? b : "")) {
                seterr(err, errlen, "%s and %s come from different %s (their '# %s:' lines differ): merge the "
                       "shards of one run", first->path, m->path, k < 2 ? "sweeps" : "builds", tags[k]);
                return PR_EINVAL;
            }
        }
    } else {
        if (!(*p = pr_preset_find(preset))) {
            seterr(err, errlen, "%s: unknown preset '%.40s'", m->path, preset);
            return PR_EINVAL;
        }
        char gerr[256];
        if ((st = pr_grid_parse_max(g, grid, max, gerr, sizeof gerr)) || (st = pr_sweep_check(*p, g, max, gerr, sizeof gerr))) {
            seterr(err, errlen, "%s: its grid: %s", m->path, st == PR_ENOMEM ? "out of memory" : gerr);
            return st;
        }
    }
    char *end;
    errno = 0;
    long c = strtol(conf, &end, 10);
    if (errno || end == conf || *end || c != pr_grid_count(g)) {
        seterr(err, errlen, "%s: '# configurations: %.20s' is not the %ld of its grid", m->path, conf, pr_grid_count(g));
        return PR_EINVAL;
    }
    m->k = m->n = 1;
    if (shard && !pr_sweep_shard_parse(&m->k, &m->n, shard)) {
        seterr(err, errlen, "%s: '# shard: %.20s' is not K/N with 1 <= K <= N", m->path, shard);
        return PR_EINVAL;
    }
    return check_rows(&m->idx, &m->t, *p, g, m->k, m->n, m->path, err, errlen);
}

/* every K of one N present, each shard complete */
static int merge_cover(const merge_in_t *in, int nin, long count, char *err, size_t errlen)
{
    long n = in[0].n, *ks = malloc(sizeof(long) * nin);
    if (!ks)
        return PR_ENOMEM;
    int st = PR_OK;
    for (int i = 0; i < nin && !st; i++) {
        ks[i] = in[i].k;
        if (in[i].n != n) {
            seterr(err, errlen, "%s is shard %ld/%ld but %s is shard %ld/%ld: merge the shards of one --shard K/N run",
                   in[0].path, in[0].k, n, in[i].path, in[i].k, in[i].n);
            st = PR_EINVAL;
        } else if (in[i].t.nrows != shard_rows(count, in[i].k, n)) {
            seterr(err, errlen, "%s (shard %ld/%ld) has %ld of its %ld rows: finish it with --resume first", in[i].path,
                   in[i].k, n, in[i].t.nrows, shard_rows(count, in[i].k, n));
            st = PR_EINVAL;
        }
    }
    if (!st) {
        qsort(ks, nin, sizeof(long), long_cmp);
        long want = 1;
        for (int i = 0; i < nin && ks[i] <= want; i++)
            want += ks[i] == want;
        if (want <= n) {
            seterr(err, errlen, "shard %ld/%ld is missing (%d files given): give every shard's CSV", want, n, nin);
            st = PR_EINVAL;
        }
    }
    free(ks);
    return st;
}

int pr_sweep_merge(const char *out, char **in, int nin, long max, const char *command)
{
    const char *cmd = "sweep --merge";
    if (nin < 1)
        return pr_cli_fail(cmd, "give the shard CSVs to merge after OUT.csv");
    int rc = check_out_path(cmd, "--merge", out);
    if (rc)
        return rc;
    struct stat so, si;
    int out_exists = !stat(out, &so);
    for (int i = 0; i < nin; i++) {
        if (stat(in[i], &si)) {
            if (pr_preset_find(in[i]))
                return pr_cli_fail(cmd, "'%s' is a preset, not a CSV: merging takes no preset (polyrope sweep "
                               "--merge OUT.csv IN.csv...)", in[i]);
            return pr_cli_fail(cmd, "cannot open %s: %s", in[i], strerror(errno));
        }
        if (out_exists && si.st_dev == so.st_dev && si.st_ino == so.st_ino)
            return pr_cli_fail(cmd, "the output %s is also an input: write the merge to a new file",
                           out);
    }
    /* the output is created first, so that an impossible path is refused before any work */
    char *tmp = 0;
    int fd = -1;
    if (asprintf(&tmp, "%s.tmp.%ld", out, (long)getpid()) < 0)
        return (void)pr_cli_fail(cmd, "out of memory"), 1;
    if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0644)) < 0) {
        (void)pr_cli_fail(cmd, "cannot write %s: %s", out, strerror(errno));
        free(tmp);
        return 2;
    }
    merge_in_t *m = calloc(nin, sizeof *m);
    merge_row_t *rows = 0;
    const pr_preset_t *p = 0;
    pr_grid_t g = {0};
    long nrows = 0;
    char err[512];
    int st = m ? PR_OK : PR_ENOMEM;
    for (int i = 0; i < nin && !st; i++) {
        m[i].path = in[i];
        st = merge_read(&m[i], &p, &g, i ? &m[0] : 0, max, err, sizeof err);
        nrows += st ? 0 : m[i].t.nrows;
    }
    if (!st)
        st = merge_cover(m, nin, pr_grid_count(&g), err, sizeof err);
    if (!st && !(rows = malloc(sizeof *rows * (nrows ? nrows : 1))))
        st = PR_ENOMEM;
    if (st) {
        (void)pr_cli_fail(cmd, "%s", st == PR_ENOMEM ? "out of memory" : err);
        rc = st == PR_ENOMEM || st == PR_EIO ? 1 : 2;
    }
    FILE *f = 0;
    if (!rc) {
        nrows = 0;
        for (int i = 0; i < nin; i++)
            for (long r = 0; r < m[i].t.nrows; r++)
                rows[nrows++] = (merge_row_t){strtol(m[i].t.rows[r][0], 0, 10), i, m[i].t.lines[r]};
        qsort(rows, nrows, sizeof *rows, merge_cmp);
        if (!(f = fdopen(fd, "w"))) {
            (void)pr_cli_fail(cmd, "cannot write %s: %s", tmp, strerror(errno));
            rc = 1;
        } else {
            fd = -1;
        }
    }
    if (!rc) {
        const pr_csv_t *t = &m[0].t;
        for (int c = 0; c < t->ncomments; c++) {
            const char *line = t->comments[c];
            if (strncmp(line, "# shard:", 8) && strncmp(line, "# command:", 10) && strncmp(line, "# merged", 8))
                fprintf(f, "%s\n", line);
        }
        fprintf(f, "# merged from %d files\n# command: %s\n", nin, command ? command : "polyrope sweep --merge");
        for (int c = 0; c < t->ncols; c++)
            fprintf(f, "%s%s", c ? "," : "", t->cols[c]);
        fputc('\n', f);
        long dups = 0;
        for (long r = 0; r < nrows; r++) {
            if (r && rows[r].idx == rows[r - 1].idx) {
                dups++; /* a shard given twice: its first copy is kept */
                continue;
            }
            fprintf(f, "%s\n", rows[r].line);
        }
        if (fflush(f) || fsync(fileno(f)))
            rc = 1;
        if (fclose(f))
            rc = 1;
        f = 0;
        if (rc)
            (void)pr_cli_fail(cmd, "cannot write %s: %s", tmp, strerror(errno));
        if (!rc && rename(tmp, out)) {
            (void)pr_cli_fail(cmd, "cannot rename %s to %s: %s", tmp, out, strerror(errno));
            rc = 1;
        }
        if (!rc && dups)
            (void)pr_cli_fail(cmd, "%ld rows given twice (a shard given twice) kept once", dups);
    }
    if (fd >= 0)
        close(fd);
    if (rc)
        unlink(tmp);
    free(tmp);
    free(rows);
    for (int i = 0; m && i < nin; i++) {
        pr_csv_clear(&m[i].t);
        free(m[i].idx);
    }
    free(m);
    pr_grid_clear(&g);
    return rc;
}
