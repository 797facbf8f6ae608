/* `# preset:` and comment handling as `polyrope plot` uses them: read the CSV, take the value of
 * its "# preset:" line, look the preset up. Contract: a comment value lies inside its comment
 * line; a preset found is one of the project's own (its name equal to the value, a plain word:
 * no path can come from a CSV); the name stays readable until the table is cleared. */
#include <ctype.h>
#include "../../experiments/sweep.h"
#include "polyrope.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pr_csv_t t;
    char err[512] = "";
    if (pr_csv_read(&t, fuzz_file(data, size), 0, err, sizeof err))
        return 0;
    static const char *const tags[] = {"preset", "grid", "command", "configurations", "polyrope", "machine", ""};
    for (size_t k = 0; k < sizeof tags / sizeof tags[0]; k++) {
        const char *v = pr_csv_comment(&t, tags[k]);
        if (!v)
            continue;
        int inside = 0;
        for (int i = 0; i < t.ncomments && !inside; i++)
            inside = v > t.comments[i] && v <= t.comments[i] + strlen(t.comments[i]);
        FUZZ_CHECK(inside, "value of # %s: lies outside every comment", tags[k]);
    }
    const char *name = pr_csv_comment(&t, "preset");
    if (name) {
        const pr_preset_t *p = pr_preset_find(name);
        if (p) {
            FUZZ_CHECK(p >= pr_presets && p < pr_presets + pr_npresets, "a preset outside the table");
            FUZZ_CHECK(!strcmp(p->name, name), "'%s' found as preset %s", name, p->name);
            for (const char *c = p->name; *c; c++)
                FUZZ_CHECK(isalnum((unsigned char)*c) || *c == '-' || *c == '_', "preset name '%s'", p->name);
        }
    }
    pr_csv_clear(&t);
    return 0;
}
