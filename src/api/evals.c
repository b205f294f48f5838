/*
 * evals.c - evaluation runs on the control plane (see evals.h).
 * Placeholder until the handlers land: every route answers 501.
 */
#include <string.h>
#include "api/evals.h"

void api_evals(http_req *r, const char *store_url)
{
    (void)store_url;
    static const char body[] = "{\"error\":{\"message\":\"not implemented yet\",\"type\":\"api_error\",\"param\":null,\"code\":\"not_implemented\"}}";
    http_resp_send(r, 501, "application/json", body, sizeof body - 1);
}
