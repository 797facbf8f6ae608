#include "pr_certexp.h"
