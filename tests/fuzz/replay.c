/* replay: runs a harness over every file of the folders (or files) named on the command line,
 * in name order, each under a time limit; a crash names its file. Fails when no file was found,
 * so that a wrong folder cannot pass. Built with gcc for the fast suite. */
#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include "fuzz.h"

static const char *current;

static void on_alarm(int sig)
{
    (void)sig;
    static const char msg[] = "replay: hang (over 20 s) on ";
    (void)!write(2, msg, sizeof msg - 1);
    (void)!write(2, current, strlen(current));
    (void)!write(2, "\n", 1);
    _exit(3);
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

static int replay_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "replay: cannot open %s\n", path);
        return 1;
    }
    uint8_t *buf = 0;
    size_t len = 0, cap = 0, got;
    do {
        if (len == cap) {
            cap = cap ? 2 * cap : 4096;
            buf = realloc(buf, cap);
            FUZZ_CHECK(buf, "out of memory");
        }
        got = fread(buf + len, 1, cap - len, f);
        len += got;
    } while (got);
    fclose(f);
    printf("replay: %s (%zu bytes)\n", path, len);
    fflush(stdout);
    current = path;
    alarm(20);
    /* an exact-size copy, so that ASan sees a read past the input */
    uint8_t *exact = malloc(len ? len : 1);
    memcpy(exact, buf, len);
    LLVMFuzzerTestOneInput(exact, len);
    alarm(0);
    free(exact);
    free(buf);
    return 0;
}

int main(int argc, char **argv)
{
    signal(SIGALRM, on_alarm);
    long files = 0;
    int bad = 0;
    for (int i = 1; i < argc; i++) {
        struct stat sb;
        if (stat(argv[i], &sb)) {
            continue; /* an absent regressions folder: nothing found yet */
        } else if (!S_ISDIR(sb.st_mode)) {
            bad |= replay_file(argv[i]);
            files++;
            continue;
        }
        struct dirent **ents;
        int n = scandir(argv[i], &ents, 0, by_name);
        for (int k = 0; k < n; k++) {
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", argv[i], ents[k]->d_name);
            if (ents[k]->d_name[0] != '.' && !stat(path, &sb) && S_ISREG(sb.st_mode)) {
                bad |= replay_file(path);
                files++;
            }
            free(ents[k]);
        }
        free(ents);
    }
    printf("replay: %ld files, %s\n", files, bad ? "unreadable files" : "no crash, no broken contract");
    if (!files)
        fprintf(stderr, "replay: no input files in the folders given\n");
    return bad || !files;
}
