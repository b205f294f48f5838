/*
 * fuzz_http.c - libFuzzer driver for src/http/parser.c.
 *
 * Input layout: two bytes choosing a split point (little-endian, taken
 * modulo the length of the rest), then the bytes under test. The driver
 *  - parses the whole input as a request head and checks the prefix rule:
 *    the prefix up to the split gives INCOMPLETE or the same answer (and,
 *    for a complete head, exactly the head length when it covers the head);
 *  - runs the URL helpers on the target and the header lookups;
 *  - decodes the input (and the body after a parsed head) as a chunked
 *    body once whole and once in two slices cut at the split, and checks
 *    both give the same result, consumption and decoded bytes.
 * Every slice is an exact-size heap copy so ASan sees any read past len.
 * A broken invariant calls abort(), which libFuzzer reports as a crash.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/parser.h"

static char *copy_of(const uint8_t *p, size_t n)
{
    char *d = malloc(n ? n : 1);
    if (!d)
        abort();
    if (n)
        memcpy(d, p, n);
    return d;
}

/* Decodes in[0..len) as a chunked body, cut into two slices at cut.
 * The decoded bytes go to out (room for len bytes). */
static int chunked_run(const uint8_t *in, size_t len, size_t cut, char *out, size_t *out_len,
                       size_t *used)
{
    http_chunked c;
    http_chunked_init(&c);
    size_t pos = 0, olen = 0;
    int rc = 0;
    size_t stops[2] = { cut, len };
    for (int k = 0; k < 2 && rc == 0; k++) {
        size_t n = stops[k] - pos;
        char *slice = copy_of(in + pos, n);
        size_t o = 0, u = 0;
        rc = http_chunked_decode(&c, slice, n, &o, &u);
        if (o > u || u > n || (rc == 0 && u != n) || (rc == -1 && !c.error))
            abort();
        memcpy(out + olen, slice, o);
        olen += o;
        pos += u;
        free(slice);
    }
    if (c.total != olen)
        abort();
    *out_len = olen;
    *used = pos;
    return rc;
}

static void check_chunked(const uint8_t *in, size_t len, size_t cut)
{
    char *a = malloc(len + 1), *b = malloc(len + 1);
    size_t alen, aused, blen, bused;
    int ra = chunked_run(in, len, len, a, &alen, &aused);
    int rb = chunked_run(in, len, cut, b, &blen, &bused);
    if (ra != rb || aused != bused || alen != blen || memcmp(a, b, alen) != 0)
        abort();
    free(a);
    free(b);
}

static void check_helpers(const http_request_head *h)
{
    sv path, query, v;
    http_split_target(h->target, &path, &query);
    if (path.len > h->target.len)
        abort();
    (void)http_query_get(query, "model", &v);
    (void)http_query_get(query, "", &v);
    char dst[256];
    size_t n = http_url_decode(dst, sizeof dst, path);
    if (n != (size_t)-1 && (n >= sizeof dst || n > path.len))
        abort();
    (void)http_header_get(h, "content-type");
    (void)http_status_reason(http_parse_status(-1));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t sel = (size_t)data[0] | (size_t)data[1] << 8;
    data += 2;
    size -= 2;
    size_t cut = sel % (size + 1);

    http_header hdrs[16];
    http_request_head h;
    const char *reason = NULL;
    char *whole = copy_of(data, size);
    int rc = http_parse_request(whole, size, &h, hdrs, 16, &reason);
    if (rc == 0 || rc > (int)size || rc < HTTP_PARSE_BAD_VERSION)
        abort();
    if ((rc < 0 && rc != HTTP_PARSE_INCOMPLETE) != (reason != NULL))
        abort();
    if (rc > 0)
        check_helpers(&h);

    /* the prefix rule */
    http_header hdrs2[16];
    http_request_head h2;
    char *prefix = copy_of(data, cut);
    int rc2 = http_parse_request(prefix, cut, &h2, hdrs2, 16, NULL);
    free(prefix);
    if (rc > 0) {
        if ((size_t)rc <= cut ? rc2 != rc : rc2 != HTTP_PARSE_INCOMPLETE)
            abort();
    } else if (rc2 != HTTP_PARSE_INCOMPLETE && rc2 != rc) {
        abort();
    }

    check_chunked(data, size, cut);
    if (rc > 0 && h.chunked)
        check_chunked(data + rc, size - (size_t)rc, cut > (size_t)rc ? cut - (size_t)rc : 0);
    free(whole);
    return 0;
}
