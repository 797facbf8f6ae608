#include "pr_xtoeplitz.h"
