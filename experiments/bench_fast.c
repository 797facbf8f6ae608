#include "cli.h"
#include "commands.h"

int pr_bench_fast(int argc, char **argv)
{
    return pr_cli_fail("bench fast", "not built yet");
}
