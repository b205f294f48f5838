/*
 * config.c - loads the YAML configuration into the structs of config.h.
 *
 * It works in three steps:
 *  1. libyaml's event parser feeds a small node tree (scalars, lists,
 *     mappings) that keeps each node's line and column. Anchors and aliases
 *     are resolved by sharing nodes; the size of the tree with every alias
 *     expanded is bounded, so "billion laughs" documents are refused.
 *  2. Declarative key tables, one per section (redis's static_configs[],
 *     nginx's ngx_command_t), give each key its name, type, the offset of its
 *     field, its default (as text, read by the same converter as the file)
 *     and an optional validator. One walker maps a mapping node onto a struct
 *     through its table and reports unknown keys (with "did you mean"),
 *     duplicates, missing required keys, wrong types and out-of-range values.
 *     It never stops at the first problem.
 *  3. Finish hooks per table and per list do what a single key cannot:
 *     per-type provider defaults, unique names, and references between
 *     sections (a model's provider, fallbacks, deployments). Sections are
 *     walked in table order (server, store, providers, models, deployments)
 *     whatever their order in the file, so references can be checked at once.
 *
 * Scalar values, never keys, go through ${VAR} expansion first. Every
 * diagnostic carries line, column and a key path such as
 * providers[1].base_url; they are sorted by position at the end.
 * config_default() runs the same walker on an empty document, so the defaults
 * live in the tables and nowhere else.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>
#include "buf.h"
#include "config.h"
#include "log.h"

#define CFG_MAX_BYTES ((size_t)4 << 20)   /* largest config file */
#define CFG_MAX_NODES 100000              /* nodes, counting alias expansions */
#define CFG_MAX_DEPTH 64                  /* nesting of lists and mappings */
#define CFG_MAX_ANCHORS 1024
#define CFG_MAX_DIAGS 100                 /* stored per load; the rest are counted */
#define CFG_MAX_VALUE ((size_t)1 << 20)   /* a scalar after ${VAR} expansion */
#define CFG_MAX_HEADERS 64                /* extra headers per provider */
#define CFG_MAX_KEYS 32                   /* keys in one table */
#define PATH_CAP 256
#define MS_HOUR 3600000
#define MS_DAY 86400000

_Static_assert(sizeof(provider_type) == sizeof(int), "provider_type is stored as an int");

/* ------------------------------------------------------------------ */
/* Node tree                                                          */

typedef enum node_kind { N_SCALAR, N_SEQ, N_MAP } node_kind;

typedef struct node node;
struct node {
    node_kind kind;
    bool plain;          /* untagged plain scalar: may spell null */
    bool done;           /* collection closed (aliases may point at it) */
    int line, col;       /* 1-based; 0 for synthetic nodes */
    const char *text;    /* scalar bytes, NUL-terminated, may hold NULs */
    size_t len;
    node **kids;         /* list items, or key, value, key, value... */
    size_t nkids, capkids;
    size_t weight;       /* nodes below and including this one, aliases expanded */
};

/* A sorted index of names (providers, models) for lookups and duplicates. */
typedef struct name_ent {
    const char *name;
    size_t len;
    size_t idx;          /* position in its list */
    const node *at;      /* where the name was given */
} name_ent;

typedef struct name_index {
    name_ent *e;
    size_t n;
} name_index;

typedef struct ctx {
    const char *name;    /* file name for messages */
    config *cfg;
    pool *tmp;           /* tree, expansions, indexes: freed after loading */
    config_diags *diags;
    size_t first_diag;   /* diags of this load start here */
    size_t nerrors;
    size_t dropped;      /* diagnostics over CFG_MAX_DIAGS */
    bool nomem;
    name_index providers, models;
} ctx;

static bool is_null(const node *n)
{
    if (!n || n->kind != N_SCALAR || !n->plain)
        return false;
    sv s = sv_make(n->text, n->len);
    return s.len == 0 || sv_eq_cstr(s, "~") || sv_eq_cstr(s, "null") || sv_eq_cstr(s, "Null") ||
           sv_eq_cstr(s, "NULL");
}

/* ------------------------------------------------------------------ */
/* Diagnostics                                                        */

/* Appends one diagnostic; path and message share one malloc'd block that
 * config_diags_free releases through the path pointer. */
static bool push_diag(config_diags *d, bool warning, int line, int col, const char *path, const char *msg)
{
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 8;
        config_diag *ni = realloc(d->items, cap * sizeof *ni);
        if (!ni)
            return false;
        d->items = ni;
        d->cap = cap;
    }
    size_t pl = strlen(path), ml = strlen(msg);
    char *mem = malloc(pl + ml + 2);
    if (!mem)
        return false;
    memcpy(mem, path, pl + 1);
    memcpy(mem + pl + 1, msg, ml + 1);
    d->items[d->n++] = (config_diag){ line, col, mem, mem + pl + 1, warning };
    return true;
}

static void vdiag(ctx *c, bool warning, int line, int col, const char *path, const char *fmt, va_list ap)
{
    if (!warning)
        c->nerrors++;
    if (c->diags->n - c->first_diag >= CFG_MAX_DIAGS) {
        c->dropped++;
        return;
    }
    char msg[768];
    vsnprintf(msg, sizeof msg, fmt, ap);
    if (!push_diag(c->diags, warning, line, col, path ? path : "", msg))
        c->nomem = true;
}

/* Whether another diagnostic would still be stored: costly hints (edit
 * distances) are only computed when it would. */
static bool have_room(const ctx *c)
{
    return c->diags->n - c->first_diag < CFG_MAX_DIAGS;
}

static void PRINTF_LIKE(6, 7) diag_lc(ctx *c, bool warning, int line, int col, const char *path, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vdiag(c, warning, line, col, path, fmt, ap);
    va_end(ap);
}

static void PRINTF_LIKE(5, 6) diag(ctx *c, bool warning, const node *at, const char *path, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vdiag(c, warning, at ? at->line : 0, at ? at->col : 0, path, fmt, ap);
    va_end(ap);
}

#define ERR(c, at, path, ...) diag((c), false, (at), (path), __VA_ARGS__)
#define WARN(c, at, path, ...) diag((c), true, (at), (path), __VA_ARGS__)

static bool diag_same(const config_diag *a, const config_diag *b)
{
    return a->line == b->line && a->column == b->column && a->warning == b->warning &&
           strcmp(a->path, b->path) == 0 && strcmp(a->message, b->message) == 0;
}

/* Sorts this load's diagnostics by position (stable, so problems found at
 * one place keep their order), drops repeats (an alias reaches the same node
 * twice) and notes how many were not stored. */
static void diags_finish(ctx *c)
{
    config_diags *d = c->diags;
    size_t n = d->n - c->first_diag;
    config_diag *a = n ? d->items + c->first_diag : NULL;
    for (size_t i = 1; i < n; i++) {
        config_diag x = a[i];
        size_t j = i;
        while (j > 0 && (a[j - 1].line > x.line || (a[j - 1].line == x.line && a[j - 1].column > x.column))) {
            a[j] = a[j - 1];
            j--;
        }
        a[j] = x;
    }
    size_t w = 0;
    for (size_t r = 0; r < n; r++) {
        if (w > 0 && diag_same(&a[w - 1], &a[r]))
            free((void *)a[r].path);
        else
            a[w++] = a[r];
    }
    d->n = c->first_diag + w;
    if (c->dropped) {
        char msg[96];
        snprintf(msg, sizeof msg, "%zu more problems not shown", c->dropped);
        if (!push_diag(d, false, 0, 0, "", msg))
            c->nomem = true;
    }
}

/* Printable, quoted-safe, truncated copy of bytes for messages. */
static const char *printable(ctx *c, const char *s, size_t len)
{
    char out[200];
    size_t o = 0, i = 0;
    for (; i < len && o < 120; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch < 0x20 || ch == 0x7f) {
            o += (size_t)snprintf(out + o, sizeof out - o, "\\x%02x", ch);
        } else if (ch == '"' || ch == '\\') {
            out[o++] = '\\';
            out[o++] = (char)ch;
        } else {
            out[o++] = (char)ch;
        }
    }
    if (i < len) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    const char *r = pool_strndup(c->tmp, out, o);
    return r ? r : "";
}

static const char *quoted(ctx *c, const char *s, size_t len)
{
    const char *r = pool_printf(c->tmp, "\"%s\"", printable(c, s, len));
    return r ? r : "a value";
}

/* What a node is, for "expected X, got Y". */
static const char *describe(ctx *c, const node *n)
{
    if (!n)
        return "nothing";
    switch (n->kind) {
    case N_SEQ:
        return "a list";
    case N_MAP:
        return "a mapping";
    default:
        return is_null(n) ? "nothing" : quoted(c, n->text, n->len);
    }
}

/* ------------------------------------------------------------------ */
/* Building the tree from libyaml events                              */

typedef struct anchor {
    const char *name;
    node *n;
} anchor;

typedef struct builder {
    ctx *c;
    node *stack[CFG_MAX_DEPTH];
    int depth;
    anchor anchors[CFG_MAX_ANCHORS];
    size_t nanchors;
    node *root;
    int ndocs;
    size_t nnodes;
} builder;

static void PRINTF_LIKE(3, 4) mark_error(builder *b, const yaml_mark_t *m, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vdiag(b->c, false, (int)m->line + 1, (int)m->column + 1, "", fmt, ap);
    va_end(ap);
}

static node *new_node(builder *b, node_kind k, const yaml_mark_t *m)
{
    if (++b->nnodes > CFG_MAX_NODES) {
        mark_error(b, m, "the document has more than %d nodes", CFG_MAX_NODES);
        return NULL;
    }
    node *n = pool_calloc(b->c->tmp, sizeof *n);
    if (!n) {
        b->c->nomem = true;
        return NULL;
    }
    n->kind = k;
    n->line = (int)m->line + 1;
    n->col = (int)m->column + 1;
    return n;
}

/* Adds w expanded nodes to an open collection; refuses documents whose
 * aliases expand past CFG_MAX_NODES. */
static bool add_weight(builder *b, node *parent, size_t w, const yaml_mark_t *m)
{
    if (w > CFG_MAX_NODES || parent->weight > CFG_MAX_NODES - w) {
        mark_error(b, m, "the document expands to more than %d nodes through aliases", CFG_MAX_NODES);
        return false;
    }
    parent->weight += w;
    return true;
}

static bool attach(builder *b, node *child, const yaml_mark_t *m)
{
    if (b->depth == 0) {
        if (ALWAYS(!b->root))
            b->root = child;
        return true;
    }
    node *parent = b->stack[b->depth - 1];
    if (parent->nkids == parent->capkids) {
        size_t cap = parent->capkids ? parent->capkids * 2 : 8;
        node **nk = pool_alloc(b->c->tmp, cap * sizeof *nk);
        if (!nk) {
            b->c->nomem = true;
            return false;
        }
        if (parent->nkids)
            memcpy(nk, parent->kids, parent->nkids * sizeof *nk);
        parent->kids = nk;
        parent->capkids = cap;
    }
    parent->kids[parent->nkids++] = child;
    return child->done ? add_weight(b, parent, child->weight, m) : true;
}

static bool add_anchor(builder *b, const yaml_char_t *name, node *n, const yaml_mark_t *m)
{
    if (!name)
        return true;
    if (b->nanchors == CFG_MAX_ANCHORS) {
        mark_error(b, m, "more than %d anchors", CFG_MAX_ANCHORS);
        return false;
    }
    const char *copy = pool_strdup(b->c->tmp, (const char *)name);
    if (!copy) {
        b->c->nomem = true;
        return false;
    }
    b->anchors[b->nanchors++] = (anchor){ copy, n };
    return true;
}

static node *find_anchor(builder *b, const char *name)
{
    for (size_t i = b->nanchors; i > 0; i--) /* a redefined anchor: the latest wins */
        if (strcmp(b->anchors[i - 1].name, name) == 0)
            return b->anchors[i - 1].n;
    return NULL;
}

/* Handles one parser event; false stops the parse (a diagnostic was made). */
static bool on_event(builder *b, const yaml_event_t *ev)
{
    const yaml_mark_t *m = &ev->start_mark;
    switch (ev->type) {
    case YAML_DOCUMENT_START_EVENT:
        if (++b->ndocs > 1) {
            mark_error(b, m, "a config file holds one YAML document, but a second one starts here");
            return false;
        }
        return true;
    case YAML_ALIAS_EVENT: {
        const char *name = (const char *)ev->data.alias.anchor;
        node *t = find_anchor(b, name);
        if (!t) {
            mark_error(b, m, "alias '*%s' names no anchor defined before it", printable(b->c, name, strlen(name)));
            return false;
        }
        if (!t->done) {
            mark_error(b, m, "alias '*%s' refers to a node that contains it", printable(b->c, name, strlen(name)));
            return false;
        }
        return attach(b, t, m);
    }
    case YAML_SCALAR_EVENT: {
        node *n = new_node(b, N_SCALAR, m);
        if (!n)
            return false;
        n->len = ev->data.scalar.length;
        n->text = pool_strndup(b->c->tmp, (const char *)ev->data.scalar.value, n->len);
        if (!n->text) {
            b->c->nomem = true;
            return false;
        }
        n->plain = ev->data.scalar.plain_implicit != 0;
        n->weight = 1;
        n->done = true;
        return add_anchor(b, ev->data.scalar.anchor, n, m) && attach(b, n, m);
    }
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT: {
        if (b->depth >= CFG_MAX_DEPTH) {
            mark_error(b, m, "lists and mappings are nested deeper than %d levels", CFG_MAX_DEPTH);
            return false;
        }
        bool seq = ev->type == YAML_SEQUENCE_START_EVENT;
        node *n = new_node(b, seq ? N_SEQ : N_MAP, m);
        if (!n)
            return false;
        const yaml_char_t *a = seq ? ev->data.sequence_start.anchor : ev->data.mapping_start.anchor;
        if (!add_anchor(b, a, n, m) || !attach(b, n, m))
            return false;
        b->stack[b->depth++] = n;
        return true;
    }
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT: {
        if (NEVER(b->depth == 0))
            return true;
        node *n = b->stack[--b->depth];
        n->done = true;
        n->weight += 1;
        return b->depth > 0 ? add_weight(b, b->stack[b->depth - 1], n->weight, m) : true;
    }
    default:
        return true;
    }
}

/* Reports libyaml's problem with its position. */
static void yaml_problem(ctx *c, const yaml_parser_t *p, const char *text, size_t len)
{
    if (p->error == YAML_MEMORY_ERROR) {
        c->nomem = true;
        return;
    }
    int line = (int)p->problem_mark.line + 1, col = (int)p->problem_mark.column + 1;
    if (p->error == YAML_READER_ERROR) { /* the reader gives a byte offset only */
        size_t off = MIN(p->problem_offset, len);
        line = 1;
        size_t bol = 0;
        for (size_t i = 0; i < off; i++)
            if (text[i] == '\n')
                line++, bol = i + 1;
        col = (int)(off - bol) + 1;
    }
    const char *problem = p->problem ? p->problem : "cannot be parsed";
    if (p->context)
        diag_lc(c, false, line, col, "", "invalid YAML: %s (%s that starts at line %d)", problem, p->context,
                (int)p->context_mark.line + 1);
    else if (p->error == YAML_READER_ERROR && p->problem_value != -1)
        diag_lc(c, false, line, col, "", "invalid YAML: %s (byte 0x%02x)", problem, (unsigned)p->problem_value & 0xff);
    else
        diag_lc(c, false, line, col, "", "invalid YAML: %s", problem);
}

/* Parses text into a tree. Returns the root (NULL for an empty document) and
 * sets *ok to false after reporting a problem. */
static node *build_tree(ctx *c, const char *text, size_t len, bool *ok)
{
    *ok = false;
    builder *b = pool_calloc(c->tmp, sizeof *b);
    if (!b) {
        c->nomem = true;
        return NULL;
    }
    b->c = c;
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p)) {
        c->nomem = true;
        return NULL;
    }
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    bool good = true;
    for (;;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&p, &ev)) {
            yaml_problem(c, &p, text, len);
            good = false;
            break;
        }
        bool end = ev.type == YAML_STREAM_END_EVENT;
        if (!end && !on_event(b, &ev))
            good = false, end = true;
        yaml_event_delete(&ev);
        if (end)
            break;
    }
    yaml_parser_delete(&p);
    *ok = good && !c->nomem;
    return b->root;
}

/* ------------------------------------------------------------------ */
/* ${VAR} expansion                                                   */

typedef enum exp_result { EXP_OK, EXP_UNSET, EXP_ERROR } exp_result;

/* Expands ${VAR}, ${VAR:-default}, ${VAR:?message} and $$ in a scalar.
 * *out (tmp pool, NUL-terminated) is set unless EXP_ERROR. EXP_UNSET means a
 * ${VAR} without default named an unset variable (a warning was made). */
static exp_result expand(ctx *c, const node *n, const char *path, const char **out, size_t *outlen)
{
    const char *s = n->text;
    size_t len = n->len;
    if (!memchr(s, '$', len)) {
        *out = s;
        *outlen = len;
        return EXP_OK;
    }
    buf b;
    buf_init(&b, CFG_MAX_VALUE);
    bool unset = false, bad = false;
    err_code e = ERR_OK;
    size_t i = 0;
    while (i < len && !bad && !e) {
        if (s[i] != '$' || i + 1 == len || (s[i + 1] != '$' && s[i + 1] != '{')) {
            e = buf_append(&b, s + i, 1);
            i++;
            continue;
        }
        if (s[i + 1] == '$') {
            e = buf_append(&b, "$", 1);
            i += 2;
            continue;
        }
        const char *ref = s + i + 2;
        const char *close = memchr(ref, '}', len - i - 2);
        if (!close) {
            ERR(c, n, path, "unterminated '${' in %s (write $$ for a literal $)", quoted(c, s, len));
            bad = true;
            break;
        }
        size_t rlen = (size_t)(close - ref), nl = 0;
        while (nl < rlen && (isalnum((unsigned char)ref[nl]) || ref[nl] == '_'))
            nl++;
        const char *op = ref + nl;
        size_t oplen = rlen - nl;
        bool has_op = oplen >= 2 && op[0] == ':' && (op[1] == '-' || op[1] == '?');
        if (nl == 0 || nl > 128 || isdigit((unsigned char)ref[0]) || (oplen > 0 && !has_op)) {
            ERR(c, n, path, "invalid variable reference '${%s}': expected ${NAME}, ${NAME:-default} or ${NAME:?message}",
                printable(c, ref, rlen));
            bad = true;
            break;
        }
        char name[129];
        memcpy(name, ref, nl);
        name[nl] = '\0';
        const char *val = getenv(name);
        if (oplen == 0) {
            if (val) {
                e = buf_append_str(&b, val);
            } else {
                const char *key = strrchr(path, '.');
                WARN(c, n, path, "environment variable '%s' is not set; '%s' is left unset", name, key ? key + 1 : path);
                unset = true;
            }
        } else if (val && *val) {
            e = buf_append_str(&b, val);
        } else if (op[1] == '-') {
            e = buf_append(&b, op + 2, oplen - 2);
        } else {
            if (oplen > 2)
                ERR(c, n, path, "environment variable '%s' is required: %s", name, printable(c, op + 2, oplen - 2));
            else
                ERR(c, n, path, "environment variable '%s' is required but not set", name);
            bad = true;
        }
        i = (size_t)(close - s) + 1;
    }
    if (e == ERR_TOOBIG) {
        ERR(c, n, path, "the value is longer than %zu bytes after ${...} expansion", CFG_MAX_VALUE);
        bad = true;
    } else if (e) {
        c->nomem = true;
        bad = true;
    }
    if (!bad) {
        *out = pool_strndup(c->tmp, b.p ? b.p : "", b.len);
        *outlen = b.len;
        if (!*out) {
            c->nomem = true;
            bad = true;
        }
    }
    buf_free(&b);
    return bad ? EXP_ERROR : unset ? EXP_UNSET : EXP_OK;
}

/* ------------------------------------------------------------------ */
/* Key tables                                                         */

typedef enum kind {
    K_STR,       /* const char *; "" counts as unset */
    K_BOOL,      /* bool */
    K_INT,       /* int */
    K_LONG,      /* long */
    K_ULONG,     /* unsigned long */
    K_COUNT,     /* size_t, a plain number */
    K_BYTES,     /* size_t, a number with an optional size unit */
    K_MS,        /* long milliseconds, a number with an optional time unit */
    K_DOUBLE,    /* double */
    K_ENUM,      /* const char *, one of choices (stored canonical) */
    K_ENUM_INT,  /* int, the index in choices */
    K_STRLIST,   /* const char ** + size_t count at off_n */
    K_HEADERS,   /* cfg_header * + size_t count at off_n */
    K_MAP,       /* nested mapping read through sub at base + off */
    K_LIST,      /* list of mappings: array at off, count at off_n */
    K_IGNORED,   /* a reserved section this version skips with a warning */
} kind;

#define F_REQUIRED 1u
#define F_SIM 2u /* only for providers of type simulator */

typedef struct key_table key_table;
/* Validates (and may rewrite) a string value already stored in *value;
 * reports its own diagnostics and returns false when the value is bad. */
typedef bool (*check_fn)(ctx *c, const node *n, const char *path, const char **value);
/* Cross-key checks after a mapping was read; given[i] is the value node of
 * keys[i] or NULL. map is NULL when the section was absent. */
typedef void (*finish_fn)(ctx *c, void *obj, const node *map, const node **given, const char *path);
/* Checks across a whole list; base is the struct that holds the list. */
typedef void (*list_finish_fn)(ctx *c, void *base, const node ***given, const char *path);

typedef struct key_spec {
    const char *name;
    kind kind;
    size_t off;                  /* field offset in the table's struct */
    size_t off_n;                /* lists: offset of the size_t count */
    const char *def;             /* default as text; NULL = zero/NULL */
    double lo, hi;               /* inclusive range of numbers */
    const char *const *choices;  /* enums, NULL-terminated */
    check_fn check;              /* strings */
    const key_table *sub;        /* K_MAP, K_LIST */
    size_t elem_size;            /* K_LIST */
    list_finish_fn list_finish;  /* K_LIST */
    unsigned flags;
} key_spec;

struct key_table {
    const key_spec *keys;
    size_t nkeys;
    finish_fn finish;
    bool top;                    /* the top level: keys are sections */
};

static int key_index(const key_table *t, const char *name)
{
    for (size_t i = 0; i < t->nkeys; i++)
        if (strcmp(t->keys[i].name, name) == 0)
            return (int)i;
    return -1;
}

static const node *given_of(const key_table *t, const node **given, const char *name)
{
    int i = key_index(t, name);
    return ALWAYS(i >= 0) ? given[i] : NULL;
}

static void join_path(char *out, const char *path, const char *name, size_t nlen)
{
    snprintf(out, PATH_CAP, "%s%s%.*s", path, *path ? "." : "", (int)MIN(nlen, 120), name);
}

/* ---- edit distance for "did you mean" ---- */

static size_t edit_distance(const char *a, size_t la, const char *b, size_t lb)
{
    if (la > 64 || lb > 64)
        return 99;
    size_t row[65];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t prev = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t cur = row[j];
            size_t cost = tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]);
            size_t best = MIN(row[j] + 1, row[j - 1] + 1);
            row[j] = MIN(best, prev + cost);
            prev = cur;
        }
    }
    return row[lb];
}

/* Keeps the closest candidate within distance 2 in *best. */
static void consider(const char *key, size_t klen, const char *cand, size_t *bestd, const char **best)
{
    size_t cl = strlen(cand);
    size_t d = edit_distance(key, klen, cand, cl);
    if (d <= 2 && d < cl && d < *bestd) {
        *bestd = d;
        *best = cand;
    }
}

static const char *suggest_key(const ctx *c, const key_table *t, const char *key, size_t klen)
{
    if (!have_room(c))
        return NULL;
    const char *best = NULL;
    size_t bestd = 99;
    for (size_t i = 0; i < t->nkeys; i++)
        consider(key, klen, t->keys[i].name, &bestd, &best);
    return best;
}

static const char *suggest_choice(const ctx *c, const char *const *choices, const char *s, size_t len)
{
    if (!have_room(c))
        return NULL;
    const char *best = NULL;
    size_t bestd = 99;
    for (size_t i = 0; choices[i]; i++)
        consider(s, len, choices[i], &bestd, &best);
    return best;
}

static const char *suggest_name(const ctx *c, const name_index *ix, const char *s, size_t len)
{
    if (!have_room(c))
        return NULL;
    const char *best = NULL;
    size_t bestd = 99;
    for (size_t i = 0; i < ix->n && i < 1000; i++)
        consider(s, len, ix->e[i].name, &bestd, &best);
    return best;
}

/* ---- scalar parsing ---- */

typedef struct unit {
    const char *name;
    long long mult;
} unit;

static const unit ms_units[] = { { "", 1 }, { "ms", 1 }, { "s", 1000 }, { "m", 60000 }, { "h", MS_HOUR } };
static const unit byte_units[] = {
    { "", 1 },          { "b", 1 },           { "kb", 1000 },      { "mb", 1000000 },
    { "gb", 1000000000 }, { "kib", 1LL << 10 }, { "mib", 1LL << 20 }, { "gib", 1LL << 30 },
};

static bool parse_integer(const char *s, long long *out)
{
    const char *p = s + (*s == '+' || *s == '-');
    if (!isdigit((unsigned char)*p))
        return false;
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (errno || *end)
        return false;
    *out = v;
    return true;
}

/* Digits followed by one of units (case-insensitive). */
static bool parse_with_unit(const char *s, const unit *units, size_t nunits, long long *out)
{
    if (!isdigit((unsigned char)*s))
        return false;
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (errno)
        return false;
    for (size_t i = 0; i < nunits; i++) {
        if (strcasecmp(end, units[i].name) == 0) {
            if (v > LLONG_MAX / units[i].mult)
                return false;
            *out = v * units[i].mult;
            return true;
        }
    }
    return false;
}

static bool parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = { "true", "yes", "on" }, *const no[] = { "false", "no", "off" };
    for (size_t i = 0; i < countof(yes); i++) {
        if (strcasecmp(s, yes[i]) == 0)
            return *out = true, true;
        if (strcasecmp(s, no[i]) == 0)
            return *out = false, true;
    }
    return false;
}

static bool parse_double(const char *s, double *out)
{
    if (!*s || isspace((unsigned char)*s))
        return false;
    char *end;
    errno = 0;
    double d = strtod(s, &end);
    if (errno || *end || !isfinite(d))
        return false;
    *out = d;
    return true;
}

static bool parse_number(kind k, const char *s, long long *out)
{
    if (k == K_MS)
        return parse_with_unit(s, ms_units, countof(ms_units), out);
    if (k == K_BYTES)
        return parse_with_unit(s, byte_units, countof(byte_units), out);
    return parse_integer(s, out);
}

static int choice_index(const char *const *choices, const char *s)
{
    for (int i = 0; choices[i]; i++)
        if (strcasecmp(choices[i], s) == 0)
            return i;
    return -1;
}

static void store_int(const key_spec *k, void *f, long long v)
{
    switch (k->kind) {
    case K_INT:
        *(int *)f = (int)v;
        break;
    case K_LONG:
    case K_MS:
        *(long *)f = (long)v;
        break;
    case K_ULONG:
        *(unsigned long *)f = (unsigned long)v;
        break;
    default:
        *(size_t *)f = (size_t)v;
        break;
    }
}

static void fmt_ms(char *out, size_t cap, long long v)
{
    if (v != 0 && v % MS_HOUR == 0)
        snprintf(out, cap, "%lldh", v / MS_HOUR);
    else if (v != 0 && v % 60000 == 0)
        snprintf(out, cap, "%lldm", v / 60000);
    else if (v != 0 && v % 1000 == 0)
        snprintf(out, cap, "%llds", v / 1000);
    else
        snprintf(out, cap, "%lldms", v);
}

static void fmt_bytes(char *out, size_t cap, long long v)
{
    if (v != 0 && v % (1LL << 30) == 0)
        snprintf(out, cap, "%lldGiB", v >> 30);
    else if (v != 0 && v % (1LL << 20) == 0)
        snprintf(out, cap, "%lldMiB", v >> 20);
    else if (v != 0 && v % 1024 == 0)
        snprintf(out, cap, "%lldKiB", v >> 10);
    else
        snprintf(out, cap, "%lld", v);
}

/* "what was expected" for a key, as in "expected X, got Y". */
static const char *expect(ctx *c, const key_spec *k)
{
    char a[32], b[32];
    const char *r = NULL;
    switch (k->kind) {
    case K_STR:
        return "a string";
    case K_BOOL:
        return "true or false (or yes/no, on/off)";
    case K_INT:
    case K_LONG:
    case K_ULONG:
    case K_COUNT:
        r = pool_printf(c->tmp, "an integer between %lld and %lld", (long long)k->lo, (long long)k->hi);
        break;
    case K_MS:
        fmt_ms(a, sizeof a, (long long)k->lo);
        fmt_ms(b, sizeof b, (long long)k->hi);
        r = pool_printf(c->tmp, "a duration between %s and %s (milliseconds, or a number with ms, s, m or h)", a, b);
        break;
    case K_BYTES:
        fmt_bytes(a, sizeof a, (long long)k->lo);
        fmt_bytes(b, sizeof b, (long long)k->hi);
        r = pool_printf(c->tmp, "a size between %s and %s (bytes, or a number with KiB, MiB, GiB, KB, MB or GB)",
                        a, b);
        break;
    case K_DOUBLE:
        r = pool_printf(c->tmp, "a number between %g and %g", k->lo, k->hi);
        break;
    case K_ENUM:
    case K_ENUM_INT: {
        char list[160];
        size_t o = 0;
        for (size_t i = 0; k->choices[i] && o < sizeof list; i++)
            o += (size_t)snprintf(list + o, sizeof list - o, "%s%s", i ? ", " : "", k->choices[i]);
        r = pool_printf(c->tmp, "one of %s", list);
        break;
    }
    default:
        break;
    }
    return r ? r : "a value";
}

/* ---- converting values ---- */

typedef enum cv { CV_SET, CV_UNSET, CV_EMPTY, CV_BAD } cv;

/* The expanded text of a scalar value. CV_UNSET for a YAML null or an unset
 * ${VAR}; CV_BAD after reporting a non-scalar or a bad expansion. */
static cv scalar_value(ctx *c, const node *n, const char *path, const key_spec *k, const char *what,
                       const char **out, size_t *len)
{
    if (n->kind != N_SCALAR) {
        ERR(c, n, path, "expected %s, got %s", k ? expect(c, k) : what, describe(c, n));
        return CV_BAD;
    }
    if (is_null(n))
        return CV_UNSET;
    exp_result r = expand(c, n, path, out, len);
    return r == EXP_ERROR ? CV_BAD : r == EXP_UNSET ? CV_UNSET : CV_SET;
}

static cv convert_scalar(ctx *c, const key_spec *k, const node *n, const char *path, void *base)
{
    const char *s;
    size_t len;
    cv r = scalar_value(c, n, path, k, NULL, &s, &len);
    if (r != CV_SET)
        return r;
    void *f = (char *)base + k->off;
    if (memchr(s, '\0', len)) {
        ERR(c, n, path, "expected %s, got a value containing a NUL byte", expect(c, k));
        return CV_BAD;
    }
    switch (k->kind) {
    case K_STR: {
        if (len == 0)
            return CV_EMPTY;
        const char *v = pool_strndup(c->cfg->pool, s, len);
        if (!v) {
            c->nomem = true;
            return CV_BAD;
        }
        *(const char **)f = v;
        if (k->check && !k->check(c, n, path, (const char **)f))
            return CV_BAD;
        return CV_SET;
    }
    case K_BOOL: {
        bool b;
        if (!parse_bool(s, &b))
            break;
        *(bool *)f = b;
        return CV_SET;
    }
    case K_DOUBLE: {
        double d;
        if (!parse_double(s, &d) || d < k->lo || d > k->hi)
            break;
        *(double *)f = d;
        return CV_SET;
    }
    case K_ENUM:
    case K_ENUM_INT: {
        int i = choice_index(k->choices, s);
        if (i < 0) {
            const char *hint = suggest_choice(c, k->choices, s, len);
            ERR(c, n, path, "expected %s, got %s%s%s%s", expect(c, k), quoted(c, s, len), hint ? "; did you mean '" : "",
                hint ? hint : "", hint ? "'?" : "");
            return CV_BAD;
        }
        if (k->kind == K_ENUM)
            *(const char **)f = k->choices[i];
        else
            *(int *)f = i;
        return CV_SET;
    }
    default: {
        long long v;
        if (!parse_number(k->kind, s, &v) || v < (long long)k->lo || v > (long long)k->hi)
            break;
        store_int(k, f, v);
        return CV_SET;
    }
    }
    ERR(c, n, path, "expected %s, got %s", expect(c, k), quoted(c, s, len));
    return CV_BAD;
}

/* Stores the key's default (trusted text from the table, not range-checked). */
static void set_default(const key_spec *k, void *base)
{
    void *f = (char *)base + k->off;
    switch (k->kind) {
    case K_STR:
        *(const char **)f = k->def;
        break;
    case K_BOOL: {
        bool b = false;
        if (k->def)
            (void)parse_bool(k->def, &b);
        *(bool *)f = b;
        break;
    }
    case K_DOUBLE: {
        double d = 0;
        if (k->def)
            (void)parse_double(k->def, &d);
        *(double *)f = d;
        break;
    }
    case K_ENUM:
    case K_ENUM_INT: {
        int i = k->def ? choice_index(k->choices, k->def) : 0;
        if (NEVER(i < 0))
            i = 0;
        if (k->kind == K_ENUM)
            *(const char **)f = k->choices[i];
        else
            *(int *)f = i;
        break;
    }
    case K_INT:
    case K_LONG:
    case K_ULONG:
    case K_COUNT:
    case K_BYTES:
    case K_MS: {
        long long v = 0;
        if (k->def)
            (void)parse_number(k->kind, k->def, &v);
        store_int(k, f, v);
        break;
    }
    default:
        break;
    }
}

/* A list of strings. Items whose ${VAR} is unset are stored as NULL (so
 * indexes still match the nodes for later checks) and removed by compact(). */
static void convert_strlist(ctx *c, const key_spec *k, const node *v, const char *path, void *base)
{
    const char ***fp = (const char ***)(void *)((char *)base + k->off);
    size_t *np = (size_t *)(void *)((char *)base + k->off_n);
    *fp = NULL;
    *np = 0;
    if (!v || is_null(v))
        return;
    if (v->kind != N_SEQ) {
        ERR(c, v, path, "expected a list of strings, got %s", describe(c, v));
        return;
    }
    const char **arr = pool_calloc(c->cfg->pool, (v->nkids + 1) * sizeof *arr);
    if (!arr) {
        c->nomem = true;
        return;
    }
    for (size_t i = 0; i < v->nkids; i++) {
        const node *it = v->kids[i];
        char ip[PATH_CAP];
        snprintf(ip, sizeof ip, "%s[%zu]", path, i);
        const char *s;
        size_t len;
        if (is_null(it)) {
            ERR(c, it, ip, "expected a non-empty string, got nothing");
            continue;
        }
        if (scalar_value(c, it, ip, NULL, "a string", &s, &len) != CV_SET)
            continue;
        if (len == 0 || memchr(s, '\0', len)) {
            ERR(c, it, ip, "expected a non-empty string without NUL bytes, got %s", quoted(c, s, len));
            continue;
        }
        arr[i] = pool_strndup(c->cfg->pool, s, len);
        if (!arr[i])
            c->nomem = true;
    }
    *fp = arr;
    *np = v->nkids;
}

static void compact(const char **a, size_t *n)
{
    size_t w = 0;
    for (size_t r = 0; a && r < *n; r++)
        if (a[r])
            a[w++] = a[r];
    *n = w;
}

static bool is_token_char(unsigned char ch)
{
    return isalnum(ch) || (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

/* A mapping of header names to values, sent upstream as they are. */
static void convert_headers(ctx *c, const key_spec *k, const node *v, const char *path, void *base)
{
    cfg_header **fp = (cfg_header **)(void *)((char *)base + k->off);
    size_t *np = (size_t *)(void *)((char *)base + k->off_n);
    *fp = NULL;
    *np = 0;
    if (!v || is_null(v))
        return;
    if (v->kind != N_MAP) {
        ERR(c, v, path, "expected a mapping of header names to values, got %s", describe(c, v));
        return;
    }
    size_t npairs = v->nkids / 2;
    if (npairs > CFG_MAX_HEADERS) {
        ERR(c, v, path, "expected at most %d headers, got %zu", CFG_MAX_HEADERS, npairs);
        return;
    }
    cfg_header *arr = pool_calloc(c->cfg->pool, (npairs + 1) * sizeof *arr);
    if (!arr) {
        c->nomem = true;
        return;
    }
    size_t n = 0;
    for (size_t j = 0; j + 1 < v->nkids; j += 2) {
        const node *kn = v->kids[j], *vn = v->kids[j + 1];
        char hp[PATH_CAP];
        if (kn->kind != N_SCALAR) {
            ERR(c, kn, path, "expected a header name, got %s", describe(c, kn));
            continue;
        }
        join_path(hp, path, kn->text, kn->len);
        bool ok = kn->len > 0;
        for (size_t i = 0; i < kn->len && ok; i++)
            ok = is_token_char((unsigned char)kn->text[i]);
        if (!ok) {
            ERR(c, kn, hp, "invalid header name %s", quoted(c, kn->text, kn->len));
            continue;
        }
        bool dup = false;
        for (size_t i = 0; i < j; i += 2)
            dup = dup || (v->kids[i]->kind == N_SCALAR && sv_ieq(sv_make(v->kids[i]->text, v->kids[i]->len),
                                                                  sv_make(kn->text, kn->len)));
        if (dup) {
            ERR(c, kn, hp, "duplicate header %s", quoted(c, kn->text, kn->len));
            continue;
        }
        const char *s;
        size_t len;
        if (is_null(vn)) {
            ERR(c, vn, hp, "expected a header value, got nothing");
            continue;
        }
        if (scalar_value(c, vn, hp, NULL, "a header value", &s, &len) != CV_SET || len == 0)
            continue; /* an unset or empty value drops the header */
        if (memchr(s, '\r', len) || memchr(s, '\n', len) || memchr(s, '\0', len)) {
            ERR(c, vn, hp, "a header value must not contain CR, LF or NUL, got %s", quoted(c, s, len));
            continue;
        }
        arr[n].name = pool_strndup(c->cfg->pool, kn->text, kn->len);
        arr[n].value = pool_strndup(c->cfg->pool, s, len);
        if (!arr[n].name || !arr[n].value)
            c->nomem = true;
        n++;
    }
    *fp = arr;
    *np = n;
}

/* ---- the walker ---- */

static void process_map(ctx *c, const key_table *t, const node *map, const char *path, void *base,
                        const node **given);

static void unknown_key(ctx *c, const key_table *t, const node *kn, const char *kp)
{
    const char *key = printable(c, kn->text, kn->len);
    if (sv_eq_cstr(sv_make(kn->text, kn->len), "<<")) {
        ERR(c, kn, kp, "YAML merge keys ('<<') are not supported; repeat the keys instead");
        return;
    }
    const char *hint = suggest_key(c, t, kn->text, kn->len);
    ERR(c, kn, kp, "unknown %s '%s'%s%s%s", t->top ? "section" : "key", key, hint ? "; did you mean '" : "",
        hint ? hint : "", hint ? "'?" : "");
}

/* Matches a mapping's keys against the table: given[i] gets the value of
 * keys[i]; unknown, duplicate and non-string keys are reported. */
static void collect_keys(ctx *c, const key_table *t, const node *map, const char *path, const node **given)
{
    const node *keynode[CFG_MAX_KEYS] = { 0 };
    for (size_t j = 0; j + 1 < map->nkids; j += 2) {
        const node *kn = map->kids[j], *vn = map->kids[j + 1];
        if (kn->kind != N_SCALAR) {
            ERR(c, kn, path, "expected a key name, got %s", describe(c, kn));
            continue;
        }
        char kp[PATH_CAP];
        join_path(kp, path, kn->text, kn->len);
        int idx = -1;
        for (size_t i = 0; i < t->nkeys && idx < 0; i++)
            if (sv_eq_cstr(sv_make(kn->text, kn->len), t->keys[i].name))
                idx = (int)i;
        if (idx < 0 && t->top && sv_starts(sv_make(kn->text, kn->len), SV("x-"))) {
            continue; /* x-NAME: a home for anchors, ignored (as docker compose does) */
        } else if (idx < 0) {
            unknown_key(c, t, kn, kp);
        } else if (keynode[idx]) {
            ERR(c, kn, kp, "duplicate key '%s' (first given at line %d)", t->keys[idx].name, keynode[idx]->line);
        } else {
            keynode[idx] = kn;
            given[idx] = vn;
        }
    }
}

static void process_list(ctx *c, const key_spec *k, const node *seq, const char *path, void *base)
{
    const key_table *t = k->sub;
    size_t n = 0;
    if (seq && is_null(seq))
        seq = NULL;
    if (seq && seq->kind != N_SEQ) {
        ERR(c, seq, path, "expected a list of mappings, got %s", describe(c, seq));
        seq = NULL;
    }
    if (seq)
        n = seq->nkids;
    /* one spare element: the providers list adds the default simulator */
    char *arr = pool_calloc(c->cfg->pool, (n + 1) * k->elem_size);
    const node ***given = pool_calloc(c->tmp, (n + 1) * sizeof *given);
    if (!arr || !given) {
        c->nomem = true;
        return;
    }
    for (size_t i = 0; i < n && !c->nomem; i++) {
        const node *item = seq->kids[i];
        char ep[PATH_CAP];
        snprintf(ep, sizeof ep, "%s[%zu]", path, i);
        given[i] = pool_calloc(c->tmp, t->nkeys * sizeof **given);
        if (!given[i]) {
            c->nomem = true;
            return;
        }
        if (item->kind != N_MAP) {
            ERR(c, item, ep, "expected a mapping, got %s", describe(c, item));
            continue;
        }
        process_map(c, t, item, ep, arr + i * k->elem_size, given[i]);
    }
    *(void **)(void *)((char *)base + k->off) = arr;
    *(size_t *)(void *)((char *)base + k->off_n) = n;
    if (k->list_finish && !c->nomem)
        k->list_finish(c, base, given, path);
}

/* Maps one mapping node (NULL: the section is absent, defaults only) onto
 * the struct at base through table t. given (nkeys entries) receives the
 * value nodes when the caller needs them afterwards, or may be NULL. */
static void process_map(ctx *c, const key_table *t, const node *map, const char *path, void *base,
                        const node **given)
{
    if (NEVER(t->nkeys > CFG_MAX_KEYS))
        return;
    if (!given)
        given = pool_calloc(c->tmp, t->nkeys * sizeof *given);
    if (!given) {
        c->nomem = true;
        return;
    }
    if (map)
        collect_keys(c, t, map, path, given);
    for (size_t i = 0; i < t->nkeys && !c->nomem; i++) {
        const key_spec *k = &t->keys[i];
        const node *v = given[i];
        char kp[PATH_CAP];
        join_path(kp, path, k->name, strlen(k->name));
        switch (k->kind) {
        case K_MAP:
            if (v && !is_null(v) && v->kind != N_MAP) {
                ERR(c, v, kp, "expected a mapping, got %s", describe(c, v));
                v = NULL;
            }
            process_map(c, k->sub, v && !is_null(v) ? v : NULL, kp, (char *)base + k->off, NULL);
            break;
        case K_LIST:
            process_list(c, k, v, kp, base);
            break;
        case K_IGNORED:
            if (v)
                WARN(c, v, kp, "section '%s' is not supported by this version and is ignored", k->name);
            break;
        case K_STRLIST:
            convert_strlist(c, k, v, kp, base);
            break;
        case K_HEADERS:
            convert_headers(c, k, v, kp, base);
            break;
        default: {
            cv r = v ? convert_scalar(c, k, v, kp, base) : CV_UNSET;
            if (r == CV_SET)
                break;
            set_default(k, base);
            if (!(k->flags & F_REQUIRED) || r == CV_BAD)
                break;
            if (!v)
                ERR(c, map, path, "missing required key '%s'", k->name);
            else if (r == CV_EMPTY)
                ERR(c, v, kp, "'%s' must not be empty", k->name);
            else
                ERR(c, v, kp, "a value is required for '%s'", k->name);
            break;
        }
        }
    }
    if (t->finish && !c->nomem)
        t->finish(c, base, map, given, path);
}

/* ---- name indexes ---- */

static int sv_cmp(const char *a, size_t al, const char *b, size_t bl)
{
    int r = memcmp(a, b, MIN(al, bl));
    return r ? r : (al < bl ? -1 : al > bl);
}

static int ent_cmp(const void *x, const void *y)
{
    const name_ent *a = x, *b = y;
    int r = sv_cmp(a->name, a->len, b->name, b->len);
    return r ? r : (a->idx < b->idx ? -1 : a->idx > b->idx);
}

/* Sorts the given names, reports each repeat at its own place and keeps the
 * first of each for lookups. names[i] may be NULL (an entry with errors). */
static void index_build(ctx *c, name_index *ix, const char **names, const node **at, size_t n, const char *what,
                        const char *listpath)
{
    ix->e = pool_calloc(c->tmp, (n + 1) * sizeof *ix->e);
    ix->n = 0;
    if (!ix->e) {
        c->nomem = true;
        return;
    }
    for (size_t i = 0; i < n; i++)
        if (names[i])
            ix->e[ix->n++] = (name_ent){ names[i], strlen(names[i]), i, at[i] };
    qsort(ix->e, ix->n, sizeof *ix->e, ent_cmp);
    size_t w = 0;
    for (size_t r = 0; r < ix->n; r++) {
        const name_ent *e = &ix->e[r];
        if (w > 0 && sv_cmp(ix->e[w - 1].name, ix->e[w - 1].len, e->name, e->len) == 0) {
            char p[PATH_CAP];
            snprintf(p, sizeof p, "%s[%zu].name", listpath, e->idx);
            const node *first = ix->e[w - 1].at;
            ERR(c, e->at, p, "duplicate %s name '%s' (first defined at line %d)", what, printable(c, e->name, e->len),
                first ? first->line : 0);
            continue;
        }
        ix->e[w++] = *e;
    }
    ix->n = w;
}

static const name_ent *index_find(const name_index *ix, const char *s, size_t len)
{
    size_t lo = 0, hi = ix->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int r = sv_cmp(s, len, ix->e[mid].name, ix->e[mid].len);
        if (r == 0)
            return &ix->e[mid];
        if (r < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

/* Checks a fallback or deployment target: a configured model, or
 * PROVIDER/MODEL with a configured provider. Reports and returns false. */
static bool check_ref(ctx *c, const char *ref, const node *at, const char *path)
{
    size_t len = strlen(ref);
    if (index_find(&c->models, ref, len))
        return true;
    const char *slash = strchr(ref, '/');
    if (slash) {
        size_t pl = (size_t)(slash - ref);
        if (index_find(&c->providers, ref, pl)) {
            if (slash[1])
                return true;
            ERR(c, at, path, "'%s' names no model after the provider", printable(c, ref, len));
            return false;
        }
        const char *hint = suggest_name(c, &c->providers, ref, pl);
        ERR(c, at, path, "unknown provider '%s' in '%s'%s%s%s; expected a configured model or PROVIDER/MODEL",
            printable(c, ref, pl), printable(c, ref, len), hint ? " (did you mean '" : "", hint ? hint : "",
            hint ? "'?)" : "");
        return false;
    }
    const char *hint = suggest_name(c, &c->models, ref, len);
    ERR(c, at, path, "unknown model '%s'%s%s%s; expected a configured model or PROVIDER/MODEL",
        printable(c, ref, len), hint ? " (did you mean '" : "", hint ? hint : "", hint ? "'?)" : "");
    return false;
}

/* ------------------------------------------------------------------ */
/* Validators and finish hooks                                        */

static bool check_listen(ctx *c, const node *n, const char *path, const char **v)
{
    if (config_parse_listen(*v, NULL, 0, NULL) == ERR_OK)
        return true;
    ERR(c, n, path, "expected HOST:PORT, [IPV6]:PORT or :PORT with a port between 1 and 65535, got %s",
        quoted(c, *v, strlen(*v)));
    return false;
}

/* http(s)://HOST[...] without spaces; trailing slashes are removed. */
static bool check_url(ctx *c, const node *n, const char *path, const char **v)
{
    const char *s = *v;
    size_t len = strlen(s);
    size_t skip = strncasecmp(s, "http://", 7) == 0 ? 7 : strncasecmp(s, "https://", 8) == 0 ? 8 : 0;
    bool ok = skip && len > skip && s[skip] != '/';
    for (size_t i = 0; ok && i < len; i++)
        ok = (unsigned char)s[i] > 0x20 && s[i] != 0x7f;
    if (!ok) {
        ERR(c, n, path, "expected an http:// or https:// URL, got %s", quoted(c, s, len));
        return false;
    }
    while (len > skip + 1 && s[len - 1] == '/')
        len--;
    if (len != strlen(s)) {
        const char *t = pool_strndup(c->cfg->pool, s, len);
        if (!t) {
            c->nomem = true;
            return false;
        }
        *v = t;
    }
    return true;
}

static bool check_provider_name(ctx *c, const node *n, const char *path, const char **v)
{
    const char *s = *v;
    for (const char *p = s; *p; p++) {
        if (!isalnum((unsigned char)*p) && *p != '.' && *p != '_' && *p != '-') {
            ERR(c, n, path, "expected a name of letters, digits, '.', '_' or '-', got %s", quoted(c, s, strlen(s)));
            return false;
        }
    }
    return true;
}

static bool check_model_name(ctx *c, const node *n, const char *path, const char **v)
{
    for (const char *p = *v; *p; p++) {
        if ((unsigned char)*p <= 0x20 || *p == 0x7f) {
            ERR(c, n, path, "expected a name without spaces or control characters, got %s",
                quoted(c, *v, strlen(*v)));
            return false;
        }
    }
    return true;
}

/* ca_file: a PEM bundle the process can read now (not at the first request). */
static bool check_readable_file(ctx *c, const node *n, const char *path, const char **v)
{
    FILE *f = fopen(*v, "rb");
    if (!f) {
        ERR(c, n, path, "cannot read %s: %s", quoted(c, *v, strlen(*v)), strerror(errno));
        return false;
    }
    fclose(f);
    return true;
}

static bool check_store_url(ctx *c, const node *n, const char *path, const char **v)
{
    const char *s = *v;
    if (strncmp(s, "sqlite://", 9) == 0 && s[9])
        return true;
    if ((strncmp(s, "postgres://", 11) == 0 && s[11]) || (strncmp(s, "postgresql://", 13) == 0 && s[13])) {
        WARN(c, n, path, "PostgreSQL stores are not supported by this version yet");
        return true;
    }
    ERR(c, n, path, "expected sqlite://PATH or postgres://..., got %s", quoted(c, s, strlen(s)));
    return false;
}

static const key_table provider_table, model_table, deployment_table, retry_table;

static void retry_finish(ctx *c, void *obj, const node *map, const node **given, const char *path)
{
    const cfg_retry *r = obj;
    if (r->base_ms > r->max_ms) {
        char kp[PATH_CAP];
        join_path(kp, path, "base_ms", 7);
        const node *at = given_of(&retry_table, given, "base_ms");
        ERR(c, at ? at : map, kp, "base_ms (%ld) must not be larger than max_ms (%ld)", r->base_ms, r->max_ms);
    }
}

static void provider_finish(ctx *c, void *obj, const node *map, const node **given, const char *path)
{
    cfg_provider *p = obj;
    const key_table *t = &provider_table;
    p->line = map ? map->line : 0;
    if (p->type != PROVIDER_SIMULATOR) {
        for (size_t i = 0; i < t->nkeys; i++) {
            if ((t->keys[i].flags & F_SIM) && given[i]) {
                char kp[PATH_CAP];
                join_path(kp, path, t->keys[i].name, strlen(t->keys[i].name));
                ERR(c, given[i], kp, "'%s' only applies to providers of type simulator", t->keys[i].name);
            }
        }
    }
    const node *type_given = given_of(t, given, "type");
    if (!p->base_url) {
        if (p->type == PROVIDER_OPENAI)
            p->base_url = "https://api.openai.com/v1";
        else if (p->type == PROVIDER_ANTHROPIC)
            p->base_url = "https://api.anthropic.com/v1";
        else if (p->type == PROVIDER_AZURE && type_given)
            ERR(c, map, path, "missing required key 'base_url' (azure needs https://RESOURCE.openai.azure.com)");
    } else if (p->type == PROVIDER_SIMULATOR) {
        char kp[PATH_CAP];
        join_path(kp, path, "base_url", 8);
        WARN(c, given_of(t, given, "base_url"), kp, "base_url is not used by providers of type simulator");
    }
    if (!p->api_version) {
        if (p->type == PROVIDER_ANTHROPIC)
            p->api_version = "2023-06-01";
        else if (p->type == PROVIDER_AZURE)
            p->api_version = "2024-10-21";
    }
    if (p->max_retries < 0)
        p->max_retries = c->cfg->retry.max_retries;
    compact(p->sim.canned, &p->sim.ncanned);
    if (p->type == PROVIDER_SIMULATOR && p->sim.default_mode && strcmp(p->sim.default_mode, "canned") == 0 &&
        p->sim.ncanned == 0) {
        char kp[PATH_CAP];
        join_path(kp, path, "mode", 4);
        const node *at = given_of(t, given, "mode");
        ERR(c, at ? at : map, kp, "mode 'canned' needs a non-empty 'canned' list");
    }
}

/* A synthetic { name: sim, type: simulator } mapping for the default. */
static const node *default_sim_node(ctx *c)
{
    static const char *const text[] = { "name", "sim", "type", "simulator" };
    node *m = pool_calloc(c->tmp, sizeof *m);
    node **kids = pool_calloc(c->tmp, countof(text) * sizeof *kids);
    if (!m || !kids)
        return NULL;
    for (size_t i = 0; i < countof(text); i++) {
        node *s = pool_calloc(c->tmp, sizeof *s);
        if (!s)
            return NULL;
        s->kind = N_SCALAR;
        s->text = text[i];
        s->len = strlen(text[i]);
        s->done = true;
        kids[i] = s;
    }
    m->kind = N_MAP;
    m->kids = kids;
    m->nkids = m->capkids = countof(text);
    m->done = true;
    return m;
}

static void providers_done(ctx *c, void *base, const node ***given, const char *path)
{
    config *cfg = base;
    const key_table *t = &provider_table;
    if (cfg->nproviders == 0) { /* no providers: the built-in simulator "sim" */
        const node *m = default_sim_node(c);
        given[0] = pool_calloc(c->tmp, t->nkeys * sizeof **given);
        if (!m || !given[0]) {
            c->nomem = true;
            return;
        }
        process_map(c, t, m, "providers[0]", &cfg->providers[0], given[0]);
        cfg->nproviders = 1;
    }
    const char **names = pool_calloc(c->tmp, (cfg->nproviders + 1) * sizeof *names);
    const node **at = pool_calloc(c->tmp, (cfg->nproviders + 1) * sizeof *at);
    if (!names || !at) {
        c->nomem = true;
        return;
    }
    int name_i = key_index(t, "name");
    for (size_t i = 0; i < cfg->nproviders; i++) {
        names[i] = cfg->providers[i].name;
        at[i] = given[i] ? given[i][name_i] : NULL;
    }
    index_build(c, &c->providers, names, at, cfg->nproviders, "provider", path);
}

static void models_done(ctx *c, void *base, const node ***given, const char *path)
{
    config *cfg = base;
    const key_table *t = &model_table;
    int name_i = key_index(t, "name"), prov_i = key_index(t, "provider"), fb_i = key_index(t, "fallbacks");
    const char **names = pool_calloc(c->tmp, (cfg->nmodels + 1) * sizeof *names);
    const node **at = pool_calloc(c->tmp, (cfg->nmodels + 1) * sizeof *at);
    if (!names || !at) {
        c->nomem = true;
        return;
    }
    for (size_t i = 0; i < cfg->nmodels; i++) {
        cfg_model *m = &cfg->models[i];
        names[i] = m->name;
        at[i] = given[i][name_i];
        if (m->provider && !index_find(&c->providers, m->provider, strlen(m->provider))) {
            char kp[PATH_CAP];
            snprintf(kp, sizeof kp, "%s[%zu].provider", path, i);
            const char *hint = suggest_name(c, &c->providers, m->provider, strlen(m->provider));
            ERR(c, given[i][prov_i], kp, "unknown provider '%s'%s%s%s", printable(c, m->provider, strlen(m->provider)),
                hint ? "; did you mean '" : "", hint ? hint : "", hint ? "'?" : "");
        }
    }
    index_build(c, &c->models, names, at, cfg->nmodels, "model", path);
    for (size_t i = 0; i < cfg->nmodels; i++) {
        cfg_model *m = &cfg->models[i];
        const node *seq = given[i][fb_i];
        for (size_t j = 0; j < m->nfallbacks; j++) {
            const char *fb = m->fallbacks[j];
            if (!fb)
                continue;
            char kp[PATH_CAP];
            snprintf(kp, sizeof kp, "%s[%zu].fallbacks[%zu]", path, i, j);
            const node *item = seq && seq->kind == N_SEQ && j < seq->nkids ? seq->kids[j] : seq;
            if (m->name && strcmp(fb, m->name) == 0)
                ERR(c, item, kp, "model '%s' cannot fall back to itself", printable(c, fb, strlen(fb)));
            else
                check_ref(c, fb, item, kp);
        }
        compact(m->fallbacks, &m->nfallbacks);
    }
}

static void model_finish(ctx *c, void *obj, const node *map, const node **given, const char *path)
{
    ((cfg_model *)obj)->line = map ? map->line : 0;
}

static void deployment_finish(ctx *c, void *obj, const node *map, const node **given, const char *path)
{
    ((cfg_deployment *)obj)->line = map ? map->line : 0;
}

static void deployments_done(ctx *c, void *base, const node ***given, const char *path)
{
    config *cfg = base;
    const key_table *t = &deployment_table;
    int name_i = key_index(t, "name"), model_i = key_index(t, "model");
    const char **names = pool_calloc(c->tmp, (cfg->ndeployments + 1) * sizeof *names);
    const node **at = pool_calloc(c->tmp, (cfg->ndeployments + 1) * sizeof *at);
    if (!names || !at) {
        c->nomem = true;
        return;
    }
    for (size_t i = 0; i < cfg->ndeployments; i++) {
        const cfg_deployment *d = &cfg->deployments[i];
        names[i] = d->name;
        at[i] = given[i][name_i];
        char kp[PATH_CAP];
        const name_ent *clash = d->name ? index_find(&c->models, d->name, strlen(d->name)) : NULL;
        if (clash) {
            snprintf(kp, sizeof kp, "%s[%zu].name", path, i);
            ERR(c, at[i], kp, "deployment name '%s' is already the name of a model (line %d)",
                printable(c, d->name, strlen(d->name)), clash->at ? clash->at->line : 0);
        }
        if (d->model) {
            snprintf(kp, sizeof kp, "%s[%zu].model", path, i);
            check_ref(c, d->model, given[i][model_i], kp);
        }
    }
    name_index ix;
    index_build(c, &ix, names, at, cfg->ndeployments, "deployment", path);
}

/* ------------------------------------------------------------------ */
/* The tables                                                         */

static const char *const log_levels[] = { "debug", "info", "warn", "error", NULL };
static const char *const log_formats[] = { "text", "json", NULL };
static const char *const provider_types[] = { "openai", "azure", "anthropic", "simulator", NULL };
static const char *const sim_modes[] = { "echo", "lorem", "canned", NULL };

#define K(nm, kd, T, field) .name = (nm), .kind = (kd), .off = offsetof(T, field)
#define LIST(T, field, nfield) .off = offsetof(T, field), .off_n = offsetof(T, nfield)
#define TABLE(keys, fin) { (keys), countof(keys), (fin), false }

static const key_spec retry_keys[] = {
    { K("max_retries", K_INT, cfg_retry, max_retries), .def = "2", .lo = 0, .hi = 10 },
    { K("base_ms", K_MS, cfg_retry, base_ms), .def = "200", .lo = 1, .hi = 60000 },
    { K("max_ms", K_MS, cfg_retry, max_ms), .def = "8000", .lo = 1, .hi = 600000 },
};
static const key_table retry_table = TABLE(retry_keys, retry_finish);

/* server: fields relative to config (log_* go to config.log) */
static const key_spec server_keys[] = {
    { K("listen", K_STR, config, server.listen), .def = "127.0.0.1:8080", .check = check_listen },
    { K("workers", K_INT, config, server.workers), .def = "0", .lo = 0, .hi = 256 },
    { K("admin_key", K_STR, config, server.admin_key) },
    { K("insecure", K_BOOL, config, server.insecure), .def = "false" },
    { K("max_header_bytes", K_BYTES, config, server.max_header_bytes), .def = "16KiB", .lo = 1024, .hi = 1 << 20 },
    { K("max_headers", K_COUNT, config, server.max_headers), .def = "64", .lo = 1, .hi = 1000 },
    { K("max_body_bytes", K_BYTES, config, server.max_body_bytes), .def = "8MiB", .lo = 1024, .hi = 1 << 30 },
    { K("max_connections", K_COUNT, config, server.max_connections), .def = "10000", .lo = 1, .hi = 1000000 },
    { K("header_timeout_ms", K_MS, config, server.header_timeout_ms), .def = "10000", .lo = 1, .hi = MS_HOUR },
    { K("body_timeout_ms", K_MS, config, server.body_timeout_ms), .def = "30000", .lo = 1, .hi = MS_HOUR },
    { K("idle_timeout_ms", K_MS, config, server.idle_timeout_ms), .def = "60000", .lo = 1, .hi = MS_HOUR },
    { K("shutdown_timeout_ms", K_MS, config, server.shutdown_timeout_ms), .def = "30000", .lo = 0, .hi = MS_HOUR },
    { K("max_stream_buffer", K_BYTES, config, server.max_stream_buffer), .def = "1MiB", .lo = 4096, .hi = 1 << 30 },
    { K("log_level", K_ENUM, config, log.level), .def = "info", .choices = log_levels },
    { K("log_format", K_ENUM, config, log.format), .def = "text", .choices = log_formats },
    { K("retry", K_MAP, config, retry), .sub = &retry_table },
};
static const key_table server_table = TABLE(server_keys, NULL);

static const key_spec store_keys[] = {
    { K("url", K_STR, config, store_url), .def = "sqlite://./genaiops.db", .check = check_store_url },
};
static const key_table store_table = TABLE(store_keys, NULL);

static const key_spec provider_keys[] = {
    { K("name", K_STR, cfg_provider, name), .check = check_provider_name, .flags = F_REQUIRED },
    { K("type", K_ENUM_INT, cfg_provider, type), .choices = provider_types, .flags = F_REQUIRED },
    { K("base_url", K_STR, cfg_provider, base_url), .check = check_url },
    { K("api_key", K_STR, cfg_provider, api_key) },
    { K("api_version", K_STR, cfg_provider, api_version) },
    { K("ca_file", K_STR, cfg_provider, ca_file), .check = check_readable_file },
    { K("connect_timeout_ms", K_MS, cfg_provider, connect_timeout_ms), .def = "5000", .lo = 1, .hi = 600000 },
    { K("timeout_ms", K_MS, cfg_provider, timeout_ms), .def = "600000", .lo = 1, .hi = MS_DAY },
    /* -1: not given, the provider_finish takes server.retry.max_retries */
    { K("max_retries", K_INT, cfg_provider, max_retries), .def = "-1", .lo = 0, .hi = 10 },
    { .name = "headers", .kind = K_HEADERS, LIST(cfg_provider, headers, nheaders) },
    { K("mode", K_ENUM, cfg_provider, sim.default_mode), .def = "echo", .choices = sim_modes, .flags = F_SIM },
    { K("latency_ms", K_MS, cfg_provider, sim.latency_ms), .def = "0", .lo = 0, .hi = 600000, .flags = F_SIM },
    { K("ttft_ms", K_MS, cfg_provider, sim.ttft_ms), .def = "0", .lo = 0, .hi = 600000, .flags = F_SIM },
    { K("token_ms", K_MS, cfg_provider, sim.token_ms), .def = "0", .lo = 0, .hi = 60000, .flags = F_SIM },
    { K("max_tokens", K_LONG, cfg_provider, sim.max_tokens), .def = "64", .lo = 1, .hi = 1000000, .flags = F_SIM },
    { K("error_rate", K_DOUBLE, cfg_provider, sim.error_rate), .def = "0", .lo = 0, .hi = 1, .flags = F_SIM },
    { K("error_status", K_INT, cfg_provider, sim.error_status), .def = "500", .lo = 400, .hi = 599, .flags = F_SIM },
    { K("seed", K_ULONG, cfg_provider, sim.seed), .def = "0", .lo = 0, .hi = 1e18, .flags = F_SIM },
    { .name = "canned", .kind = K_STRLIST, LIST(cfg_provider, sim.canned, sim.ncanned), .flags = F_SIM },
};
static const key_table provider_table = TABLE(provider_keys, provider_finish);

static const char *const capture_modes[] = { "off", "on", "redacted", NULL };

static const key_spec pricing_keys[] = {
    { K("input_cost_per_token", K_DOUBLE, cfg_pricing, input_cost_per_token), .def = "-1", .lo = -1, .hi = 1 },
    { K("output_cost_per_token", K_DOUBLE, cfg_pricing, output_cost_per_token), .def = "-1", .lo = -1, .hi = 1 },
    { K("cache_read_input_token_cost", K_DOUBLE, cfg_pricing, cache_read_input_token_cost), .def = "-1", .lo = -1, .hi = 1 },
    { K("cache_creation_input_token_cost", K_DOUBLE, cfg_pricing, cache_creation_input_token_cost), .def = "-1", .lo = -1, .hi = 1 },
    { K("output_cost_per_reasoning_token", K_DOUBLE, cfg_pricing, output_cost_per_reasoning_token), .def = "-1", .lo = -1, .hi = 1 },
};
static const key_table pricing_table = TABLE(pricing_keys, NULL);

static const key_spec otlp_keys[] = {
    { K("endpoint", K_STR, cfg_otlp, endpoint), .check = check_url },
    { .name = "headers", .kind = K_HEADERS, LIST(cfg_otlp, headers, nheaders) },
    { K("timeout_ms", K_MS, cfg_otlp, timeout_ms), .def = "10000", .lo = 1, .hi = 600000 },
    { K("batch_size", K_BYTES, cfg_otlp, batch_size), .def = "512", .lo = 1, .hi = 100000 },
    { K("interval_ms", K_MS, cfg_otlp, interval_ms), .def = "2000", .lo = 1, .hi = 600000 },
    { K("queue_size", K_BYTES, cfg_otlp, queue_size), .def = "10000", .lo = 1, .hi = 10000000 },
    { K("metrics", K_BOOL, cfg_otlp, metrics), .def = "true" },
};
static const key_table otlp_table = TABLE(otlp_keys, NULL);

static const key_spec telemetry_keys[] = {
    { K("traces", K_BOOL, cfg_telemetry, traces), .def = "true" },
    { K("metrics", K_BOOL, cfg_telemetry, metrics), .def = "true" },
    { K("capture_content", K_ENUM_INT, cfg_telemetry, capture_content), .def = "off", .choices = capture_modes },
    { K("content_max_bytes", K_BYTES, cfg_telemetry, content_max_bytes), .def = "16KiB", .lo = 0, .hi = 64 << 20 },
    { K("sample_rate", K_DOUBLE, cfg_telemetry, sample_rate), .def = "1", .lo = 0, .hi = 1 },
    { K("retention_days", K_LONG, cfg_telemetry, retention_days), .def = "30", .lo = 0, .hi = 36500 },
    { K("queue_size", K_BYTES, cfg_telemetry, queue_size), .def = "10000", .lo = 1, .hi = 10000000 },
    { K("busy_cpu", K_DOUBLE, cfg_telemetry, busy_cpu), .def = "0.01", .lo = 0, .hi = 1 },
    { K("pricing_file", K_STR, cfg_telemetry, pricing_file), .check = check_readable_file },
    { K("otlp", K_MAP, cfg_telemetry, otlp), .sub = &otlp_table },
};
static const key_table telemetry_table = TABLE(telemetry_keys, NULL);

static const char *default_protected[] = { "production" };

/* protected_labels defaults to [production]; an explicit [] protects none. */
static void prompts_finish(ctx *c, void *obj, const node *map, const node **given, const char *path)
{
    UNUSED(c), UNUSED(map), UNUSED(path);
    cfg_prompts *p = obj;
    if (!given[0]) {
        p->protected_labels = default_protected;
        p->nprotected = countof(default_protected);
    }
}

static const key_spec prompts_keys[] = {
    { .name = "protected_labels", .kind = K_STRLIST, LIST(cfg_prompts, protected_labels, nprotected) },
    { K("poll_ms", K_MS, cfg_prompts, poll_ms), .def = "250ms", .lo = 10, .hi = 60000 },
};
static const key_table prompts_table = TABLE(prompts_keys, prompts_finish);

static const key_spec model_keys[] = {
    { K("name", K_STR, cfg_model, name), .check = check_model_name, .flags = F_REQUIRED },
    { K("provider", K_STR, cfg_model, provider), .flags = F_REQUIRED },
    { K("upstream_model", K_STR, cfg_model, upstream_model) },
    { .name = "fallbacks", .kind = K_STRLIST, LIST(cfg_model, fallbacks, nfallbacks) },
    { K("pricing", K_MAP, cfg_model, pricing), .sub = &pricing_table },
};
static const key_table model_table = TABLE(model_keys, model_finish);

static const key_spec deployment_keys[] = {
    { K("name", K_STR, cfg_deployment, name), .check = check_model_name, .flags = F_REQUIRED },
    { K("model", K_STR, cfg_deployment, model), .flags = F_REQUIRED },
    { K("prompt", K_STR, cfg_deployment, prompt), .check = check_model_name },
};
static const key_table deployment_table = TABLE(deployment_keys, deployment_finish);

/* ---- guardrails ---- */

static const key_table guard_policy_table;

static const char *const guard_stages[] = { "input", "output", "tool", NULL };
static const char *const guard_actions[] = { "flag", "redact", "block", NULL };
static const char *const guard_modes[] = { "enforce", "monitor", NULL };
static const char *const guard_on_error[] = { "closed", "open", NULL };
static const char *const guard_detector_names[] = { "pii", "secrets", "injection", "leakage", "deny",
                                                    "topics", "size", "schema", "harm", "webhook", NULL };

/* A stage or detector name in a list: one of choices, else an error with a
 * suggestion; returns the index or -1. */
static int guard_choice(ctx *c, const node *at, const char *path, const char *policy, const char *what,
                        const char *const *choices, const char *s)
{
    int i = choice_index(choices, s);
    if (i >= 0)
        return i;
    const char *hint = suggest_choice(c, choices, s, strlen(s));
    char all[160];
    size_t k = 0;
    all[0] = '\0';
    for (const char *const *ch = choices; *ch && k + 1 < sizeof all; ch++) {
        int n = snprintf(all + k, sizeof all - k, "%s%s", k ? ", " : "", *ch);
        if (n < 0 || (size_t)n >= sizeof all - k)
            break;
        k += (size_t)n;
    }
    ERR(c, at, path, "policy '%s': unknown %s '%s'%s%s%s; expected one of %s", policy, what, printable(c, s, strlen(s)),
        hint ? " (did you mean '" : "", hint ? hint : "", hint ? "'?)" : "", all);
    return -1;
}

static const node *seq_item(const node *seq, size_t i)
{
    return seq && seq->kind == N_SEQ && i < seq->nkids ? seq->kids[i] : seq;
}

static void guard_policy_finish(ctx *c, void *obj, const node *map, const node **given, const char *path)
{
    cfg_guard_policy *p = obj;
    const key_table *t = &guard_policy_table;
    const char *pn = p->name ? p->name : "?";
    char kp[PATH_CAP];
    p->line = map ? map->line : 0;
    const node *st = given_of(t, given, "stage"), *sts = given_of(t, given, "stages");
    if (st && sts)
        ERR(c, sts, path, "policy '%s': give either 'stage' or 'stages', not both", pn);
    p->stages = 0;
    if (p->stage) {
        join_path(kp, path, "stage", 5);
        int k = guard_choice(c, st, kp, pn, "stage", guard_stages, p->stage);
        if (k >= 0)
            p->stages |= 1u << k;
    }
    for (size_t i = 0; i < p->nstage_list; i++) {
        if (!p->stage_list[i])
            continue;
        snprintf(kp, sizeof kp, "%s.stages[%zu]", path, i);
        int k = guard_choice(c, seq_item(sts, i), kp, pn, "stage", guard_stages, p->stage_list[i]);
        if (k >= 0)
            p->stages |= 1u << k;
    }
    if (!p->stages && map && !st && !sts)
        ERR(c, map, path, "policy '%s' needs a stage: 'stage: input' (or output, tool) or 'stages: [input, output]'", pn);
    const node *dn = given_of(t, given, "detectors");
    unsigned dets = 0;
    for (size_t i = 0; i < p->ndetectors; i++) {
        if (!p->detectors[i])
            continue;
        snprintf(kp, sizeof kp, "%s.detectors[%zu]", path, i);
        int k = guard_choice(c, seq_item(dn, i), kp, pn, "detector", guard_detector_names, p->detectors[i]);
        if (k >= 0)
            dets |= 1u << k;
    }
    if (!p->ndetectors && map) {
        join_path(kp, path, "detectors", 9);
        ERR(c, dn ? dn : map, kp, "policy '%s' lists no detectors (expected some of pii, secrets, injection, leakage, "
            "deny, topics, size, schema, harm, webhook)", pn);
    }
    /* redact replaces spans of sensitive text: only these detectors have them */
    unsigned redactable = (1u << 0) | (1u << 1) | (1u << 3) | (1u << 4);
    if (p->action && strcmp(p->action, "redact") == 0 && (dets & ~redactable)) {
        for (int k = 0; guard_detector_names[k]; k++)
            if ((dets & ~redactable) & (1u << k)) {
                join_path(kp, path, "action", 6);
                ERR(c, given_of(t, given, "action"), kp,
                    "policy '%s': action redact cannot apply to detector '%s' (only pii, secrets, deny and leakage "
                    "find text to replace); put it in a policy with action block or flag", pn, guard_detector_names[k]);
                break;
            }
    }
    if ((dets & ((1u << 3) | (1u << 7))) && p->stages == (1u << 0)) {
        join_path(kp, path, "stage", 5);
        ERR(c, st ? st : sts ? sts : map, kp,
            "policy '%s': detectors leakage and schema look at answers: use stage output or tool", pn);
    }
    if ((dets & (1u << 8)) && !p->harm_model) {
        join_path(kp, path, "harm", 4);
        ERR(c, given_of(t, given, "harm") ? given_of(t, given, "harm") : map, kp,
            "policy '%s': detector harm needs 'harm: { model: MODEL }', the classifier model (for example a Llama "
            "Guard model)", pn);
    }
    if (p->harm_model && (dets & (1u << 8))) {
        join_path(kp, path, "harm.model", 10);
        check_ref(c, p->harm_model, given_of(t, given, "harm") ? given_of(t, given, "harm") : map, kp);
    }
    if ((dets & (1u << 9)) && !p->webhook_url) {
        join_path(kp, path, "webhook", 7);
        ERR(c, given_of(t, given, "webhook") ? given_of(t, given, "webhook") : map, kp,
            "policy '%s': detector webhook needs 'webhook: { url: URL }'", pn);
    }
}

static void guard_policies_done(ctx *c, void *base, const node ***given, const char *path)
{
    cfg_guardrails *g = base;
    int name_i = key_index(&guard_policy_table, "name");
    if (g->npolicies > 64)
        ERR(c, given[64] ? given[64][name_i] : NULL, path, "at most 64 guardrail policies, got %zu", g->npolicies);
    const char **names = pool_calloc(c->tmp, (g->npolicies + 1) * sizeof *names);
    const node **at = pool_calloc(c->tmp, (g->npolicies + 1) * sizeof *at);
    if (!names || !at) {
        c->nomem = true;
        return;
    }
    for (size_t i = 0; i < g->npolicies; i++) {
        names[i] = g->policies[i].name;
        at[i] = given[i] ? given[i][name_i] : NULL;
    }
    name_index ix;
    index_build(c, &ix, names, at, g->npolicies, "guardrail policy", path);
}

static const key_spec guard_pii_keys[] = {
    { .name = "types", .kind = K_STRLIST, LIST(cfg_guard_policy, pii_types, npii_types) },
};
static const key_table guard_pii_table = TABLE(guard_pii_keys, NULL);

static const key_spec guard_injection_keys[] = {
    { K("threshold", K_DOUBLE, cfg_guard_policy, injection_threshold), .def = "0.5", .lo = 0.01, .hi = 1 },
};
static const key_table guard_injection_table = TABLE(guard_injection_keys, NULL);

static const key_spec guard_leak_keys[] = {
    { K("min_run", K_LONG, cfg_guard_policy, leak_min_run), .def = "8", .lo = 4, .hi = 10000 },
    { K("min_coverage", K_DOUBLE, cfg_guard_policy, leak_min_coverage), .def = "0.5", .lo = 0.01, .hi = 1 },
};
static const key_table guard_leak_table = TABLE(guard_leak_keys, NULL);

static const key_spec guard_list_keys[] = {
    { .name = "words", .kind = K_STRLIST, LIST(cfg_guard_lists, words, nwords) },
    { .name = "regex", .kind = K_STRLIST, LIST(cfg_guard_lists, regex, nregex) },
};
static const key_table guard_list_table = TABLE(guard_list_keys, NULL);

static const key_spec guard_topic_keys[] = {
    { K("name", K_STR, cfg_guard_topic, name), .flags = F_REQUIRED },
    { .name = "keywords", .kind = K_STRLIST, LIST(cfg_guard_topic, keywords, nkeywords) },
};
static void guard_topic_finish(ctx *c, void *obj, const node *map, const node **given, const char *path)
{
    UNUSED(given);
    const cfg_guard_topic *tp = obj;
    if (map && tp->nkeywords == 0)
        ERR(c, map, path, "topic '%s' needs a non-empty 'keywords' list", tp->name ? tp->name : "?");
}
static const key_table guard_topic_table = TABLE(guard_topic_keys, guard_topic_finish);

static const key_spec guard_size_keys[] = {
    { K("max_chars", K_BYTES, cfg_guard_policy, max_chars), .def = "0", .lo = 0, .hi = 1e12 },
    { K("max_tokens", K_BYTES, cfg_guard_policy, max_tokens), .def = "0", .lo = 0, .hi = 1e12 },
};
static const key_table guard_size_table = TABLE(guard_size_keys, NULL);

static const key_spec guard_harm_keys[] = {
    { K("model", K_STR, cfg_guard_policy, harm_model) },
    { .name = "categories", .kind = K_STRLIST, LIST(cfg_guard_policy, harm_categories, nharm_categories) },
    { K("threshold", K_INT, cfg_guard_policy, harm_threshold), .def = "1", .lo = 1, .hi = 3 },
    { K("timeout_ms", K_MS, cfg_guard_policy, harm_timeout_ms), .def = "10000", .lo = 1, .hi = 600000 },
};
static const key_table guard_harm_table = TABLE(guard_harm_keys, NULL);

static const key_spec guard_webhook_keys[] = {
    { K("url", K_STR, cfg_guard_policy, webhook_url), .check = check_url },
    { .name = "headers", .kind = K_HEADERS, LIST(cfg_guard_policy, webhook_headers, nwebhook_headers) },
    { K("timeout_ms", K_MS, cfg_guard_policy, webhook_timeout_ms), .def = "2000", .lo = 1, .hi = 600000 },
};
static const key_table guard_webhook_table = TABLE(guard_webhook_keys, NULL);

static const key_spec guard_policy_keys[] = {
    { K("name", K_STR, cfg_guard_policy, name), .check = check_provider_name, .flags = F_REQUIRED },
    { K("stage", K_STR, cfg_guard_policy, stage) },
    { .name = "stages", .kind = K_STRLIST, LIST(cfg_guard_policy, stage_list, nstage_list) },
    { .name = "detectors", .kind = K_STRLIST, LIST(cfg_guard_policy, detectors, ndetectors) },
    { K("action", K_ENUM, cfg_guard_policy, action), .def = "flag", .choices = guard_actions },
    { K("mode", K_ENUM, cfg_guard_policy, mode), .def = "enforce", .choices = guard_modes },
    { K("restore", K_BOOL, cfg_guard_policy, restore), .def = "false" },
    { K("stream_holdback", K_BYTES, cfg_guard_policy, stream_holdback), .def = "64", .lo = 0, .hi = 1 << 20 },
    { .name = "models", .kind = K_STRLIST, LIST(cfg_guard_policy, models, nmodels) },
    { .name = "deployments", .kind = K_STRLIST, LIST(cfg_guard_policy, deployments, ndeployments) },
    { .name = "keys", .kind = K_STRLIST, LIST(cfg_guard_policy, keys, nkeys) },
    { .name = "pii", .kind = K_MAP, .off = 0, .sub = &guard_pii_table },
    { .name = "injection", .kind = K_MAP, .off = 0, .sub = &guard_injection_table },
    { .name = "leakage", .kind = K_MAP, .off = 0, .sub = &guard_leak_table },
    { K("deny", K_MAP, cfg_guard_policy, deny), .sub = &guard_list_table },
    { K("allow", K_MAP, cfg_guard_policy, allow), .sub = &guard_list_table },
    { .name = "topics", .kind = K_LIST, LIST(cfg_guard_policy, topics, ntopics), .sub = &guard_topic_table,
      .elem_size = sizeof(cfg_guard_topic) },
    { .name = "size", .kind = K_MAP, .off = 0, .sub = &guard_size_table },
    { .name = "harm", .kind = K_MAP, .off = 0, .sub = &guard_harm_table },
    { .name = "webhook", .kind = K_MAP, .off = 0, .sub = &guard_webhook_table },
    { K("on_error", K_ENUM, cfg_guard_policy, on_error), .def = "closed", .choices = guard_on_error },
};
static const key_table guard_policy_table = TABLE(guard_policy_keys, guard_policy_finish);

static const key_spec guardrails_keys[] = {
    { .name = "policies", .kind = K_LIST, LIST(cfg_guardrails, policies, npolicies), .sub = &guard_policy_table,
      .elem_size = sizeof(cfg_guard_policy), .list_finish = guard_policies_done },
};
static const key_table guardrails_table = TABLE(guardrails_keys, NULL);

/* Sections in the order they are read: later ones refer to earlier ones. */
static const key_spec top_keys[] = {
    { .name = "server", .kind = K_MAP, .off = 0, .sub = &server_table },
    { .name = "store", .kind = K_MAP, .off = 0, .sub = &store_table },
    { .name = "providers", .kind = K_LIST, LIST(config, providers, nproviders), .sub = &provider_table,
      .elem_size = sizeof(cfg_provider), .list_finish = providers_done },
    { .name = "models", .kind = K_LIST, LIST(config, models, nmodels), .sub = &model_table,
      .elem_size = sizeof(cfg_model), .list_finish = models_done },
    { .name = "deployments", .kind = K_LIST, LIST(config, deployments, ndeployments), .sub = &deployment_table,
      .elem_size = sizeof(cfg_deployment), .list_finish = deployments_done },
    /* reserved by the design for later versions */
    { .name = "redis", .kind = K_IGNORED },
    { .name = "limits", .kind = K_IGNORED },
    { .name = "telemetry", .kind = K_MAP, .off = offsetof(config, telemetry), .sub = &telemetry_table },
    { .name = "prompts", .kind = K_MAP, .off = offsetof(config, prompts), .sub = &prompts_table },
    { .name = "guardrails", .kind = K_MAP, .off = offsetof(config, guardrails), .sub = &guardrails_table },
};
static const key_table top_table = { top_keys, countof(top_keys), NULL, true };

/* ------------------------------------------------------------------ */
/* Loading                                                            */

static void log_diags(const config_diags *d, const char *name)
{
    for (size_t i = 0; i < d->n; i++) {
        const config_diag *g = &d->items[i];
        LOG_AT(g->warning ? L_WARN : L_ERROR, NULL, "%s:%d:%d: %s%s%s", name ? name : "config", g->line, g->column,
               g->path, *g->path ? ": " : "", g->message);
    }
}

/* Loads text (NULL: the embedded default, an empty document). */
static err_code load(const char *name, const char *text, size_t len, config **out, config_diags *diags)
{
    if (out)
        *out = NULL;
    config_diags local = { 0 };
    ctx c = { .name = name ? name : "config", .diags = diags ? diags : &local };
    c.first_diag = c.diags->n;
    pool *cp = pool_new(8192);
    c.tmp = pool_new(16384);
    c.cfg = cp ? pool_calloc(cp, sizeof *c.cfg) : NULL;
    if (!c.cfg || !c.tmp) {
        pool_free(cp);
        pool_free(c.tmp);
        return ERR_NOMEM;
    }
    c.cfg->pool = cp;
    c.cfg->path = name ? pool_strdup(cp, name) : NULL;
    node *root = NULL;
    bool ok = true;
    if (text && len > CFG_MAX_BYTES)
        ok = false, diag_lc(&c, false, 0, 0, "", "the file is larger than %zu bytes", CFG_MAX_BYTES);
    else if (text)
        root = build_tree(&c, text, len, &ok);
    if (ok && !c.nomem) {
        if (root && !is_null(root) && root->kind != N_MAP)
            ERR(&c, root, "", "expected a mapping of sections (server, store, providers, models, ...) at the top, got %s",
                describe(&c, root));
        else
            process_map(&c, &top_table, root && !is_null(root) ? root : NULL, "", c.cfg, NULL);
    }
    diags_finish(&c);
    pool_free(c.tmp);
    err_code rc = c.nomem ? ERR_NOMEM : c.nerrors ? ERR_CONFIG : ERR_OK;
    if (rc || !out)
        config_free(c.cfg);
    else
        *out = c.cfg;
    if (!diags) {
        log_diags(&local, c.name);
        config_diags_free(&local);
    }
    return rc;
}

err_code config_load_string(const char *name, const char *yaml, size_t len, config **out, config_diags *diags)
{
    return load(name ? name : "config", yaml ? yaml : "", yaml ? len : 0, out, diags);
}

err_code config_load_file(const char *path, config **out, config_diags *diags)
{
    if (out)
        *out = NULL;
    if (!path)
        return ERR_INVAL;
    buf b;
    buf_init(&b, CFG_MAX_BYTES);
    int err = 0;
    err_code rc = ERR_OK;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0) {
        err = errno;
    } else if (fstat(fd, &st) != 0) {
        err = errno;
    } else if (S_ISDIR(st.st_mode)) {
        err = EISDIR;
    } else {
        char chunk[65536];
        for (;;) {
            ssize_t n = read(fd, chunk, sizeof chunk);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0) {
                err = errno;
                break;
            }
            if (n == 0)
                break;
            rc = buf_append(&b, chunk, (size_t)n);
            if (rc)
                break;
        }
    }
    if (fd >= 0)
        close(fd);
    if (err || rc) {
        config_diags local = { 0 };
        config_diags *d = diags ? diags : &local;
        char msg[600];
        if (err)
            snprintf(msg, sizeof msg, "cannot read '%s': %s", path, strerror(err));
        else if (rc == ERR_TOOBIG)
            snprintf(msg, sizeof msg, "the file is larger than %zu bytes", CFG_MAX_BYTES);
        else
            snprintf(msg, sizeof msg, "cannot read '%s': %s", path, err_message(rc));
        push_diag(d, false, 0, 0, "", msg);
        if (!diags) {
            log_diags(&local, path);
            config_diags_free(&local);
        }
        buf_free(&b);
        return err ? ERR_IO : rc == ERR_TOOBIG ? ERR_CONFIG : rc;
    }
    rc = load(path, b.p ? b.p : "", b.len, out, diags);
    buf_free(&b);
    return rc;
}

config *config_default(void)
{
    config *c = NULL;
    if (load(NULL, NULL, 0, &c, NULL) != ERR_OK)
        return NULL;
    return c;
}

void config_free(config *c)
{
    if (c)
        pool_free(c->pool); /* the config struct lives in its own pool */
}

void config_diags_free(config_diags *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->n; i++)
        free((void *)d->items[i].path); /* path and message are one block */
    free(d->items);
    d->items = NULL;
    d->n = d->cap = 0;
}

void config_diags_print(const config_diags *d, const char *name, void *f)
{
    FILE *out = f;
    if (!d || !out)
        return;
    for (size_t i = 0; i < d->n; i++) {
        const config_diag *g = &d->items[i];
        fputs(name ? name : "config", out);
        if (g->line > 0)
            fprintf(out, ":%d:%d", g->line, g->column);
        fprintf(out, ": %s: ", g->warning ? "warning" : "error");
        if (g->path && *g->path)
            fprintf(out, "%s: ", g->path);
        fprintf(out, "%s\n", g->message);
    }
}

/* ------------------------------------------------------------------ */
/* Lookups and helpers                                                */

const cfg_provider *config_find_provider(const config *c, sv name)
{
    for (size_t i = 0; c && i < c->nproviders; i++)
        if (c->providers[i].name && sv_eq_cstr(name, c->providers[i].name))
            return &c->providers[i];
    return NULL;
}

const cfg_model *config_find_model(const config *c, sv name)
{
    for (size_t i = 0; c && i < c->nmodels; i++)
        if (c->models[i].name && sv_eq_cstr(name, c->models[i].name))
            return &c->models[i];
    return NULL;
}

const cfg_deployment *config_find_deployment(const config *c, sv name)
{
    for (size_t i = 0; c && i < c->ndeployments; i++)
        if (c->deployments[i].name && sv_eq_cstr(name, c->deployments[i].name))
            return &c->deployments[i];
    return NULL;
}

const char *provider_type_name(provider_type t)
{
    return (unsigned)t < countof(provider_types) - 1 ? provider_types[t] : "unknown";
}

static bool host_char(unsigned char ch, bool v6)
{
    if (v6)
        return isxdigit(ch) || ch == ':' || ch == '.' || ch == '%' || isalnum(ch) || ch == '_' || ch == '-';
    return isalnum(ch) || ch == '.' || ch == '-' || ch == '_';
}

err_code config_parse_listen(const char *listen, char *host, size_t hostcap, int *port)
{
    if (!listen)
        return ERR_INVAL;
    const char *h, *colon;
    size_t hl;
    bool v6 = listen[0] == '[';
    if (v6) {
        const char *close = strchr(listen, ']');
        if (!close || close[1] != ':')
            return ERR_INVAL;
        h = listen + 1;
        hl = (size_t)(close - h);
        colon = close + 1;
        if (hl == 0)
            return ERR_INVAL;
    } else {
        colon = strchr(listen, ':');
        if (!colon || strchr(colon + 1, ':'))
            return ERR_INVAL;
        h = listen;
        hl = (size_t)(colon - listen);
    }
    for (size_t i = 0; i < hl; i++)
        if (!host_char((unsigned char)h[i], v6))
            return ERR_INVAL;
    if (v6 && !memchr(h, ':', hl))
        return ERR_INVAL;
    const char *ps = colon + 1;
    size_t pl = strlen(ps);
    if (pl == 0 || pl > 5)
        return ERR_INVAL;
    long p = 0;
    for (size_t i = 0; i < pl; i++) {
        if (!isdigit((unsigned char)ps[i]))
            return ERR_INVAL;
        p = p * 10 + (ps[i] - '0');
    }
    if (p < 1 || p > 65535)
        return ERR_INVAL;
    if (host) {
        if (hl + 1 > hostcap)
            return ERR_TOOBIG;
        memcpy(host, h, hl);
        host[hl] = '\0';
    }
    if (port)
        *port = (int)p;
    return ERR_OK;
}
