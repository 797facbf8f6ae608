#include "pr_npy.h"
