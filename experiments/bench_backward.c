#include "cli.h"
#include "commands.h"

int pr_bench_backward(int argc, char **argv)
{
    return pr_cli_fail("bench backward", "not built yet");
}
