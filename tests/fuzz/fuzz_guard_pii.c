/*
 * fuzz_guard_pii.c - libFuzzer driver for guard_scan_pii (src/guard/pii.c):
 * the checks of guard_fuzz.h, singling out one PII type picked from the
 * input's length.
 */
#include "guard_fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return guard_fuzz_run(guard_scan_pii, GUARD_PII_ALL, (uint64_t)1 << (size % (GT_CRYPTO + 1)), data, size);
}
