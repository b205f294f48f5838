/*
 * parser.c - HTTP/1.1 request-head parser, chunked body decoder and URL
 * helpers (RFC 9110, RFC 9112).
 *
 * The head parser makes one forward pass over the bytes with a pointer and
 * an end, classifying each byte through a 256-entry table. It keeps no state
 * between calls: when it runs out of bytes it answers INCOMPLETE and the
 * caller calls again from the start once more have arrived. Every check
 * fires as soon as the bytes it looks at are complete and never depends on
 * bytes after them, so a prefix of the input gets INCOMPLETE or the very
 * answer the whole input gets. The one deferred answer is 501 for an
 * unknown transfer coding: it is given only at the blank line, so that a
 * request that is also malformed (Transfer-Encoding with Content-Length,
 * "chunked, gzip") gets 400 whatever the header order.
 *
 * The chunked decoder is a byte-at-a-time state machine (a memmove for the
 * chunk data), so it needs no lookback and always uses all the input it is
 * given unless the body ends or is malformed. It is strict: CRLF only, hex
 * sizes without whitespace except before a ';' extension.
 */
#include <limits.h>

#include "http/parser.h"

/* Byte classes. */
enum {
    C_TCHAR = 1,  /* token character (RFC 9110 5.6.2) */
    C_VALUE = 2,  /* allowed inside a field value: SP, HTAB, VCHAR, obs-text */
    C_TARGET = 4, /* allowed in a request target: VCHAR */
    C_HEX = 8,
};
#define TVG (C_TCHAR | C_VALUE | C_TARGET)
#define VG (C_VALUE | C_TARGET)

/* GNU range initialisers; the ranges are disjoint so none overrides another. */
static const unsigned char cls[256] = {
    ['\t'] = C_VALUE,
    [' '] = C_VALUE,
    ['!'] = TVG,
    ['"'] = VG,
    ['#' ... '\''] = TVG,
    ['(' ... ')'] = VG,
    ['*' ... '+'] = TVG,
    [','] = VG,
    ['-' ... '.'] = TVG,
    ['/'] = VG,
    ['0' ... '9'] = TVG | C_HEX,
    [':' ... '@'] = VG,
    ['A' ... 'F'] = TVG | C_HEX,
    ['G' ... 'Z'] = TVG,
    ['[' ... ']'] = VG,
    ['^' ... '`'] = TVG,
    ['a' ... 'f'] = TVG | C_HEX,
    ['g' ... 'z'] = TVG,
    ['{'] = VG,
    ['|'] = TVG,
    ['}'] = VG,
    ['~'] = TVG,
    [0x80 ... 0xff] = C_VALUE,
};

static inline bool is_tchar(char c) { return cls[(unsigned char)c] & C_TCHAR; }
static inline bool is_value(char c) { return cls[(unsigned char)c] & C_VALUE; }
static inline bool is_target(char c) { return cls[(unsigned char)c] & C_TARGET; }
static inline bool is_ows(char c) { return c == ' ' || c == '\t'; }

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static sv trim_ows(const char *p, const char *e)
{
    while (p < e && is_ows(*p))
        p++;
    while (e > p && is_ows(e[-1]))
        e--;
    return (sv){ p, (size_t)(e - p) };
}

/* ------------------------------------------------------------------------
 * Request head
 * ------------------------------------------------------------------------ */

/* What the header semantics remember while the headers are read. */
typedef struct head_state {
    bool te_seen;          /* a Transfer-Encoding header was present */
    bool te_chunked;       /* chunked was among the codings */
    bool te_last_chunked;  /* ... and is the last one so far */
    bool te_unsupported;   /* some other coding was named */
    bool conn_close;
    bool conn_keep_alive;
    bool host_seen;
} head_state;

#define FAIL(code, why)                                                       \
    do {                                                                      \
        if (reason)                                                           \
            *reason = (why);                                                  \
        return (code);                                                        \
    } while (0)

/* Content-Length: 1 to 18 digits; a repeated header must give the same value. */
static int on_content_length(http_request_head *h, head_state *st, sv v, const char **reason)
{
    if (st->te_seen)
        FAIL(HTTP_PARSE_ERROR, "both Transfer-Encoding and Content-Length");
    if (v.len == 0 || v.len > 18)
        FAIL(HTTP_PARSE_ERROR, "invalid Content-Length");
    int64_t n = 0;
    for (size_t i = 0; i < v.len; i++) {
        if (v.p[i] < '0' || v.p[i] > '9')
            FAIL(HTTP_PARSE_ERROR, "invalid Content-Length");
        n = n * 10 + (v.p[i] - '0');
    }
    if (h->content_length >= 0 && h->content_length != n)
        FAIL(HTTP_PARSE_ERROR, "conflicting Content-Length headers");
    h->content_length = n;
    return 0;
}

/* Transfer-Encoding: a list of codings of which only a final "chunked" is
 * understood. Unknown codings are remembered and refused at the end. */
static int on_transfer_encoding(http_request_head *h, head_state *st, sv v, const char **reason)
{
    if (h->minor_version == 0)
        FAIL(HTTP_PARSE_ERROR, "Transfer-Encoding in an HTTP/1.0 request");
    if (h->content_length >= 0)
        FAIL(HTTP_PARSE_ERROR, "both Transfer-Encoding and Content-Length");
    st->te_seen = true;
    const char *p = v.p, *end = v.p + v.len;
    bool any = false;
    while (p < end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *e = comma ? comma : end;
        sv item = trim_ows(p, e);
        p = comma ? comma + 1 : end;
        if (item.len == 0)
            continue;
        any = true;
        if (!is_tchar(item.p[0]))
            FAIL(HTTP_PARSE_ERROR, "invalid Transfer-Encoding");
        if (sv_ieq_cstr(item, "chunked")) {
            if (st->te_chunked)
                FAIL(HTTP_PARSE_ERROR, "chunked applied more than once");
            st->te_chunked = true;
            st->te_last_chunked = true;
        } else {
            st->te_unsupported = true;
            st->te_last_chunked = false;
        }
    }
    if (!any)
        FAIL(HTTP_PARSE_ERROR, "empty Transfer-Encoding");
    return 0;
}

/* Connection: a list of tokens; only close and keep-alive mean anything here. */
static int on_connection(head_state *st, sv v, const char **reason)
{
    const char *p = v.p, *end = v.p + v.len;
    while (p < end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *e = comma ? comma : end;
        sv item = trim_ows(p, e);
        p = comma ? comma + 1 : end;
        for (size_t i = 0; i < item.len; i++)
            if (!is_tchar(item.p[i]))
                FAIL(HTTP_PARSE_ERROR, "invalid Connection header");
        if (sv_ieq_cstr(item, "close"))
            st->conn_close = true;
        else if (sv_ieq_cstr(item, "keep-alive"))
            st->conn_keep_alive = true;
    }
    return 0;
}

/* Applies the meaning of the few headers the parser interprets. */
static int on_header(http_request_head *h, head_state *st, sv name, sv value, const char **reason)
{
    switch (name.len) {
    case 4:
        if (sv_ieq_cstr(name, "host")) {
            if (st->host_seen)
                FAIL(HTTP_PARSE_ERROR, "more than one Host header");
            st->host_seen = true;
        }
        break;
    case 6:
        if (sv_ieq_cstr(name, "expect") && h->minor_version == 1 &&
            sv_ieq_cstr(value, "100-continue"))
            h->expect_continue = true;
        break;
    case 10:
        if (sv_ieq_cstr(name, "connection"))
            return on_connection(st, value, reason);
        break;
    case 14:
        if (sv_ieq_cstr(name, "content-length"))
            return on_content_length(h, st, value, reason);
        break;
    case 17:
        if (sv_ieq_cstr(name, "transfer-encoding"))
            return on_transfer_encoding(h, st, value, reason);
        break;
    }
    return 0;
}

/* Checks a complete request target against the method. */
static bool target_ok(sv method, sv t)
{
    if (t.p[0] == '/')
        return true;
    if (t.len == 1 && t.p[0] == '*')
        return sv_eq_cstr(method, "OPTIONS");
    if (t.len > 7 && strncasecmp(t.p, "http://", 7) == 0)
        return true;
    if (t.len > 8 && strncasecmp(t.p, "https://", 8) == 0)
        return true;
    return false;
}

/* After a CR at *p (p < end): INCOMPLETE, ERROR for a bare CR, or 0 with *p
 * moved past the CRLF. */
#define EXPECT_LF_AFTER_CR(why)                                               \
    do {                                                                      \
        if (p + 1 >= end)                                                     \
            return HTTP_PARSE_INCOMPLETE;                                     \
        if (p[1] != '\n')                                                     \
            FAIL(HTTP_PARSE_ERROR, why);                                      \
        p += 2;                                                               \
    } while (0)

int http_parse_request(const char *buf, size_t len, http_request_head *h,
                       http_header *headers, size_t max_headers, const char **reason)
{
    if (reason)
        *reason = NULL;
    *h = (http_request_head){ .headers = headers, .content_length = -1 };
    if (len == 0)
        return HTTP_PARSE_INCOMPLETE;
    /* The head length must fit the int result; no sane caller gets near it. */
    bool clamped = len > (size_t)INT_MAX;
    const char *p = buf, *end = buf + (clamped ? (size_t)INT_MAX : len);
    head_state st = { 0 };

#define NEED()                                                                \
    do {                                                                      \
        if (p >= end) {                                                       \
            if (clamped)                                                      \
                FAIL(HTTP_PARSE_ERROR, "request head too large");             \
            return HTTP_PARSE_INCOMPLETE;                                     \
        }                                                                     \
    } while (0)

    /* Empty lines before the request line are skipped (RFC 9112 2.2). */
    for (;;) {
        NEED();
        if (*p == '\r')
            EXPECT_LF_AFTER_CR("bare CR before the request line");
        else if (*p == '\n')
            p++;
        else
            break;
    }

    /* method SP */
    const char *s = p;
    while (p < end && is_tchar(*p))
        p++;
    NEED();
    if (*p != ' ')
        FAIL(HTTP_PARSE_ERROR, "invalid character in method");
    if (p == s)
        FAIL(HTTP_PARSE_ERROR, "empty method");
    h->method = (sv){ s, (size_t)(p - s) };
    p++;

    /* request-target SP */
    s = p;
    while (p < end && is_target(*p))
        p++;
    NEED();
    if (*p != ' ')
        FAIL(HTTP_PARSE_ERROR, "invalid character in request target");
    if (p == s)
        FAIL(HTTP_PARSE_ERROR, "empty request target");
    h->target = (sv){ s, (size_t)(p - s) };
    if (!target_ok(h->method, h->target))
        FAIL(HTTP_PARSE_ERROR, "invalid request target");
    p++;

    /* HTTP-version CRLF */
    s = p;
    while (p < end && *p != '\r' && *p != '\n') {
        if (!is_target(*p))
            FAIL(HTTP_PARSE_ERROR, "invalid character in HTTP version");
        p++;
    }
    NEED();
    size_t vlen = (size_t)(p - s);
    if (vlen == 8 && memcmp(s, "HTTP/1.", 7) == 0 && (s[7] == '0' || s[7] == '1')) {
        h->minor_version = s[7] - '0';
    } else if (vlen == 8 && memcmp(s, "HTTP/", 5) == 0 && s[5] >= '0' && s[5] <= '9' &&
               s[6] == '.' && s[7] >= '0' && s[7] <= '9') {
        FAIL(HTTP_PARSE_BAD_VERSION, "unsupported HTTP version");
    } else {
        FAIL(HTTP_PARSE_ERROR, "invalid HTTP version");
    }
    if (*p == '\r')
        EXPECT_LF_AFTER_CR("bare CR in the request line");
    else
        p++;

    /* header-field lines up to the blank line */
    for (;;) {
        NEED();
        if (*p == '\r') {
            EXPECT_LF_AFTER_CR("bare CR in the header section");
            break;
        }
        if (*p == '\n') {
            p++;
            break;
        }
        if (is_ows(*p))
            FAIL(HTTP_PARSE_ERROR, "header line starts with whitespace (obs-fold)");
        if (h->nheaders >= max_headers)
            FAIL(HTTP_PARSE_TOO_MANY_HEADERS, "too many headers");

        s = p;
        while (p < end && is_tchar(*p))
            p++;
        NEED();
        if (*p != ':')
            FAIL(HTTP_PARSE_ERROR, is_ows(*p) ? "whitespace before colon in header"
                                              : "invalid character in header name");
        if (p == s)
            FAIL(HTTP_PARSE_ERROR, "empty header name");
        sv name = { s, (size_t)(p - s) };
        p++;

        s = p;
        while (p < end && is_value(*p))
            p++;
        NEED();
        const char *e = p;
        if (*p == '\r')
            EXPECT_LF_AFTER_CR("bare CR in header value");
        else if (*p == '\n')
            p++;
        else
            FAIL(HTTP_PARSE_ERROR, "invalid character in header value");
        sv value = trim_ows(s, e);

        headers[h->nheaders++] = (http_header){ name, value };
        int rc = on_header(h, &st, name, value, reason);
        if (rc < 0)
            return rc;
    }
#undef NEED

    if (st.te_seen) {
        if (st.te_chunked && !st.te_last_chunked)
            FAIL(HTTP_PARSE_ERROR, "chunked is not the final transfer coding");
        if (st.te_unsupported)
            FAIL(HTTP_PARSE_UNSUPPORTED_TE, "unsupported transfer coding");
        h->chunked = true;
    }
    if (h->minor_version == 1)
        h->keep_alive = !st.conn_close;
    else
        h->keep_alive = st.conn_keep_alive && !st.conn_close;
    return (int)(p - buf);
}

int http_parse_status(int rc)
{
    switch (rc) {
    case HTTP_PARSE_ERROR:
        return 400;
    case HTTP_PARSE_TOO_MANY_HEADERS:
        return 431;
    case HTTP_PARSE_UNSUPPORTED_TE:
        return 501;
    case HTTP_PARSE_BAD_VERSION:
        return 505;
    default:
        return rc < 0 && rc != HTTP_PARSE_INCOMPLETE ? 400 : 0;
    }
}

/* ------------------------------------------------------------------------
 * Chunked body
 * ------------------------------------------------------------------------ */

enum {
    CH_SIZE_START, /* first hex digit of a chunk size */
    CH_SIZE,       /* more hex digits, ';', whitespace or CR */
    CH_EXT_BWS,    /* whitespace after the size: only ';' may follow */
    CH_EXT,        /* chunk extension up to CR */
    CH_SIZE_LF,    /* LF ending the size line */
    CH_DATA,       /* chunk data */
    CH_DATA_CR,    /* CR after chunk data */
    CH_DATA_LF,    /* LF after chunk data */
    CH_TR_START,   /* start of a trailer line, or CR of the final blank line */
    CH_TR_NAME,    /* trailer field name up to ':' */
    CH_TR_VALUE,   /* trailer field value up to CR */
    CH_TR_LF,      /* LF ending a trailer line */
    CH_END_LF,     /* LF of the final blank line */
    CH_DONE,
    CH_ERROR,
};

#define CHUNK_DIGITS_MAX 16 /* leading zeros included, so a size line is bounded */

void http_chunked_init(http_chunked *c)
{
    *c = (http_chunked){ .state = CH_SIZE_START };
}

/* One framing byte (not chunk data). Returns NULL, or the reason it is wrong. */
static const char *chunk_step(http_chunked *c, char ch)
{
    int d;
    switch (c->state) {
    case CH_SIZE_START:
        if ((d = hexval(ch)) < 0)
            return "invalid chunk size";
        c->remaining = (uint64_t)d;
        c->digits = 1;
        c->state = CH_SIZE;
        return NULL;
    case CH_SIZE:
        if ((d = hexval(ch)) >= 0) {
            if (++c->digits > CHUNK_DIGITS_MAX)
                return "chunk size has too many digits";
            c->remaining = c->remaining * 16 + (uint64_t)d;
            if (c->remaining > HTTP_CHUNK_SIZE_MAX)
                return "chunk size too large";
            return NULL;
        }
        c->count = 1; /* the ';' or the first whitespace counts toward the limit */
        if (ch == '\r')
            c->state = CH_SIZE_LF;
        else if (ch == ';')
            c->state = CH_EXT;
        else if (is_ows(ch))
            c->state = CH_EXT_BWS;
        else
            return "invalid chunk size";
        return NULL;
    case CH_EXT_BWS:
    case CH_EXT:
        if (ch == '\r') {
            if (c->state == CH_EXT_BWS)
                return "whitespace after chunk size";
            c->state = CH_SIZE_LF;
            return NULL;
        }
        if (++c->count > HTTP_CHUNK_EXT_MAX)
            return "chunk extension too long";
        if (c->state == CH_EXT_BWS) {
            if (ch == ';')
                c->state = CH_EXT;
            else if (!is_ows(ch))
                return "invalid chunk size";
        } else if (!is_value(ch)) {
            return "invalid character in chunk extension";
        }
        return NULL;
    case CH_SIZE_LF:
        if (ch != '\n')
            return "missing LF after chunk size";
        if (c->remaining == 0) {
            c->count = 0;
            c->state = CH_TR_START;
        } else {
            c->state = CH_DATA;
        }
        return NULL;
    case CH_DATA_CR:
        if (ch != '\r')
            return "missing CRLF after chunk data";
        c->state = CH_DATA_LF;
        return NULL;
    case CH_DATA_LF:
        if (ch != '\n')
            return "missing CRLF after chunk data";
        c->state = CH_SIZE_START;
        return NULL;
    case CH_TR_START:
        if (ch == '\r') {
            c->state = CH_END_LF;
            return NULL;
        }
        break;
    case CH_END_LF:
        if (ch != '\n')
            return "missing LF after trailer section";
        c->state = CH_DONE;
        return NULL;
    default:
        break;
    }

    /* Trailer lines: "name: value" CRLF, counted against the section limit. */
    if (++c->count > HTTP_CHUNK_TRAILER_MAX)
        return "trailer section too large";
    switch (c->state) {
    case CH_TR_START:
        if (!is_tchar(ch))
            return "invalid trailer field";
        c->state = CH_TR_NAME;
        return NULL;
    case CH_TR_NAME:
        if (ch == ':')
            c->state = CH_TR_VALUE;
        else if (!is_tchar(ch))
            return "invalid trailer field name";
        return NULL;
    case CH_TR_VALUE:
        if (ch == '\r')
            c->state = CH_TR_LF;
        else if (!is_value(ch))
            return "invalid trailer field value";
        return NULL;
    case CH_TR_LF:
        if (ch != '\n')
            return "missing LF after trailer field";
        c->state = CH_TR_START;
        return NULL;
    default:
        return "decoder in an impossible state";
    }
}

int http_chunked_decode(http_chunked *c, char *buf, size_t len, size_t *out_len, size_t *consumed)
{
    size_t in = 0, out = 0;
    int rc = 0;

    if (c->state == CH_ERROR) {
        rc = -1;
        goto out;
    }
    while (c->state != CH_DONE && in < len) {
        if (c->state == CH_DATA) {
            size_t n = len - in;
            if ((uint64_t)n > c->remaining)
                n = (size_t)c->remaining;
            if (out != in)
                memmove(buf + out, buf + in, n);
            out += n;
            in += n;
            c->remaining -= n;
            c->total += n;
            if (c->remaining == 0)
                c->state = CH_DATA_CR;
            continue;
        }
        const char *why = chunk_step(c, buf[in]);
        if (why) {
            c->error = why;
            c->state = CH_ERROR;
            rc = -1;
            goto out;
        }
        in++;
    }
    if (c->state == CH_DONE)
        rc = 1;
out:
    *out_len = out;
    *consumed = in;
    return rc;
}

/* ------------------------------------------------------------------------
 * Helpers
 * ------------------------------------------------------------------------ */

const http_header *http_header_get(const http_request_head *h, const char *name)
{
    sv n = sv_from(name);
    for (size_t i = 0; i < h->nheaders; i++)
        if (sv_ieq(h->headers[i].name, n))
            return &h->headers[i];
    return NULL;
}

void http_split_target(sv t, sv *path, sv *query)
{
    size_t start = 0;
    size_t skip = 0;
    if (t.len >= 7 && strncasecmp(t.p, "http://", 7) == 0)
        skip = 7;
    else if (t.len >= 8 && strncasecmp(t.p, "https://", 8) == 0)
        skip = 8;
    if (skip) {
        /* the authority ends at the first '/' or '?' */
        start = skip;
        while (start < t.len && t.p[start] != '/' && t.p[start] != '?')
            start++;
    }
    const char *q = start < t.len ? memchr(t.p + start, '?', t.len - start) : NULL;
    size_t pend = q ? (size_t)(q - t.p) : t.len;
    if (skip && pend == start)
        *path = SV("/");
    else
        *path = (sv){ t.p + start, pend - start };
    if (q)
        *query = (sv){ q + 1, t.len - pend - 1 };
    else
        *query = SV_NULL;
}

bool http_query_get(sv query, const char *key, sv *value)
{
    if (!query.p)
        return false;
    sv k = sv_from(key);
    const char *p = query.p, *end = query.p + query.len;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *e = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(e - p));
        sv name = { p, (size_t)((eq ? eq : e) - p) };
        if (sv_eq(name, k)) {
            *value = eq ? (sv){ eq + 1, (size_t)(e - eq - 1) } : (sv){ e, 0 };
            return true;
        }
        p = amp ? amp + 1 : end;
    }
    return false;
}

bool http_query_next(sv query, size_t *pos, sv *name, sv *value)
{
    while (*pos < query.len) {
        size_t i = *pos, j = i;
        while (j < query.len && query.p[j] != '&')
            j++;
        *pos = j + 1;
        if (j == i)
            continue; /* "&&": an empty pair */
        sv pair = sv_make(query.p + i, j - i);
        const char *eq = memchr(pair.p, '=', pair.len);
        *name = eq ? sv_make(pair.p, (size_t)(eq - pair.p)) : pair;
        *value = eq ? sv_make(eq + 1, pair.len - name->len - 1) : SV_NULL;
        return true;
    }
    return false;
}

size_t http_url_decode(char *dst, size_t cap, sv src)
{
    size_t o = 0;
    for (size_t i = 0; i < src.len; i++) {
        char ch = src.p[i];
        if (ch == '%') {
            if (src.len - i < 3)
                return (size_t)-1;
            int hi = hexval(src.p[i + 1]), lo = hexval(src.p[i + 2]);
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
                return (size_t)-1;
            ch = (char)(hi * 16 + lo);
            i += 2;
        } else if (ch == '+') {
            ch = ' ';
        }
        if (o + 1 >= cap)
            return (size_t)-1;
        dst[o++] = ch;
    }
    if (cap == 0)
        return (size_t)-1;
    dst[o] = '\0';
    return o;
}

const char *http_status_reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 402: return "Payment Required";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 422: return "Unprocessable Content";
    case 425: return "Too Early";
    case 426: return "Upgrade Required";
    case 428: return "Precondition Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}
