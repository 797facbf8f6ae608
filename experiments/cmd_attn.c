#include "cli.h"
#include "commands.h"

int pr_cmd_attn(int argc, char **argv)
{
    return pr_cli_fail("attn", "not built yet");
}
