#include "pr_expoly.h"
