#include "cli.h"
#include "commands.h"

int pr_cmd_check(int argc, char **argv)
{
    return pr_cli_fail("check", "not built yet");
}
