/*
 * fuzz_h1url.c - the h1 router's URL parser against libcurl's: whatever
 * parse_target() accepts, curl_url() must accept too, with the same port
 * and (after libcurl's normalisation) the same path and query; and
 * noproxy_match() must not crash on any list.
 */
#include <curl/curl.h>
#include "../../src/http/h1client.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char url[512];
    if (size >= sizeof url - 8)
        return 0;
    const uint8_t *nl = memchr(data, '\n', size);
    size_t ulen = nl ? (size_t)(nl - data) : size;
    memcpy(url, data, ulen);
    url[ulen] = '\0';
    if (strlen(url) != ulen)
        return 0;
    target t;
    if (!parse_target(url, &t))
        return 0;
    char np[512];
    size_t rest = nl ? size - ulen - 1 : 0;
    memcpy(np, nl ? (const char *)nl + 1 : "", rest);
    np[rest] = '\0';
    noproxy_match(&t, np);
    CURLU *h = curl_url();
    if (curl_url_set(h, CURLUPART_URL, url, 0) != CURLUE_OK)
        abort(); /* we would send what libcurl refuses */
    char *port = NULL, *path = NULL, *query = NULL;
    curl_url_get(h, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT);
    curl_url_get(h, CURLUPART_PATH, &path, 0);
    curl_url_get(h, CURLUPART_QUERY, &query, 0);
    if (!port || (unsigned)strtoul(port, NULL, 10) != t.port)
        abort();
    /* our request target: path, '/' first when empty or a query only */
    char mine[600], theirs[600];
    snprintf(mine, sizeof mine, "%s%.*s", (t.path.len == 0 || t.path.p[0] != '/') ? "/" : "",
             (int)t.path.len, t.path.p);
    snprintf(theirs, sizeof theirs, "%s%s%s", path ? path : "/", query ? "?" : "", query ? query : "");
    if (strcmp(mine, theirs) != 0) {
        fprintf(stderr, "url %s: mine %s theirs %s\n", url, mine, theirs);
        abort();
    }
    curl_free(port);
    curl_free(path);
    curl_free(query);
    curl_url_cleanup(h);
    return 0;
}
