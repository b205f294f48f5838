/*
 * common.c - the REST handlers' shared answers (see common.h).
 */
#include <stdlib.h>
#include <string.h>
#include "api/common.h"

void api_send_json(http_req *r, int status, const json_t *j)
{
    char *s = j ? json_dumps(j, API_JSON_FLAGS) : NULL;
    if (!s) {
        static const char oom[] =
            "{\"error\":{\"message\":\"out of memory\",\"type\":\"server_error\",\"param\":null,\"code\":null}}";
        http_resp_send(r, 500, "application/json", oom, sizeof oom - 1);
        return;
    }
    http_resp_send(r, status, "application/json", s, strlen(s));
    free(s);
}

void api_send_error(http_req *r, const query_error *e)
{
    json_t *j = query_error_json(e);
    api_send_json(r, e->status ? e->status : 500, j);
    json_decref(j);
}
