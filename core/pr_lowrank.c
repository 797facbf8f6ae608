#include "pr_lowrank.h"
