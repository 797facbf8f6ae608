/* baseline reader (check --baseline): the bytes as the baseline file, compared with results of
 * every real claim id over a few configurations. Contract: -1 (unparsable) or a count of
 * regressions no larger than the lines that could name one, each printed on its own line. */
#include "../../proofs-check/checks.h"
#include "polyrope.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static pr_check_result_t *res;
    static const char *const configs[] = {"rope/full/exact", "rope/full/float", "general/causal/float", "n=8"};
    if (!res) {
        res = calloc((size_t)pr_ncheck, sizeof *res);
        FUZZ_CHECK(res, "out of memory");
        for (int r = 0; r < pr_ncheck; r++) {
            res[r].id = pr_checks[r].id;
            res[r].nconfig = 4;
            for (int k = 0; k < 4; k++) {
                snprintf(res[r].config[k], PR_CHECK_CONFIG_LEN, "%s", configs[k]);
                res[r].config_worst[k] = k == 3 ? __builtin_nan("") : 0.25 * k;
            }
        }
    }
    FILE *base = fmemopen((void *)(size ? data : (const uint8_t *)""), size ? size : 1, "r");
    FUZZ_CHECK(base, "fmemopen");
    if (!size)
        fgetc(base); /* fmemopen cannot be empty: skip its one byte */
    char *out = 0;
    size_t outlen = 0;
    FILE *o = open_memstream(&out, &outlen);
    FUZZ_CHECK(o, "open_memstream");
    int bad = pr_check_compare(o, base, res, pr_ncheck, 1.0);
    fclose(o);
    fclose(base);
    FUZZ_CHECK(bad >= -1, "status %d", bad);
    if (bad >= 0) {
        FUZZ_CHECK(fuzz_lines(out, outlen) == bad, "%d regressions, %d lines printed", bad, fuzz_lines(out, outlen));
        /* a line (at most 255 bytes as read) names one claim id and one configuration */
        int lines = fuzz_lines((const char *)data, size) + 1 + (int)(size / 255);
        FUZZ_CHECK(bad <= lines, "%d regressions from %d lines", bad, lines);
    } else {
        FUZZ_CHECK(!outlen || out[outlen - 1] == '\n', "partial output before the refusal");
    }
    free(out);
    return 0;
}
