/*
 * template.c - the prompt template engine (a strict mustache subset, see
 * template.h for the syntax and docs/internals/template.md for the design).
 *
 * Compiling is one forward pass over the source: memmem finds the next
 * "{{", the tag is classified by its sigil, its name is checked and split
 * into dot-separated segments, and standalone tags (a section, inverted,
 * closing, comment or partial tag alone on its line) drop their line. The
 * result is a flat array of ops - TEXT, VAR, SECTION, INVERTED, END,
 * PARTIAL - where a section and its END point at each other, plus the
 * segments of every name (pointer and length) and a pool holding the text
 * and the names, all in ONE allocation. Adjacent texts (around a comment)
 * are merged into one op.
 *
 * Rendering walks the ops with a context stack of JSON values on the C
 * stack (bounded: sections nest at most TPL_MAX_SECTIONS deep per template,
 * partials TPL_MAX_DEPTH deep), recursing once per section body and per
 * partial. A name's first segment is looked up with json_object_getn from
 * the innermost context outward, the rest inside what was found, as
 * mustache does. Nothing is allocated but the output buffer's growth,
 * except on the error path (the set of missing names). After the first
 * missing variable (strict mode) the walk goes on without writing, to
 * collect every missing name. A step budget bounds the work of nested
 * sections over long lists whatever the output.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include "core/jscan.h"
#include "prompt/template.h"

enum { OP_TEXT, OP_VAR, OP_SECTION, OP_INVERTED, OP_END, OP_PARTIAL };

enum {
    F_LINE_START = 1, /* the op starts a source line: an indented partial indents here */
    F_DOT = 2,        /* the name is ".", the current context */
    F_STANDALONE = 4, /* a partial alone on its line: its indentation applies to it */
};

#define NAME_MAX_LEN 255                   /* bytes in a tag's name */
#define SRC_MAX ((size_t)1 << 30)          /* bytes in a template */
#define RENDER_MAX_STEPS 4000000u          /* ops executed in one render */
#define CTX_MAX ((TPL_MAX_DEPTH + 1) * TPL_MAX_SECTIONS + 1)

typedef struct seg {
    const char *p;
    size_t len;
} seg;

typedef struct op {
    uint8_t kind, flags;
    uint16_t nseg;
    uint32_t jump;       /* SECTION/INVERTED: index of its END; END: index of its opener */
    uint32_t line, col;  /* where the op starts in the source */
    uint32_t indent_len;
    size_t len;          /* TEXT: bytes; others: name length */
    const char *s;       /* TEXT: bytes; others: the name, NUL-terminated */
    const seg *seg;      /* the name's segments */
    const char *indent;  /* standalone PARTIAL: the whitespace before the tag */
} op;

struct tpl {
    size_t nops;
    const op *ops;
};

/* ---- small helpers ------------------------------------------------------- */

static bool name_byte(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

static bool partial_byte(unsigned char c)
{
    return name_byte(c) || c == '.' || c == '/' || c == '@' || c == ':';
}

static bool sp(char c) { return c == ' ' || c == '\t'; }

/* Describes byte c for a message: ' ', 'x', '\n', or byte 0x01. */
static void byte_desc(unsigned char c, char *out, size_t n)
{
    if (c == '\n' || c == '\t' || c == '\r')
        snprintf(out, n, "'\\%c'", c == '\n' ? 'n' : c == '\t' ? 't' : 'r');
    else if (c >= 0x20 && c < 0x7f)
        snprintf(out, n, "'%c'", c);
    else
        snprintf(out, n, "byte 0x%02x", c);
}

/* 1-based line and byte column of pos in src (error path only: scans from 0). */
static void line_col(const char *src, size_t pos, int *line, int *col)
{
    size_t l = 1, ls = 0;
    const char *s = src, *end = src + pos, *nl;
    while (s < end && (nl = memchr(s, '\n', (size_t)(end - s))) != NULL) {
        l++;
        ls = (size_t)(nl - src) + 1;
        s = nl + 1;
    }
    *line = l > INT32_MAX ? INT32_MAX : (int)l;
    *col = pos - ls + 1 > INT32_MAX ? INT32_MAX : (int)(pos - ls + 1);
}


/* Copies at most n-1 bytes of s[0..len) into out, NUL-terminated. */
static void copy_trunc(char *out, size_t n, const char *s, size_t len)
{
    if (len > n - 1)
        len = n - 1;
    if (len)
        memcpy(out, s, len);
    out[len] = '\0';
}

static void err_clear(tpl_error *e)
{
    e->line = e->col = 0;
    e->partial[0] = e->message[0] = e->missing[0] = '\0';
}

/* ---- compiling ------------------------------------------------------------ */

/* An op under construction: offsets into the pool and the segment list,
 * turned into pointers when the template is assembled. */
typedef struct cop {
    uint8_t kind, flags;
    uint16_t nseg;
    uint32_t jump, line, col, indent_len;
    size_t len, s, seg, indent;
} cop;

typedef struct cseg {
    size_t off, len;
} cseg;

typedef struct comp {
    const char *src;
    size_t len;
    tpl_error *e;
    cop *ops;
    size_t nops, capops;
    cseg *segs;
    size_t nsegs, capsegs;
    buf pool;
    size_t lpos, line, line_start; /* incremental line counter for op positions */
    size_t open[TPL_MAX_SECTIONS];
    size_t nopen;
} comp;

/* Fills e with a compile error at source position pos. Returns ERR_PARSE. */
static err_code PRINTF_LIKE(3, 4) cerr(comp *c, size_t pos, const char *fmt, ...)
{
    tpl_error *e = c->e;
    err_clear(e);
    line_col(c->src, pos, &e->line, &e->col);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    return ERR_PARSE;
}

static err_code nomem(comp *c)
{
    err_clear(c->e);
    snprintf(c->e->message, sizeof c->e->message, "out of memory");
    return ERR_NOMEM;
}

/* Line and column of pos; positions must come in increasing order. */
static void where(comp *c, size_t pos, uint32_t *line, uint32_t *col)
{
    const char *s = c->src + c->lpos, *end = c->src + pos, *nl;
    while (s < end && (nl = memchr(s, '\n', (size_t)(end - s))) != NULL) {
        c->line++;
        c->line_start = (size_t)(nl - c->src) + 1;
        s = nl + 1;
    }
    c->lpos = pos;
    *line = (uint32_t)c->line;
    *col = (uint32_t)(pos - c->line_start + 1);
}

static bool at_line_start(const comp *c, size_t pos) { return pos == 0 || c->src[pos - 1] == '\n'; }

static cop *new_op(comp *c, int kind, size_t pos)
{
    if (c->nops == c->capops) {
        size_t cap = c->capops ? c->capops * 2 : 32;
        cop *n = realloc(c->ops, cap * sizeof *n);
        if (!n)
            return NULL;
        c->ops = n;
        c->capops = cap;
    }
    cop *o = &c->ops[c->nops++];
    memset(o, 0, sizeof *o);
    o->kind = (uint8_t)kind;
    where(c, pos, &o->line, &o->col);
    if (at_line_start(c, pos))
        o->flags |= F_LINE_START;
    return o;
}

/* Appends src[from..to) as text, merged into the previous op when that is
 * text ending where the pool ends (only a comment lay between). */
static err_code add_text(comp *c, size_t from, size_t to)
{
    if (from >= to)
        return ERR_OK;
    cop *last = c->nops ? &c->ops[c->nops - 1] : NULL;
    if (last && last->kind == OP_TEXT && last->s + last->len == c->pool.len) {
        if (buf_append(&c->pool, c->src + from, to - from))
            return nomem(c);
        last->len += to - from;
        return ERR_OK;
    }
    cop *o = new_op(c, OP_TEXT, from);
    if (!o)
        return nomem(c);
    o->s = c->pool.len;
    o->len = to - from;
    if (buf_append(&c->pool, c->src + from, to - from))
        return nomem(c);
    return ERR_OK;
}

/* Checks a name at src[p..p+n) (a variable/section name, or a partial's
 * when partial) and reports the first bad byte or empty segment. */
static err_code check_name(comp *c, size_t tag, size_t p, size_t n, bool partial)
{
    const char *s = c->src + p;
    char d[32];
    if (n == 0)
        return cerr(c, tag, "empty tag name");
    if (n > NAME_MAX_LEN)
        return cerr(c, p, "name longer than %d bytes", NAME_MAX_LEN);
    if (partial) {
        for (size_t i = 0; i < n; i++)
            if (!partial_byte((unsigned char)s[i])) {
                byte_desc((unsigned char)s[i], d, sizeof d);
                return cerr(c, p + i, "invalid character %s in partial name '%.*s'", d, (int)n, s);
            }
        return ERR_OK;
    }
    if (n == 1 && s[0] == '.')
        return ERR_OK;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '.') {
            if (i == 0 || s[i - 1] == '.' || i + 1 == n)
                return cerr(c, p + i, "empty segment in name '%.*s'", (int)n, s);
        } else if (!name_byte((unsigned char)s[i])) {
            byte_desc((unsigned char)s[i], d, sizeof d);
            return cerr(c, p + i, "invalid character %s in name '%.*s'", d, (int)n, s);
        }
    }
    return ERR_OK;
}

/* Stores a checked name in the pool (NUL-terminated) and its segments. */
static err_code set_name(comp *c, cop *o, size_t p, size_t n, bool partial)
{
    const char *s = c->src + p;
    o->s = c->pool.len;
    o->len = n;
    if (buf_append(&c->pool, s, n) || buf_append(&c->pool, "", 1))
        return nomem(c);
    if (partial)
        return ERR_OK;
    if (n == 1 && s[0] == '.') {
        o->flags |= F_DOT;
        return ERR_OK;
    }
    o->seg = c->nsegs;
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && s[i] != '.')
            continue;
        if (c->nsegs == c->capsegs) {
            size_t cap = c->capsegs ? c->capsegs * 2 : 32;
            cseg *ns = realloc(c->segs, cap * sizeof *ns);
            if (!ns)
                return nomem(c);
            c->segs = ns;
            c->capsegs = cap;
        }
        c->segs[c->nsegs++] = (cseg){ o->s + start, i - start };
        o->nseg++;
        start = i + 1;
    }
    return ERR_OK;
}

/* Turns the ops, segments and pool into one allocation. */
static tpl *assemble(comp *c)
{
    size_t head = (sizeof(tpl) + 15) & ~(size_t)15;
    size_t ops_sz = c->nops * sizeof(op);
    size_t segs_sz = c->nsegs * sizeof(seg);
    size_t total = head + ops_sz + segs_sz + c->pool.len + 1;
    tpl *t = malloc(total);
    if (!t)
        return NULL;
    op *ops = (op *)((char *)t + head);
    seg *segs = (seg *)((char *)ops + ops_sz);
    char *pool = (char *)segs + segs_sz;
    if (c->pool.len)
        memcpy(pool, c->pool.p, c->pool.len);
    pool[c->pool.len] = '\0';
    for (size_t i = 0; i < c->nsegs; i++)
        segs[i] = (seg){ pool + c->segs[i].off, c->segs[i].len };
    for (size_t i = 0; i < c->nops; i++) {
        const cop *s = &c->ops[i];
        ops[i] = (op){ .kind = s->kind,
                       .flags = s->flags,
                       .nseg = s->nseg,
                       .jump = s->jump,
                       .line = s->line,
                       .col = s->col,
                       .indent_len = s->indent_len,
                       .len = s->len,
                       .s = pool + s->s,
                       .seg = s->nseg ? segs + s->seg : NULL,
                       .indent = pool + s->indent };
    }
    t->nops = c->nops;
    t->ops = ops;
    return t;
}

/* Parses the tag that starts at src[p] ("{{"). Sets *next to where the
 * text after it starts (past its line when it is standalone). */
static err_code tag(comp *c, size_t p, size_t *text_start)
{
    const char *src = c->src;
    size_t len = c->len;
    bool triple = p + 2 < len && src[p + 2] == '{';
    size_t c0 = p + (triple ? 3 : 2);
    const char *close = triple ? "}}}" : "}}";
    size_t closelen = triple ? 3 : 2;
    const char *q = memmem(src + c0, len - c0, close, closelen);
    if (!q)
        return cerr(c, p, triple ? "unclosed tag: '{{{' without '}}}'" : "unclosed tag: '{{' without '}}'");
    size_t c1 = (size_t)(q - src), end = c1 + closelen;

    int kind = OP_VAR;
    bool comment = false;
    if (!triple && c0 < c1) {
        switch (src[c0]) {
        case '#': kind = OP_SECTION; c0++; break;
        case '^': kind = OP_INVERTED; c0++; break;
        case '/': kind = OP_END; c0++; break;
        case '>': kind = OP_PARTIAL; c0++; break;
        case '&': c0++; break;
        case '!': comment = true; break;
        case '=':
            return cerr(c, p, "set-delimiter tags ({{=...=}}) are not supported");
        case '<':
        case '$':
            return cerr(c, p, "template inheritance tags ({{<...}}, {{$...}}) are not supported");
        default: break;
        }
    }
    while (c0 < c1 && sp(src[c0]))
        c0++;
    while (c1 > c0 && sp(src[c1 - 1]))
        c1--;

    /* Standalone: a block tag with only spaces and tabs around it on its line. */
    size_t ls = p, le = end;
    bool standalone = false;
    if (comment || kind == OP_SECTION || kind == OP_INVERTED || kind == OP_END || kind == OP_PARTIAL) {
        while (ls > *text_start && sp(src[ls - 1]))
            ls--;
        if (ls == 0 || src[ls - 1] == '\n') {
            while (le < len && sp(src[le]))
                le++;
            if (le == len)
                standalone = true;
            else if (src[le] == '\n')
                standalone = true, le++;
            else if (src[le] == '\r' && le + 1 < len && src[le + 1] == '\n')
                standalone = true, le += 2;
        }
    }
    if (!comment) {
        err_code rc = check_name(c, p, c0, c1 - c0, kind == OP_PARTIAL);
        if (rc)
            return rc;
    }
    err_code rc = add_text(c, *text_start, standalone ? ls : p);
    if (rc)
        return rc;
    *text_start = standalone ? le : end;
    if (comment)
        return ERR_OK;

    if ((kind == OP_SECTION || kind == OP_INVERTED) && c->nopen == TPL_MAX_SECTIONS)
        return cerr(c, p, "sections nested deeper than %d", TPL_MAX_SECTIONS);
    if (kind == OP_END) {
        if (!c->nopen)
            return cerr(c, p, "closing tag '%.*s' without an open section", (int)(c1 - c0), src + c0);
        const cop *open = &c->ops[c->open[c->nopen - 1]];
        const char *oname = c->pool.p + open->s;
        if (open->len != c1 - c0 || memcmp(oname, src + c0, open->len) != 0)
            return cerr(c, p, "closing tag '%.*s' does not match section '%s' (opened at %u:%u)", (int)(c1 - c0),
                        src + c0, oname, open->line, open->col);
    }
    if (c->nops >= UINT32_MAX - 1)
        return cerr(c, p, "too many tags");
    cop *o = new_op(c, kind, p);
    if (!o)
        return nomem(c);
    if (standalone)
        o->flags = (uint8_t)((o->flags & ~F_LINE_START) | (kind == OP_PARTIAL ? F_STANDALONE : 0));
    rc = set_name(c, o, c0, c1 - c0, kind == OP_PARTIAL);
    if (rc)
        return rc;
    if (kind == OP_PARTIAL && standalone && ls < p) {
        o->indent = c->pool.len;
        o->indent_len = (uint32_t)(p - ls);
        if (buf_append(&c->pool, src + ls, p - ls))
            return nomem(c);
    }
    size_t idx = c->nops - 1;
    if (kind == OP_SECTION || kind == OP_INVERTED)
        c->open[c->nopen++] = idx;
    else if (kind == OP_END) {
        size_t oi = c->open[--c->nopen];
        c->ops[oi].jump = (uint32_t)idx;
        o->jump = (uint32_t)oi;
    }
    return ERR_OK;
}

err_code tpl_compile(const char *src, size_t len, tpl **out, tpl_error *e)
{
    tpl_error dummy;
    if (!e)
        e = &dummy;
    err_clear(e);
    *out = NULL;
    if (!src && len)
        return ERR_INVAL;
    if (!src)
        src = "";
    comp c = { .src = src, .len = len, .e = e, .line = 1 };
    if (len > SRC_MAX) {
        snprintf(e->message, sizeof e->message, "template larger than %zu bytes", SRC_MAX);
        return ERR_TOOBIG;
    }
    size_t bad = jscan_utf8_prefix(src, len);
    if (bad < len)
        return cerr(&c, bad, "invalid UTF-8 (byte 0x%02x)", (unsigned char)src[bad]);
    buf_init(&c.pool, 4 * len + 64);

    err_code rc = ERR_OK;
    size_t pos = 0, text_start = 0;
    for (;;) {
        const char *hit = pos < len ? memmem(src + pos, len - pos, "{{", 2) : NULL;
        if (!hit) {
            rc = add_text(&c, text_start, len);
            break;
        }
        rc = tag(&c, (size_t)(hit - src), &text_start);
        if (rc)
            break;
        pos = text_start;
    }
    if (!rc && c.nopen) {
        const cop *open = &c.ops[c.open[c.nopen - 1]];
        rc = cerr(&c, len, "unclosed section '%s' (opened at %u:%u)", c.pool.p + open->s, open->line, open->col);
    }
    if (!rc) {
        *out = assemble(&c);
        if (!*out)
            rc = nomem(&c);
    }
    free(c.ops);
    free(c.segs);
    buf_free(&c.pool);
    return rc;
}

void tpl_free(tpl *t) { free(t); }

/* ---- rendering ------------------------------------------------------------ */

/* A context value: a jansson value (j), or a value in JSON text (v, when
 * j is NULL and v.type is not J_NONE) for tpl_render_text. */
typedef struct cval {
    const json_t *j;
    jval v;
} cval;

static bool cv_some(cval c) { return c.j || c.v.type != J_NONE; }
static cval cv_json(const json_t *j) { return (cval){ j, { J_NONE, NULL, 0 } }; }
static cval cv_text(jval v) { return (cval){ NULL, v }; }
static const cval cv_none = { NULL, { J_NONE, NULL, 0 } };

typedef struct rstate {
    const tpl_opts *opts;
    buf *out;
    tpl_error *e;
    bool lenient;
    bool quiet;                      /* a variable is missing: walk on without writing */
    uint32_t steps;
    size_t nctx;
    cval ctx[CTX_MAX];
    size_t depth;                    /* partials entered */
    sv chain[TPL_MAX_DEPTH];         /* their names, outermost first */
    size_t ibase, nindent;           /* indentation in effect: indent[ibase..nindent) */
    sv indent[TPL_MAX_DEPTH];
    /* missing names: a set (open addressing over names[]) */
    sv *miss;
    size_t nmiss, capmiss;
    uint32_t *slots;
    size_t nslots;
    const op *first_miss;
    sv first_miss_partial;
} rstate;

/* Fills e for a render error at op o (in the innermost partial). */
static err_code PRINTF_LIKE(4, 5) rerr(rstate *st, const op *o, err_code code, const char *fmt, ...)
{
    tpl_error *e = st->e;
    err_clear(e);
    if (o) {
        e->line = (int)MIN(o->line, (uint32_t)INT32_MAX);
        e->col = (int)MIN(o->col, (uint32_t)INT32_MAX);
    }
    if (st->depth)
        copy_trunc(e->partial, sizeof e->partial, st->chain[st->depth - 1].p, st->chain[st->depth - 1].len);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    return code;
}

static err_code out_err(rstate *st, const op *o, err_code rc)
{
    if (rc == ERR_TOOBIG)
        return rerr(st, o, rc, "output larger than %zu bytes", st->out->max);
    return rerr(st, o, rc, "out of memory");
}

static err_code emit(rstate *st, const op *o, const char *p, size_t n)
{
    err_code rc = buf_append(st->out, p, n);
    return rc ? out_err(st, o, rc) : ERR_OK;
}

static err_code emit_indent(rstate *st, const op *o)
{
    for (size_t i = st->ibase; i < st->nindent; i++) {
        err_code rc = emit(st, o, st->indent[i].p, st->indent[i].len);
        if (rc)
            return rc;
    }
    return ERR_OK;
}

/* Text of an op; under an indented partial, each line after the first
 * that the text itself continues gets the indentation. */
static err_code emit_text(rstate *st, const op *o)
{
    if (st->ibase == st->nindent)
        return emit(st, o, o->s, o->len);
    const char *p = o->s, *end = o->s + o->len, *nl;
    while ((nl = memchr(p, '\n', (size_t)(end - p))) != NULL && nl + 1 < end) {
        err_code rc = emit(st, o, p, (size_t)(nl + 1 - p));
        if (!rc)
            rc = emit_indent(st, o);
        if (rc)
            return rc;
        p = nl + 1;
    }
    return emit(st, o, p, (size_t)(end - p));
}

static uint32_t hash_sv(const char *p, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 16777619u;
    return h;
}

/* Adds o's name to the set of missing names (if new). */
static err_code add_missing(rstate *st, const op *o)
{
    if (!st->first_miss) {
        st->first_miss = o;
        st->first_miss_partial = st->depth ? st->chain[st->depth - 1] : SV_NULL;
    }
    st->quiet = true;
    if (st->nmiss * 2 >= st->nslots) {
        size_t ns = st->nslots ? st->nslots * 2 : 64;
        uint32_t *slots = malloc(ns * sizeof *slots);
        sv *miss = realloc(st->miss, (ns / 2) * sizeof *miss);
        if (!slots || !miss) {
            free(slots);
            if (miss)
                st->miss = miss;
            return rerr(st, o, ERR_NOMEM, "out of memory");
        }
        st->miss = miss;
        st->capmiss = ns / 2;
        memset(slots, 0xff, ns * sizeof *slots);
        for (size_t i = 0; i < st->nmiss; i++) {
            size_t h = hash_sv(miss[i].p, miss[i].len) & (ns - 1);
            while (slots[h] != UINT32_MAX)
                h = (h + 1) & (ns - 1);
            slots[h] = (uint32_t)i;
        }
        free(st->slots);
        st->slots = slots;
        st->nslots = ns;
    }
    size_t h = hash_sv(o->s, o->len) & (st->nslots - 1);
    while (st->slots[h] != UINT32_MAX) {
        if (sv_eq(st->miss[st->slots[h]], sv_make(o->s, o->len)))
            return ERR_OK;
        h = (h + 1) & (st->nslots - 1);
    }
    st->slots[h] = (uint32_t)st->nmiss;
    st->miss[st->nmiss++] = sv_make(o->s, o->len);
    return ERR_OK;
}

static int cmp_sv(const void *a, const void *b)
{
    const sv *x = a, *y = b;
    int r = memcmp(x->p, y->p, MIN(x->len, y->len));
    return r ? r : (x->len < y->len ? -1 : x->len > y->len);
}

/* Writes prefix and the names joined by sep into out[cap]; when they do
 * not all fit, as many as fit followed by "...". */
static void join_names(char *out, size_t cap, const char *prefix, const char *sep, const sv *names, size_t n)
{
    size_t len = strlen(prefix), seplen = strlen(sep);
    memcpy(out, prefix, len + 1);
    for (size_t i = 0; i < n; i++) {
        size_t s = i ? seplen : 0;
        size_t tail = i + 1 < n ? seplen + 3 : 0; /* room for a later "...", sep included */
        if (len + s + names[i].len + tail + 1 > cap) {
            if (len + s + 4 <= cap) {
                memcpy(out + len, sep, s);
                memcpy(out + len + s, "...", 4);
            }
            return;
        }
        memcpy(out + len, sep, s);
        memcpy(out + len + s, names[i].p, names[i].len);
        len += s + names[i].len;
        out[len] = '\0';
    }
}

static bool truthy(cval c)
{
    if (!c.j) {
        switch (c.v.type) {
        case J_NONE:
        case J_NULL:
        case J_FALSE: return false;
        case J_STRING: return c.v.len > 2;
        case J_NUMBER: {
            char tmp[64];
            if (c.v.len >= sizeof tmp)
                return true;
            memcpy(tmp, c.v.p, c.v.len);
            tmp[c.v.len] = '\0';
            return strtod(tmp, NULL) != 0.0;
        }
        case J_ARRAY: {
            jscan_iter it;
            jscan_iter_init(&it, c.v);
            jval k, x;
            return jscan_next(&it, &k, &x);
        }
        default: return true;
        }
    }
    const json_t *v = c.j;
    switch (json_typeof(v)) {
    case JSON_NULL:
    case JSON_FALSE: return false;
    case JSON_STRING: return json_string_length(v) > 0;
    case JSON_INTEGER: return json_integer_value(v) != 0;
    case JSON_REAL: return json_real_value(v) != 0.0;
    case JSON_ARRAY: return json_array_size(v) > 0;
    default: return true;
    }
}

/* A member of a JSON-text object by name (raw key bytes; a key with
 * escapes is compared after unescaping). */
static bool text_member(jval obj, const char *name, size_t len, jval *out)
{
    jscan_iter it;
    jscan_iter_init(&it, obj);
    jval k, x;
    while (jscan_next(&it, &k, &x)) {
        if (k.len < 2)
            continue;
        if (!memchr(k.p + 1, '\\', k.len - 2)) {
            if (k.len - 2 == len && memcmp(k.p + 1, name, len) == 0) {
                *out = x;
                return true;
            }
        } else {
            char tmp[256];
            size_t tl;
            if (jscan_string(k, tmp, sizeof tmp, &tl) && tl == len && memcmp(tmp, name, len) == 0) {
                *out = x;
                return true;
            }
        }
    }
    return false;
}

static cval member(cval c, const char *name, size_t len)
{
    if (c.j) {
        const json_t *v = json_is_object(c.j) ? json_object_getn(c.j, name, len) : NULL;
        return v ? cv_json(v) : cv_none;
    }
    jval v;
    return c.v.type == J_OBJECT && text_member(c.v, name, len, &v) ? cv_text(v) : cv_none;
}

/* The value o names: "." is the top context; otherwise the first segment
 * is looked up from the innermost object context outward, the others in
 * what it found. None when any step fails. */
static cval lookup(const rstate *st, const op *o)
{
    if (o->flags & F_DOT)
        return st->nctx ? st->ctx[st->nctx - 1] : cv_none;
    const seg *s = o->seg;
    cval v = cv_none;
    for (size_t i = st->nctx; i-- > 0;) {
        v = member(st->ctx[i], s[0].p, s[0].len);
        if (cv_some(v))
            break;
    }
    for (size_t k = 1; cv_some(v) && k < o->nseg; k++)
        v = member(v, s[k].p, s[k].len);
    return v;
}

/* Integer as decimal into b (at least 21 bytes); returns the length. */
static size_t fmt_int(json_int_t x, char *b)
{
    char tmp[24];
    size_t n = 0;
    uint64_t u = x < 0 ? (uint64_t)0 - (uint64_t)x : (uint64_t)x;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    size_t len = 0;
    if (x < 0)
        b[len++] = '-';
    while (n)
        b[len++] = tmp[--n];
    return len;
}

/* A real as JSON.stringify writes it: the shortest digits that read back
 * as the same double, in fixed notation for exponents -7 < e < 21 and
 * exponential ("1e+21", "1.5e-7") otherwise. b holds at least 40 bytes. */
static size_t fmt_real(double d, char *b)
{
    if (d == 0) {
        b[0] = '0';
        return 1;
    }
    char e[40];
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(e, sizeof e, "%.*e", prec - 1, d);
        if (prec == 17 || strtod(e, NULL) == d)
            break;
    }
    /* e is "[-]D.DDDDe[+-]XX": collect digits and exponent */
    const char *s = e;
    size_t len = 0;
    if (*s == '-')
        b[len++] = '-', s++;
    char dig[20];
    size_t k = 0;
    for (; *s && *s != 'e'; s++)
        if (*s >= '0' && *s <= '9' && k < sizeof dig)
            dig[k++] = *s;
    long x = *s == 'e' ? strtol(s + 1, NULL, 10) : 0;
    while (k > 1 && dig[k - 1] == '0')
        k--;
    long n = x + 1; /* digits before the decimal point */
    if ((long)k <= n && n <= 21) {
        memcpy(b + len, dig, k), len += k;
        for (long i = (long)k; i < n; i++)
            b[len++] = '0';
    } else if (0 < n && n <= 21) {
        memcpy(b + len, dig, (size_t)n), len += (size_t)n;
        b[len++] = '.';
        memcpy(b + len, dig + n, k - (size_t)n), len += k - (size_t)n;
    } else if (-6 < n && n <= 0) {
        b[len++] = '0', b[len++] = '.';
        for (long i = n; i < 0; i++)
            b[len++] = '0';
        memcpy(b + len, dig, k), len += k;
    } else {
        b[len++] = dig[0];
        if (k > 1) {
            b[len++] = '.';
            memcpy(b + len, dig + 1, k - 1), len += k - 1;
        }
        b[len++] = 'e';
        b[len++] = n - 1 < 0 ? '-' : '+';
        len += fmt_int(n - 1 < 0 ? -(n - 1) : n - 1, b + len);
    }
    return len;
}

/* A value in JSON text: strings unescaped, numbers formatted as the
 * jansson path formats them (integers as integers, reals shortest). */
static __attribute__((noinline)) err_code emit_text_value(rstate *st, const op *o, jval v)
{
    char b[64];
    size_t n;
    switch (v.type) {
    case J_STRING:
        if (st->quiet)
            return ERR_OK;
        if (!memchr(v.p + 1, '\\', v.len - 2))
            return emit(st, o, v.p + 1, v.len - 2);
        {
            /* unescaping never makes a string longer */
            char *tmp = malloc(v.len);
            size_t tl = 0;
            if (!tmp)
                return rerr(st, o, ERR_NOMEM, "out of memory");
            err_code rc = jscan_string(v, tmp, v.len, &tl)
                              ? emit(st, o, tmp, tl)
                              : rerr(st, o, ERR_INVAL, "variable '%s' is not a valid string", o->s);
            free(tmp);
            return rc;
        }
    case J_NUMBER: {
        long long ll;
        if (jscan_int(v, &ll)) {
            n = fmt_int((json_int_t)ll, b);
        } else {
            char tmp[64];
            if (v.len >= sizeof tmp)
                return st->quiet ? ERR_OK : emit(st, o, v.p, v.len);
            memcpy(tmp, v.p, v.len);
            tmp[v.len] = '\0';
            n = fmt_real(strtod(tmp, NULL), b);
        }
        break;
    }
    case J_TRUE: memcpy(b, "true", 4), n = 4; break;
    case J_FALSE: memcpy(b, "false", 5), n = 5; break;
    case J_NULL: return ERR_OK;
    case J_OBJECT: return rerr(st, o, ERR_INVAL, "variable '%s' is an object", o->s);
    default: return rerr(st, o, ERR_INVAL, "variable '%s' is an array", o->s);
    }
    return st->quiet ? ERR_OK : emit(st, o, b, n);
}

static __attribute__((noinline)) err_code emit_value(rstate *st, const op *o, cval c)
{
    if (!c.j)
        return emit_text_value(st, o, c.v);
    const json_t *v = c.j;
    char b[48];
    size_t n;
    switch (json_typeof(v)) {
    case JSON_STRING:
        return st->quiet ? ERR_OK : emit(st, o, json_string_value(v), json_string_length(v));
    case JSON_INTEGER: n = fmt_int(json_integer_value(v), b); break;
    case JSON_REAL: n = fmt_real(json_real_value(v), b); break;
    case JSON_TRUE: memcpy(b, "true", 4), n = 4; break;
    case JSON_FALSE: memcpy(b, "false", 5), n = 5; break;
    case JSON_NULL: return ERR_OK;
    case JSON_OBJECT: return rerr(st, o, ERR_INVAL, "variable '%s' is an object", o->s);
    default: return rerr(st, o, ERR_INVAL, "variable '%s' is an array", o->s);
    }
    return st->quiet ? ERR_OK : emit(st, o, b, n);
}

/* The cycle or depth error at partial op o: the chain of partials from
 * chain[from] to o's name. Out of line to keep the render frames small. */
static __attribute__((noinline, cold)) err_code chain_err(rstate *st, const op *o, size_t from, bool cycle)
{
    char chain[400];
    size_t len = 0;
    chain[0] = '\0';
    for (size_t i = from; i <= st->depth; i++) {
        sv s = i < st->depth ? st->chain[i] : sv_make(o->s, o->len);
        int w = snprintf(chain + len, sizeof chain - len, "%s%.*s", i > from ? " -> " : "", SV_FMT(s));
        if (w < 0 || (size_t)w >= sizeof chain - len)
            break;
        len += (size_t)w;
    }
    if (cycle)
        return rerr(st, o, ERR_INVAL, "partial cycle: %s", chain);
    return rerr(st, o, ERR_INVAL, "partials nested deeper than %d: %s", TPL_MAX_DEPTH, chain);
}

static err_code run(rstate *st, const tpl *t, size_t pc, size_t end);

static err_code partial(rstate *st, const op *o)
{
    for (size_t i = 0; i < st->depth; i++)
        if (sv_eq(st->chain[i], sv_make(o->s, o->len)))
            return chain_err(st, o, i, true);
    if (st->depth == TPL_MAX_DEPTH)
        return chain_err(st, o, 0, false);
    const tpl *p = st->opts && st->opts->resolve ? st->opts->resolve(st->opts->ud, o->s, o->len) : NULL;
    if (!p)
        return rerr(st, o, ERR_INVAL, "partial '%s' not found", o->s);
    size_t ibase = st->ibase, nindent = st->nindent;
    if (!(o->flags & F_STANDALONE))
        st->ibase = st->nindent; /* an inline partial is not indented */
    else if (o->indent_len)
        st->indent[st->nindent++] = sv_make(o->indent, o->indent_len);
    st->chain[st->depth++] = sv_make(o->s, o->len);
    err_code rc = run(st, p, 0, p->nops);
    st->depth--;
    st->ibase = ibase;
    st->nindent = nindent;
    return rc;
}

/* Runs ops [pc, end) of t. */
static err_code run(rstate *st, const tpl *t, size_t pc, size_t end)
{
    const op *ops = t->ops;
    err_code rc = ERR_OK;
    while (pc < end) {
        const op *o = &ops[pc];
        if (++st->steps > RENDER_MAX_STEPS)
            return rerr(st, o, ERR_TOOBIG, "render stopped after %u steps (nested sections over long lists?)",
                        RENDER_MAX_STEPS);
        if ((o->flags & F_LINE_START) && st->ibase < st->nindent && !st->quiet && (rc = emit_indent(st, o)))
            return rc;
        switch (o->kind) {
        case OP_TEXT:
            if (!st->quiet && (rc = emit_text(st, o)))
                return rc;
            pc++;
            break;
        case OP_VAR: {
            cval v = lookup(st, o);
            if (cv_some(v))
                rc = emit_value(st, o, v);
            else if (!st->lenient)
                rc = add_missing(st, o);
            if (rc)
                return rc;
            pc++;
            break;
        }
        case OP_SECTION: {
            cval v = lookup(st, o);
            if (cv_some(v) && truthy(v)) {
                if (NEVER(st->nctx == CTX_MAX))
                    return rerr(st, o, ERR_INVAL, "sections nested too deep");
                if (v.j && json_is_array(v.j)) {
                    for (size_t i = 0, n = json_array_size(v.j); i < n; i++) {
                        st->ctx[st->nctx++] = cv_json(json_array_get(v.j, i));
                        rc = run(st, t, pc + 1, o->jump + 1);
                        st->nctx--;
                        if (rc)
                            return rc;
                    }
                } else if (!v.j && v.v.type == J_ARRAY) {
                    jscan_iter it;
                    jscan_iter_init(&it, v.v);
                    jval k, x;
                    while (jscan_next(&it, &k, &x)) {
                        st->ctx[st->nctx++] = cv_text(x);
                        rc = run(st, t, pc + 1, o->jump + 1);
                        st->nctx--;
                        if (rc)
                            return rc;
                    }
                } else {
                    st->ctx[st->nctx++] = v;
                    rc = run(st, t, pc + 1, o->jump + 1);
                    st->nctx--;
                    if (rc)
                        return rc;
                }
            }
            pc = o->jump + 1;
            break;
        }
        case OP_INVERTED: {
            cval v = lookup(st, o);
            if ((!cv_some(v) || !truthy(v)) && (rc = run(st, t, pc + 1, o->jump + 1)))
                return rc;
            pc = o->jump + 1;
            break;
        }
        case OP_PARTIAL:
            if ((rc = partial(st, o)))
                return rc;
            pc++;
            break;
        default: /* OP_END: only its indentation above */
            pc++;
            break;
        }
    }
    return ERR_OK;
}

static err_code render(const tpl *t, cval vars, const tpl_opts *opts, buf *out, tpl_error *e)
{
    tpl_error dummy;
    if (!e)
        e = &dummy;
    e->line = e->col = 0;
    e->partial[0] = e->message[0] = e->missing[0] = '\0';
    rstate st;
    st.opts = opts;
    st.out = out;
    st.e = e;
    st.lenient = opts && opts->lenient;
    st.quiet = false;
    st.steps = 0;
    st.nctx = 0;
    st.depth = st.ibase = st.nindent = 0;
    st.miss = NULL;
    st.nmiss = st.capmiss = st.nslots = 0;
    st.slots = NULL;
    st.first_miss = NULL;
    if (cv_some(vars))
        st.ctx[st.nctx++] = vars;
    err_code rc = run(&st, t, 0, t->nops);
    if (!rc && st.nmiss) {
        qsort(st.miss, st.nmiss, sizeof *st.miss, cmp_sv);
        join_names(e->message, sizeof e->message, "missing variables: ", ", ", st.miss, st.nmiss);
        join_names(e->missing, sizeof e->missing, "", ",", st.miss, st.nmiss);
        e->line = (int)MIN(st.first_miss->line, (uint32_t)INT32_MAX);
        e->col = (int)MIN(st.first_miss->col, (uint32_t)INT32_MAX);
        copy_trunc(e->partial, sizeof e->partial, st.first_miss_partial.p ? st.first_miss_partial.p : "",
                   st.first_miss_partial.len);
        rc = ERR_INVAL;
    }
    free(st.miss);
    free(st.slots);
    return rc;
}

err_code tpl_render(const tpl *t, const json_t *vars, const tpl_opts *opts, buf *out, tpl_error *e)
{
    return render(t, vars ? cv_json(vars) : cv_none, opts, out, e);
}

err_code tpl_render_text(const tpl *t, jval vars, const tpl_opts *opts, buf *out, tpl_error *e)
{
    return render(t, vars.type == J_NULL ? cv_none : cv_text(vars), opts, out, e);
}

/* ---- introspection -------------------------------------------------------- */

/* A JSON array of the names, sorted, each once; NULL on out of memory. */
static json_t *name_array(sv *names, size_t n)
{
    qsort(names, n, sizeof *names, cmp_sv);
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++) {
        if (i && sv_eq(names[i], names[i - 1]))
            continue;
        if (json_array_append_new(a, json_stringn(names[i].p, names[i].len))) {
            json_decref(a);
            a = NULL;
        }
    }
    return a;
}

json_t *tpl_variables(const tpl *t)
{
    sv *names = malloc((t->nops + 1) * sizeof *names);
    if (!names)
        return NULL;
    size_t n = 0, pushed = 0; /* sections open around the op that push a context */
    for (size_t i = 0; i < t->nops; i++) {
        const op *o = &t->ops[i];
        if (o->kind == OP_END) {
            if (t->ops[o->jump].kind == OP_SECTION)
                pushed--;
            continue;
        }
        if ((o->kind == OP_VAR || o->kind == OP_SECTION || o->kind == OP_INVERTED) && !(o->flags & F_DOT) &&
            pushed == 0)
            names[n++] = sv_make(o->seg[0].p, o->seg[0].len);
        if (o->kind == OP_SECTION)
            pushed++;
    }
    json_t *a = name_array(names, n);
    free(names);
    return a;
}

json_t *tpl_partials(const tpl *t)
{
    sv *names = malloc((t->nops + 1) * sizeof *names);
    if (!names)
        return NULL;
    size_t n = 0;
    for (size_t i = 0; i < t->nops; i++)
        if (t->ops[i].kind == OP_PARTIAL)
            names[n++] = sv_make(t->ops[i].s, t->ops[i].len);
    json_t *a = name_array(names, n);
    free(names);
    return a;
}
