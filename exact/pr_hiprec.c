#include "pr_hiprec.h"
