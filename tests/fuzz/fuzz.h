/*
 * fuzz.h: what every libFuzzer harness in tests/fuzz shares: the entry point
 * and CHECK, a property that must hold (abort, which libFuzzer reports with
 * the input that broke it; active whatever NDEBUG says).
 */
#ifndef HERALD_FUZZ_H
#define HERALD_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#define CHECK(x)                                                                                   \
	do {                                                                                       \
		if (!(x))                                                                          \
			abort();                                                                   \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif /* HERALD_FUZZ_H */
