/* CSV reader (sweep --resume, --merge, plot): the bytes as a file. Contract: PR_OK, PR_EINVAL
 * with a reason, or PR_EIO/PR_ENOMEM; a table has a header and rows of exactly its columns;
 * every accessor works on every cell. Reading with truncate_torn cuts only the torn last line:
 * the file then reads back as the same table. */
#include "../../experiments/sweep.h"
#include "polyrope.h"
#include "fuzz.h"

static void check_table(const pr_csv_t *t)
{
    FUZZ_CHECK(t->ncols > 0 && t->ncols <= PR_CSV_MAXCOLS && t->nrows >= 0, "%d columns, %ld rows", t->ncols,
               t->nrows);
    for (int c = 0; c < t->ncols; c++)
        FUZZ_CHECK(t->cols[c] && pr_csv_col(t, t->cols[c]) >= 0 && pr_csv_col(t, t->cols[c]) <= c, "column %d", c);
    for (long r = 0; r < t->nrows; r++) {
        FUZZ_CHECK(t->lines[r] && !strchr(t->lines[r], '\n'), "row %ld line", r);
        for (int c = 0; c < t->ncols; c++) {
            FUZZ_CHECK(t->rows[r][c] && !strchr(t->rows[r][c], ','), "row %ld column %d", r, c);
            (void)pr_csv_num(t, r, t->cols[c]);
            FUZZ_CHECK(pr_csv_str(t, r, t->cols[c]), "row %ld column %s", r, t->cols[c]);
        }
    }
    for (int i = 0; i < t->ncomments; i++)
        FUZZ_CHECK(t->comments[i][0] == '#', "comment %d", i);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file(data, size);
    pr_csv_t t, u;
    char err[512] = "";
    int st = pr_csv_read(&t, path, 0, err, sizeof err);
    FUZZ_CHECK(st == PR_OK || st == PR_EINVAL || st == PR_EIO || st == PR_ENOMEM, "status %d", st);
    if (st)
        FUZZ_CHECK(err[0], "refused without a reason");
    if (st)
        return 0;
    check_table(&t);
    /* resume's reading: cut the torn line, then the file alone reads as the same table */
    int st2 = pr_csv_read(&u, path, 1, err, sizeof err);
    FUZZ_CHECK(st2 == PR_OK, "second read with truncate_torn: %d %s", st2, err);
    pr_csv_clear(&u);
    st2 = pr_csv_read(&u, path, 0, err, sizeof err);
    FUZZ_CHECK(st2 == PR_OK && u.nrows == t.nrows && u.ncols == t.ncols && u.ncomments == t.ncomments,
               "after the cut: status %d, %ld rows (was %ld)", st2, u.nrows, t.nrows);
    for (long r = 0; r < t.nrows; r++)
        FUZZ_CHECK(!strcmp(t.lines[r], u.lines[r]), "row %ld changed by the cut", r);
    pr_csv_clear(&u);
    pr_csv_clear(&t);
    return 0;
}
