#include "pr_xexpand.h"
