#include "cli.h"
#include "commands.h"

int pr_cmd_sweep(int argc, char **argv)
{
    return pr_cli_fail("sweep", "not built yet");
}
