/*
 * suite.c - promptfoo-format suites: load once, stream the tests
 * (suite.h for the API, docs/internals/suite.md for what is supported).
 *
 * How it works:
 *  - Pass 1 (ev_suite_load): yjson reads the suite file, building every
 *    top-level key except `tests`, whose events are only watched by a small
 *    counter (count_ev): for an inline list of plain test mappings it
 *    multiplies out the lengths of list-valued vars without building
 *    anything. The known keys are then checked one by one (a wrong type is
 *    an error with file:line:col and the key path) and turned into prompts,
 *    providers, defaultTest and options; other keys go to `extra`. When the
 *    counter cannot be sure (aliases, merge keys, file:// vars, tests in
 *    other files, list vars in defaultTest), the tests are counted by
 *    streaming them once through the iterator below, one at a time.
 *  - Pass 2 (ev_tests_*): an iterator in three layers. The outer layer
 *    walks the suite's `tests` (a yjson stream over the suite FILE for an
 *    inline list; a single reference for `tests: file://...`; one empty
 *    test when there are none). A string entry opens a source: a CSV
 *    reader (RFC 4180 records read a character at a time from the FILE,
 *    rows turned into tests with promptfoo's __expected/__config/__metadata
 *    rules), a JSONL line reader, or a yjson stream over a JSON/YAML file.
 *    The inner layer checks each test entry and loads what it refers to
 *    (vars files); the last layer expands list-valued vars into their
 *    cartesian product (promptfoo's order: the first key varies slowest)
 *    and hands out one new test object per combination, loading file://
 *    var values (one cached file).
 *  Nothing but the current entry is held, so memory does not depend on the
 *  number of tests.
 */
#include <errno.h>
#include <glob.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include "core/buf.h"
#include "core/jscan.h"
#include "core/yjson.h"
#include "eval/suite.h"

#define FILE_MAX (16u << 20)         /* one prompt, vars or defaultTest file */
#define RECORD_MAX (16u << 20)       /* one CSV record or JSONL line */
#define COLUMNS_MAX 4096
#define COMBOS_MAX 1000000           /* tests one entry may expand into */
#define TESTS_MAX ((size_t)100000000)

/* ---- diagnostics ---- */

/* Appends to out[*o..cap), cutting what does not fit. */
static void addf(char *out, size_t cap, size_t *o, const char *fmt, ...) PRINTF_LIKE(4, 5);

static void addf(char *out, size_t cap, size_t *o, const char *fmt, ...)
{
    if (*o + 1 >= cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out + *o, cap - *o, fmt, ap);
    va_end(ap);
    if (n > 0)
        *o = MIN(*o + (size_t)n, cap - 1);
}

const char *ev_diag_format(const ev_diag *d, char *out, size_t cap)
{
    if (!out || cap == 0)
        return "";
    out[0] = '\0';
    if (!d)
        return out;
    size_t o = 0;
    if (d->file[0]) {
        if (d->line > 0 && d->col > 0)
            addf(out, cap, &o, "%s:%d:%d: ", d->file, d->line, d->col);
        else if (d->line > 0)
            addf(out, cap, &o, "%s:%d: ", d->file, d->line);
        else
            addf(out, cap, &o, "%s: ", d->file);
    }
    if (d->path[0])
        addf(out, cap, &o, "%s: ", d->path);
    addf(out, cap, &o, "%s", d->msg[0] ? d->msg : "error");
    return out;
}

static void diag_set(ev_diag *d, const char *file, int line, int col, const char *path, const char *fmt, ...)
    PRINTF_LIKE(6, 7);

static void diag_set(ev_diag *d, const char *file, int line, int col, const char *path, const char *fmt, ...)
{
    if (!d)
        return;
    snprintf(d->file, sizeof d->file, "%s", file ? file : "");
    d->line = line;
    d->col = col;
    snprintf(d->path, sizeof d->path, "%s", path ? path : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->msg, sizeof d->msg, fmt, ap);
    va_end(ap);
}

/* ---- small helpers ---- */

static bool starts(const char *s, const char *prefix) { return s && strncmp(s, prefix, strlen(prefix)) == 0; }

static bool ends(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static const char *ext_of(const char *path)
{
    const char *slash = strrchr(path, '/'), *dot = strrchr(path, '.');
    return dot && (!slash || dot > slash) ? dot : "";
}

static bool has_glob(const char *s) { return strpbrk(s, "*?[{") != NULL; }

/* A JavaScript file, possibly with a function name (x.js:fn), as promptfoo
 * tells them. */
static bool is_js_file(const char *p)
{
    static const char *const exts[] = { ".js", ".cjs", ".mjs", ".ts", ".cts", ".mts", ".jsx", ".tsx", NULL };
    for (size_t i = 0; exts[i]; i++) {
        if (ends(p, exts[i]))
            return true;
        char mid[8];
        snprintf(mid, sizeof mid, "%s:", exts[i]);
        if (strstr(p, mid))
            return true;
    }
    return false;
}

/* A JavaScript or Python file (promptfoo runs those; genaiops does not). */
static bool script_path(const char *p) { return is_js_file(p) || ends(p, ".py") || strstr(p, ".py:") != NULL; }

static const char *type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "a mapping";
    case JSON_ARRAY: return "a list";
    case JSON_STRING: return "text";
    case JSON_INTEGER:
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    default: return "null";
    }
}

/* dir/rel, or rel when it is absolute (or dir is empty). */
static bool join_path(const char *dir, const char *rel, char *out, size_t cap)
{
    bool bare = rel[0] == '/' || !dir || !*dir || !strcmp(dir, ".");
    int n = bare ? snprintf(out, cap, "%s", rel) : snprintf(out, cap, "%s/%s", dir, rel);
    return n >= 0 && (size_t)n < cap;
}

/* Reads a whole (small) file: malloc'd, NUL-terminated. NULL with msg. */
static char *slurp(const char *path, size_t max, size_t *len, char *msg, size_t cap)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(msg, cap, "cannot read %s: %s", path, strerror(errno));
        return NULL;
    }
    buf b;
    buf_init(&b, max);
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (buf_append(&b, chunk, n) != ERR_OK) {
            snprintf(msg, cap, "%s is larger than %zu bytes", path, max);
            buf_free(&b);
            fclose(f);
            return NULL;
        }
    }
    bool bad = ferror(f);
    fclose(f);
    if (bad) {
        snprintf(msg, cap, "cannot read %s", path);
        buf_free(&b);
        return NULL;
    }
    if (buf_reserve(&b, 1) != ERR_OK) {
        snprintf(msg, cap, "out of memory");
        buf_free(&b);
        return NULL;
    }
    *len = b.len;
    return buf_steal(&b, len);
}

/* Checks that text is text: no NUL, valid UTF-8. */
static bool is_text(const char *t, size_t n) { return !memchr(t, '\0', n) && jscan_utf8_prefix(t, n) == n; }

static char *xstrdup(const char *s) { return s ? strdup(s) : NULL; }

/* JavaScript's parseFloat: the longest number at the start (after
 * whitespace), NAN when there is none. */
static double js_parse_float(const char *s)
{
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r' || *s == '\f' || *s == '\v')
        s++;
    char tmp[128];
    size_t n = 0, i = 0, digits = 0;
    if (s[i] == '+' || s[i] == '-')
        tmp[n++] = s[i++];
    if (strncmp(s + i, "Infinity", 8) == 0)
        return s[0] == '-' ? -INFINITY : INFINITY;
    while (s[i] >= '0' && s[i] <= '9' && n < 100)
        tmp[n++] = s[i++], digits++;
    if (s[i] == '.' && n < 100) {
        size_t save = n;
        tmp[n++] = s[i++];
        size_t fd = 0;
        while (s[i] >= '0' && s[i] <= '9' && n < 100)
            tmp[n++] = s[i++], fd++;
        digits += fd;
        if (fd == 0 && digits == 0)
            n = save;
    }
    if (digits == 0)
        return NAN;
    if ((s[i] == 'e' || s[i] == 'E') && n < 100) {
        size_t save = n, j = i + 1;
        tmp[n++] = 'e';
        if (s[j] == '+' || s[j] == '-')
            tmp[n++] = s[j++];
        size_t ed = 0;
        while (s[j] >= '0' && s[j] <= '9' && n < 120)
            tmp[n++] = s[j++], ed++;
        if (ed == 0)
            n = save;
    }
    tmp[n] = '\0';
    return strtod(tmp, NULL);
}

/* Trims ASCII whitespace on both sides (in place, returns the start). */
static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' || s[n - 1] == '\r'))
        s[--n] = '\0';
    return s;
}

/* ---- the suite ---- */

enum { T_NONE, T_LIST, T_STRING };

typedef struct suite_priv {
    ev_suite s;              /* first: an ev_suite * is a suite_priv * */
    yjson_backend backend;   /* the reader that parsed the suite file */
    int tests_kind;
    char *tests_ref;         /* T_STRING */
    int tests_line, tests_col;
    json_t *default_vars;    /* borrowed from default_test */
} suite_priv;

static ev_dataset_resolver dataset_resolver;

void ev_suite_set_dataset_resolver(ev_dataset_resolver fn) { dataset_resolver = fn; }

static void prompt_clear(ev_prompt *p)
{
    free(p->id);
    free(p->label);
    free(p->raw);
    free(p->ref);
    memset(p, 0, sizeof *p);
}

void ev_suite_free(ev_suite *s)
{
    if (!s)
        return;
    suite_priv *p = (suite_priv *)s;
    free(s->path);
    free(s->dir);
    free(s->description);
    for (size_t i = 0; i < s->nprompts; i++)
        prompt_clear(&s->prompts[i]);
    free(s->prompts);
    for (size_t i = 0; i < s->nproviders; i++) {
        free(s->providers[i].id);
        free(s->providers[i].label);
        json_decref(s->providers[i].config);
    }
    free(s->providers);
    json_decref(s->default_test);
    json_decref(s->options);
    json_decref(s->genaiops);
    json_decref(s->extra);
    free(p->tests_ref);
    free(p);
}

/* What a load works with. */
typedef struct loader {
    suite_priv *p;
    const yjson_doc *doc;    /* positions of the file being read */
    const char *file;        /* its name for messages (the suite, or a file it names) */
    ev_diag *d;
    err_code err;
} loader;

/* A position in the file being read (0 when unknown). */
typedef struct vpos {
    int line, col;
} vpos;

static vpos member_at(const loader *l, const json_t *obj, const char *key)
{
    vpos p = { 0, 0 };
    yjson_member_pos(l->doc, obj, key, &p.line, &p.col);
    return p;
}

static vpos item_at(const loader *l, const json_t *arr, size_t i)
{
    vpos p = { 0, 0 };
    yjson_item_pos(l->doc, arr, i, &p.line, &p.col);
    return p;
}

static err_code lfail(loader *l, err_code code, vpos at, const char *path, const char *fmt, ...) PRINTF_LIKE(5, 6);

static err_code lfail(loader *l, err_code code, vpos at, const char *path, const char *fmt, ...)
{
    char msg[sizeof l->d->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    diag_set(l->d, l->file, at.line, at.col, path, "%s", msg);
    l->err = code;
    return code;
}

#define NOMEM(l, path) lfail((l), ERR_NOMEM, (vpos){ 0, 0 }, (path), "out of memory")

/* Reads a YAML/JSON file named by the suite (relative to its folder). */
static yjson_doc *load_named(loader *l, const char *rel, vpos at, const char *path, char *full, size_t cap)
{
    char msg[400];
    if (!join_path(l->p->s.dir, rel, full, cap)) {
        lfail(l, ERR_PARSE, at, path, "the path %s is too long", rel);
        return NULL;
    }
    size_t len;
    char *text = slurp(full, FILE_MAX, &len, msg, sizeof msg);
    if (!text) {
        lfail(l, ERR_IO, at, path, "%s", msg);
        return NULL;
    }
    yjson_error ye;
    yjson_doc *doc = yjson_parse_string(text, len, NULL, &ye);
    free(text);
    if (!doc) {
        diag_set(l->d, full, ye.line, ye.col, "", "%s", ye.msg);
        l->err = ERR_PARSE;
    }
    return doc;
}

/* ---- prompts ---- */

typedef struct plist {
    ev_prompt *v;
    size_t n, cap;
} plist;

/* Adds a prompt; takes the strings (freed on failure). */
static bool plist_add(plist *l, char *id, char *label, char *raw, bool chat, char *ref)
{
    if (l->n == l->cap) {
        size_t ncap = l->cap ? l->cap * 2 : 8;
        ev_prompt *nv = realloc(l->v, ncap * sizeof *nv);
        if (!nv)
            goto nomem;
        l->v = nv;
        l->cap = ncap;
    }
    l->v[l->n++] = (ev_prompt){ .id = id, .label = label, .raw = raw, .chat = chat, .ref = ref };
    return true;
nomem:
    free(id);
    free(label);
    free(raw);
    free(ref);
    return false;
}

static char *fmt_dup(const char *fmt, ...) PRINTF_LIKE(1, 2);

static char *fmt_dup(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0)
        s = NULL;
    va_end(ap);
    return s;
}

/* Is text (after leading blanks) a JSON list of chat messages? */
static bool chat_json(const char *text)
{
    while (*text == ' ' || *text == '\t' || *text == '\n' || *text == '\r')
        text++;
    if (*text != '[')
        return false;
    json_t *v = json_loads(text, JSON_DECODE_ANY, NULL);
    bool ok = json_is_array(v) && json_array_size(v) > 0;
    for (size_t i = 0; ok && i < json_array_size(v); i++) {
        const json_t *m = json_array_get(v, i);
        ok = json_is_object(m) && json_is_string(json_object_get(m, "role"));
    }
    json_decref(v);
    return ok;
}

/* A list of {role, content} written in YAML. */
static bool chat_list(const json_t *v)
{
    if (!json_is_array(v) || json_array_size(v) == 0)
        return false;
    for (size_t i = 0; i < json_array_size(v); i++) {
        const json_t *m = json_array_get(v, i);
        if (!json_is_object(m) || !json_is_string(json_object_get(m, "role")))
            return false;
    }
    return true;
}

/* "path: text" with text cut to max bytes (on a character boundary). */
static char *label_cut(const char *path, const char *text, size_t max, bool dots)
{
    size_t n = strlen(text);
    if (n > max) {
        while (max > 0 && ((unsigned char)text[max] & 0xc0) == 0x80)
            max--;
        return fmt_dup("%s: %.*s%s", path, (int)max, text, dots ? "..." : "");
    }
    return fmt_dup("%s: %s%s", path, text, dots ? "..." : "");
}

/* Labels the prompts [before, n) that have none as promptfoo does: the
 * given label (with the text when the file held several), else
 * "path: text". */
static err_code label_rest(loader *l, plist *out, size_t before, const char *shown, const char *label,
                           const char *path)
{
    size_t made = out->n - before;
    for (size_t i = before; i < out->n; i++) {
        ev_prompt *pr = &out->v[i];
        if (pr->label)
            continue;
        pr->label = label ? (made == 1 ? strdup(label) : fmt_dup("%s: %s", label, pr->raw))
                          : fmt_dup("%s: %s", shown, pr->raw);
        if (!pr->label)
            return NOMEM(l, path);
    }
    return ERR_OK;
}

/* The prompts of a text file: separated by lines that are "---". */
static err_code txt_prompts(loader *l, plist *out, const char *shown, const char *text, const char *path)
{
    buf cur;
    buf_init(&cur, FILE_MAX);
    err_code e = ERR_OK;
    const char *p = text;
    for (;;) {
        const char *nl = strchr(p, '\n');
        size_t ll = nl ? (size_t)(nl - p) : strlen(p);
        if (ll && p[ll - 1] == '\r')
            ll--;
        size_t a = 0, b = ll;
        while (a < b && (p[a] == ' ' || p[a] == '\t'))
            a++;
        while (b > a && (p[b - 1] == ' ' || p[b - 1] == '\t'))
            b--;
        bool sep = b - a == 3 && !memcmp(p + a, "---", 3);
        if (!sep) {
            if ((cur.len && buf_append(&cur, "\n", 1)) || buf_append(&cur, p, ll)) {
                e = lfail(l, ERR_TOOBIG, (vpos){ 0, 0 }, path, "%s is too large", shown);
                break;
            }
        }
        if (sep || !nl) {
            char *one = strdup(cur.p ? trim(cur.p) : "");
            buf_reset(&cur);
            if (!one) {
                e = NOMEM(l, path);
                break;
            }
            if (*one) {
                if (!plist_add(out, strdup(shown), NULL, one, chat_json(one), NULL)) {
                    e = NOMEM(l, path);
                    break;
                }
            } else {
                free(one);
            }
        }
        if (!nl)
            break;
        p = nl + 1;
    }
    buf_free(&cur);
    return e;
}

/* The prompts of a CSV file: a `prompt` column (and `label`), or one
 * prompt a line when there is no comma at all. */
static err_code csv_prompts(loader *l, plist *out, const char *shown, const char *full, const char *text, vpos at,
                            const char *path);

/* Loads the prompt file `rel` (file:// removed) into out. */
static err_code file_prompts(loader *l, plist *out, const char *rel, const char *label, vpos at, const char *path)
{
    char full[PATH_MAX];
    if (!join_path(l->p->s.dir, rel, full, sizeof full))
        return lfail(l, ERR_PARSE, at, path, "the path %s is too long", rel);
    const char *ext = ext_of(rel);
    if (script_path(rel))
        return lfail(l, ERR_UNSUPPORTED, at, path,
                     "prompt functions (%s) are not supported: use a text, Markdown, JSON or YAML prompt", rel);
    if (has_glob(rel)) {
        glob_t g;
        if (glob(full, GLOB_BRACE, NULL, &g) != 0) {
            globfree(&g);
            return lfail(l, ERR_PARSE, at, path, "no prompt files match %s", rel);
        }
        err_code e = ERR_OK;
        size_t dlen = strlen(l->p->s.dir);
        for (size_t i = 0; i < g.gl_pathc && !e; i++) {
            const char *m = g.gl_pathv[i];
            /* back to a path relative to the suite, as the pattern was written */
            const char *r2 = rel[0] != '/' && strncmp(m, l->p->s.dir, dlen) == 0 && m[dlen] == '/' ? m + dlen + 1 : m;
            if (!has_glob(r2))
                e = file_prompts(l, out, r2, label, at, path);
        }
        globfree(&g);
        return e;
    }
    char msg[400];
    size_t len = 0;
    char *text = slurp(full, FILE_MAX, &len, msg, sizeof msg);
    if (!text)
        return lfail(l, ERR_IO, at, path, "%s", msg);
    if (!is_text(text, len)) {
        free(text);
        return lfail(l, ERR_PARSE, at, path, "%s is not UTF-8 text", rel);
    }
    size_t before = out->n;
    err_code e = ERR_OK;
    if (!strcmp(ext, ".json")) {
        bool chat = chat_json(text);
        char *lab = label ? strdup(label) : label_cut(rel, text, SIZE_MAX / 4, false);
        if (!plist_add(out, strdup(rel), lab, text, chat, NULL))
            e = NOMEM(l, path);
    } else if (!strcmp(ext, ".yaml") || !strcmp(ext, ".yml")) {
        yjson_error ye;
        yjson_doc *doc = yjson_parse_string(text, len, NULL, &ye);
        free(text);
        if (!doc) {
            diag_set(l->d, full, ye.line, ye.col, "", "%s", ye.msg);
            return l->err = ERR_PARSE;
        }
        json_t *v = yjson_root(doc);
        char *raw = json_is_string(v) ? strdup(json_string_value(v)) : json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        bool chat = chat_list(v);
        yjson_free(doc);
        if (!raw)
            return NOMEM(l, path);
        char *lab = label ? strdup(label) : label_cut(rel, raw, 80, false);
        if (!plist_add(out, strdup(rel), lab, raw, chat, NULL))
            e = NOMEM(l, path);
    } else if (!strcmp(ext, ".md") || !strcmp(ext, ".j2") || !strcmp(ext, ".jinja") || !strcmp(ext, ".jinja2")) {
        char *lab = label ? strdup(label) : label_cut(rel, text, 50, true);
        if (!plist_add(out, strdup(rel), lab, text, false, NULL))
            e = NOMEM(l, path);
    } else if (!strcmp(ext, ".csv")) {
        e = csv_prompts(l, out, rel, full, text, at, path);
        free(text);
        if (!e)
            e = label_rest(l, out, before, rel, label, path);
    } else {
        /* .txt and anything else */
        e = txt_prompts(l, out, rel, text, path);
        free(text);
        if (!e)
            e = label_rest(l, out, before, rel, label, path);
    }
    if (!e && out->n == before)
        e = lfail(l, ERR_PARSE, at, path, "%s holds no prompt", rel);
    return e;
}

/* One prompt written as a string. */
static err_code string_prompt(loader *l, plist *out, const char *s, const char *label, vpos at, const char *path)
{
    if (starts(s, "file://"))
        return file_prompts(l, out, s + 7, label, at, path);
    if (starts(s, "prompt://")) {
        const char *ref = s + 9;
        if (!*ref)
            return lfail(l, ERR_PARSE, at, path, "prompt:// needs a name (prompt://NAME@LABEL)");
        if (!plist_add(out, strdup(s), strdup(label ? label : s), NULL, false, strdup(ref)))
            return NOMEM(l, path);
        return ERR_OK;
    }
    static const char *const other[] = { "exec:", "langfuse://", "portkey://", "helicone://", NULL };
    for (size_t i = 0; other[i]; i++)
        if (starts(s, other[i]))
            return lfail(l, ERR_UNSUPPORTED, at, path, "%s prompts are not supported", other[i]);
    if (!plist_add(out, NULL, strdup(label ? label : s), strdup(s), chat_json(s), NULL))
        return NOMEM(l, path);
    return ERR_OK;
}

/* One entry of `prompts` (text, a list of messages or {id, label, raw}). */
static err_code one_prompt(loader *l, plist *out, const json_t *v, vpos at, const char *path)
{
    char sub[200];
    if (json_is_string(v))
        return string_prompt(l, out, json_string_value(v), NULL, at, path);
    if (chat_list(v)) {
        char *raw = json_dumps(v, JSON_COMPACT);
        char *lab = raw ? strdup(raw) : NULL;
        if (!raw || !plist_add(out, NULL, lab, raw, true, NULL))
            return NOMEM(l, path);
        return ERR_OK;
    }
    if (!json_is_object(v))
        return lfail(l, ERR_PARSE, at, path, "a prompt is text, a file:// or prompt:// reference, a list of "
                                             "messages or {id, label, raw}, not %s", type_name(v));
    const json_t *id = json_object_get(v, "id"), *label = json_object_get(v, "label"), *raw = json_object_get(v, "raw");
    if (id && !json_is_string(id)) {
        snprintf(sub, sizeof sub, "%s.id", path);
        return lfail(l, ERR_PARSE, member_at(l, v, "id"), sub, "must be text, not %s", type_name(id));
    }
    if (label && !json_is_string(label)) {
        snprintf(sub, sizeof sub, "%s.label", path);
        return lfail(l, ERR_PARSE, member_at(l, v, "label"), sub, "must be text, not %s", type_name(label));
    }
    const char *lab = json_string_value(label);
    if (raw) {
        const char *rs = json_string_value(raw);
        if (rs && (starts(rs, "file://") || starts(rs, "prompt://")))
            return string_prompt(l, out, rs, lab, member_at(l, v, "raw"), path);
        char *text;
        bool chat;
        if (rs) {
            text = strdup(rs);
            chat = chat_json(rs);
        } else if (chat_list(raw)) {
            text = json_dumps(raw, JSON_COMPACT);
            chat = true;
        } else {
            snprintf(sub, sizeof sub, "%s.raw", path);
            return lfail(l, ERR_PARSE, member_at(l, v, "raw"), sub, "must be text or a list of messages, not %s",
                         type_name(raw));
        }
        if (!text)
            return NOMEM(l, path);
        if (!plist_add(out, xstrdup(json_string_value(id)), strdup(lab ? lab : text), text, chat, NULL))
            return NOMEM(l, path);
        return ERR_OK;
    }
    if (!id)
        return lfail(l, ERR_PARSE, at, path, "a prompt object needs raw or id");
    return string_prompt(l, out, json_string_value(id), lab, member_at(l, v, "id"), path);
}

static void plist_free(plist *out)
{
    for (size_t i = 0; i < out->n; i++)
        prompt_clear(&out->v[i]);
    free(out->v);
    memset(out, 0, sizeof *out);
}

static err_code read_prompts(loader *l, const json_t *root)
{
    const json_t *v = json_object_get(root, "prompts");
    plist out = { 0 };
    err_code e = ERR_OK;
    char path[200];
    vpos at = member_at(l, root, "prompts");
    if (!v || json_is_null(v)) {
        /* promptfoo's default: the test's `prompt` variable as it is */
        if (!plist_add(&out, NULL, strdup("{{prompt}}"), strdup("{{prompt}}"), false, NULL))
            e = NOMEM(l, "prompts");
    } else if (json_is_string(v) || chat_list(v)) {
        e = one_prompt(l, &out, v, at, "prompts");
    } else if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v) && !e; i++) {
            snprintf(path, sizeof path, "prompts[%zu]", i);
            e = one_prompt(l, &out, json_array_get(v, i), item_at(l, v, i), path);
        }
    } else if (json_is_object(v)) {
        /* promptfoo's map form: {text or file://path: label} */
        const char *k;
        json_t *x;
        json_object_foreach((json_t *)v, k, x) {
            snprintf(path, sizeof path, "prompts.%.60s", k);
            if (!json_is_string(x)) {
                e = lfail(l, ERR_PARSE, member_at(l, v, k), path, "the label must be text, not %s", type_name(x));
                break;
            }
            if ((e = string_prompt(l, &out, k, json_string_value(x), member_at(l, v, k), path)))
                break;
        }
    } else {
        e = lfail(l, ERR_PARSE, at, "prompts", "must be text, a list of prompts or a mapping, not %s", type_name(v));
    }
    if (!e && out.n == 0)
        e = lfail(l, ERR_PARSE, at, "prompts",
                  "there are no prompts: give at least one (or leave `prompts` out to use each test's `prompt` variable)");
    if (e) {
        plist_free(&out);
        return e;
    }
    l->p->s.prompts = out.v;
    l->p->s.nprompts = out.n;
    return ERR_OK;
}

/* ---- providers ---- */

typedef struct pvlist {
    ev_provider *v;
    size_t n, cap;
} pvlist;

static bool pv_add(pvlist *l, const char *id, const char *label, const json_t *config)
{
    if (l->n == l->cap) {
        size_t ncap = l->cap ? l->cap * 2 : 4;
        ev_provider *nv = realloc(l->v, ncap * sizeof *nv);
        if (!nv)
            return false;
        l->v = nv;
        l->cap = ncap;
    }
    ev_provider *p = &l->v[l->n];
    p->id = strdup(id);
    p->label = xstrdup(label);
    p->config = json_is_object(config) ? json_deep_copy(config) : NULL;
    if (!p->id || (label && !p->label) || (json_is_object(config) && !p->config)) {
        free(p->id);
        free(p->label);
        json_decref(p->config);
        return false;
    }
    l->n++;
    return true;
}

static void pvlist_free(pvlist *out)
{
    for (size_t i = 0; i < out->n; i++) {
        free(out->v[i].id);
        free(out->v[i].label);
        json_decref(out->v[i].config);
    }
    free(out->v);
    memset(out, 0, sizeof *out);
}

static err_code one_provider(loader *l, pvlist *out, const json_t *v, vpos at, const char *path, int fdepth);

/* Providers written in a file (file://providers.yaml): one or a list. */
static err_code provider_file(loader *l, pvlist *out, const char *rel, vpos at, const char *path, int fdepth)
{
    char full[PATH_MAX];
    if (fdepth > 4)
        return lfail(l, ERR_PARSE, at, path, "provider files refer to each other too deeply");
    yjson_doc *doc = load_named(l, rel, at, path, full, sizeof full);
    if (!doc)
        return l->err;
    const yjson_doc *saved_doc = l->doc;
    const char *saved_file = l->file;
    l->doc = doc;
    l->file = full;
    json_t *v = yjson_root(doc);
    err_code e = ERR_OK;
    if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v) && !e; i++) {
            char sub[200];
            snprintf(sub, sizeof sub, "[%zu]", i);
            e = one_provider(l, out, json_array_get(v, i), item_at(l, v, i), sub, fdepth + 1);
        }
    } else {
        vpos top = { 1, 1 };
        e = one_provider(l, out, v, top, "", fdepth + 1);
    }
    l->doc = saved_doc;
    l->file = saved_file;
    yjson_free(doc);
    return e;
}

static err_code one_provider(loader *l, pvlist *out, const json_t *v, vpos at, const char *path, int fdepth)
{
    char sub[200];
    if (json_is_string(v)) {
        const char *id = json_string_value(v);
        if (starts(id, "file://"))
            return provider_file(l, out, id + 7, at, path, fdepth);
        if (!*id)
            return lfail(l, ERR_PARSE, at, path, "a provider id is empty");
        return pv_add(out, id, NULL, NULL) ? ERR_OK : NOMEM(l, path);
    }
    if (!json_is_object(v))
        return lfail(l, ERR_PARSE, at, path, "a provider is an id or {id, label, config}, not %s", type_name(v));
    const json_t *id = json_object_get(v, "id");
    const char *only = NULL;
    if (!id && json_object_size(v) == 1) {
        void *iter = json_object_iter((json_t *)v);
        const json_t *x = json_object_iter_value(iter);
        if (json_is_object(x) || json_is_null(x))
            only = json_object_iter_key(iter);
    }
    if (only) {
        /* promptfoo's map form: {"openai:gpt-4o-mini": {config: ..., label: ...}} */
        const char *k;
        json_t *x;
        json_object_foreach((json_t *)v, k, x) {
            snprintf(sub, sizeof sub, "%s.%.60s", path, k);
            if (!json_is_object(x) && !json_is_null(x))
                return lfail(l, ERR_PARSE, member_at(l, v, k), sub, "a provider's options are a mapping, not %s",
                             type_name(x));
            const json_t *lab = json_object_get(x, "label"), *cfg = json_object_get(x, "config");
            if (lab && !json_is_string(lab))
                return lfail(l, ERR_PARSE, member_at(l, x, "label"), sub, "label must be text, not %s",
                             type_name(lab));
            if (cfg && !json_is_object(cfg) && !json_is_null(cfg))
                return lfail(l, ERR_PARSE, member_at(l, x, "config"), sub, "config must be a mapping, not %s",
                             type_name(cfg));
            return pv_add(out, k, json_string_value(lab), cfg) ? ERR_OK : NOMEM(l, path);
        }
    }
    snprintf(sub, sizeof sub, "%s%sid", path, *path ? "." : "");
    if (!id)
        return lfail(l, ERR_PARSE, at, path, "a provider needs an id");
    if (!json_is_string(id) || !*json_string_value(id))
        return lfail(l, ERR_PARSE, member_at(l, v, "id"), sub, "must be a provider id, not %s",
                     json_is_string(id) ? "empty" : type_name(id));
    if (starts(json_string_value(id), "file://"))
        return provider_file(l, out, json_string_value(id) + 7, member_at(l, v, "id"), path, fdepth);
    const json_t *lab = json_object_get(v, "label"), *cfg = json_object_get(v, "config");
    if (lab && !json_is_string(lab)) {
        snprintf(sub, sizeof sub, "%s%slabel", path, *path ? "." : "");
        return lfail(l, ERR_PARSE, member_at(l, v, "label"), sub, "must be text, not %s", type_name(lab));
    }
    if (cfg && !json_is_object(cfg) && !json_is_null(cfg)) {
        snprintf(sub, sizeof sub, "%s%sconfig", path, *path ? "." : "");
        return lfail(l, ERR_PARSE, member_at(l, v, "config"), sub, "must be a mapping, not %s", type_name(cfg));
    }
    return pv_add(out, json_string_value(id), json_string_value(lab), cfg) ? ERR_OK : NOMEM(l, path);
}

static err_code read_providers(loader *l, const json_t *root)
{
    const char *key = json_object_get(root, "providers") ? "providers" : "targets";
    const json_t *v = json_object_get(root, key);
    pvlist out = { 0 };
    err_code e = ERR_OK;
    vpos at = member_at(l, root, key);
    if (!v || json_is_null(v)) {
        /* none: the runner decides (command line, default) */
    } else if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v) && !e; i++) {
            char path[64];
            snprintf(path, sizeof path, "%s[%zu]", key, i);
            e = one_provider(l, &out, json_array_get(v, i), item_at(l, v, i), path, 0);
        }
    } else if (json_is_string(v) || json_is_object(v)) {
        e = one_provider(l, &out, v, at, key, 0);
    } else {
        e = lfail(l, ERR_PARSE, at, key, "must be an id, a list of providers or a mapping, not %s", type_name(v));
    }
    if (e) {
        pvlist_free(&out);
        return e;
    }
    l->p->s.providers = out.v;
    l->p->s.nproviders = out.n;
    return ERR_OK;
}

/* ---- tests: shared checks ---- */

/* Loads the vars files of `vars: file://x.yaml` (or a list of them) into
 * one mapping (later files win). NULL with msg. */
static json_t *vars_files(const char *dir, const json_t *spec, char *msg, size_t cap)
{
    json_t *out = json_object();
    if (!out) {
        snprintf(msg, cap, "out of memory");
        return NULL;
    }
    size_t n = json_is_array(spec) ? json_array_size(spec) : 1;
    for (size_t i = 0; i < n; i++) {
        const json_t *one = json_is_array(spec) ? json_array_get(spec, i) : spec;
        if (!json_is_string(one)) {
            snprintf(msg, cap, "vars files are given as file:// paths, not %s", type_name(one));
            goto fail;
        }
        const char *rel = json_string_value(one);
        if (starts(rel, "file://"))
            rel += 7;
        char full[PATH_MAX];
        if (!join_path(dir, rel, full, sizeof full)) {
            snprintf(msg, cap, "the path %s is too long", rel);
            goto fail;
        }
        glob_t g;
        memset(&g, 0, sizeof g);
        bool globbed = has_glob(rel);
        if (globbed && glob(full, GLOB_BRACE, NULL, &g) != 0) {
            globfree(&g);
            snprintf(msg, cap, "no vars files match %s", rel);
            goto fail;
        }
        size_t nf = globbed ? g.gl_pathc : 1;
        for (size_t k = 0; k < nf; k++) {
            const char *path = globbed ? g.gl_pathv[k] : full;
            size_t len;
            char *text = slurp(path, FILE_MAX, &len, msg, cap);
            if (!text) {
                if (globbed)
                    globfree(&g);
                goto fail;
            }
            yjson_error ye;
            yjson_doc *doc = yjson_parse_string(text, len, NULL, &ye);
            free(text);
            if (!doc) {
                snprintf(msg, cap, "%s:%d:%d: %s", path, ye.line, ye.col, ye.msg);
                if (globbed)
                    globfree(&g);
                goto fail;
            }
            json_t *v = yjson_root(doc);
            if (json_is_object(v))
                json_object_update(out, v);
            else if (!json_is_null(v)) {
                snprintf(msg, cap, "%s must hold a mapping of variables, not %s", path, type_name(v));
                yjson_free(doc);
                if (globbed)
                    globfree(&g);
                goto fail;
            }
            yjson_free(doc);
        }
        if (globbed)
            globfree(&g);
    }
    return out;
fail:
    json_decref(out);
    return NULL;
}

/* The keys of a test (and defaultTest) with their types. */
static const struct {
    const char *key;
    const char *want;   /* s: text, o: mapping, l: list, n: number, so: text or mapping, sl: text or list */
} test_keys[] = {
    { "description", "s" }, { "vars", "osl" }, { "assert", "l" }, { "options", "o" }, { "threshold", "n" },
    { "metadata", "o" }, { "provider", "so" }, { "providers", "l" }, { "prompts", "l" },
    { "providerOutput", "so" },
};

static bool type_ok(const json_t *v, const char *want)
{
    if (json_is_null(v))
        return true; /* an empty key is as good as a missing one */
    return (strchr(want, 's') && json_is_string(v)) || (strchr(want, 'o') && json_is_object(v)) ||
           (strchr(want, 'l') && json_is_array(v)) || (strchr(want, 'n') && json_is_number(v));
}

static const char *want_text(const char *want)
{
    if (!strcmp(want, "s")) return "text";
    if (!strcmp(want, "o")) return "a mapping";
    if (!strcmp(want, "l")) return "a list";
    if (!strcmp(want, "n")) return "a number";
    if (!strcmp(want, "so")) return "text or a mapping";
    return "a mapping (or file:// paths of vars files)";
}

/* Checks a test entry's keys (types, assertions are mappings, one key that
 * makes it a test). On a problem: false with msg and *bad_key / *bad_item
 * (the key, and the index in its list or -1) for the position and path;
 * msg is about that key. */
static bool check_test(const json_t *t, bool is_default, char *msg, size_t cap, const char **bad_key,
                       long *bad_item)
{
    *bad_key = NULL;
    *bad_item = -1;
    for (size_t i = 0; i < countof(test_keys); i++) {
        const json_t *v = json_object_get(t, test_keys[i].key);
        if (v && !type_ok(v, test_keys[i].want)) {
            *bad_key = test_keys[i].key;
            snprintf(msg, cap, "must be %s, not %s", want_text(test_keys[i].want), type_name(v));
            return false;
        }
    }
    static const char *const lists[] = { "assert", "providers", "prompts" };
    for (size_t k = 0; k < countof(lists); k++) {
        const json_t *l = json_object_get(t, lists[k]);
        for (size_t i = 0; json_is_array(l) && i < json_array_size(l); i++) {
            const json_t *a = json_array_get(l, i);
            bool ok = k == 0 ? json_is_object(a) : json_is_string(a);
            if (!ok) {
                *bad_key = lists[k];
                *bad_item = (long)i;
                if (k == 0)
                    snprintf(msg, cap, "an assertion is a mapping with a type, not %s", type_name(a));
                else
                    snprintf(msg, cap, "must be a %s, not %s", k == 1 ? "provider id or label" : "prompt label",
                             type_name(a));
                return false;
            }
        }
    }
    if (!is_default) {
        static const char *const need[] = { "assert", "vars", "options", "metadata", "provider", "providerOutput" };
        bool any = json_is_number(json_object_get(t, "threshold"));
        for (size_t i = 0; i < countof(need) && !any; i++)
            any = json_object_get(t, need[i]) != NULL;
        if (!any) {
            snprintf(msg, cap, "a test needs one of assert, vars, options, metadata, provider, providerOutput, "
                               "threshold");
            return false;
        }
    }
    return true;
}

/* "base.key" or "base.key[i]" for a check_test problem. */
static void bad_path(char *out, size_t cap, const char *base, const char *bad, long item)
{
    if (!bad)
        snprintf(out, cap, "%s", base);
    else if (item >= 0)
        snprintf(out, cap, "%.120s.%s[%ld]", base, bad, item);
    else
        snprintf(out, cap, "%.120s.%s", base, bad);
}

/* ---- defaultTest and the other keys ---- */

/* The position of what check_test found wrong in t. */
static vpos test_bad_at(const yjson_doc *doc, const json_t *t, const char *bad, long item, vpos fallback)
{
    vpos p = { 0, 0 };
    if (doc && bad) {
        bool ok = item >= 0 ? yjson_item_pos(doc, json_object_get(t, bad), (size_t)item, &p.line, &p.col)
                            : yjson_member_pos(doc, t, bad, &p.line, &p.col);
        if (ok)
            return p;
    }
    return fallback;
}

static err_code read_default(loader *l, const json_t *root)
{
    const json_t *v = json_object_get(root, "defaultTest");
    if (!v || json_is_null(v))
        return ERR_OK;
    vpos at = member_at(l, root, "defaultTest");
    const json_t *dt = v;
    yjson_doc *fdoc = NULL;
    char full[PATH_MAX];
    const yjson_doc *doc = l->doc;
    const char *file = l->file;
    err_code e = ERR_OK;
    if (json_is_string(v)) {
        const char *rel = json_string_value(v);
        if (!starts(rel, "file://"))
            return lfail(l, ERR_PARSE, at, "defaultTest", "must be a mapping or a file:// path, not '%.60s'", rel);
        if (!(fdoc = load_named(l, rel + 7, at, "defaultTest", full, sizeof full)))
            return l->err;
        dt = yjson_root(fdoc);
        doc = fdoc;
        file = full;
        if (!json_is_object(dt)) {
            diag_set(l->d, full, 1, 1, "defaultTest", "must be a mapping, not %s", type_name(dt));
            e = l->err = ERR_PARSE;
            goto out;
        }
    } else if (!json_is_object(v)) {
        return lfail(l, ERR_PARSE, at, "defaultTest", "must be a mapping or a file:// path, not %s", type_name(v));
    }
    char msg[300];
    const char *bad;
    long item;
    if (!check_test(dt, true, msg, sizeof msg, &bad, &item)) {
        vpos p = test_bad_at(doc, dt, bad, item, fdoc ? (vpos){ 1, 1 } : at);
        char path[64];
        bad_path(path, sizeof path, "defaultTest", bad, item);
        diag_set(l->d, file, p.line, p.col, path, "%s", msg);
        e = l->err = ERR_PARSE;
        goto out;
    }
    json_t *copy = json_deep_copy(dt);
    if (!copy) {
        e = NOMEM(l, "defaultTest");
        goto out;
    }
    const json_t *vars = json_object_get(copy, "vars");
    if (vars && (json_is_string(vars) || json_is_array(vars))) {
        json_t *loaded = vars_files(l->p->s.dir, vars, msg, sizeof msg);
        if (!loaded) {
            json_decref(copy);
            vpos p = test_bad_at(doc, dt, "vars", -1, at);
            diag_set(l->d, file, p.line, p.col, "defaultTest.vars", "%s", msg);
            e = l->err = ERR_PARSE;
            goto out;
        }
        json_object_set_new(copy, "vars", loaded);
    }
    l->p->s.default_test = copy;
    vars = json_object_get(copy, "vars");
    l->p->default_vars = json_is_object(vars) ? (json_t *)vars : NULL;
out:
    yjson_free(fdoc);
    return e;
}

/* The top-level keys: where each goes, and the type of those kept as they
 * are (s text, o mapping, l list, b boolean). */
enum { K_EXTRA, K_DESCRIPTION, K_HANDLED, K_OPTIONS, K_GENAIOPS, K_UNSUPPORTED };

static const struct {
    const char *key;
    int kind;
    const char *want;
} top_keys[] = {
    { "description", K_DESCRIPTION, "s" }, { "prompts", K_HANDLED, NULL }, { "providers", K_HANDLED, NULL },
    { "targets", K_HANDLED, NULL }, { "tests", K_HANDLED, NULL }, { "defaultTest", K_HANDLED, NULL },
    { "evaluateOptions", K_OPTIONS, "o" }, { "genaiops", K_GENAIOPS, "o" }, { "scenarios", K_UNSUPPORTED, NULL },
    { "outputPath", K_EXTRA, "sl" }, { "env", K_EXTRA, "o" }, { "sharing", K_EXTRA, "bo" },
    { "tags", K_EXTRA, "o" }, { "metadata", K_EXTRA, "o" }, { "commandLineOptions", K_EXTRA, "o" },
    { "writeLatestResults", K_EXTRA, "b" }, { "nunjucksFilters", K_EXTRA, "o" }, { "derivedMetrics", K_EXTRA, "l" },
    { "extensions", K_EXTRA, "l" },
};

static bool extra_type_ok(const json_t *v, const char *want)
{
    if (json_is_null(v))
        return true;
    return (strchr(want, 's') && json_is_string(v)) || (strchr(want, 'o') && json_is_object(v)) ||
           (strchr(want, 'l') && json_is_array(v)) || (strchr(want, 'b') && json_is_boolean(v));
}

static const char *extra_want(const char *want)
{
    if (!strcmp(want, "s")) return "text";
    if (!strcmp(want, "o")) return "a mapping";
    if (!strcmp(want, "l")) return "a list";
    if (!strcmp(want, "b")) return "true or false";
    if (!strcmp(want, "sl")) return "a path or a list of paths";
    return "true, false or a mapping";
}

static err_code read_top(loader *l, const json_t *root)
{
    ev_suite *s = &l->p->s;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)root, k, v) {
        int kind = K_EXTRA;
        const char *want = NULL;
        for (size_t i = 0; i < countof(top_keys); i++)
            if (!strcmp(top_keys[i].key, k)) {
                kind = top_keys[i].kind;
                want = top_keys[i].want;
            }
        if (want && !extra_type_ok(v, want))
            return lfail(l, ERR_PARSE, member_at(l, root, k), k, "must be %s, not %s", extra_want(want), type_name(v));
        switch (kind) {
        case K_DESCRIPTION:
            if (json_is_string(v) && !(s->description = strdup(json_string_value(v))))
                return NOMEM(l, k);
            break;
        case K_OPTIONS:
            if (json_is_object(v) && !(s->options = json_deep_copy(v)))
                return NOMEM(l, k);
            break;
        case K_GENAIOPS:
            if (json_is_object(v) && !(s->genaiops = json_deep_copy(v)))
                return NOMEM(l, k);
            break;
        case K_UNSUPPORTED:
            if (!json_is_null(v) && !(json_is_array(v) && json_array_size(v) == 0))
                return lfail(l, ERR_UNSUPPORTED, member_at(l, root, k), k, "%s are not supported yet", k);
            break;
        case K_EXTRA:
            if (!s->extra && !(s->extra = json_object()))
                return NOMEM(l, k);
            if (json_object_set_new(s->extra, k, json_deep_copy(v)))
                return NOMEM(l, k);
            break;
        default:
            break;
        }
    }
    return ERR_OK;
}

/* ---- pass 1: counting the inline tests without building them ---- */

typedef struct counter {
    bool seen, list, null, complex, is_map;
    char *scalar;            /* tests: "file://..." */
    int line, col;
    size_t items, total;
    /* the test item being walked */
    size_t prod;
    bool key_next;           /* depth 2: the next event is a key */
    bool key_is_vars;
    bool in_vars;
    bool vkey_next;          /* depth 3 */
    bool in_list;
    size_t list_n;
    bool list_first_str;
} counter;

static void count_reset(counter *c)
{
    free(c->scalar);
    memset(c, 0, sizeof *c);
}

static void count_ev(void *ctx, const yjson_event *ev)
{
    counter *c = ctx;
    if (ev->type == YJ_RESET) {
        count_reset(c);
        return;
    }
    if (ev->depth == 0) {
        if (!c->seen) {
            c->seen = true;
            c->line = ev->line;
            c->col = ev->col;
            if (ev->type == YJ_ALIAS || (ev->anchored && ev->type == YJ_SEQ_START)) {
                c->list = true; /* an anchored or aliased list: counted by reading it */
                c->complex = true;
            } else if (ev->type == YJ_SEQ_START) {
                c->list = true;
            } else if (ev->type == YJ_MAP_START) {
                c->is_map = true;
            } else if (ev->type == YJ_SCALAR && !ev->anchored) {
                c->null = ev->plain && (ev->len == 0 || !strcmp(ev->value, "null") || !strcmp(ev->value, "~") ||
                                        !strcmp(ev->value, "Null") || !strcmp(ev->value, "NULL"));
                if (!c->null)
                    c->scalar = strndup(ev->value, ev->len);
            } else {
                c->complex = true;
            }
        }
        return;
    }
    if (!c->list || c->complex)
        return;
    if (ev->anchored || ev->type == YJ_ALIAS || ev->tagged) {
        c->complex = true; /* a tag may change a value's type: count by reading */
        return;
    }
    bool start = ev->type == YJ_SEQ_START || ev->type == YJ_MAP_START;
    bool end = ev->type == YJ_SEQ_END || ev->type == YJ_MAP_END;
    switch (ev->depth) {
    case 1:
        if (ev->type == YJ_MAP_START) {
            c->prod = 1;
            c->key_next = true;
            c->in_vars = false;
        } else if (ev->type == YJ_MAP_END) {
            c->items++;
            c->total += c->prod;
            if (c->total > TESTS_MAX)
                c->complex = true;
        } else {
            c->complex = true; /* a file reference or not a test: the iterator decides */
        }
        break;
    case 2:
        if (c->key_next) {
            if (ev->type != YJ_SCALAR || (ev->plain && ev->len == 2 && !memcmp(ev->value, "<<", 2))) {
                c->complex = true;
                break;
            }
            c->key_is_vars = ev->len == 4 && !memcmp(ev->value, "vars", 4);
            c->key_next = false;
        } else if (start) {
            if (c->key_is_vars) {
                if (ev->type == YJ_MAP_START) {
                    c->in_vars = true;
                    c->vkey_next = true;
                } else {
                    c->complex = true; /* vars: [file list] */
                }
            }
        } else if (end) {
            c->in_vars = false;
            c->key_next = true;
        } else {
            /* a scalar value */
            if (c->key_is_vars && !(ev->plain && !yjson_plain_is_string(ev->value, ev->len)))
                c->complex = true; /* vars: file://... */
            c->key_next = true;
        }
        break;
    case 3:
        if (!c->in_vars)
            break;
        if (c->vkey_next) {
            if (ev->type != YJ_SCALAR || (ev->plain && ev->len == 2 && !memcmp(ev->value, "<<", 2))) {
                c->complex = true;
                break;
            }
            c->vkey_next = false;
        } else if (start) {
            if (ev->type == YJ_SEQ_START) {
                c->in_list = true;
                c->list_n = 0;
                c->list_first_str = false;
            }
        } else if (end) {
            if (c->in_list) {
                size_t f = c->list_first_str && c->list_n ? c->list_n : 1;
                if (c->prod > TESTS_MAX / f)
                    c->complex = true;
                else
                    c->prod *= f;
            }
            c->in_list = false;
            c->vkey_next = true;
        } else {
            if (ev->len >= 7 && !memcmp(ev->value, "file://", 7) && (!ev->plain || yjson_plain_is_string(ev->value,
                                                                                                      ev->len)))
                c->complex = true; /* loads (and may glob) files: counted by reading */
            c->vkey_next = true;
        }
        break;
    case 4:
        if (c->in_list && (start || ev->type == YJ_SCALAR)) {
            if (c->list_n == 0)
                c->list_first_str = ev->type == YJ_SCALAR && (!ev->plain || yjson_plain_is_string(ev->value,
                                                                                                     ev->len));
            c->list_n++;
        }
        break;
    default:
        break;
    }
}

/* Whether defaultTest's vars would multiply tests (a list of strings, or
 * file:// values that may glob). */
static bool default_expands(const json_t *vars)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)vars, k, v) {
        if (json_is_array(v) && json_is_string(json_array_get(v, 0)))
            return true;
        if (json_is_string(v) && starts(json_string_value(v), "file://"))
            return true;
    }
    return false;
}

/* ---- loading ---- */


err_code ev_suite_load(const char *path, ev_suite **out, ev_diag *d)
{
    ev_diag dummy;
    if (!d)
        d = &dummy;
    memset(d, 0, sizeof *d);
    *out = NULL;
    if (!path || !*path) {
        diag_set(d, "", 0, 0, "", "no suite file given");
        return ERR_INVAL;
    }
    suite_priv *p = calloc(1, sizeof *p);
    if (!p) {
        diag_set(d, path, 0, 0, "", "out of memory");
        return ERR_NOMEM;
    }
    p->s.path = strdup(path);
    const char *slash = strrchr(path, '/');
    p->s.dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
    if (!p->s.path || !p->s.dir) {
        ev_suite_free(&p->s);
        diag_set(d, path, 0, 0, "", "out of memory");
        return ERR_NOMEM;
    }
    loader l = { .p = p, .d = d, .file = p->s.path };
    counter c;
    memset(&c, 0, sizeof c);
    err_code e = ERR_OK;
    yjson_doc *doc = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        diag_set(d, path, 0, 0, "", "cannot read the suite: %s", strerror(errno));
        e = ERR_IO;
        goto out;
    }
    yjson_opts o = { .skip_key = "tests", .on_skip = count_ev, .skip_ctx = &c };
    yjson_error ye;
    doc = yjson_parse_file(f, &o, &ye);
    fclose(f);
    if (!doc) {
        diag_set(d, path, ye.line, ye.col, "", "%s", ye.msg);
        e = ERR_PARSE;
        goto out;
    }
    p->backend = yjson_doc_backend(doc);
    l.doc = doc;
    json_t *root = yjson_root(doc);
    if (!json_is_object(root)) {
        diag_set(d, path, json_is_null(root) ? 0 : 1, json_is_null(root) ? 0 : 1, "",
                 json_is_null(root) ? "the suite is empty" : "a suite is a mapping of keys (prompts, providers, "
                                                             "tests...), not %s", type_name(root));
        e = ERR_PARSE;
        goto out;
    }
    if ((e = read_top(&l, root)) || (e = read_prompts(&l, root)) || (e = read_providers(&l, root)) ||
        (e = read_default(&l, root)))
        goto out;
    /* tests: what pass 1 saw */
    p->tests_line = c.line;
    p->tests_col = c.col;
    bool count_by_reading = c.complex;
    if (!c.seen || c.null) {
        p->tests_kind = T_NONE;
    } else if (c.list) {
        p->tests_kind = T_LIST;
        if (c.items == 0 && !c.complex) {
            p->tests_kind = T_NONE;
            count_by_reading = false;
        }
    } else if (c.scalar) {
        p->tests_kind = T_STRING;
        p->tests_ref = c.scalar;
        c.scalar = NULL;
        count_by_reading = true;
    } else {
        diag_set(d, path, c.line, c.col, "tests",
                 c.is_map ? "test generators ({path, config}) are not supported: list the tests, or give a "
                            "file:// path of a CSV, JSONL, JSON or YAML file"
                          : "must be a list of tests or a file:// path");
        e = c.is_map ? ERR_UNSUPPORTED : ERR_PARSE;
        goto out;
    }
    if (p->default_vars && default_expands(p->default_vars))
        count_by_reading = true;
    if (p->tests_kind == T_NONE && !count_by_reading) {
        p->s.ntests = 1; /* promptfoo runs one empty test */
    } else if (!count_by_reading) {
        p->s.ntests = c.total;
    } else {
        ev_tests *it = ev_tests_open(&p->s, d);
        if (!it) {
            e = strstr(d->msg, "cannot read") ? ERR_IO : ERR_PARSE;
            goto out;
        }
        size_t n = 0;
        for (;;) {
            json_t *t;
            int r = ev_tests_next(it, &t, NULL, d);
            if (r == 0)
                break;
            if (r < 0) {
                e = ev_tests_err(it);
                break;
            }
            json_decref(t);
            n++;
        }
        ev_tests_close(it);
        if (e)
            goto out;
        p->s.ntests = n;
    }
out:
    count_reset(&c);
    yjson_free(doc);
    if (e) {
        ev_suite_free(&p->s);
        return e;
    }
    *out = &p->s;
    return ERR_OK;
}

/* ---- CSV ---- */

typedef struct csvr {
    FILE *f;
    int delim;
    buf rec;                 /* the cells of the record, each NUL-terminated */
    size_t *off;             /* where each cell starts in rec */
    size_t n, cap;
    size_t line;             /* line of the next character (1-based) */
    size_t rec_line;         /* line where the last record started */
    bool started;
} csvr;

static void csv_init(csvr *c, FILE *f, int delim)
{
    memset(c, 0, sizeof *c);
    c->f = f;
    c->delim = delim;
    buf_init(&c->rec, RECORD_MAX);
    c->line = 1;
}

/* promptfoo's PROMPTFOO_CSV_DELIMITER (one character), else ','. */
static int csv_delim(void)
{
    const char *d = getenv("PROMPTFOO_CSV_DELIMITER");
    return d && d[0] && !d[1] ? (unsigned char)d[0] : ',';
}

static void csv_free(csvr *c)
{
    buf_free(&c->rec);
    free(c->off);
    memset(c, 0, sizeof *c);
}

static bool csv_put(csvr *c, int ch)
{
    char b = (char)ch;
    return buf_append(&c->rec, &b, 1) == ERR_OK;
}

/* A '\r' just read: part of a CRLF line end (true, the '\n' consumed)? */
static bool csv_crlf(csvr *c)
{
    int n2 = getc(c->f);
    if (n2 == '\n' || n2 == EOF)
        return true;
    ungetc(n2, c->f);
    return false;
}

/* Reads one record. 1 with c->n cells, 0 at the end of the file, -1 with
 * msg. Empty lines are skipped. A field that starts with '"' is quoted (""
 * inside is one quote, line breaks allowed); a quote inside an unquoted
 * field is kept as it is (promptfoo reads CSV with relaxed quotes). */
static int csv_record(csvr *c, char *msg, size_t cap)
{
    int ch;
    buf_reset(&c->rec);
    c->n = 0;
    for (;;) {
        ch = getc(c->f);
        if (!c->started) {
            c->started = true;
            if (ch == 0xef) { /* a UTF-8 byte order mark */
                if (getc(c->f) != 0xbb || getc(c->f) != 0xbf) {
                    snprintf(msg, cap, "the file is not UTF-8 text");
                    return -1;
                }
                ch = getc(c->f);
            }
        }
        if (ch == EOF) {
            if (ferror(c->f)) {
                snprintf(msg, cap, "read error");
                return -1;
            }
            return 0;
        }
        if (ch == '\n' || (ch == '\r' && csv_crlf(c))) {
            c->line++;
            continue;
        }
        break;
    }
    c->rec_line = c->line;
    for (;;) {
        if (c->n >= COLUMNS_MAX) {
            snprintf(msg, cap, "more than %d columns", COLUMNS_MAX);
            return -1;
        }
        if (c->n == c->cap) {
            size_t ncap = c->cap ? c->cap * 2 : 16;
            size_t *nv = realloc(c->off, ncap * sizeof *nv);
            if (!nv) {
                snprintf(msg, cap, "out of memory");
                return -1;
            }
            c->off = nv;
            c->cap = ncap;
        }
        c->off[c->n] = c->rec.len;
        if (ch == '"') {
            size_t qline = c->line;
            for (;;) {
                ch = getc(c->f);
                if (ch == EOF) {
                    snprintf(msg, cap, "a quoted field that starts on line %zu is not closed", qline);
                    return -1;
                }
                if (ch == '"') {
                    ch = getc(c->f);
                    if (ch != '"')
                        break;
                } else if (ch == '\n') {
                    c->line++;
                }
                if (!csv_put(c, ch))
                    goto toobig;
            }
            if (ch == '\r' && csv_crlf(c))
                ch = '\n';
            if (ch != c->delim && ch != '\n' && ch != EOF) {
                snprintf(msg, cap, "a quoted field is followed by '%c' (a quote inside quotes is written \"\")",
                         ch >= 0x20 && ch < 0x7f ? ch : '?');
                return -1;
            }
        } else {
            while (ch != c->delim && ch != '\n' && ch != EOF) {
                if (ch == '\r' && csv_crlf(c)) {
                    ch = '\n';
                    break;
                }
                if (!csv_put(c, ch))
                    goto toobig;
                ch = getc(c->f);
            }
        }
        if (!csv_put(c, '\0'))
            goto toobig;
        c->n++;
        if (ch == '\n')
            c->line++;
        if (ch == '\n' || ch == EOF)
            break;
        ch = getc(c->f); /* after a delimiter: the next field */
    }
    for (size_t i = 0; i < c->n; i++) {
        const char *cell = c->rec.p + c->off[i];
        size_t n = strlen(cell);
        if (jscan_utf8_prefix(cell, n) != n) {
            snprintf(msg, cap, "column %zu is not valid UTF-8", i + 1);
            return -1;
        }
    }
    return 1;
toobig:
    snprintf(msg, cap, "a record is longer than %u bytes", RECORD_MAX);
    return -1;
}

static const char *csv_cell(const csvr *c, size_t i) { return c->rec.p + c->off[i]; }

static err_code csv_prompts(loader *l, plist *out, const char *shown, const char *full, const char *text, vpos at,
                            const char *path)
{
    int delim = csv_delim();
    if (!strchr(text, delim)) {
        /* one prompt a line; a first line "prompt" is a header */
        bool first = true;
        for (const char *p = text; *p;) {
            const char *nl = strchr(p, '\n');
            size_t n = nl ? (size_t)(nl - p) : strlen(p);
            char *line = strndup(p, n);
            if (!line)
                return NOMEM(l, path);
            char *t = trim(line);
            bool header = first && !strcasecmp(t, "prompt");
            if (*t)
                first = false;
            if (*t && !header && !plist_add(out, strdup(shown), NULL, strdup(t), false, NULL)) {
                free(line);
                return NOMEM(l, path);
            }
            free(line);
            p = nl ? nl + 1 : p + n;
        }
        return ERR_OK;
    }
    FILE *mf = fmemopen((void *)text, strlen(text), "r");
    if (!mf)
        return NOMEM(l, path);
    csvr c;
    csv_init(&c, mf, delim);
    char msg[256];
    err_code e = ERR_OK;
    int r = csv_record(&c, msg, sizeof msg);
    long pcol = -1, lcol = -1;
    for (size_t i = 0; r > 0 && i < c.n; i++) {
        char name[64];
        snprintf(name, sizeof name, "%s", csv_cell(&c, i));
        if (!strcmp(trim(name), "prompt"))
            pcol = (long)i;
        else if (!strcmp(trim(name), "label"))
            lcol = (long)i;
    }
    if (r > 0 && pcol < 0) {
        e = lfail(l, ERR_PARSE, at, path, "%s: a CSV of prompts needs a 'prompt' column", shown);
        goto out;
    }
    while (r > 0 && (r = csv_record(&c, msg, sizeof msg)) > 0) {
        if ((size_t)pcol >= c.n || !*csv_cell(&c, (size_t)pcol))
            continue;
        char *raw = strdup(csv_cell(&c, (size_t)pcol));
        const char *lab = lcol >= 0 && (size_t)lcol < c.n && *csv_cell(&c, (size_t)lcol) ? csv_cell(&c, (size_t)lcol)
                                                                                           : NULL;
        if (!raw || !plist_add(out, strdup(shown), xstrdup(lab), raw, false, NULL)) {
            e = NOMEM(l, path);
            goto out;
        }
    }
    if (r < 0) {
        diag_set(l->d, full, (int)c.rec_line, 0, "", "%s", msg);
        e = l->err = ERR_PARSE;
    }
out:
    csv_free(&c);
    fclose(mf);
    return e;
}

/* The assertion types promptfoo's one-line syntax knows, in the order its
 * pattern tries them. */
static const char *const csv_types[] = {
    "answer-relevance", "bleu", "classifier", "contains", "contains-all", "contains-any", "contains-html",
    "contains-json", "contains-sql", "contains-xml", "context-faithfulness", "context-recall", "context-relevance",
    "conversation-relevance", "cost", "equals", "factuality", "finish-reason", "g-eval", "gleu", "guardrails",
    "icontains", "icontains-all", "icontains-any", "is-html", "is-json", "is-refusal", "is-sql",
    "is-valid-function-call", "is-valid-openai-function-call", "is-valid-openai-tools-call", "is-xml", "javascript",
    "latency", "levenshtein", "llm-rubric", "pi", "meteor", "model-graded-closedqa", "model-graded-factuality",
    "moderation", "perplexity", "perplexity-score", "python", "regex", "rouge-n", "ruby", "similar",
    "similar:cosine", "similar:dot", "similar:euclidean", "starts-with", "tool-call-f1", "skill-used",
    "trajectory:goal-success", "trajectory:tool-args-match", "trajectory:step-count", "trajectory:tool-sequence",
    "trajectory:tool-used", "trace-error-spans", "trace-span-count", "trace-span-duration", "search-rubric",
    "webhook", "word-count", NULL,
};

static bool in_set(const char *t, const char *const *set)
{
    for (; *set; set++)
        if (!strcmp(t, *set))
            return true;
    return false;
}

static json_t *js_trimmed(const char *s)
{
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r' || *s == '\f' || *s == '\v')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == '\f' ||
                 s[n - 1] == '\v'))
        n--;
    return json_stringn(s, n);
}

/* promptfoo's one-line assertion (a CSV __expected cell, already trimmed)
 * as an assertion object. */
static json_t *assertion_from_string(const char *x)
{
    json_t *a = json_object();
    if (!a)
        return NULL;
    const char *rest = NULL;
    if (starts(x, "javascript:"))
        rest = x + 11;
    else if (starts(x, "fn:"))
        rest = x + 3;
    else if (starts(x, "eval:"))
        rest = x + 5;
    else if (starts(x, "file://") && is_js_file(x + 7))
        rest = x + 7;
    if (rest) {
        json_object_set_new(a, "type", json_string("javascript"));
        json_object_set_new(a, "value", js_trimmed(rest));
        return a;
    }
    if (starts(x, "grade:") || starts(x, "llm-rubric:")) {
        json_object_set_new(a, "type", json_string("llm-rubric"));
        json_object_set_new(a, "value", json_string(x + (starts(x, "grade:") ? 6 : 11)));
        return a;
    }
    if (starts(x, "python:") || (starts(x, "file://") && (ends(x, ".py") || strstr(x, ".py:")))) {
        json_object_set_new(a, "type", json_string("python"));
        json_object_set_new(a, "value", js_trimmed(x + (starts(x, "python:") ? 7 : 7)));
        return a;
    }
    const char *body = x;
    bool neg = starts(body, "not-");
    for (int pass = 0; pass < 2; pass++) {
        const char *b = pass == 0 && neg ? body + 4 : body;
        if (pass == 1 && !neg)
            break;
        for (size_t i = 0; csv_types[i]; i++) {
            size_t tl = strlen(csv_types[i]);
            if (strncmp(b, csv_types[i], tl) != 0)
                continue;
            const char *r = b + tl, *th = NULL, *value = NULL;
            size_t thlen = 0;
            if (*r == '(') {
                const char *q = r + 1;
                while (*q >= '0' && *q <= '9')
                    q++;
                if (q == r + 1)
                    continue;
                if (*q == '.') {
                    const char *q2 = q + 1;
                    while (*q2 >= '0' && *q2 <= '9')
                        q2++;
                    if (q2 == q + 1)
                        continue;
                    q = q2;
                }
                if (*q != ')')
                    continue;
                th = r + 1;
                thlen = (size_t)(q - th);
                r = q + 1;
            }
            if (*r == ':')
                value = r + 1;
            else if (*r != '\0')
                continue;
            const char *type = csv_types[i];
            char full[64];
            snprintf(full, sizeof full, "%s%s", pass == 0 && neg ? "not-" : "", type);
            json_object_set_new(a, "type", json_string(full));
            static const char *const arr[] = { "contains-all", "contains-any", "icontains-all", "icontains-any", NULL };
            static const char *const raw[] = { "contains-json", "is-json", NULL };
            static const char *const thr[] = { "answer-relevance", "classifier", "context-faithfulness",
                                               "context-recall", "context-relevance", "cost", "latency",
                                               "levenshtein", "perplexity-score", "perplexity", "rouge-n",
                                               "similar", "starts-with", NULL };
            if (in_set(type, arr)) {
                if (value) {
                    json_t *list = json_array();
                    const char *p = value;
                    for (;;) {
                        const char *comma = strchr(p, ',');
                        size_t n = comma ? (size_t)(comma - p) : strlen(p);
                        char *item = strndup(p, n);
                        if (!item) {
                            json_decref(list);
                            json_decref(a);
                            return NULL;
                        }
                        json_array_append_new(list, js_trimmed(item));
                        free(item);
                        if (!comma)
                            break;
                        p = comma + 1;
                    }
                    json_object_set_new(a, "value", list);
                }
            } else if (in_set(type, raw)) {
                if (value)
                    json_object_set_new(a, "value", json_string(value));
            } else {
                if (value)
                    json_object_set_new(a, "value", js_trimmed(value));
                if (in_set(type, thr)) {
                    char tb[64];
                    double t = NAN;
                    if (th && thlen < sizeof tb) {
                        memcpy(tb, th, thlen);
                        tb[thlen] = '\0';
                        t = strtod(tb, NULL);
                    }
                    if (!isfinite(t))
                        t = !strcmp(type, "similar") ? 0.8 : 0.75;
                    json_object_set_new(a, "threshold", json_real(t));
                }
            }
            return a;
        }
    }
    json_object_set_new(a, "type", json_string("equals"));
    json_object_set_new(a, "value", json_string(x));
    return a;
}

/* One CSV row as a test (promptfoo's testCaseFromCsvRow). NULL with msg. */
static json_t *csv_test(char *const *cols, const csvr *c, size_t row, char *msg, size_t cap)
{
    json_t *vars = json_object(), *asserts = json_array(), *options = json_object(), *metadata = json_object();
    json_t *configs = json_object(), *t = json_object();
    const char *description = NULL, *metric = NULL, *provider_output = NULL;
    double threshold = NAN;
    bool ok = vars && asserts && options && metadata && configs && t;
    for (size_t i = 0; ok && i < c->n; i++) {
        const char *key = cols[i], *value = csv_cell(c, i);
        if (!*key && !*value)
            continue;
        if (starts(key, "__expected")) {
            json_t *tv = js_trimmed(value);
            if (tv && json_string_length(tv) > 0) {
                json_t *a = assertion_from_string(json_string_value(tv));
                if (!a || json_array_append_new(asserts, a))
                    ok = false;
            }
            json_decref(tv);
        } else if (!strcmp(key, "__prefix")) {
            json_object_set_new(options, "prefix", json_string(value));
        } else if (!strcmp(key, "__suffix")) {
            json_object_set_new(options, "suffix", json_string(value));
        } else if (!strcmp(key, "__description")) {
            description = value;
        } else if (!strcmp(key, "__providerOutput")) {
            provider_output = value;
        } else if (!strcmp(key, "__metric")) {
            metric = value;
        } else if (!strcmp(key, "__threshold")) {
            threshold = js_parse_float(value);
        } else if (!strcmp(key, "__metadata")) {
            /* promptfoo ignores a bare __metadata column (with a warning) */
        } else if (starts(key, "__metadata:")) {
            const char *mk = key + 11;
            size_t ml = strlen(mk);
            json_t *tv = js_trimmed(value);
            bool empty = !tv || json_string_length(tv) == 0;
            json_decref(tv);
            if (empty)
                continue;
            if (ml >= 2 && !strcmp(mk + ml - 2, "[]")) {
                /* a list: split on commas not escaped by a backslash */
                json_t *list = json_array();
                buf item;
                buf_init(&item, RECORD_MAX);
                for (const char *p = value;; p++) {
                    if (*p == '\\' && p[1] == ',') {
                        buf_append(&item, ",", 1);
                        p++;
                        continue;
                    }
                    if (*p == ',' || *p == '\0') {
                        buf_append(&item, "", 0);
                        json_array_append_new(list, js_trimmed(item.p ? item.p : ""));
                        buf_reset(&item);
                        if (*p == '\0')
                            break;
                        continue;
                    }
                    buf_append(&item, p, 1);
                }
                buf_free(&item);
                char *k2 = strndup(mk, ml - 2);
                if (k2)
                    json_object_set_new(metadata, k2, list);
                else
                    json_decref(list);
                free(k2);
            } else {
                json_object_set_new(metadata, mk, json_string(value));
            }
        } else if (starts(key, "__config:")) {
            const char *spec = key + 9, *colon = strchr(spec, ':');
            if (!colon || strchr(colon + 1, ':'))
                continue; /* promptfoo warns about a malformed __config column and ignores it */
            size_t el = (size_t)(colon - spec);
            long idx = -2;
            if (el >= 10 && !strncmp(spec, "__expected", 10)) {
                if (el == 10) {
                    idx = 0;
                } else {
                    bool digits = true;
                    for (size_t k = 10; k < el; k++)
                        digits = digits && spec[k] >= '0' && spec[k] <= '9';
                    if (digits && el - 10 < 7)
                        idx = strtol(spec + 10, NULL, 10) - 1; /* __expected0 targets nothing, as in promptfoo */
                }
            }
            if (idx == -2) {
                snprintf(msg, cap, "row %zu: the column %.60s: write __config:__expected:threshold or "
                                   "__config:__expectedN:threshold", row, key);
                ok = false;
                break;
            }
            if (strcmp(colon + 1, "threshold") != 0) {
                snprintf(msg, cap, "row %zu: the column %.60s: only threshold can be set through __config", row,
                         key);
                ok = false;
                break;
            }
            double v = js_parse_float(value);
            if (!isfinite(v)) {
                snprintf(msg, cap, "row %zu: %.60s is '%.40s', not a number", row, key, value);
                ok = false;
                break;
            }
            char ik[32];
            snprintf(ik, sizeof ik, "%ld", idx);
            json_object_set_new(configs, ik, json_real(v));
        } else {
            json_object_set_new(vars, key, json_string(value));
        }
    }
    if (!ok) {
        if (!msg[0])
            snprintf(msg, cap, "row %zu: out of memory", row);
        goto fail;
    }
    for (size_t i = 0; i < json_array_size(asserts); i++) {
        json_t *a = json_array_get(asserts, i);
        if (metric)
            json_object_set_new(a, "metric", json_string(metric));
        char ik[32];
        snprintf(ik, sizeof ik, "%zu", i);
        json_t *th = json_object_get(configs, ik);
        if (th) {
            json_object_set(a, "threshold", th);
            json_object_set(metadata, "threshold", th); /* as promptfoo does */
        }
    }
    json_object_set(t, "vars", vars);
    json_object_set(t, "assert", asserts);
    if (json_object_size(options))
        json_object_set(t, "options", options);
    json_object_set_new(t, "description", description && *description ? json_string(description)
                                                                       : json_sprintf("Row #%zu", row));
    if (provider_output && *provider_output)
        json_object_set_new(t, "providerOutput", json_string(provider_output));
    if (isfinite(threshold) && threshold != 0)
        json_object_set_new(t, "threshold", json_real(threshold));
    if (json_object_size(metadata))
        json_object_set(t, "metadata", metadata);
    json_decref(vars);
    json_decref(asserts);
    json_decref(options);
    json_decref(metadata);
    json_decref(configs);
    return t;
fail:
    json_decref(vars);
    json_decref(asserts);
    json_decref(options);
    json_decref(metadata);
    json_decref(configs);
    json_decref(t);
    return NULL;
}

/* ---- pass 2: the iterator ---- */

enum { SRC_NONE, SRC_CSV, SRC_JSONL, SRC_DOC };

struct ev_tests {
    const suite_priv *p;
    err_code err;            /* why it failed */
    bool done;
    /* the suite's tests */
    FILE *f;
    yjson_stream *ys;
    size_t outer_i;
    bool outer_done;
    /* an open tests file */
    int src;
    FILE *sf;
    yjson_stream *sys;
    yjson_doc *line_doc;     /* SRC_JSONL: the current line */
    csvr csv;
    buf line;                /* SRC_JSONL */
    char **cols;             /* CSV header */
    size_t ncols;
    size_t srow;             /* rows/lines/items read from it */
    size_t sline;
    bool row_desc;           /* JSON/JSONL named by `tests: file://...`: "Row #N" descriptions */
    char sname[200];         /* as written (after file://) */
    char spath[PATH_MAX];    /* as opened */
    glob_t g;                /* a tests file pattern being expanded */
    bool have_glob;
    size_t gi;
    bool glob_row_desc;
    /* the entry being expanded */
    json_t *cur;
    bool cur_synthetic;      /* the one empty test of a suite without tests */
    size_t cur_row;          /* > 0: add "Row #N" when it has no description */
    const yjson_doc *cur_doc;
    int cur_line_off;        /* JSONL: the file line of the doc's line 1, minus one */
    ev_diag cur_where;
    json_t *merged;          /* vars: defaultTest's then the test's */
    bool simple;             /* merged is the test's vars as they are: one test, a copy of them */
    json_t **vals;           /* per key: the list of its values */
    const char **keys;
    size_t *digit;
    size_t nk, combo, ncombos;
    const json_t *last;      /* the test last returned */
    suite_priv *own;         /* ev_tests_open_file: the suite made for the file */
    /* one cached vars file */
    char *cache_path;
    json_t *cache_val;
};

err_code ev_tests_err(const ev_tests *it) { return it ? it->err : ERR_INVAL; }

static void entry_clear(ev_tests *it)
{
    json_decref(it->cur);
    it->cur = NULL;
    it->cur_synthetic = false;
    it->cur_row = 0;
    json_decref(it->merged);
    it->merged = NULL;
    for (size_t i = 0; i < it->nk; i++)
        json_decref(it->vals[i]);
    free(it->vals);
    free(it->keys);
    free(it->digit);
    it->vals = NULL;
    it->keys = NULL;
    it->digit = NULL;
    it->nk = it->combo = it->ncombos = 0;
    it->simple = false;
}

static void source_close(ev_tests *it)
{
    if (it->src == SRC_CSV) {
        csv_free(&it->csv);
        for (size_t i = 0; i < it->ncols; i++)
            free(it->cols[i]);
        free(it->cols);
        it->cols = NULL;
        it->ncols = 0;
    }
    buf_free(&it->line);
    yjson_stream_close(it->sys);
    it->sys = NULL;
    yjson_free(it->line_doc);
    it->line_doc = NULL;
    if (it->sf)
        fclose(it->sf);
    it->sf = NULL;
    it->src = SRC_NONE;
}

void ev_tests_close(ev_tests *it)
{
    if (!it)
        return;
    entry_clear(it);
    source_close(it);
    if (it->have_glob)
        globfree(&it->g);
    yjson_stream_close(it->ys);
    if (it->f)
        fclose(it->f);
    free(it->cache_path);
    json_decref(it->cache_val);
    if (it->own)
        ev_suite_free(&it->own->s);
    free(it);
}

ev_tests *ev_tests_open_file(const char *path, ev_diag *d)
{
    ev_diag dummy;
    if (!d)
        d = &dummy;
    memset(d, 0, sizeof *d);
    if (!path || !*path) {
        diag_set(d, "", 0, 0, "", "no tests file given");
        return NULL;
    }
    suite_priv *p = calloc(1, sizeof *p);
    if (p) {
        p->s.path = strdup(path);
        p->s.dir = strdup(".");
        p->tests_ref = fmt_dup("file://%s", path);
        p->tests_kind = T_STRING;
        p->s.prompts = NULL;
    }
    if (!p || !p->s.path || !p->s.dir || !p->tests_ref) {
        if (p)
            ev_suite_free(&p->s);
        diag_set(d, path, 0, 0, "", "out of memory");
        return NULL;
    }
    ev_tests *it = ev_tests_open(&p->s, d);
    if (!it) {
        ev_suite_free(&p->s);
        return NULL;
    }
    it->own = p;
    return it;
}

ev_tests *ev_tests_open(const ev_suite *s, ev_diag *d)
{
    ev_diag dummy;
    if (!d)
        d = &dummy;
    memset(d, 0, sizeof *d);
    if (!s) {
        diag_set(d, "", 0, 0, "", "no suite");
        return NULL;
    }
    const suite_priv *p = (const suite_priv *)s;
    ev_tests *it = calloc(1, sizeof *it);
    if (!it) {
        diag_set(d, s->path, 0, 0, "", "out of memory");
        return NULL;
    }
    it->p = p;
    buf_init(&it->line, RECORD_MAX);
    if (p->tests_kind == T_LIST) {
        it->f = fopen(s->path, "rb");
        if (!it->f) {
            diag_set(d, s->path, 0, 0, "", "cannot read the suite: %s", strerror(errno));
            ev_tests_close(it);
            return NULL;
        }
        yjson_opts o = { .backend = p->backend };
        yjson_error ye;
        it->ys = yjson_stream_open(it->f, "tests", &o, &ye);
        if (!it->ys) {
            diag_set(d, s->path, ye.line, ye.col, "tests", "%s", ye.msg);
            ev_tests_close(it);
            return NULL;
        }
    }
    return it;
}

bool ev_tests_pos(const ev_tests *it, const json_t *node, int *line, int *col)
{
    if (!it || !node)
        return false;
    int l = 0, c = 0;
    if (node == it->last) {
        l = it->cur_where.line;
        c = it->cur_where.col;
    } else if (it->cur_doc && yjson_pos(it->cur_doc, node, &l, &c)) {
        l += it->cur_line_off;
    } else {
        return false;
    }
    if (line)
        *line = l;
    if (col)
        *col = c;
    return l > 0;
}

/* Sets the current entry's position (no message) without formatting. */
static void where_set(ev_diag *w, const char *file, int line, int col, const char *path)
{
    if (strcmp(w->file, file) != 0)
        snprintf(w->file, sizeof w->file, "%s", file);
    w->line = line;
    w->col = col;
    snprintf(w->path, sizeof w->path, "%s", path);
    w->msg[0] = '\0';
}

/* Fails the iterator with d set. */
static int tfail(ev_tests *it, err_code code, ev_diag *d, const char *file, int line, int col, const char *path,
                 const char *fmt, ...) PRINTF_LIKE(8, 9);

static int tfail(ev_tests *it, err_code code, ev_diag *d, const char *file, int line, int col, const char *path,
                 const char *fmt, ...)
{
    char msg[sizeof d->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    diag_set(d, file, line, col, path, "%s", msg);
    it->done = true;
    it->err = code;
    return -1;
}

/* Starts reading the tests file `ref`. resolved: ref is a path as it is
 * (a glob match), not relative to the suite. 0 or -1. */
static int open_file(ev_tests *it, const char *ref, bool resolved, const char *path_for_msgs, int line, int col,
                     ev_diag *d)
{
    const ev_suite *s = &it->p->s;
    if (starts(ref, "dataset://")) {
        if (!dataset_resolver)
            return tfail(it, ERR_UNSUPPORTED, d, s->path, line, col, path_for_msgs,
                         "%s: stored datasets are not available yet", ref);
        char msg[300] = "";
        char *file = dataset_resolver(ref + 10, msg, sizeof msg);
        if (!file)
            return msg[0] ? tfail(it, ERR_NOTFOUND, d, s->path, line, col, path_for_msgs, "%s", msg)
                          : tfail(it, ERR_NOTFOUND, d, s->path, line, col, path_for_msgs, "%s: not found", ref);
        snprintf(it->spath, sizeof it->spath, "%s", file);
        snprintf(it->sname, sizeof it->sname, "%s", ref);
        free(file);
        it->sf = fopen(it->spath, "rb");
        if (!it->sf)
            return tfail(it, ERR_IO, d, s->path, line, col, path_for_msgs, "%s: cannot read %s", ref, it->spath);
        yjson_error ye;
        it->sys = yjson_stream_open(it->sf, NULL, NULL, &ye);
        if (!it->sys)
            return tfail(it, ERR_PARSE, d, it->spath, ye.line, ye.col, it->sname, "%s", ye.msg);
        it->src = SRC_DOC;
        it->srow = 0;
        return 0;
    }
    static const char *const remote[] = { "huggingface://", "https://", "http://", "az://", "s3://", "gs://", NULL };
    for (size_t i = 0; remote[i]; i++)
        if (starts(ref, remote[i]))
            return tfail(it, ERR_UNSUPPORTED, d, s->path, line, col, path_for_msgs,
                         "%s: tests from %s are not supported (nothing is fetched from the network)", ref, remote[i]);
    const char *rel = starts(ref, "file://") ? ref + 7 : ref;
    if (!*rel)
        return tfail(it, ERR_PARSE, d, s->path, line, col, path_for_msgs, "an empty tests file name");
    if (script_path(rel))
        return tfail(it, ERR_UNSUPPORTED, d, s->path, line, col, path_for_msgs,
                     "%s: test generators (JavaScript, Python) are not supported", rel);
    if (strchr(rel, '#') || ends(rel, ".xlsx") || ends(rel, ".xls"))
        return tfail(it, ERR_UNSUPPORTED, d, s->path, line, col, path_for_msgs,
                     "%s: Excel files are not supported (save the sheet as CSV)", rel);
    char full[PATH_MAX];
    if (resolved ? snprintf(full, sizeof full, "%s", rel) >= (int)sizeof full : !join_path(s->dir, rel, full,
                                                                                           sizeof full))
        return tfail(it, ERR_PARSE, d, s->path, line, col, path_for_msgs, "the path %s is too long", rel);
    if (!resolved && has_glob(rel)) {
        if (glob(full, GLOB_BRACE, NULL, &it->g) != 0) {
            globfree(&it->g);
            return tfail(it, ERR_NOTFOUND, d, s->path, line, col, path_for_msgs, "no tests files match %s", rel);
        }
        it->have_glob = true;
        it->gi = 0;
        it->glob_row_desc = it->row_desc;
        return 0; /* next_entry opens the matches one by one */
    }
    snprintf(it->spath, sizeof it->spath, "%s", full);
    /* messages name the file as the suite does: relative to the suite's folder */
    size_t dl = strlen(s->dir);
    const char *shown = resolved && !strncmp(full, s->dir, dl) && full[dl] == '/' && strcmp(s->dir, ".") ? full + dl + 1
                        : resolved && !strncmp(full, "./", 2) ? full + 2 : rel;
    if (it->own && strrchr(shown, '/'))
        shown = strrchr(shown, '/') + 1; /* a file read on its own: its name (the path is in the file part) */
    snprintf(it->sname, sizeof it->sname, "%s", shown);
    const char *ext = ext_of(rel);
    bool csv = !strcmp(ext, ".csv"), jsonl = !strcmp(ext, ".jsonl"), json = !strcmp(ext, ".json"),
         yaml = !strcmp(ext, ".yaml") || !strcmp(ext, ".yml");
    if (!csv && !jsonl && !json && !yaml)
        return tfail(it, ERR_UNSUPPORTED, d, s->path, line, col, path_for_msgs,
                     "%s: tests files are .csv, .jsonl, .json, .yaml or .yml", rel);
    it->sf = fopen(full, "rb");
    if (!it->sf)
        return tfail(it, ERR_IO, d, s->path, line, col, path_for_msgs, "cannot read the tests file %s: %s", full,
                     strerror(errno));
    it->srow = 0;
    it->sline = 0;
    if (csv) {
        it->src = SRC_CSV;
        csv_init(&it->csv, it->sf, csv_delim());
        char msg[256];
        int r = csv_record(&it->csv, msg, sizeof msg);
        if (r < 0)
            return tfail(it, ERR_PARSE, d, full, (int)it->csv.rec_line, 0, "", "the header: %s", msg);
        if (r == 0)
            return 0; /* an empty file: no tests */
        it->cols = calloc(it->csv.n, sizeof *it->cols);
        if (!it->cols)
            return tfail(it, ERR_NOMEM, d, full, 1, 0, "", "out of memory");
        it->ncols = it->csv.n;
        for (size_t i = 0; i < it->csv.n; i++) {
            char *name = strdup(csv_cell(&it->csv, i));
            if (!name)
                return tfail(it, ERR_NOMEM, d, full, 1, 0, "", "out of memory");
            it->cols[i] = name;
            char *t = trim(name);
            memmove(name, t, strlen(t) + 1);
            for (size_t k = 0; k < i; k++)
                if (*name && !strcmp(it->cols[k], name))
                    return tfail(it, ERR_PARSE, d, full, (int)it->csv.rec_line, 0, "",
                                 "the column '%.60s' appears twice in the header", name);
        }
        return 0;
    }
    if (jsonl) {
        it->src = SRC_JSONL;
        return 0;
    }
    yjson_error ye;
    it->sys = yjson_stream_open(it->sf, NULL, NULL, &ye);
    if (!it->sys)
        return tfail(it, ERR_PARSE, d, full, ye.line, ye.col, "", "%s", ye.msg);
    it->src = SRC_DOC;
    return 0;
}

/* Reads a line of the JSONL file into it->line. 1, 0 at the end, -1. */
static int jsonl_line(ev_tests *it, char *msg, size_t cap)
{
    buf *b = &it->line;
    buf_reset(b);
    int ch;
    bool any = false;
    while ((ch = getc(it->sf)) != EOF) {
        any = true;
        if (ch == '\n')
            break;
        char c = (char)ch;
        if (buf_append(b, &c, 1) != ERR_OK) {
            snprintf(msg, cap, "a line is longer than %u bytes", RECORD_MAX);
            return -1;
        }
    }
    if (ferror(it->sf)) {
        snprintf(msg, cap, "read error");
        return -1;
    }
    if (!any)
        return 0;
    it->sline++;
    if (buf_reserve(b, 1) != ERR_OK) {
        snprintf(msg, cap, "out of memory");
        return -1;
    }
    b->p[b->len] = '\0';
    return 1;
}

/* The next test entry (before expansion) from the open tests file: 1, 0
 * when it is exhausted, -1. */
static int source_next(ev_tests *it, ev_diag *d)
{
    char msg[300] = "";
    char where[sizeof it->cur_where.path];
    if (it->src == SRC_CSV) {
        if (!it->cols)
            return 0;
        int r = csv_record(&it->csv, msg, sizeof msg);
        if (r == 0)
            return 0;
        it->srow++;
        snprintf(where, sizeof where, "%.150s row %zu", it->sname, it->srow);
        if (r < 0)
            return tfail(it, ERR_PARSE, d, it->spath, (int)it->csv.rec_line, 0, where, "%s", msg);
        if (it->csv.n != it->ncols)
            return tfail(it, ERR_PARSE, d, it->spath, (int)it->csv.rec_line, 0, where,
                         "the row has %zu columns, the header %zu", it->csv.n, it->ncols);
        json_t *t = csv_test(it->cols, &it->csv, it->srow, msg, sizeof msg);
        if (!t) {
            const char *m = strstr(msg, ": "); /* csv_test's messages start with "row N: " */
            return tfail(it, ERR_PARSE, d, it->spath, (int)it->csv.rec_line, 0, where, "%s", m ? m + 2 : msg);
        }
        it->cur = t;
        it->cur_doc = NULL;
        it->cur_line_off = 0;
        where_set(&it->cur_where, it->spath, (int)it->csv.rec_line, 0, where);
        return 1;
    }
    if (it->src == SRC_JSONL) {
        for (;;) {
            int r = jsonl_line(it, msg, sizeof msg);
            if (r == 0)
                return 0;
            snprintf(where, sizeof where, "%.150s line %zu", it->sname, it->sline);
            if (r < 0)
                return tfail(it, ERR_PARSE, d, it->spath, (int)it->sline, 0, where, "%s", msg);
            const char *text = it->line.p ? it->line.p : "";
            size_t len = it->line.len;
            bool blank = true;
            for (size_t i = 0; i < len && blank; i++)
                blank = text[i] == ' ' || text[i] == '\t' || text[i] == '\r';
            if (blank)
                continue;
            it->srow++;
            yjson_free(it->line_doc);
            yjson_opts o = { .backend = YJSON_JSON };
            yjson_error ye;
            it->line_doc = yjson_parse_string(text, len, &o, &ye);
            if (!it->line_doc)
                return tfail(it, ERR_PARSE, d, it->spath, (int)it->sline, ye.col, where, "%s", ye.msg);
            json_t *v = yjson_root(it->line_doc);
            if (!json_is_object(v))
                return tfail(it, ERR_PARSE, d, it->spath, (int)it->sline, 1, where,
                             "test case %zu must be an object, not %s", it->srow, type_name(v));
            it->cur = json_incref(v);
            it->cur_doc = it->line_doc;
            it->cur_line_off = (int)it->sline - 1;
            where_set(&it->cur_where, it->spath, (int)it->sline, 1, where);
            return 1;
        }
    }
    if (it->src == SRC_DOC) {
        json_t *v = NULL;
        yjson_error ye;
        int r = yjson_stream_next(it->sys, &v, &ye);
        if (r == 0)
            return 0;
        snprintf(where, sizeof where, "%.150s[%zu]", it->sname, it->srow);
        if (r < 0)
            return tfail(it, ERR_PARSE, d, it->spath, ye.line, ye.col, where, "%s", ye.msg);
        it->srow++;
        int line = 0, col = 0;
        const yjson_doc *doc = yjson_stream_doc(it->sys);
        if (!yjson_pos(doc, v, &line, &col))
            yjson_stream_list_pos(it->sys, &line, &col);
        if (!json_is_object(v)) {
            json_decref(v);
            return tfail(it, ERR_PARSE, d, it->spath, line, col, where, "test case %zu must be an object",
                         it->srow);
        }
        it->cur = v;
        it->cur_doc = doc;
        it->cur_line_off = 0;
        where_set(&it->cur_where, it->spath, line, col, where);
        return 1;
    }
    return 0;
}

/* The next test entry from anywhere: 1, 0 at the end, -1. */
static int next_entry(ev_tests *it, ev_diag *d)
{
    const suite_priv *p = it->p;
    for (;;) {
        if (it->src != SRC_NONE) {
            int r = source_next(it, d);
            if (r > 0 && it->row_desc && it->src != SRC_CSV)
                it->cur_row = it->srow;
            if (r != 0)
                return r;
            source_close(it);
            continue;
        }
        if (it->have_glob) {
            if (it->gi < it->g.gl_pathc) {
                const char *m = it->g.gl_pathv[it->gi++];
                it->row_desc = it->glob_row_desc;
                if (open_file(it, m, true, "tests", p->tests_line, p->tests_col, d) < 0)
                    return -1;
                continue;
            }
            globfree(&it->g);
            it->have_glob = false;
            continue;
        }
        if (it->outer_done)
            return 0;
        if (p->tests_kind == T_NONE) {
            it->outer_done = true;
            it->cur = json_object();
            if (!it->cur)
                return tfail(it, ERR_NOMEM, d, p->s.path, 0, 0, "tests", "out of memory");
            it->cur_synthetic = true;
            it->cur_doc = NULL;
            where_set(&it->cur_where, p->s.path, 0, 0, "tests");
            return 1;
        }
        if (p->tests_kind == T_STRING) {
            it->outer_done = true;
            const char *ref = p->tests_ref;
            /* promptfoo describes the tests of a single .json/.jsonl tests file as "Row #N" (CSV rows always) */
            it->row_desc = !it->own && (ends(ref, ".json") || ends(ref, ".jsonl") || starts(ref, "dataset://"));
            if (open_file(it, ref, false, "tests", p->tests_line, p->tests_col, d) < 0)
                return -1;
            continue;
        }
        /* an inline list */
        json_t *v = NULL;
        yjson_error ye;
        int r = yjson_stream_next(it->ys, &v, &ye);
        if (r == 0) {
            it->outer_done = true;
            return 0;
        }
        char where[64];
        snprintf(where, sizeof where, "tests[%zu]", it->outer_i++);
        if (r < 0)
            return tfail(it, ERR_PARSE, d, p->s.path, ye.line, ye.col, where, "%s", ye.msg);
        const yjson_doc *doc = yjson_stream_doc(it->ys);
        int line = 0, col = 0;
        if (!yjson_pos(doc, v, &line, &col))
            yjson_stream_list_pos(it->ys, &line, &col);
        if (json_is_string(v)) {
            it->row_desc = false;
            int rr = open_file(it, json_string_value(v), false, where, line, col, d);
            json_decref(v);
            if (rr < 0)
                return -1;
            continue;
        }
        if (!json_is_object(v)) {
            const char *what = type_name(v);
            json_decref(v);
            return tfail(it, ERR_PARSE, d, p->s.path, line, col, where,
                         "a test is a mapping (vars, assert...) or a file:// path, not %s", what);
        }
        it->cur = v;
        it->cur_doc = doc;
        it->cur_line_off = 0;
        where_set(&it->cur_where, p->s.path, line, col, where);
        return 1;
    }
}

/* Checks the current entry and prepares its expansion. 0 or -1. */
static int prepare_entry(ev_tests *it, ev_diag *d)
{
    const suite_priv *p = it->p;
    char msg[300];
    const char *bad;
    long item;
    ev_diag *w = &it->cur_where;
    char path[sizeof w->path];
    if (!it->cur_synthetic && !check_test(it->cur, false, msg, sizeof msg, &bad, &item)) {
        vpos at = test_bad_at(it->cur_doc, it->cur, bad, item, (vpos){ w->line - it->cur_line_off, w->col });
        bad_path(path, sizeof path, w->path, bad, item);
        return tfail(it, ERR_PARSE, d, w->file, at.line + it->cur_line_off, at.col, path, "%s", msg);
    }
    /* vars given as files */
    const json_t *tv = json_object_get(it->cur, "vars");
    json_t *own = NULL;
    if (tv && (json_is_string(tv) || json_is_array(tv))) {
        own = vars_files(p->s.dir, tv, msg, sizeof msg);
        if (!own) {
            vpos at = test_bad_at(it->cur_doc, it->cur, "vars", -1, (vpos){ w->line - it->cur_line_off, w->col });
            snprintf(path, sizeof path, "%.150s.vars", w->path);
            return tfail(it, ERR_PARSE, d, w->file, at.line + it->cur_line_off, at.col, path, "%s", msg);
        }
        tv = own;
    }
    /* the common case: no defaultTest vars, nothing to expand or load: one test with a copy of vars */
    if (!p->default_vars) {
        bool plain = true;
        const char *k0;
        json_t *v0;
        if (json_is_object(tv)) {
            json_object_foreach((json_t *)tv, k0, v0) {
                const char *str = json_string_value(v0);
                if ((json_is_array(v0) && json_is_string(json_array_get(v0, 0))) || (str && starts(str, "file://"))) {
                    plain = false;
                    break;
                }
            }
        }
        if (plain) {
            it->merged = json_is_object(tv) ? json_incref((json_t *)tv) : json_object();
            json_decref(own);
            if (!it->merged)
                return tfail(it, ERR_NOMEM, d, w->file, w->line, w->col, w->path, "out of memory");
            it->simple = true;
            it->ncombos = 1;
            it->combo = 0;
            return 0;
        }
    }
    /* defaultTest's keys first (promptfoo spreads them first), the test's values win */
    json_t *m = json_object();
    if (!m) {
        json_decref(own);
        return tfail(it, ERR_NOMEM, d, w->file, w->line, w->col, w->path, "out of memory");
    }
    const char *k;
    json_t *v;
    if (p->default_vars) {
        json_object_foreach(p->default_vars, k, v) {
            const json_t *ov = json_is_object(tv) ? json_object_get(tv, k) : NULL;
            json_object_set(m, k, ov ? (json_t *)ov : v);
        }
    }
    if (json_is_object(tv)) {
        json_object_foreach((json_t *)tv, k, v) {
            if (!json_object_get(m, k))
                json_object_set(m, k, v);
        }
    }
    json_decref(own);
    it->merged = m;
    size_t n = json_object_size(m);
    it->keys = calloc(n ? n : 1, sizeof *it->keys);
    it->vals = calloc(n ? n : 1, sizeof *it->vals);
    it->digit = calloc(n ? n : 1, sizeof *it->digit);
    if (!it->keys || !it->vals || !it->digit)
        return tfail(it, ERR_NOMEM, d, w->file, w->line, w->col, w->path, "out of memory");
    size_t combos = 1;
    json_object_foreach(m, k, v) {
        json_t *vals = NULL;
        const char *str = json_string_value(v);
        if (str && starts(str, "file://") && has_glob(str + 7)) {
            /* a pattern: one test per matching file */
            char full[PATH_MAX];
            glob_t g;
            snprintf(path, sizeof path, "%.120s.vars.%.30s", w->path, k);
            if (!join_path(p->s.dir, str + 7, full, sizeof full) || glob(full, GLOB_BRACE, NULL, &g) != 0) {
                globfree(&g);
                return tfail(it, ERR_NOTFOUND, d, w->file, w->line, w->col, path,
                             "no files found for variable %s at path %s", k, str + 7);
            }
            vals = json_array();
            for (size_t i = 0; vals && i < g.gl_pathc; i++) {
                char *ref = fmt_dup("file://%s", g.gl_pathv[i]);
                if (!ref || json_array_append_new(vals, json_string(ref))) {
                    json_decref(vals);
                    vals = NULL;
                }
                free(ref);
            }
            globfree(&g);
        } else if (json_is_array(v) && json_is_string(json_array_get(v, 0))) {
            /* promptfoo expands a list whose first item is text; other lists are one value */
            vals = json_incref(v);
        } else {
            vals = json_array();
            if (vals && json_array_append(vals, v)) {
                json_decref(vals);
                vals = NULL;
            }
        }
        if (!vals)
            return tfail(it, ERR_NOMEM, d, w->file, w->line, w->col, w->path, "out of memory");
        it->keys[it->nk] = k;
        it->vals[it->nk++] = vals;
        size_t f = json_array_size(vals);
        if (combos > COMBOS_MAX / f) {
            snprintf(path, sizeof path, "%.150s.vars", w->path);
            return tfail(it, ERR_TOOBIG, d, w->file, w->line, w->col, path,
                         "the list values of vars expand into more than %d tests", COMBOS_MAX);
        }
        combos *= f;
    }
    it->ncombos = combos;
    it->combo = 0;
    return 0;
}

/* A var's value when it names a file (file://...): the file's text (a
 * YAML file as compact JSON). New reference, or NULL with msg. */
static json_t *var_file(ev_tests *it, const char *ref, char *msg, size_t cap)
{
    const char *rel = ref + 7;
    char full[PATH_MAX];
    if (!join_path(it->p->s.dir, rel, full, sizeof full)) {
        snprintf(msg, cap, "the path %s is too long", rel);
        return NULL;
    }
    if (it->cache_path && !strcmp(it->cache_path, full))
        return json_incref(it->cache_val);
    const char *ext = ext_of(rel);
    if (script_path(rel)) {
        snprintf(msg, cap, "%s: variables from scripts are not supported", rel);
        return NULL;
    }
    size_t len;
    char *text = slurp(full, FILE_MAX, &len, msg, cap);
    if (!text)
        return NULL;
    json_t *out = NULL;
    if (!is_text(text, len)) {
        snprintf(msg, cap, "%s is not UTF-8 text (images and PDFs are not supported as variables yet)", rel);
    } else if (!strcmp(ext, ".yaml") || !strcmp(ext, ".yml")) {
        yjson_error ye;
        yjson_doc *doc = yjson_parse_string(text, len, NULL, &ye);
        if (!doc) {
            snprintf(msg, cap, "%s:%d:%d: %s", rel, ye.line, ye.col, ye.msg);
        } else {
            char *s = json_dumps(yjson_root(doc), JSON_COMPACT | JSON_ENCODE_ANY);
            out = s ? json_string(s) : NULL;
            free(s);
            yjson_free(doc);
            if (!out)
                snprintf(msg, cap, "out of memory");
        }
    } else {
        out = json_stringn(text, len);
        if (!out)
            snprintf(msg, cap, "out of memory");
    }
    free(text);
    if (out) {
        free(it->cache_path);
        json_decref(it->cache_val);
        it->cache_path = strdup(full);
        it->cache_val = it->cache_path ? json_incref(out) : NULL;
    }
    return out;
}

/* The current entry's next combination as a new test. 1 or -1. */
static int emit(ev_tests *it, json_t **test, ev_diag *where, ev_diag *d)
{
    ev_diag *w = &it->cur_where;
    json_t *t = json_object(), *vars = json_object();
    if (!t || !vars) {
        json_decref(t);
        json_decref(vars);
        return tfail(it, ERR_NOMEM, d, w->file, w->line, w->col, w->path, "out of memory");
    }
    const char *k;
    json_t *v;
    json_object_foreach(it->cur, k, v) {
        if (strcmp(k, "vars") != 0)
            json_object_set(t, k, v);
    }
    if (it->cur_row && !json_object_get(t, "description"))
        json_object_set_new(t, "description", json_sprintf("Row #%zu", it->cur_row));
    if (it->simple) {
        json_decref(vars);
        vars = json_copy(it->merged);
        if (!vars) {
            json_decref(t);
            return tfail(it, ERR_NOMEM, d, w->file, w->line, w->col, w->path, "out of memory");
        }
        json_object_set_new(t, "vars", vars);
        it->combo++;
        it->last = t;
        if (where)
            *where = *w;
        *test = t;
        return 1;
    }
    /* the odometer: the last key turns fastest */
    size_t rest = it->combo;
    for (size_t i = it->nk; i-- > 0;) {
        size_t f = json_array_size(it->vals[i]);
        it->digit[i] = rest % f;
        rest /= f;
    }
    for (size_t i = 0; i < it->nk; i++) {
        json_t *val = json_array_get(it->vals[i], it->digit[i]);
        const char *str = json_string_value(val);
        if (str && starts(str, "file://")) {
            char msg[300];
            json_t *loaded = var_file(it, str, msg, sizeof msg);
            if (!loaded) {
                json_decref(t);
                json_decref(vars);
                char path[sizeof w->path];
                snprintf(path, sizeof path, "%.120s.vars.%.30s", w->path, it->keys[i]);
                return tfail(it, strstr(msg, "not supported") ? ERR_UNSUPPORTED : ERR_IO, d, w->file, w->line, w->col,
                             path, "%s", msg);
            }
            json_object_set_new(vars, it->keys[i], loaded);
        } else {
            json_object_set(vars, it->keys[i], val);
        }
    }
    json_object_set_new(t, "vars", vars);
    it->combo++;
    it->last = t;
    if (where)
        *where = *w;
    *test = t;
    return 1;
}

int ev_tests_next(ev_tests *it, json_t **test, ev_diag *where, ev_diag *d)
{
    ev_diag dummy;
    if (!d)
        d = &dummy;
    *test = NULL;
    if (!it || it->done)
        return 0;
    for (;;) {
        if (it->cur && it->combo < it->ncombos)
            return emit(it, test, where, d);
        entry_clear(it);
        it->last = NULL;
        int r = next_entry(it, d);
        if (r <= 0) {
            it->done = true;
            return r;
        }
        if (prepare_entry(it, d) < 0)
            return -1;
    }
}
