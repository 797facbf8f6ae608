#include "cli.h"
#include "commands.h"

int pr_bench_toeplitz(int argc, char **argv)
{
    return pr_cli_fail("bench toeplitz", "not built yet");
}
