/*
 * jscan.c - a zero-allocation validating JSON scanner.
 *
 * Validation is one forward pass over the bytes: a goto state machine
 * (value, object key, after a value) with a bit stack of the open
 * containers (1 = object) on the C stack, so it neither allocates nor
 * recurses. jscan_parse is the same pass compiled with capture on, which
 * also records the top-level members. Strings are scanned 16 bytes at a
 * time with SSE2 (8 with SWAR elsewhere, a byte loop as the last resort);
 * only escapes and non-ASCII bytes leave the fast path, and are checked
 * exactly (UTF-8 by Unicode table 3-7). Numbers get jansson's limits:
 * integers must fit in 64 bits, and reals must not round to infinity -
 * decided without strtod by comparing the digits with 2^1024 - 2^970.
 *
 * The readers (get, iterate, match, string, int, duplicates) trust that
 * their span was validated, so they only look for the ends of strings and
 * containers, but they stay inside the span whatever it holds. Unescaped
 * content is produced in chunks (a run of raw bytes, or one decoded
 * escape), so comparing, hashing and copying need no buffer. See
 * docs/internals/jscan.md.
 */
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/random.h>
#include <time.h>
#include "jscan.h"
#if defined(__SSE2__)
#include <emmintrin.h>
#define JSCAN_SSE2 1
#endif

/* ---- byte classes -------------------------------------------------------- */

static const uint8_t ws_tab[256] = { [' '] = 1, ['\t'] = 1, ['\n'] = 1, ['\r'] = 1 };

/* Bytes a string holds as they are: 0x20..0x7f except '"' and '\\'. */
#define R8(x) x, x, x, x, x, x, x, x
static const uint8_t str_plain[256] = {
    R8(0), R8(0), R8(0), R8(0),                             /* 0x00..0x1f */
    1, 1, 0, 1, 1, 1, 1, 1, R8(1), R8(1), R8(1),           /* 0x20..0x3f, '"' */
    R8(1), R8(1), R8(1), 1, 1, 1, 1, 0, 1, 1, 1,           /* 0x40..0x5f, '\\' */
    R8(1), R8(1), R8(1), R8(1),                             /* 0x60..0x7f */
};
#undef R8

/* The type of the value a byte starts (J_NONE: none). */
static const uint8_t type_tab[256] = {
    ['{'] = J_OBJECT, ['['] = J_ARRAY, ['"'] = J_STRING, ['t'] = J_TRUE, ['f'] = J_FALSE, ['n'] = J_NULL,
    ['-'] = J_NUMBER, ['0'] = J_NUMBER, ['1'] = J_NUMBER, ['2'] = J_NUMBER, ['3'] = J_NUMBER,
    ['4'] = J_NUMBER, ['5'] = J_NUMBER, ['6'] = J_NUMBER, ['7'] = J_NUMBER, ['8'] = J_NUMBER, ['9'] = J_NUMBER,
};

static inline jtype type_of(char c) { return (jtype)type_tab[(uint8_t)c]; }

static inline bool is_digit(char c) { return (unsigned char)(c - '0') < 10; }

static inline const char *skip_ws(const char *p, const char *end)
{
    while (p < end && ws_tab[(uint8_t)*p])
        p++;
    return p;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)(c | 0x20);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* The four hex digits at p as a number, or -1. */
static long hex4(const char *p, const char *end)
{
    if (end - p < 4)
        return -1;
    long v = 0;
    for (int i = 0; i < 4; i++) {
        int d = hexval(p[i]);
        if (d < 0)
            return -1;
        v = v << 4 | d;
    }
    return v;
}

/* Length of the valid UTF-8 sequence starting with the non-ASCII byte at
 * p, or 0 with *bad at the first byte that makes it invalid (end when the
 * text stops inside it). Overlongs, surrogates and > U+10FFFF are invalid. */
static size_t utf8_seq(const uint8_t *p, const uint8_t *end, const uint8_t **bad)
{
    uint8_t c = p[0], lo = 0x80, hi = 0xbf;
    size_t n;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        if (c == 0xe0)
            lo = 0xa0; /* overlong */
        else if (c == 0xed)
            hi = 0x9f; /* surrogates */
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        if (c == 0xf0)
            lo = 0x90; /* overlong */
        else if (c == 0xf4)
            hi = 0x8f; /* above U+10FFFF */
    } else {
        *bad = p;
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if (p + i >= end) {
            *bad = end;
            return 0;
        }
        uint8_t b = p[i];
        if (i == 1 ? (b < lo || b > hi) : (b & 0xc0) != 0x80) {
            *bad = p + i;
            return 0;
        }
    }
    return n;
}

/* ---- SWAR helpers -------------------------------------------------------- */

#if !defined(JSCAN_SSE2) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define JSCAN_SWAR 1
#define ONES 0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL

static inline uint64_t load64(const char *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

/* High bit set in each byte of x that is zero; exact up to and including
 * the lowest such byte, which is all the callers look at. */
static inline uint64_t zero_bytes(uint64_t x) { return (x - ONES) & ~x & HIGHS; }
#endif

#if defined(JSCAN_SSE2)
static inline __m128i load16(const char *p) { return _mm_loadu_si128((const __m128i *)(const void *)p); }

/* Fewer than 16 bytes left before end, but at least 16 readable ones
 * since lo: look at the last 16 and drop the bits before p, instead of a
 * byte loop. (Callers check end - lo >= 16 and p < end.) */
#define TAIL_BITS(v, p, end) ((unsigned)_mm_movemask_epi8(v) >> (16 - ((end) - (p))))
#endif

/* ---- errors -------------------------------------------------------------- */

static bool PRINTF_LIKE(4, 5) fail(jscan_error *e, const char *text, const char *at, const char *fmt, ...)
{
    if (!e)
        return false;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    long line = 1;
    const char *ls = text;
    for (const char *q = text; q < at; q++) {
        if (*q == '\n') {
            line++;
            ls = q + 1;
        }
    }
    e->offset = (size_t)(at - text);
    e->line = line > INT_MAX ? INT_MAX : (int)line;
    e->column = at - ls + 1 > INT_MAX ? INT_MAX : (int)(at - ls + 1);
    return false;
}

/* Names the byte at p for a message: 'x', byte 0x0a, or an end. */
static void describe(char *dst, size_t cap, const char *p, const char *end)
{
    if (p >= end)
        snprintf(dst, cap, "the end of the input");
    else if ((uint8_t)*p > 0x20 && (uint8_t)*p < 0x7f)
        snprintf(dst, cap, "'%c'", *p);
    else
        snprintf(dst, cap, "byte 0x%02x", (uint8_t)*p);
}

/* The error for a byte that cannot start a value. */
static bool bad_value(jscan_error *e, const char *text, const char *p, const char *end)
{
    if (p >= end)
        return fail(e, text, p, "unexpected end of input, expected a value");
    if ((uint8_t)*p >= 0x80) {
        const uint8_t *bad;
        if (!utf8_seq((const uint8_t *)p, (const uint8_t *)end, &bad)) {
            if (bad == (const uint8_t *)p)
                return fail(e, text, p, "invalid UTF-8 byte 0x%02x", (uint8_t)*p);
            return fail(e, text, p, "invalid UTF-8 sequence starting with byte 0x%02x", (uint8_t)*p);
        }
        if (p == text && end - p >= 3 && memcmp(p, "\xef\xbb\xbf", 3) == 0)
            return fail(e, text, p, "a byte order mark is not allowed");
        return fail(e, text, p, "expected a value, found a non-ASCII character");
    }
    char what[32];
    describe(what, sizeof what, p, end);
    return fail(e, text, p, "expected a value, found %s", what);
}

/* ---- validation ---------------------------------------------------------- */

/* The backslash at p starts an escape: returns the byte after it, or NULL
 * with e filled. */
static const char *scan_escape(const char *p, const char *end, const char *text, jscan_error *e)
{
    if (end - p < 2) {
        fail(e, text, end, "unterminated string");
        return NULL;
    }
    switch (p[1]) {
    case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
        return p + 2;
    case 'u':
        break;
    default: {
        char what[32];
        describe(what, sizeof what, p + 1, end);
        fail(e, text, p, "invalid escape: backslash followed by %s", what);
        return NULL;
    }
    }
    long cp = hex4(p + 2, end);
    if (cp < 0) {
        fail(e, text, p, "invalid \\u escape: expected 4 hex digits");
        return NULL;
    }
    if (cp == 0) {
        fail(e, text, p, "\\u0000 is not allowed in strings");
        return NULL;
    }
    if (cp >= 0xdc00 && cp <= 0xdfff) {
        fail(e, text, p, "lone low surrogate \\u%04lX", cp);
        return NULL;
    }
    if (cp >= 0xd800 && cp <= 0xdbff) {
        long lo = end - p >= 12 && p[6] == '\\' && p[7] == 'u' ? hex4(p + 8, end) : -1;
        if (lo < 0xdc00 || lo > 0xdfff) {
            fail(e, text, p, "high surrogate \\u%04lX not followed by a low surrogate", cp);
            return NULL;
        }
        return p + 12;
    }
    return p + 6;
}

/* p is just after an opening quote: returns the byte after the closing
 * quote, or NULL with e filled. */
static const char *scan_string(const char *p, const char *end, const char *text, jscan_error *e)
{
    for (;;) {
#if defined(JSCAN_SSE2)
        /* signed: bytes >= 0x80 are negative, so "< 0x20" also finds them */
        const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\'), space = _mm_set1_epi8(0x20);
#define STR_SPECIAL(v) \
    _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, bslash)), _mm_cmplt_epi8(v, space))
        while (end - p >= 16) {
            unsigned bits = (unsigned)_mm_movemask_epi8(STR_SPECIAL(load16(p)));
            if (bits) {
                p += __builtin_ctz(bits);
                goto special;
            }
            p += 16;
        }
        if (p < end && end - text >= 16) {
            unsigned bits = TAIL_BITS(STR_SPECIAL(load16(end - 16)), p, end);
            if (bits) {
                p += __builtin_ctz(bits);
                goto special;
            }
            p = end;
        }
#undef STR_SPECIAL
#elif defined(JSCAN_SWAR)
        while (end - p >= 8) {
            uint64_t v = load64(p);
            uint64_t m = zero_bytes(v ^ (ONES * '"')) | zero_bytes(v ^ (ONES * '\\')) |
                         ((v - ONES * 0x20) & ~v & HIGHS) | (v & HIGHS);
            if (m) {
                p += __builtin_ctzll(m) >> 3;
                goto special;
            }
            p += 8;
        }
#endif
        while (p < end && str_plain[(uint8_t)*p])
            p++;
        if (p >= end) {
            fail(e, text, end, "unterminated string");
            return NULL;
        }
#if defined(JSCAN_SSE2) || defined(JSCAN_SWAR)
    special:
#endif
        if (*p == '"')
            return p + 1;
        if (*p == '\\') {
            p = scan_escape(p, end, text, e);
            if (!p)
                return NULL;
            continue;
        }
        if ((uint8_t)*p < 0x20) {
            fail(e, text, p, "control character 0x%02x in a string", (uint8_t)*p);
            return NULL;
        }
        const uint8_t *bad;
        size_t n = utf8_seq((const uint8_t *)p, (const uint8_t *)end, &bad);
        if (!n) {
            if ((const char *)bad == end)
                fail(e, text, end, "unterminated string");
            else if ((const char *)bad == p)
                fail(e, text, p, "invalid UTF-8 byte 0x%02x", (uint8_t)*p);
            else
                fail(e, text, (const char *)bad, "invalid UTF-8: byte 0x%02x cannot follow 0x%02x", *bad, (uint8_t)*p);
            return NULL;
        }
        p += n;
    }
}

/* scan_string with the common case inline: a short string with nothing to
 * look at, whose closing quote is the first special byte of its first 16. */
static inline __attribute__((always_inline)) const char *scan_string_fast(const char *p, const char *end,
                                                                         const char *text, jscan_error *e)
{
#if defined(JSCAN_SSE2)
    if (end - p >= 16) {
        const __m128i v = load16(p);
        unsigned bits = (unsigned)_mm_movemask_epi8(
            _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')), _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'))),
                         _mm_cmplt_epi8(v, _mm_set1_epi8(0x20))));
        if (bits) {
            const char *q = p + __builtin_ctz(bits);
            if (*q == '"')
                return q + 1;
        }
    }
#endif
    return scan_string(p, end, text, e);
}

/* 2^1024 - 2^970: the smallest decimal that strtod rounds to infinity
 * (halfway between DBL_MAX and 2^1024, which rounds to even = up). */
static const char dbl_overflow[] =
    "179769313486231580793728971405303415079934132710037826936173778980444968292764750946649017977587207096330286416"
    "692887910946555547851940402630657488671505820681908902000708383676273854845817711531764475730270069855571366959"
    "622842914819860834936475292719074168444365510704342711559699508093042880177904174497792";

/* Does the number with integer digits [i0,i1), fraction digits [f0,f1)
 * (f0 == f1 == i1 if none) and exponent ex round to +-infinity? */
static bool real_overflows(const char *i0, const char *i1, const char *f0, const char *f1, long long ex)
{
    const long long cap = 1000000000000LL; /* digit counts beyond this cannot matter */
    const char *lead;
    long long mag; /* the value is 0.DIGITS x 10^mag */
    if (*i0 != '0') {
        lead = i0;
        mag = (long long)MIN((size_t)(i1 - i0), (size_t)cap) + ex;
    } else {
        for (lead = f0; lead < f1 && *lead == '0'; lead++)
            ;
        if (lead == f1)
            return false; /* zero */
        mag = ex - (long long)MIN((size_t)(lead - f0), (size_t)cap);
    }
    const long long digits = (long long)sizeof dbl_overflow - 1; /* 309 */
    if (mag != digits)
        return mag > digits;
    const char *p = lead;
    for (long long k = 0; k < digits; k++) {
        if (p == i1)
            p = f0;
        if (p == f1)
            return false; /* a prefix of the limit, whose last digit is not 0 */
        if (*p != dbl_overflow[k])
            return *p > dbl_overflow[k];
        p++;
    }
    return true;
}

/* p is at '-' or a digit: returns the byte after the number, or NULL with
 * e filled. */
static const char *scan_number(const char *p, const char *end, const char *text, jscan_error *e)
{
    const char *start = p;
    bool neg = *p == '-';
    if (neg)
        p++;
    const char *i0 = p;
    if (p >= end || !is_digit(*p)) {
        fail(e, text, p, "expected a digit after '-'");
        return NULL;
    }
    if (*p == '0') {
        p++;
        if (p < end && is_digit(*p)) {
            fail(e, text, p - 1, "leading zero in a number");
            return NULL;
        }
    } else {
        while (p < end && is_digit(*p))
            p++;
    }
    const char *i1 = p, *f0 = p, *f1 = p;
    bool real = false;
    long long ex = 0;
    if (p < end && *p == '.') {
        p++;
        if (p >= end || !is_digit(*p)) {
            fail(e, text, p, "expected a digit after '.'");
            return NULL;
        }
        f0 = p;
        while (p < end && is_digit(*p))
            p++;
        f1 = p;
        real = true;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        bool eneg = false;
        if (p < end && (*p == '+' || *p == '-'))
            eneg = *p++ == '-';
        if (p >= end || !is_digit(*p)) {
            fail(e, text, p, "expected a digit in the exponent");
            return NULL;
        }
        for (; p < end && is_digit(*p); p++)
            if (ex < 1000000000)
                ex = ex * 10 + (*p - '0');
        if (eneg)
            ex = -ex;
        real = true;
    }
    if (!real) {
        size_t nd = (size_t)(i1 - i0);
        if (nd > 19 || (nd == 19 && memcmp(i0, neg ? "9223372036854775808" : "9223372036854775807", 19) > 0)) {
            fail(e, text, start, "integer out of the 64-bit range");
            return NULL;
        }
    } else if ((long long)MIN((size_t)(i1 - i0), (size_t)1000000000) + ex >= 309 && /* else far below */
               real_overflows(i0, i1, f0, f1, ex)) {
        fail(e, text, start, "number too large for a double");
        return NULL;
    }
    return p;
}

/* What jscan_parse hands back besides the verdict. */
typedef struct capture {
    jval *root;
    jscan_member *top;
    size_t cap, *count;
} capture;

/*
 * The validator. Inlined into jscan_validate (cap == NULL) and jscan_parse
 * separately, so the compiler drops the capturing code from the first.
 * depth counts the open containers: a value that starts at depth 1 is a
 * direct member of the root, and it ends at the next visit of `after` with
 * depth 1 (scalars get there directly, containers when they close).
 */
static inline __attribute__((always_inline)) bool validate(const char *text, size_t len, int max_depth,
                                                           jscan_error *e, const capture *cap)
{
    static const char empty[1] = "";
    if (!text)
        text = empty, len = 0;
    const char *p = text, *end = text + len, *root = NULL;
    uint64_t objs[(JSCAN_MAX_DEPTH + 63) / 64]; /* bit d set: container at depth d is an object */
    int depth = 0;
    size_t ntop = 0;
    jscan_member cur = { { J_NONE, NULL, 0 }, { J_NONE, NULL, 0 } };
    if (max_depth > JSCAN_MAX_DEPTH)
        max_depth = JSCAN_MAX_DEPTH;
    if (max_depth < 1)
        max_depth = 1;

value:
    p = skip_ws(p, end);
    if (p >= end)
        return bad_value(e, text, p, end);
    if (cap && depth <= 1) {
        if (depth == 0)
            root = p;
        else
            cur.val = (jval){ type_of(*p), p, 0 };
    }
    switch (*p) {
    case '{':
        if (depth >= max_depth)
            return fail(e, text, p, "nesting deeper than %d", max_depth);
        objs[depth >> 6] |= 1ULL << (depth & 63);
        depth++;
        p = skip_ws(p + 1, end);
        if (p < end && *p == '}') {
            p++;
            depth--;
            goto after;
        }
        if (p >= end || *p != '"') {
            char what[32];
            describe(what, sizeof what, p, end);
            return fail(e, text, p, "expected a string key or '}', found %s", what);
        }
        goto key;
    case '[':
        if (depth >= max_depth)
            return fail(e, text, p, "nesting deeper than %d", max_depth);
        objs[depth >> 6] &= ~(1ULL << (depth & 63));
        depth++;
        p = skip_ws(p + 1, end);
        if (p < end && *p == ']') {
            p++;
            depth--;
            goto after;
        }
        goto value;
    case '"':
        p = scan_string_fast(p + 1, end, text, e);
        if (!p)
            return false;
        goto after;
    case 't':
        if (end - p < 4 || memcmp(p, "true", 4) != 0)
            return fail(e, text, p, "invalid literal (expected true)");
        p += 4;
        goto after;
    case 'f':
        if (end - p < 5 || memcmp(p, "false", 5) != 0)
            return fail(e, text, p, "invalid literal (expected false)");
        p += 5;
        goto after;
    case 'n':
        if (end - p < 4 || memcmp(p, "null", 4) != 0)
            return fail(e, text, p, "invalid literal (expected null)");
        p += 4;
        goto after;
    case '-': case '0': case '1': case '2': case '3': case '4': case '5': case '6': case '7': case '8': case '9':
        p = scan_number(p, end, text, e);
        if (!p)
            return false;
        goto after;
    default:
        return bad_value(e, text, p, end);
    }

key: /* p is at the opening quote of a member name */
    if (cap && depth == 1) {
        const char *k0 = p;
        p = scan_string_fast(p + 1, end, text, e);
        if (!p)
            return false;
        cur.key = (jval){ J_STRING, k0, (size_t)(p - k0) };
    } else {
        p = scan_string_fast(p + 1, end, text, e);
        if (!p)
            return false;
    }
    p = skip_ws(p, end);
    if (p >= end || *p != ':') {
        char what[32];
        describe(what, sizeof what, p, end);
        return fail(e, text, p, "expected ':' after an object key, found %s", what);
    }
    p++;
    goto value;

after:
    if (cap && depth <= 1) {
        if (depth == 0) {
            *cap->root = (jval){ type_of(*root), root, (size_t)(p - root) };
        } else {
            cur.val.len = (size_t)(p - cur.val.p);
            if (ntop < cap->cap)
                cap->top[ntop] = cur;
            ntop++;
            *cap->count = ntop;
        }
    }
    p = skip_ws(p, end);
    if (depth == 0) {
        if (p < end)
            return fail(e, text, p, "unexpected data after the JSON value");
        return true;
    }
    if (objs[(depth - 1) >> 6] >> ((depth - 1) & 63) & 1) {
        if (p < end && *p == ',') {
            p = skip_ws(p + 1, end);
            if (p < end && *p == '"')
                goto key;
            if (p < end && *p == '}')
                return fail(e, text, p, "trailing comma before '}'");
            char what[32];
            describe(what, sizeof what, p, end);
            return fail(e, text, p, "expected a string key after ',', found %s", what);
        }
        if (p < end && *p == '}') {
            p++;
            depth--;
            goto after;
        }
        if (p >= end)
            return fail(e, text, p, "unexpected end of input, expected ',' or '}'");
        return fail(e, text, p, "expected ',' or '}' after an object member");
    }
    if (p < end && *p == ',') {
        p = skip_ws(p + 1, end);
        if (p < end && *p == ']')
            return fail(e, text, p, "trailing comma before ']'");
        goto value;
    }
    if (p < end && *p == ']') {
        p++;
        depth--;
        goto after;
    }
    if (p >= end)
        return fail(e, text, p, "unexpected end of input, expected ',' or ']'");
    return fail(e, text, p, "expected ',' or ']' after an array element");
}

bool jscan_validate(const char *text, size_t len, int max_depth, jscan_error *e)
{
    return validate(text, len, max_depth, e, NULL);
}

bool jscan_parse(const char *text, size_t len, int max_depth, jval *root, jscan_member *top, size_t cap,
                 size_t *count, jscan_error *e)
{
    jval r = { J_NONE, NULL, 0 };
    size_t n = 0;
    capture c = { &r, top, top ? cap : 0, &n };
    bool ok = validate(text, len, max_depth, e, &c);
    if (!ok)
        r = (jval){ J_NONE, NULL, 0 }, n = 0;
    if (root)
        *root = r;
    if (count)
        *count = n;
    return ok;
}

/* ---- readers of validated spans ------------------------------------------ */

/* p is just after an opening quote: the byte after the closing quote, or
 * end if there is none. Bytes from lo to end may be read. *esc (esc may be
 * NULL) is set when the string has a backslash in it. */
static inline __attribute__((always_inline)) const char *skip_str_esc(const char *p, const char *end, const char *lo,
                                                                     bool *esc)
{
    for (;;) {
#if defined(JSCAN_SSE2)
        const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\');
#define STR_END(v) _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, bslash))
        while (end - p >= 16) {
            unsigned bits = (unsigned)_mm_movemask_epi8(STR_END(load16(p)));
            if (bits) {
                p += __builtin_ctz(bits);
                goto special;
            }
            p += 16;
        }
        if (p < end && end - lo >= 16) {
            unsigned bits = TAIL_BITS(STR_END(load16(end - 16)), p, end);
            if (!bits)
                return end;
            p += __builtin_ctz(bits);
            goto special;
        }
#undef STR_END
#else
        UNUSED(lo);
#endif
#if defined(JSCAN_SWAR)
        while (end - p >= 8) {
            uint64_t v = load64(p);
            uint64_t m = zero_bytes(v ^ (ONES * '"')) | zero_bytes(v ^ (ONES * '\\'));
            if (m) {
                p += __builtin_ctzll(m) >> 3;
                goto special;
            }
            p += 8;
        }
#endif
        while (p < end && *p != '"' && *p != '\\')
            p++;
        if (p >= end)
            return end;
#if defined(JSCAN_SSE2) || defined(JSCAN_SWAR)
    special:
#endif
        if (*p == '"')
            return p + 1;
        if (esc)
            *esc = true;
        p += end - p > 2 ? 2 : end - p; /* backslash: skip the escaped byte */
    }
}

static inline __attribute__((always_inline)) const char *skip_str(const char *p, const char *end, const char *lo)
{
    return skip_str_esc(p, end, lo, NULL);
}

/* Bytes that matter when skipping a container: quotes and brackets. */
static const uint8_t brackets[256] = { ['"'] = 1, ['['] = 1, [']'] = 1, ['{'] = 1, ['}'] = 1 };

/* p is at the '{' or '[' of a well-formed container: the byte after its
 * closing bracket, or end. ('[' | 0x20 is '{' and ']' | 0x20 is '}', and no
 * other byte maps to them, so two compares find all four brackets.) */
static const char *skip_container(const char *p, const char *end, const char *lo)
{
    size_t depth = 0;
    for (;;) {
#if defined(JSCAN_SSE2)
        const __m128i quote = _mm_set1_epi8('"'), open = _mm_set1_epi8('{'), close = _mm_set1_epi8('}'),
                      bit5 = _mm_set1_epi8(0x20);
#define BRACKETS(v)                                                                                              \
    _mm_or_si128(_mm_cmpeq_epi8(v, quote),                                                                       \
                 _mm_or_si128(_mm_cmpeq_epi8(_mm_or_si128(v, bit5), open), _mm_cmpeq_epi8(_mm_or_si128(v, bit5), close)))
        while (end - p >= 16) {
            unsigned bits = (unsigned)_mm_movemask_epi8(BRACKETS(load16(p)));
            if (bits) {
                p += __builtin_ctz(bits);
                goto special;
            }
            p += 16;
        }
        if (p < end && end - lo >= 16) {
            unsigned bits = TAIL_BITS(BRACKETS(load16(end - 16)), p, end);
            if (!bits)
                return end;
            p += __builtin_ctz(bits);
            goto special;
        }
#undef BRACKETS
#elif defined(JSCAN_SWAR)
        while (end - p >= 8) {
            uint64_t v = load64(p), w = v | ONES * 0x20;
            uint64_t m = zero_bytes(v ^ (ONES * '"')) | zero_bytes(w ^ (ONES * '{')) | zero_bytes(w ^ (ONES * '}'));
            if (m) {
                p += __builtin_ctzll(m) >> 3;
                goto special;
            }
            p += 8;
        }
#endif
        while (p < end && !brackets[(uint8_t)*p])
            p++;
        if (p >= end)
            return end;
#if defined(JSCAN_SSE2) || defined(JSCAN_SWAR)
    special:
#endif
        switch (*p) {
        case '"':
            p = skip_str(p + 1, end, lo);
            continue;
        case '{':
        case '[':
            depth++;
            break;
        default: /* '}' or ']' */
            if (--depth == 0)
                return p + 1;
        }
        p++;
    }
}


/* p is at the first byte of a value of type t: the byte after it (at most
 * end). lo: where the readable bytes start. */
static inline __attribute__((always_inline)) const char *skip_value(const char *p, const char *end, jtype t,
                                                                   const char *lo)
{
    switch (t) {
    case J_STRING:
        return skip_str(p + 1, end, lo);
    case J_OBJECT:
    case J_ARRAY:
        return skip_container(p, end, lo);
    case J_TRUE:
    case J_NULL:
        return p + MIN(4, end - p);
    case J_FALSE:
        return p + MIN(5, end - p);
    default: /* J_NUMBER */
        while (p < end && (is_digit(*p) || *p == '-' || *p == '+' || *p == '.' || *p == 'e' || *p == 'E'))
            p++;
        return p;
    }
}

/* ---- walking text that was not validated --------------------------------- */

void jscan_walk_init(jscan_walk *w, const char *text, size_t len)
{
    w->lo = w->p = text;
    w->end = text ? text + len : NULL;
    w->ok = text != NULL;
    w->key_esc = false;
}

static bool walk_stop(jscan_walk *w)
{
    w->ok = false;
    w->p = w->end;
    return false;
}

/* skip_ws for text that is mostly compact: one compare when no space is next. */
static inline __attribute__((always_inline)) const char *walk_ws(const char *p, const char *end)
{
    if (p < end && (uint8_t)*p > ' ')
        return p;
    return skip_ws(p, end);
}

/* Consumes c, after whitespace, if it is next. */
static inline __attribute__((always_inline)) bool walk_eat(jscan_walk *w, char c)
{
    const char *p = walk_ws(w->p, w->end);
    w->p = p;
    if (p < w->end && *p == c) {
        w->p = p + 1;
        return true;
    }
    return false;
}

jval jscan_walk_value(jscan_walk *w)
{
    if (!w->ok)
        return (jval){ J_NONE, NULL, 0 };
    const char *p = walk_ws(w->p, w->end);
    jtype t = p < w->end ? type_of(*p) : J_NONE;
    if (t == J_NONE) {
        walk_stop(w);
        return (jval){ J_NONE, NULL, 0 };
    }
    w->p = skip_value(p, w->end, t, w->lo);
    return (jval){ t, p, (size_t)(w->p - p) };
}

jtype jscan_walk_peek(jscan_walk *w)
{
    if (!w->ok)
        return J_NONE;
    w->p = walk_ws(w->p, w->end);
    return w->p < w->end ? type_of(*w->p) : J_NONE;
}

bool jscan_walk_enter(jscan_walk *w, char open)
{
    if (!w->ok)
        return false;
    if (walk_eat(w, open))
        return true;
    jscan_walk_value(w);
    return false;
}

bool jscan_walk_member(jscan_walk *w, size_t n, jval *key)
{
    *key = (jval){ J_NONE, NULL, 0 };
    if (!w->ok)
        return false;
    const char *p = walk_ws(w->p, w->end), *end = w->end;
    if (p < end && *p == '}') {
        w->p = p + 1;
        return false;
    }
    if (n > 0) {
        if (p >= end || *p != ',')
            return walk_stop(w);
        p = walk_ws(p + 1, end);
    }
    if (p >= end || *p != '"')
        return walk_stop(w);
    bool esc = false;
    const char *k = p;
    p = skip_str_esc(p + 1, end, w->lo, &esc);
    w->key_esc = esc;
    *key = (jval){ J_STRING, k, (size_t)(p - k) };
    p = walk_ws(p, end);
    if (p >= end || *p != ':')
        return walk_stop(w);
    w->p = p + 1;
    return true;
}

bool jscan_walk_element(jscan_walk *w, size_t n)
{
    if (!w->ok || walk_eat(w, ']'))
        return false;
    return n == 0 || walk_eat(w, ',') || walk_stop(w);
}

bool jscan_walk_done(jscan_walk *w)
{
    return w->ok && skip_ws(w->p, w->end) == w->end;
}

jval jscan_root(const char *text, size_t len)
{
    if (!text || !len)
        return (jval){ J_NONE, NULL, 0 };
    const char *p = skip_ws(text, text + len), *end = text + len;
    while (end > p && ws_tab[(uint8_t)end[-1]])
        end--;
    if (p == end)
        return (jval){ J_NONE, NULL, 0 };
    return (jval){ type_of(*p), p, (size_t)(end - p) };
}

void jscan_iter_init(jscan_iter *it, jval v)
{
    it->p = it->end = it->start = NULL;
    it->type = J_NONE;
    it->count = 0;
    if (!v.p || v.len < 2)
        return;
    char open = v.type == J_OBJECT ? '{' : v.type == J_ARRAY ? '[' : 0;
    if (!open || v.p[0] != open || v.p[v.len - 1] != (open == '{' ? '}' : ']'))
        return;
    it->start = v.p;
    it->p = v.p + 1;
    it->end = v.p + v.len - 1;
    it->type = v.type;
}

bool jscan_next(jscan_iter *it, jval *key, jval *val)
{
    const char *p = skip_ws(it->p, it->end), *end = it->end;
    jval k = { J_NONE, NULL, 0 };
    if (p >= end)
        goto done;
    if (it->count) {
        if (*p != ',')
            goto done;
        p = skip_ws(p + 1, end);
        if (p >= end)
            goto done;
    }
    if (it->type == J_OBJECT) {
        if (*p != '"')
            goto done;
        const char *k0 = p;
        p = skip_str(p + 1, end, it->start);
        k = (jval){ J_STRING, k0, (size_t)(p - k0) };
        p = skip_ws(p, end);
        if (p >= end || *p != ':')
            goto done;
        p = skip_ws(p + 1, end);
        if (p >= end)
            goto done;
    }
    jtype t = type_of(*p);
    if (t == J_NONE)
        goto done;
    const char *v0 = p;
    p = skip_value(p, end, t, it->start);
    it->p = p;
    it->count++;
    if (key)
        *key = k;
    if (val)
        *val = (jval){ t, v0, (size_t)(p - v0) };
    return true;
done:
    it->p = it->end;
    if (key)
        *key = (jval){ J_NONE, NULL, 0 };
    if (val)
        *val = (jval){ J_NONE, NULL, 0 };
    return false;
}

/* ---- unescaped string content in chunks ---------------------------------- */

typedef struct ustr {
    const char *p, *end;
    bool bad;     /* stopped at a malformed escape */
    char tmp[4];  /* one decoded escape, UTF-8 */
} ustr;

static bool ustr_init(ustr *u, jval v)
{
    u->bad = false;
    if (v.type != J_STRING || !v.p || v.len < 2 || v.p[0] != '"' || v.p[v.len - 1] != '"') {
        u->p = u->end = NULL;
        return false;
    }
    u->p = v.p + 1;
    u->end = v.p + v.len - 1;
    return true;
}

static size_t utf8_put(char *d, unsigned long cp)
{
    if (cp < 0x80) {
        d[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        d[0] = (char)(0xc0 | cp >> 6);
        d[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        d[0] = (char)(0xe0 | cp >> 12);
        d[1] = (char)(0x80 | (cp >> 6 & 0x3f));
        d[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    d[0] = (char)(0xf0 | cp >> 18);
    d[1] = (char)(0x80 | (cp >> 12 & 0x3f));
    d[2] = (char)(0x80 | (cp >> 6 & 0x3f));
    d[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* The next piece of content: a run of raw bytes up to a backslash, or one
 * decoded escape. False at the end, or on a malformed escape (u->bad). */
static bool ustr_next(ustr *u, const char **chunk, size_t *n)
{
    const char *p = u->p, *end = u->end;
    if (p >= end)
        return false;
    if (*p != '\\') {
        const char *bs = memchr(p, '\\', (size_t)(end - p));
        const char *stop = bs ? bs : end;
        *chunk = p;
        *n = (size_t)(stop - p);
        u->p = stop;
        return true;
    }
    if (end - p < 2)
        goto bad;
    char c;
    switch (p[1]) {
    case '"': case '\\': case '/': c = p[1]; break;
    case 'b': c = '\b'; break;
    case 'f': c = '\f'; break;
    case 'n': c = '\n'; break;
    case 'r': c = '\r'; break;
    case 't': c = '\t'; break;
    case 'u': {
        long cp = hex4(p + 2, end);
        const char *next = p + 6;
        if (cp < 0 || (cp >= 0xdc00 && cp <= 0xdfff))
            goto bad;
        if (cp >= 0xd800 && cp <= 0xdbff) {
            long lo = end - p >= 12 && p[6] == '\\' && p[7] == 'u' ? hex4(p + 8, end) : -1;
            if (lo < 0xdc00 || lo > 0xdfff)
                goto bad;
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            next = p + 12;
        }
        *n = utf8_put(u->tmp, (unsigned long)cp);
        *chunk = u->tmp;
        u->p = next;
        return true;
    }
    default:
        goto bad;
    }
    u->tmp[0] = c;
    *chunk = u->tmp;
    *n = 1;
    u->p = p + 2;
    return true;
bad:
    u->bad = true;
    u->p = end;
    return false;
}

/* Is the unescaped content of string v exactly s[0..slen)? */
static bool ustr_eq_mem(jval v, const char *s, size_t slen)
{
    ustr u;
    if (!ustr_init(&u, v) || v.len - 2 < slen) /* unescaping never lengthens */
        return false;
    const char *c;
    size_t n, off = 0;
    while (ustr_next(&u, &c, &n)) {
        if (n > slen - off || memcmp(c, s + off, n) != 0)
            return false;
        off += n;
    }
    return !u.bad && off == slen;
}

/* Do two strings have the same unescaped content? */
static bool ustr_eq(jval a, jval b)
{
    ustr ua, ub;
    if (!ustr_init(&ua, a) || !ustr_init(&ub, b))
        return false;
    const char *ca = NULL, *cb = NULL;
    size_t na = 0, nb = 0;
    for (;;) {
        if (!na && !ustr_next(&ua, &ca, &na))
            na = 0;
        if (!nb && !ustr_next(&ub, &cb, &nb))
            nb = 0;
        if (!na || !nb)
            return !na && !nb && !ua.bad && !ub.bad;
        size_t k = MIN(na, nb);
        if (memcmp(ca, cb, k) != 0)
            return false;
        ca += k, na -= k;
        cb += k, nb -= k;
    }
}

/* The common case of comparing a string with s[0..slen): while the raw
 * bytes have no backslash they are the content. 1 = equal, 0 = not, -1 =
 * an escape decides (ask ustr_eq_mem). */
static inline int raw_eq(jval v, const char *s, size_t slen)
{
    if (v.type != J_STRING || v.len < 2)
        return 0;
    const char *raw = v.p + 1;
    size_t rl = v.len - 2;
    if (rl < slen)
        return 0; /* unescaping never lengthens */
    for (size_t i = 0; i < slen; i++) {
        if (raw[i] == '\\')
            return -1;
        if (raw[i] != s[i])
            return 0;
    }
    /* s is a prefix of the raw bytes: more bytes, escaped or not, always
     * unescape to more content */
    return rl == slen;
}

static __attribute__((noinline)) bool string_eq_slow(jval v, const char *s)
{
    return ustr_eq_mem(v, s, strlen(s));
}

bool jscan_string_eq(jval v, const char *s)
{
    if (!s || v.type != J_STRING || v.len < 2)
        return false;
    /* one pass over both while the raw bytes have no escape: most
     * comparisons end at the first byte, without a strlen */
    const char *q = v.p + 1, *end = v.p + v.len - 1, *t = s;
    for (; q < end; q++, t++) {
        if (*q == '\\')
            return string_eq_slow(v, s);
        if (*q != *t || *q == '\0')
            return false;
    }
    return *t == '\0';
}

int jscan_match(jval v, const char *const *names, size_t n)
{
    if (v.type != J_STRING || v.len < 2 || !names)
        return -1;
    const char *raw = v.p + 1;
    const size_t rl = v.len - 2;
    for (size_t i = 0; i < n; i++) {
        const char *t = names[i];
        if (!t)
            continue;
        /* up to the first backslash the raw bytes are the content, so a
         * difference before one settles it */
        if (rl && raw[0] != t[0] && raw[0] != '\\')
            continue; /* the common miss */
        size_t k = 0;
        while (k < rl && raw[k] != '\\' && raw[k] == t[k] && t[k])
            k++;
        if (k == rl ? t[k] == '\0' : raw[k] == '\\' && string_eq_slow(v, t))
            return (int)i;
    }
    return -1;
}

bool jscan_string(jval v, char *dst, size_t cap, size_t *len)
{
    ustr u;
    size_t off = 0;
    bool ok = ustr_init(&u, v);
    if (ok) {
        const char *c;
        size_t n;
        while (ustr_next(&u, &c, &n)) {
            if (dst && off + n < cap)
                memcpy(dst + off, c, n);
            off += n;
        }
        ok = !u.bad && dst && off < cap;
    }
    if (len)
        *len = off;
    if (dst && cap)
        dst[ok ? off : 0] = '\0';
    return ok;
}

bool jscan_get(jval obj, const char *key, jval *out, bool *dup)
{
    int found = 0;
    jval last = { J_NONE, NULL, 0 };
    /* the iterator's walk, written out: this is the hottest reader */
    if (key && obj.type == J_OBJECT && obj.p && obj.len >= 2 && obj.p[0] == '{' && obj.p[obj.len - 1] == '}') {
        const size_t klen = strlen(key);
        const char *lo = obj.p, *p = obj.p + 1, *end = obj.p + obj.len - 1;
        for (;;) {
            p = skip_ws(p, end);
            if (p >= end || *p != '"')
                break;
            const char *k0 = p;
            p = skip_str(p + 1, end, lo);
            jval k = { J_STRING, k0, (size_t)(p - k0) };
            p = skip_ws(p, end);
            if (p >= end || *p != ':')
                break;
            p = skip_ws(p + 1, end);
            jtype t = p < end ? type_of(*p) : J_NONE;
            if (t == J_NONE)
                break;
            const char *v0 = p;
            p = skip_value(p, end, t, lo);
            int r = raw_eq(k, key, klen);
            if (r > 0 || (r < 0 && ustr_eq_mem(k, key, klen))) {
                found++;
                last = (jval){ t, v0, (size_t)(p - v0) };
            }
            p = skip_ws(p, end);
            if (p >= end || *p != ',')
                break;
            p++;
        }
    }
    if (out)
        *out = last;
    if (dup)
        *dup = found > 1;
    return found > 0;
}

bool jscan_int(jval v, long long *out)
{
    if (v.type != J_NUMBER || !v.p || !v.len)
        return false;
    const char *p = v.p, *end = v.p + v.len;
    bool neg = *p == '-';
    if (neg)
        p++;
    if (p >= end || (*p == '0' && end - p > 1))
        return false;
    unsigned long long acc = 0, limit = neg ? (unsigned long long)LLONG_MAX + 1 : (unsigned long long)LLONG_MAX;
    for (; p < end; p++) {
        if (!is_digit(*p))
            return false;
        unsigned d = (unsigned)(*p - '0');
        if (acc > (limit - d) / 10)
            return false;
        acc = acc * 10 + d;
    }
    if (out)
        *out = neg ? (acc > (unsigned long long)LLONG_MAX ? LLONG_MIN : -(long long)acc) : (long long)acc;
    return true;
}

/* ---- duplicate keys ------------------------------------------------------ */

/* A per-process random seed, so that keys colliding in the table cannot be
 * prepared in advance (a defence against flooding, not a cryptographic one). */
static uint64_t dup_seed(void)
{
    static _Atomic uint64_t seed;
    uint64_t s = atomic_load_explicit(&seed, memory_order_relaxed);
    if (s)
        return s;
    if (getrandom(&s, sizeof s, GRND_NONBLOCK) != (ssize_t)sizeof s)
        s = (uint64_t)time(NULL) * 0x9e3779b97f4a7c15ULL ^ (uint64_t)(uintptr_t)&seed;
    s |= 1;
    atomic_store_explicit(&seed, s, memory_order_relaxed);
    return s;
}

static uint64_t key_hash(jval k, uint64_t seed)
{
    ustr u;
    uint64_t h = seed;
    const char *c;
    size_t n;
    ustr_init(&u, k);
    while (ustr_next(&u, &c, &n))
        for (size_t i = 0; i < n; i++)
            h = (h ^ (uint8_t)c[i]) * 0x100000001b3ULL;
    h ^= h >> 33; /* murmur3's finalizer */
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    return h ^ h >> 33;
}

/* Does key k have an escape? Asked lazily: esc is 0 unknown, 1 no, 2 yes. */
static bool escaped(jval k, uint8_t *esc)
{
    if (!*esc)
        *esc = memchr(k.p, '\\', k.len) ? 2 : 1;
    return *esc == 2;
}

/* Same content? Equal raw spans always are; different ones can only be
 * when one of them has an escape. Without escapes the first content bytes
 * are the first raw bytes, which settles most pairs at once. */
static inline bool same_key(const jval *a, uint8_t *a_esc, const jval *b, uint8_t *b_esc)
{
    if (a->len > 2 && b->len > 2 && a->p[1] != b->p[1] && a->p[1] != '\\' && b->p[1] != '\\')
        return false;
    if (a->len == b->len && memcmp(a->p, b->p, a->len) == 0)
        return true;
    return (escaped(*a, a_esc) || escaped(*b, b_esc)) && ustr_eq(*a, *b);
}

/* The keys to check: an object's members, or an array of members. */
typedef struct keys {
    jval obj;
    const jscan_member *m;
    size_t n, i;
    jscan_iter it;
} keys;

static void keys_rewind(keys *ks)
{
    ks->i = 0;
    if (!ks->m)
        jscan_iter_init(&ks->it, ks->obj);
}

static bool keys_next(keys *ks, jval *k)
{
    if (ks->m) {
        if (ks->i >= ks->n)
            return false;
        *k = ks->m[ks->i++].key;
        return true;
    }
    ks->i++;
    return jscan_next(&ks->it, k, NULL);
}

#define DUP_PAIRWISE 32    /* up to this many keys, compare every pair */
#define DUP_STACK_SLOTS 2048 /* a table of up to 1024 keys on the stack: 32 KiB */

typedef struct dup_slot {
    const char *key; /* NULL = empty */
    uint32_t len;
    uint32_t tag;
} dup_slot;

/*
 * More than DUP_PAIRWISE keys (out of line, so the common case keeps a
 * small stack frame): one walk with a hash table of twice as many slots as
 * keys, on the stack up to 1024 keys and on the heap beyond. Without O(n)
 * memory, finding duplicates among n keys costs O(n^2 / memory) time, which
 * a hostile body with a hundred thousand keys turns into seconds; so big
 * objects get the memory they need, and if it cannot be had the answer is
 * true, so that the caller refuses the document rather than passing it
 * unchecked.
 */
static __attribute__((noinline)) bool dup_big(keys *ks, size_t total)
{
    dup_slot stack_tab[DUP_STACK_SLOTS], *tab = stack_tab;
    size_t size = 64;
    while (size < 2 * total && size <= SIZE_MAX / 2 / sizeof *tab)
        size *= 2;
    if (size < 2 * total || ks->obj.len > UINT32_MAX)
        return true; /* documented limits */
    if (size > DUP_STACK_SLOTS && !(tab = malloc(size * sizeof *tab)))
        return true;
    memset(tab, 0, size * sizeof *tab);
    const uint64_t seed = dup_seed();
    bool dup = false;
    jval k;
    keys_rewind(ks);
    while (!dup && keys_next(ks, &k)) {
        uint64_t h = key_hash(k, seed);
        uint32_t tag = (uint32_t)(h >> 32);
        size_t slot = (size_t)h & (size - 1);
        for (; tab[slot].key; slot = (slot + 1) & (size - 1)) {
            if (tab[slot].tag == tag && ustr_eq((jval){ J_STRING, tab[slot].key, tab[slot].len }, k)) {
                dup = true;
                break;
            }
        }
        tab[slot] = (dup_slot){ k.p, (uint32_t)k.len, tag };
    }
    if (tab != stack_tab)
        free(tab);
    return dup;
}

static bool dup_keys(keys *ks)
{
    jval seen[DUP_PAIRWISE], k;
    uint8_t esc[DUP_PAIRWISE];
    size_t total = 0;
    keys_rewind(ks);
    while (keys_next(ks, &k)) {
        if (total < DUP_PAIRWISE) {
            esc[total] = 0;
            for (size_t i = 0; i < total; i++)
                if (same_key(&seen[i], &esc[i], &k, &esc[total]))
                    return true;
            seen[total] = k;
        }
        total++;
    }
    return total > DUP_PAIRWISE && dup_big(ks, total);
}

bool jscan_has_duplicate_keys(jval obj)
{
    if (obj.type != J_OBJECT || !obj.p || obj.len < 2)
        return false;
    keys ks = { .obj = obj };
    return dup_keys(&ks);
}

bool jscan_duplicate_members(const jscan_member *m, size_t n)
{
    keys ks = { .m = m, .n = m ? n : 0 };
    if (!m || n > DUP_PAIRWISE)
        return n > DUP_PAIRWISE && dup_keys(&ks);
    uint8_t esc[DUP_PAIRWISE];
    for (size_t j = 0; j < n; j++) { /* dup_keys without the walk */
        esc[j] = 0;
        for (size_t i = 0; i < j; i++)
            if (same_key(&m[i].key, &esc[i], &m[j].key, &esc[j]))
                return true;
    }
    return false;
}

/* ---- writing --------------------------------------------------------------- */

/* Bytes a JSON string literal takes as they are: printable ASCII but '"'
 * and '\\'. */
static const uint8_t escape_plain[256] = {
    [0x20] = 1, [0x21] = 1, [0x23 ... 0x5b] = 1, [0x5d ... 0x7e] = 1, [0x7f] = 1,
};

size_t jscan_escape(char *dst, size_t cap, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
#define PUT(ch) do { if (o < cap) dst[o] = (char)(ch); o++; } while (0)
#define PUTS(lit) do { for (const char *q_ = (lit); *q_; q_++) PUT(*q_); } while (0)
    PUT('"');
    for (size_t i = 0; i < n;) {
        /* a run of bytes that need nothing: copied in one go */
        size_t r = i;
        while (r < n && escape_plain[(uint8_t)s[r]])
            r++;
        if (r > i) {
            if (o < cap)
                memcpy(dst + o, s + i, MIN(r - i, cap - o));
            o += r - i;
            i = r;
            continue;
        }
        uint8_t c = (uint8_t)s[i];
        if (c >= 0x80) {
            const uint8_t *bad;
            size_t k = utf8_seq((const uint8_t *)s + i, (const uint8_t *)s + n, &bad);
            if (!k) {
                PUTS("\\ufffd");
                i++;
                continue;
            }
            for (size_t j = 0; j < k; j++)
                PUT(s[i + j]);
            i += k;
            continue;
        }
        switch (c) {
        case '"': PUTS("\\\""); break;
        case '\\': PUTS("\\\\"); break;
        case '\b': PUTS("\\b"); break;
        case '\f': PUTS("\\f"); break;
        case '\n': PUTS("\\n"); break;
        case '\r': PUTS("\\r"); break;
        case '\t': PUTS("\\t"); break;
        case 0: PUTS("\\ufffd"); break;
        default:
            if (c < 0x20) {
                PUTS("\\u00");
                PUT(hex[c >> 4]);
                PUT(hex[c & 15]);
            } else {
                PUT(c);
            }
        }
        i++;
    }
    PUT('"');
#undef PUT
#undef PUTS
    return o;
}

/* Index of the first byte that is not part of valid UTF-8 (Unicode table
 * 3-7: no overlongs, surrogates or code points past U+10FFFF), or n. */
size_t jscan_utf8_prefix(const char *text, size_t n)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t i = 0;
    while (i < n) {
        while (i + 8 <= n) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (w & 0x8080808080808080ull)
                break;
            i += 8;
        }
        if (i >= n)
            break;
        unsigned char c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t need;
        unsigned char lo = 0x80, hi = 0xbf;
        if (c >= 0xc2 && c <= 0xdf)
            need = 1;
        else if (c >= 0xe0 && c <= 0xef) {
            need = 2;
            if (c == 0xe0)
                lo = 0xa0;
            else if (c == 0xed)
                hi = 0x9f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            need = 3;
            if (c == 0xf0)
                lo = 0x90;
            else if (c == 0xf4)
                hi = 0x8f;
        } else
            return i;
        if (n - i <= need)
            return i;
        if (s[i + 1] < lo || s[i + 1] > hi)
            return i;
        for (size_t k = 2; k <= need; k++)
            if ((s[i + k] & 0xc0) != 0x80)
                return i;
        i += need + 1;
    }
    return n;
}
