/*
 * assert_text.c - the text side of the assertions: per-thread scratch
 * memory, JavaScript-compatible text primitives, the PCRE2 wrapper that
 * stands in for JS RegExp, and the text metrics (levenshtein, ROUGE-N,
 * ROUGE-L, BLEU, token F1). See assert_int.h for the contracts and
 * docs/internals/assertions.md for the definitions and where they differ
 * from promptfoo's libraries.
 *
 * How it works: every function reads UTF-8 views and writes only into the
 * calling thread's scratch slots, so after the first few checks a thread
 * runs them without calling malloc. Tokens are views (pointer, length,
 * hash) into a scratch buffer; n-grams are counted with open-addressing
 * tables of (first token, count) entries, so ROUGE and BLEU run in linear
 * time. Levenshtein keeps one row of the shorter string and, given a
 * limit, only the band of cells that can stay under it (Ukkonen), so a
 * long answer far from the expected text costs O(limit * length).
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include "eval/assert_int.h"

/* ---- scratch ---------------------------------------------------------------- */

typedef struct scratch {
    bool init;
    buf b[AT_B__COUNT];
    void *m[AT_M__COUNT];
    size_t mcap[AT_M__COUNT];
    pcre2_match_data *md;
} scratch;

static _Thread_local scratch tls;

static scratch *sc(void)
{
    if (!tls.init) {
        for (int i = 0; i < AT_B__COUNT; i++)
            buf_init(&tls.b[i], AT_SCRATCH_MAX);
        tls.init = true;
    }
    return &tls;
}

buf *at_buf(int slot)
{
    if (slot < 0 || slot >= AT_B__COUNT)
        return NULL;
    buf *b = &sc()->b[slot];
    buf_reset(b);
    return b;
}

void *at_mem(int slot, size_t n)
{
    scratch *s = sc();
    if (slot < 0 || slot >= AT_M__COUNT || n > AT_SCRATCH_MAX)
        return NULL;
    if (n == 0)
        n = 1;
    if (n <= s->mcap[slot])
        return s->m[slot];
    size_t cap = s->mcap[slot] ? s->mcap[slot] : 1024;
    while (cap < n)
        cap *= 2;
    if (cap > AT_SCRATCH_MAX)
        cap = AT_SCRATCH_MAX;
    void *p = realloc(s->m[slot], cap);
    if (!p)
        return NULL;
    s->m[slot] = p;
    s->mcap[slot] = cap;
    return p;
}

void at_scratch_trim(bool all)
{
    scratch *s = &tls;
    if (!s->init)
        return;
    size_t big = all ? 0 : (1u << 20);
    for (int i = 0; i < AT_B__COUNT; i++)
        if (s->b[i].cap > big) {
            buf_free(&s->b[i]);
            buf_init(&s->b[i], AT_SCRATCH_MAX);
        }
    for (int i = 0; i < AT_M__COUNT; i++)
        if (s->mcap[i] > big) {
            free(s->m[i]);
            s->m[i] = NULL;
            s->mcap[i] = 0;
        }
    if (all && s->md) {
        pcre2_match_data_free(s->md);
        s->md = NULL;
    }
}

/* ---- UTF-8 and JS whitespace ------------------------------------------------- */

size_t at_utf8_next(const char *s, size_t n, uint32_t *cp)
{
    const unsigned char *u = (const unsigned char *)s;
    unsigned char c = u[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    size_t len;
    uint32_t v, min;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2, v = c & 0x1F, min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3, v = c & 0x0F, min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4, v = c & 0x07, min = 0x10000;
    } else {
        *cp = 0xFFFD;
        return 1;
    }
    if (n < len) {
        *cp = 0xFFFD;
        return 1;
    }
    for (size_t i = 1; i < len; i++) {
        if ((u[i] & 0xC0) != 0x80) {
            *cp = 0xFFFD;
            return 1;
        }
        v = (v << 6) | (u[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) {
        *cp = 0xFFFD;
        return 1;
    }
    *cp = v;
    return len;
}

/* JS \s: the ASCII blanks, NBSP, U+1680, U+2000-200A, U+2028, U+2029,
 * U+202F, U+205F, U+3000 and U+FEFF. */
size_t at_space_len(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    if (n == 0)
        return 0;
    if (u[0] < 0x80)
        return (u[0] == ' ' || (u[0] >= 9 && u[0] <= 13)) ? 1 : 0;
    if (u[0] == 0xC2)
        return n >= 2 && u[1] == 0xA0 ? 2 : 0;
    if (n < 3)
        return 0;
    if (u[0] == 0xE1)
        return u[1] == 0x9A && u[2] == 0x80 ? 3 : 0;
    if (u[0] == 0xE2 && u[1] == 0x80)
        return (u[2] <= 0x8A && u[2] >= 0x80) || u[2] == 0xA8 || u[2] == 0xA9 || u[2] == 0xAF ? 3 : 0;
    if (u[0] == 0xE2 && u[1] == 0x81)
        return u[2] == 0x9F ? 3 : 0;
    if (u[0] == 0xE3)
        return u[1] == 0x80 && u[2] == 0x80 ? 3 : 0;
    if (u[0] == 0xEF)
        return u[1] == 0xBB && u[2] == 0xBF ? 3 : 0;
    return 0;
}

sv at_trim(sv s)
{
    size_t a = 0, b = s.len, k;
    while (a < b && (k = at_space_len(s.p + a, b - a)) > 0)
        a += k;
    /* Trailing: step back over whole characters. */
    while (b > a) {
        size_t start = b - 1;
        while (start > a && ((unsigned char)s.p[start] & 0xC0) == 0x80 && b - start < 4)
            start--;
        k = at_space_len(s.p + start, b - start);
        if (k != b - start || k == 0)
            break;
        b = start;
    }
    return (sv){ s.p + a, b - a };
}

size_t at_word_count(sv s)
{
    size_t words = 0, i = 0;
    bool in = false;
    while (i < s.len) {
        size_t k = at_space_len(s.p + i, s.len - i);
        if (k) {
            in = false;
            i += k;
        } else {
            if (!in)
                words++;
            in = true;
            i++;
        }
    }
    return words;
}

size_t at_codepoints(sv s)
{
    size_t n = 0;
    uint32_t cp;
    for (size_t i = 0; i < s.len; n++)
        i += at_utf8_next(s.p + i, s.len - i, &cp);
    return n;
}

/* ---- lower-casing (JS toLowerCase for the common scripts) -------------------- */

static uint32_t lower_cp(uint32_t c)
{
    if (c < 0x80)
        return c >= 'A' && c <= 'Z' ? c + 32 : c;
    if (c >= 0xC0 && c <= 0xDE && c != 0xD7)
        return c + 32;
    if (c < 0x100)
        return c;
    if (c <= 0x17F) {
        if (c == 0x178)
            return 0xFF;
        if ((c >= 0x100 && c <= 0x12F) || (c >= 0x132 && c <= 0x137) || (c >= 0x14A && c <= 0x177))
            return (c & 1) ? c : c + 1;
        if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E))
            return (c & 1) ? c + 1 : c;
        return c;
    }
    if (c >= 0x386 && c <= 0x3AB) {
        if (c == 0x386)
            return 0x3AC;
        if (c >= 0x388 && c <= 0x38A)
            return c + 37;
        if (c == 0x38C)
            return 0x3CC;
        if (c == 0x38E || c == 0x38F)
            return c + 63;
        if ((c >= 0x391 && c <= 0x3A1) || (c >= 0x3A3 && c <= 0x3AB))
            return c + 32;
        return c;
    }
    if (c >= 0x400 && c <= 0x40F)
        return c + 80;
    if (c >= 0x410 && c <= 0x42F)
        return c + 32;
    if ((c >= 0x460 && c <= 0x481) || (c >= 0x48A && c <= 0x4BF))
        return (c & 1) ? c : c + 1;
    if (c >= 0x531 && c <= 0x556)
        return c + 48;
    if ((c >= 0x1E00 && c <= 0x1E95) || (c >= 0x1EA0 && c <= 0x1EFF))
        return (c & 1) ? c : c + 1;
    if (c >= 0xFF21 && c <= 0xFF3A)
        return c + 32;
    return c;
}

static size_t put_utf8(uint32_t c, char *o)
{
    if (c < 0x80) {
        o[0] = (char)c;
        return 1;
    }
    if (c < 0x800) {
        o[0] = (char)(0xC0 | (c >> 6));
        o[1] = (char)(0x80 | (c & 0x3F));
        return 2;
    }
    if (c < 0x10000) {
        o[0] = (char)(0xE0 | (c >> 12));
        o[1] = (char)(0x80 | ((c >> 6) & 0x3F));
        o[2] = (char)(0x80 | (c & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (c >> 18));
    o[1] = (char)(0x80 | ((c >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((c >> 6) & 0x3F));
    o[3] = (char)(0x80 | (c & 0x3F));
    return 4;
}

err_code at_lower(sv s, buf *out)
{
    err_code e = buf_reserve(out, s.len);
    if (e)
        return e;
    size_t i = 0;
    while (i < s.len) {
        unsigned char c = (unsigned char)s.p[i];
        if (c < 0x80) {
            /* Room was reserved for s.len bytes; ASCII never grows. */
            out->p[out->len++] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
            i++;
            continue;
        }
        uint32_t cp;
        size_t k = at_utf8_next(s.p + i, s.len - i, &cp);
        char enc[8];
        size_t m;
        if (cp == 0xFFFD && k == 1) {
            enc[0] = (char)c; /* keep a stray byte as it is */
            m = 1;
        } else if (cp == 0x130) {
            memcpy(enc, "i\xCC\x87", 3); /* U+0130 lower-cases to i + U+0307 */
            m = 3;
        } else {
            m = put_utf8(lower_cp(cp), enc);
        }
        if (m > k && (e = buf_reserve(out, m - k + (s.len - i))) != ERR_OK)
            return e;
        memcpy(out->p + out->len, enc, m);
        out->len += m;
        i += k;
    }
    out->p[out->len] = '\0';
    return ERR_OK;
}

/* ---- regular expressions -------------------------------------------------------- */

static pthread_once_t mctx_once = PTHREAD_ONCE_INIT;
static pcre2_match_context *mctx;

/* One match context for everybody: it is only read while matching. The
 * limits stop catastrophic backtracking on hostile patterns or answers. */
static void mctx_init(void)
{
    mctx = pcre2_match_context_create(NULL);
    if (mctx) {
        pcre2_set_match_limit(mctx, 10000000);
        pcre2_set_depth_limit(mctx, 100000);
        pcre2_set_heap_limit(mctx, 64 * 1024); /* KiB */
    }
}

pcre2_code *at_regex_compile(const char *pat, size_t len, char *msg, size_t cap)
{
    pcre2_compile_context *cc = pcre2_compile_context_create(NULL);
    if (!cc) {
        snprintf(msg, cap, "out of memory");
        return NULL;
    }
    pcre2_set_compile_extra_options(cc, PCRE2_EXTRA_ALT_BSUX);
    pcre2_set_max_pattern_length(cc, 64 * 1024);
    int err = 0;
    PCRE2_SIZE off = 0;
    uint32_t opts = PCRE2_UTF | PCRE2_MATCH_INVALID_UTF | PCRE2_ALT_BSUX | PCRE2_DOLLAR_ENDONLY;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pat, len, opts, &err, &off, cc);
    pcre2_compile_context_free(cc);
    if (!re) {
        PCRE2_UCHAR m[160];
        if (pcre2_get_error_message(err, m, sizeof m) < 0)
            snprintf((char *)m, sizeof m, "error %d", err);
        snprintf(msg, cap, "%s at offset %zu", (const char *)m, (size_t)off);
        return NULL;
    }
    (void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* falls back to the interpreter */
    return re;
}

int at_regex_search(const pcre2_code *re, const char *s, size_t n, char *msg, size_t cap)
{
    scratch *t = sc();
    pthread_once(&mctx_once, mctx_init);
    if (!t->md && !(t->md = pcre2_match_data_create(1, NULL))) {
        snprintf(msg, cap, "out of memory");
        return -1;
    }
    int rc = pcre2_match(re, (PCRE2_SPTR)(s ? s : ""), n, 0, 0, t->md, mctx);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT)
        rc = pcre2_match(re, (PCRE2_SPTR)(s ? s : ""), n, 0, PCRE2_NO_JIT, t->md, mctx);
    if (rc >= 0)
        return 1;
    if (rc == PCRE2_ERROR_NOMATCH)
        return 0;
    PCRE2_UCHAR m[160];
    if (pcre2_get_error_message(rc, m, sizeof m) < 0)
        snprintf((char *)m, sizeof m, "error %d", rc);
    snprintf(msg, cap, "regex match failed: %s", (const char *)m);
    return -1;
}

/* ---- levenshtein -------------------------------------------------------------- */

/* s as UTF-16 code units into the raw slot; NULL when over max units. */
static uint16_t *to_u16(sv s, int slot, size_t max, size_t *n)
{
    uint16_t *u = at_mem(slot, (s.len + 1) * sizeof *u); /* never more units than bytes */
    if (!u)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < s.len;) {
        uint32_t cp;
        i += at_utf8_next(s.p + i, s.len - i, &cp);
        if (cp >= 0x10000) {
            cp -= 0x10000;
            u[k++] = (uint16_t)(0xD800 | (cp >> 10));
            u[k++] = (uint16_t)(0xDC00 | (cp & 0x3FF));
        } else {
            u[k++] = (uint16_t)cp;
        }
        if (k > max)
            return NULL;
    }
    *n = k;
    return u;
}

int at_levenshtein(sv a, sv b, size_t max_units, size_t limit, size_t *dist, char *msg, size_t cap)
{
    size_t m, n;
    if (a.len > 4 * max_units || b.len > 4 * max_units) {
        snprintf(msg, cap, "text longer than %zu characters", max_units);
        return -1;
    }
    const uint16_t *x = to_u16(a, AT_M_U16A, max_units, &m);
    const uint16_t *y = to_u16(b, AT_M_U16B, max_units, &n);
    if (!x || !y) {
        snprintf(msg, cap, (!x && a.len <= max_units) || (!y && b.len <= max_units)
                               ? "out of memory" : "text longer than %zu characters", max_units);
        return -1;
    }
    /* Common prefix and suffix cost nothing. */
    while (m && n && x[0] == y[0])
        x++, y++, m--, n--;
    while (m && n && x[m - 1] == y[n - 1])
        m--, n--;
    if (m > n) { /* x is the shorter one: its row is kept */
        const uint16_t *t = x;
        x = y, y = t;
        size_t tn = m;
        m = n, n = tn;
    }
    if (m == 0) {
        *dist = n;
        return 0;
    }
    size_t k = limit == SIZE_MAX || limit >= n ? n : limit; /* the distance is at most n */
    if (n - m > k) {
        *dist = n - m; /* a lower bound, already over the limit */
        return 0;
    }
    uint32_t *row = at_mem(AT_M_ROW, (m + 1) * sizeof *row);
    if (!row) {
        snprintf(msg, cap, "out of memory");
        return -1;
    }
    uint32_t inf = (uint32_t)k + 1;
    for (size_t i = 0; i <= m; i++)
        row[i] = i <= k ? (uint32_t)i : inf;
    for (size_t j = 1; j <= n; j++) {
        size_t lo = j > k ? j - k : 1, hi = j + k < m ? j + k : m;
        if (lo > hi) {
            *dist = inf;
            return 0;
        }
        uint32_t diag = row[lo - 1];
        row[lo - 1] = lo == 1 ? (j < inf ? (uint32_t)j : inf) : inf;
        uint32_t colmin = row[lo - 1];
        uint16_t yc = y[j - 1];
        for (size_t i = lo; i <= hi; i++) {
            uint32_t up = row[i], v = up + 1;
            if (row[i - 1] + 1 < v)
                v = row[i - 1] + 1;
            uint32_t d = diag + (x[i - 1] != yc);
            if (d < v)
                v = d;
            if (v > inf)
                v = inf;
            diag = up;
            row[i] = v;
            if (v < colmin)
                colmin = v;
        }
        if (colmin >= inf) {
            *dist = inf;
            return 0;
        }
    }
    *dist = row[m];
    return 0;
}

/* ---- tokens and n-gram tables ------------------------------------------------- */

typedef struct tok {
    const char *p;
    uint32_t len;
    uint32_t h;
} tok;

static uint32_t hash_bytes(const char *p, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 16777619u;
    return h;
}

static bool tok_eq(const tok *a, const tok *b)
{
    return a->h == b->h && a->len == b->len && (a->len == 0 || memcmp(a->p, b->p, a->len) == 0);
}

/* Room for the tokens of a text of len bytes (never more than len + 1). */
static tok *tok_room(int slot, size_t len)
{
    return at_mem(slot, (len + 2) * sizeof(tok));
}

static void tok_add(tok *t, size_t *n, const char *p, size_t len)
{
    t[*n] = (tok){ p, (uint32_t)len, hash_bytes(p, len) };
    (*n)++;
}

/* The runs of non-whitespace of s, or one empty token when there are none
 * (JS's s.trim().split(/\s+/) gives [""] for a blank s). */
static size_t ws_tokens(sv s, tok *t)
{
    size_t n = 0, i = 0, start = 0;
    bool in = false;
    while (i < s.len) {
        size_t k = at_space_len(s.p + i, s.len - i);
        if (k) {
            if (in)
                tok_add(t, &n, s.p + start, i - start);
            in = false;
            i += k;
        } else {
            if (!in)
                start = i;
            in = true;
            i++;
        }
    }
    if (in)
        tok_add(t, &n, s.p + start, s.len - start);
    if (n == 0)
        tok_add(t, &n, s.p, 0);
    return n;
}

typedef struct gent {
    uint32_t start; /* index of the gram's first token */
    uint32_t count; /* 0: empty entry */
    uint32_t h;
} gent;

static uint32_t gram_hash(const tok *t, int n)
{
    uint32_t h = 2166136261u;
    for (int k = 0; k < n; k++)
        h = (h ^ t[k].h) * 16777619u;
    return h ^ (h >> 15);
}

static bool gram_eq(const tok *a, const tok *b, int n)
{
    for (int k = 0; k < n; k++)
        if (!tok_eq(&a[k], &b[k]))
            return false;
    return true;
}

/* Counts the n-grams of t[0..nt) in a table from slot; NULL when out of
 * memory. *mask gets the table size - 1. */
static gent *gram_table(const tok *t, size_t nt, int n, int slot, size_t *mask)
{
    size_t g = nt >= (size_t)n ? nt - (size_t)n + 1 : 0, cap = 16;
    while (cap < 2 * g)
        cap *= 2;
    gent *tab = at_mem(slot, cap * sizeof *tab);
    if (!tab)
        return NULL;
    memset(tab, 0, cap * sizeof *tab);
    for (size_t i = 0; i < g; i++) {
        uint32_t h = gram_hash(t + i, n);
        size_t j = h & (cap - 1);
        while (tab[j].count && !(tab[j].h == h && gram_eq(t + tab[j].start, t + i, n)))
            j = (j + 1) & (cap - 1);
        if (!tab[j].count)
            tab[j] = (gent){ (uint32_t)i, 0, h };
        tab[j].count++;
    }
    *mask = cap - 1;
    return tab;
}

/* For the n-grams of a and b: how many distinct grams of a occur in b, and
 * the clipped count sum(min(count in a, count in b)). -1 out of memory. */
static int overlap(const tok *a, size_t na, const tok *b, size_t nb, int n, size_t *distinct, size_t *clipped)
{
    size_t ma, mb;
    gent *ta = gram_table(a, na, n, AT_M_HASHA, &ma);
    gent *tb = ta ? gram_table(b, nb, n, AT_M_HASHB, &mb) : NULL;
    if (!tb)
        return -1;
    size_t d = 0, c = 0;
    for (size_t i = 0; i <= ma; i++) {
        if (!ta[i].count)
            continue;
        size_t j = ta[i].h & mb;
        while (tb[j].count && !(tb[j].h == ta[i].h && gram_eq(b + tb[j].start, a + ta[i].start, n)))
            j = (j + 1) & mb;
        if (tb[j].count) {
            d++;
            c += ta[i].count < tb[j].count ? ta[i].count : tb[j].count;
        }
    }
    *distinct = d;
    *clipped = c;
    return 0;
}

/* ---- the Penn Treebank tokenizer (js-rouge's, re-derived) ------------------- */

static bool ascii_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static bool word_char(char c) { return ascii_alpha(c) || (c >= '0' && c <= '9') || c == '_'; }

/* Lower-cases text and collapses each whitespace run to one space, trimmed,
 * into b. */
static err_code collapse_lower(sv text, buf *b)
{
    err_code e = at_lower(text, b);
    if (e)
        return e;
    size_t w = 0, i = 0, n = b->len;
    char *p = b->p;
    while (i < n) {
        size_t k = at_space_len(p + i, n - i);
        if (k) {
            while (i < n && (k = at_space_len(p + i, n - i)) > 0)
                i += k;
            if (w > 0 && i < n)
                p[w++] = ' ';
        } else {
            p[w++] = p[i++];
        }
    }
    b->len = w;
    p[w] = '\0';
    return ERR_OK;
}

/* The index of a sentence-final period to split off, or SIZE_MAX. */
static size_t final_period(const char *c, size_t n)
{
    size_t d = n;
    while (d > 0 && strchr("])}>' ", c[d - 1]) && c[d - 1] != '\0')
        d--;
    if (d < 2 || c[d - 1] != '.' || c[d - 2] == '.')
        return SIZE_MAX;
    d--; /* c[d] is the period */
    if (d >= 3 && ascii_alpha(c[d - 1]) && c[d - 2] == '.' && ascii_alpha(c[d - 3]) && (d == 3 || !word_char(c[d - 4])))
        return SIZE_MAX; /* an acronym such as u.s. */
    return d;
}

/* Byte classes of the punctuation rules. */
enum { PC_NONE, PC_SPLIT, PC_COMMA };

static const unsigned char pclass[256] = {
    [';'] = PC_SPLIT, ['@'] = PC_SPLIT, ['#'] = PC_SPLIT, ['$'] = PC_SPLIT, ['%'] = PC_SPLIT, ['&'] = PC_SPLIT,
    ['?'] = PC_SPLIT, ['!'] = PC_SPLIT, ['['] = PC_SPLIT, [']'] = PC_SPLIT, ['('] = PC_SPLIT, [')'] = PC_SPLIT,
    ['{'] = PC_SPLIT, ['}'] = PC_SPLIT, ['<'] = PC_SPLIT, ['>'] = PC_SPLIT, [','] = PC_COMMA, [':'] = PC_COMMA,
};

static char *put(char *w, const char *s, size_t n)
{
    *w++ = ' ';
    memcpy(w, s, n);
    w += n;
    *w++ = ' ';
    return w;
}

/* Inserts the spaces of the punctuation rules: quotes, ellipses, commas and
 * colons not before a digit, ; @ # $ % & ? ! and brackets, double dashes,
 * and a sentence-final period. Every byte grows to at most 4. */
static err_code spread(const char *c, size_t n, buf *o)
{
    if (n > (AT_SCRATCH_MAX - 8) / 4)
        return ERR_TOOBIG;
    err_code e = buf_reserve(o, 4 * n + 8);
    if (e)
        return e;
    size_t fp = final_period(c, n);
    bool inq = false;
    char *w = o->p + o->len;
    for (size_t i = 0; i < n; i++) {
        char ch = c[i];
        unsigned char k = pclass[(unsigned char)ch];
        if (ch == '"') {
            bool open = !inq && (i == 0 || c[i - 1] == ' ' || c[i - 1] == '(' || c[i - 1] == '[' || c[i - 1] == '{' ||
                                 c[i - 1] == '<');
            inq = open;
            w = put(w, open ? "``" : "''", 2);
        } else if (ch == '.' && i + 2 < n && c[i + 1] == '.' && c[i + 2] == '.') {
            w = put(w, "...", 3);
            i += 2;
        } else if (k == PC_COMMA && !(i + 1 < n && c[i + 1] >= '0' && c[i + 1] <= '9')) {
            w = put(w, &ch, 1);
        } else if (k == PC_SPLIT) {
            w = put(w, &ch, 1);
        } else if (ch == '-' && i + 1 < n && c[i + 1] == '-') {
            w = put(w, "--", 2);
            i++;
        } else if (i == fp) {
            w = put(w, ".", 1);
        } else {
            *w++ = ch;
        }
    }
    o->len = (size_t)(w - o->p);
    o->p[o->len] = '\0';
    return ERR_OK;
}

static bool ends_with(const char *p, size_t n, const char *suf)
{
    size_t k = strlen(suf);
    return n > k && memcmp(p + n - k, suf, k) == 0;
}

/* Adds the token p[0..n) after splitting the clitics off its end:
 * a closing ', then 's 'm 'd, then 'll 're 've n't. */
static void add_clitics(tok *t, size_t *nt, const char *p, size_t n)
{
    size_t tail[3][2], ntail = 0;
    if (n >= 2 && p[n - 1] == '\'' && p[n - 2] != '\'') {
        tail[ntail][0] = n - 1, tail[ntail++][1] = 1;
        n--;
    }
    if (n >= 3 && p[n - 2] == '\'' && strchr("smd", p[n - 1]) && p[n - 1] != '\0') {
        tail[ntail][0] = n - 2, tail[ntail++][1] = 2;
        n -= 2;
    }
    if (ends_with(p, n, "'ll") || ends_with(p, n, "'re") || ends_with(p, n, "'ve") || ends_with(p, n, "n't")) {
        tail[ntail][0] = n - 3, tail[ntail++][1] = 3;
        n -= 3;
    }
    tok_add(t, nt, p, n);
    while (ntail > 0) {
        ntail--;
        tok_add(t, nt, p + tail[ntail][0], tail[ntail][1]);
    }
}

/* Whole words that split in two (the first occurrence of each only, as
 * js-rouge's non-global patterns do), and where they split. */
static const struct {
    const char *word;
    size_t len, at;
} splits[] = {
    { "cannot", 6, 3 }, { "d'ye", 4, 1 }, { "gimme", 5, 3 }, { "gonna", 5, 3 }, { "gotta", 5, 3 },
    { "lemme", 5, 3 }, { "more'n", 6, 4 }, { "wanna", 5, 3 }, { "'tis", 4, 2 }, { "'twas", 5, 2 },
};

/* Tokenizes text as js-rouge's treeBankTokenize does on the lower-cased
 * text. The tokens point into slot bslot (and TMP is used on the way). */
static int treebank(sv text, int bslot, int mslot, tok **out, size_t *nt, char *msg, size_t cap)
{
    buf *tmp = at_buf(AT_B_TMP), *o = at_buf(bslot);
    err_code e = collapse_lower(text, tmp);
    if (!e)
        e = spread(tmp->p, tmp->len, o);
    tok *t = e ? NULL : tok_room(mslot, o->len);
    if (!t) {
        snprintf(msg, cap, "%s", e == ERR_TOOBIG ? "text too long" : "out of memory");
        return -1;
    }
    bool used[countof(splits)] = { false };
    size_t n = 0, i = 0;
    while (i < o->len) {
        while (i < o->len && o->p[i] == ' ')
            i++;
        size_t s = i;
        while (i < o->len && o->p[i] != ' ')
            i++;
        if (i == s)
            break;
        size_t k = countof(splits);
        if (i - s >= 4 && i - s <= 6 && strchr("cdglmw'", o->p[s]))
            for (k = 0; k < countof(splits); k++)
                if (!used[k] && splits[k].len == i - s && memcmp(o->p + s, splits[k].word, i - s) == 0)
                    break;
        if (k < countof(splits)) {
            used[k] = true;
            tok_add(t, &n, o->p + s, splits[k].at);
            tok_add(t, &n, o->p + s + splits[k].at, i - s - splits[k].at);
        } else {
            add_clitics(t, &n, o->p + s, i - s);
        }
    }
    *out = t;
    *nt = n;
    return 0;
}

/* ---- the metrics ---------------------------------------------------------------- */

int at_rouge_n(sv cand, sv ref, int n, double *score, char *msg, size_t cap)
{
    tok *a, *b;
    size_t na, nb, distinct, clipped;
    if (n < 1 || n > 4) {
        snprintf(msg, cap, "rouge-n: n must be 1 to 4");
        return -1;
    }
    if (cand.len == 0 || ref.len == 0) {
        snprintf(msg, cap, "rouge-n: the %s is empty", cand.len == 0 ? "output" : "reference");
        return -1;
    }
    if (treebank(cand, AT_B_TOKA, AT_M_TOKA, &a, &na, msg, cap) || treebank(ref, AT_B_TOKB, AT_M_TOKB, &b, &nb, msg, cap))
        return -1;
    if (na < (size_t)n || nb < (size_t)n) {
        snprintf(msg, cap, "rouge-n: the %s has fewer than %d words", na < (size_t)n ? "output" : "reference", n);
        return -1;
    }
    if (overlap(a, na, b, nb, n, &distinct, &clipped)) {
        snprintf(msg, cap, "out of memory");
        return -1;
    }
    *score = (double)distinct / (double)(nb - (size_t)n + 1);
    return 0;
}

int at_rouge_l(sv cand, sv ref, double *score, char *msg, size_t cap)
{
    tok *a, *b;
    size_t na, nb;
    if (cand.len == 0 || ref.len == 0) {
        snprintf(msg, cap, "rouge-l: the %s is empty", cand.len == 0 ? "output" : "reference");
        return -1;
    }
    if (treebank(cand, AT_B_TOKA, AT_M_TOKA, &a, &na, msg, cap) || treebank(ref, AT_B_TOKB, AT_M_TOKB, &b, &nb, msg, cap))
        return -1;
    if (na == 0 || nb == 0) {
        snprintf(msg, cap, "rouge-l: the %s has no words", na == 0 ? "output" : "reference");
        return -1;
    }
    if ((double)na * (double)nb > 4e8) {
        snprintf(msg, cap, "rouge-l: texts too long (%zu x %zu words)", na, nb);
        return -1;
    }
    const tok *x = a, *y = b; /* the row follows the shorter list */
    size_t m = na, n = nb;
    if (m > n) {
        x = b, y = a, m = nb, n = na;
    }
    uint32_t *row = at_mem(AT_M_ROW, (m + 1) * sizeof *row);
    if (!row) {
        snprintf(msg, cap, "out of memory");
        return -1;
    }
    memset(row, 0, (m + 1) * sizeof *row);
    for (size_t j = 1; j <= n; j++) {
        uint32_t diag = 0;
        for (size_t i = 1; i <= m; i++) {
            uint32_t up = row[i], v;
            if (tok_eq(&x[i - 1], &y[j - 1]))
                v = diag + 1;
            else
                v = up > row[i - 1] ? up : row[i - 1];
            diag = up;
            row[i] = v;
        }
    }
    double lcs = row[m];
    if (lcs == 0) {
        *score = 0;
        return 0;
    }
    double p = lcs / (double)na, r = lcs / (double)nb;
    *score = 2 * p * r / (p + r);
    return 0;
}

int at_bleu(sv cand, const sv *refs, size_t nrefs, double *score, char *msg, size_t cap)
{
    if (cand.len == 0 || nrefs == 0) {
        snprintf(msg, cap, "bleu: %s", cand.len == 0 ? "the output is empty" : "no reference");
        return -1;
    }
    buf *ca = at_buf(AT_B_TOKA);
    tok *a = NULL;
    size_t na = 0;
    if (at_lower(at_trim(cand), ca) || !(a = tok_room(AT_M_TOKA, ca->len))) {
        snprintf(msg, cap, "bleu: output too long");
        return -1;
    }
    na = ws_tokens(buf_sv(ca), a);
    size_t best[5] = { 0 }, closest = 0, used = 0;
    for (size_t r = 0; r < nrefs; r++) {
        sv rt = at_trim(refs[r]);
        if (rt.len == 0)
            continue; /* blank references are ignored */
        buf *cb = at_buf(AT_B_TOKB);
        tok *b;
        if (at_lower(rt, cb) || !(b = tok_room(AT_M_TOKB, cb->len))) {
            snprintf(msg, cap, "bleu: reference too long");
            return -1;
        }
        size_t nb = ws_tokens(buf_sv(cb), b);
        size_t dn = nb > na ? nb - na : na - nb, dc = closest > na ? closest - na : na - closest;
        if (used == 0 || dn < dc || (dn == dc && nb < closest))
            closest = nb; /* ties go to the shorter reference */
        used++;
        for (int n = 1; n <= 4; n++) {
            size_t distinct, clipped;
            if (overlap(a, na, b, nb, n, &distinct, &clipped)) {
                snprintf(msg, cap, "out of memory");
                return -1;
            }
            if (clipped > best[n])
                best[n] = clipped;
        }
    }
    if (used == 0) {
        *score = 0;
        return 0;
    }
    /* Orders longer than the candidate are left out and the weights of the
     * others renormalised (promptfoo's reweighting of short answers). */
    double sum = 0, wsum = 0;
    for (int n = 1; n <= 4; n++) {
        size_t total = na >= (size_t)n ? na - (size_t)n + 1 : 0;
        if (!total)
            continue;
        double p = (double)best[n] / (double)total;
        sum += 0.25 * log(p == 0 ? 1e-7 : p);
        wsum += 0.25;
    }
    if (wsum == 0) {
        *score = 0;
        return 0;
    }
    double bp = na > closest ? 1.0 : exp(1.0 - (double)closest / (double)na);
    *score = bp * exp(sum / wsum);
    return 0;
}

static bool ascii_punct(unsigned char c)
{
    return (c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126);
}

/* SQuAD's normalisation into slot bslot and its tokens (articles dropped). */
static int squad_tokens(sv s, int bslot, int mslot, tok **out, size_t *nt, char *msg, size_t cap)
{
    buf *tmp = at_buf(AT_B_TMP), *o = at_buf(bslot);
    if (at_lower(s, tmp) || buf_reserve(o, tmp->len)) {
        snprintf(msg, cap, "token-f1: text too long");
        return -1;
    }
    for (size_t i = 0; i < tmp->len; i++)
        if (!ascii_punct((unsigned char)tmp->p[i]))
            o->p[o->len++] = tmp->p[i];
    o->p[o->len] = '\0';
    tok *t = tok_room(mslot, o->len);
    if (!t) {
        snprintf(msg, cap, "out of memory");
        return -1;
    }
    size_t n = ws_tokens(buf_sv(o), t), k = 0;
    for (size_t i = 0; i < n; i++) {
        sv w = { t[i].p, t[i].len };
        if (w.len == 0 || sv_eq_cstr(w, "a") || sv_eq_cstr(w, "an") || sv_eq_cstr(w, "the"))
            continue;
        t[k++] = t[i];
    }
    *out = t;
    *nt = k;
    return 0;
}

int at_token_f1(sv cand, sv ref, double *score, char *msg, size_t cap)
{
    tok *a, *b;
    size_t na, nb, distinct, common;
    if (squad_tokens(cand, AT_B_TOKA, AT_M_TOKA, &a, &na, msg, cap) ||
        squad_tokens(ref, AT_B_TOKB, AT_M_TOKB, &b, &nb, msg, cap))
        return -1;
    if (na == 0 || nb == 0) {
        *score = na == nb ? 1 : 0;
        return 0;
    }
    if (overlap(a, na, b, nb, 1, &distinct, &common)) {
        snprintf(msg, cap, "out of memory");
        return -1;
    }
    if (common == 0) {
        *score = 0;
        return 0;
    }
    double p = (double)common / (double)na, r = (double)common / (double)nb;
    *score = 2 * p * r / (p + r);
    return 0;
}
