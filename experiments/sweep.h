/* sweep: the experiment driver behind `polyrope sweep` and `polyrope reproduce`.
 * A preset is a table of columns plus a row function; a grid names the values of each axis;
 * the driver runs the cartesian product into a self-describing CSV, one atomic line per row,
 * so that a sweep killed at any moment resumes without loss or duplicates. */
#ifndef PR_SWEEP_H
#define PR_SWEEP_H

#include <stdint.h>
#include <stdio.h>

enum { PR_GRID_MAXAXES = 16, PR_CSV_MAXCOLS = 64 };

/* The default cap on a grid's configurations (sweep --max-configs raises it): ten times the
 * largest grid of any preset, so that a typo cannot start a sweep of years. */
#define PR_GRID_MAX_CONFIGS 10000L

/* Bounds of pr_csv_read: longer lines and larger files are not the driver's. */
#define PR_CSV_MAXLINE (1L << 24)
#define PR_CSV_MAXBYTES (1L << 30)

/* ---- grids: "AXIS=V,V,...;AXIS=A..B*F;AXIS=A..B+S" ---- */
typedef struct {
    char *name;
    int nv;
    char **v;          /* canonical text of each value (numbers as %.12g) */
    int merged;        /* range values dropped because they rounded to an earlier value */
} pr_axis_t;

typedef struct {
    int naxes;
    pr_axis_t ax[PR_GRID_MAXAXES];
} pr_grid_t;

/* Parses text into g (axes in the order given). Every value must lie in its axis's domain (n, d
 * and seed integers, n >= 1, 0 < eps < 1, ...: pr_grid_domains). A list naming a value twice
 * is refused; range values that round to an earlier one (n=1..8*1.1) are dropped and counted in
 * the axis's merged. No range longer, and no grid larger, than max_configs configurations is
 * expanded: that is refused as PR_EBUDGET. On PR_EINVAL or PR_EBUDGET err gets a one-line
 * explanation. g must be cleared with pr_grid_clear either way. */
int pr_grid_parse_max(pr_grid_t *g, const char *text, long max_configs, char *err, size_t errlen);
/* pr_grid_parse_max with max_configs = PR_GRID_MAX_CONFIGS */
int pr_grid_parse(pr_grid_t *g, const char *text, char *err, size_t errlen);
/* The axes a grid may name and their domains, one line each, for --help. */
void pr_grid_domains(FILE *f, const char *indent);
void pr_grid_clear(pr_grid_t *g);
/* Sets or replaces axis `name` of g with the values of axis `src` (copied). */
int pr_grid_set_axis(pr_grid_t *g, const pr_axis_t *src);
const pr_axis_t *pr_grid_axis(const pr_grid_t *g, const char *name);
/* number of configurations: the product of the axis lengths (0 if any axis is empty;
 * LONG_MAX if the product does not fit) */
long pr_grid_count(const pr_grid_t *g);
/* the grid as text in the --grid syntax, with every value listed; caller frees */
char *pr_grid_text(const pr_grid_t *g);

/* One configuration: the value of each axis of the grid; the last axis varies fastest. */
typedef struct {
    const pr_grid_t *grid;
    long idx;
    const char *val[PR_GRID_MAXAXES];
} pr_cfg_t;

void pr_cfg_at(pr_cfg_t *c, const pr_grid_t *g, long idx);
const char *pr_cfg_str(const pr_cfg_t *c, const char *axis);   /* NULL if absent */
double pr_cfg_double(const pr_cfg_t *c, const char *axis);     /* NaN if absent */
long pr_cfg_long(const pr_cfg_t *c, const char *axis);          /* -1 if absent */
/* "n=256;d=4;..." identifying the configuration; caller frees */
char *pr_cfg_key(const pr_cfg_t *c);

/* ---- presets ---- */
/* passed: everything the claim rests on ran and passed. not run: some of it did not run (the
 * detail says why). info: a measurement shown beside the claim that does not decide it. */
typedef enum {
    PR_VERDICT_PASSED, PR_VERDICT_FAILED, PR_VERDICT_INCONCLUSIVE, PR_VERDICT_NOT_RUN,
    PR_VERDICT_INFO
} pr_verdict_t;
const char *pr_verdict_name(pr_verdict_t v);

struct pr_csv;

typedef struct {
    const char *claim;     /* "C11" */
    pr_verdict_t verdict;
    char detail[256];      /* observed vs bound, fitted constants, ... */
} pr_claim_result_t;

typedef struct pr_preset {
    const char *name;
    const char *claims;      /* claim ids it answers, space separated: "C11 C6" */
    const char *summary;
    const char *axes;        /* its axes, comma separated */
    const char *grid_tiny, *grid_quick, *grid_full;  /* complete grids over those axes */
    const char *columns;     /* its output columns, comma separated (doubles) */
    /* where its rows narrow the axes' domains: "AXIS>=X", "AXIS>X", "AXIS<=X", "AXIS<X",
     * "AXIS=even" or "AXIS=WORD|WORD", separated by ';' (NULL: none) */
    const char *limits;
    /* out[k] for each output column (NaN when not applicable); returns a status. A status
     * other than PR_OK is recorded in the row's status column, with NaN outputs. */
    int (*row)(double *out, const pr_cfg_t *cfg);
    /* Fills res[k] for each claim of the preset from the finished CSV; returns their count. */
    int (*verdict)(pr_claim_result_t *res, const struct pr_csv *t);
    /* Predicted CPU seconds of one row (presets.c says how each constant was measured). */
    double (*cost)(const pr_cfg_t *cfg);
    /* CPU-seconds budget of one row (0: none); a row still running then is stopped and
     * recorded with status PR_ETIME (sweep --row-seconds overrides it) */
    double row_seconds;
} pr_preset_t;

extern const pr_preset_t pr_presets[];
extern const int pr_npresets;
const pr_preset_t *pr_preset_find(const char *name);

/* ---- CSV tables ---- */
typedef struct pr_csv {
    int ncomments;
    char **comments;       /* whole comment lines, without the newline */
    int ncols;
    char *cols[PR_CSV_MAXCOLS];
    long nrows;
    char ***rows;          /* rows[r][c] */
    char **lines;          /* the raw data lines, without the newline */
    long *lineno;          /* lineno[r]: the 1-based line of row r in the file */
} pr_csv_t;

/* Reads a CSV written by the driver: '#' comment lines, a header row, then data rows with as
 * many fields as the header (no quoting). A last line without its newline (torn by a kill) is
 * ignored and, if truncate_torn, cut off the file. Refused as PR_EINVAL: a path that is not a
 * regular file, a file over PR_CSV_MAXBYTES, a line over PR_CSV_MAXLINE, a NUL byte, more than
 * PR_CSV_MAXCOLS columns, a column named twice, a row of another width, a comment after the
 * header. Returns PR_OK, PR_EIO, PR_ENOMEM or PR_EINVAL, with err filled on failure. */
int pr_csv_read(pr_csv_t *t, const char *path, int truncate_torn, char *err, size_t errlen);
void pr_csv_clear(pr_csv_t *t);
int pr_csv_col(const pr_csv_t *t, const char *name);            /* -1 if absent */
const char *pr_csv_comment(const pr_csv_t *t, const char *tag); /* value of "# tag: value" */
double pr_csv_num(const pr_csv_t *t, long r, const char *col);  /* NaN if absent/not a number */
const char *pr_csv_str(const pr_csv_t *t, long r, const char *col);

/* ---- the driver ---- */
typedef struct {
    const char *out;       /* CSV path */
    int resume;            /* continue an existing file */
    long shard_k, shard_n; /* 1-based shard K of N (1/1 = everything) */
    int progress;          /* -1 auto (stderr is a terminal), 0 off, 1 on */
    const char *command;   /* the command line, for the header */
    long max_configs;      /* cap on the grid's configurations (0: PR_GRID_MAX_CONFIGS) */
    double row_seconds;    /* CPU-seconds budget of a row: 0 the preset's, < 0 none */
    const char *label;     /* names the run in progress lines (NULL: the preset's name) */
} pr_sweep_opts_t;

/* The CPU-seconds budget of a row under opts: the option's, else the preset's; 0 for none. */
double pr_sweep_row_budget(const pr_preset_t *p, const pr_sweep_opts_t *opts);

/* Predicted CPU seconds of one row: the preset's cost model, at most row_seconds + 1 when
 * row_seconds > 0 (a row past its budget is stopped there). */
double pr_sweep_row_cost(const pr_preset_t *p, const pr_cfg_t *cfg, double row_seconds);
/* Predicted CPU seconds of the configurations of g in shard k of n (1/1: all), from the
 * preset's cost model; each row counts at most row_seconds when that is > 0. */
double pr_sweep_predict(const pr_preset_t *p, const pr_grid_t *g, long k, long n, double row_seconds);

/* "1 h 05 min", "12 min", "40 s": a duration for one-line messages */
void pr_sweep_duration(char *buf, size_t len, double seconds);

/* Progress lines on stderr: on a terminal one line redrawn in place (at most 5 a second);
 * elsewhere (a log file) at most one line a minute, so that a long run can be followed. */
typedef struct {
    int on, tty;
    double t0, last;
} pr_progress_t;

/* mode: -1 auto (on), 0 off, 1 on */
void pr_progress_start(pr_progress_t *pg, int mode);
/* 1 if a line is due now (final: always) */
int pr_progress_due(pr_progress_t *pg, int final);
/* prints the line (printf format), ended as the medium wants */
void pr_progress_print(pr_progress_t *pg, int final, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Is g a grid preset p can run? Its axes are p's, each value inside p's limits, d even where
 * W pairs coordinates, at most max_configs configurations (0: PR_GRID_MAX_CONFIGS). Returns
 * PR_OK, or PR_EINVAL / PR_EBUDGET with a one-line explanation in err. */
int pr_sweep_check(const pr_preset_t *p, const pr_grid_t *g, long max_configs, char *err, size_t errlen);

/* Parses "K/N" with 1 <= K <= N (no overflow); 1 if it is one. */
int pr_sweep_shard_parse(long *k, long *n, const char *s);

/* Runs every configuration of g in this shard into opts->out. Checks g (pr_sweep_check), the
 * output path and, on resume, every row of the file before any row is computed. A row past its
 * CPU budget (pr_sweep_row_budget; the row then runs in a child process) is recorded with
 * status PR_ETIME. Returns 0, or an exit status after printing a one-line error (2 bad usage
 * or input, 1 I/O failure or a row that crashed). */
int pr_sweep_run(const pr_preset_t *p, const pr_grid_t *g, const pr_sweep_opts_t *opts);

/* The grid of preset p for "tiny", "quick" or "full", with user overrides applied and checked
 * by pr_sweep_check with max_configs (0: PR_GRID_MAX_CONFIGS). */
int pr_preset_grid_max(pr_grid_t *g, const pr_preset_t *p, const char *size, const char *user,
                       long max_configs, char *err, size_t errlen);
/* pr_preset_grid_max with max_configs = 0 */
int pr_preset_grid(pr_grid_t *g, const pr_preset_t *p, const char *size, const char *user,
                   char *err, size_t errlen);

/* Merges shard CSVs into out (written to a temporary file, then renamed). Every input must be
 * a complete shard of one sweep, K/N for every K of one N (the same file may come twice);
 * every row is checked against the grid. max_configs caps the grid read from the files (0:
 * PR_GRID_MAX_CONFIGS). Returns an exit status (2 for bad input, before out is touched). */
int pr_sweep_merge(const char *out, char **in, int nin, long max_configs, const char *command);

/* The command line as one string (arguments with spaces quoted); caller frees. */
char *pr_sweep_cmdline(int argc, char **argv);

/* polyrope plot on one CSV: FILE.csv -> FILE.png, FILE.pdf. Returns an exit status. */
int pr_plot_csv(const char *csv);

/* "Linux 6.1 x86_64, <cpu model>, N cores" */
void pr_machine_string(char *buf, size_t len);

#endif
