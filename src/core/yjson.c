/*
 * yjson.c - YAML/JSON documents to jansson values with positions
 * (yjson.h says what is read and how; docs/internals/suite.md has the
 * streaming design).
 *
 * How it works:
 *  - Events. Two sources give the same event stream (stream/document
 *    start and end, scalar, alias, sequence and mapping start and end, each
 *    with its start mark): libyaml's event parser, and a JSON tokenizer
 *    written here for speed (JSON is YAML, so it emits what libyaml would:
 *    strings as double-quoted scalars, numbers and literals as plain ones).
 *    Both read a string in memory or a FILE through a fixed buffer.
 *  - Building. build() is a recursive descent over the events: a scalar is
 *    typed (core schema, tags), a container calls build() for each child,
 *    bounded by max_depth so the C stack is too. Every value made counts
 *    against max_nodes. Anchored values are kept in a small hash table by
 *    name; an alias copies the value (positions of the copy: the alias's).
 *    Merge keys are collected while a mapping is read and applied at its
 *    end, keys the mapping has winning.
 *  - Skipping. skip_value() walks a value's events without building them,
 *    counting depth (bounded by max_depth as build() is), handing each to
 *    a callback; an anchored value met on
 *    the way is built anyway (later aliases need it). The suite loader uses
 *    it to count tests without keeping them; the stream uses it to pass
 *    the top-level keys around the list it streams.
 *  - Positions. An open-addressing table keyed by (pointer, sub): sub 0 is
 *    the value itself, 1+i item i of an array, a key hash with the top bit
 *    set a member of an object (with the key's position too). Entries carry
 *    a generation number, so the stream forgets the previous item's
 *    positions in O(1).
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <yaml.h>
#include "core/buf.h"
#include "core/jscan.h"
#include "core/yjson.h"

#define JS_WINDOW 65536
#define JS_STACK 1024
#define KEY_SHOW 100

/* ---- positions ---- */

typedef struct pent {
    const void *k;
    uint64_t sub;
    uint32_t gen;
    int32_t line, col, kline, kcol;
    uint32_t start, end;
    uint8_t style;
} pent;

typedef struct postab {
    pent *v;
    size_t cap, n;
    uint32_t gen;
} postab;

struct yjson_doc {
    json_t *root;
    postab pos;
    yjson_backend backend;
};

static uint64_t pmix(const void *k, uint64_t sub)
{
    uint64_t h = (uint64_t)(uintptr_t)k * 0x9E3779B97F4A7C15ull ^ sub * 0xC2B2AE3D27D4EB4Full;
    h ^= h >> 29;
    h *= 0xBF58476D1CE4E5B9ull;
    return h ^ (h >> 32);
}

static uint64_t key_sub(const char *key, size_t len)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)key[i];
        h *= 1099511628211ull;
    }
    return h | (1ull << 63);
}

static uint32_t clamp32(size_t v) { return v > UINT32_MAX ? UINT32_MAX : (uint32_t)v; }
static int32_t clampi(size_t v) { return v >= INT32_MAX ? INT32_MAX : (int32_t)v; }

static pent *pos_find(const postab *t, const void *k, uint64_t sub)
{
    if (!t->v || !k)
        return NULL;
    size_t mask = t->cap - 1, i = (size_t)pmix(k, sub) & mask;
    for (;;) {
        pent *p = &t->v[i];
        if (p->gen != t->gen || !p->k)
            return NULL;
        if (p->k == k && p->sub == sub)
            return p;
        i = (i + 1) & mask;
    }
}

static bool pos_grow(postab *t)
{
    size_t ncap = t->cap ? t->cap * 2 : 64;
    pent *nv = calloc(ncap, sizeof *nv);
    if (!nv)
        return false;
    for (size_t i = 0; i < t->cap; i++) {
        pent *p = &t->v[i];
        if (p->gen != t->gen || !p->k)
            continue;
        size_t j = (size_t)pmix(p->k, p->sub) & (ncap - 1);
        while (nv[j].k)
            j = (j + 1) & (ncap - 1);
        nv[j] = *p;
        nv[j].gen = 1;
    }
    free(t->v);
    t->v = nv;
    t->cap = ncap;
    t->gen = 1;
    return true;
}

/* Returns the entry for (k, sub), made if missing (zeroed), or NULL on OOM. */
static pent *pos_put(postab *t, const void *k, uint64_t sub)
{
    if ((t->n + 1) * 2 > t->cap && !pos_grow(t))
        return NULL;
    size_t mask = t->cap - 1, i = (size_t)pmix(k, sub) & mask;
    for (;;) {
        pent *p = &t->v[i];
        if (p->gen != t->gen || !p->k) {
            memset(p, 0, sizeof *p);
            p->k = k;
            p->sub = sub;
            p->gen = t->gen;
            t->n++;
            return p;
        }
        if (p->k == k && p->sub == sub)
            return p;
        i = (i + 1) & mask;
    }
}

/* Forgets every entry in O(1) (a new generation). */
static void pos_clear(postab *t)
{
    t->n = 0;
    if (!t->v)
        return;
    if (t->gen == UINT32_MAX) {
        memset(t->v, 0, t->cap * sizeof *t->v);
        t->gen = 1;
    } else {
        t->gen++;
    }
}

static void pos_free(postab *t)
{
    free(t->v);
    memset(t, 0, sizeof *t);
}

/* ---- events ---- */

enum {
    EV_NONE, EV_STREAM_START, EV_STREAM_END, EV_DOC_START, EV_DOC_END, EV_SCALAR, EV_ALIAS,
    EV_SEQ_START, EV_SEQ_END, EV_MAP_START, EV_MAP_END,
};

typedef struct mark {
    size_t idx, line, col; /* 0-based */
    size_t end;            /* index one past the end (scalars) */
    yjson_style style;
} mark;

typedef struct yev {
    int type;
    const char *val;       /* scalar text or alias name, NUL-terminated */
    size_t len;
    const char *anchor;
    const char *tag;
    bool plain;            /* plain style without a tag */
    mark m;
} yev;

/* The JSON tokenizer. */
enum { JS_VALUE, JS_ARR_FIRST, JS_OBJ_FIRST, JS_KEY, JS_COLON, JS_AFTER };

typedef struct jsrc {
    FILE *f;
    const unsigned char *p;
    size_t len, pos;
    unsigned char *window;
    bool eof;
    size_t idx, line, col;
    buf sb;
    unsigned char stack[JS_STACK];
    int depth;
    int st;
    int phase;             /* 0 stream start, 1 document start, 2 body, 3 stream end, 4 done */
    bool cr;               /* the last character was a CR */
} jsrc;

typedef struct source {
    const char *text;      /* the input (string), or */
    size_t tlen;
    FILE *f;               /* the input (file) from offset fstart */
    long fstart;
    bool json;
    bool syntax;           /* the last error was the input's syntax (not a value's meaning) */
    bool ystarted;
    yaml_parser_t yp;
    yaml_event_t ye;
    bool have_ye;
    jsrc js;
    yev ev;
} source;

static void seterr(yjson_error *e, size_t line0, size_t col0, size_t idx, const char *fmt, ...) PRINTF_LIKE(5, 6);

static void seterr(yjson_error *e, size_t line0, size_t col0, size_t idx, const char *fmt, ...)
{
    if (!e)
        return;
    e->line = line0 == (size_t)-1 ? 0 : clampi(line0 + 1);
    e->col = line0 == (size_t)-1 ? 0 : clampi(col0 + 1);
    e->index = idx;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
}

/* -- JSON tokenizer -- */

static int js_fill(jsrc *j)
{
    if (j->pos < j->len)
        return 1;
    if (!j->f || j->eof)
        return 0;
    size_t n = fread(j->window, 1, JS_WINDOW, j->f);
    j->p = j->window;
    j->len = n;
    j->pos = 0;
    if (n == 0) {
        j->eof = true;
        return ferror(j->f) ? -1 : 0;
    }
    return 1;
}

static inline int js_peek(jsrc *j)
{
    if (j->pos < j->len)
        return j->p[j->pos];
    return js_fill(j) > 0 ? j->p[j->pos] : -1;
}

static inline void js_step(jsrc *j)
{
    unsigned char c = j->p[j->pos++];
    j->cr = false;
    if (c == '\n') {
        j->line++;
        j->col = 0;
        j->idx++;
    } else if ((c & 0xc0) != 0x80) {
        j->col++;
        j->idx++;
    }
}

static bool js_fail(source *s, yjson_error *e, const char *what)
{
    jsrc *j = &s->js;
    s->syntax = true;
    seterr(e, j->line, j->col, j->idx, "bad JSON: %s", what);
    return false;
}

static void js_ws(jsrc *j)
{
    for (;;) {
        if (j->pos >= j->len && js_fill(j) <= 0)
            return;
        const unsigned char *p = j->p;
        size_t i = j->pos, n = j->len;
        while (i < n) {
            unsigned char c = p[i];
            if (c == ' ' || c == '\t') {
                j->col++;
                j->idx++;
                j->cr = false;
            } else if (c == '\r' || c == '\n') {
                /* CR, LF and CRLF each end a line, as for libyaml */
                if (c == '\r' || !j->cr)
                    j->line++;
                j->cr = c == '\r';
                j->col = 0;
                j->idx++;
            } else {
                j->pos = i;
                return;
            }
            i++;
        }
        j->pos = i;
    }
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static long js_hex4(jsrc *j)
{
    long v = 0;
    for (int i = 0; i < 4; i++) {
        int c = js_peek(j);
        int h = c < 0 ? -1 : hexval(c);
        if (h < 0)
            return -1;
        js_step(j);
        v = v * 16 + h;
    }
    return v;
}

static bool put_utf8(buf *b, unsigned long cp)
{
    char u[4];
    size_t n;
    if (cp < 0x80) {
        u[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xc0 | (cp >> 6));
        u[1] = (char)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xe0 | (cp >> 12));
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        u[2] = (char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        u[0] = (char)(0xf0 | (cp >> 18));
        u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
        u[3] = (char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    return buf_append(b, u, n) == ERR_OK;
}

/* A string after its opening quote, unescaped into j->sb. */
static bool js_string(source *s, yjson_error *e)
{
    jsrc *j = &s->js;
    buf_reset(&j->sb);
    for (;;) {
        if (js_fill(j) <= 0)
            return js_fail(s, e, "a string is not closed");
        /* copy a run of ordinary bytes at once */
        size_t i = j->pos, end = j->len, chars = 0;
        const unsigned char *p = j->p;
        while (i < end) {
            unsigned char c = p[i];
            if (c == '"' || c == '\\' || c < 0x20)
                break;
            chars += (c & 0xc0) != 0x80;
            i++;
        }
        if (i > j->pos) {
            if (buf_append(&j->sb, p + j->pos, i - j->pos) != ERR_OK)
                return js_fail(s, e, "a string is too long");
            j->col += chars;
            j->idx += chars;
            j->pos = i;
            continue;
        }
        int c = j->p[j->pos];
        if (c == '"') {
            js_step(j);
            break;
        }
        if (c < 0x20)
            return js_fail(s, e, "a control character in a string");
        js_step(j); /* backslash */
        c = js_peek(j);
        if (c < 0)
            return js_fail(s, e, "a string is not closed");
        js_step(j);
        char out;
        switch (c) {
        case '"': out = '"'; break;
        case '\\': out = '\\'; break;
        case '/': out = '/'; break;
        case 'b': out = '\b'; break;
        case 'f': out = '\f'; break;
        case 'n': out = '\n'; break;
        case 'r': out = '\r'; break;
        case 't': out = '\t'; break;
        case 'u': {
            long cp = js_hex4(j);
            if (cp < 0)
                return js_fail(s, e, "a bad \\u escape");
            if (cp >= 0xdc00 && cp <= 0xdfff)
                return js_fail(s, e, "a lone surrogate in a \\u escape");
            if (cp >= 0xd800 && cp <= 0xdbff) {
                if (js_peek(j) != '\\')
                    return js_fail(s, e, "a lone surrogate in a \\u escape");
                js_step(j);
                if (js_peek(j) != 'u')
                    return js_fail(s, e, "a lone surrogate in a \\u escape");
                js_step(j);
                long lo = js_hex4(j);
                if (lo < 0xdc00 || lo > 0xdfff)
                    return js_fail(s, e, "a lone surrogate in a \\u escape");
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            }
            if (!put_utf8(&j->sb, (unsigned long)cp))
                return js_fail(s, e, "a string is too long");
            continue;
        }
        default:
            return js_fail(s, e, "a bad escape in a string");
        }
        if (buf_append(&j->sb, &out, 1) != ERR_OK)
            return js_fail(s, e, "a string is too long");
    }
    if (jscan_utf8_prefix(j->sb.p ? j->sb.p : "", j->sb.len) != j->sb.len)
        return js_fail(s, e, "a string is not valid UTF-8");
    if (!j->sb.p && buf_reserve(&j->sb, 1) != ERR_OK)
        return js_fail(s, e, "out of memory");
    return true;
}

static bool is_digit(int c) { return c >= '0' && c <= '9'; }

static bool js_take(source *s, yjson_error *e)
{
    jsrc *j = &s->js;
    char ch = (char)j->p[j->pos];
    if (j->sb.len > 400 || buf_append(&j->sb, &ch, 1) != ERR_OK)
        return js_fail(s, e, "a number is too long");
    js_step(j);
    return true;
}

static bool js_digits(source *s, yjson_error *e, size_t *n)
{
    *n = 0;
    while (is_digit(js_peek(&s->js))) {
        if (!js_take(s, e))
            return false;
        (*n)++;
    }
    return true;
}

/* A number (RFC 8259 grammar) or a literal, as a plain scalar in j->sb. */
static bool js_bare(source *s, yjson_error *e, int c)
{
    jsrc *j = &s->js;
    buf_reset(&j->sb);
    if (c == '-' || is_digit(c)) {
        size_t n;
        if (c == '-' && !js_take(s, e))
            return false;
        c = js_peek(j);
        if (c == '0') {
            if (!js_take(s, e))
                return false;
            if (is_digit(js_peek(j)))
                return js_fail(s, e, "a number with a leading zero");
        } else if (!is_digit(c)) {
            return js_fail(s, e, "a bad number");
        } else if (!js_digits(s, e, &n)) {
            return false;
        }
        if (js_peek(j) == '.') {
            if (!js_take(s, e) || !js_digits(s, e, &n))
                return false;
            if (n == 0)
                return js_fail(s, e, "a bad number");
        }
        c = js_peek(j);
        if (c == 'e' || c == 'E') {
            if (!js_take(s, e))
                return false;
            c = js_peek(j);
            if ((c == '+' || c == '-') && !js_take(s, e))
                return false;
            if (!js_digits(s, e, &n))
                return false;
            if (n == 0)
                return js_fail(s, e, "a bad number");
        }
        return true;
    }
    while (c >= 'a' && c <= 'z' && j->sb.len < 8) {
        char ch = (char)c;
        if (buf_append(&j->sb, &ch, 1) != ERR_OK)
            return js_fail(s, e, "out of memory");
        js_step(j);
        c = js_peek(j);
    }
    if (j->sb.len > 0 && (strcmp(j->sb.p, "true") == 0 || strcmp(j->sb.p, "false") == 0 || strcmp(j->sb.p, "null") == 0))
        return true;
    return js_fail(s, e, "an unexpected character");
}

static void js_event(source *s, int type, size_t idx, size_t line, size_t col)
{
    yev *ev = &s->ev;
    ev->type = type;
    ev->val = NULL;
    ev->len = 0;
    ev->anchor = NULL;
    ev->tag = NULL;
    ev->plain = false;
    ev->m.idx = idx;
    ev->m.line = line;
    ev->m.col = col;
    ev->m.end = s->js.idx;
    ev->m.style = YJSON_ANY;
}

/* After a complete value: what may follow. */
static void js_after_value(jsrc *j)
{
    j->st = JS_AFTER;
}

static bool js_next(source *s, yjson_error *e)
{
    jsrc *j = &s->js;
    if (j->phase == 0) {
        /* a UTF-8 byte order mark is skipped, as libyaml does */
        if (js_peek(j) == 0xef && j->pos + 2 < j->len && j->p[j->pos + 1] == 0xbb && j->p[j->pos + 2] == 0xbf)
            j->pos += 3;
        js_event(s, EV_STREAM_START, 0, 0, 0);
        j->phase = 1;
        return true;
    }
    if (j->phase == 1) {
        js_ws(j);
        if (js_peek(j) < 0) {
            if (j->f && ferror(j->f))
                return js_fail(s, e, "read error");
            js_event(s, EV_STREAM_END, j->idx, j->line, j->col);
            j->phase = 4;
            return true;
        }
        js_event(s, EV_DOC_START, j->idx, j->line, j->col);
        j->phase = 2;
        j->st = JS_VALUE;
        return true;
    }
    if (j->phase == 3) {
        js_event(s, EV_STREAM_END, j->idx, j->line, j->col);
        j->phase = 4;
        return true;
    }
    if (j->phase == 4)
        return js_fail(s, e, "read past the end");
    for (;;) {
        js_ws(j);
        int c = js_peek(j);
        size_t idx = j->idx, line = j->line, col = j->col;
        switch (j->st) {
        case JS_AFTER:
            if (j->depth == 0) {
                if (c >= 0)
                    return js_fail(s, e, "text after the end of the document");
                if (j->f && ferror(j->f))
                    return js_fail(s, e, "read error");
                js_event(s, EV_DOC_END, idx, line, col);
                j->phase = 3;
                return true;
            }
            if (c == ',') {
                js_step(j);
                j->st = j->stack[j->depth - 1] == '{' ? JS_KEY : JS_VALUE;
                continue;
            }
            if ((c == '}' && j->stack[j->depth - 1] == '{') || (c == ']' && j->stack[j->depth - 1] == '[')) {
                js_step(j);
                j->depth--;
                js_event(s, c == '}' ? EV_MAP_END : EV_SEQ_END, idx, line, col);
                js_after_value(j);
                return true;
            }
            return js_fail(s, e, j->stack[j->depth - 1] == '{' ? "expected ',' or '}'" : "expected ',' or ']'");
        case JS_COLON:
            if (c != ':')
                return js_fail(s, e, "expected ':'");
            js_step(j);
            j->st = JS_VALUE;
            continue;
        case JS_OBJ_FIRST:
        case JS_KEY:
            if (c == '}' && j->st == JS_OBJ_FIRST) {
                js_step(j);
                j->depth--;
                js_event(s, EV_MAP_END, idx, line, col);
                js_after_value(j);
                return true;
            }
            if (c != '"')
                return js_fail(s, e, "expected a key in double quotes");
            js_step(j);
            if (!js_string(s, e))
                return false;
            js_event(s, EV_SCALAR, idx, line, col);
            s->ev.val = j->sb.p;
            s->ev.len = j->sb.len;
            s->ev.m.style = YJSON_DOUBLE;
            j->st = JS_COLON;
            return true;
        case JS_ARR_FIRST:
            if (c == ']') {
                js_step(j);
                j->depth--;
                js_event(s, EV_SEQ_END, idx, line, col);
                js_after_value(j);
                return true;
            }
            /* fall through */
        case JS_VALUE:
            if (c < 0)
                return js_fail(s, e, "the document ends inside a value");
            if (c == '{' || c == '[') {
                if (j->depth >= JS_STACK)
                    return js_fail(s, e, "containers nest too deep");
                js_step(j);
                j->stack[j->depth++] = (unsigned char)c;
                js_event(s, c == '{' ? EV_MAP_START : EV_SEQ_START, idx, line, col);
                j->st = c == '{' ? JS_OBJ_FIRST : JS_ARR_FIRST;
                return true;
            }
            if (c == '"') {
                js_step(j);
                if (!js_string(s, e))
                    return false;
                js_event(s, EV_SCALAR, idx, line, col);
                s->ev.m.style = YJSON_DOUBLE;
            } else {
                if (!js_bare(s, e, c))
                    return false;
                js_event(s, EV_SCALAR, idx, line, col);
                s->ev.m.style = YJSON_PLAIN;
                s->ev.plain = true;
            }
            s->ev.val = j->sb.p;
            s->ev.len = j->sb.len;
            js_after_value(j);
            return true;
        }
        return js_fail(s, e, "internal state");
    }
}

/* -- libyaml -- */

static yjson_style ystyle(yaml_scalar_style_t st)
{
    switch (st) {
    case YAML_PLAIN_SCALAR_STYLE: return YJSON_PLAIN;
    case YAML_SINGLE_QUOTED_SCALAR_STYLE: return YJSON_SINGLE;
    case YAML_DOUBLE_QUOTED_SCALAR_STYLE: return YJSON_DOUBLE;
    case YAML_LITERAL_SCALAR_STYLE: return YJSON_LITERAL;
    case YAML_FOLDED_SCALAR_STYLE: return YJSON_FOLDED;
    default: return YJSON_ANY;
    }
}

/* Line, column and character index (0-based) of byte offset off of the
 * input, for libyaml's reader errors, which only give an offset. */
static void byte_pos(source *s, size_t off, size_t *line, size_t *col, size_t *idx)
{
    size_t l = 0, c = 0, n = 0;
    if (s->text) {
        for (size_t i = 0; i < off && i < s->tlen; i++) {
            unsigned char b = (unsigned char)s->text[i];
            if (b == '\n') {
                l++;
                c = 0;
                n++;
            } else if ((b & 0xc0) != 0x80) {
                c++;
                n++;
            }
        }
    } else if (s->f) {
        long here = ftell(s->f);
        if (here >= 0 && fseek(s->f, s->fstart, SEEK_SET) == 0) {
            for (size_t i = 0; i < off; i++) {
                int b = getc(s->f);
                if (b == EOF)
                    break;
                if (b == '\n') {
                    l++;
                    c = 0;
                    n++;
                } else if ((b & 0xc0) != 0x80) {
                    c++;
                    n++;
                }
            }
            fseek(s->f, here, SEEK_SET);
        }
    }
    *line = l;
    *col = c;
    *idx = n;
}

static bool y_next(source *s, yjson_error *e)
{
    if (s->have_ye) {
        yaml_event_delete(&s->ye);
        s->have_ye = false;
    }
    if (!yaml_parser_parse(&s->yp, &s->ye)) {
        const yaml_parser_t *p = &s->yp;
        s->syntax = true;
        if (p->error == YAML_MEMORY_ERROR) {
            seterr(e, (size_t)-1, 0, 0, "out of memory reading YAML");
        } else if (p->error == YAML_READER_ERROR) {
            size_t line = 0, col = 0, idx = 0;
            byte_pos(s, p->problem_offset, &line, &col, &idx);
            seterr(e, line, col, idx, "bad YAML: %s", p->problem ? p->problem : "unreadable input");
        } else {
            seterr(e, p->problem_mark.line, p->problem_mark.column, p->problem_mark.index, "bad YAML: %s%s%s",
                   p->problem ? p->problem : "syntax error", p->context ? " " : "", p->context ? p->context : "");
        }
        return false;
    }
    s->have_ye = true;
    const yaml_event_t *y = &s->ye;
    yev *ev = &s->ev;
    memset(ev, 0, sizeof *ev);
    ev->m.idx = y->start_mark.index;
    ev->m.line = y->start_mark.line;
    ev->m.col = y->start_mark.column;
    ev->m.end = y->end_mark.index;
    switch (y->type) {
    case YAML_STREAM_START_EVENT: ev->type = EV_STREAM_START; break;
    case YAML_STREAM_END_EVENT: ev->type = EV_STREAM_END; break;
    case YAML_DOCUMENT_START_EVENT: ev->type = EV_DOC_START; break;
    case YAML_DOCUMENT_END_EVENT: ev->type = EV_DOC_END; break;
    case YAML_ALIAS_EVENT:
        ev->type = EV_ALIAS;
        ev->val = (const char *)y->data.alias.anchor;
        ev->len = strlen(ev->val);
        break;
    case YAML_SCALAR_EVENT:
        ev->type = EV_SCALAR;
        ev->val = (const char *)y->data.scalar.value;
        ev->len = y->data.scalar.length;
        ev->anchor = (const char *)y->data.scalar.anchor;
        ev->tag = (const char *)y->data.scalar.tag;
        ev->m.style = ystyle(y->data.scalar.style);
        ev->plain = ev->m.style == YJSON_PLAIN && !ev->tag;
        break;
    case YAML_SEQUENCE_START_EVENT:
        ev->type = EV_SEQ_START;
        ev->anchor = (const char *)y->data.sequence_start.anchor;
        ev->tag = (const char *)y->data.sequence_start.tag;
        break;
    case YAML_SEQUENCE_END_EVENT: ev->type = EV_SEQ_END; break;
    case YAML_MAPPING_START_EVENT:
        ev->type = EV_MAP_START;
        ev->anchor = (const char *)y->data.mapping_start.anchor;
        ev->tag = (const char *)y->data.mapping_start.tag;
        break;
    case YAML_MAPPING_END_EVENT: ev->type = EV_MAP_END; break;
    default: ev->type = EV_NONE; break;
    }
    return true;
}

/* -- the source -- */

static bool src_init(source *s, bool json, FILE *f, const char *text, size_t len, size_t max_scalar)
{
    memset(s, 0, sizeof *s);
    s->json = json;
    s->f = f;
    s->fstart = f ? ftell(f) : 0;
    s->text = f ? NULL : (text ? text : "");
    s->tlen = f ? 0 : len;
    if (json) {
        jsrc *j = &s->js;
        buf_init(&j->sb, max_scalar + 8);
        if (f) {
            j->f = f;
            j->window = malloc(JS_WINDOW);
            if (!j->window)
                return false;
        } else {
            j->p = (const unsigned char *)(text ? text : "");
            j->len = text ? len : 0;
        }
        return true;
    }
    if (!yaml_parser_initialize(&s->yp))
        return false;
    s->ystarted = true;
    if (f)
        yaml_parser_set_input_file(&s->yp, f);
    else
        yaml_parser_set_input_string(&s->yp, (const unsigned char *)(text ? text : ""), text ? len : 0);
    return true;
}

static void src_free(source *s)
{
    if (s->json) {
        free(s->js.window);
        buf_free(&s->js.sb);
    } else if (s->ystarted) {
        if (s->have_ye)
            yaml_event_delete(&s->ye);
        yaml_parser_delete(&s->yp);
    }
    memset(s, 0, sizeof *s);
}

static bool src_next(source *s, yjson_error *e)
{
    s->syntax = false;
    return s->json ? js_next(s, e) : y_next(s, e);
}

/* ---- scalars ---- */

enum { K_STR, K_NULL, K_TRUE, K_FALSE, K_INT, K_HEX, K_OCT, K_FLOAT, K_SPECIAL };

static bool word_in(const char *v, size_t n, const char *const *words)
{
    for (; *words; words++)
        if (strlen(*words) == n && memcmp(*words, v, n) == 0)
            return true;
    return false;
}

static bool digits_only(const char *v, size_t n, int base)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        int h = hexval((unsigned char)v[i]);
        if (h < 0 || h >= base)
            return false;
    }
    return true;
}

/* [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)? */
static bool is_float(const char *v, size_t n)
{
    size_t i = 0, digits = 0;
    if (i < n && (v[i] == '-' || v[i] == '+'))
        i++;
    while (i < n && is_digit((unsigned char)v[i]))
        i++, digits++;
    if (i < n && v[i] == '.') {
        i++;
        while (i < n && is_digit((unsigned char)v[i]))
            i++, digits++;
    }
    if (digits == 0)
        return false;
    if (i < n && (v[i] == 'e' || v[i] == 'E')) {
        i++;
        if (i < n && (v[i] == '-' || v[i] == '+'))
            i++;
        size_t ed = 0;
        while (i < n && is_digit((unsigned char)v[i]))
            i++, ed++;
        if (ed == 0)
            return false;
    }
    return i == n;
}

/* What the core schema makes of a plain scalar. */
static int plain_kind(const char *v, size_t n)
{
    static const char *const nulls[] = { "null", "Null", "NULL", "~", NULL };
    static const char *const trues[] = { "true", "True", "TRUE", NULL };
    static const char *const falses[] = { "false", "False", "FALSE", NULL };
    static const char *const specials[] = { ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf", "-.Inf",
                                            "-.INF", ".nan", ".NaN", ".NAN", NULL };
    if (n == 0)
        return K_NULL;
    unsigned char c = (unsigned char)v[0];
    /* a fast exit for ordinary words */
    if (!(is_digit(c) || c == '-' || c == '+' || c == '.' || c == '~' || c == 'n' || c == 'N' || c == 't' ||
          c == 'T' || c == 'f' || c == 'F'))
        return K_STR;
    if (word_in(v, n, nulls))
        return K_NULL;
    if (word_in(v, n, trues))
        return K_TRUE;
    if (word_in(v, n, falses))
        return K_FALSE;
    size_t sign = (c == '-' || c == '+') ? 1 : 0;
    if (digits_only(v + sign, n - sign, 10))
        return K_INT;
    if (n > 2 && v[0] == '0' && v[1] == 'x' && digits_only(v + 2, n - 2, 16))
        return K_HEX;
    if (n > 2 && v[0] == '0' && v[1] == 'o' && digits_only(v + 2, n - 2, 8))
        return K_OCT;
    if (is_float(v, n))
        return K_FLOAT;
    if (word_in(v, n, specials))
        return K_SPECIAL;
    return K_STR;
}

bool yjson_plain_is_string(const char *v, size_t len)
{
    return v && plain_kind(v, len) == K_STR;
}

/* A plain scalar's JSON value, or NULL with *why set. */
static json_t *plain_value(const char *v, size_t n, int kind, const char **why)
{
    char tmp[448];
    char *end = NULL;
    *why = NULL;
    switch (kind) {
    case K_NULL: return json_null();
    case K_TRUE: return json_true();
    case K_FALSE: return json_false();
    case K_INT:
    case K_HEX:
    case K_OCT:
    case K_FLOAT:
        if (n >= sizeof tmp) {
            *why = "out of range";
            return NULL;
        }
        memcpy(tmp, v, n);
        tmp[n] = '\0';
        errno = 0;
        if (kind == K_FLOAT) {
            double x = strtod(tmp, &end);
            if (*end || isinf(x) || isnan(x)) {
                *why = "out of range";
                return NULL;
            }
            return json_real(x);
        }
        if (kind == K_INT) {
            long long x = strtoll(tmp, &end, 10);
            if (errno || *end) {
                *why = "out of range";
                return NULL;
            }
            return json_integer(x);
        }
        unsigned long long u = strtoull(tmp + 2, &end, kind == K_HEX ? 16 : 8);
        if (errno || *end || u > (unsigned long long)LLONG_MAX) {
            *why = "out of range";
            return NULL;
        }
        return json_integer((long long)u);
    case K_SPECIAL:
        *why = "no JSON form";
        return NULL;
    default:
        return json_stringn(v, n);
    }
}

/* ---- the builder ---- */

typedef struct anchor {
    char *name;
    json_t *val;           /* NULL while being defined */
    size_t nodes;
    int height;
} anchor;

typedef struct builder {
    source src;
    yjson_opts o;
    postab *pos;
    yjson_error *e;
    size_t nodes;
    anchor *anchors;       /* open addressing by name */
    size_t acap, an;
    size_t anchor_nodes;
    bool streaming;
    bool oom;
    /* skipping a top-level key while building the root */
    const char *skip_key;
    bool skip_seen;
} builder;

#define B_ERR(b, m, ...) seterr((b)->e, (m)->line, (m)->col, (m)->idx, __VA_ARGS__)

static json_t *nomem(builder *b)
{
    b->oom = true;
    seterr(b->e, (size_t)-1, 0, 0, "out of memory");
    return NULL;
}

static void show_key(char *out, size_t cap, const char *k, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 1 < cap && o < KEY_SHOW; i++)
        out[o++] = ((unsigned char)k[i] >= 0x20 && k[i] != 0x7f) ? k[i] : '?';
    out[o] = '\0';
}

static size_t name_hash(const char *s)
{
    size_t h = 5381;
    for (; *s; s++)
        h = h * 33 + (unsigned char)*s;
    return h;
}

static anchor *anchor_find(builder *b, const char *name)
{
    if (!b->acap)
        return NULL;
    size_t mask = b->acap - 1, i = name_hash(name) & mask;
    while (b->anchors[i].name) {
        if (strcmp(b->anchors[i].name, name) == 0)
            return &b->anchors[i];
        i = (i + 1) & mask;
    }
    return NULL;
}

static anchor *anchor_slot(builder *b, const char *name)
{
    anchor *a = anchor_find(b, name);
    if (a)
        return a;
    if ((b->an + 1) * 2 > b->acap) {
        size_t ncap = b->acap ? b->acap * 2 : 16;
        anchor *nv = calloc(ncap, sizeof *nv);
        if (!nv)
            return NULL;
        for (size_t i = 0; i < b->acap; i++) {
            if (!b->anchors[i].name)
                continue;
            size_t j = name_hash(b->anchors[i].name) & (ncap - 1);
            while (nv[j].name)
                j = (j + 1) & (ncap - 1);
            nv[j] = b->anchors[i];
        }
        free(b->anchors);
        b->anchors = nv;
        b->acap = ncap;
    }
    size_t mask = b->acap - 1, i = name_hash(name) & mask;
    while (b->anchors[i].name)
        i = (i + 1) & mask;
    b->anchors[i].name = strdup(name);
    if (!b->anchors[i].name)
        return NULL;
    b->an++;
    return &b->anchors[i];
}

/* Marks an anchor as being defined (aliases to it are then recursive). */
static bool anchor_begin(builder *b, const char *name)
{
    anchor *a = anchor_slot(b, name);
    if (!a)
        return nomem(b), false;
    if (a->val) {
        json_decref(a->val);
        a->val = NULL;
        b->anchor_nodes -= MIN(b->anchor_nodes, a->nodes);
    }
    a->nodes = 0;
    return true;
}

static bool anchor_end(builder *b, const char *name, json_t *v, size_t nodes, int height, const mark *m)
{
    anchor *a = anchor_slot(b, name);
    if (!a)
        return nomem(b), false;
    if (a->val) {
        json_decref(a->val);
        b->anchor_nodes -= MIN(b->anchor_nodes, a->nodes);
    }
    a->val = json_incref(v);
    a->nodes = nodes;
    a->height = height;
    b->anchor_nodes += nodes;
    if (b->streaming && b->anchor_nodes > b->o.max_anchor_nodes) {
        B_ERR(b, m, "anchors hold more than %zu values in all", b->o.max_anchor_nodes);
        return false;
    }
    return true;
}

static void anchors_free(builder *b)
{
    for (size_t i = 0; i < b->acap; i++) {
        free(b->anchors[i].name);
        json_decref(b->anchors[i].val);
    }
    free(b->anchors);
    b->anchors = NULL;
    b->acap = b->an = 0;
}

static bool count_node(builder *b, const mark *m, size_t n)
{
    if (b->nodes + n > b->o.max_nodes || b->nodes + n < b->nodes) {
        B_ERR(b, m, "the YAML has more than %zu nodes (counting aliases each time they are used)", b->o.max_nodes);
        return false;
    }
    b->nodes += n;
    return true;
}

static bool shared(const json_t *v) { return json_is_null(v) || json_is_true(v) || json_is_false(v); }

static bool rec_node(builder *b, const json_t *v, const mark *m)
{
    if (!b->pos || shared(v))
        return true;
    pent *p = pos_put(b->pos, v, 0);
    if (!p)
        return nomem(b), false;
    p->line = clampi(m->line + 1);
    p->col = clampi(m->col + 1);
    p->start = clamp32(m->idx);
    p->end = clamp32(m->end);
    p->style = (uint8_t)m->style;
    return true;
}

static bool rec_member(builder *b, const json_t *parent, uint64_t sub, const mark *vm, const mark *km)
{
    if (!b->pos)
        return true;
    pent *p = pos_put(b->pos, parent, sub);
    if (!p)
        return nomem(b), false;
    p->line = clampi(vm->line + 1);
    p->col = clampi(vm->col + 1);
    if (km) {
        p->kline = clampi(km->line + 1);
        p->kcol = clampi(km->col + 1);
    }
    return true;
}

/* A deep copy of an anchored value, every node placed at m. */
static json_t *copy_value(builder *b, const json_t *v, const mark *m)
{
    json_t *out = NULL;
    if (json_is_object(v)) {
        out = json_object();
        if (!out)
            return nomem(b);
        const char *k;
        size_t klen;
        json_t *x;
        json_object_keylen_foreach((json_t *)v, k, klen, x) {
            json_t *c = copy_value(b, x, m);
            if (!c || json_object_setn_new_nocheck(out, k, klen, c)) {
                json_decref(out);
                return c ? nomem(b) : NULL;
            }
            if (!rec_member(b, out, key_sub(k, klen), m, m)) {
                json_decref(out);
                return NULL;
            }
        }
    } else if (json_is_array(v)) {
        out = json_array();
        if (!out)
            return nomem(b);
        for (size_t i = 0; i < json_array_size(v); i++) {
            json_t *c = copy_value(b, json_array_get(v, i), m);
            if (!c || json_array_append_new(out, c)) {
                json_decref(out);
                return c ? nomem(b) : NULL;
            }
            if (!rec_member(b, out, i + 1, m, NULL)) {
                json_decref(out);
                return NULL;
            }
        }
    } else if (json_is_string(v)) {
        out = json_stringn_nocheck(json_string_value(v), json_string_length(v));
    } else if (json_is_integer(v)) {
        out = json_integer(json_integer_value(v));
    } else if (json_is_real(v)) {
        out = json_real(json_real_value(v));
    } else {
        out = json_incref((json_t *)v);
    }
    if (!out)
        return nomem(b);
    if (!rec_node(b, out, m)) {
        json_decref(out);
        return NULL;
    }
    return out;
}

static const char *TAG_STR = "tag:yaml.org,2002:str";
static const char *TAG_INT = "tag:yaml.org,2002:int";
static const char *TAG_FLOAT = "tag:yaml.org,2002:float";
static const char *TAG_BOOL = "tag:yaml.org,2002:bool";
static const char *TAG_NULL = "tag:yaml.org,2002:null";
static const char *TAG_MAP = "tag:yaml.org,2002:map";
static const char *TAG_SEQ = "tag:yaml.org,2002:seq";

static void show_tag(char *out, size_t cap, const char *tag)
{
    if (strncmp(tag, "tag:yaml.org,2002:", 18) == 0)
        snprintf(out, cap, "!!%.60s", tag + 18);
    else
        snprintf(out, cap, "%.60s", tag);
}

static json_t *scalar(builder *b, const yev *ev)
{
    const char *v = ev->val ? ev->val : "";
    size_t n = ev->len;
    if (n > b->o.max_scalar) {
        B_ERR(b, &ev->m, "a value is longer than %zu bytes", b->o.max_scalar);
        return NULL;
    }
    if (memchr(v, '\0', n)) {
        B_ERR(b, &ev->m, "a string contains a NUL character");
        return NULL;
    }
    const char *why = NULL;
    json_t *out;
    if (ev->tag && strcmp(ev->tag, "!") != 0 && strcmp(ev->tag, TAG_STR) != 0) {
        int want = strcmp(ev->tag, TAG_INT) == 0 ? 1 : strcmp(ev->tag, TAG_FLOAT) == 0 ? 2
                 : strcmp(ev->tag, TAG_BOOL) == 0 ? 3 : strcmp(ev->tag, TAG_NULL) == 0 ? 4 : 0;
        char t[80];
        show_tag(t, sizeof t, ev->tag);
        if (!want) {
            B_ERR(b, &ev->m, "the tag %s is not supported", t);
            return NULL;
        }
        int k = plain_kind(v, n);
        bool fits = (want == 1 && (k == K_INT || k == K_HEX || k == K_OCT)) ||
                    (want == 2 && (k == K_FLOAT || k == K_INT)) || (want == 3 && (k == K_TRUE || k == K_FALSE)) ||
                    (want == 4 && k == K_NULL);
        if (!fits) {
            B_ERR(b, &ev->m, "'%.60s' is not a valid %s", v, t);
            return NULL;
        }
        out = plain_value(v, n, want == 2 ? K_FLOAT : k, &why);
    } else if (ev->plain) {
        out = plain_value(v, n, plain_kind(v, n), &why);
    } else {
        out = json_stringn(v, n);
        if (!out)
            why = "not UTF-8";
    }
    if (!out) {
        if (why && strcmp(why, "out of range") == 0)
            B_ERR(b, &ev->m, "the number %.60s is out of range (quote it to keep it as text)", v);
        else if (why && strcmp(why, "no JSON form") == 0)
            B_ERR(b, &ev->m, "%.20s has no JSON form; quote it to keep it as text", v);
        else if (why)
            B_ERR(b, &ev->m, "a string is not valid UTF-8");
        else
            return nomem(b);
        return NULL;
    }
    if (!rec_node(b, out, &ev->m)) {
        json_decref(out);
        return NULL;
    }
    return out;
}

static json_t *build(builder *b, int depth, int *height);
static bool skip_value(builder *b, int depth, yjson_skip_fn cb, void *ctx);

static json_t *alias_value(builder *b, const yev *ev, int depth, int *height)
{
    anchor *a = anchor_find(b, ev->val);
    if (!a) {
        B_ERR(b, &ev->m, "the alias *%.60s has no anchor before it", ev->val);
        return NULL;
    }
    if (!a->val) {
        B_ERR(b, &ev->m, "the alias *%.60s refers to the value it is inside (recursive data has no JSON form)",
              ev->val);
        return NULL;
    }
    if (depth + a->height > b->o.max_depth) {
        B_ERR(b, &ev->m, "the YAML nests deeper than %d levels", b->o.max_depth);
        return NULL;
    }
    if (!count_node(b, &ev->m, a->nodes ? a->nodes : 1))
        return NULL;
    *height = a->height;
    mark m = ev->m;
    return copy_value(b, a->val, &m);
}

/* Adds the merge source v (a mapping or a list of mappings) to merges. */
static bool add_merge(builder *b, json_t *merges, json_t *v, const mark *m)
{
    if (json_is_object(v))
        return json_array_append(merges, v) == 0 || (nomem(b), false);
    if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++) {
            json_t *x = json_array_get(v, i);
            if (!json_is_object(x)) {
                B_ERR(b, m, "a merge key (<<) takes a mapping or a list of mappings");
                return false;
            }
            if (json_array_append(merges, x))
                return nomem(b), false;
        }
        return true;
    }
    B_ERR(b, m, "a merge key (<<) takes a mapping or a list of mappings");
    return false;
}

static bool apply_merges(builder *b, json_t *obj, json_t *merges)
{
    for (size_t i = 0; i < json_array_size(merges); i++) {
        json_t *src = json_array_get(merges, i);
        const char *k;
        size_t klen;
        json_t *x;
        json_object_keylen_foreach(src, k, klen, x) {
            if (json_object_getn(obj, k, klen))
                continue;
            if (json_object_setn_nocheck(obj, k, klen, x))
                return nomem(b), false;
            uint64_t sub = key_sub(k, klen);
            pent *from = b->pos ? pos_find(b->pos, src, sub) : NULL;
            if (from) {
                pent copy = *from;
                pent *to = pos_put(b->pos, obj, sub);
                if (!to)
                    return nomem(b), false;
                to->line = copy.line;
                to->col = copy.col;
                to->kline = copy.kline;
                to->kcol = copy.kcol;
            }
        }
    }
    return true;
}

static json_t *build_map(builder *b, int depth, int *height)
{
    json_t *obj = json_object(), *merges = NULL;
    if (!obj)
        return nomem(b);
    char kbuf[256];
    char *key = NULL;
    for (;;) {
        if (key != kbuf)
            free(key);
        key = NULL;
        if (!src_next(&b->src, b->e))
            goto fail;
        const yev *ev = &b->src.ev;
        if (ev->type == EV_MAP_END)
            break;
        mark km = ev->m;
        size_t klen = 0;
        bool merge = false;
        if (ev->type == EV_SCALAR) {
            if (memchr(ev->val, '\0', ev->len)) {
                B_ERR(b, &km, "a key contains a NUL character");
                goto fail;
            }
            if (ev->tag && strcmp(ev->tag, TAG_STR) != 0 && strcmp(ev->tag, "!") != 0) {
                /* a typed key (!!int 3) is still text in JSON; other tags are refused */
                json_t *t = scalar(b, ev);
                if (!t)
                    goto fail;
                json_decref(t);
            }
            merge = ev->plain && ev->len == 2 && memcmp(ev->val, "<<", 2) == 0;
            klen = ev->len;
            if (ev->anchor) {
                json_t *s = json_stringn(ev->val, ev->len);
                bool ok = s && anchor_end(b, ev->anchor, s, 1, 0, &km);
                json_decref(s);
                if (!ok)
                    goto fail;
            }
            key = klen < sizeof kbuf ? kbuf : malloc(klen + 1);
            if (!key) {
                nomem(b);
                goto fail;
            }
            memcpy(key, ev->val, klen);
            key[klen] = '\0';
        } else if (ev->type == EV_ALIAS) {
            anchor *a = anchor_find(b, ev->val);
            if (!a || !json_is_string(a->val)) {
                B_ERR(b, &km, "a key must be text (the alias *%.60s is not)", ev->val);
                goto fail;
            }
            klen = json_string_length(a->val);
            key = klen < sizeof kbuf ? kbuf : malloc(klen + 1);
            if (!key) {
                nomem(b);
                goto fail;
            }
            memcpy(key, json_string_value(a->val), klen + 1);
        } else {
            B_ERR(b, &km, "a mapping key must be a plain value (text), not a list or a mapping");
            goto fail;
        }
        if (!src_next(&b->src, b->e))
            goto fail;
        mark vm = b->src.ev.m;
        if (b->skip_key && depth == 0 && !merge && strcmp(key, b->skip_key) == 0 && klen == strlen(b->skip_key)) {
            if (b->skip_seen) {
                char show[KEY_SHOW + 1];
                show_key(show, sizeof show, key, klen);
                B_ERR(b, &km, "the key '%s' appears twice", show);
                goto fail;
            }
            b->skip_seen = true;
            if (!skip_value(b, 1, b->o.on_skip, b->o.skip_ctx))
                goto fail;
            continue;
        }
        int h;
        json_t *v = build(b, depth + 1, &h);
        if (!v)
            goto fail;
        if (h + 1 > *height)
            *height = merge ? h : h + 1;
        if (merge) {
            if (!merges && !(merges = json_array())) {
                json_decref(v);
                nomem(b);
                goto fail;
            }
            bool ok = add_merge(b, merges, v, &vm);
            json_decref(v);
            if (!ok)
                goto fail;
            continue;
        }
        if (json_object_getn(obj, key, klen)) {
            char show[KEY_SHOW + 1];
            show_key(show, sizeof show, key, klen);
            B_ERR(b, &km, "the key '%s' appears twice", show);
            json_decref(v);
            goto fail;
        }
        if (json_object_setn_new(obj, key, klen, v)) {
            B_ERR(b, &km, "a key is not valid UTF-8");
            goto fail;
        }
        if (!rec_member(b, obj, key_sub(key, klen), &vm, &km))
            goto fail;
    }
    if (key != kbuf)
        free(key);
    if (merges && !apply_merges(b, obj, merges))
        goto fail_nokey;
    json_decref(merges);
    return obj;
fail:
    if (key != kbuf)
        free(key);
fail_nokey:
    json_decref(merges);
    json_decref(obj);
    return NULL;
}

static json_t *build_seq(builder *b, int depth, int *height)
{
    json_t *arr = json_array();
    if (!arr)
        return nomem(b);
    for (size_t i = 0;; i++) {
        if (!src_next(&b->src, b->e))
            goto fail;
        if (b->src.ev.type == EV_SEQ_END)
            break;
        mark vm = b->src.ev.m;
        int h;
        json_t *v = build(b, depth + 1, &h);
        if (!v)
            goto fail;
        if (h + 1 > *height)
            *height = h + 1;
        if (json_array_append_new(arr, v)) {
            nomem(b);
            goto fail;
        }
        if (!rec_member(b, arr, i + 1, &vm, NULL))
            goto fail;
    }
    return arr;
fail:
    json_decref(arr);
    return NULL;
}

/* Builds the value whose first event is the current one. depth: the
 * containers around it. *height: levels of containers in it. */
static json_t *build(builder *b, int depth, int *height)
{
    const yev *ev = &b->src.ev;
    *height = 0;
    if (ev->type == EV_SCALAR) {
        if (!count_node(b, &ev->m, 1))
            return NULL;
        json_t *v = scalar(b, ev);
        if (v && ev->anchor && !anchor_end(b, ev->anchor, v, 1, 0, &ev->m)) {
            json_decref(v);
            return NULL;
        }
        return v;
    }
    if (ev->type == EV_ALIAS)
        return alias_value(b, ev, depth, height);
    if (ev->type != EV_SEQ_START && ev->type != EV_MAP_START) {
        B_ERR(b, &ev->m, "a value is missing");
        return NULL;
    }
    bool map = ev->type == EV_MAP_START;
    mark m = ev->m;
    if (depth + 1 > b->o.max_depth) {
        B_ERR(b, &m, "the YAML nests deeper than %d levels", b->o.max_depth);
        return NULL;
    }
    if (ev->tag && strcmp(ev->tag, map ? TAG_MAP : TAG_SEQ) != 0 && strcmp(ev->tag, "!") != 0) {
        char t[80];
        show_tag(t, sizeof t, ev->tag);
        B_ERR(b, &m, "the tag %s is not supported here", t);
        return NULL;
    }
    if (!count_node(b, &m, 1))
        return NULL;
    char *aname = NULL;
    if (ev->anchor) {
        aname = strdup(ev->anchor);
        if (!aname || !anchor_begin(b, aname)) {
            free(aname);
            return nomem(b);
        }
    }
    size_t before = b->nodes;
    *height = 1;
    json_t *v = map ? build_map(b, depth, height) : build_seq(b, depth, height);
    if (v && !rec_node(b, v, &m)) {
        json_decref(v);
        v = NULL;
    }
    if (v && aname && !anchor_end(b, aname, v, b->nodes - before + 1, *height, &m)) {
        json_decref(v);
        v = NULL;
    }
    free(aname);
    return v;
}

/* Walks the value whose first event is the current one without building
 * it (anchored values inside are built and registered). depth: the
 * containers around it, for the depth cap of what is built. */
static bool skip_value(builder *b, int depth, yjson_skip_fn cb, void *ctx)
{
    int d = 0;
    for (;;) {
        const yev *ev = &b->src.ev;
        yjson_event out = { .depth = d, .line = clampi(ev->m.line + 1), .col = clampi(ev->m.col + 1) };
        if (ev->anchor && (ev->type == EV_SCALAR || ev->type == EV_SEQ_START || ev->type == EV_MAP_START)) {
            out.type = ev->type == EV_SCALAR ? YJ_SCALAR : ev->type == EV_SEQ_START ? YJ_SEQ_START : YJ_MAP_START;
            out.anchored = true;
            int h;
            json_t *v = build(b, depth + d, &h);
            if (!v)
                return false;
            json_decref(v);
            if (cb)
                cb(ctx, &out);
            if (d == 0)
                return true;
        } else {
            switch (ev->type) {
            case EV_SCALAR:
            case EV_ALIAS:
                out.type = ev->type == EV_SCALAR ? YJ_SCALAR : YJ_ALIAS;
                out.value = ev->val;
                out.len = ev->len;
                out.plain = ev->plain;
                out.tagged = ev->tag != NULL;
                if (cb)
                    cb(ctx, &out);
                if (d == 0)
                    return true;
                break;
            case EV_SEQ_START:
            case EV_MAP_START:
                /* the same bound as build(): it also stops libyaml early, whose
                 * scanner is quadratic in the nesting of flow collections */
                if (depth + d + 1 > b->o.max_depth) {
                    B_ERR(b, &ev->m, "the YAML nests deeper than %d levels", b->o.max_depth);
                    return false;
                }
                out.type = ev->type == EV_SEQ_START ? YJ_SEQ_START : YJ_MAP_START;
                if (cb)
                    cb(ctx, &out);
                d++;
                break;
            case EV_SEQ_END:
            case EV_MAP_END:
                d--;
                out.depth = d;
                out.type = ev->type == EV_SEQ_END ? YJ_SEQ_END : YJ_MAP_END;
                if (cb)
                    cb(ctx, &out);
                if (d <= 0)
                    return true;
                break;
            default:
                B_ERR(b, &ev->m, "a value is missing");
                return false;
            }
        }
        if (!src_next(&b->src, b->e))
            return false;
    }
}

static void opts_fill(yjson_opts *o, const yjson_opts *in)
{
    if (in)
        *o = *in;
    else
        memset(o, 0, sizeof *o);
    if (o->max_depth <= 0)
        o->max_depth = YJSON_DEPTH_DEFAULT;
    if (!o->max_nodes)
        o->max_nodes = YJSON_NODES_DEFAULT;
    if (!o->max_anchor_nodes)
        o->max_anchor_nodes = YJSON_ANCHOR_NODES_DEFAULT;
    if (!o->max_scalar)
        o->max_scalar = YJSON_SCALAR_DEFAULT;
}

static void builder_free(builder *b)
{
    anchors_free(b);
    src_free(&b->src);
}

static bool expect(builder *b, int type, const char *what)
{
    if (!src_next(&b->src, b->e))
        return false;
    if (b->src.ev.type != type) {
        B_ERR(b, &b->src.ev.m, "%s", what);
        return false;
    }
    return true;
}

/* Reads one whole document into d->root. */
static bool read_doc(builder *b, yjson_doc *d)
{
    if (!expect(b, EV_STREAM_START, "the input does not start a YAML stream"))
        return false;
    if (!src_next(&b->src, b->e))
        return false;
    if (b->src.ev.type == EV_STREAM_END) {
        d->root = json_null();
        return true;
    }
    if (b->src.ev.type != EV_DOC_START) {
        B_ERR(b, &b->src.ev.m, "a YAML document is missing");
        return false;
    }
    if (!src_next(&b->src, b->e))
        return false;
    int h;
    json_t *root = build(b, 0, &h);
    if (!root)
        return false;
    d->root = root;
    if (!expect(b, EV_DOC_END, "the YAML document does not end"))
        return false;
    if (!src_next(&b->src, b->e))
        return false;
    if (b->src.ev.type == EV_DOC_START) {
        mark at = b->src.ev.m;
        if (src_next(&b->src, b->e))
            at = b->src.ev.m;
        B_ERR(b, &at, "more than one YAML document (only one is read)");
        return false;
    }
    if (b->src.ev.type != EV_STREAM_END) {
        B_ERR(b, &b->src.ev.m, "the YAML stream does not end");
        return false;
    }
    return true;
}

static yjson_doc *parse_with(bool json, FILE *f, long start, const char *text, size_t len, const yjson_opts *o,
                             yjson_error *e, bool *syntax)
{
    builder b;
    memset(&b, 0, sizeof b);
    opts_fill(&b.o, o);
    b.e = e;
    b.skip_key = b.o.skip_key;
    *syntax = false;
    yjson_doc *d = calloc(1, sizeof *d);
    if (!d) {
        seterr(e, (size_t)-1, 0, 0, "out of memory");
        return NULL;
    }
    d->backend = json ? YJSON_JSON : YJSON_YAML;
    b.pos = &d->pos;
    d->pos.gen = 1;
    if (f)
        fseek(f, start, SEEK_SET); /* an unseekable input is read once (no retry) */
    if (!src_init(&b.src, json, f, text, len, b.o.max_scalar)) {
        seterr(e, (size_t)-1, 0, 0, "out of memory");
        builder_free(&b);
        yjson_free(d);
        return NULL;
    }
    bool ok = read_doc(&b, d);
    *syntax = !ok && b.src.syntax;
    builder_free(&b);
    if (!ok) {
        yjson_free(d);
        return NULL;
    }
    return d;
}

/* Whether the first significant character of text is '{' or '['. */
static bool looks_json_text(const char *t, size_t n)
{
    size_t i = 0;
    if (n >= 3 && (unsigned char)t[0] == 0xef && (unsigned char)t[1] == 0xbb && (unsigned char)t[2] == 0xbf)
        i = 3;
    while (i < n && (t[i] == ' ' || t[i] == '\t' || t[i] == '\n' || t[i] == '\r'))
        i++;
    return i < n && (t[i] == '{' || t[i] == '[');
}

static bool looks_json_file(FILE *f, long start)
{
    char head[4096];
    if (fseek(f, start, SEEK_SET) != 0)
        return false;
    size_t n = fread(head, 1, sizeof head, f);
    bool r = false;
    size_t i = 0;
    if (n >= 3 && (unsigned char)head[0] == 0xef && (unsigned char)head[1] == 0xbb && (unsigned char)head[2] == 0xbf)
        i = 3;
    while (i < n && (head[i] == ' ' || head[i] == '\t' || head[i] == '\n' || head[i] == '\r'))
        i++;
    if (i < n)
        r = head[i] == '{' || head[i] == '[';
    fseek(f, start, SEEK_SET);
    return r;
}

static yjson_doc *parse_any(FILE *f, const char *text, size_t len, const yjson_opts *o, yjson_error *e)
{
    yjson_error tmp;
    if (!e)
        e = &tmp;
    memset(e, 0, sizeof *e);
    yjson_backend be = o ? o->backend : YJSON_AUTO;
    long start = f ? ftell(f) : 0;
    if (f && start < 0)
        start = 0;
    bool syntax = false;
    if (be == YJSON_JSON || (be == YJSON_AUTO && (f ? looks_json_file(f, start) : looks_json_text(text, len)))) {
        yjson_doc *d = parse_with(true, f, start, text, len, o, e, &syntax);
        if (d || be == YJSON_JSON || !syntax)
            return d;
        if (o && o->on_skip) {
            yjson_event reset = { .type = YJ_RESET };
            o->on_skip(o->skip_ctx, &reset);
        }
        memset(e, 0, sizeof *e);
    }
    return parse_with(false, f, start, text, len, o, e, &syntax);
}

yjson_doc *yjson_parse_string(const char *text, size_t len, const yjson_opts *opts, yjson_error *e)
{
    return parse_any(NULL, text ? text : "", text ? len : 0, opts, e);
}

yjson_doc *yjson_parse_file(FILE *f, const yjson_opts *opts, yjson_error *e)
{
    if (!f) {
        seterr(e, (size_t)-1, 0, 0, "no file");
        return NULL;
    }
    return parse_any(f, NULL, 0, opts, e);
}

json_t *yjson_root(const yjson_doc *d) { return d ? d->root : NULL; }
yjson_backend yjson_doc_backend(const yjson_doc *d) { return d ? d->backend : YJSON_AUTO; }

void yjson_free(yjson_doc *d)
{
    if (!d)
        return;
    json_decref(d->root);
    pos_free(&d->pos);
    free(d);
}

static bool out_pos(const pent *p, bool key, int *line, int *col)
{
    if (!p)
        return false;
    if (line)
        *line = key ? p->kline : p->line;
    if (col)
        *col = key ? p->kcol : p->col;
    return (key ? p->kline : p->line) > 0;
}

bool yjson_pos(const yjson_doc *d, const json_t *node, int *line, int *col)
{
    if (!d || !node || shared(node))
        return false;
    return out_pos(pos_find(&d->pos, node, 0), false, line, col);
}

bool yjson_member_pos(const yjson_doc *d, const json_t *obj, const char *key, int *line, int *col)
{
    if (!d || !json_is_object(obj) || !key)
        return false;
    return out_pos(pos_find(&d->pos, obj, key_sub(key, strlen(key))), false, line, col);
}

bool yjson_key_pos(const yjson_doc *d, const json_t *obj, const char *key, int *line, int *col)
{
    if (!d || !json_is_object(obj) || !key)
        return false;
    return out_pos(pos_find(&d->pos, obj, key_sub(key, strlen(key))), true, line, col);
}

bool yjson_item_pos(const yjson_doc *d, const json_t *arr, size_t i, int *line, int *col)
{
    if (!d || !json_is_array(arr))
        return false;
    return out_pos(pos_find(&d->pos, arr, (uint64_t)i + 1), false, line, col);
}

bool yjson_scalar_span(const yjson_doc *d, const json_t *node, yjson_span *out)
{
    if (!d || !node || shared(node))
        return false;
    const pent *p = pos_find(&d->pos, node, 0);
    if (!p)
        return false;
    out->start = p->start;
    out->end = p->end;
    out->style = (yjson_style)p->style;
    return true;
}

/* ---- streaming ---- */

enum { ST_ITEMS, ST_ALIAS_ITEMS, ST_SINGLE, ST_END };

struct yjson_stream {
    builder b;
    yjson_doc doc;
    int state;
    json_t *pending;       /* ST_ALIAS_ITEMS: the list; ST_SINGLE: the item */
    size_t next_i;
    int list_line, list_col;
};

/* Checks the whole of f as JSON syntax without building anything. */
static bool json_valid_file(FILE *f, long start)
{
    source s;
    if (fseek(f, start, SEEK_SET) != 0 || !src_init(&s, true, f, NULL, 0, YJSON_SCALAR_DEFAULT))
        return false;
    yjson_error e;
    bool ok = true;
    for (;;) {
        if (!src_next(&s, &e)) {
            ok = false;
            break;
        }
        if (s.ev.type == EV_STREAM_END)
            break;
    }
    src_free(&s);
    fseek(f, start, SEEK_SET);
    return ok;
}

/* Positions the stream at the first item (or at its end). */
static bool stream_start(yjson_stream *s, const char *key)
{
    builder *b = &s->b;
    if (!expect(b, EV_STREAM_START, "the input does not start a YAML stream"))
        return false;
    if (!src_next(&b->src, b->e))
        return false;
    if (b->src.ev.type == EV_STREAM_END) {
        s->state = ST_END;
        return true;
    }
    if (b->src.ev.type != EV_DOC_START) {
        B_ERR(b, &b->src.ev.m, "a YAML document is missing");
        return false;
    }
    if (!src_next(&b->src, b->e))
        return false;
    const yev *ev = &b->src.ev;
    if (!key) {
        s->list_line = clampi(ev->m.line + 1);
        s->list_col = clampi(ev->m.col + 1);
        if (ev->type == EV_SEQ_START && !ev->anchor) {
            s->state = ST_ITEMS;
            return true;
        }
        int h;
        json_t *v = build(b, 0, &h);
        if (!v)
            return false;
        if (json_is_null(v)) {
            json_decref(v);
            s->state = ST_END;
        } else if (json_is_array(v)) {
            s->pending = v;
            s->state = ST_ALIAS_ITEMS;
        } else if (json_is_object(v)) {
            s->pending = v;
            s->state = ST_SINGLE;
        } else {
            json_decref(v);
            B_ERR(b, &b->src.ev.m, "the document must be a list (or one mapping)");
            return false;
        }
        return true;
    }
    if (ev->type != EV_MAP_START) {
        if (ev->type == EV_SCALAR && ev->plain && plain_kind(ev->val, ev->len) == K_NULL) {
            s->state = ST_END;
            return true;
        }
        B_ERR(b, &ev->m, "the document must be a mapping of keys");
        return false;
    }
    for (;;) {
        if (!src_next(&b->src, b->e))
            return false;
        ev = &b->src.ev;
        if (ev->type == EV_MAP_END) {
            s->state = ST_END;
            return true;
        }
        bool match = false;
        if (ev->type == EV_SCALAR) {
            match = ev->len == strlen(key) && memcmp(ev->val, key, ev->len) == 0;
        } else if (ev->type != EV_ALIAS) {
            B_ERR(b, &ev->m, "a mapping key must be a plain value (text), not a list or a mapping");
            return false;
        }
        if (!src_next(&b->src, b->e))
            return false;
        ev = &b->src.ev;
        if (!match) {
            if (!skip_value(b, 1, NULL, NULL))
                return false;
            continue;
        }
        s->list_line = clampi(ev->m.line + 1);
        s->list_col = clampi(ev->m.col + 1);
        if (ev->type == EV_SEQ_START && !ev->anchor) {
            s->state = ST_ITEMS;
            return true;
        }
        int h;
        json_t *v = build(b, 1, &h);
        if (!v)
            return false;
        if (json_is_array(v)) {
            s->pending = v;
            s->state = ST_ALIAS_ITEMS;
            return true;
        }
        bool null = json_is_null(v);
        json_decref(v);
        if (null) {
            s->state = ST_END;
            return true;
        }
        seterr(b->e, (size_t)s->list_line - 1, (size_t)s->list_col - 1, 0, "'%.60s' must be a list", key);
        return false;
    }
}

yjson_stream *yjson_stream_open(FILE *f, const char *key, const yjson_opts *opts, yjson_error *e)
{
    yjson_error tmp;
    if (!e)
        e = &tmp;
    memset(e, 0, sizeof *e);
    if (!f) {
        seterr(e, (size_t)-1, 0, 0, "no file");
        return NULL;
    }
    yjson_stream *s = calloc(1, sizeof *s);
    if (!s) {
        seterr(e, (size_t)-1, 0, 0, "out of memory");
        return NULL;
    }
    builder *b = &s->b;
    opts_fill(&b->o, opts);
    b->o.skip_key = NULL;
    b->e = e;
    b->streaming = true;
    b->pos = &s->doc.pos;
    s->doc.pos.gen = 1;
    long start = ftell(f);
    if (start < 0)
        start = 0;
    bool json = b->o.backend == YJSON_JSON ||
                (b->o.backend == YJSON_AUTO && looks_json_file(f, start) && json_valid_file(f, start));
    s->doc.backend = json ? YJSON_JSON : YJSON_YAML;
    fseek(f, start, SEEK_SET);
    if (!src_init(&b->src, json, f, NULL, 0, b->o.max_scalar)) {
        seterr(e, (size_t)-1, 0, 0, "out of memory");
        yjson_stream_close(s);
        return NULL;
    }
    if (!stream_start(s, key)) {
        yjson_stream_close(s);
        return NULL;
    }
    return s;
}

int yjson_stream_next(yjson_stream *s, json_t **item, yjson_error *e)
{
    yjson_error tmp;
    *item = NULL;
    if (!s)
        return 0;
    builder *b = &s->b;
    b->e = e ? e : &tmp;
    if (s->state != ST_SINGLE)
        pos_clear(&s->doc.pos); /* the single item keeps the positions recorded when it was built */
    b->nodes = 0;
    switch (s->state) {
    case ST_ITEMS: {
        if (!src_next(&b->src, b->e)) {
            s->state = ST_END;
            return -1;
        }
        if (b->src.ev.type == EV_SEQ_END) {
            s->state = ST_END;
            return 0;
        }
        int h;
        json_t *v = build(b, 2, &h);
        if (!v) {
            s->state = ST_END;
            return -1;
        }
        *item = v;
        return 1;
    }
    case ST_ALIAS_ITEMS: {
        if (s->next_i >= json_array_size(s->pending)) {
            s->state = ST_END;
            return 0;
        }
        json_t *v = json_array_get(s->pending, s->next_i++);
        mark m = { .line = (size_t)(s->list_line > 0 ? s->list_line - 1 : 0),
                   .col = (size_t)(s->list_col > 0 ? s->list_col - 1 : 0) };
        json_t *c = copy_value(b, v, &m);
        if (!c) {
            s->state = ST_END;
            return -1;
        }
        *item = c;
        return 1;
    }
    case ST_SINGLE: {
        *item = s->pending;
        s->pending = NULL;
        s->state = ST_END;
        return 1;
    }
    default:
        return 0;
    }
}

const yjson_doc *yjson_stream_doc(const yjson_stream *s) { return s ? &s->doc : NULL; }
yjson_backend yjson_stream_backend(const yjson_stream *s) { return s ? s->doc.backend : YJSON_AUTO; }

void yjson_stream_list_pos(const yjson_stream *s, int *line, int *col)
{
    if (line)
        *line = s ? s->list_line : 0;
    if (col)
        *col = s ? s->list_col : 0;
}

void yjson_stream_close(yjson_stream *s)
{
    if (!s)
        return;
    builder_free(&s->b);
    json_decref(s->pending);
    pos_free(&s->doc.pos);
    free(s);
}
