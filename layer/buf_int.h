/*
 * buf_int.h: moved to core/buf_int.h with the rest of the base library.
 * Kept so that tests/layer/test_codec.c, which still names it, compiles.
 */
#include "core/buf_int.h"
