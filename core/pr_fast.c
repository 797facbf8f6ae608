#include "pr_fast.h"
