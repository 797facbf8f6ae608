#include "cli.h"
#include "commands.h"

int pr_bench_dense(int argc, char **argv)
{
    return pr_cli_fail("bench dense", "not built yet");
}
