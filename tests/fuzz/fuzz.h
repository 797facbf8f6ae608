/* fuzz: what every harness shares. A harness is one LLVMFuzzerTestOneInput over outside bytes;
 * libFuzzer drives it when built with clang (-Dfuzz=true, tests/fuzz/run.sh), and replay.c
 * drives it over the corpus and regression files in the fast suite (gcc, release and ASan).
 * Besides not crashing, each harness checks its parser's contract and aborts when it is broken,
 * so the fuzzer finds wrong answers as well as memory errors. */
#ifndef PR_FUZZ_H
#define PR_FUZZ_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* the contract broken: say what, then abort (libFuzzer keeps the input as a crash) */
#define FUZZ_CHECK(cond, ...)                                                             \
    do {                                                                                  \
        if (!(cond)) {                                                                    \
            fprintf(stderr, "fuzz: %s:%d: %s: ", __FILE__, __LINE__, #cond);              \
            fprintf(stderr, __VA_ARGS__);                                                 \
            fputc('\n', stderr);                                                          \
            abort();                                                                      \
        }                                                                                 \
    } while (0)

/* A file holding data[0..size), as a path (/proc/self/fd/N of a memfd made once per process),
 * for parsers that take a path: no disk traffic, nothing left behind. */
static inline const char *fuzz_file(const uint8_t *data, size_t size)
{
    static int fd = -1;
    static char path[64];
    if (fd < 0) {
        fd = memfd_create("pr_fuzz", 0);
        FUZZ_CHECK(fd >= 0, "memfd_create failed");
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    FUZZ_CHECK(ftruncate(fd, 0) == 0, "ftruncate");
    for (size_t done = 0; done < size;) {
        ssize_t w = pwrite(fd, data + done, size - done, (off_t)done);
        FUZZ_CHECK(w > 0, "pwrite");
        done += (size_t)w;
    }
    return path;
}

/* data as a NUL-terminated string (cut at the first NUL, as a command line or argv would) */
static inline char *fuzz_string(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    FUZZ_CHECK(s, "out of memory");
    memcpy(s, data, size);
    s[size] = 0;
    return s;
}

/* number of newlines in s */
static inline int fuzz_lines(const char *s, size_t len)
{
    int k = 0;
    for (size_t i = 0; i < len; i++)
        k += s[i] == '\n';
    return k;
}

#endif
