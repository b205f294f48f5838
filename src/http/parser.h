/*
 * parser.h - HTTP/1.1 request-head parser, chunked body decoder and small
 * URL helpers.
 *
 * http_parse_request() is stateless and zero-copy in the manner of
 * picohttpparser: the caller keeps the bytes received so far in one buffer
 * and calls it again from the start whenever more arrive. It returns the
 * head length once the blank line is there, HTTP_PARSE_INCOMPLETE before
 * that, or a negative error. Every sv it fills in points into the caller's
 * buffer and lives as long as those bytes do. It does not limit the head
 * size: the caller answers 431 when its bounded buffer fills while the
 * answer is still INCOMPLETE.
 *
 * http_chunked_decode() keeps a small state in http_chunked, so the body may
 * be fed in slices of any size; it decodes in place and never allocates.
 */
#ifndef GENAIOPS_HTTP_PARSER_H
#define GENAIOPS_HTTP_PARSER_H

#include "core/common.h"

typedef struct http_header {
    sv name;
    sv value; /* trimmed of leading and trailing SP/HTAB */
} http_header;

typedef struct http_request_head {
    sv method, target;      /* target = path + optional ?query, as sent */
    int minor_version;      /* 0 or 1 */
    http_header *headers;   /* the caller-provided array ... */
    size_t nheaders;        /* ... filled with this many */
    int64_t content_length; /* -1 when absent */
    bool chunked;           /* Transfer-Encoding: chunked */
    bool keep_alive;        /* 1.1: unless Connection: close; 1.0: only with keep-alive */
    bool expect_continue;   /* Expect: 100-continue (HTTP/1.1 only) */
} http_request_head;

enum {
    HTTP_PARSE_ERROR = -1,             /* -> 400 */
    HTTP_PARSE_INCOMPLETE = -2,        /* read more and call again */
    HTTP_PARSE_TOO_MANY_HEADERS = -3,  /* -> 431 */
    HTTP_PARSE_UNSUPPORTED_TE = -4,    /* -> 501 */
    HTTP_PARSE_BAD_VERSION = -5,       /* -> 505 */
};

/* Parses the request head in buf[0..len). Returns the number of bytes of
 * the head (optional leading empty lines + request line + headers + blank
 * line) when complete, or one of the negative codes above. h is filled in
 * (h->headers = headers, at most max_headers of them); on a negative result
 * its contents are unspecified. *reason (reason may be NULL) is set to a
 * static human-readable string on an error, to NULL otherwise. A prefix of a
 * valid head always gives HTTP_PARSE_INCOMPLETE, and a prefix of an invalid
 * one gives INCOMPLETE or the same error as the whole. */
int http_parse_request(const char *buf, size_t len, http_request_head *h,
                       http_header *headers, size_t max_headers, const char **reason);

/* The status code a server answers a negative http_parse_request() result
 * with (400, 431, 501, 505); 0 for HTTP_PARSE_INCOMPLETE or a length. */
int http_parse_status(int rc);

/* Limits of the chunked decoder (RFC 9112 section 7.1). */
#define HTTP_CHUNK_SIZE_MAX ((uint64_t)1 << 40) /* one chunk's size */
#define HTTP_CHUNK_EXT_MAX 4096                 /* bytes after the size on one size line */
#define HTTP_CHUNK_TRAILER_MAX 8192             /* the whole trailer section */

/* Chunked decoder state; treat the fields as private except `total` (body
 * bytes decoded so far, for the caller's size limit) and `error`. */
typedef struct http_chunked {
    uint64_t remaining;   /* data bytes left in the current chunk, or the size being read */
    uint64_t total;       /* decoded body bytes so far */
    const char *error;    /* static reason after a -1 result, else NULL */
    uint32_t count;       /* extension or trailer bytes seen, against their limits */
    uint8_t digits;       /* hex digits of the current size */
    uint8_t state;
} http_chunked;

void http_chunked_init(http_chunked *c);

/* Decodes the next slice buf[0..len) of a chunked body, in place: the
 * decoded body bytes of this slice are moved to the front of buf and
 * *out_len says how many; *consumed is the number of input bytes used.
 * Returns 1 when the last chunk and the trailers are complete (bytes after
 * *consumed belong to the next pipelined request; later calls return 1 and
 * use nothing), 0 when all input was used and more is needed, -1 on
 * malformed input (bad hex, size over 2^40, missing CRLF, trailer section
 * over 8 KiB, chunk extension over 4 KiB; c->error says which). After -1
 * every later call returns -1. Trailer fields are checked and dropped. */
int http_chunked_decode(http_chunked *c, char *buf, size_t len, size_t *out_len, size_t *consumed);

/* The first header whose name equals name case-insensitively, or NULL. */
const http_header *http_header_get(const http_request_head *h, const char *name);

/* Splits a request target at the first '?': *path before it, *query after it
 * (SV_NULL when there is no '?'). For an absolute-form target
 * ("http://host/p?q") the scheme and authority are dropped, so *path is
 * "/p" (or a static "/" when the target has no path). Both point into
 * target except that "/". */
void http_split_target(sv target, sv *path, sv *query);

/* Finds key in an application/x-www-form-urlencoded query ("a=1&b=2") by
 * exact, undecoded comparison. On a match sets *value to the raw (not
 * decoded) value, empty for "a" or "a=", and returns true. */
bool http_query_get(sv query, const char *key, sv *value);

/* Iterates over the pairs of a query string ("a=1&&b&c=") from *pos (start
 * at 0): sets *name and *value to the next non-empty pair's raw (not
 * decoded) parts, *value being SV_NULL when the pair has no '=' ("b") and
 * empty for "c=", advances *pos and returns true; false at the end. */
bool http_query_next(sv query, size_t *pos, sv *name, sv *value);

/* Decodes %XX escapes and '+' (to space) of src into dst, which gets a
 * terminating NUL. Returns the decoded length, or (size_t)-1 when src has a
 * malformed escape or "%00", or when the result and its NUL do not fit in
 * cap. dst may be src.p itself (decoding never lengthens); on failure dst
 * then holds a partly decoded mess. */
size_t http_url_decode(char *dst, size_t cap, sv src);

/* The reason phrase of a status code ("OK", "Not Found"...), "Unknown" for
 * codes it does not know. A static string. */
const char *http_status_reason(int status);

#endif
