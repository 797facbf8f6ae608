/* .npy reader: the memory reader and the file reader (the same bytes through a path) agree on
 * status, shape and data; a success accounts for every byte; a success writes back and reads
 * back bit for bit. */
#include "polyrope.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    double *x, *y;
    int nd, nd2;
    long shape[PR_NPY_MAXDIM], shape2[PR_NPY_MAXDIM];
    int st = pr_npy_read_mem(&x, &nd, shape, data, size);
    FUZZ_CHECK((st == PR_OK) == (x != 0), "status %d with data %p", st, (void *)x);
    FUZZ_CHECK(st == PR_OK || nd == 0, "status %d with ndim %d", st, nd);
    FUZZ_CHECK(st >= 0 && st < PR_ESTATUS_COUNT && st != PR_EINVAL, "status %d", st);
    int st2 = pr_npy_read(&y, &nd2, shape2, fuzz_file(data, size));
    FUZZ_CHECK(st2 == st && nd2 == nd, "file reader: status %d ndim %d, memory reader: %d %d", st2, nd2, st, nd);
    size_t count = 1;
    for (int i = 0; st == PR_OK && i < nd; i++) {
        FUZZ_CHECK(shape[i] >= 0 && shape[i] == shape2[i], "dimension %d: %ld vs %ld", i, shape[i], shape2[i]);
        count *= (size_t)shape[i];
    }
    if (st == PR_OK) {
        FUZZ_CHECK(nd >= 0 && nd <= PR_NPY_MAXDIM, "ndim %d", nd);
        FUZZ_CHECK(count * 8 < size && size - count * 8 >= 10, "%zu doubles in %zu bytes", count, size);
        FUZZ_CHECK(!memcmp(x, data + size - 8 * count, 8 * count), "data are not the last bytes");
        FUZZ_CHECK(!memcmp(x, y, 8 * count), "file and memory readers disagree on the data");
        /* written back (version 1.0, canonical header), it reads back the same */
        if (count <= 4096) {
            char path[64];
            snprintf(path, sizeof path, "/proc/self/fd/%d", memfd_create("pr_fuzz_w", 0));
            FUZZ_CHECK(pr_npy_write(path, x, nd, shape) == PR_OK, "write back");
            double *z;
            int nd3;
            long shape3[PR_NPY_MAXDIM];
            FUZZ_CHECK(pr_npy_read(&z, &nd3, shape3, path) == PR_OK && nd3 == nd, "read back");
            FUZZ_CHECK(!memcmp(shape3, shape, sizeof(long) * nd) && !memcmp(z, x, 8 * count), "round trip");
            free(z);
            close(atoi(path + 14));
        }
    }
    free(x);
    free(y);
    return 0;
}
