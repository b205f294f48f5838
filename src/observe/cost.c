/*
 * cost.c - the pricing table and the cost of one call.
 *
 * Loading: the JSON (a file read whole, at most PRICING_MAX_FILE, or the
 * built-in bytes that scripts/embed.sh compiled in from pricing.json) is
 * parsed once with jansson. Every top-level key is a model, except
 * "sample_spec" and keys starting with '_' (metadata such as "_date").
 * Of each model only the five token prices are kept; other fields are
 * ignored. Prices must be JSON numbers, finite, >= 0 and at most
 * PRICING_MAX_PRICE; null counts as absent. Anything else fails the load
 * with a message naming the model and field, so a bad table is found at
 * start-up rather than as silently wrong costs.
 *
 * Storage: one heap block holds the struct, an open-addressing hash table
 * (linear probing, FNV-1a, at most half full) and the model names. A
 * lookup hashes its key in pieces ("azure" "/" "gpt-4o"), so trying the
 * prefixed and undated names costs no copying and no allocation.
 */
#include "observe/cost.h"

#include <errno.h>
#include <jansson.h>
#include <stdatomic.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

/* The built-in table: generated from src/observe/pricing.json at build
 * time (CMake's genaiops_embed). */
extern const unsigned char pricing_builtin_json[];
extern const size_t pricing_builtin_json_len;

/* The five prices of a model in USD per token; < 0 = absent. */
typedef struct price {
    double in, out, cache_read, cache_creation, reasoning;
} price;

typedef struct slot {
    const char *key;   /* NULL = empty */
    size_t len;
    uint64_t hash;
    price pr;
} slot;

struct pricing {
    slot *slots;
    size_t mask;       /* slots - 1 (a power of two) */
    size_t count;
    const char *source;
    uint64_t serial;   /* this table among all loaded (for lookup's memo) */
};

static _Atomic uint64_t serials;

/* The fields read, by LiteLLM name, and where they go. */
static const struct {
    const char *name;
    size_t off;
} price_fields[] = {
    { "input_cost_per_token", offsetof(price, in) },
    { "output_cost_per_token", offsetof(price, out) },
    { "cache_read_input_token_cost", offsetof(price, cache_read) },
    { "cache_creation_input_token_cost", offsetof(price, cache_creation) },
    { "output_cost_per_reasoning_token", offsetof(price, reasoning) },
};

static void set_err(char *err, size_t errcap, const char *fmt, ...) PRINTF_LIKE(3, 4);
static void set_err(char *err, size_t errcap, const char *fmt, ...)
{
    if (!err || errcap == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errcap, fmt, ap);
    va_end(ap);
}

#define FNV_OFFSET 1469598103934665603ull
#define FNV_PRIME 1099511628211ull

static uint64_t fnv(uint64_t h, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= FNV_PRIME;
    }
    return h;
}

static bool is_model_key(const char *key)
{
    return key[0] != '_' && strcmp(key, "sample_spec") != 0;
}

/* Reads a model's prices into *pr; false with err set on a bad field. */
static bool read_prices(const char *name, const char *key, json_t *obj, price *pr,
                        char *err, size_t errcap)
{
    for (size_t i = 0; i < countof(price_fields); i++) {
        double *dst = (double *)((char *)pr + price_fields[i].off);
        *dst = -1;
        json_t *v = json_object_get(obj, price_fields[i].name);
        if (!v || json_is_null(v))
            continue;
        double d = json_is_number(v) ? json_number_value(v) : -1;
        if (!json_is_number(v) || !isfinite(d) || d < 0 || d > PRICING_MAX_PRICE) {
            set_err(err, errcap, "%s: \"%.200s\": %s must be a number from 0 to %g (USD per token)",
                    name, key, price_fields[i].name, PRICING_MAX_PRICE);
            return false;
        }
        *dst = d;
    }
    return true;
}

/* Finds the slot of the key made of the n pieces, or NULL. */
static const slot *find(const pricing *p, const sv *parts, size_t n)
{
    uint64_t h = FNV_OFFSET;
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        h = fnv(h, parts[i].p, parts[i].len);
        len += parts[i].len;
    }
    for (size_t i = (size_t)h & p->mask;; i = (i + 1) & p->mask) {
        const slot *s = &p->slots[i];
        if (!s->key)
            return NULL;
        if (s->hash != h || s->len != len)
            continue;
        const char *k = s->key;
        size_t j = 0;
        for (; j < n; j++) {
            if (parts[j].len && memcmp(k, parts[j].p, parts[j].len) != 0)
                break;
            k += parts[j].len;
        }
        if (j == n)
            return s;
    }
}

/* Builds the table from a parsed root object. */
static err_code build(const char *name, json_t *root, bool builtin, pricing **out,
                      char *err, size_t errcap)
{
    if (!json_is_object(root)) {
        set_err(err, errcap, "%s: the top level must be a JSON object of model names", name);
        return ERR_PARSE;
    }
    size_t count = 0, key_bytes = 0;
    const char *key;
    json_t *val;
    price scratch;
    json_object_foreach(root, key, val) {
        if (!is_model_key(key))
            continue;
        if (!json_is_object(val)) {
            set_err(err, errcap, "%s: \"%.200s\": a model's entry must be an object", name, key);
            return ERR_PARSE;
        }
        if (!read_prices(name, key, val, &scratch, err, errcap))
            return ERR_PARSE;
        count++;
        key_bytes += strlen(key) + 1;
    }

    char source[128];
    json_t *date = json_object_get(root, "_date");
    if (!builtin)
        snprintf(source, sizeof source, "%s", name);
    else if (json_is_string(date))
        snprintf(source, sizeof source, "built-in (%.64s)", json_string_value(date));
    else
        snprintf(source, sizeof source, "built-in");
    size_t source_len = strlen(source) + 1;

    size_t nslots = 8;
    while (nslots < count * 2)
        nslots *= 2;
    size_t total = sizeof(pricing) + nslots * sizeof(slot) + key_bytes + source_len;
    pricing *p = calloc(1, total);
    if (!p) {
        set_err(err, errcap, "%s: out of memory", name);
        return ERR_NOMEM;
    }
    p->slots = (slot *)(p + 1);
    p->mask = nslots - 1;
    p->serial = atomic_fetch_add(&serials, 1) + 1;
    char *arena = (char *)(p->slots + nslots);
    json_object_foreach(root, key, val) {
        if (!is_model_key(key))
            continue;
        size_t len = strlen(key);
        memcpy(arena, key, len + 1);
        uint64_t h = fnv(FNV_OFFSET, key, len);
        size_t i = (size_t)h & p->mask;
        while (p->slots[i].key) /* keys of a JSON object are unique */
            i = (i + 1) & p->mask;
        slot *s = &p->slots[i];
        s->key = arena;
        s->len = len;
        s->hash = h;
        read_prices(name, key, val, &s->pr, NULL, 0);
        arena += len + 1;
        p->count++;
    }
    memcpy(arena, source, source_len);
    p->source = arena;
    *out = p;
    return ERR_OK;
}

static err_code load(const char *name, const char *data, size_t len, bool builtin,
                     pricing **out, char *err, size_t errcap)
{
    json_error_t jerr;
    json_t *root = json_loadb(data, len, 0, &jerr);
    if (!root) {
        set_err(err, errcap, "%s:%d:%d: %s", name, jerr.line, jerr.column, jerr.text);
        return ERR_PARSE;
    }
    err_code e = build(name, root, builtin, out, err, errcap);
    json_decref(root);
    return e;
}

err_code pricing_load_buf(const char *name, const char *data, size_t len, pricing **out,
                          char *err, size_t errcap)
{
    *out = NULL;
    if (!name)
        name = "pricing";
    if (!data && len) {
        set_err(err, errcap, "%s: no data", name);
        return ERR_INVAL;
    }
    return load(name, data ? data : "", len, false, out, err, errcap);
}

err_code pricing_load(const char *path, pricing **out, char *err, size_t errcap)
{
    *out = NULL;
    if (!path)
        return load("built-in pricing table", (const char *)pricing_builtin_json,
                    pricing_builtin_json_len, true, out, err, errcap);

    err_code e = ERR_OK;
    char *data = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        set_err(err, errcap, "%s: cannot open the pricing file: %s", path, strerror(errno));
        return ERR_IO;
    }
    size_t cap = 64 * 1024, len = 0;
    data = malloc(cap);
    if (!data) {
        e = ERR_NOMEM;
        set_err(err, errcap, "%s: out of memory", path);
        goto out;
    }
    for (;;) {
        if (len == cap) {
            if (cap >= PRICING_MAX_FILE) {
                e = ERR_TOOBIG;
                set_err(err, errcap, "%s: larger than %u MiB", path, PRICING_MAX_FILE >> 20);
                goto out;
            }
            size_t ncap = MIN((size_t)PRICING_MAX_FILE, cap * 2);
            char *n = realloc(data, ncap);
            if (!n) {
                e = ERR_NOMEM;
                set_err(err, errcap, "%s: out of memory", path);
                goto out;
            }
            data = n;
            cap = ncap;
        }
        size_t got = fread(data + len, 1, cap - len, f);
        len += got;
        if (got == 0) {
            if (ferror(f)) {
                e = ERR_IO;
                set_err(err, errcap, "%s: cannot read the pricing file: %s", path, strerror(errno));
                goto out;
            }
            break;
        }
    }
    e = load(path, data, len, false, out, err, errcap);
out:
    free(data);
    fclose(f);
    return e;
}

void pricing_free(pricing *p)
{
    free(p);
}

const char *pricing_source(const pricing *p)
{
    return p ? p->source : "none";
}

size_t pricing_count(const pricing *p)
{
    return p ? p->count : 0;
}

/* Length of a trailing "-YYYY-MM-DD" or "-YYYYMMDD" on s, or 0. */
static size_t date_suffix(const char *s, size_t len)
{
    static const char *const shapes[] = { "-dddd-dd-dd", "-dddddddd" };
    for (size_t i = 0; i < countof(shapes); i++) {
        size_t n = strlen(shapes[i]);
        if (len <= n)
            continue;
        const char *t = s + len - n;
        size_t j = 0;
        for (; j < n; j++) {
            bool digit = t[j] >= '0' && t[j] <= '9';
            if (shapes[i][j] == 'd' ? !digit : t[j] != shapes[i][j])
                break;
        }
        if (j == n)
            return n;
    }
    return 0;
}

/* The table's prices for model (see pricing_cost for the order), or NULL. */
static const slot *lookup_slow(const pricing *p, const char *ptype, const char *model)
{
    sv m = sv_from(model);
    sv pt = sv_from(ptype);
    size_t strip = date_suffix(m.p, m.len);
    for (int pass = 0; pass < (strip ? 2 : 1); pass++) {
        if (pass == 1)
            m.len -= strip;
        const slot *s = find(p, &m, 1);
        if (s)
            return s;
        if (pt.len) {
            sv parts[3] = { pt, SV("/"), m };
            s = find(p, parts, 3);
            if (s)
                return s;
        }
    }
    return NULL;
}

/* lookup_slow, remembered per thread for the last table, provider type and
 * model asked for: a gateway prices the same few models over and over. The
 * table is told by its serial, not its address, which a reload may reuse. */
static const slot *lookup(const pricing *p, const char *ptype, const char *model)
{
    static _Thread_local struct {
        uint64_t serial;
        char ptype[32], model[128];
        const slot *s;
    } memo;
    if (!ptype)
        ptype = "";
    size_t tl = strlen(ptype), ml = strlen(model);
    if (memo.serial == p->serial && tl < sizeof memo.ptype && ml < sizeof memo.model &&
        memcmp(memo.model, model, ml + 1) == 0 && memcmp(memo.ptype, ptype, tl + 1) == 0)
        return memo.s;
    const slot *s = lookup_slow(p, ptype, model);
    if (tl < sizeof memo.ptype && ml < sizeof memo.model) {
        memo.serial = p->serial;
        memcpy(memo.ptype, ptype, tl + 1);
        memcpy(memo.model, model, ml + 1);
        memo.s = s;
    }
    return s;
}

bool pricing_cost(const pricing *p, const cfg_pricing *override, const char *ptype,
                  const char *model, const cost_usage *u, double *usd)
{
    if (!u || !usd)
        return false;
    price pr = { -1, -1, -1, -1, -1 };
    const slot *s = p && model ? lookup(p, ptype, model) : NULL;
    if (s)
        pr = s->pr;
    if (override) {
        if (override->input_cost_per_token >= 0)
            pr.in = override->input_cost_per_token;
        if (override->output_cost_per_token >= 0)
            pr.out = override->output_cost_per_token;
        if (override->cache_read_input_token_cost >= 0)
            pr.cache_read = override->cache_read_input_token_cost;
        if (override->cache_creation_input_token_cost >= 0)
            pr.cache_creation = override->cache_creation_input_token_cost;
        if (override->output_cost_per_reasoning_token >= 0)
            pr.reasoning = override->output_cost_per_reasoning_token;
    }
    if ((pr.in < 0 && pr.out < 0) || u->input < 0)
        return false;

    long long input = u->input;
    long long output = MAX(u->output, 0);
    long long cache_read = MAX(u->cache_read, 0);
    long long cache_creation = MAX(u->cache_creation, 0);
    long long reasoning = MAX(u->reasoning, 0);
    /* Subtract without overflow: every count here is >= 0. */
    long long uncached = cache_read >= input ? 0 : input - cache_read;
    uncached = cache_creation >= uncached ? 0 : uncached - cache_creation;
    long long visible = reasoning >= output ? 0 : output - reasoning;

    double p_read = pr.cache_read >= 0 ? pr.cache_read : pr.in;
    double p_write = pr.cache_creation >= 0 ? pr.cache_creation : pr.in;
    double p_reason = pr.reasoning >= 0 ? pr.reasoning : pr.out;
    const struct {
        long long n;
        double price;
    } parts[] = {
        { uncached, pr.in },
        { cache_read, p_read },
        { cache_creation, p_write },
        { visible, pr.out },
        { reasoning, p_reason },
    };
    double total = 0;
    for (size_t i = 0; i < countof(parts); i++) {
        if (parts[i].n == 0)
            continue;
        if (parts[i].price < 0)
            return false;
        total += (double)parts[i].n * parts[i].price;
    }
    if (!isfinite(total))
        return false;
    *usd = total;
    return true;
}
