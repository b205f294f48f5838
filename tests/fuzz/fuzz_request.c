/* fuzz_request.c - the gateway's request JSON decoding, for every endpoint. */
#include "gateway/request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const gw_endpoint eps[] = { EP_CHAT, EP_COMPLETIONS, EP_EMBEDDINGS, EP_MESSAGES };
    for (size_t i = 0; i < countof(eps); i++) {
        gw_request rq;
        gw_error e;
        if (gw_decode_request(eps[i], (const char *)data, size, &rq, &e) == ERR_OK)
            json_decref(rq.root);
        else {
            pool *p = pool_new(0);
            size_t n;
            gw_error_body(&e, API_OPENAI, p, &n);
            gw_error_body(&e, API_ANTHROPIC, p, &n);
            pool_free(p);
        }
    }
    return 0;
}
