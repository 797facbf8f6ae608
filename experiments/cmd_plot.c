#include "cli.h"
#include "commands.h"

int pr_cmd_plot(int argc, char **argv)
{
    return pr_cli_fail("plot", "not built yet");
}
