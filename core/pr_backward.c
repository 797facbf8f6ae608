#include "pr_backward.h"
