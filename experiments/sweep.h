/* sweep: the experiment driver behind `polyrope sweep` and `polyrope reproduce`.
 * A preset is a table of columns plus a row function; a grid names the values of each axis;
 * the driver runs the cartesian product into a self-describing CSV, one atomic line per row,
 * so that a sweep killed at any moment resumes without loss or duplicates. */
#ifndef PR_SWEEP_H
#define PR_SWEEP_H

#include <stdint.h>
#include <stdio.h>

enum { PR_GRID_MAXAXES = 16, PR_CSV_MAXCOLS = 64 };

/* ---- grids: "AXIS=V,V,...;AXIS=A..B*F;AXIS=A..B+S" ---- */
typedef struct {
    char *name;
    int nv;
    char **v;          /* canonical text of each value (numbers as %.12g) */
} pr_axis_t;

typedef struct {
    int naxes;
    pr_axis_t ax[PR_GRID_MAXAXES];
} pr_grid_t;

/* Parses text into g (axes in the order given). On a syntax error returns PR_EINVAL and puts
 * a one-line explanation into err. g must be cleared with pr_grid_clear either way. */
int pr_grid_parse(pr_grid_t *g, const char *text, char *err, size_t errlen);
void pr_grid_clear(pr_grid_t *g);
/* Sets or replaces axis `name` of g with the values of axis `src` (copied). */
int pr_grid_set_axis(pr_grid_t *g, const pr_axis_t *src);
const pr_axis_t *pr_grid_axis(const pr_grid_t *g, const char *name);
/* number of configurations: the product of the axis lengths (0 if any axis is empty) */
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
    PR_VERDICT_PASSED, PR_VERDICT_FAILED, PR_VERDICT_INCONCLUSIVE, PR_VERDICT_NOT_BUILT, PR_VERDICT_NOT_RUN,
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
    /* out[k] for each output column (NaN when not applicable); returns a status. A status
     * other than PR_OK is recorded in the row's status column, with NaN outputs. */
    int (*row)(double *out, const pr_cfg_t *cfg);
    /* Fills res[k] for each claim of the preset from the finished CSV; returns their count. */
    int (*verdict)(pr_claim_result_t *res, const struct pr_csv *t);
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
} pr_csv_t;

/* Reads a CSV written by the driver. A last line without its newline (torn by a kill) is
 * ignored and, if truncate_torn, cut off the file. Returns PR_OK, PR_EIO, or PR_EINVAL
 * (with err filled) for a malformed file. */
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
} pr_sweep_opts_t;

/* Runs every configuration of g in this shard into opts->out. Returns 0, or an exit status
 * after printing a one-line error (2 bad usage or input, 1 I/O failure). */
int pr_sweep_run(const pr_preset_t *p, const pr_grid_t *g, const pr_sweep_opts_t *opts);

/* The grid of preset p for "tiny", "quick" or "full", with user overrides applied. */
int pr_preset_grid(pr_grid_t *g, const pr_preset_t *p, const char *size, const char *user,
                   char *err, size_t errlen);

/* Merges shard CSVs into out (written to a temporary file, then renamed). Returns an exit status. */
int pr_sweep_merge(const char *out, char **in, int nin, const char *command);

/* The command line as one string (arguments with spaces quoted); caller frees. */
char *pr_sweep_cmdline(int argc, char **argv);

/* polyrope plot on one CSV: FILE.csv -> FILE.png, FILE.pdf. Returns an exit status. */
int pr_plot_csv(const char *csv);

/* "Linux 6.1 x86_64, <cpu model>, N cores" */
void pr_machine_string(char *buf, size_t len);

#endif
