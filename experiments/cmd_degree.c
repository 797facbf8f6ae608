#include "cli.h"
#include "commands.h"

int pr_cmd_degree(int argc, char **argv)
{
    return pr_cli_fail("degree", "not built yet");
}
