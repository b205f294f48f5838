/*
 * assert.c - the assertions of a suite: parsed from the suite's JSON into
 * an ev_assert tree with private compiled state, run on an answer
 * (deterministic types), negated, weighted and combined as promptfoo does.
 *
 * How it works. ev_assert_parse validates one assertion object and
 * prepares everything a check needs, once: the type's handler, the value
 * as text (numbers spelt as JavaScript spells them), comma lists split,
 * regexes compiled with PCRE2, JSON Schemas compiled (jschema.h), values
 * with "{{" compiled as templates (prompt/template.h, rendered leniently
 * like promptfoo's nunjucks: a missing variable is empty). That private
 * state lives in an `apriv` next to the public ev_assert: the top-level
 * node is one allocation { ev_assert, apriv } (container-of), and every
 * node's `type` string is allocated behind a pointer to its apriv, so the
 * children of an assert-set (a plain ev_assert array, as eval.h says) find
 * theirs too. ev_assert_check then renders values into per-thread scratch
 * buffers (assert_int.h) and runs the handler: a passing check of the
 * common types calls malloc not at all; a reason is built only for a fail
 * or an error. "not-" flips the verdict (never an error) and turns a 0..1
 * score s into 1 - s; weight 0 turns a fail into a pass (promptfoo's
 * metric-only assertions). ev_assert_combine is promptfoo's rule for a
 * test and for an assert-set.
 *
 * The definitions, defaults and references are in
 * docs/internals/assertions.md; the metrics are in assert_text.c.
 */
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include "core/jscan.h"
#include "core/yjson.h"
#include "eval/assert.h"
#include "eval/assert_int.h"
#include "eval/jschema.h"
#include "prompt/template.h"

/* ---- types -------------------------------------------------------------------- */

typedef enum akind {
    K_EQUALS, K_CONTAINS, K_ICONTAINS, K_CONTAINS_ANY, K_CONTAINS_ALL, K_ICONTAINS_ANY, K_ICONTAINS_ALL,
    K_STARTS_WITH, K_REGEX, K_WORD_COUNT, K_IS_JSON, K_CONTAINS_JSON, K_TOOLS_CALL, K_FINISH_REASON,
    K_LATENCY, K_COST, K_LEVENSHTEIN, K_ROUGE_N, K_ROUGE_L, K_BLEU, K_TOKEN_F1, K_SET, K_GRADED,
} akind;

/* Implemented types, sorted by name (ev_assert_types lists them in this order). */
static const struct tinfo {
    const char *name;
    akind kind;
} tinfos[] = {
    { "answer-relevance", K_GRADED },
    { "assert-set", K_SET },
    { "bleu", K_BLEU },
    { "command", K_GRADED },
    { "contains", K_CONTAINS },
    { "contains-all", K_CONTAINS_ALL },
    { "contains-any", K_CONTAINS_ANY },
    { "contains-json", K_CONTAINS_JSON },
    { "context-faithfulness", K_GRADED },
    { "context-recall", K_GRADED },
    { "context-relevance", K_GRADED },
    { "cost", K_COST },
    { "equals", K_EQUALS },
    { "factuality", K_GRADED },
    { "finish-reason", K_FINISH_REASON },
    { "g-eval", K_GRADED },
    { "icontains", K_ICONTAINS },
    { "icontains-all", K_ICONTAINS_ALL },
    { "icontains-any", K_ICONTAINS_ANY },
    { "is-json", K_IS_JSON },
    { "is-valid-openai-tools-call", K_TOOLS_CALL },
    { "latency", K_LATENCY },
    { "levenshtein", K_LEVENSHTEIN },
    { "llm-rubric", K_GRADED },
    { "model-graded-closedqa", K_GRADED },
    { "regex", K_REGEX },
    { "rouge-l", K_ROUGE_L },
    { "rouge-n", K_ROUGE_N },
    { "similar", K_GRADED },
    { "similar:cosine", K_GRADED },
    { "similar:dot", K_GRADED },
    { "similar:euclidean", K_GRADED },
    { "starts-with", K_STARTS_WITH },
    { "token-f1", K_TOKEN_F1 },
    { "word-count", K_WORD_COUNT },
};

/* promptfoo types that genaiops does not implement: an error naming them,
 * never a silent skip. */
static const char *const unimplemented[] = {
    "agent-rubric", "bertscore", "character-count", "classifier", "contains-html", "contains-sql",
    "contains-xml", "conversation-relevance", "ends-with", "f-score", "gleu", "guardrail", "guardrails",
    "is-html", "is-refusal", "is-sql", "is-valid-function-call", "is-valid-openai-function-call", "is-xml",
    "javascript", "llama-guard", "math-equivalent", "max-score", "meteor", "model-graded-factuality",
    "moderation", "noise-sensitivity", "perplexity", "perplexity-score", "pi", "python", "ruby",
    "search-rubric", "select-best", "skill-used", "tokens-used", "tool-call-f1", "trace-error-spans",
    "trace-span-count", "trace-span-duration", "webhook",
};

/* One string operand: literal text, or a template rendered per check. */
typedef struct val {
    char *s;            /* literal (owned, NUL-terminated) or NULL */
    size_t len;
    tpl *t;             /* compiled template or NULL */
} val;

typedef struct tool {
    char *name;
    jschema *params;    /* NULL: the function takes anything */
} tool;

typedef struct apriv apriv;
struct apriv {
    ev_assert *self;
    akind kind;
    val v;              /* the value as text for the string types */
    bool json_value;    /* equals with an object or array value */
    bool split_rendered; /* a templated comma list: split after rendering */
    val *items;         /* lists: contains-any/all, bleu references */
    size_t nitems;
    pcre2_code *re;     /* regex without "{{" */
    jschema *schema;    /* is-json / contains-json */
    tool *tools;        /* is-valid-openai-tools-call with config.tools */
    size_t ntools;
    bool has_tools;
    bool wc_range, wc_has_min, wc_has_max;
    double wc_n, wc_min, wc_max;
    bool wc_template;   /* word-count value is a template: a number after rendering */
    int ngram;          /* rouge-n's n */
    bool raw_metric;    /* latency/cost without a threshold: the raw value as score */
    apriv *kids;        /* assert-set: the children's private state */
};

/* The top-level allocation: the public node first (container-of). */
typedef struct anode {
    ev_assert a;
    apriv p;
} anode;

#define MAX_LIST 1000   /* entries in a list value */
#define MAX_REFS 64     /* bleu references */
#define SHOW 200        /* bytes of a value quoted in a reason */

/* The apriv behind any ev_assert this module parsed: its type string is
 * allocated right after a pointer to it. */
static apriv *priv(const ev_assert *a)
{
    apriv *p;
    if (!a || !a->type)
        return NULL;
    memcpy(&p, a->type - sizeof p, sizeof p);
    return p;
}

static char *type_alloc(const char *name, size_t len, apriv *p)
{
    char *blk = malloc(sizeof p + len + 1);
    if (!blk)
        return NULL;
    memcpy(blk, &p, sizeof p);
    memcpy(blk + sizeof p, name, len);
    blk[sizeof p + len] = '\0';
    return blk + sizeof p;
}

static void type_free(char *type)
{
    if (type)
        free(type - sizeof(apriv *));
}

static const struct tinfo *find_type(const char *name)
{
    size_t lo = 0, hi = countof(tinfos);
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(name, tinfos[mid].name);
        if (c == 0)
            return &tinfos[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

static bool is_unimplemented(const char *name)
{
    if (strncmp(name, "promptfoo:", 10) == 0 || strncmp(name, "trajectory:", 11) == 0 ||
        strncmp(name, "select-", 7) == 0)
        return true;
    for (size_t i = 0; i < countof(unimplemented); i++)
        if (strcmp(name, unimplemented[i]) == 0)
            return true;
    return false;
}

static const char *type_names[countof(tinfos) + 1];

static void fill_names(void)
{
    for (size_t i = 0; i < countof(tinfos); i++)
        type_names[i] = tinfos[i].name;
    type_names[countof(tinfos)] = NULL;
}

const char *const *ev_assert_types(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, fill_names);
    return type_names;
}

/* ---- small helpers ------------------------------------------------------------ */

/* A number as JavaScript's String(n) spells it: integers plainly, others
 * with the fewest digits that read back the same, exponent form below
 * 1e-6 and from 1e21. */
static void js_number(double d, char *out, size_t cap)
{
    if (isnan(d)) {
        snprintf(out, cap, "NaN");
        return;
    }
    if (isinf(d)) {
        snprintf(out, cap, "%sInfinity", d < 0 ? "-" : "");
        return;
    }
    if (d == 0) {
        snprintf(out, cap, "0");
        return;
    }
    char e[40];
    int prec;
    for (prec = 1; prec <= 17; prec++) {
        snprintf(e, sizeof e, "%.*e", prec - 1, d);
        if (strtod(e, NULL) == d)
            break;
    }
    /* e is "-D.DDDDe+XX": collect the digits and the exponent. */
    char dig[24];
    size_t nd = 0;
    const char *p = e;
    bool neg = *p == '-';
    if (neg)
        p++;
    for (; *p && *p != 'e'; p++)
        if (*p >= '0' && *p <= '9' && nd < sizeof dig - 1)
            dig[nd++] = *p;
    while (nd > 1 && dig[nd - 1] == '0')
        nd--;
    dig[nd] = '\0';
    int x = *p == 'e' ? (int)strtol(p + 1, NULL, 10) : 0;
    size_t o = 0;
#define PUT(c) do { if (o + 1 < cap) out[o++] = (c); } while (0)
    if (neg)
        PUT('-');
    if (x >= 21 || x <= -7) {
        PUT(dig[0]);
        if (nd > 1) {
            PUT('.');
            for (size_t i = 1; i < nd; i++)
                PUT(dig[i]);
        }
        char ex[16];
        snprintf(ex, sizeof ex, "e%c%d", x < 0 ? '-' : '+', x < 0 ? -x : x);
        for (char *q = ex; *q; q++)
            PUT(*q);
    } else if (x < 0) {
        PUT('0');
        PUT('.');
        for (int i = 0; i < -x - 1; i++)
            PUT('0');
        for (size_t i = 0; i < nd; i++)
            PUT(dig[i]);
    } else {
        for (int i = 0; i <= x || (size_t)i < nd; i++) {
            if (i == x + 1)
                PUT('.');
            PUT((size_t)i < nd ? dig[i] : '0');
        }
    }
#undef PUT
    if (cap)
        out[o < cap ? o : cap - 1] = '\0';
}

/* The length of s shown in a reason: at most SHOW bytes, not cutting a
 * UTF-8 sequence. */
static int shown(sv s)
{
    if (s.len <= SHOW)
        return (int)s.len;
    size_t n = SHOW;
    while (n > 0 && ((unsigned char)s.p[n] & 0xC0) == 0x80)
        n--;
    return (int)n;
}

#define SVS(s) shown(s), (s).p, (s).len > SHOW ? "..." : ""

static char *vdup(const char *fmt, va_list ap)
{
    char small[512];
    va_list cp;
    va_copy(cp, ap);
    int n = vsnprintf(small, sizeof small, fmt, cp);
    va_end(cp);
    if (n < 0)
        return NULL;
    if ((size_t)n > 4096)
        n = 4096;
    char *s = malloc((size_t)n + 1);
    if (!s)
        return NULL;
    if ((size_t)n < sizeof small)
        memcpy(s, small, (size_t)n + 1);
    else
        vsnprintf(s, (size_t)n + 1, fmt, ap);
    return s;
}

/* Sets r's reason (malloc'd) from a format; NULL when out of memory. */
static void PRINTF_LIKE(2, 3) say(ev_result *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    free(r->reason);
    r->reason = vdup(fmt, ap);
    va_end(ap);
}

/* An error verdict with its reason. */
static void PRINTF_LIKE(2, 3) fail_error(ev_result *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    r->verdict = EV_ERROR;
    r->score = 0;
    free(r->reason);
    r->reason = vdup(fmt, ap);
    va_end(ap);
}

/* promptfoo's pass = condition XOR inverse, with a 0/1 score. */
static bool decide(ev_result *r, bool cond, bool neg)
{
    bool pass = cond != neg;
    r->verdict = pass ? EV_PASS : EV_FAIL;
    r->score = pass ? 1 : 0;
    return pass;
}

/* Writes "path: message" into msg and returns e. */
static err_code PRINTF_LIKE(5, 6) perr(err_code e, char *msg, size_t cap, const char *path, const char *fmt, ...)
{
    if (!msg || !cap)
        return e;
    int k = snprintf(msg, cap, "%s: ", path ? path : "assertion");
    if (k >= 0 && (size_t)k < cap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg + k, cap - (size_t)k, fmt, ap);
        va_end(ap);
    }
    return e;
}

/* ---- comma lists (promptfoo's contains-any string form) ------------------------- */

/* The next field of a comma list s from *pos: 1 and the field in *out (a
 * view into s, or into fb for a quoted field with escapes), 0 at the end,
 * -1 for an unterminated quote or text after a closing quote. Fields are
 * trimmed; empty ones between commas are skipped; "..." may hold commas,
 * with \" \\ and "" as escapes. */
static int csv_next(sv s, size_t *pos, buf *fb, sv *out)
{
    size_t i = *pos, k;
    for (;;) { /* whitespace and commas */
        while (i < s.len && (k = at_space_len(s.p + i, s.len - i)) > 0)
            i += k;
        if (i < s.len && s.p[i] == ',') {
            i++;
            continue;
        }
        break;
    }
    if (i >= s.len) {
        *pos = i;
        return 0;
    }
    if (s.p[i] == '"') {
        buf_reset(fb);
        bool closed = false;
        for (i++; i < s.len;) {
            char c = s.p[i];
            if (c == '\\' && i + 1 < s.len && (s.p[i + 1] == '"' || s.p[i + 1] == '\\')) {
                c = s.p[i + 1];
                i += 2;
            } else if (c == '"' && i + 1 < s.len && s.p[i + 1] == '"') {
                i += 2;
            } else if (c == '"') {
                i++;
                closed = true;
                break;
            } else {
                i++;
            }
            if (buf_append(fb, &c, 1))
                return -1;
        }
        if (!closed)
            return -1;
        while (i < s.len && (k = at_space_len(s.p + i, s.len - i)) > 0)
            i += k;
        if (i < s.len && s.p[i] != ',')
            return -1;
        *out = buf_sv(fb);
        *pos = i;
        return 1;
    }
    size_t start = i;
    while (i < s.len && s.p[i] != ',')
        i++;
    *out = at_trim((sv){ s.p + start, i - start });
    *pos = i;
    return 1;
}

/* ---- values -------------------------------------------------------------------- */

static bool has_template(const char *s, size_t n)
{
    return n >= 2 && memmem(s, n, "{{", 2) != NULL;
}

/* Makes v from text s: a template when it holds "{{", else a copy. */
static err_code val_make(val *v, const char *s, size_t n, const char *path, char *msg, size_t cap)
{
    if (has_template(s, n)) {
        tpl_error te;
        if (tpl_compile(s, n, &v->t, &te) != ERR_OK)
            return perr(ERR_PARSE, msg, cap, path, "value template: %s (line %d, column %d)", te.message, te.line,
                        te.col);
        return ERR_OK;
    }
    if (n >= 2 && memmem(s, n, "{%", 2))
        return perr(ERR_UNSUPPORTED, msg, cap, path, "template tags ({%% ... %%}) are not supported in values");
    if (!(v->s = malloc(n + 1)))
        return perr(ERR_NOMEM, msg, cap, path, "out of memory");
    memcpy(v->s, s, n);
    v->s[n] = '\0';
    v->len = n;
    return ERR_OK;
}

/* A string or number JSON value as text ("true"/"false" for booleans when
 * bools is set). ERR_PARSE for other kinds. */
static err_code val_from_json(val *v, const json_t *j, bool bools, const char *path, char *msg, size_t cap)
{
    char num[48];
    if (json_is_string(j))
        return val_make(v, json_string_value(j), json_string_length(j), path, msg, cap);
    if (json_is_integer(j)) {
        snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(j));
        return val_make(v, num, strlen(num), path, msg, cap);
    }
    if (json_is_real(j)) {
        js_number(json_real_value(j), num, sizeof num);
        return val_make(v, num, strlen(num), path, msg, cap);
    }
    if (bools && json_is_boolean(j))
        return val_make(v, json_is_true(j) ? "true" : "false", json_is_true(j) ? 4 : 5, path, msg, cap);
    return ERR_PARSE;
}

static void val_free(val *v)
{
    free(v->s);
    tpl_free(v->t);
    v->s = NULL;
    v->t = NULL;
}

/* The text of v for this answer: the literal itself, or the template
 * rendered into b with the test's variables (missing ones empty). -1 with
 * err set when the render fails (an object as text, the size bound). */
static int val_text(const val *v, const ev_output *o, buf *b, sv *out, char *err, size_t cap)
{
    if (!v->t) {
        *out = (sv){ v->s ? v->s : "", v->len };
        return 0;
    }
    tpl_error te;
    tpl_opts opts = { .lenient = true };
    buf_reset(b);
    const json_t *vars = json_is_object(o->vars) ? o->vars : NULL;
    if (tpl_render(v->t, vars, &opts, b, &te) != ERR_OK) {
        snprintf(err, cap, "the value template did not render: %s", te.message[0] ? te.message : "size limit");
        return -1;
    }
    *out = buf_sv(b);
    return 0;
}

/* ---- parsing: per-type preparation ------------------------------------------------ */

static err_code need_string(apriv *p, const json_t *v, const char *what, const char *path, char *msg, size_t cap)
{
    if (!json_is_string(v) || json_string_length(v) == 0)
        return perr(ERR_PARSE, msg, cap, path, "%s needs a non-empty string value", what);
    return val_make(&p->v, json_string_value(v), json_string_length(v), path, msg, cap);
}

/* A list value: an array of strings/numbers, or a comma-separated string. */
static err_code prep_list(apriv *p, const json_t *v, const char *type, const char *path, char *msg, size_t cap)
{
    if (json_is_string(v)) {
        sv s = { json_string_value(v), json_string_length(v) };
        if (s.len == 0)
            return perr(ERR_PARSE, msg, cap, path, "%s needs a value (a list or a comma-separated string)", type);
        if (has_template(s.p, s.len)) {
            p->split_rendered = true;
            return val_make(&p->v, s.p, s.len, path, msg, cap);
        }
        size_t pos = 0, n = 0;
        sv f;
        buf fb;
        int r;
        buf_init(&fb, 1 << 20);
        while ((r = csv_next(s, &pos, &fb, &f)) == 1)
            n++;
        if (r < 0 || n > MAX_LIST) {
            buf_free(&fb);
            return perr(ERR_PARSE, msg, cap, path, r < 0 ? "%s: unterminated or misplaced quote in the value"
                                                          : "%s: more than 1000 entries in the value", type);
        }
        p->items = calloc(n ? n : 1, sizeof *p->items);
        pos = 0;
        for (size_t i = 0; p->items && i < n && csv_next(s, &pos, &fb, &f) == 1; i++) {
            if (!(p->items[i].s = malloc(f.len + 1)))
                break;
            memcpy(p->items[i].s, f.p, f.len);
            p->items[i].s[f.len] = '\0';
            p->items[i].len = f.len;
            p->nitems++;
        }
        buf_free(&fb);
        return p->items && p->nitems == n ? ERR_OK : perr(ERR_NOMEM, msg, cap, path, "out of memory");
    }
    if (!json_is_array(v))
        return perr(ERR_PARSE, msg, cap, path, "%s needs a list of strings or a comma-separated string", type);
    size_t n = json_array_size(v);
    if (n > MAX_LIST)
        return perr(ERR_PARSE, msg, cap, path, "%s: more than %d entries in the value", type, MAX_LIST);
    if (!(p->items = calloc(n ? n : 1, sizeof *p->items)))
        return perr(ERR_NOMEM, msg, cap, path, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const json_t *it = json_array_get(v, i);
        if (!json_is_string(it) && !json_is_number(it))
            return perr(ERR_PARSE, msg, cap, path, "%s: entry %zu of the value is not a string or a number", type, i + 1);
        err_code e = val_from_json(&p->items[i], it, false, path, msg, cap);
        if (e)
            return e;
        p->nitems++;
    }
    return ERR_OK;
}

static err_code prep_word_count(apriv *p, const json_t *v, const char *path, char *msg, size_t cap)
{
    if (json_is_number(v)) {
        p->wc_n = json_number_value(v);
        return ERR_OK;
    }
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        if (has_template(s, json_string_length(v))) {
            p->wc_template = true;
            return val_make(&p->v, s, json_string_length(v), path, msg, cap);
        }
        char *end;
        sv t = at_trim((sv){ s, json_string_length(v) });
        double d = t.len ? strtod(t.p, &end) : 0;
        if (t.len && end == t.p + t.len && isfinite(d)) {
            p->wc_n = d;
            return ERR_OK;
        }
    } else if (json_is_object(v)) {
        const json_t *mn = json_object_get(v, "min"), *mx = json_object_get(v, "max");
        if ((mn && !json_is_number(mn)) || (mx && !json_is_number(mx)) || (!mn && !mx))
            return perr(ERR_PARSE, msg, cap, path, "word-count: the value object needs a numeric min and/or max");
        p->wc_range = true;
        p->wc_has_min = mn != NULL;
        p->wc_has_max = mx != NULL;
        p->wc_min = mn ? json_number_value(mn) : 0;
        p->wc_max = mx ? json_number_value(mx) : 0;
        if (mn && mx && p->wc_min > p->wc_max)
            return perr(ERR_PARSE, msg, cap, path, "word-count: min (%g) must not be more than max (%g)", p->wc_min,
                        p->wc_max);
        return ERR_OK;
    }
    return perr(ERR_PARSE, msg, cap, path, "word-count needs a number or {min, max}");
}

/* A schema value: an object or boolean, or a JSON/YAML text of one. */
static err_code prep_schema(apriv *p, const json_t *v, const char *type, const char *path, char *msg, size_t cap)
{
    json_t *owned = NULL;
    if (!v || json_is_null(v) || (json_is_string(v) && json_string_length(v) == 0))
        return ERR_OK; /* no schema: only the syntax is checked */
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        size_t n = json_string_length(v);
        if (strncmp(s, "file://", 7) == 0)
            return perr(ERR_UNSUPPORTED, msg, cap, path, "%s: file:// schemas are not supported; put the schema inline",
                        type);
        if (has_template(s, n))
            return perr(ERR_UNSUPPORTED, msg, cap, path, "%s: a templated schema is not supported", type);
        yjson_error ye;
        yjson_doc *d = yjson_parse_string(s, n, NULL, &ye);
        if (!d)
            return perr(ERR_PARSE, msg, cap, path, "%s: the schema text does not parse (line %d: %s)", type, ye.line,
                        ye.msg);
        owned = json_incref(yjson_root(d));
        yjson_free(d);
        v = owned;
    }
    if (!json_is_object(v) && !json_is_boolean(v)) {
        json_decref(owned);
        return perr(ERR_PARSE, msg, cap, path, "%s: the value must be a JSON Schema (an object)", type);
    }
    char m[400];
    err_code e = jschema_compile(v, &p->schema, m, sizeof m);
    json_decref(owned);
    if (e)
        return perr(e, msg, cap, path, "%s: %s", type, m);
    return ERR_OK;
}

/* The function tools of an OpenAI `tools` list, their parameters compiled. */
static err_code tools_compile(const json_t *tools, tool **out, size_t *n, char *m, size_t mcap)
{
    *out = NULL;
    *n = 0;
    if (!json_is_array(tools)) {
        snprintf(m, mcap, "tools must be a list of {type: function, function: {name, parameters}}");
        return ERR_PARSE;
    }
    size_t cnt = json_array_size(tools);
    tool *t = calloc(cnt ? cnt : 1, sizeof *t);
    if (!t) {
        snprintf(m, mcap, "out of memory");
        return ERR_NOMEM;
    }
    for (size_t i = 0; i < cnt; i++) {
        const json_t *tl = json_array_get(tools, i);
        const json_t *fn = json_object_get(tl, "function");
        if (!fn)
            fn = tl; /* a bare function definition */
        const json_t *name = json_object_get(fn, "name"), *params = json_object_get(fn, "parameters");
        err_code e = ERR_OK;
        char sm[300];
        if (!json_is_string(name)) {
            snprintf(m, mcap, "tool %zu has no function name", i + 1);
            e = ERR_PARSE;
        } else if (!(t[*n].name = strdup(json_string_value(name)))) {
            snprintf(m, mcap, "out of memory");
            e = ERR_NOMEM;
        } else {
            (*n)++;
            if (params && (e = jschema_compile(params, &t[*n - 1].params, sm, sizeof sm)) != ERR_OK)
                snprintf(m, mcap, "tool '%s': %s", json_string_value(name), sm);
        }
        if (e) {
            for (size_t k = 0; k < *n; k++) {
                free(t[k].name);
                jschema_free(t[k].params);
            }
            free(t);
            *n = 0;
            return e;
        }
    }
    *out = t;
    return ERR_OK;
}

static void tools_free(tool *t, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(t[i].name);
        jschema_free(t[i].params);
    }
    free(t);
}

static err_code parse_node(ev_assert *a, apriv *p, const json_t *spec, const char *path, bool in_set, char *msg,
                           size_t cap);

static err_code prep_set(ev_assert *a, apriv *p, const json_t *list, const char *path, bool in_set, char *msg,
                         size_t cap)
{
    if (in_set)
        return perr(ERR_PARSE, msg, cap, path, "an assert-set cannot contain another assert-set");
    if (!json_is_array(list) || json_array_size(list) == 0)
        return perr(ERR_PARSE, msg, cap, path, "assert-set needs `assert`, a non-empty list of assertions");
    size_t n = json_array_size(list);
    if (n > MAX_LIST)
        return perr(ERR_PARSE, msg, cap, path, "assert-set: more than %d assertions", MAX_LIST);
    a->children = calloc(n, sizeof *a->children);
    p->kids = calloc(n, sizeof *p->kids);
    if (!a->children || !p->kids)
        return perr(ERR_NOMEM, msg, cap, path, "out of memory");
    for (size_t i = 0; i < n; i++) {
        char cpath[256];
        snprintf(cpath, sizeof cpath, "%s.assert[%zu]", path, i);
        a->nchildren++; /* counted first so that a failure frees it */
        err_code e = parse_node(&a->children[i], &p->kids[i], json_array_get(list, i), cpath, true, msg, cap);
        if (e)
            return e;
    }
    return ERR_OK;
}

/* What each type needs of its value and options. */
static err_code prepare(ev_assert *a, apriv *p, const json_t *spec, const char *path, bool in_set, char *msg,
                        size_t cap)
{
    const json_t *v = a->value;
    const char *t = a->type;
    err_code e = ERR_OK;
    if (json_is_string(v) && strncmp(json_string_value(v), "file://", 7) == 0 && p->kind != K_GRADED)
        return perr(ERR_UNSUPPORTED, msg, cap, path, "%s: file:// values are not supported; put the value inline", t);
    switch (p->kind) {
    case K_EQUALS:
        if (!v)
            return perr(ERR_PARSE, msg, cap, path, "equals needs a value");
        if (json_is_object(v) || json_is_array(v)) {
            p->json_value = true;
            return ERR_OK;
        }
        return val_from_json(&p->v, v, true, path, msg, cap);
    case K_CONTAINS:
    case K_ICONTAINS:
        if (json_is_number(v))
            return val_from_json(&p->v, v, false, path, msg, cap);
        return need_string(p, v, t, path, msg, cap);
    case K_STARTS_WITH:
    case K_FINISH_REASON:
    case K_LEVENSHTEIN:
    case K_ROUGE_L:
    case K_TOKEN_F1:
        return need_string(p, v, t, path, msg, cap);
    case K_ROUGE_N: {
        const json_t *n = a->config ? json_object_get(a->config, "n") : NULL;
        p->ngram = 1;
        if (n) {
            if (!json_is_integer(n) || json_integer_value(n) < 1 || json_integer_value(n) > 4)
                return perr(ERR_PARSE, msg, cap, path, "rouge-n: n must be an integer from 1 to 4");
            p->ngram = (int)json_integer_value(n);
        }
        return need_string(p, v, t, path, msg, cap);
    }
    case K_BLEU:
        if (json_is_array(v)) {
            if (json_array_size(v) == 0 || json_array_size(v) > MAX_REFS)
                return perr(ERR_PARSE, msg, cap, path, "bleu needs 1 to %d reference strings", MAX_REFS);
            for (size_t i = 0; i < json_array_size(v); i++)
                if (!json_is_string(json_array_get(v, i)))
                    return perr(ERR_PARSE, msg, cap, path, "bleu: reference %zu is not a string", i + 1);
            return prep_list(p, v, t, path, msg, cap);
        }
        if (!json_is_string(v))
            return perr(ERR_PARSE, msg, cap, path, "bleu needs a string or a list of strings");
        return val_make(&p->v, json_string_value(v), json_string_length(v), path, msg, cap);
    case K_CONTAINS_ANY:
    case K_CONTAINS_ALL:
    case K_ICONTAINS_ANY:
    case K_ICONTAINS_ALL:
        if (!v)
            return perr(ERR_PARSE, msg, cap, path, "%s needs a value (a list or a comma-separated string)", t);
        return prep_list(p, v, t, path, msg, cap);
    case K_REGEX: {
        if (!json_is_string(v) || json_string_length(v) == 0)
            return perr(ERR_PARSE, msg, cap, path, "regex needs a non-empty string value");
        const char *s = json_string_value(v);
        size_t n = json_string_length(v);
        if (has_template(s, n))
            return val_make(&p->v, s, n, path, msg, cap); /* compiled at check time */
        char m[300];
        if (!(p->re = at_regex_compile(s, n, m, sizeof m)))
            return perr(ERR_PARSE, msg, cap, path, "regex does not compile: %s", m);
        return val_make(&p->v, s, n, path, msg, cap);
    }
    case K_WORD_COUNT:
        if (!v)
            return perr(ERR_PARSE, msg, cap, path, "word-count needs a value (a number or {min, max})");
        return prep_word_count(p, v, path, msg, cap);
    case K_IS_JSON:
    case K_CONTAINS_JSON:
        return prep_schema(p, v, t, path, msg, cap);
    case K_TOOLS_CALL: {
        const json_t *tools = a->config ? json_object_get(a->config, "tools") : NULL;
        if (tools) {
            char m[400];
            if ((e = tools_compile(tools, &p->tools, &p->ntools, m, sizeof m)) != ERR_OK)
                return perr(e, msg, cap, path, "is-valid-openai-tools-call: %s", m);
            p->has_tools = true;
        }
        return ERR_OK;
    }
    case K_LATENCY:
    case K_COST:
        if (isnan(a->threshold)) {
            if (a->negate)
                return perr(ERR_PARSE, msg, cap, path, "not-%s needs a threshold", t);
            if (!a->metric)
                return perr(ERR_PARSE, msg, cap, path,
                            "%s needs a threshold (or a metric, to record the value without a limit)", t);
            p->raw_metric = true;
        }
        return ERR_OK;
    case K_SET:
        if (a->negate)
            return perr(ERR_PARSE, msg, cap, path, "'not-assert-set' is not a type (negate the assertions inside it)");
        return prep_set(a, p, json_object_get(spec, "assert"), path, in_set, msg, cap);
    case K_GRADED:
        return ERR_OK;
    }
    return ERR_OK;
}

/* ---- parsing ---------------------------------------------------------------------- */

/* Sets `key` of the node's config (made on demand) to a new reference of v. */
static bool config_set(ev_assert *a, const char *key, const json_t *v)
{
    if (!a->config && !(a->config = json_object()))
        return false;
    return json_object_set(a->config, key, (json_t *)v) == 0;
}

static err_code parse_node(ev_assert *a, apriv *p, const json_t *spec, const char *path, bool in_set, char *msg,
                           size_t cap)
{
    p->self = a;
    a->weight = 1;
    a->threshold = NAN;
    if (!(a->path = strdup(path ? path : "assertion")))
        return perr(ERR_NOMEM, msg, cap, path, "out of memory");
    if (!json_is_object(spec))
        return perr(ERR_PARSE, msg, cap, path, "an assertion must be an object with a `type`");
    const json_t *type = json_object_get(spec, "type");
    if (!type)
        return perr(ERR_PARSE, msg, cap, path, "the assertion has no `type`");
    if (!json_is_string(type) || json_string_length(type) == 0 ||
        strlen(json_string_value(type)) != json_string_length(type))
        return perr(ERR_PARSE, msg, cap, path, "`type` must be a non-empty string");
    const char *name = json_string_value(type);
    if (strncmp(name, "not-", 4) == 0) {
        a->negate = true;
        name += 4;
    }
    const struct tinfo *ti = find_type(name);
    if (!ti) {
        if (is_unimplemented(name))
            return perr(ERR_UNSUPPORTED, msg, cap, path, "assertion type '%s' is not implemented",
                        json_string_value(type));
        return perr(ERR_UNSUPPORTED, msg, cap, path, "unknown assertion type '%s'", json_string_value(type));
    }
    p->kind = ti->kind;
    if (!(a->type = type_alloc(name, strlen(name), p)))
        return perr(ERR_NOMEM, msg, cap, path, "out of memory");

    const char *k;
    json_t *v;
    json_object_foreach((json_t *)spec, k, v) {
        if (strcmp(k, "type") == 0 || strcmp(k, "assert") == 0) {
            if (strcmp(k, "assert") == 0 && p->kind != K_SET)
                return perr(ERR_PARSE, msg, cap, path, "`assert` belongs to an assert-set, not to '%s'", name);
        } else if (strcmp(k, "value") == 0) {
            if (!json_is_null(v))
                a->value = json_incref(v);
        } else if (strcmp(k, "threshold") == 0) {
            if (!json_is_null(v) && !json_is_number(v))
                return perr(ERR_PARSE, msg, cap, path, "threshold must be a number");
            if (json_is_number(v))
                a->threshold = json_number_value(v);
        } else if (strcmp(k, "weight") == 0) {
            if (!json_is_null(v) && (!json_is_number(v) || json_number_value(v) < 0))
                return perr(ERR_PARSE, msg, cap, path, "weight must be a number >= 0");
            if (json_is_number(v))
                a->weight = json_number_value(v);
        } else if (strcmp(k, "metric") == 0) {
            if (!json_is_string(v))
                return perr(ERR_PARSE, msg, cap, path, "metric must be a string");
            if (json_string_length(v) && !(a->metric = strdup(json_string_value(v))))
                return perr(ERR_NOMEM, msg, cap, path, "out of memory");
        } else if (strcmp(k, "provider") == 0) {
            const json_t *id = json_is_object(v) ? json_object_get(v, "id") : v;
            if (!json_is_string(id))
                return perr(ERR_PARSE, msg, cap, path, "provider must be a provider id or an object with an `id`");
            if (!(a->provider = strdup(json_string_value(id))) || (json_is_object(v) && !config_set(a, "provider", v)))
                return perr(ERR_NOMEM, msg, cap, path, "out of memory");
        } else if (strcmp(k, "config") == 0) {
            if (json_is_null(v))
                continue;
            if (!json_is_object(v))
                return perr(ERR_PARSE, msg, cap, path, "config must be an object");
            const char *ck;
            json_t *cv;
            json_object_foreach(v, ck, cv) {
                if (!(a->config && json_object_get(a->config, ck)) && !config_set(a, ck, cv))
                    return perr(ERR_NOMEM, msg, cap, path, "out of memory");
            }
        } else if (strcmp(k, "transform") == 0 || strcmp(k, "contextTransform") == 0) {
            return perr(ERR_UNSUPPORTED, msg, cap, path, "`%s` (a JavaScript expression) is not implemented", k);
        } else if (strcmp(k, "normalizeUnicode") == 0 && !json_is_false(v)) {
            return perr(ERR_UNSUPPORTED, msg, cap, path, "`normalizeUnicode` is not implemented");
        } else if (!config_set(a, k, v)) { /* the type's own options (rubricPrompt, n, tools...) */
            return perr(ERR_NOMEM, msg, cap, path, "out of memory");
        }
    }
    if (!isfinite(a->weight))
        return perr(ERR_PARSE, msg, cap, path, "weight must be a finite number");
    return prepare(a, p, spec, path, in_set, msg, cap);
}

static void free_node(ev_assert *a, apriv *p)
{
    for (size_t i = 0; i < a->nchildren; i++)
        free_node(&a->children[i], p ? &p->kids[i] : NULL);
    free(a->children);
    if (p) {
        val_free(&p->v);
        for (size_t i = 0; i < p->nitems; i++)
            val_free(&p->items[i]);
        free(p->items);
        pcre2_code_free(p->re);
        jschema_free(p->schema);
        tools_free(p->tools, p->ntools);
        free(p->kids);
    }
    type_free(a->type);
    json_decref(a->value);
    json_decref(a->config);
    free(a->metric);
    free(a->provider);
    free(a->path);
}

err_code ev_assert_parse(const json_t *spec, const char *path, ev_assert **out, char *msg, size_t msgcap)
{
    if (msg && msgcap)
        msg[0] = '\0';
    *out = NULL;
    anode *n = calloc(1, sizeof *n);
    if (!n)
        return perr(ERR_NOMEM, msg, msgcap, path, "out of memory");
    err_code e = parse_node(&n->a, &n->p, spec, path, false, msg, msgcap);
    if (e) {
        free_node(&n->a, &n->p);
        free(n);
        return e;
    }
    *out = &n->a;
    return ERR_OK;
}

void ev_assert_free(ev_assert *a)
{
    if (!a)
        return;
    anode *n = (anode *)a; /* the top-level node is the first member */
    free_node(&n->a, &n->p);
    free(n);
}

bool ev_assert_is_graded(const ev_assert *a)
{
    const apriv *p = priv(a);
    if (!p)
        return false;
    if (p->kind == K_GRADED)
        return true;
    for (size_t i = 0; i < a->nchildren; i++)
        if (ev_assert_is_graded(&a->children[i]))
            return true;
    return false;
}

/* ---- checks: strings ------------------------------------------------------------------- */

typedef struct chk {
    const ev_assert *a;
    const apriv *p;
    const ev_output *o;
    sv text;            /* the answer */
    bool neg;
    ev_result *r;
    char err[400];
} chk;

static const char *not_(const chk *c) { return c->neg ? "not " : ""; }

/* The value rendered; false (and an error verdict) when it cannot be. */
static bool value_text(chk *c, const val *v, int slot, sv *out)
{
    if (val_text(v, c->o, at_buf(slot), out, c->err, sizeof c->err)) {
        fail_error(c->r, "%s", c->err);
        return false;
    }
    return true;
}

static void check_equals(chk *c)
{
    if (c->p->json_value) {
        json_error_t je;
        json_t *got = json_loadb(c->text.p, c->text.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
        bool eq = got && jschema_equal(c->a->value, got);
        json_decref(got);
        if (!decide(c->r, eq, c->neg)) {
            char *want = json_dumps(c->a->value, JSON_COMPACT | JSON_ENCODE_ANY);
            sv w = sv_from(want ? want : "");
            say(c->r, "Expected output \"%.*s%s\" to %sequal %.*s%s", SVS(c->text), not_(c), SVS(w));
            free(want);
        }
        return;
    }
    sv want;
    if (!value_text(c, &c->p->v, AT_B_RENDER, &want))
        return;
    if (!decide(c->r, sv_eq(c->text, want), c->neg))
        say(c->r, "Expected output \"%.*s%s\" to %sequal \"%.*s%s\"", SVS(c->text), not_(c), SVS(want));
}

/* Lower-cases s into slot; false (and an error) when it cannot. */
static bool lowered(chk *c, sv s, int slot, sv *out)
{
    buf *b = at_buf(slot);
    if (at_lower(s, b)) {
        fail_error(c->r, "text too long to compare case-insensitively");
        return false;
    }
    *out = buf_sv(b);
    return true;
}

static bool has(sv hay, sv needle)
{
    return needle.len == 0 || (hay.len >= needle.len && memmem(hay.p, hay.len, needle.p, needle.len) != NULL);
}

static void check_contains(chk *c, bool icase)
{
    sv want, hay = c->text;
    if (!value_text(c, &c->p->v, AT_B_RENDER, &want))
        return;
    if (want.len == 0) {
        fail_error(c->r, "%s needs a non-empty value (the template rendered to nothing)", c->a->type);
        return;
    }
    sv w = want;
    if (icase && (!lowered(c, hay, AT_B_LOWER_TEXT, &hay) || !lowered(c, want, AT_B_LOWER_VAL, &w)))
        return;
    if (!decide(c->r, has(hay, w), c->neg))
        say(c->r, "Expected output to %scontain \"%.*s%s\"", not_(c), SVS(want));
}

static void check_starts_with(chk *c)
{
    sv want;
    if (!value_text(c, &c->p->v, AT_B_RENDER, &want))
        return;
    if (want.len == 0) {
        fail_error(c->r, "starts-with needs a non-empty value (the template rendered to nothing)");
        return;
    }
    if (!decide(c->r, sv_starts(c->text, want), c->neg))
        say(c->r, "Expected output to %sstart with \"%.*s%s\"", not_(c), SVS(want));
}

/* Iterates the entries of a list value: the parsed items, or the fields of
 * the rendered comma list. */
typedef struct liter {
    chk *c;
    size_t i, pos;
    sv rendered;
} liter;

/* 1 with the next entry, 0 at the end, -1 after an error verdict. */
static int list_next(liter *it, sv *out)
{
    chk *c = it->c;
    if (!c->p->split_rendered) {
        if (it->i >= c->p->nitems)
            return 0;
        return value_text(c, &c->p->items[it->i++], AT_B_ITEM, out) ? 1 : -1;
    }
    if (it->i++ == 0 && !value_text(c, &c->p->v, AT_B_RENDER, &it->rendered))
        return -1;
    int r = csv_next(it->rendered, &it->pos, at_buf(AT_B_ITEM), out);
    if (r < 0)
        fail_error(c->r, "%s: the rendered value has an unterminated or misplaced quote", c->a->type);
    return r;
}

/* Appends "a, b, c" of the list (or of the missing entries) to b. */
static void list_join(chk *c, sv hay, bool icase, bool missing_only, buf *b)
{
    liter it = { .c = c };
    sv e, w;
    size_t n = 0;
    ev_result scratch_r = { 0 };
    ev_result *keep = c->r;
    c->r = &scratch_r; /* an error here only shortens the reason */
    while (b->len < 1024 && list_next(&it, &e) == 1) {
        if (missing_only) {
            if (icase) {
                buf *lb = at_buf(AT_B_LOWER_VAL);
                if (at_lower(e, lb))
                    break;
                w = buf_sv(lb);
            } else {
                w = e;
            }
            if (has(hay, w))
                continue;
        }
        buf_printf(b, "%s%.*s", n++ ? ", " : "", (int)(e.len > SHOW ? SHOW : e.len), e.p);
    }
    free(scratch_r.reason);
    c->r = keep;
}

static void check_list(chk *c, bool all, bool icase)
{
    sv hay = c->text, e, w;
    if (icase && !lowered(c, hay, AT_B_LOWER_TEXT, &hay))
        return;
    liter it = { .c = c };
    bool any = false, missing = false;
    int r;
    while ((r = list_next(&it, &e)) == 1) {
        w = e;
        if (icase && !lowered(c, e, AT_B_LOWER_VAL, &w))
            return;
        if (has(hay, w)) {
            any = true;
            if (!all)
                break;
        } else {
            missing = true;
            if (all)
                break;
        }
    }
    if (r < 0)
        return;
    bool cond = all ? !missing : any;
    if (decide(c->r, cond, c->neg))
        return;
    buf *b = at_buf(AT_B_REASON);
    list_join(c, hay, icase, false, b);
    if (all && !c->neg) {
        size_t at = b->len;
        list_join(c, hay, icase, true, b);
        say(c->r, "Expected output to contain all of [%.*s]. Missing: [%s]", (int)at, b->p, b->p + at);
    } else {
        say(c->r, "Expected output to %scontain %s \"%s\"", not_(c), all ? "all of" : "one of", b->p);
    }
}

static void check_regex(chk *c)
{
    const pcre2_code *re = c->p->re;
    pcre2_code *made = NULL;
    sv pat = { c->p->v.s, c->p->v.len };
    if (!re) {
        if (!value_text(c, &c->p->v, AT_B_RENDER, &pat))
            return;
        if (!(re = made = at_regex_compile(pat.p, pat.len, c->err, sizeof c->err))) {
            fail_error(c->r, "%s: the rendered regex does not compile: %s", c->a->path, c->err);
            return;
        }
    }
    int m = at_regex_search(re, c->text.p, c->text.len, c->err, sizeof c->err);
    pcre2_code_free(made);
    if (m < 0) {
        fail_error(c->r, "%s", c->err);
        return;
    }
    if (!decide(c->r, m == 1, c->neg))
        say(c->r, "Expected output to %smatch regex \"%.*s%s\"", not_(c), SVS(pat));
}

static void check_word_count(chk *c)
{
    const apriv *p = c->p;
    double n = p->wc_n;
    size_t words = at_word_count(c->text);
    if (p->wc_template) {
        sv s;
        if (!value_text(c, &p->v, AT_B_RENDER, &s))
            return;
        s = at_trim(s);
        char *end;
        n = s.len ? strtod(s.p, &end) : NAN;
        if (!s.len || end != s.p + s.len || !isfinite(n)) {
            fail_error(c->r, "word-count: the value \"%.*s%s\" is not a number", SVS(s));
            return;
        }
    }
    double w = (double)words;
    if (!p->wc_range) {
        if (!decide(c->r, w == n, c->neg))
            say(c->r, c->neg ? "Expected word count to not equal %g, but got %zu" : "Word count %2$zu does not equal expected %1$g",
                n, words);
        return;
    }
    bool ok = (!p->wc_has_min || w >= p->wc_min) && (!p->wc_has_max || w <= p->wc_max);
    if (decide(c->r, ok, c->neg))
        return;
    if (p->wc_has_min && p->wc_has_max)
        say(c->r, c->neg ? "Expected word count to not be between %g and %g, but got %zu"
                         : "Word count %3$zu is not between %1$g and %2$g", p->wc_min, p->wc_max, words);
    else if (p->wc_has_max)
        say(c->r, c->neg ? "Expected word count to be greater than %g, but got %zu" : "Word count %2$zu is greater than maximum %1$g",
            p->wc_max, words);
    else
        say(c->r, c->neg ? "Expected word count to be less than %g, but got %zu" : "Word count %2$zu is less than minimum %1$g",
            p->wc_min, words);
}

/* ---- checks: JSON and tool calls ------------------------------------------------------- */

static void check_is_json(chk *c)
{
    if (!c->p->schema) {
        bool ok = jscan_validate(c->text.p, c->text.len, JSCAN_MAX_DEPTH, NULL);
        if (!decide(c->r, ok, c->neg))
            say(c->r, "Expected output to %sbe valid JSON", not_(c));
        return;
    }
    json_error_t je;
    json_t *j = json_loadb(c->text.p, c->text.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    if (!j) {
        if (!decide(c->r, false, c->neg))
            say(c->r, "Expected output to be valid JSON");
        return;
    }
    bool ok = jschema_validate(c->p->schema, j, c->err, sizeof c->err);
    json_decref(j);
    if (!decide(c->r, ok, c->neg)) {
        if (c->neg)
            say(c->r, "Output is JSON that conforms to the provided schema");
        else
            say(c->r, "JSON does not conform to the provided schema. Errors: %s", c->err);
    }
}

/* One past the '}' matching the '{' at s[i] (strings and escapes skipped),
 * or 0 when there is none; each byte looked at costs one of *budget. */
static size_t brace_end(sv s, size_t i, size_t *budget)
{
    int depth = 0;
    bool instr = false, esc = false;
    for (size_t j = i; j < s.len; j++) {
        if (*budget == 0)
            return 0;
        (*budget)--;
        char ch = s.p[j];
        if (instr) {
            if (esc)
                esc = false;
            else if (ch == '\\')
                esc = true;
            else if (ch == '"')
                instr = false;
        } else if (ch == '"') {
            instr = true;
        } else if (ch == '{' || ch == '[') {
            if (++depth > JSCAN_MAX_DEPTH)
                return 0;
        } else if (ch == '}' || ch == ']') {
            if (--depth == 0)
                return ch == '}' ? j + 1 : 0;
        }
    }
    return 0;
}

/* contains-json: promptfoo looks for JSON objects in the text (each '{'
 * that starts one; after a find, the search goes on behind it) and passes
 * when one exists or, with a schema, when one of them validates. Scanning
 * and parsing share a budget of 32 MiB of bytes looked at, so a hostile
 * answer (thousands of nested, never-valid candidates) costs linear time;
 * past it the search stops. */
static void check_contains_json(chk *c)
{
    sv s = c->text;
    size_t budget = 32u << 20, found = 0;
    bool valid = false;
    for (size_t i = 0; i < s.len && !valid; i++) {
        const char *q = memchr(s.p + i, '{', s.len - i);
        if (!q)
            break;
        i = (size_t)(q - s.p);
        size_t end = brace_end(s, i, &budget);
        if (!end)
            continue;
        if (budget < end - i)
            break; /* parsing costs its length too: nested candidates stay linear */
        budget -= end - i;
        if (!c->p->schema) {
            if (jscan_validate(s.p + i, end - i, JSCAN_MAX_DEPTH, NULL)) {
                found++;
                valid = true;
            }
            continue;
        }
        json_error_t je;
        json_t *j = json_loadb(s.p + i, end - i, JSON_ALLOW_NUL, &je);
        if (!j)
            continue;
        found++;
        valid = jschema_validate(c->p->schema, j, c->err, sizeof c->err);
        json_decref(j);
        i = end - 1;
    }
    if (decide(c->r, valid, c->neg))
        return;
    if (c->neg)
        say(c->r, c->p->schema ? "Output contains JSON conforming to the provided schema"
                               : "Expected output to not contain valid JSON");
    else if (found && c->p->schema)
        say(c->r, "JSON does not conform to the provided schema. Errors: %s", c->err);
    else
        say(c->r, "Expected output to contain valid JSON");
}

/* The answer's tool calls: o->tool_calls, the response's first choice, or
 * the text itself when it is a JSON list of calls (or {tool_calls: [...]}). */
static const json_t *tool_calls_of(const chk *c, json_t **owned)
{
    const ev_output *o = c->o;
    *owned = NULL;
    if (json_is_array(o->tool_calls))
        return o->tool_calls;
    const json_t *msg = json_object_get(json_array_get(json_object_get(o->response, "choices"), 0), "message");
    const json_t *tc = json_object_get(msg, "tool_calls");
    if (json_is_array(tc))
        return tc;
    json_error_t je;
    json_t *j = c->text.len ? json_loadb(c->text.p, c->text.len, JSON_DECODE_ANY, &je) : NULL;
    tc = json_is_object(j) ? json_object_get(j, "tool_calls") : j;
    if (json_is_array(tc)) {
        *owned = j;
        return tc;
    }
    json_decref(j);
    return NULL;
}

static void check_tools_call(chk *c)
{
    json_t *owned, *vt_owned = NULL;
    const json_t *calls = tool_calls_of(c, &owned);
    const tool *tools = c->p->tools;
    size_t ntools = c->p->ntools;
    tool *made = NULL;
    bool have_tools = c->p->has_tools;
    const json_t *first = json_array_get(calls, 0), *fn = json_object_get(first, "function");
    if (!calls || json_array_size(calls) == 0 || !json_is_string(json_object_get(fn, "name")) ||
        !json_is_string(json_object_get(fn, "arguments"))) {
        char *d = calls ? json_dumps(calls, JSON_COMPACT) : NULL;
        sv ds = sv_from(d ? d : c->text.p);
        if (!decide(c->r, false, c->neg))
            say(c->r, "OpenAI did not return a valid-looking tools response: %.*s%s", SVS(ds));
        free(d);
        json_decref(owned);
        return;
    }
    if (!have_tools && (c->o->tools || json_is_object(c->o->vars))) {
        /* the provider's tools, else the test's vars.tools */
        const json_t *vt = c->o->tools ? c->o->tools : json_object_get(c->o->vars, "tools");
        if (json_is_string(vt)) {
            json_error_t je;
            if (!(vt = vt_owned = json_loads(json_string_value(vt), 0, &je))) {
                fail_error(c->r, "is-valid-openai-tools-call: vars.tools is not JSON: %s", je.text);
                json_decref(owned);
                return;
            }
        }
        if (vt) {
            if (tools_compile(vt, &made, &ntools, c->err, sizeof c->err)) {
                fail_error(c->r, "is-valid-openai-tools-call: vars.tools: %s", c->err);
                json_decref(owned);
                json_decref(vt_owned);
                return;
            }
            tools = made;
            have_tools = true;
        }
    }
    bool ok = true;
    char why[600] = "";
    size_t i;
    const json_t *call;
    json_array_foreach(calls, i, call) {
        const json_t *f = json_object_get(call, "function");
        const json_t *name = json_object_get(f, "name"), *args = json_object_get(f, "arguments");
        if (!json_is_string(name) || !json_is_string(args)) {
            snprintf(why, sizeof why, "tool call %zu has no function name and arguments", i + 1);
            ok = false;
            break;
        }
        const tool *t = NULL;
        for (size_t k = 0; have_tools && k < ntools; k++)
            if (strcmp(tools[k].name, json_string_value(name)) == 0)
                t = &tools[k];
        if (have_tools && !t) {
            snprintf(why, sizeof why, "Called \"%s\", but there is no function with that name", json_string_value(name));
            ok = false;
            break;
        }
        json_error_t je;
        json_t *a = json_loadb(json_string_value(args), json_string_length(args), 0, &je);
        if (!a) {
            snprintf(why, sizeof why, "Call to \"%s\" has arguments that are not valid JSON: %s", json_string_value(name),
                     je.text);
            ok = false;
            break;
        }
        bool v = !t || !t->params || jschema_validate(t->params, a, c->err, sizeof c->err);
        json_decref(a);
        if (!v) {
            snprintf(why, sizeof why, "Call to \"%s\" does not match the function's schema: %s", json_string_value(name),
                     c->err);
            ok = false;
            break;
        }
    }
    if (!decide(c->r, ok, c->neg))
        say(c->r, "%s", c->neg ? "Expected the tool calls to not all be valid" : why);
    tools_free(made, made ? ntools : 0);
    json_decref(owned);
    json_decref(vt_owned);
}

/* ---- checks: provider metadata and metrics ---------------------------------------------- */

static void check_finish_reason(chk *c)
{
    sv want;
    if (!value_text(c, &c->p->v, AT_B_RENDER, &want))
        return;
    if (!c->o->finish_reason) {
        /* promptfoo fails this whether or not the type is negated */
        c->r->verdict = EV_FAIL;
        c->r->score = 0;
        say(c->r, "Provider did not supply stop/finish reason");
        return;
    }
    sv got = sv_from(c->o->finish_reason);
    if (!decide(c->r, sv_ieq(got, want), c->neg))
        say(c->r, "Expected finish reason %s\"%.*s%s\" but got \"%.*s%s\"", c->neg ? "other than " : "", SVS(want),
            SVS(got));
}

/* latency and cost: value <= threshold, or the raw value as a metric. */
static void check_limit(chk *c, double v, bool latency)
{
    const char *what = latency ? "Latency" : "Cost", *unit = latency ? "ms" : "";
    if (isnan(v) || (!latency && v < 0) || !isfinite(v)) {
        fail_error(c->r, latency ? "latency unknown (cached answer)" : "cost unknown (the provider reported none)");
        return;
    }
    if (c->p->raw_metric) {
        c->r->verdict = EV_PASS;
        c->r->score = v;
        return;
    }
    double th = c->a->threshold;
    if (!decide(c->r, v <= th, c->neg))
        say(c->r, "%s %g%s is %s threshold %g%s", what, v, unit, c->neg ? "less than or equal to" : "greater than", th,
            unit);
}

static bool bounded(chk *c, sv s, const char *what)
{
    if (s.len <= EV_ASSERT_MAX_TEXT)
        return true;
    fail_error(c->r, "%s: the %s is longer than %d bytes", c->a->type, what, EV_ASSERT_MAX_TEXT);
    return false;
}

static void check_levenshtein(chk *c)
{
    sv want;
    if (!value_text(c, &c->p->v, AT_B_RENDER, &want) || !bounded(c, c->text, "output") || !bounded(c, want, "value"))
        return;
    double th = isnan(c->a->threshold) ? 5 : c->a->threshold;
    /* Short texts get the exact distance for the reason; long ones stop
     * once the distance is known to be over the threshold. */
    size_t limit = SIZE_MAX;
    if ((double)c->text.len * (double)want.len > 4e6)
        limit = th < 0 ? 0 : th > 1e9 ? SIZE_MAX : (size_t)floor(th);
    size_t d;
    if (at_levenshtein(c->text, want, EV_ASSERT_MAX_TEXT, limit, &d, c->err, sizeof c->err)) {
        fail_error(c->r, "levenshtein: %s", c->err);
        return;
    }
    if (decide(c->r, (double)d <= th, c->neg))
        return;
    if (c->neg)
        say(c->r, "Levenshtein distance %zu is within threshold %g", d, th);
    else if (limit != SIZE_MAX && d > limit)
        say(c->r, "Levenshtein distance is more than threshold %g", th);
    else
        say(c->r, "Levenshtein distance %zu is greater than threshold %g", d, th);
}

/* rouge-n, rouge-l, token-f1, bleu: a 0..1 score against a threshold. */
static void check_metric(chk *c)
{
    const apriv *p = c->p;
    double s = 0, th = c->a->threshold;
    const char *name = "";
    sv want;
    int rc;
    if (!bounded(c, c->text, "output"))
        return;
    if (p->kind == K_BLEU) {
        sv refs[MAX_REFS];
        size_t off[MAX_REFS], n = p->nitems ? p->nitems : 1;
        buf *all = at_buf(AT_B_RENDER);
        for (size_t i = 0; i < n; i++) {
            const val *v = p->nitems ? &p->items[i] : &p->v;
            off[i] = SIZE_MAX;
            if (!v->t) {
                refs[i] = (sv){ v->s ? v->s : "", v->len };
            } else {
                if (!value_text(c, v, AT_B_ITEM, &want))
                    return;
                off[i] = all->len;
                refs[i].len = want.len;
                if (buf_append_sv(all, want)) {
                    fail_error(c->r, "bleu: the references are too long");
                    return;
                }
            }
        }
        for (size_t i = 0; i < n; i++) {
            if (off[i] != SIZE_MAX)
                refs[i].p = all->p + off[i];
            if (!bounded(c, refs[i], "reference"))
                return;
        }
        name = "BLEU";
        th = isnan(th) ? 0.5 : th;
        rc = at_bleu(c->text, refs, n, &s, c->err, sizeof c->err);
    } else {
        if (!value_text(c, &p->v, AT_B_RENDER, &want) || !bounded(c, want, "value"))
            return;
        if (p->kind == K_ROUGE_N) {
            name = "ROUGE-N";
            th = isnan(th) ? 0.75 : th;
            rc = at_rouge_n(c->text, want, p->ngram, &s, c->err, sizeof c->err);
        } else if (p->kind == K_ROUGE_L) {
            name = "ROUGE-L";
            th = isnan(th) ? 0.75 : th;
            rc = at_rouge_l(c->text, want, &s, c->err, sizeof c->err);
        } else {
            name = "Token F1";
            th = isnan(th) ? 0.5 : th;
            rc = at_token_f1(c->text, want, &s, c->err, sizeof c->err);
        }
    }
    if (rc || !isfinite(s)) {
        fail_error(c->r, "%s", rc ? c->err : "the score is not a number");
        return;
    }
    bool pass = (s >= th) != c->neg;
    c->r->verdict = pass ? EV_PASS : EV_FAIL;
    c->r->score = c->neg ? 1 - s : s;
    if (!pass)
        say(c->r, "%s score %.4f is %s threshold %g", name, s, c->neg ? "greater than or equal to" : "less than", th);
}

static void check_set(chk *c)
{
    const ev_assert *a = c->a;
    size_t n = a->nchildren;
    ev_result rs_small[16] = { { 0 } }, *rs = n <= 16 ? rs_small : calloc(n, sizeof *rs);
    const ev_assert *as_small[16] = { 0 }, **as = n <= 16 ? as_small : calloc(n, sizeof *as);
    if (!rs || !as) {
        if (rs != rs_small)
            free(rs);
        if (as != as_small)
            free((void *)as);
        fail_error(c->r, "out of memory");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        as[i] = &a->children[i];
        ev_assert_check(&a->children[i], c->o, &rs[i]);
    }
    ev_assert_combine(as, rs, n, a->threshold, c->r);
    for (size_t i = 0; i < n; i++)
        ev_result_clear(&rs[i]);
    if (rs != rs_small)
        free(rs);
    if (as != as_small)
        free((void *)as);
}

/* ---- running and combining ------------------------------------------------------------------ */

void ev_assert_check(const ev_assert *a, const ev_output *o, ev_result *r)
{
    *r = (ev_result){ EV_PASS, 1, NULL };
    const apriv *p = priv(a);
    if (!p || !o) {
        fail_error(r, "the assertion or the answer is missing");
        return;
    }
    const char *text = o->text ? o->text : "";
    chk c; /* not zero-filled: err is only read after being written */
    c.a = a;
    c.p = p;
    c.o = o;
    c.text = (sv){ text, o->len ? o->len : strlen(text) };
    c.neg = a->negate;
    c.r = r;
    c.err[0] = '\0';
    switch (p->kind) {
    case K_EQUALS: check_equals(&c); break;
    case K_CONTAINS: check_contains(&c, false); break;
    case K_ICONTAINS: check_contains(&c, true); break;
    case K_CONTAINS_ANY: check_list(&c, false, false); break;
    case K_CONTAINS_ALL: check_list(&c, true, false); break;
    case K_ICONTAINS_ANY: check_list(&c, false, true); break;
    case K_ICONTAINS_ALL: check_list(&c, true, true); break;
    case K_STARTS_WITH: check_starts_with(&c); break;
    case K_REGEX: check_regex(&c); break;
    case K_WORD_COUNT: check_word_count(&c); break;
    case K_IS_JSON: check_is_json(&c); break;
    case K_CONTAINS_JSON: check_contains_json(&c); break;
    case K_TOOLS_CALL: check_tools_call(&c); break;
    case K_FINISH_REASON: check_finish_reason(&c); break;
    case K_LATENCY: check_limit(&c, o->latency_ms, true); break;
    case K_COST: check_limit(&c, o->cost_usd, false); break;
    case K_LEVENSHTEIN: check_levenshtein(&c); break;
    case K_ROUGE_N:
    case K_ROUGE_L:
    case K_BLEU:
    case K_TOKEN_F1: check_metric(&c); break;
    case K_SET: check_set(&c); break;
    case K_GRADED:
        fail_error(r, "%s: '%s' is %s and runs through the grader, not ev_assert_check", a->path, a->type,
                   strcmp(a->type, "command") == 0 ? "an external command" : "model-graded");
        break;
    }
    if (r->verdict == EV_FAIL && a->weight == 0)
        r->verdict = EV_PASS; /* promptfoo: a weight-0 assertion cannot fail */
    if (!isfinite(r->score))
        r->score = 0;
    at_scratch_trim(false);
}

void ev_assert_combine(const ev_assert *const *as, const ev_result *rs, size_t n, double threshold, ev_result *out)
{
    double tw = 0, ts = 0;
    const ev_result *err = NULL, *failed = NULL;
    *out = (ev_result){ EV_PASS, 1, NULL };
    for (size_t i = 0; i < n; i++) {
        double w = as && as[i] ? as[i]->weight : 1;
        if (!isfinite(w) || w < 0)
            w = 1;
        double s = isfinite(rs[i].score) ? rs[i].score : 0;
        ts += s * w;
        tw += w;
        if (rs[i].verdict == EV_ERROR) {
            if (!err)
                err = &rs[i];
        } else if (rs[i].verdict == EV_FAIL && w != 0 && !failed) {
            failed = &rs[i];
        }
    }
    if (n == 0)
        return;
    out->score = tw > 0 ? ts / tw : 0;
    if (!isfinite(out->score))
        out->score = 0;
    if (err) {
        out->verdict = EV_ERROR;
        out->reason = strdup(err->reason ? err->reason : "an assertion could not be checked");
        return;
    }
    if (!isnan(threshold)) {
        if (out->score >= threshold)
            return;
        out->verdict = EV_FAIL;
        say(out, "Aggregate score %.2f < %g threshold", out->score, threshold);
        return;
    }
    if (failed) {
        out->verdict = EV_FAIL;
        out->reason = strdup(failed->reason ? failed->reason : "an assertion failed");
    }
}
