#include "pr_toeplitz.h"
