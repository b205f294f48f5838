/*
 * content.c - the content guardrails of content.h: system prompt leakage,
 * deny/allow lists, topic restriction, size limits, JSON Schema output
 * checks and Llama Guard verdicts.
 *
 * How they work:
 *  - Leakage: the system prompt becomes an array of 64-bit word hashes and
 *    a hash table of its 4-word shingles (chained by position). The answer
 *    is read word by word; where its current shingle occurs in the prompt,
 *    and the word before does not also match (so each maximal run is
 *    extended once), the run is extended word by word. The longest run
 *    and a bitmap of the prompt words covered give the verdict. Chains are
 *    cut at 64 candidates and extension work at 32 words per two bytes, so
 *    "the the the ..." on both sides costs linear time (the longest run
 *    may then be under-reported, never over-reported).
 *  - Word lists and topics share one table: entries as folded code points
 *    (a space standing for any whitespace run), hashed on their first
 *    word. The text is read word by word; each word's folded hash finds
 *    the entries starting with it, which are then compared in full and
 *    must end at a word boundary.
 *  - Regexes: PCRE2, compiled once (UTF, MATCH_INVALID_UTF,
 *    USE_OFFSET_LIMIT, JIT when it compiles). PCRE2's match limit counts
 *    per start position, so one pcre2_match over a megabyte could still
 *    take seconds with a crafted text; the scan therefore tries start
 *    positions in windows (offset limit) and checks a wall-clock budget
 *    between windows.
 *  - Size, schema and Llama Guard are small and direct.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "eval/jschema.h"
#include "guard/content.h"
#include "providers/tokens.h"

/* ---- UTF-8 and letters ---- */

/* Decodes one UTF-8 sequence at p (n > 0 bytes available): the code point
 * and its length; a bad or short sequence is one byte, cp 0xFFFD. */
static size_t dec(const unsigned char *p, size_t n, uint32_t *cp)
{
    unsigned c = p[0];
    size_t need;
    uint32_t v, min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xC2 && c <= 0xDF)
        need = 2, v = c & 0x1F, min = 0x80;
    else if (c >= 0xE0 && c <= 0xEF)
        need = 3, v = c & 0x0F, min = 0x800;
    else if (c >= 0xF0 && c <= 0xF4)
        need = 4, v = c & 0x07, min = 0x10000;
    else
        goto bad;
    if (need > n)
        goto bad;
    for (size_t k = 1; k < need; k++) {
        if ((p[k] & 0xC0) != 0x80)
            goto bad;
        v = (v << 6) | (p[k] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        goto bad;
    *cp = v;
    return need;
bad:
    *cp = 0xFFFD;
    return 1;
}

/* Lower case for ASCII, Latin-1, Latin Extended-A, Greek and Cyrillic. */
static uint32_t fold(uint32_t c)
{
    if (c < 0x80)
        return c >= 'A' && c <= 'Z' ? c + 32 : c;
    if (c >= 0xC0 && c <= 0xDE && c != 0xD7)
        return c + 32;
    if (c >= 0x100 && c <= 0x17F) {
        if (c == 0x130 || c == 0x131 || c == 0x138 || c == 0x149 || c == 0x17F)
            return c == 0x130 ? 'i' : c;
        if (c == 0x178)
            return 0xFF;
        bool odd_upper = (c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E);
        if (odd_upper ? (c & 1) : !(c & 1))
            return c + 1;
        return c;
    }
    if (c >= 0x391 && c <= 0x3A9 && c != 0x3A2)
        return c + 32;
    if (c >= 0x410 && c <= 0x42F)
        return c + 32;
    if (c >= 0x400 && c <= 0x40F)
        return c + 80;
    return c;
}

/* A letter or digit for word boundaries: ASCII alphanumerics and, roughly,
 * every non-ASCII code point that is not punctuation, a symbol or space. */
static bool word_cp(uint32_t c)
{
    if (c < 0x80)
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (c < 0xC0 || c == 0xD7 || c == 0xF7 || c == 0xFFFD)
        return c == 0xAA || c == 0xB5 || c == 0xBA;
    if ((c >= 0x2000 && c <= 0x2BFF) || (c >= 0x3000 && c <= 0x303F) || (c >= 0xFE00 && c <= 0xFE6F) ||
        (c >= 0xFF00 && c <= 0xFF0F) || (c >= 0x1F000 && c <= 0x1FAFF))
        return false;
    return true;
}

static bool space_cp(uint32_t c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f' || c == 0xA0 ||
           c == 0x85 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
           c == 0x205F || c == 0x3000;
}

static inline uint64_t fnv64(uint64_t h, uint32_t c)
{
    h = (h ^ (c & 0xFF)) * 1099511628211ull;
    for (c >>= 8; c; c >>= 8)
        h = (h ^ (c & 0xFF)) * 1099511628211ull;
    return h;
}

/* ASCII fast paths: 1 for letters and digits, and the folded byte. */
static const uint8_t ASCII_WORD[128] = {
    ['0' ... '9'] = 1, ['A' ... 'Z'] = 1, ['a' ... 'z'] = 1,
};
#define FNV64_INIT 14695981039346656037ull

/* ================================================================== */
/* System prompt leakage                                                */

#define LEAK_CHAIN_MAX 64   /* prompt positions tried per shingle */
#define LEAK_EXTEND_BUDGET 32 /* extension steps allowed per two bytes of answer */

struct guard_leak_index {
    uint64_t *w;     /* word hashes */
    uint32_t n;      /* words */
    uint32_t *head;  /* shingle table: position + 1 */
    uint32_t *next;  /* previous position with the same bucket, + 1 */
    uint32_t mask;
};

/* Reads the next leakage word from t[*pos..len): ASCII letters and digits
 * (case folded) and bytes >= 0x80. False at the end. */
static bool leak_word(const char *t, size_t len, size_t *pos, size_t *ws, size_t *we, uint64_t *h)
{
    size_t i = *pos;
    while (i < len) {
        unsigned char c = (unsigned char)t[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80)
            break;
        i++;
    }
    if (i >= len) {
        *pos = len;
        return false;
    }
    uint64_t x = FNV64_INIT;
    *ws = i;
    while (i < len) {
        unsigned char c = (unsigned char)t[i];
        if (c >= 'A' && c <= 'Z')
            c = (unsigned char)(c + 32);
        else if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c >= 0x80))
            break;
        x = (x ^ c) * 1099511628211ull;
        i++;
    }
    *we = *pos = i;
    *h = x;
    return true;
}

static uint64_t shingle(const uint64_t *w)
{
    uint64_t h = 0x9E3779B97F4A7C15ull;
    for (int k = 0; k < GUARD_LEAK_SHINGLE; k++) {
        h ^= w[k] + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2);
        h *= 0xFF51AFD7ED558CCDull;
    }
    return h ^ (h >> 29);
}

err_code guard_leak_index_new(const char *prompt, size_t len, guard_leak_index **out)
{
    *out = NULL;
    guard_leak_index *ix = calloc(1, sizeof *ix);
    if (!ix)
        return ERR_NOMEM;
    size_t pos = 0, ws, we, cap = 0;
    uint64_t h;
    while (prompt && ix->n < GUARD_LEAK_MAX_WORDS && leak_word(prompt, len, &pos, &ws, &we, &h)) {
        if (ix->n == cap) {
            cap = cap ? cap * 2 : 64;
            uint64_t *w = realloc(ix->w, cap * sizeof *w);
            if (!w)
                goto nomem;
            ix->w = w;
        }
        ix->w[ix->n++] = h;
    }
    if (ix->n >= GUARD_LEAK_SHINGLE) {
        uint32_t shingles = ix->n - GUARD_LEAK_SHINGLE + 1, size = 16;
        while (size < 2 * shingles)
            size *= 2;
        ix->mask = size - 1;
        ix->head = calloc(size, sizeof *ix->head);
        ix->next = calloc(shingles, sizeof *ix->next);
        if (!ix->head || !ix->next)
            goto nomem;
        for (uint32_t p = 0; p < shingles; p++) {
            uint32_t b = (uint32_t)shingle(ix->w + p) & ix->mask;
            ix->next[p] = ix->head[b];
            ix->head[b] = p + 1;
        }
    }
    *out = ix;
    return ERR_OK;
nomem:
    guard_leak_index_free(ix);
    return ERR_NOMEM;
}

void guard_leak_index_free(guard_leak_index *ix)
{
    if (!ix)
        return;
    free(ix->w);
    free(ix->head);
    free(ix->next);
    free(ix);
}

err_code guard_scan_leakage(const guard_leak_index *ix, const char *answer, size_t len, uint32_t min_run,
                            float min_coverage, guard_leak_result *res, guard_findings *out)
{
    guard_leak_result r = { 0 };
    if (min_run == 0)
        min_run = GUARD_LEAK_MIN_RUN;
    if (!(min_coverage > 0.0f))
        min_coverage = GUARD_LEAK_MIN_COVERAGE;
    if (res)
        *res = r;
    if (!ix || (!answer && len))
        return ERR_INVAL;
    r.prompt_words = ix->n;
    if (ix->n < GUARD_LEAK_SHINGLE || !answer) {
        if (res)
            *res = r;
        return ERR_OK;
    }
    uint64_t *covered = calloc((ix->n + 63) / 64, sizeof *covered);
    if (!covered)
        return ERR_NOMEM;
    /* ring of the last SHINGLE + 1 answer words */
    enum { RW = GUARD_LEAK_SHINGLE + 1 };
    uint64_t rh[RW];
    size_t rs[RW];
    /* extension steps for the whole scan: enough for any honest run (at most
     * one word per two bytes), linear in the answer however repetitive */
    size_t pos = 0, nw = 0, budget = LEAK_EXTEND_BUDGET * (len / 2 + 16), run_end = 0;
    uint64_t h;
    size_t ws, we;
    while (leak_word(answer, len, &pos, &ws, &we, &h)) {
        rh[nw % RW] = h, rs[nw % RW] = ws;
        nw++;
        if (nw < GUARD_LEAK_SHINGLE)
            continue;
        size_t a = nw - GUARD_LEAK_SHINGLE; /* the shingle's first answer word */
        uint64_t sh[GUARD_LEAK_SHINGLE];
        for (size_t k = 0; k < GUARD_LEAK_SHINGLE; k++)
            sh[k] = rh[(a + k) % RW];
        uint32_t e = ix->head[(uint32_t)shingle(sh) & ix->mask];
        for (int tries = 0; e && tries < LEAK_CHAIN_MAX; e = ix->next[e - 1], tries++) {
            uint32_t p = e - 1;
            if (memcmp(ix->w + p, sh, sizeof sh) != 0)
                continue;
            if (a > 0 && p > 0 && ix->w[p - 1] == rh[(a - 1) % RW])
                continue; /* inside a run that started earlier */
            /* extend past the shingle, reading ahead from the current word */
            size_t L = GUARD_LEAK_SHINGLE, xp = pos, xend = we, xs, xe;
            uint64_t xh;
            while (p + L < ix->n && budget > 0 && leak_word(answer, len, &xp, &xs, &xe, &xh) &&
                   xh == ix->w[p + L]) {
                L++;
                budget--;
                xend = xe;
            }
            for (size_t k = p; k < p + L; k++)
                covered[k / 64] |= (uint64_t)1 << (k % 64);
            if (L > r.longest_run) {
                r.longest_run = (uint32_t)L;
                r.run_start = rs[a % RW];
                run_end = xend;
            }
        }
    }
    size_t ncov = 0;
    for (size_t k = 0; k < (ix->n + 63) / 64; k++)
        ncov += (size_t)__builtin_popcountll(covered[k]);
    free(covered);
    r.run_len = r.longest_run ? run_end - r.run_start : 0;
    r.coverage = (float)ncov / (float)ix->n;
    float runscore = (float)r.longest_run / (2.0f * (float)min_run);
    r.score = r.coverage > runscore ? r.coverage : runscore;
    if (r.score > 1.0f)
        r.score = 1.0f;
    bool by_run = r.longest_run >= min_run;
    r.leaked = by_run || (r.coverage >= min_coverage && r.longest_run >= GUARD_LEAK_SHINGLE);
    if (res)
        *res = r;
    if (r.leaked && out)
        return guard_findings_add(out, GT_LEAKAGE, r.run_start, r.run_len, r.score,
                                  by_run ? "prompt_run" : "prompt_coverage");
    return ERR_OK;
}

/* ================================================================== */
/* Word tables (deny/allow words, topic keywords)                       */

typedef struct wentry {
    uint32_t *cp;   /* folded code points; ' ' stands for a whitespace run */
    uint32_t n;
    uint64_t first; /* hash of the folded first word */
    uint32_t next;  /* next entry in the bucket, + 1 */
    uint16_t tag;   /* lists: 1 = allow, 0 = deny; topics: the topic */
} wentry;

typedef struct wtab {
    wentry *e;
    size_t n, cap;
    uint32_t *ht; /* bucket heads: entry + 1 */
    size_t htcap;
} wtab;

static void wtab_free(wtab *w)
{
    for (size_t i = 0; i < w->n; i++)
        free(w->e[i].cp);
    free(w->e);
    free(w->ht);
    memset(w, 0, sizeof *w);
}

/* Rebuilds the bucket chains of the current entries in place. */
static void wtab_relink(wtab *w)
{
    if (!w->ht)
        return;
    memset(w->ht, 0, w->htcap * sizeof *w->ht);
    for (size_t i = 0; i < w->n; i++) {
        size_t b = w->e[i].first & (w->htcap - 1);
        w->e[i].next = w->ht[b];
        w->ht[b] = (uint32_t)i + 1;
    }
}

static err_code wtab_rehash(wtab *w, size_t cap)
{
    uint32_t *ht = calloc(cap, sizeof *ht);
    if (!ht)
        return ERR_NOMEM;
    free(w->ht);
    w->ht = ht;
    w->htcap = cap;
    wtab_relink(w);
    return ERR_OK;
}

/* Parses, folds and adds a term. See guard_list_add_word for the rules. */
static err_code wtab_add(wtab *w, const char *term, size_t len, uint16_t tag, size_t limit)
{
    if (!term || len == 0)
        return ERR_INVAL;
    if (len > GUARD_LIST_MAX_TERM)
        return ERR_TOOBIG;
    if (w->n >= limit)
        return ERR_TOOBIG;
    uint32_t *cp = malloc(len * sizeof *cp);
    if (!cp)
        return ERR_NOMEM;
    size_t n = 0;
    const unsigned char *t = (const unsigned char *)term;
    for (size_t i = 0; i < len;) {
        uint32_t c;
        size_t m = dec(t + i, len - i, &c);
        if (c == 0xFFFD && m == 1 && t[i] >= 0x80) {
            free(cp);
            return ERR_INVAL;
        }
        i += m;
        if (space_cp(c)) {
            if (n && cp[n - 1] != ' ')
                cp[n++] = ' ';
            continue;
        }
        cp[n++] = fold(c);
    }
    while (n && cp[n - 1] == ' ')
        n--;
    if (n == 0 || !word_cp(cp[0]) || !word_cp(cp[n - 1])) {
        free(cp);
        return ERR_INVAL;
    }
    uint64_t h = FNV64_INIT;
    for (size_t k = 0; k < n && word_cp(cp[k]); k++)
        h = fnv64(h, cp[k]);
    if (w->n == w->cap) {
        size_t nc = w->cap ? w->cap * 2 : 16;
        wentry *e = realloc(w->e, nc * sizeof *e);
        if (!e) {
            free(cp);
            return ERR_NOMEM;
        }
        w->e = e;
        w->cap = nc;
    }
    w->e[w->n++] = (wentry){ cp, (uint32_t)n, h, 0, tag };
    if (w->n * 2 > w->htcap) { /* grow: the rehash links every entry, the new one included */
        if (wtab_rehash(w, w->htcap ? w->htcap * 2 : 32) != ERR_OK) {
            free(w->e[--w->n].cp);
            return ERR_NOMEM;
        }
    } else {
        size_t b = h & (w->htcap - 1);
        w->e[w->n - 1].next = w->ht[b];
        w->ht[b] = (uint32_t)w->n;
    }
    return ERR_OK;
}

/* Does entry e match the text at ws (a word start)? Its end, or 0. */
static size_t wentry_match(const wentry *e, const unsigned char *t, size_t len, size_t ws)
{
    size_t i = ws;
    uint32_t c;
    for (uint32_t k = 0; k < e->n; k++) {
        if (e->cp[k] == ' ') {
            size_t j = i;
            while (j < len) {
                size_t m = dec(t + j, len - j, &c);
                if (!space_cp(c))
                    break;
                j += m;
            }
            if (j == i)
                return 0;
            i = j;
            continue;
        }
        if (i >= len)
            return 0;
        size_t m = dec(t + i, len - i, &c);
        if (fold(c) != e->cp[k])
            return 0;
        i += m;
    }
    if (i < len && (dec(t + i, len - i, &c), word_cp(c)))
        return 0;
    return i;
}

typedef err_code (*span_fn)(void *ctx, const wentry *e, size_t start, size_t end);

/* Calls fn for every entry match in text, word start by word start. */
static err_code wtab_scan(const wtab *w, const char *text, size_t len, span_fn fn, void *ctx)
{
    const unsigned char *t = (const unsigned char *)text;
    size_t i = 0;
    if (!w->n || !w->ht)
        return ERR_OK;
    while (i < len) {
        uint32_t c;
        size_t m;
        if (t[i] < 0x80) {
            if (!ASCII_WORD[t[i]]) {
                i++;
                continue;
            }
        } else if ((m = dec(t + i, len - i, &c)), !word_cp(c)) {
            i += m;
            continue;
        }
        size_t ws = i;
        uint64_t h = FNV64_INIT;
        while (i < len) {
            unsigned char b = t[i];
            if (b < 0x80) {
                if (!ASCII_WORD[b])
                    break;
                h = (h ^ (b | ((b >= 'A' && b <= 'Z') ? 0x20u : 0u))) * 1099511628211ull;
                i++;
                continue;
            }
            m = dec(t + i, len - i, &c);
            if (!word_cp(c))
                break;
            h = fnv64(h, fold(c));
            i += m;
        }
        for (uint32_t k = w->ht[h & (w->htcap - 1)]; k; k = w->e[k - 1].next) {
            const wentry *e = &w->e[k - 1];
            size_t end;
            if (e->first == h && (end = wentry_match(e, t, len, ws)) != 0) {
                err_code err = fn(ctx, e, ws, end);
                if (err)
                    return err;
            }
        }
    }
    return ERR_OK;
}

/* ================================================================== */
/* Deny and allow lists                                                 */

typedef struct rx {
    pcre2_code *code;
    bool allow;
} rx;

struct guard_list {
    wtab words;
    rx *re;
    size_t nre, capre;
    size_t counts[2]; /* deny, allow */
    unsigned budget_ms;
};

guard_list *guard_list_new(void) { return calloc(1, sizeof(guard_list)); }

void guard_list_free(guard_list *l)
{
    if (!l)
        return;
    wtab_free(&l->words);
    for (size_t i = 0; i < l->nre; i++)
        pcre2_code_free(l->re[i].code);
    free(l->re);
    free(l);
}

static size_t list_size(const guard_list *l) { return l->counts[0] + l->counts[1]; }

err_code guard_list_add_word(guard_list *l, const char *term, size_t len, bool allow)
{
    if (!l)
        return ERR_INVAL;
    if (list_size(l) >= GUARD_LIST_MAX_ENTRIES)
        return ERR_TOOBIG;
    err_code e = wtab_add(&l->words, term, len, allow ? 1 : 0, GUARD_LIST_MAX_ENTRIES);
    if (!e)
        l->counts[allow]++;
    return e;
}

err_code guard_list_add_regex(guard_list *l, const char *pattern, size_t len, bool allow, char *msg, size_t cap)
{
    if (msg && cap)
        msg[0] = '\0';
    if (!l || !pattern)
        return ERR_INVAL;
    if (len > GUARD_LIST_MAX_PATTERN || list_size(l) >= GUARD_LIST_MAX_ENTRIES) {
        if (msg && cap)
            snprintf(msg, cap, "%s", len > GUARD_LIST_MAX_PATTERN ? "pattern too long" : "too many entries");
        return ERR_TOOBIG;
    }
    if (l->nre == l->capre) {
        size_t nc = l->capre ? l->capre * 2 : 8;
        rx *r = realloc(l->re, nc * sizeof *r);
        if (!r)
            return ERR_NOMEM;
        l->re = r;
        l->capre = nc;
    }
    int ec;
    PCRE2_SIZE eo;
    pcre2_code *code = pcre2_compile((PCRE2_SPTR)pattern, len,
                                     PCRE2_UTF | PCRE2_MATCH_INVALID_UTF | PCRE2_USE_OFFSET_LIMIT |
                                         PCRE2_NEVER_BACKSLASH_C,
                                     &ec, &eo, NULL);
    if (!code) {
        if (msg && cap) {
            PCRE2_UCHAR buf[256];
            if (pcre2_get_error_message(ec, buf, sizeof buf) < 0)
                snprintf((char *)buf, sizeof buf, "error %d", ec);
            snprintf(msg, cap, "%s at offset %zu", (const char *)buf, (size_t)eo);
        }
        return ec == PCRE2_ERROR_NOMEMORY ? ERR_NOMEM : ERR_PARSE;
    }
    (void)pcre2_jit_compile(code, PCRE2_JIT_COMPLETE); /* the interpreter is the fallback */
    l->re[l->nre++] = (rx){ code, allow };
    l->counts[allow]++;
    return ERR_OK;
}

void guard_list_set_budget(guard_list *l, unsigned ms)
{
    if (l)
        l->budget_ms = ms;
}

size_t guard_list_count(const guard_list *l, bool allow) { return l ? l->counts[allow ? 1 : 0] : 0; }

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Spans of allow matches: sorted by start, with the running maximum of
 * ends, so "is [s, e) inside some allow span" is one binary search. */
#define ALLOW_SPANS_MAX 65536
typedef struct spans {
    size_t *s, *e;
    size_t n, cap;
} spans;

static err_code spans_push(spans *sp, size_t s, size_t e)
{
    if (sp->n >= ALLOW_SPANS_MAX)
        return ERR_OK; /* beyond this, later deny matches are simply not exempted */
    if (sp->n == sp->cap) {
        size_t nc = sp->cap ? sp->cap * 2 : 32;
        size_t *ns = realloc(sp->s, nc * sizeof *ns);
        if (!ns)
            return ERR_NOMEM;
        sp->s = ns;
        size_t *ne = realloc(sp->e, nc * sizeof *ne);
        if (!ne)
            return ERR_NOMEM;
        sp->e = ne;
        sp->cap = nc;
    }
    sp->s[sp->n] = s;
    sp->e[sp->n++] = e;
    return ERR_OK;
}

static void spans_prepare(spans *sp)
{
    /* insertion sort by start: both sources deliver nearly sorted spans */
    for (size_t i = 1; i < sp->n; i++) {
        size_t s = sp->s[i], e = sp->e[i], j = i;
        while (j > 0 && sp->s[j - 1] > s) {
            sp->s[j] = sp->s[j - 1];
            sp->e[j] = sp->e[j - 1];
            j--;
        }
        sp->s[j] = s;
        sp->e[j] = e;
    }
    for (size_t i = 1; i < sp->n; i++)
        if (sp->e[i] < sp->e[i - 1])
            sp->e[i] = sp->e[i - 1];
}

static bool spans_cover(const spans *sp, size_t s, size_t e)
{
    size_t lo = 0, hi = sp->n; /* first index with start > s */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (sp->s[mid] <= s)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo > 0 && sp->e[lo - 1] >= e;
}

typedef struct list_scan {
    const guard_list *l;
    spans allow;
    guard_findings *out;
    bool want_allow;
    uint64_t deadline;
    bool timed_out;
    pcre2_match_data *md;
    pcre2_match_context *mc;
} list_scan;

static err_code on_match(list_scan *ls, bool allow, size_t s, size_t e, const char *rule)
{
    if (allow)
        return spans_push(&ls->allow, s, e);
    if (ls->allow.n && spans_cover(&ls->allow, s, e))
        return ERR_OK;
    return guard_findings_add(ls->out, GT_DENIED, s, e - s, 1.0f, rule);
}

static err_code on_word(void *ctx, const wentry *en, size_t s, size_t e)
{
    list_scan *ls = ctx;
    bool allow = en->tag == 1;
    if (allow != ls->want_allow)
        return ERR_OK;
    return on_match(ls, allow, s, e, "deny_word");
}

/* Runs one regex over text, start positions in windows, until the end,
 * the match limit, or the deadline. */
static err_code run_regex(list_scan *ls, const rx *r, const char *text, size_t len)
{
    size_t pos = 0;
    while (pos <= len) {
        if (now_ns() > ls->deadline) {
            ls->timed_out = true;
            return ERR_OK;
        }
        size_t lim = len - pos > GUARD_LIST_WINDOW ? pos + GUARD_LIST_WINDOW : len;
        pcre2_set_offset_limit(ls->mc, lim);
        int rc = pcre2_match(r->code, (PCRE2_SPTR)text, len, pos, 0, ls->md, ls->mc);
        if (rc == PCRE2_ERROR_NOMATCH) {
            pos = lim + 1;
            while (pos < len && ((unsigned char)text[pos] & 0xC0) == 0x80)
                pos++; /* start on a character */
            continue;
        }
        if (rc < 0) { /* match, depth or heap limit, JIT stack: give up on this regex */
            if (rc == PCRE2_ERROR_NOMEMORY)
                return ERR_NOMEM;
            ls->timed_out = true;
            return ERR_OK;
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(ls->md);
        size_t s = ov[0], e = ov[1];
        if (e > s && e <= len) {
            err_code err = on_match(ls, r->allow, s, e, "deny_regex");
            if (err)
                return err;
            pos = e;
        } else { /* empty match: step one character */
            pos = (e > pos ? e : pos) + 1;
            while (pos < len && ((unsigned char)text[pos] & 0xC0) == 0x80)
                pos++;
        }
    }
    return ERR_OK;
}

static err_code run_regexes(list_scan *ls, const char *text, size_t len, bool allow)
{
    for (size_t i = 0; i < ls->l->nre && !ls->timed_out; i++) {
        if (ls->l->re[i].allow != allow)
            continue;
        err_code e = run_regex(ls, &ls->l->re[i], text, len);
        if (e)
            return e;
    }
    return ERR_OK;
}

err_code guard_scan_list(const guard_list *l, const char *text, size_t len, guard_findings *out)
{
    if (!l || !out || (!text && len))
        return ERR_INVAL;
    if (!text)
        text = "";
    list_scan ls = { .l = l, .out = out };
    err_code e = ERR_OK;
    unsigned ms = l->budget_ms ? l->budget_ms : GUARD_LIST_BUDGET_MS;
    ls.deadline = now_ns() + (uint64_t)ms * 1000000ull;
    if (l->nre) {
        ls.md = pcre2_match_data_create(1, NULL);
        ls.mc = pcre2_match_context_create(NULL);
        if (!ls.md || !ls.mc) {
            e = ERR_NOMEM;
            goto out;
        }
        pcre2_set_match_limit(ls.mc, GUARD_LIST_MATCH_LIMIT);
        pcre2_set_depth_limit(ls.mc, GUARD_LIST_DEPTH_LIMIT);
        pcre2_set_heap_limit(ls.mc, 8192); /* KiB */
    }
    if (l->counts[1]) {
        ls.want_allow = true;
        if ((e = wtab_scan(&l->words, text, len, on_word, &ls)) != ERR_OK ||
            (e = run_regexes(&ls, text, len, true)) != ERR_OK)
            goto out;
        spans_prepare(&ls.allow);
    }
    ls.want_allow = false;
    if ((e = wtab_scan(&l->words, text, len, on_word, &ls)) != ERR_OK ||
        (e = run_regexes(&ls, text, len, false)) != ERR_OK)
        goto out;
    if (ls.timed_out)
        e = ERR_TIMEOUT;
out:
    free(ls.allow.s);
    free(ls.allow.e);
    pcre2_match_data_free(ls.md);
    pcre2_match_context_free(ls.mc);
    return e;
}

/* ================================================================== */
/* Topic restriction                                                    */

#define TOPICS_MAX 64

struct guard_topics {
    wtab words;
    char *names[TOPICS_MAX];
    size_t n;
};

guard_topics *guard_topics_new(void) { return calloc(1, sizeof(guard_topics)); }

void guard_topics_free(guard_topics *t)
{
    if (!t)
        return;
    wtab_free(&t->words);
    for (size_t i = 0; i < t->n; i++)
        free(t->names[i]);
    free(t);
}

err_code guard_topics_add(guard_topics *t, const char *name, const char *const *keywords, size_t n)
{
    if (!t || !name || !*name || !keywords || n == 0)
        return ERR_INVAL;
    if (t->n >= TOPICS_MAX)
        return ERR_TOOBIG;
    size_t before = t->words.n;
    err_code e = ERR_OK;
    for (size_t i = 0; i < n && !e; i++)
        e = keywords[i] ? wtab_add(&t->words, keywords[i], strlen(keywords[i]), (uint16_t)t->n,
                                   GUARD_LIST_MAX_ENTRIES)
                        : ERR_INVAL;
    char *copy = e ? NULL : strdup(name);
    if (!e && !copy)
        e = ERR_NOMEM;
    if (e) { /* all or nothing: drop this topic's keywords again */
        while (t->words.n > before)
            free(t->words.e[--t->words.n].cp);
        wtab_relink(&t->words);
        return e;
    }
    t->names[t->n++] = copy;
    return ERR_OK;
}

const char *guard_topics_name(const guard_topics *t, int i)
{
    return t && i >= 0 && (size_t)i < t->n ? t->names[i] : NULL;
}

typedef struct topic_scan {
    size_t hits[TOPICS_MAX];
} topic_scan;

static err_code on_topic(void *ctx, const wentry *e, size_t s, size_t end)
{
    topic_scan *ts = ctx;
    if (e->tag < TOPICS_MAX)
        ts->hits[e->tag]++;
    return ERR_OK;
}

err_code guard_scan_topics(const guard_topics *t, const char *text, size_t len, int *topic, guard_findings *out)
{
    if (topic)
        *topic = -1;
    if (!t || (!text && len))
        return ERR_INVAL;
    topic_scan ts = { { 0 } };
    if (text)
        (void)wtab_scan(&t->words, text, len, on_topic, &ts);
    int best = -1;
    for (size_t i = 0; i < t->n; i++)
        if (ts.hits[i] && (best < 0 || ts.hits[i] > ts.hits[best]))
            best = (int)i;
    if (topic)
        *topic = best;
    if (best >= 0 || t->n == 0)
        return ERR_OK;
    bool any_word = false;
    for (size_t i = 0; i < len && !any_word;) {
        uint32_t c;
        i += dec((const unsigned char *)text + i, len - i, &c);
        any_word = word_cp(c);
    }
    if (!any_word || !out)
        return ERR_OK;
    return guard_findings_add(out, GT_TOPIC, 0, len, 1.0f, "off_topic");
}

/* ================================================================== */
/* Size                                                                 */

err_code guard_scan_size(const char *text, size_t len, const guard_size_limits *lim, guard_size_result *res,
                         guard_findings *out)
{
    guard_size_result r = { 0, 0 };
    size_t cut = SIZE_MAX;
    err_code e = ERR_OK;
    if (!text && len)
        return ERR_INVAL;
    size_t maxc = lim && lim->max_chars ? lim->max_chars : SIZE_MAX;
    for (size_t i = 0; i < len;) {
        uint32_t c;
        if (r.chars == maxc)
            cut = i;
        if ((unsigned char)text[i] < 0x80)
            i++;
        else
            i += dec((const unsigned char *)text + i, len - i, &c);
        r.chars++;
    }
    r.tokens = len ? tokens_estimate(text, len) : 0;
    if (out && lim && lim->max_chars && r.chars > lim->max_chars)
        e = guard_findings_add(out, GT_SIZE, cut, len - cut, 1.0f, "max_chars");
    if (!e && out && lim && lim->max_tokens && (size_t)r.tokens > lim->max_tokens) {
        size_t at = tokens_prefix_len(text, len, (long)lim->max_tokens);
        e = guard_findings_add(out, GT_SIZE, at, len - at, 1.0f, "max_tokens");
    }
    if (res)
        *res = r;
    return e;
}

/* ================================================================== */
/* JSON Schema output check                                             */

static void set_msg(char *msg, size_t cap, const char *fmt, const char *a)
{
    if (msg && cap)
        snprintf(msg, cap, fmt, a);
}

err_code guard_schema_from_response_format(const json_t *rf, struct jschema **out, char *msg, size_t cap)
{
    *out = NULL;
    set_msg(msg, cap, "%s", "");
    const char *type = json_string_value(json_object_get(rf, "type"));
    if (!type || strcmp(type, "json_schema") != 0)
        return ERR_NOTFOUND;
    const json_t *schema = json_object_get(json_object_get(rf, "json_schema"), "schema");
    if (!json_is_object(schema) && !json_is_boolean(schema)) {
        set_msg(msg, cap, "%s", "response_format.json_schema.schema must be an object");
        return ERR_INVAL;
    }
    return jschema_compile(schema, out, msg, cap);
}

err_code guard_check_schema(const struct jschema *s, const char *text, size_t len, bool *valid, char *msg,
                            size_t cap, guard_findings *out)
{
    if (valid)
        *valid = false;
    set_msg(msg, cap, "%s", "");
    if (!s || (!text && len))
        return ERR_INVAL;
    json_error_t je;
    json_t *doc = json_loadb(text ? text : "", len, JSON_DECODE_ANY, &je);
    if (!doc) {
        if (msg && cap) {
            /* jansson quotes the text near the error ("near 'secret'"): keep only the reason */
            char *near = strstr(je.text, " near ");
            if (near)
                *near = '\0';
            snprintf(msg, cap, "invalid JSON at line %d column %d: %s", je.line, je.column, je.text);
        }
        return out ? guard_findings_add(out, GT_SCHEMA, 0, len, 1.0f, "invalid_json") : ERR_OK;
    }
    bool ok = jschema_validate(s, doc, msg, cap);
    json_decref(doc);
    if (valid)
        *valid = ok;
    if (ok || !out)
        return ERR_OK;
    return guard_findings_add(out, GT_SCHEMA, 0, len, 1.0f, "schema_mismatch");
}

/* ================================================================== */
/* Llama Guard                                                          */

static const struct {
    const char *name, *title;
    uint8_t severity;
} harm[GUARD_HARM_CATEGORIES + 1] = {
    { NULL, NULL, 0 },
    { "violent_crimes", "Violent Crimes", 3 },
    { "non_violent_crimes", "Non-Violent Crimes", 2 },
    { "sex_related_crimes", "Sex-Related Crimes", 3 },
    { "child_sexual_exploitation", "Child Sexual Exploitation", 3 },
    { "defamation", "Defamation", 1 },
    { "specialized_advice", "Specialized Advice", 1 },
    { "privacy", "Privacy", 2 },
    { "intellectual_property", "Intellectual Property", 1 },
    { "indiscriminate_weapons", "Indiscriminate Weapons", 3 },
    { "hate", "Hate", 2 },
    { "suicide_self_harm", "Suicide & Self-Harm", 3 },
    { "sexual_content", "Sexual Content", 2 },
    { "elections", "Elections", 1 },
    { "code_interpreter_abuse", "Code Interpreter Abuse", 2 },
};

const char *guard_harm_category_name(int s)
{
    return s >= 1 && s <= GUARD_HARM_CATEGORIES ? harm[s].name : NULL;
}

const char *guard_harm_category_title(int s)
{
    return s >= 1 && s <= GUARD_HARM_CATEGORIES ? harm[s].title : NULL;
}

/* "S7" / "s14" -> 7 / 14; 0 for anything else ("S0", "S15", "S07"). */
static int parse_s(const char *p, size_t n)
{
    if (n < 2 || n > 3 || (p[0] != 'S' && p[0] != 's') || p[1] < '1' || p[1] > '9')
        return 0;
    int v = p[1] - '0';
    if (n == 3) {
        if (p[2] < '0' || p[2] > '9')
            return 0;
        v = v * 10 + (p[2] - '0');
    }
    return v <= GUARD_HARM_CATEGORIES ? v : 0;
}

int guard_harm_category_parse(const char *name)
{
    if (!name)
        return 0;
    size_t n = strlen(name);
    int s = parse_s(name, n);
    if (s)
        return s;
    /* names: lower case, every run of other characters is one '_' */
    char norm[64];
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c + 32);
        if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
            if (k + 1 >= sizeof norm)
                return 0;
            norm[k++] = c;
        } else if (k && norm[k - 1] != '_') {
            if (k + 1 >= sizeof norm)
                return 0;
            norm[k++] = '_';
        }
    }
    while (k && norm[k - 1] == '_')
        k--;
    norm[k] = '\0';
    for (int i = 1; i <= GUARD_HARM_CATEGORIES; i++)
        if (strcmp(norm, harm[i].name) == 0)
            return i;
    return 0;
}

static bool lg_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }
static bool lg_blank(char c) { return c == ' ' || c == '\t' || c == '\r'; }

err_code guard_llamaguard_parse(const char *text, size_t len, guard_harm_verdict *out)
{
    guard_harm_verdict v = { false, 0 };
    if (out)
        *out = v;
    if (!text)
        return ERR_PARSE;
    size_t a = 0, b = len;
    while (a < b && lg_space(text[a]))
        a++;
    while (b > a && lg_space(text[b - 1]))
        b--;
    const char *nl = memchr(text + a, '\n', b - a);
    size_t e1 = nl ? (size_t)(nl - text) : b, w = e1;
    while (w > a && lg_blank(text[w - 1]))
        w--;
    if (w - a == 4 && strncasecmp(text + a, "safe", 4) == 0) {
        if (nl)
            return ERR_PARSE; /* "safe" followed by anything */
    } else if (w - a == 6 && strncasecmp(text + a, "unsafe", 6) == 0) {
        v.unsafe = true;
        if (nl) {
            size_t i = e1 + 1;
            if (memchr(text + i, '\n', b - i))
                return ERR_PARSE; /* more than one category line */
            for (;;) {
                while (i < b && lg_blank(text[i]))
                    i++;
                size_t s = i;
                while (i < b && !lg_blank(text[i]) && text[i] != ',')
                    i++;
                int cat = parse_s(text + s, i - s);
                if (!cat)
                    return ERR_PARSE;
                v.categories |= (uint16_t)(1u << (cat - 1));
                while (i < b && lg_blank(text[i]))
                    i++;
                if (i == b)
                    break;
                if (text[i] != ',')
                    return ERR_PARSE;
                i++;
            }
        }
    } else {
        return ERR_PARSE;
    }
    if (out)
        *out = v;
    return ERR_OK;
}

void guard_harm_policy_default(guard_harm_policy *p)
{
    memset(p, 0, sizeof *p);
    for (int i = 1; i <= GUARD_HARM_CATEGORIES; i++)
        p->severity[i] = harm[i].severity;
    p->threshold = 1;
}

err_code guard_harm_apply(const guard_harm_policy *p, const guard_harm_verdict *v, size_t len,
                          guard_findings *out)
{
    if (!p || !v || !out)
        return ERR_INVAL;
    if (!v->unsafe)
        return ERR_OK;
    if (v->categories == 0)
        return guard_findings_add(out, GT_HARM, 0, len, 1.0f, "unspecified");
    unsigned th = p->threshold ? p->threshold : 1;
    for (int i = 1; i <= GUARD_HARM_CATEGORIES; i++) {
        unsigned sev = p->severity[i] > 3 ? 3 : p->severity[i];
        if (!(v->categories & (1u << (i - 1))) || sev == 0 || sev < th)
            continue;
        err_code e = guard_findings_add(out, GT_HARM, 0, len, (float)sev / 3.0f, harm[i].name);
        if (e)
            return e;
    }
    return ERR_OK;
}
