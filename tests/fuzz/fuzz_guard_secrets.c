/*
 * fuzz_guard_secrets.c - libFuzzer driver for guard_scan_secrets
 * (src/guard/secrets.c): the checks of guard_fuzz.h, singling out one
 * secret type picked from the input's length.
 */
#include "guard_fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const guard_type types[] = { GT_API_KEY, GT_PRIVATE_KEY, GT_JWT, GT_CONN_STRING, GT_HIGH_ENTROPY };
    return guard_fuzz_run(guard_scan_secrets, GUARD_SECRETS_ALL, (uint64_t)1 << types[size % 5], data, size);
}
