/* grid parser (sweep --grid, preset grids): the text up to the first NUL. Contract: a refusal
 * is PR_EINVAL (PR_EBUDGET past the grid limits) with a reason (it may quote the input;
 * pr_cli_fail prints it as one line) or PR_ENOMEM; a grid has known, distinct axes with at least
 * one value each and a count equal to the product of their lengths; its text (pr_grid_text)
 * parses back to the same grid; every configuration's key can be made, first and last. */
#include "../../experiments/sweep.h"
#include "polyrope.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0; /* a --grid is one command-line argument */
    char *text = fuzz_string(data, size), err[512] = "";
    pr_grid_t g, h;
    int st = pr_grid_parse(&g, text, err, sizeof err);
    FUZZ_CHECK(st == PR_OK || st == PR_EINVAL || st == PR_EBUDGET || st == PR_ENOMEM, "status %d", st);
    if (st == PR_EINVAL || st == PR_EBUDGET)
        FUZZ_CHECK(err[0], "refused without a reason");
    if (st == PR_OK && g.naxes) {
        for (int i = 0; i < g.naxes; i++) {
            FUZZ_CHECK(g.ax[i].nv > 0, "axis %s has no values", g.ax[i].name);
            for (int j = 0; j < i; j++)
                FUZZ_CHECK(strcmp(g.ax[i].name, g.ax[j].name), "axis %s twice", g.ax[i].name);
        }
        char *t = pr_grid_text(&g);
        FUZZ_CHECK(t, "pr_grid_text failed");
        int st2 = pr_grid_parse(&h, t, err, sizeof err);
        FUZZ_CHECK(st2 == PR_OK && h.naxes == g.naxes, "its own text '%s' does not parse back: %s", t, err);
        for (int i = 0; i < g.naxes; i++) {
            FUZZ_CHECK(!strcmp(g.ax[i].name, h.ax[i].name) && g.ax[i].nv == h.ax[i].nv, "axis %d differs", i);
            for (int k = 0; k < g.ax[i].nv; k++)
                FUZZ_CHECK(!strcmp(g.ax[i].v[k], h.ax[i].v[k]), "axis %s value %d: '%s' then '%s'", g.ax[i].name, k,
                           g.ax[i].v[k], h.ax[i].v[k]);
        }
        pr_grid_clear(&h);
        free(t);
        long count = pr_grid_count(&g), product = 1;
        int overflow = 0;
        for (int i = 0; i < g.naxes; i++)
            overflow |= __builtin_mul_overflow(product, (long)g.ax[i].nv, &product);
        FUZZ_CHECK(!overflow && count == product, "%d axes: count %ld, product %ld%s", g.naxes, count, product,
                   overflow ? " (overflows a long)" : "");
        pr_cfg_t c;
        long idx[2] = {0, count - 1};
        for (int i = 0; i < 2; i++) {
            pr_cfg_at(&c, &g, idx[i]);
            char *key = pr_cfg_key(&c);
            FUZZ_CHECK(key, "no key");
            free(key);
        }
    }
    pr_grid_clear(&g);
    free(text);
    return 0;
}
