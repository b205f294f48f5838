/*
 * stats.c - trace aggregates on the control plane (see stats.h).
 * Placeholder until the handlers land: every route answers 501.
 */
#include <string.h>
#include "api/stats.h"

void api_stats(http_req *r, const char *store_url)
{
    (void)store_url;
    static const char body[] = "{\"error\":{\"message\":\"not implemented yet\",\"type\":\"api_error\",\"param\":null,\"code\":\"not_implemented\"}}";
    http_resp_send(r, 501, "application/json", body, sizeof body - 1);
}
