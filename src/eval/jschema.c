/*
 * jschema.c - a JSON Schema subset compiled into nodes and validated on
 * jansson values (see jschema.h for the keywords).
 *
 * How it works: jschema_compile walks the schema once and makes one node
 * per schema object it reaches, keyed by the json_t pointer so that a
 * subschema reached twice (through $ref, or the shared true/false
 * singletons) is compiled once and recursive references become cycles in
 * the node graph. Each node holds its keywords parsed: a type mask,
 * numeric bounds, compiled PCRE2 patterns, child nodes for properties,
 * items and the combinators. $ref strings are resolved after the first
 * pass as JSON pointers into the root document, compiling their targets on
 * demand. Validation is a recursive walk that records the first error with
 * its instance path (ajv's "data/a/0 must be string" form) and stays
 * quiet inside anyOf/oneOf/not/if, where failing is normal; a depth bound
 * turns runaway recursion into an error.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include "eval/assert_int.h"
#include "eval/jschema.h"

#define JS_MAX_NODES 20000
#define JS_MAX_DEPTH 256        /* validation: schema levels entered, $ref recursion included */
#define JS_MAX_NESTING 64       /* compiling: schema objects inside one another */

enum {
    T_NULL = 1, T_BOOLEAN = 2, T_OBJECT = 4, T_ARRAY = 8, T_NUMBER = 16, T_INTEGER = 32, T_STRING = 64,
};

enum { F_NONE, F_DATE, F_TIME, F_DATETIME, F_EMAIL, F_URI, F_UUID, F_IPV4, F_IPV6, F_HOSTNAME };

static const char *const format_names[] = {
    [F_DATE] = "date", [F_TIME] = "time", [F_DATETIME] = "date-time", [F_EMAIL] = "email", [F_URI] = "uri",
    [F_UUID] = "uuid", [F_IPV4] = "ipv4", [F_IPV6] = "ipv6", [F_HOSTNAME] = "hostname",
};

typedef struct jnode jnode;

typedef struct jprop {
    const char *key;
    size_t klen;
    jnode *n;
} jprop;

typedef struct jpat {
    pcre2_code *re;
    jnode *n;
} jpat;

typedef struct jlist {
    jnode **v;
    size_t n;
} jlist;

struct jnode {
    jnode *next_alloc;           /* every node, for jschema_free */
    int boolean;                 /* -1: an object schema; 0/1: false/true */
    unsigned types;              /* 0: no type keyword */
    const json_t *enum_v, *const_v;
    bool has_min, has_max, has_xmin, has_xmax, has_mult, xmin_flag, xmax_flag;
    double min, max, xmin, xmax, mult;
    long long min_len, max_len, min_items, max_items, min_props, max_props; /* -1: none */
    pcre2_code *pattern;
    const char *pattern_src;
    int format;
    jprop *props;
    size_t nprops;
    jpat *pprops;
    size_t npprops;
    jnode *addl_props, *prop_names;
    const json_t *required, *dep_required;
    jnode *items, *addl_items, *contains;
    jlist tuple;
    bool unique;
    jlist all, any, one;
    jnode *not_, *if_, *then_, *else_;
    jnode *ref;
    const char *ref_str;
    char *where;                 /* "#/properties/a", for resolving messages */
};

struct jschema {
    json_t *root;
    jnode *top;
    jnode *nodes;
};

/* ---- deep equality ------------------------------------------------------------ */

bool jschema_equal(const json_t *a, const json_t *b)
{
    if (a == b)
        return true;
    if (!a || !b)
        return false;
    if (json_is_number(a) && json_is_number(b)) {
        if (json_is_integer(a) && json_is_integer(b))
            return json_integer_value(a) == json_integer_value(b);
        return json_number_value(a) == json_number_value(b);
    }
    if (json_typeof(a) != json_typeof(b))
        return false;
    switch (json_typeof(a)) {
    case JSON_STRING:
        return json_string_length(a) == json_string_length(b) &&
               memcmp(json_string_value(a), json_string_value(b), json_string_length(a)) == 0;
    case JSON_ARRAY: {
        size_t n = json_array_size(a);
        if (n != json_array_size(b))
            return false;
        for (size_t i = 0; i < n; i++)
            if (!jschema_equal(json_array_get(a, i), json_array_get(b, i)))
                return false;
        return true;
    }
    case JSON_OBJECT: {
        if (json_object_size(a) != json_object_size(b))
            return false;
        const char *k;
        size_t klen;
        json_t *v;
        json_object_keylen_foreach((json_t *)a, k, klen, v) {
            const json_t *w = json_object_getn(b, k, klen);
            if (!w || !jschema_equal(v, w))
                return false;
        }
        return true;
    }
    default:
        return true; /* true, false, null: same type */
    }
}

/* A hash consistent with jschema_equal (numbers by value, objects
 * independent of key order). */
static uint64_t jhash(const json_t *x)
{
    uint64_t h = 1469598103934665603ull;
    switch (json_typeof(x)) {
    case JSON_INTEGER:
    case JSON_REAL: {
        double d = json_number_value(x);
        if (d == 0)
            d = 0; /* -0 and 0 are equal */
        uint64_t u;
        memcpy(&u, &d, sizeof u);
        return u * 0x9E3779B97F4A7C15ull;
    }
    case JSON_STRING: {
        const char *s = json_string_value(x);
        for (size_t i = 0; i < json_string_length(x); i++)
            h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
        return h;
    }
    case JSON_ARRAY:
        for (size_t i = 0; i < json_array_size(x); i++)
            h = (h ^ jhash(json_array_get(x, i))) * 1099511628211ull;
        return h ^ 0xA5;
    case JSON_OBJECT: {
        const char *k;
        size_t klen;
        json_t *v;
        uint64_t sum = 0;
        json_object_keylen_foreach((json_t *)x, k, klen, v) {
            uint64_t kh = 1469598103934665603ull;
            for (size_t i = 0; i < klen; i++)
                kh = (kh ^ (unsigned char)k[i]) * 1099511628211ull;
            sum += (kh ^ jhash(v)) * 0x9E3779B97F4A7C15ull;
        }
        return sum ^ 0x5A;
    }
    default:
        return (uint64_t)json_typeof(x) * 0x100000001B3ull;
    }
}

/* ---- compiling ---------------------------------------------------------------- */

typedef struct mapent {
    const json_t *k;
    jnode *v;
} mapent;

typedef struct cctx {
    jschema *s;
    char *msg;
    size_t cap;
    err_code err;
    size_t nnodes;
    mapent *map;                 /* open addressing, pointer -> node */
    size_t mapcap, mapn;
    jnode **pend;                /* nodes whose $ref is not resolved yet */
    size_t npend, cappend;
    int depth;
} cctx;

static jnode *PRINTF_LIKE(3, 4) cfail(cctx *c, err_code e, const char *fmt, ...)
{
    if (c->err == ERR_OK) {
        c->err = e;
        if (c->msg && c->cap) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(c->msg, c->cap, fmt, ap);
            va_end(ap);
        }
    }
    return NULL;
}

static size_t ptr_slot(const cctx *c, const json_t *k)
{
    uintptr_t h = (uintptr_t)k;
    h ^= h >> 17;
    h *= 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 20) & (c->mapcap - 1);
}

static jnode *map_get(const cctx *c, const json_t *k)
{
    if (!c->mapcap)
        return NULL;
    for (size_t i = ptr_slot(c, k);; i = (i + 1) & (c->mapcap - 1)) {
        if (!c->map[i].k)
            return NULL;
        if (c->map[i].k == k)
            return c->map[i].v;
    }
}

static bool map_put(cctx *c, const json_t *k, jnode *v)
{
    if ((c->mapn + 1) * 2 > c->mapcap) {
        size_t ncap = c->mapcap ? c->mapcap * 2 : 64;
        mapent *nm = calloc(ncap, sizeof *nm), *old = c->map;
        if (!nm)
            return false;
        size_t oldcap = c->mapcap;
        c->map = nm;
        c->mapcap = ncap;
        c->mapn = 0;
        for (size_t i = 0; i < oldcap; i++)
            if (old[i].k)
                map_put(c, old[i].k, old[i].v);
        free(old);
    }
    size_t i = ptr_slot(c, k);
    while (c->map[i].k)
        i = (i + 1) & (c->mapcap - 1);
    c->map[i].k = k;
    c->map[i].v = v;
    c->mapn++;
    return true;
}

static bool is_annotation(const char *k)
{
    static const char *const names[] = {
        "$schema", "$id", "id", "$comment", "title", "description", "default", "examples", "readOnly",
        "writeOnly", "deprecated", "contentMediaType", "contentEncoding", "$defs", "definitions",
    };
    for (size_t i = 0; i < countof(names); i++)
        if (strcmp(k, names[i]) == 0)
            return true;
    return false;
}

static jnode *compile(cctx *c, const json_t *sch, const char *where);

/* where + "/" + key, for messages (truncated, always terminated). */
static void subpath(char *out, size_t cap, const char *where, const char *key)
{
    snprintf(out, cap, "%s/%s", where, key);
}

static bool get_num(cctx *c, const json_t *v, const char *where, const char *key, double *out)
{
    if (!json_is_number(v)) {
        cfail(c, ERR_PARSE, "JSON Schema: '%s' at %s must be a number", key, where);
        return false;
    }
    *out = json_number_value(v);
    return true;
}

static bool get_count(cctx *c, const json_t *v, const char *where, const char *key, long long *out)
{
    double d = json_is_number(v) ? json_number_value(v) : -1;
    if (!json_is_number(v) || d < 0 || d != floor(d) || d > 9e15) {
        cfail(c, ERR_PARSE, "JSON Schema: '%s' at %s must be a non-negative integer", key, where);
        return false;
    }
    *out = (long long)d;
    return true;
}

static bool get_sub(cctx *c, const json_t *v, const char *where, const char *key, jnode **out)
{
    char p[512];
    subpath(p, sizeof p, where, key);
    return (*out = compile(c, v, p)) != NULL;
}

static bool get_list(cctx *c, const json_t *v, const char *where, const char *key, jlist *out)
{
    if (!json_is_array(v) || json_array_size(v) == 0) {
        cfail(c, ERR_PARSE, "JSON Schema: '%s' at %s must be a non-empty list of schemas", key, where);
        return false;
    }
    out->n = json_array_size(v);
    if (!(out->v = calloc(out->n, sizeof *out->v))) {
        cfail(c, ERR_NOMEM, "out of memory");
        return false;
    }
    for (size_t i = 0; i < out->n; i++) {
        char p[512];
        snprintf(p, sizeof p, "%s/%s/%zu", where, key, i);
        if (!(out->v[i] = compile(c, json_array_get(v, i), p)))
            return false;
    }
    return true;
}

static bool string_list(const json_t *v)
{
    if (!json_is_array(v))
        return false;
    for (size_t i = 0; i < json_array_size(v); i++)
        if (!json_is_string(json_array_get(v, i)))
            return false;
    return true;
}

static unsigned type_bit(const json_t *v)
{
    static const struct {
        const char *name;
        unsigned bit;
    } t[] = {
        { "null", T_NULL }, { "boolean", T_BOOLEAN }, { "object", T_OBJECT }, { "array", T_ARRAY },
        { "number", T_NUMBER }, { "integer", T_INTEGER }, { "string", T_STRING },
    };
    if (!json_is_string(v))
        return 0;
    for (size_t i = 0; i < countof(t); i++)
        if (strcmp(json_string_value(v), t[i].name) == 0)
            return t[i].bit;
    return 0;
}

static bool get_types(cctx *c, const json_t *v, const char *where, unsigned *out)
{
    unsigned m = type_bit(v);
    if (json_is_array(v) && json_array_size(v) > 0) {
        for (size_t i = 0; i < json_array_size(v); i++) {
            unsigned b = type_bit(json_array_get(v, i));
            if (!b) {
                m = 0;
                break;
            }
            m |= b;
        }
    }
    if (!m) {
        cfail(c, ERR_PARSE, "JSON Schema: 'type' at %s must be a type name or a list of them", where);
        return false;
    }
    *out = m;
    return true;
}

static bool get_props(cctx *c, jnode *n, const json_t *v, const char *where)
{
    if (!json_is_object(v)) {
        cfail(c, ERR_PARSE, "JSON Schema: 'properties' at %s must be an object", where);
        return false;
    }
    n->nprops = json_object_size(v);
    if (n->nprops && !(n->props = calloc(n->nprops, sizeof *n->props))) {
        cfail(c, ERR_NOMEM, "out of memory");
        return false;
    }
    size_t i = 0, klen;
    const char *k;
    json_t *s;
    json_object_keylen_foreach((json_t *)v, k, klen, s) {
        char p[512];
        snprintf(p, sizeof p, "%s/properties/%s", where, k);
        n->props[i].key = k;
        n->props[i].klen = klen;
        if (!(n->props[i].n = compile(c, s, p)))
            return false;
        i++;
    }
    return true;
}

static bool get_pattern_props(cctx *c, jnode *n, const json_t *v, const char *where)
{
    if (!json_is_object(v)) {
        cfail(c, ERR_PARSE, "JSON Schema: 'patternProperties' at %s must be an object", where);
        return false;
    }
    n->npprops = json_object_size(v);
    if (n->npprops && !(n->pprops = calloc(n->npprops, sizeof *n->pprops))) {
        cfail(c, ERR_NOMEM, "out of memory");
        return false;
    }
    size_t i = 0, klen;
    const char *k;
    json_t *s;
    json_object_keylen_foreach((json_t *)v, k, klen, s) {
        char p[512], m[200];
        snprintf(p, sizeof p, "%s/patternProperties/%s", where, k);
        if (!(n->pprops[i].re = at_regex_compile(k, klen, m, sizeof m))) {
            cfail(c, ERR_PARSE, "JSON Schema: pattern '%s' at %s does not compile: %s", k, where, m);
            return false;
        }
        if (!(n->pprops[i].n = compile(c, s, p)))
            return false;
        i++;
    }
    return true;
}

static bool get_deps(cctx *c, jnode *n, const json_t *v, const char *where, const char *key)
{
    const char *k;
    json_t *d;
    if (!json_is_object(v)) {
        cfail(c, ERR_PARSE, "JSON Schema: '%s' at %s must be an object", key, where);
        return false;
    }
    json_object_foreach((json_t *)v, k, d) {
        if (!string_list(d)) {
            cfail(c, strcmp(key, "dependencies") == 0 && (json_is_object(d) || json_is_boolean(d)) ? ERR_UNSUPPORTED : ERR_PARSE,
                  "JSON Schema: '%s' at %s: only lists of property names are supported", key, where);
            return false;
        }
    }
    n->dep_required = v;
    return true;
}

static int format_id(const char *f)
{
    for (int i = 1; i < (int)countof(format_names); i++)
        if (strcmp(f, format_names[i]) == 0)
            return i;
    return F_NONE;
}

/* One keyword of an object schema; false on error (c->err set). */
static bool keyword(cctx *c, jnode *n, const char *k, const json_t *v, const char *w)
{
    if (strcmp(k, "type") == 0)
        return get_types(c, v, w, &n->types);
    if (strcmp(k, "enum") == 0) {
        if (!json_is_array(v))
            return cfail(c, ERR_PARSE, "JSON Schema: 'enum' at %s must be a list", w), false;
        n->enum_v = v;
        return true;
    }
    if (strcmp(k, "const") == 0) {
        n->const_v = v;
        return true;
    }
    if (strcmp(k, "minimum") == 0)
        return n->has_min = true, get_num(c, v, w, k, &n->min);
    if (strcmp(k, "maximum") == 0)
        return n->has_max = true, get_num(c, v, w, k, &n->max);
    if (strcmp(k, "exclusiveMinimum") == 0 || strcmp(k, "exclusiveMaximum") == 0) {
        bool lo = k[9] == 'M' && k[10] == 'i';
        if (json_is_boolean(v)) { /* draft 4: a flag on minimum/maximum */
            *(lo ? &n->xmin_flag : &n->xmax_flag) = json_is_true(v);
            return true;
        }
        *(lo ? &n->has_xmin : &n->has_xmax) = true;
        return get_num(c, v, w, k, lo ? &n->xmin : &n->xmax);
    }
    if (strcmp(k, "multipleOf") == 0) {
        n->has_mult = true;
        if (!get_num(c, v, w, k, &n->mult))
            return false;
        if (!(n->mult > 0))
            return cfail(c, ERR_PARSE, "JSON Schema: 'multipleOf' at %s must be greater than 0", w), false;
        return true;
    }
    if (strcmp(k, "minLength") == 0)
        return get_count(c, v, w, k, &n->min_len);
    if (strcmp(k, "maxLength") == 0)
        return get_count(c, v, w, k, &n->max_len);
    if (strcmp(k, "minItems") == 0)
        return get_count(c, v, w, k, &n->min_items);
    if (strcmp(k, "maxItems") == 0)
        return get_count(c, v, w, k, &n->max_items);
    if (strcmp(k, "minProperties") == 0)
        return get_count(c, v, w, k, &n->min_props);
    if (strcmp(k, "maxProperties") == 0)
        return get_count(c, v, w, k, &n->max_props);
    if (strcmp(k, "pattern") == 0) {
        char m[200];
        if (!json_is_string(v))
            return cfail(c, ERR_PARSE, "JSON Schema: 'pattern' at %s must be a string", w), false;
        if (!(n->pattern = at_regex_compile(json_string_value(v), json_string_length(v), m, sizeof m)))
            return cfail(c, ERR_PARSE, "JSON Schema: pattern at %s does not compile: %s", w, m), false;
        n->pattern_src = json_string_value(v);
        return true;
    }
    if (strcmp(k, "format") == 0) {
        if (!json_is_string(v))
            return cfail(c, ERR_PARSE, "JSON Schema: 'format' at %s must be a string", w), false;
        if (!(n->format = format_id(json_string_value(v))))
            return cfail(c, ERR_UNSUPPORTED, "JSON Schema: format '%s' at %s is not supported", json_string_value(v), w),
                   false;
        return true;
    }
    if (strcmp(k, "properties") == 0)
        return get_props(c, n, v, w);
    if (strcmp(k, "patternProperties") == 0)
        return get_pattern_props(c, n, v, w);
    if (strcmp(k, "additionalProperties") == 0)
        return get_sub(c, v, w, k, &n->addl_props);
    if (strcmp(k, "propertyNames") == 0)
        return get_sub(c, v, w, k, &n->prop_names);
    if (strcmp(k, "required") == 0) {
        if (!string_list(v))
            return cfail(c, ERR_PARSE, "JSON Schema: 'required' at %s must be a list of names", w), false;
        n->required = v;
        return true;
    }
    if (strcmp(k, "dependentRequired") == 0 || strcmp(k, "dependencies") == 0)
        return get_deps(c, n, v, w, k);
    if (strcmp(k, "items") == 0) {
        if (json_is_array(v)) {
            if (n->tuple.v)
                return cfail(c, ERR_PARSE, "JSON Schema: both tuple 'items' and 'prefixItems' at %s", w), false;
            return json_array_size(v) == 0 || get_list(c, v, w, k, &n->tuple);
        }
        return get_sub(c, v, w, k, &n->items);
    }
    if (strcmp(k, "prefixItems") == 0) {
        if (n->tuple.v)
            return cfail(c, ERR_PARSE, "JSON Schema: both tuple 'items' and 'prefixItems' at %s", w), false;
        return get_list(c, v, w, k, &n->tuple);
    }
    if (strcmp(k, "additionalItems") == 0)
        return get_sub(c, v, w, k, &n->addl_items);
    if (strcmp(k, "uniqueItems") == 0) {
        if (!json_is_boolean(v))
            return cfail(c, ERR_PARSE, "JSON Schema: 'uniqueItems' at %s must be true or false", w), false;
        n->unique = json_is_true(v);
        return true;
    }
    if (strcmp(k, "contains") == 0)
        return get_sub(c, v, w, k, &n->contains);
    if (strcmp(k, "allOf") == 0)
        return get_list(c, v, w, k, &n->all);
    if (strcmp(k, "anyOf") == 0)
        return get_list(c, v, w, k, &n->any);
    if (strcmp(k, "oneOf") == 0)
        return get_list(c, v, w, k, &n->one);
    if (strcmp(k, "not") == 0)
        return get_sub(c, v, w, k, &n->not_);
    if (strcmp(k, "if") == 0)
        return get_sub(c, v, w, k, &n->if_);
    if (strcmp(k, "then") == 0)
        return get_sub(c, v, w, k, &n->then_);
    if (strcmp(k, "else") == 0)
        return get_sub(c, v, w, k, &n->else_);
    if (strcmp(k, "$ref") == 0) {
        if (!json_is_string(v))
            return cfail(c, ERR_PARSE, "JSON Schema: '$ref' at %s must be a string", w), false;
        n->ref_str = json_string_value(v);
        if (c->npend == c->cappend) {
            size_t nc = c->cappend ? c->cappend * 2 : 16;
            jnode **np = realloc(c->pend, nc * sizeof *np);
            if (!np)
                return cfail(c, ERR_NOMEM, "out of memory"), false;
            c->pend = np;
            c->cappend = nc;
        }
        c->pend[c->npend++] = n;
        return true;
    }
    if (strcmp(k, "$defs") == 0 || strcmp(k, "definitions") == 0) {
        if (!json_is_object(v))
            return cfail(c, ERR_PARSE, "JSON Schema: '%s' at %s must be an object", k, w), false;
        return true; /* compiled when a $ref reaches them */
    }
    if (is_annotation(k))
        return true;
    return cfail(c, ERR_UNSUPPORTED, "unsupported JSON Schema keyword '%s' at %s", k, w), false;
}

static jnode *compile(cctx *c, const json_t *sch, const char *where)
{
    jnode *n = map_get(c, sch);
    if (n)
        return n;
    if (c->err)
        return NULL;
    if (!json_is_object(sch) && !json_is_boolean(sch))
        return cfail(c, ERR_PARSE, "JSON Schema: the schema at %s must be an object or true/false", where);
    if (++c->nnodes > JS_MAX_NODES)
        return cfail(c, ERR_PARSE, "JSON Schema: more than %d schemas", JS_MAX_NODES);
    if (c->depth >= JS_MAX_NESTING)
        return cfail(c, ERR_PARSE, "JSON Schema: nested deeper than %d levels at %s", JS_MAX_NESTING, where);
    n = calloc(1, sizeof *n);
    if (!n || !(n->where = strdup(where))) {
        free(n);
        return cfail(c, ERR_NOMEM, "out of memory");
    }
    n->next_alloc = c->s->nodes;
    c->s->nodes = n;
    n->boolean = json_is_boolean(sch) ? json_is_true(sch) : -1;
    n->min_len = n->max_len = n->min_items = n->max_items = n->min_props = n->max_props = -1;
    if (!map_put(c, sch, n))
        return cfail(c, ERR_NOMEM, "out of memory");
    if (n->boolean >= 0)
        return n;
    c->depth++;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)sch, k, v) {
        if (!keyword(c, n, k, v, where))
            break;
    }
    c->depth--;
    if (c->err)
        return NULL;
    if (n->xmin_flag && n->has_min) {
        n->has_xmin = true, n->xmin = n->min, n->has_min = false;
    }
    if (n->xmax_flag && n->has_max) {
        n->has_xmax = true, n->xmax = n->max, n->has_max = false;
    }
    if (n->tuple.v && n->items && json_is_array(json_object_get(sch, "prefixItems"))) {
        n->addl_items = n->items; /* 2020: items after prefixItems */
        n->items = NULL;
    }
    return n;
}

/* Decodes one JSON pointer token p[0..n) (~0 ~1, %XX) into out. */
static bool ptr_token(const char *p, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = p[i];
        if (ch == '~' && i + 1 < n && (p[i + 1] == '0' || p[i + 1] == '1')) {
            ch = p[++i] == '0' ? '~' : '/';
        } else if (ch == '%' && i + 2 < n && isxdigit((unsigned char)p[i + 1]) && isxdigit((unsigned char)p[i + 2])) {
            char hex[3] = { p[i + 1], p[i + 2], 0 };
            ch = (char)strtol(hex, NULL, 16);
            i += 2;
        }
        if (o + 1 >= cap)
            return false;
        out[o++] = ch;
    }
    out[o] = '\0';
    return true;
}

static const json_t *resolve_ptr(const json_t *root, const char *ref)
{
    const json_t *cur = root;
    const char *p = ref + 1; /* after '#' */
    while (*p == '/') {
        p++;
        size_t n = strcspn(p, "/");
        char tokbuf[256];
        if (!ptr_token(p, n, tokbuf, sizeof tokbuf))
            return NULL;
        if (json_is_object(cur)) {
            cur = json_object_get(cur, tokbuf);
        } else if (json_is_array(cur)) {
            char *end;
            long idx = strtol(tokbuf, &end, 10);
            if (*end || end == tokbuf || idx < 0)
                return NULL;
            cur = json_array_get(cur, (size_t)idx);
        } else {
            return NULL;
        }
        if (!cur)
            return NULL;
        p += n;
    }
    return *p ? NULL : cur;
}

err_code jschema_compile(const json_t *schema, jschema **out, char *msg, size_t cap)
{
    *out = NULL;
    if (msg && cap)
        msg[0] = '\0';
    jschema *s = calloc(1, sizeof *s);
    if (!s) {
        if (msg && cap)
            snprintf(msg, cap, "out of memory");
        return ERR_NOMEM;
    }
    s->root = json_incref((json_t *)schema);
    cctx c = { .s = s, .msg = msg, .cap = cap };
    s->top = compile(&c, schema, "#");
    for (size_t i = 0; !c.err && i < c.npend; i++) {
        jnode *n = c.pend[i];
        const char *r = n->ref_str;
        if (r[0] != '#' || (r[1] != '\0' && r[1] != '/')) {
            cfail(&c, ERR_UNSUPPORTED, "JSON Schema: only references inside the schema are supported ('%s' at %s)", r,
                  n->where);
            break;
        }
        const json_t *target = resolve_ptr(schema, r);
        if (!target) {
            cfail(&c, ERR_PARSE, "JSON Schema: reference '%s' at %s does not resolve", r, n->where);
            break;
        }
        n->ref = compile(&c, target, r);
    }
    free(c.map);
    free(c.pend);
    if (c.err) {
        jschema_free(s);
        return c.err;
    }
    *out = s;
    return ERR_OK;
}

void jschema_free(jschema *s)
{
    if (!s)
        return;
    jnode *n = s->nodes;
    while (n) {
        jnode *next = n->next_alloc;
        pcre2_code_free(n->pattern);
        for (size_t i = 0; i < n->npprops; i++)
            pcre2_code_free(n->pprops[i].re);
        free(n->pprops);
        free(n->props);
        free(n->tuple.v);
        free(n->all.v);
        free(n->any.v);
        free(n->one.v);
        free(n->where);
        free(n);
        n = next;
    }
    json_decref(s->root);
    free(s);
}

/* ---- formats -------------------------------------------------------------------- */

static bool digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

static int num2(const char *s) { return (s[0] - '0') * 10 + (s[1] - '0'); }

static bool fmt_date(const char *s, size_t n)
{
    static const int mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    if (n != 10 || !digits(s, 4) || s[4] != '-' || !digits(s + 5, 2) || s[7] != '-' || !digits(s + 8, 2))
        return false;
    int y = num2(s) * 100 + num2(s + 2), m = num2(s + 5), d = num2(s + 8);
    if (m < 1 || m > 12 || d < 1 || d > mdays[m - 1])
        return false;
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return !(m == 2 && d == 29 && !leap);
}

/* HH:MM:SS[.frac][Z|+HH:MM|+HHMM|+HH]; the zone required when need_tz. */
static bool fmt_time(const char *s, size_t n, bool need_tz)
{
    if (n < 8 || !digits(s, 2) || s[2] != ':' || !digits(s + 3, 2) || s[5] != ':' || !digits(s + 6, 2))
        return false;
    int h = num2(s), mi = num2(s + 3), se = num2(s + 6);
    if (h > 23 || mi > 59 || se > 60)
        return false;
    size_t i = 8;
    if (i < n && s[i] == '.') {
        size_t j = ++i;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == j)
            return false;
    }
    if (i == n)
        return !need_tz;
    if ((s[i] == 'Z' || s[i] == 'z') && i + 1 == n)
        return true;
    if (s[i] != '+' && s[i] != '-')
        return false;
    const char *z = s + i + 1;
    size_t zn = n - i - 1;
    if (zn == 2)
        return digits(z, 2) && num2(z) <= 23;
    if (zn == 4)
        return digits(z, 4) && num2(z) <= 23 && num2(z + 2) <= 59;
    return zn == 5 && digits(z, 2) && z[2] == ':' && digits(z + 3, 2) && num2(z) <= 23 && num2(z + 3) <= 59;
}

static bool host_label_char(char c) { return isalnum((unsigned char)c) || c == '-'; }

/* Dot-separated labels of letters, digits and inner hyphens (1-63 each);
 * at least min_labels of them. */
static bool fmt_host(const char *s, size_t n, int min_labels)
{
    if (n == 0 || n > 253)
        return false;
    int labels = 0;
    size_t i = 0;
    while (i <= n) {
        size_t j = i;
        while (j < n && s[j] != '.')
            j++;
        size_t len = j - i;
        if (len == 0 || len > 63 || s[i] == '-' || s[j - 1] == '-')
            return false;
        for (size_t k = i; k < j; k++)
            if (!host_label_char(s[k]))
                return false;
        labels++;
        i = j + 1;
    }
    return labels >= min_labels;
}

static bool fmt_email(const char *s, size_t n)
{
    const char *at = memchr(s, '@', n);
    if (!at || at == s)
        return false;
    size_t ln = (size_t)(at - s);
    if (s[0] == '.' || s[ln - 1] == '.')
        return false;
    for (size_t i = 0; i < ln; i++) {
        char c = s[i];
        if (c == '.' && s[i + 1] == '.')
            return false;
        if (!isalnum((unsigned char)c) && !strchr("!#$%&'*+/=?^_`{|}~.-", c))
            return false;
    }
    return fmt_host(at + 1, n - ln - 1, 2);
}

static bool fmt_uri(const char *s, size_t n)
{
    if (n == 0 || !isalpha((unsigned char)s[0]))
        return false;
    size_t i = 1;
    while (i < n && (isalnum((unsigned char)s[i]) || s[i] == '+' || s[i] == '-' || s[i] == '.'))
        i++;
    if (i == n || s[i] != ':')
        return false;
    for (i++; i < n; i++)
        if ((unsigned char)s[i] <= ' ' || s[i] == '"' || s[i] == '<' || s[i] == '>' || s[i] == '\\' ||
            s[i] == '^' || s[i] == '`' || s[i] == '{' || s[i] == '|' || s[i] == '}' || (unsigned char)s[i] == 0x7F)
            return false;
    return true;
}

static bool fmt_uuid(const char *s, size_t n)
{
    if (n == 45 && strncasecmp(s, "urn:uuid:", 9) == 0)
        s += 9, n -= 9;
    if (n != 36)
        return false;
    for (size_t i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return false;
        } else if (!isxdigit((unsigned char)s[i])) {
            return false;
        }
    }
    return true;
}

static bool fmt_ipv4(const char *s, size_t n)
{
    int parts = 0;
    size_t i = 0;
    while (parts < 4) {
        size_t j = i;
        while (j < n && j - i < 4 && s[j] >= '0' && s[j] <= '9')
            j++;
        size_t len = j - i;
        if (len == 0 || len > 3 || (len > 1 && s[i] == '0'))
            return false;
        int v = 0;
        for (size_t k = i; k < j; k++)
            v = v * 10 + (s[k] - '0');
        if (v > 255)
            return false;
        parts++;
        if (parts < 4) {
            if (j >= n || s[j] != '.')
                return false;
            i = j + 1;
        } else {
            i = j;
        }
    }
    return i == n;
}

static bool fmt_ipv6(const char *s, size_t n)
{
    char tmp[64];
    unsigned char out[16];
    if (n == 0 || n >= sizeof tmp || memchr(s, '\0', n))
        return false;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    return inet_pton(AF_INET6, tmp, out) == 1;
}

static bool check_format(int f, const char *s, size_t n)
{
    switch (f) {
    case F_DATE: return fmt_date(s, n);
    case F_TIME: return fmt_time(s, n, false);
    case F_DATETIME:
        return n > 11 && fmt_date(s, 10) && (s[10] == 'T' || s[10] == 't' || s[10] == ' ') &&
               fmt_time(s + 11, n - 11, true);
    case F_EMAIL: return fmt_email(s, n);
    case F_URI: return fmt_uri(s, n);
    case F_UUID: return fmt_uuid(s, n);
    case F_IPV4: return fmt_ipv4(s, n);
    case F_IPV6: return fmt_ipv6(s, n);
    case F_HOSTNAME: return fmt_host(s, n, 1);
    default: return true;
    }
}

/* ---- validating ------------------------------------------------------------------ */

typedef struct vctx {
    char *msg;
    size_t cap;
    int quiet;                   /* > 0 inside anyOf/oneOf/not/if: errors are expected */
    char path[512];              /* the instance path, JSON-pointer style */
    size_t plen;
} vctx;

static bool PRINTF_LIKE(2, 3) vfail(vctx *v, const char *fmt, ...)
{
    if (v->quiet || !v->msg || !v->cap || v->msg[0])
        return false;
    int k = snprintf(v->msg, v->cap, "data%s ", v->path);
    if (k > 0 && (size_t)k < v->cap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(v->msg + k, v->cap - (size_t)k, fmt, ap);
        va_end(ap);
    }
    return false;
}

/* Appends "/" + token (~ and / escaped) to the path; returns the old length. */
static size_t push(vctx *v, const char *tok, size_t n)
{
    size_t old = v->plen, p = old;
    if (p + 1 < sizeof v->path)
        v->path[p++] = '/';
    for (size_t i = 0; i < n && p + 2 < sizeof v->path; i++) {
        if (tok[i] == '~' || tok[i] == '/') {
            v->path[p++] = '~';
            v->path[p++] = tok[i] == '~' ? '0' : '1';
        } else {
            v->path[p++] = tok[i];
        }
    }
    v->path[p] = '\0';
    v->plen = p;
    return old;
}

static size_t push_index(vctx *v, size_t i)
{
    char b[24];
    int n = snprintf(b, sizeof b, "%zu", i);
    return push(v, b, (size_t)n);
}

static void pop(vctx *v, size_t old)
{
    v->plen = old;
    v->path[old] = '\0';
}

static bool valid(vctx *v, const jnode *n, const json_t *x, int depth);

/* Validates without recording errors. */
static bool quietly(vctx *v, const jnode *n, const json_t *x, int depth)
{
    v->quiet++;
    bool ok = valid(v, n, x, depth);
    v->quiet--;
    return ok;
}

static bool type_ok(unsigned types, const json_t *x)
{
    switch (json_typeof(x)) {
    case JSON_NULL: return types & T_NULL;
    case JSON_TRUE:
    case JSON_FALSE: return types & T_BOOLEAN;
    case JSON_OBJECT: return types & T_OBJECT;
    case JSON_ARRAY: return types & T_ARRAY;
    case JSON_STRING: return types & T_STRING;
    case JSON_INTEGER: return types & (T_NUMBER | T_INTEGER);
    case JSON_REAL: {
        double d = json_real_value(x);
        return (types & T_NUMBER) || ((types & T_INTEGER) && isfinite(d) && d == floor(d));
    }
    }
    return false;
}

static void type_names(unsigned types, char *out, size_t cap)
{
    static const char *const names[] = { "null", "boolean", "object", "array", "number", "integer", "string" };
    size_t o = 0;
    out[0] = '\0';
    for (int i = 0; i < 7; i++)
        if (types & (1u << i)) {
            int k = snprintf(out + o, cap - o, "%s%s", o ? "," : "", names[i]);
            if (k < 0 || (size_t)k >= cap - o)
                break;
            o += (size_t)k;
        }
}

static bool valid_number(vctx *v, const jnode *n, double d)
{
    if (n->has_min && d < n->min)
        return vfail(v, "must be >= %.17g", n->min);
    if (n->has_max && d > n->max)
        return vfail(v, "must be <= %.17g", n->max);
    if (n->has_xmin && d <= n->xmin)
        return vfail(v, "must be > %.17g", n->xmin);
    if (n->has_xmax && d >= n->xmax)
        return vfail(v, "must be < %.17g", n->xmax);
    if (n->has_mult && fmod(d, n->mult) != 0)
        return vfail(v, "must be multiple of %.17g", n->mult);
    return true;
}

static bool valid_string(vctx *v, const jnode *n, const json_t *x)
{
    sv s = { json_string_value(x), json_string_length(x) };
    if (n->min_len >= 0 || n->max_len >= 0) {
        size_t cps = at_codepoints(s);
        if (n->min_len >= 0 && cps < (size_t)n->min_len)
            return vfail(v, "must NOT have fewer than %lld characters", n->min_len);
        if (n->max_len >= 0 && cps > (size_t)n->max_len)
            return vfail(v, "must NOT have more than %lld characters", n->max_len);
    }
    if (n->pattern) {
        char m[200];
        int r = at_regex_search(n->pattern, s.p, s.len, m, sizeof m);
        if (r < 0)
            return vfail(v, "could not be matched against pattern \"%s\": %s", n->pattern_src, m);
        if (r == 0)
            return vfail(v, "must match pattern \"%s\"", n->pattern_src);
    }
    if (n->format && !check_format(n->format, s.p, s.len))
        return vfail(v, "must match format \"%s\"", format_names[n->format]);
    return true;
}

typedef struct hidx {
    uint64_t h;
    size_t i;
} hidx;

static int hidx_cmp(const void *a, const void *b)
{
    const hidx *x = a, *y = b;
    return x->h < y->h ? -1 : x->h > y->h ? 1 : (x->i < y->i ? -1 : x->i > y->i);
}

/* uniqueItems: pairwise for short arrays, by sorted hashes for long ones. */
static bool valid_unique(vctx *v, const json_t *x)
{
    size_t n = json_array_size(x);
    if (n <= 64) {
        for (size_t i = 1; i < n; i++)
            for (size_t j = 0; j < i; j++)
                if (jschema_equal(json_array_get(x, i), json_array_get(x, j)))
                    return vfail(v, "must NOT have duplicate items (items ## %zu and %zu are identical)", j, i);
        return true;
    }
    hidx *h = malloc(n * sizeof *h);
    if (!h)
        return vfail(v, "could not be checked for duplicates (out of memory)");
    for (size_t i = 0; i < n; i++)
        h[i] = (hidx){ jhash(json_array_get(x, i)), i };
    qsort(h, n, sizeof *h, hidx_cmp);
    for (size_t a = 0; a < n; a++)
        for (size_t b = a + 1; b < n && h[b].h == h[a].h; b++)
            if (jschema_equal(json_array_get(x, h[a].i), json_array_get(x, h[b].i))) {
                size_t i = h[a].i, j = h[b].i;
                free(h);
                return vfail(v, "must NOT have duplicate items (items ## %zu and %zu are identical)", i, j);
            }
    free(h);
    return true;
}

static bool valid_array(vctx *v, const jnode *n, const json_t *x, int depth)
{
    size_t len = json_array_size(x);
    if (n->min_items >= 0 && len < (size_t)n->min_items)
        return vfail(v, "must NOT have fewer than %lld items", n->min_items);
    if (n->max_items >= 0 && len > (size_t)n->max_items)
        return vfail(v, "must NOT have more than %lld items", n->max_items);
    for (size_t i = 0; i < len; i++) {
        const jnode *s = i < n->tuple.n ? n->tuple.v[i] : n->tuple.v ? n->addl_items : n->items;
        if (!s)
            continue;
        if (s->boolean == 0 && i >= n->tuple.n && n->tuple.v)
            return vfail(v, "must NOT have more than %zu items", n->tuple.n);
        size_t old = push_index(v, i);
        bool ok = valid(v, s, json_array_get(x, i), depth + 1);
        pop(v, old);
        if (!ok)
            return false;
    }
    if (n->contains) {
        size_t i;
        for (i = 0; i < len; i++)
            if (quietly(v, n->contains, json_array_get(x, i), depth + 1))
                break;
        if (i == len)
            return vfail(v, "must contain at least 1 valid item(s)");
    }
    if (n->unique && !valid_unique(v, x))
        return false;
    return true;
}

static bool valid_object(vctx *v, const jnode *n, const json_t *x, int depth)
{
    size_t size = json_object_size(x);
    if (n->min_props >= 0 && size < (size_t)n->min_props)
        return vfail(v, "must NOT have fewer than %lld properties", n->min_props);
    if (n->max_props >= 0 && size > (size_t)n->max_props)
        return vfail(v, "must NOT have more than %lld properties", n->max_props);
    for (size_t i = 0; n->required && i < json_array_size(n->required); i++) {
        const json_t *r = json_array_get(n->required, i);
        if (!json_object_getn(x, json_string_value(r), json_string_length(r)))
            return vfail(v, "must have required property '%s'", json_string_value(r));
    }
    if (n->dep_required) {
        const char *k;
        json_t *deps;
        json_object_foreach((json_t *)n->dep_required, k, deps) {
            if (!json_object_get(x, k))
                continue;
            for (size_t i = 0; i < json_array_size(deps); i++) {
                const json_t *r = json_array_get(deps, i);
                if (!json_object_getn(x, json_string_value(r), json_string_length(r)))
                    return vfail(v, "must have property '%s' when property '%s' is present", json_string_value(r), k);
            }
        }
    }
    const char *k;
    size_t klen;
    json_t *val;
    json_object_keylen_foreach((json_t *)x, k, klen, val) {
        bool matched = false;
        size_t old = push(v, k, klen);
        for (size_t i = 0; i < n->nprops; i++)
            if (n->props[i].klen == klen && memcmp(n->props[i].key, k, klen) == 0) {
                matched = true;
                if (!valid(v, n->props[i].n, val, depth + 1))
                    return pop(v, old), false;
                break;
            }
        for (size_t i = 0; i < n->npprops; i++) {
            char m[200];
            int r = at_regex_search(n->pprops[i].re, k, klen, m, sizeof m);
            if (r < 0)
                return pop(v, old), vfail(v, "property name could not be matched: %s", m);
            if (r == 1) {
                matched = true;
                if (!valid(v, n->pprops[i].n, val, depth + 1))
                    return pop(v, old), false;
            }
        }
        if (!matched && n->addl_props) {
            if (n->addl_props->boolean == 0) {
                pop(v, old);
                return vfail(v, "must NOT have additional properties ('%s')", k);
            }
            if (!valid(v, n->addl_props, val, depth + 1))
                return pop(v, old), false;
        }
        pop(v, old);
        if (n->prop_names) {
            json_t *name = json_stringn_nocheck(k, klen);
            bool ok = name && quietly(v, n->prop_names, name, depth + 1);
            json_decref(name);
            if (!ok)
                return vfail(v, "property name '%s' is invalid", k);
        }
    }
    return true;
}

static bool valid(vctx *v, const jnode *n, const json_t *x, int depth)
{
    if (depth > JS_MAX_DEPTH)
        return vfail(v, "could not be validated: schema nesting deeper than %d", JS_MAX_DEPTH);
    if (n->boolean == 1)
        return true;
    if (n->boolean == 0)
        return vfail(v, "boolean schema is false");
    if (n->ref && !valid(v, n->ref, x, depth + 1))
        return false;
    if (n->types && !type_ok(n->types, x)) {
        char t[80];
        type_names(n->types, t, sizeof t);
        return vfail(v, "must be %s", t);
    }
    if (n->enum_v) {
        size_t i;
        for (i = 0; i < json_array_size(n->enum_v); i++)
            if (jschema_equal(json_array_get(n->enum_v, i), x))
                break;
        if (i == json_array_size(n->enum_v))
            return vfail(v, "must be equal to one of the allowed values");
    }
    if (n->const_v && !jschema_equal(n->const_v, x))
        return vfail(v, "must be equal to constant");
    if (json_is_number(x) && !valid_number(v, n, json_number_value(x)))
        return false;
    if (json_is_string(x) && !valid_string(v, n, x))
        return false;
    if (json_is_array(x) && !valid_array(v, n, x, depth))
        return false;
    if (json_is_object(x) && !valid_object(v, n, x, depth))
        return false;
    for (size_t i = 0; i < n->all.n; i++)
        if (!valid(v, n->all.v[i], x, depth + 1))
            return false;
    if (n->any.n) {
        size_t i;
        for (i = 0; i < n->any.n; i++)
            if (quietly(v, n->any.v[i], x, depth + 1))
                break;
        if (i == n->any.n)
            return vfail(v, "must match a schema in anyOf");
    }
    if (n->one.n) {
        size_t hits = 0;
        for (size_t i = 0; i < n->one.n && hits < 2; i++)
            hits += quietly(v, n->one.v[i], x, depth + 1);
        if (hits != 1)
            return vfail(v, "must match exactly one schema in oneOf (matched %s)", hits ? "more than one" : "none");
    }
    if (n->not_ && quietly(v, n->not_, x, depth + 1))
        return vfail(v, "must NOT be valid");
    if (n->if_) {
        bool cond = quietly(v, n->if_, x, depth + 1);
        const jnode *branch = cond ? n->then_ : n->else_;
        if (branch && !valid(v, branch, x, depth + 1))
            return vfail(v, "must match \"%s\" schema", cond ? "then" : "else");
    }
    return true;
}

bool jschema_validate(const jschema *s, const json_t *inst, char *msg, size_t cap)
{
    vctx v = { .msg = msg, .cap = cap };
    if (msg && cap)
        msg[0] = '\0';
    if (!s || !s->top)
        return vfail(&v, "could not be validated (no schema)");
    return valid(&v, s->top, inst, 0);
}
