#include "cli.h"
#include "commands.h"

int pr_cmd_reproduce(int argc, char **argv)
{
    return pr_cli_fail("reproduce", "not built yet");
}
