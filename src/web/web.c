/*
 * web.c - serves the console's embedded assets under /ui/ (see web.h).
 *
 * Every answer is one http_resp_send of bytes that live as long as the
 * process; ETags are FNV-1a hashes of the content, computed once.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "core/common.h"
#include "web/web.h"

#define WEB_CSP                                                                                         \
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; " \
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"

static char (*etags)[24];
static pthread_once_t etags_once = PTHREAD_ONCE_INIT;

static void etags_init(void)
{
    etags = calloc(web_nassets ? web_nassets : 1, sizeof *etags);
    if (!etags)
        return;
    for (size_t i = 0; i < web_nassets; i++) {
        uint64_t h = 0xcbf29ce484222325ULL;
        for (size_t k = 0; k < web_assets[i].len; k++)
            h = (h ^ web_assets[i].data[k]) * 0x100000001b3ULL;
        snprintf(etags[i], sizeof etags[i], "\"%016llx\"", (unsigned long long)h);
    }
}

const web_asset *web_find(const char *path, size_t len)
{
    size_t lo = 0, hi = web_nassets;
    while (lo < hi) { /* the table is sorted by path (LC_ALL=C) */
        size_t mid = lo + (hi - lo) / 2;
        const char *p = web_assets[mid].path;
        size_t plen = strlen(p);
        int c = memcmp(p, path, MIN(plen, len));
        if (c == 0)
            c = plen < len ? -1 : plen > len ? 1 : 0;
        if (c == 0)
            return &web_assets[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

const char *web_content_type(const char *path, size_t len)
{
    static const struct { const char *ext, *type; } types[] = {
        { ".html", "text/html; charset=utf-8" },
        { ".js", "text/javascript; charset=utf-8" },
        { ".mjs", "text/javascript; charset=utf-8" },
        { ".css", "text/css; charset=utf-8" },
        { ".svg", "image/svg+xml" },
        { ".json", "application/json" },
        { ".png", "image/png" },
        { ".ico", "image/x-icon" },
        { ".txt", "text/plain; charset=utf-8" },
    };
    for (size_t i = 0; i < countof(types); i++) {
        size_t el = strlen(types[i].ext);
        if (len >= el && strncasecmp(path + len - el, types[i].ext, el) == 0)
            return types[i].type;
    }
    return "application/octet-stream";
}

static void send_text(http_req *r, int status, const char *msg)
{
    http_resp_send(r, status, "text/plain; charset=utf-8", msg, strlen(msg));
}

void web_serve(http_req *r)
{
    if (!sv_eq_cstr(r->method, "GET") && !sv_eq_cstr(r->method, "HEAD")) {
        http_resp_header(r, "allow", "GET, HEAD");
        send_text(r, 405, "the console is read with GET\n");
        return;
    }
    if (r->path.len == 3) { /* "/ui" */
        http_resp_header(r, "location", "/ui/");
        send_text(r, 308, "see /ui/\n");
        return;
    }
    const char *p = r->path.p + 4; /* after "/ui/" */
    size_t len = r->path.len - 4;
    const char *last = p;
    for (size_t i = 0; i < len; i++) {
        if (p[i] == '/')
            last = p + i + 1;
        /* no dot segments, no empty segments: nothing outside ui/ can be named */
        if (p[i] == '/' && (i + 1 == len || p[i + 1] == '/' || p[i + 1] == '.')) {
            if (i + 1 == len)
                break;
            send_text(r, 404, "no such file in the console\n");
            return;
        }
    }
    const web_asset *a = NULL;
    if (len > 0 && p[0] != '.')
        a = web_find(p, len);
    if (!a) {
        /* the app's sections are pages whatever their ids hold (prompt
         * names may have dots); elsewhere a name with a dot is a file */
        static const char *const sections[] = { "traces/", "prompts/", "evals/", "guardrails/" };
        bool page = false;
        for (size_t i = 0; i < countof(sections) && !page; i++)
            page = len > strlen(sections[i]) && memcmp(p, sections[i], strlen(sections[i])) == 0;
        if (!page && memchr(last, '.', (size_t)(p + len - last))) {
            send_text(r, 404, "no such file in the console\n");
            return;
        }
        a = web_find("index.html", 10); /* a page of the app: the app routes it */
        if (!a) {
            send_text(r, 404, "this build has no console assets\n");
            return;
        }
    }
    pthread_once(&etags_once, etags_init);
    const char *etag = etags ? etags[a - web_assets] : NULL;
    http_resp_header(r, "cache-control", "no-cache");
    http_resp_header(r, "x-content-type-options", "nosniff");
    http_resp_header(r, "referrer-policy", "no-referrer");
    http_resp_header(r, "content-security-policy", WEB_CSP);
    if (etag) {
        http_resp_header(r, "etag", etag);
        sv inm = http_req_header(r, "if-none-match");
        if (inm.len && sv_eq_cstr(inm, etag)) {
            http_resp_send(r, 304, NULL, "", 0);
            return;
        }
    }
    http_resp_send(r, 200, web_content_type(a->path, strlen(a->path)), (const char *)a->data, a->len);
}
