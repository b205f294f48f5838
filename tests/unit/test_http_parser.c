/*
 * test_http_parser.c - tests of src/http/parser.c: tables of good and bad
 * request heads (each good one also fed at every byte split, where every
 * prefix must say INCOMPLETE), pipelining, header limits, the chunked
 * decoder fed whole, in two slices at every split and byte by byte, its
 * error cases, and the URL helpers.
 *
 * Inputs are copied into exact-size heap buffers so that AddressSanitizer
 * reports any read past len.
 */
#include <stdlib.h>

#include "http/parser.h"
#include "test.h"

#define R(lit) lit, sizeof(lit) - 1

static char *dup_exact(const char *p, size_t n)
{
    char *d = malloc(n ? n : 1);
    if (n)
        memcpy(d, p, n);
    return d;
}

/* Parses the first n bytes of raw from an exact-size copy. */
static int parse_n(const char *raw, size_t n, http_request_head *h, http_header *hdrs,
                   size_t max, const char **reason)
{
    char *copy = dup_exact(raw, n);
    int rc = http_parse_request(copy, n, h, hdrs, max, reason);
    /* views point into copy; re-aim them at raw so callers can read them */
    if (rc > 0) {
        ptrdiff_t d = raw - copy;
        h->method.p += d;
        h->target.p += d;
        for (size_t i = 0; i < h->nheaders; i++) {
            h->headers[i].name.p += d;
            h->headers[i].value.p += d;
        }
    }
    free(copy);
    return rc;
}

static bool sv_is(sv s, const char *c) { return c && s.len == strlen(c) && memcmp(s.p, c, s.len) == 0; }

/* ------------------------------------------------------------------------ */

typedef struct good_case {
    const char *raw;
    size_t len;
    size_t head_len; /* 0: all of raw */
    const char *method, *target;
    int minor;
    size_t nheaders;
    int64_t content_length;
    bool chunked, keep_alive, expect;
    const char *hname, *hvalue; /* a header to look up, NULL for none */
} good_case;

static const good_case good[] = {
    { R("GET / HTTP/1.1\r\nHost: a\r\n\r\n"), 0, "GET", "/", 1, 1, -1, false, true, false, "host", "a" },
    { R("GET /v1/models?x=1 HTTP/1.0\r\n\r\n"), 0, "GET", "/v1/models?x=1", 0, 0, -1, false, false, false, NULL, NULL },
    { R("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"), 0, "GET", "/", 0, 1, -1, false, true, false, NULL, NULL },
    { R("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n"), 0, "GET", "/", 0, 1, -1, false, false, false, NULL, NULL },
    { R("GET / HTTP/1.1\r\nConnection: close\r\n\r\n"), 0, "GET", "/", 1, 1, -1, false, false, false, NULL, NULL },
    { R("GET / HTTP/1.1\r\nConnection: Upgrade, ,keep-alive\r\nConnection: CLOSE\r\n\r\n"), 0, "GET", "/", 1, 2, -1, false, false, false, NULL, NULL },
    { R("GET / HTTP/1.1\r\nConnection: Upgrade\r\n\r\n"), 0, "GET", "/", 1, 1, -1, false, true, false, NULL, NULL },
    { R("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"), 66, "POST",
      "/v1/chat/completions", 1, 2, 5, false, true, false, "CONTENT-LENGTH", "5" },
    { R("POST / HTTP/1.1\r\nContent-Length: 5\r\ncontent-length: 005\r\n\r\n"), 0, "POST", "/", 1, 2, 5, false, true, false, NULL, NULL },
    { R("POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n"), 0, "POST", "/", 1, 1, 0, false, true, false, NULL, NULL },
    { R("POST / HTTP/1.1\r\nContent-Length: 999999999999999999\r\n\r\n"), 0, "POST", "/", 1, 1, 999999999999999999LL, false, true, false, NULL, NULL },
    { R("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"), 47, "POST", "/", 1, 1, -1, true, true, false, NULL, NULL },
    { R("POST / HTTP/1.1\r\nTransfer-Encoding: CHUNKED\r\n\r\n"), 0, "POST", "/", 1, 1, -1, true, true, false, NULL, NULL },
    { R("POST / HTTP/1.1\r\nTransfer-Encoding: , chunked ,\r\n\r\n"), 0, "POST", "/", 1, 1, -1, true, true, false, NULL, NULL },
    { R("POST / HTTP/1.1\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\n"), 0, "POST", "/", 1, 2, 3, false, true, true, NULL, NULL },
    { R("POST / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n"), 0, "POST", "/", 0, 1, -1, false, false, false, NULL, NULL },
    { R("POST / HTTP/1.1\r\nExpect: something-else\r\n\r\n"), 0, "POST", "/", 1, 1, -1, false, true, false, NULL, NULL },
    { R("OPTIONS * HTTP/1.1\r\n\r\n"), 0, "OPTIONS", "*", 1, 0, -1, false, true, false, NULL, NULL },
    { R("GET http://example.com/x?y HTTP/1.1\r\n\r\n"), 0, "GET", "http://example.com/x?y", 1, 0, -1, false, true, false, NULL, NULL },
    { R("GET HTTPS://example.com HTTP/1.1\r\n\r\n"), 0, "GET", "HTTPS://example.com", 1, 0, -1, false, true, false, NULL, NULL },
    { R("\r\n\nGET / HTTP/1.1\r\n\r\n"), 0, "GET", "/", 1, 0, -1, false, true, false, NULL, NULL },
    { R("GET / HTTP/1.1\nHost: a\nX: b\r\n\n"), 0, "GET", "/", 1, 2, -1, false, true, false, "x", "b" },
    { R("GET / HTTP/1.1\r\nX-A: \t spaced  value \t \r\n\r\n"), 0, "GET", "/", 1, 1, -1, false, true, false, "x-a", "spaced  value" },
    { R("GET / HTTP/1.1\r\nX-Empty:\r\nX-Blank:  \t\r\n\r\n"), 0, "GET", "/", 1, 2, -1, false, true, false, "x-blank", "" },
    { R("GET / HTTP/1.1\r\nX-U: caf\xc3\xa9 \xff\r\n\r\n"), 0, "GET", "/", 1, 1, -1, false, true, false, "x-u", "caf\xc3\xa9 \xff" },
    { R("GET / HTTP/1.1\r\n!#$%&'*+-.^_`|~09azAZ: \"v\" (c) [x]\r\n\r\n"), 0, "GET", "/", 1, 1, -1, false, true, false,
      "!#$%&'*+-.^_`|~09azaz", "\"v\" (c) [x]" },
    { R("M-SEARCH /a/b/%41;p=1?q=%20&r=[1] HTTP/1.1\r\n\r\n"), 0, "M-SEARCH", "/a/b/%41;p=1?q=%20&r=[1]", 1, 0, -1, false, true, false, NULL, NULL },
    { R("GET / HTTP/1.1\r\nHost: a\r\nHost-Name: b\r\n\r\n"), 0, "GET", "/", 1, 2, -1, false, true, false, "host-name", "b" },
};

TEST(http_parse_good_requests)
{
    for (size_t i = 0; i < countof(good); i++) {
        const good_case *g = &good[i];
        size_t head = g->head_len ? g->head_len : g->len;
        http_header hdrs[16];
        http_request_head h;
        const char *reason = "unset";
        int rc = parse_n(g->raw, g->len, &h, hdrs, countof(hdrs), &reason);
        if (rc != (int)head) {
            test_fail(__FILE__, __LINE__, "good[%zu]: rc %d, expected %zu (%s)", i, rc, head,
                      reason ? reason : "no reason");
            continue;
        }
        CHECK(reason == NULL);
        CHECK(sv_is(h.method, g->method));
        CHECK(sv_is(h.target, g->target));
        CHECK_INT(h.minor_version, g->minor);
        CHECK_INT(h.nheaders, g->nheaders);
        CHECK(h.headers == hdrs);
        CHECK_INT(h.content_length, g->content_length);
        CHECK_INT(h.chunked, g->chunked);
        CHECK_INT(h.keep_alive, g->keep_alive);
        CHECK_INT(h.expect_continue, g->expect);
        if (g->hname) {
            const http_header *x = http_header_get(&h, g->hname);
            CHECK(x != NULL);
            if (x)
                CHECK(sv_is(x->value, g->hvalue));
        }
        if (!(sv_is(h.method, g->method) && sv_is(h.target, g->target)))
            test_fail(__FILE__, __LINE__, "good[%zu]: fields differ", i);
    }
}

TEST(http_parse_every_prefix_is_incomplete)
{
    for (size_t i = 0; i < countof(good); i++) {
        const good_case *g = &good[i];
        size_t head = g->head_len ? g->head_len : g->len;
        for (size_t n = 0; n < head; n++) {
            http_header hdrs[16];
            http_request_head h;
            const char *reason = NULL;
            int rc = parse_n(g->raw, n, &h, hdrs, countof(hdrs), &reason);
            if (rc != HTTP_PARSE_INCOMPLETE)
                test_fail(__FILE__, __LINE__, "good[%zu] prefix %zu: rc %d (%s)", i, n, rc,
                          reason ? reason : "");
        }
        /* and every longer slice gives the same head length */
        for (size_t n = head; n <= g->len; n++) {
            http_header hdrs[16];
            http_request_head h;
            CHECK_INT(parse_n(g->raw, n, &h, hdrs, countof(hdrs), NULL), head);
        }
    }
}

/* ------------------------------------------------------------------------ */

typedef struct bad_case {
    const char *raw;
    size_t len;
    int code;
    const char *reason;
} bad_case;

static const bad_case bad[] = {
    { R(" GET / HTTP/1.1\r\n\r\n"), HTTP_PARSE_ERROR, "empty method" },
    { R("G(T / HTTP/1.1\r\n\r\n"), HTTP_PARSE_ERROR, "invalid character in method" },
    { R("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"), HTTP_PARSE_ERROR, "invalid character in method" },
    { R("\0GET / HTTP/1.1\r\n\r\n"), HTTP_PARSE_ERROR, "invalid character in method" },
    { R("GET\r\n\r\n"), HTTP_PARSE_ERROR, "invalid character in method" },
    { R("\rGET / HTTP/1.1\r\n\r\n"), HTTP_PARSE_ERROR, "bare CR before the request line" },
    { R("GET  / HTTP/1.1\r\n\r\n"), HTTP_PARSE_ERROR, "empty request target" },
    { R("GET /\x7f HTTP/1.1\r\n\r\n"), HTTP_PARSE_ERROR, "invalid character in request target" },
    { R("GET /\x01 HTTP/1.1\r\n\r\n"), HTTP_PARSE_ERROR, "invalid character in request target" },
    { R("GET /\xc3\xa9 HTTP/1.1\r\n\r\n"), HTTP_PARSE_ERROR, "invalid character in request target" },
    { R("GET /\tx HTTP/1.1\r\n\r\n"), HTTP_PARSE_ERROR, "invalid character in request target" },
    { R("GET /\r\n\r\n"), HTTP_PARSE_ERROR, "invalid character in request target" },
    { R("GET x HTTP/1.1\r\n\r\n"), HTTP_PARSE_ERROR, "invalid request target" },
    { R("GET * HTTP/1.1\r\n\r\n"), HTTP_PARSE_ERROR, "invalid request target" },
    { R("OPTIONS *x HTTP/1.1\r\n\r\n"), HTTP_PARSE_ERROR, "invalid request target" },
    { R("CONNECT host:443 HTTP/1.1\r\n\r\n"), HTTP_PARSE_ERROR, "invalid request target" },
    { R("GET http:// HTTP/1.1\r\n\r\n"), HTTP_PARSE_ERROR, "invalid request target" },
    { R("GET ftp://x/ HTTP/1.1\r\n\r\n"), HTTP_PARSE_ERROR, "invalid request target" },
    { R("GET /a b HTTP/1.1\r\n\r\n"), HTTP_PARSE_ERROR, "invalid character in HTTP version" },
    { R("GET / HTTP/1.1 \r\n\r\n"), HTTP_PARSE_ERROR, "invalid character in HTTP version" },
    { R("GET / HTTP/2.0\r\n\r\n"), HTTP_PARSE_BAD_VERSION, "unsupported HTTP version" },
    { R("GET / HTTP/1.2\r\n\r\n"), HTTP_PARSE_BAD_VERSION, "unsupported HTTP version" },
    { R("GET / HTTP/0.9\r\n\r\n"), HTTP_PARSE_BAD_VERSION, "unsupported HTTP version" },
    { R("GET / HTTP/3.0\r\nX: \x01\r\n\r\n"), HTTP_PARSE_BAD_VERSION, "unsupported HTTP version" },
    { R("GET / HTTP/1.1x\r\n\r\n"), HTTP_PARSE_ERROR, "invalid HTTP version" },
    { R("GET / http/1.1\r\n\r\n"), HTTP_PARSE_ERROR, "invalid HTTP version" },
    { R("GET / HTTP/1\r\n\r\n"), HTTP_PARSE_ERROR, "invalid HTTP version" },
    { R("GET / HTTP/10.0\r\n\r\n"), HTTP_PARSE_ERROR, "invalid HTTP version" },
    { R("GET / \r\n\r\n"), HTTP_PARSE_ERROR, "invalid HTTP version" },
    { R("GET / HTTP/1.1\rX: a\r\n\r\n"), HTTP_PARSE_ERROR, "bare CR in the request line" },
    { R("GET / HTTP/1.1\r\nHost : a\r\n\r\n"), HTTP_PARSE_ERROR, "whitespace before colon in header" },
    { R("GET / HTTP/1.1\r\nHost\t: a\r\n\r\n"), HTTP_PARSE_ERROR, "whitespace before colon in header" },
    { R("GET / HTTP/1.1\r\nHo(st: a\r\n\r\n"), HTTP_PARSE_ERROR, "invalid character in header name" },
    { R("GET / HTTP/1.1\r\nHost\r\n\r\n"), HTTP_PARSE_ERROR, "invalid character in header name" },
    { R("GET / HTTP/1.1\r\nH\xc3\xa9: a\r\n\r\n"), HTTP_PARSE_ERROR, "invalid character in header name" },
    { R("GET / HTTP/1.1\r\n: a\r\n\r\n"), HTTP_PARSE_ERROR, "empty header name" },
    { R("GET / HTTP/1.1\r\n Host: a\r\n\r\n"), HTTP_PARSE_ERROR, "header line starts with whitespace (obs-fold)" },
    { R("GET / HTTP/1.1\r\nX: a\r\n\tb\r\n\r\n"), HTTP_PARSE_ERROR, "header line starts with whitespace (obs-fold)" },
    { R("GET / HTTP/1.1\r\nX: a\x01" "b\r\n\r\n"), HTTP_PARSE_ERROR, "invalid character in header value" },
    { R("GET / HTTP/1.1\r\nX: a\0b\r\n\r\n"), HTTP_PARSE_ERROR, "invalid character in header value" },
    { R("GET / HTTP/1.1\r\nX: a\x7f" "b\r\n\r\n"), HTTP_PARSE_ERROR, "invalid character in header value" },
    { R("GET / HTTP/1.1\r\nX: a\rb\r\n\r\n"), HTTP_PARSE_ERROR, "bare CR in header value" },
    { R("GET / HTTP/1.1\r\nX: a\r\n\r\r\n"), HTTP_PARSE_ERROR, "bare CR in the header section" },
    { R("POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n"), HTTP_PARSE_ERROR, "invalid Content-Length" },
    { R("POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\n"), HTTP_PARSE_ERROR, "invalid Content-Length" },
    { R("POST / HTTP/1.1\r\nContent-Length: 5a\r\n\r\n"), HTTP_PARSE_ERROR, "invalid Content-Length" },
    { R("POST / HTTP/1.1\r\nContent-Length: 0x5\r\n\r\n"), HTTP_PARSE_ERROR, "invalid Content-Length" },
    { R("POST / HTTP/1.1\r\nContent-Length:\r\n\r\n"), HTTP_PARSE_ERROR, "invalid Content-Length" },
    { R("POST / HTTP/1.1\r\nContent-Length: 1 2\r\n\r\n"), HTTP_PARSE_ERROR, "invalid Content-Length" },
    { R("POST / HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\n"), HTTP_PARSE_ERROR, "invalid Content-Length" },
    { R("POST / HTTP/1.1\r\nContent-Length: 1000000000000000000\r\n\r\n"), HTTP_PARSE_ERROR, "invalid Content-Length" },
    { R("POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n"), HTTP_PARSE_ERROR, "invalid Content-Length" },
    { R("POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"), HTTP_PARSE_ERROR, "conflicting Content-Length headers" },
    { R("POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"), HTTP_PARSE_ERROR, "both Transfer-Encoding and Content-Length" },
    { R("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"), HTTP_PARSE_ERROR, "both Transfer-Encoding and Content-Length" },
    { R("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\nContent-Length: 5\r\n\r\n"), HTTP_PARSE_ERROR, "both Transfer-Encoding and Content-Length" },
    { R("POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: gzip\r\n\r\n"), HTTP_PARSE_ERROR, "both Transfer-Encoding and Content-Length" },
    { R("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"), HTTP_PARSE_ERROR, "Transfer-Encoding in an HTTP/1.0 request" },
    { R("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n"), HTTP_PARSE_UNSUPPORTED_TE, "unsupported transfer coding" },
    { R("POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"), HTTP_PARSE_UNSUPPORTED_TE, "unsupported transfer coding" },
    { R("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"), HTTP_PARSE_UNSUPPORTED_TE, "unsupported transfer coding" },
    { R("POST / HTTP/1.1\r\nTransfer-Encoding: chunked;q=1\r\n\r\n"), HTTP_PARSE_UNSUPPORTED_TE, "unsupported transfer coding" },
    { R("POST / HTTP/1.1\r\nTransfer-Encoding: identity\r\n\r\n"), HTTP_PARSE_UNSUPPORTED_TE, "unsupported transfer coding" },
    { R("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\nX: \x01\r\n\r\n"), HTTP_PARSE_ERROR, "invalid character in header value" },
    { R("POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"), HTTP_PARSE_ERROR, "chunked is not the final transfer coding" },
    { R("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n"), HTTP_PARSE_ERROR, "chunked is not the final transfer coding" },
    { R("POST / HTTP/1.1\r\nTransfer-Encoding: chunked, chunked\r\n\r\n"), HTTP_PARSE_ERROR, "chunked applied more than once" },
    { R("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"), HTTP_PARSE_ERROR, "chunked applied more than once" },
    { R("POST / HTTP/1.1\r\nTransfer-Encoding:\r\n\r\n"), HTTP_PARSE_ERROR, "empty Transfer-Encoding" },
    { R("POST / HTTP/1.1\r\nTransfer-Encoding: , ,\r\n\r\n"), HTTP_PARSE_ERROR, "empty Transfer-Encoding" },
    { R("POST / HTTP/1.1\r\nTransfer-Encoding: \"chunked\"\r\n\r\n"), HTTP_PARSE_ERROR, "invalid Transfer-Encoding" },
    { R("GET / HTTP/1.1\r\nConnection: keep alive\r\n\r\n"), HTTP_PARSE_ERROR, "invalid Connection header" },
    { R("GET / HTTP/1.1\r\nConnection: close\xff\r\n\r\n"), HTTP_PARSE_ERROR, "invalid Connection header" },
    { R("GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n"), HTTP_PARSE_ERROR, "more than one Host header" },
};

TEST(http_parse_bad_requests)
{
    for (size_t i = 0; i < countof(bad); i++) {
        const bad_case *b = &bad[i];
        http_header hdrs[16];
        http_request_head h;
        const char *reason = NULL;
        int rc = parse_n(b->raw, b->len, &h, hdrs, countof(hdrs), &reason);
        if (rc != b->code || !reason || strcmp(reason, b->reason) != 0)
            test_fail(__FILE__, __LINE__, "bad[%zu]: rc %d \"%s\", expected %d \"%s\"", i, rc,
                      reason ? reason : "(null)", b->code, b->reason);
        CHECK(http_parse_status(rc) >= 400);
        /* a prefix says INCOMPLETE or the very same thing */
        for (size_t n = 0; n < b->len; n++) {
            const char *r2 = NULL;
            int rc2 = parse_n(b->raw, n, &h, hdrs, countof(hdrs), &r2);
            if (rc2 == HTTP_PARSE_INCOMPLETE)
                continue;
            if (rc2 != b->code || !r2 || strcmp(r2, b->reason) != 0)
                test_fail(__FILE__, __LINE__, "bad[%zu] prefix %zu: rc %d \"%s\"", i, n, rc2,
                          r2 ? r2 : "(null)");
        }
    }
}

TEST(http_parse_reason_may_be_null)
{
    http_header hdrs[2];
    http_request_head h;
    CHECK_INT(http_parse_request(R("BAD\r\n\r\n"), &h, hdrs, 2, NULL), HTTP_PARSE_ERROR);
    CHECK_INT(http_parse_request(NULL, 0, &h, hdrs, 2, NULL), HTTP_PARSE_INCOMPLETE);
    const char *reason = "x";
    CHECK_INT(http_parse_request(R("GET / HTTP/1.1\r\n"), &h, hdrs, 2, &reason), HTTP_PARSE_INCOMPLETE);
    CHECK(reason == NULL);
}

TEST(http_parse_too_many_headers)
{
    static const char req[] = "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
    http_header hdrs[3];
    http_request_head h;
    const char *reason = NULL;
    CHECK_INT(parse_n(req, sizeof req - 1, &h, hdrs, 3, &reason), sizeof req - 1);
    CHECK_INT(h.nheaders, 3);
    CHECK_INT(parse_n(req, sizeof req - 1, &h, hdrs, 2, &reason), HTTP_PARSE_TOO_MANY_HEADERS);
    CHECK_STR(reason, "too many headers");
    CHECK_INT(http_parse_status(HTTP_PARSE_TOO_MANY_HEADERS), 431);
    /* with no room at all, a request without headers still parses */
    CHECK_INT(parse_n(R("GET / HTTP/1.1\r\n\r\n"), &h, NULL, 0, &reason), 18);
    CHECK_INT(parse_n(req, sizeof req - 1, &h, NULL, 0, &reason), HTTP_PARSE_TOO_MANY_HEADERS);
    /* prefixes that stop before the extra header are INCOMPLETE */
    for (size_t n = 0; n < 29; n++)
        CHECK_INT(parse_n(req, n, &h, hdrs, 2, NULL), HTTP_PARSE_INCOMPLETE);
    CHECK_INT(parse_n(req, 29, &h, hdrs, 2, NULL), HTTP_PARSE_TOO_MANY_HEADERS);
}

TEST(http_parse_pipelined)
{
    static const char two[] = "POST /a HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"
                              "GET /b HTTP/1.1\r\nConnection: close\r\n\r\n"
                              "GET /c HTT";
    size_t len = sizeof two - 1;
    http_header hdrs[4];
    http_request_head h;
    int rc = http_parse_request(two, len, &h, hdrs, 4, NULL);
    CHECK_INT(rc, 39);
    CHECK(sv_is(h.target, "/a"));
    CHECK_INT(h.content_length, 3);
    size_t off = (size_t)rc + 3;
    rc = http_parse_request(two + off, len - off, &h, hdrs, 4, NULL);
    CHECK_INT(rc, 38);
    CHECK(sv_is(h.target, "/b"));
    CHECK(!h.keep_alive);
    off += (size_t)rc;
    CHECK_INT(http_parse_request(two + off, len - off, &h, hdrs, 4, NULL), HTTP_PARSE_INCOMPLETE);
}

TEST(http_parse_status_codes)
{
    CHECK_INT(http_parse_status(HTTP_PARSE_ERROR), 400);
    CHECK_INT(http_parse_status(HTTP_PARSE_UNSUPPORTED_TE), 501);
    CHECK_INT(http_parse_status(HTTP_PARSE_BAD_VERSION), 505);
    CHECK_INT(http_parse_status(HTTP_PARSE_INCOMPLETE), 0);
    CHECK_INT(http_parse_status(42), 0);
}

/* ------------------------------------------------------------------------
 * Chunked
 * ------------------------------------------------------------------------ */

/* Feeds in[0..len) to a fresh decoder in slices cut at the given points
 * (each slice an exact-size heap copy) and gathers the output. Returns the
 * last result; *used is the total input consumed. */
static int feed(const char *in, size_t len, const size_t *cuts, size_t ncuts, char *out,
                size_t *out_len, size_t *used, const char **error)
{
    http_chunked c;
    http_chunked_init(&c);
    size_t pos = 0, olen = 0;
    int rc = 0;
    for (size_t k = 0; k <= ncuts && rc == 0; k++) {
        size_t stop = k < ncuts ? cuts[k] : len;
        size_t n = stop - pos;
        char *slice = dup_exact(in + pos, n);
        size_t o = 0, used_here = 0;
        rc = http_chunked_decode(&c, slice, n, &o, &used_here);
        memcpy(out + olen, slice, o);
        olen += o;
        free(slice);
        if (rc == 0 && used_here != n) {
            test_fail(__FILE__, __LINE__, "result 0 but used %zu of %zu", used_here, n);
            rc = -2;
        }
        pos += used_here;
    }
    if (rc == 1 && c.total != olen)
        test_fail(__FILE__, __LINE__, "total %llu, output %zu", (unsigned long long)c.total, olen);
    *out_len = olen;
    *used = pos;
    if (error)
        *error = c.error;
    return rc;
}

typedef struct chunk_case {
    const char *in;
    size_t len;
    const char *out;
    size_t out_len;
    size_t used; /* 0: all of in */
} chunk_case;

#define O(lit) lit, sizeof(lit) - 1

static const chunk_case chunk_good[] = {
    { R("5\r\nhello\r\n0\r\n\r\n"), O("hello"), 0 },
    { R("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"), O("hello world"), 0 },
    { R("0\r\n\r\n"), O(""), 0 },
    { R("A\r\n0123456789\r\na\r\nabcdefghij\r\n0\r\n\r\n"), O("0123456789abcdefghij"), 0 },
    { R("0005\r\nhello\r\n000\r\n\r\n"), O("hello"), 0 },
    { R("4\r\n\r\n\r\n\r\n0\r\n\r\n"), O("\r\n\r\n"), 0 },
    { R("3\r\n\0\xff\n\r\n0\r\n\r\n"), O("\0\xff\n"), 0 },
    { R("5;name=value\r\nhello\r\n0;last\r\n\r\n"), O("hello"), 0 },
    { R("5 \t; a=\"q; s\\\"\" ;b\r\nhello\r\n0\r\n\r\n"), O("hello"), 0 },
    { R("5;\r\nhello\r\n0\r\n\r\n"), O("hello"), 0 },
    { R("5\r\nhello\r\n0\r\nX-Sum: abc\r\nX-B:\r\nX-C: caf\xc3\xa9\r\n\r\n"), O("hello"), 0 },
    { R("5\r\nhello\r\n0\r\n\r\nGET / HTTP/1.1\r\n\r\n"), O("hello"), 15 },
    { R("0\r\n\r\n0\r\n\r\n"), O(""), 5 },
};

TEST(http_chunked_good_at_every_split)
{
    char out[256];
    for (size_t i = 0; i < countof(chunk_good); i++) {
        const chunk_case *t = &chunk_good[i];
        size_t used_want = t->used ? t->used : t->len;
        size_t olen, used;
        /* whole */
        int rc = feed(t->in, t->len, NULL, 0, out, &olen, &used, NULL);
        if (rc != 1 || used != used_want || olen != t->out_len || memcmp(out, t->out, olen) != 0)
            test_fail(__FILE__, __LINE__, "chunk_good[%zu] whole: rc %d used %zu out %zu", i, rc, used, olen);
        /* two slices, at every point */
        for (size_t cut = 0; cut <= t->len; cut++) {
            rc = feed(t->in, t->len, &cut, 1, out, &olen, &used, NULL);
            if (rc != 1 || used != used_want || olen != t->out_len || memcmp(out, t->out, olen) != 0)
                test_fail(__FILE__, __LINE__, "chunk_good[%zu] cut %zu: rc %d used %zu", i, cut, rc, used);
        }
        /* byte by byte */
        size_t cuts[128];
        size_t ncuts = 0;
        for (size_t k = 1; k < t->len && ncuts < countof(cuts); k++)
            cuts[ncuts++] = k;
        rc = feed(t->in, t->len, cuts, ncuts, out, &olen, &used, NULL);
        if (rc != 1 || used != used_want || olen != t->out_len || memcmp(out, t->out, olen) != 0)
            test_fail(__FILE__, __LINE__, "chunk_good[%zu] bytewise: rc %d used %zu", i, rc, used);
        /* every strict prefix of the framing needs more */
        for (size_t n = 0; n < used_want; n++) {
            rc = feed(t->in, n, NULL, 0, out, &olen, &used, NULL);
            if (rc != 0 || used != n)
                test_fail(__FILE__, __LINE__, "chunk_good[%zu] prefix %zu: rc %d", i, n, rc);
        }
    }
}

TEST(http_chunked_done_is_sticky)
{
    http_chunked c;
    http_chunked_init(&c);
    char b[] = "1\r\nx\r\n0\r\n\r\nrest";
    size_t o, used;
    CHECK_INT(http_chunked_decode(&c, b, sizeof b - 1, &o, &used), 1);
    CHECK_INT(o, 1);
    CHECK_INT(used, 11);
    CHECK(b[0] == 'x');
    CHECK_INT(c.total, 1);
    CHECK_INT(http_chunked_decode(&c, b + used, 4, &o, &used), 1);
    CHECK_INT(o, 0);
    CHECK_INT(used, 0);
}

TEST(http_chunked_large_chunk_in_slices)
{
    /* a chunk of 2^40 bytes is allowed; feed 1 MiB of it in pieces */
    http_chunked c;
    http_chunked_init(&c);
    char head[] = "10000000000\r\n";
    size_t o, used;
    CHECK_INT(http_chunked_decode(&c, head, sizeof head - 1, &o, &used), 0);
    CHECK_INT(o, 0);
    size_t n = 1 << 20;
    char *b = malloc(n);
    memset(b, 'z', n);
    for (int k = 0; k < 4; k++) {
        CHECK_INT(http_chunked_decode(&c, b, n, &o, &used), 0);
        CHECK_INT(o, n);
        CHECK_INT(used, n);
    }
    CHECK_INT(c.total, 4 * n);
    free(b);
}

typedef struct chunk_bad {
    const char *in;
    size_t len;
    const char *error;
} chunk_bad;

static const chunk_bad chunk_errors[] = {
    { R("x\r\n"), "invalid chunk size" },
    { R("\r\n"), "invalid chunk size" },
    { R("-5\r\nhello\r\n"), "invalid chunk size" },
    { R("0x5\r\nhello\r\n"), "invalid chunk size" },
    { R("5x\r\nhello\r\n"), "invalid chunk size" },
    { R("5\nhello\r\n0\r\n\r\n"), "invalid chunk size" },
    { R("5 x\r\nhello\r\n"), "invalid chunk size" },
    { R("5 \r\nhello\r\n"), "whitespace after chunk size" },
    { R(" 5\r\nhello\r\n"), "invalid chunk size" },
    { R("5\rhello\r\n"), "missing LF after chunk size" },
    { R("5;a\nhello\r\n"), "invalid character in chunk extension" },
    { R("5;a\x01\r\nhello\r\n"), "invalid character in chunk extension" },
    { R("5\r\nhelloX\r\n0\r\n\r\n"), "missing CRLF after chunk data" },
    { R("5\r\nhello\n0\r\n\r\n"), "missing CRLF after chunk data" },
    { R("5\r\nhello\r\r0\r\n\r\n"), "missing CRLF after chunk data" },
    { R("5\r\nhello\r\n\r\n"), "invalid chunk size" },
    { R("10000000001\r\n"), "chunk size too large" },
    { R("ffffffffffffffffffff\r\n"), "chunk size too large" },
    { R("00000000000000001\r\n"), "chunk size has too many digits" },
    { R("0\r\n X: y\r\n\r\n"), "invalid trailer field" },
    { R("0\r\n:y\r\n\r\n"), "invalid trailer field" },
    { R("0\r\n\n"), "invalid trailer field" },
    { R("0\r\nX y\r\n\r\n"), "invalid trailer field name" },
    { R("0\r\nX\r\n\r\n"), "invalid trailer field name" },
    { R("0\r\nX: \x01\r\n\r\n"), "invalid trailer field value" },
    { R("0\r\nX: y\n\r\n"), "invalid trailer field value" },
    { R("0\r\nX: y\rZ\r\n\r\n"), "missing LF after trailer field" },
    { R("0\r\n\rX"), "missing LF after trailer section" },
};

TEST(http_chunked_errors)
{
    char out[64];
    for (size_t i = 0; i < countof(chunk_errors); i++) {
        const chunk_bad *t = &chunk_errors[i];
        size_t olen, used;
        const char *err = NULL;
        int rc = feed(t->in, t->len, NULL, 0, out, &olen, &used, &err);
        if (rc != -1 || !err || strcmp(err, t->error) != 0)
            test_fail(__FILE__, __LINE__, "chunk_errors[%zu]: rc %d \"%s\", expected \"%s\"", i, rc,
                      err ? err : "(null)", t->error);
        size_t first_used = used;
        /* found at the same byte whatever the split */
        for (size_t cut = 0; cut <= t->len; cut++) {
            rc = feed(t->in, t->len, &cut, 1, out, &olen, &used, &err);
            if (rc != -1 || used != first_used || !err || strcmp(err, t->error) != 0)
                test_fail(__FILE__, __LINE__, "chunk_errors[%zu] cut %zu: rc %d used %zu", i, cut, rc, used);
        }
    }
}

TEST(http_chunked_error_is_sticky)
{
    http_chunked c;
    http_chunked_init(&c);
    char b[] = "zz\r\n";
    char ok[] = "0\r\n\r\n";
    size_t o, used;
    CHECK_INT(http_chunked_decode(&c, b, 4, &o, &used), -1);
    CHECK_INT(used, 0);
    CHECK_STR(c.error, "invalid chunk size");
    CHECK_INT(http_chunked_decode(&c, ok, 5, &o, &used), -1);
    CHECK_INT(o, 0);
}

/* Builds "5;<ext>\r\nhello\r\n0\r\n\r\n" with n bytes after the size
 * (the ';' included) and decodes it. */
static int ext_of(size_t n, const char **err)
{
    char *in = malloc(n + 32);
    in[0] = '5';
    in[1] = ';';
    memset(in + 2, 'e', n - 1);
    memcpy(in + 1 + n, "\r\nhello\r\n0\r\n\r\n", 14);
    char out[16];
    size_t olen, used;
    int rc = feed(in, n + 15, NULL, 0, out, &olen, &used, err);
    if (rc == 1 && (olen != 5 || used != n + 15))
        test_fail(__FILE__, __LINE__, "ext_of(%zu): out %zu used %zu", n, olen, used);
    free(in);
    return rc;
}

TEST(http_chunked_extension_limit)
{
    const char *err = NULL;
    CHECK_INT(ext_of(1, &err), 1);
    CHECK_INT(ext_of(HTTP_CHUNK_EXT_MAX, &err), 1);
    CHECK_INT(ext_of(HTTP_CHUNK_EXT_MAX + 1, &err), -1);
    CHECK_STR(err, "chunk extension too long");
}

/* Builds "0\r\n" + "X:vvv\r\n" trailer lines of n bytes in all (n >= 4)
 * + "\r\n" and decodes it. */
static int trailer_of(size_t n, const char **err)
{
    char *in = malloc(n + 8);
    memcpy(in, "0\r\n", 3);
    size_t k = 3, left = n;
    while (left > 0) {
        size_t line = left >= 200 ? 100 : left;
        in[k] = 'X';
        in[k + 1] = ':';
        memset(in + k + 2, 'v', line - 4);
        memcpy(in + k + line - 2, "\r\n", 2);
        k += line;
        left -= line;
    }
    memcpy(in + k, "\r\n", 2);
    k += 2;
    char out[4];
    size_t olen, used;
    int rc = feed(in, k, NULL, 0, out, &olen, &used, err);
    if (rc == 1 && used != k)
        test_fail(__FILE__, __LINE__, "trailer_of(%zu): used %zu of %zu", n, used, k);
    free(in);
    return rc;
}

TEST(http_chunked_trailer_limit)
{
    const char *err = NULL;
    CHECK_INT(trailer_of(HTTP_CHUNK_TRAILER_MAX, &err), 1);
    CHECK_INT(trailer_of(HTTP_CHUNK_TRAILER_MAX + 1, &err), -1);
    CHECK_STR(err, "trailer section too large");
}

/* ------------------------------------------------------------------------
 * Helpers
 * ------------------------------------------------------------------------ */

TEST(http_header_get_first_match)
{
    static const char req[] = "GET / HTTP/1.1\r\nX-A: 1\r\nx-a: 2\r\nAccept: */*\r\n\r\n";
    http_header hdrs[4];
    http_request_head h;
    CHECK_INT(http_parse_request(req, sizeof req - 1, &h, hdrs, 4, NULL), sizeof req - 1);
    const http_header *x = http_header_get(&h, "x-A");
    CHECK(x == &hdrs[0]);
    CHECK(http_header_get(&h, "accept") == &hdrs[2]);
    CHECK(http_header_get(&h, "accep") == NULL);
    CHECK(http_header_get(&h, "") == NULL);
}

TEST(http_split_target_table)
{
    static const struct {
        const char *target, *path, *query; /* query NULL: none */
    } t[] = {
        { "/", "/", NULL },
        { "/v1/models", "/v1/models", NULL },
        { "/a?b=1&c", "/a", "b=1&c" },
        { "/a?", "/a", "" },
        { "/a?b?c", "/a", "b?c" },
        { "*", "*", NULL },
        { "http://host:80/x/y?z=1", "/x/y", "z=1" },
        { "HTTPS://host", "/", NULL },
        { "http://host?q", "/", "q" },
        { "", "", NULL },
    };
    for (size_t i = 0; i < countof(t); i++) {
        sv path, query;
        http_split_target(sv_from(t[i].target), &path, &query);
        if (!sv_is(path, t[i].path))
            test_fail(__FILE__, __LINE__, "[%zu] path \"%.*s\"", i, SV_FMT(path));
        if (t[i].query ? !sv_is(query, t[i].query) || !query.p : query.p != NULL)
            test_fail(__FILE__, __LINE__, "[%zu] query \"%.*s\"", i, SV_FMT(query));
    }
}

TEST(http_query_get_table)
{
    static const struct {
        const char *query, *key, *value; /* value NULL: not found */
    } t[] = {
        { "a=1&b=2", "a", "1" },
        { "a=1&b=2", "b", "2" },
        { "a=1&b=2", "c", NULL },
        { "a=1&a=2", "a", "1" },
        { "ab=1&a=2", "a", "2" },
        { "a&b=", "a", "" },
        { "a&b=", "b", "" },
        { "x=%20y+z", "x", "%20y+z" },
        { "&&a=1=2&", "a", "1=2" },
        { "A=1", "a", NULL },
        { "", "a", NULL },
    };
    for (size_t i = 0; i < countof(t); i++) {
        sv v = SV("unchanged");
        bool found = http_query_get(sv_from(t[i].query), t[i].key, &v);
        if (found != (t[i].value != NULL) || (found && !sv_is(v, t[i].value)))
            test_fail(__FILE__, __LINE__, "[%zu] found %d \"%.*s\"", i, found, SV_FMT(v));
    }
    sv v;
    CHECK(!http_query_get(SV_NULL, "a", &v));
}

TEST(http_query_next_table)
{
    /* each query's pairs as "name=value" ("name" alone: no '=') joined by '|' */
    static const struct {
        const char *query, *pairs;
    } t[] = {
        { "a=1&b=2", "a=1|b=2" },
        { "a&b=", "a|b=" },
        { "&&a=1=2&", "a=1=2" },
        { "=x&y", "=x|y" },
        { "%41=%20+", "%41=%20+" },
        { "&", "" },
        { "", "" },
    };
    for (size_t i = 0; i < countof(t); i++) {
        char got[128] = "";
        size_t used = 0, pos = 0;
        sv name, value;
        while (http_query_next(sv_from(t[i].query), &pos, &name, &value))
            used += (size_t)snprintf(got + used, sizeof got - used, "%s%.*s%s%.*s", used ? "|" : "", SV_FMT(name),
                                     value.p ? "=" : "", (int)value.len, value.p ? value.p : "");
        CHECK_STR(got, t[i].pairs);
    }
    size_t pos = 0;
    sv name, value;
    CHECK(!http_query_next(SV_NULL, &pos, &name, &value));
}

TEST(http_url_decode_table)
{
    static const struct {
        const char *in, *out; /* out NULL: invalid */
    } t[] = {
        { "", "" },
        { "abc", "abc" },
        { "a+b", "a b" },
        { "%41%62%2b%2B", "Ab++" },
        { "caf%C3%A9", "caf\xc3\xa9" },
        { "%", NULL },
        { "%4", NULL },
        { "a%4", NULL },
        { "%zz", NULL },
        { "%4g", NULL },
        { "%00", NULL },
        { "100%", NULL },
    };
    for (size_t i = 0; i < countof(t); i++) {
        char dst[32];
        size_t n = http_url_decode(dst, sizeof dst, sv_from(t[i].in));
        if (!t[i].out) {
            if (n != (size_t)-1)
                test_fail(__FILE__, __LINE__, "[%zu] accepted \"%s\"", i, t[i].in);
        } else if (n != strlen(t[i].out) || strcmp(dst, t[i].out) != 0) {
            test_fail(__FILE__, __LINE__, "[%zu] \"%s\" gave %zu", i, t[i].in, n);
        }
    }
    /* capacity: the result and its NUL must fit */
    char small[4];
    CHECK_INT(http_url_decode(small, 4, SV("abc")), 3);
    CHECK_STR(small, "abc");
    CHECK(http_url_decode(small, 3, SV("abc")) == (size_t)-1);
    CHECK_INT(http_url_decode(small, 4, SV("%41%42%43")), 3);
    CHECK(http_url_decode(small, 0, SV("")) == (size_t)-1);
    CHECK_INT(http_url_decode(small, 1, SV("")), 0);
    /* in place */
    char inplace[] = "a%20b+c";
    CHECK_INT(http_url_decode(inplace, sizeof inplace, sv_from(inplace)), 5);
    CHECK_STR(inplace, "a b c");
}

TEST(http_status_reason_table)
{
    CHECK_STR(http_status_reason(200), "OK");
    CHECK_STR(http_status_reason(404), "Not Found");
    CHECK_STR(http_status_reason(413), "Content Too Large");
    CHECK_STR(http_status_reason(429), "Too Many Requests");
    CHECK_STR(http_status_reason(431), "Request Header Fields Too Large");
    CHECK_STR(http_status_reason(501), "Not Implemented");
    CHECK_STR(http_status_reason(505), "HTTP Version Not Supported");
    CHECK_STR(http_status_reason(599), "Unknown");
    CHECK_STR(http_status_reason(-1), "Unknown");
}
