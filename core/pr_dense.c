#include "pr_dense.h"
