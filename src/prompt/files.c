/*
 * files.c - prompts as code: read a folder of prompt files (YAML, or
 * Markdown with YAML front matter) into registry inputs, and write a
 * version back out as a file (docs/internals/prompts.md).
 *
 * How it works:
 *  - Parsing: libyaml loads the YAML (the whole .yaml file, or the front
 *    matter of a .md file) into a node tree; the root mapping's keys are
 *    checked against a table (prompt_keys: which key, in which format, what
 *    type), so a typo is an error naming file, line and key. Values become
 *    JSON with YAML 1.2 core-schema scalars (null, true/false, integers,
 *    floats, else strings; quoted and block scalars are always strings),
 *    bounded in depth and in nodes visited (aliases cannot blow up).
 *  - Positions: libyaml's marks count characters; they are turned into
 *    byte offsets of the file and then into the 1-based line and byte
 *    column an editor shows. Front matter offsets are shifted by where the
 *    front matter starts. A template error (line/column inside the
 *    template) becomes an offset in the template, then an offset in the
 *    file: for a Markdown body by adding where the body starts; for a YAML
 *    scalar by walking the scalar's source text and its value side by side
 *    (escapes counted as units, quotes and indentation skipped).
 *  - Folders: a recursive opendir/readdir walk (dot entries, symlinked
 *    directories and README.md skipped; depth, file count and file size
 *    bounded), sorted by path, every file parsed; the first failure fails
 *    the read, and two files naming the same prompt are an error.
 *  - Writing: text prompts as NAME.md (front matter with the config, then
 *    the template as the body, byte for byte), chat prompts as NAME.yaml
 *    with each content as a literal block scalar when that is exact, else a
 *    double-quoted scalar with escapes. Written to a temporary file and
 *    renamed. Reading the file back gives the same content hash.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>
#include "core/buf.h"
#include "core/jscan.h"
#include "prompt/files.h"
#include "prompt/template.h"

#define FILE_MAX (1u << 20)        /* bytes of one prompt file */
#define YAML_DEPTH_MAX 64
#define YAML_NODES_MAX 100000      /* nodes visited while converting one file (aliases count again) */
#define DIR_DEPTH_MAX 32
#define DIR_FILES_MAX 10000
#define LABELS_MAX 64

/* ---- errors and positions ---- */

static err_code ferr(prompt_file_error *e, const char *path, int line, int col, const char *fmt, ...) PRINTF_LIKE(5, 6);

static err_code ferr(prompt_file_error *e, const char *path, int line, int col, const char *fmt, ...)
{
    snprintf(e->path, sizeof e->path, "%s", path ? path : "");
    e->line = line;
    e->col = col;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    return ERR_PARSE;
}

/* What a parse works on: the file text and where the YAML part starts. */
typedef struct src src;
struct src {
    const char *path;
    const char *text;   /* the whole file */
    size_t len;
    size_t ybase;       /* byte offset of the YAML text in the file */
    size_t ylen;
    int depth;
    size_t nodes;
    prompt_file_error *e;
};

/* 1-based line and byte column of a byte offset of the file. */
static void offset_pos(const src *s, size_t off, int *line, int *col)
{
    if (off > s->len)
        off = s->len;
    int l = 1;
    size_t start = 0;
    for (size_t i = 0; i < off; i++)
        if (s->text[i] == '\n') {
            l++;
            start = i + 1;
        }
    *line = l;
    *col = (int)(off - start) + 1;
}

/* The file byte offset of a libyaml mark (which counts characters). */
static size_t mark_offset(const src *s, yaml_mark_t m)
{
    size_t chars = 0, i = s->ybase, end = s->ybase + s->ylen;
    for (; i < end && chars < m.index; i++)
        if (((unsigned char)s->text[i] & 0xc0) != 0x80) {
            /* count the lead bytes; stop before the continuation bytes of the next */
            chars++;
        }
    while (i < end && ((unsigned char)s->text[i] & 0xc0) == 0x80)
        i++;
    return i;
}

static err_code err_at(const src *s, size_t off, const char *fmt, ...) PRINTF_LIKE(3, 4);

static err_code err_at(const src *s, size_t off, const char *fmt, ...)
{
    int line, col;
    offset_pos(s, off, &line, &col);
    char msg[sizeof s->e->message];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return ferr(s->e, s->path, line, col, "%s", msg);
}

#define ERR_NODE(s, n, ...) err_at((s), mark_offset((s), (n)->start_mark), __VA_ARGS__)

/* ---- YAML values ---- */

static bool is_plain(const yaml_node_t *n) { return n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE; }

static size_t mark_offset(const struct src *s, yaml_mark_t m);

/* Whether a plain scalar was written with an explicit !!str tag ("!!str
 * 123", "&a !!str 123"): libyaml's loader gives untagged scalars the str
 * tag too, so the source is looked at. */
static bool explicit_str(const struct src *s, const yaml_node_t *n)
{
    size_t i = mark_offset(s, n->start_mark), end = mark_offset(s, n->end_mark);
    if (i < end && s->text[i] == '&') {
        while (i < end && s->text[i] != ' ' && s->text[i] != '\t')
            i++;
        while (i < end && (s->text[i] == ' ' || s->text[i] == '\t'))
            i++;
    }
    return end - i >= 5 && memcmp(s->text + i, "!!str", 5) == 0;
}

static bool all_in(const char *s, size_t n, const char *set)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!strchr(set, s[i]) || s[i] == '\0')
            return false;
    return true;
}

static bool word_is(const char *s, size_t n, const char *const *words)
{
    for (; *words; words++)
        if (strlen(*words) == n && memcmp(*words, s, n) == 0)
            return true;
    return false;
}

/* [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)? */
static bool float_like(const char *s, size_t n)
{
    size_t i = 0, digits = 0;
    if (i < n && (s[i] == '-' || s[i] == '+'))
        i++;
    while (i < n && s[i] >= '0' && s[i] <= '9')
        i++, digits++;
    if (i < n && s[i] == '.') {
        i++;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++, digits++;
    }
    if (digits == 0)
        return false;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '-' || s[i] == '+'))
            i++;
        size_t ed = 0;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++, ed++;
        if (ed == 0)
            return false;
    }
    return i == n;
}

static json_t *to_json(src *s, yaml_document_t *d, yaml_node_t *n);

/* A scalar as JSON: quoted and block scalars are strings, plain ones are
 * resolved (YAML 1.2 core schema). */
static json_t *scalar_json(src *s, yaml_node_t *n)
{
    const char *v = (const char *)n->data.scalar.value;
    size_t len = n->data.scalar.length;
    static const char *const nulls[] = { "null", "Null", "NULL", "~", NULL };
    static const char *const trues[] = { "true", "True", "TRUE", NULL };
    static const char *const falses[] = { "false", "False", "FALSE", NULL };
    static const char *const specials[] = { ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf", "-.Inf",
                                            "-.INF", ".nan", ".NaN", ".NAN", NULL };
    if (memchr(v, '\0', len)) {
        ERR_NODE(s, n, "a string contains a NUL character");
        return NULL;
    }
    if (is_plain(n) && !explicit_str(s, n)) {
        if (len == 0 || word_is(v, len, nulls))
            return json_null();
        if (word_is(v, len, trues))
            return json_true();
        if (word_is(v, len, falses))
            return json_false();
        char tmp[64];
        if (len < sizeof tmp) {
            memcpy(tmp, v, len);
            tmp[len] = '\0';
            char *end = NULL;
            const char *digits = tmp + (tmp[0] == '-' || tmp[0] == '+');
            if (all_in(digits, strlen(digits), "0123456789")) {
                errno = 0;
                long long x = strtoll(tmp, &end, 10);
                if (errno || *end) {
                    ERR_NODE(s, n, "the number %s is out of range", tmp);
                    return NULL;
                }
                return json_integer(x);
            }
            if ((tmp[0] == '0' && (tmp[1] == 'x' || tmp[1] == 'o')) && len > 2 &&
                all_in(tmp + 2, len - 2, tmp[1] == 'x' ? "0123456789abcdefABCDEF" : "01234567")) {
                errno = 0;
                unsigned long long x = strtoull(tmp + 2, &end, tmp[1] == 'x' ? 16 : 8);
                if (errno || *end || x > (unsigned long long)LLONG_MAX) {
                    ERR_NODE(s, n, "the number %s is out of range", tmp);
                    return NULL;
                }
                return json_integer((long long)x);
            }
            if (float_like(tmp, len)) {
                errno = 0;
                double x = strtod(tmp, &end);
                if (*end || errno == ERANGE) {
                    ERR_NODE(s, n, "the number %s is out of range", tmp);
                    return NULL;
                }
                return json_real(x);
            }
        }
        if (word_is(v, len, specials)) {
            ERR_NODE(s, n, "%.*s has no JSON form; quote it to keep it as text", (int)len, v);
            return NULL;
        }
    }
    json_t *j = json_stringn(v, len);
    if (!j)
        ERR_NODE(s, n, "a string is not valid UTF-8");
    return j;
}

static json_t *to_json(src *s, yaml_document_t *d, yaml_node_t *n)
{
    if (!n) {
        err_at(s, s->ybase, "a YAML node is missing");
        return NULL;
    }
    if (++s->nodes > YAML_NODES_MAX) {
        ERR_NODE(s, n, "the YAML has more than %d nodes (counting aliases each time)", YAML_NODES_MAX);
        return NULL;
    }
    if (n->type == YAML_SCALAR_NODE)
        return scalar_json(s, n);
    if (s->depth >= YAML_DEPTH_MAX) {
        ERR_NODE(s, n, "the YAML nests deeper than %d levels", YAML_DEPTH_MAX);
        return NULL;
    }
    json_t *out = NULL;
    s->depth++;
    if (n->type == YAML_SEQUENCE_NODE) {
        out = json_array();
        for (yaml_node_item_t *it = n->data.sequence.items.start; out && it < n->data.sequence.items.top; it++) {
            json_t *v = to_json(s, d, yaml_document_get_node(d, *it));
            if (!v || json_array_append_new(out, v)) {
                json_decref(out);
                out = NULL;
            }
        }
    } else if (n->type == YAML_MAPPING_NODE) {
        out = json_object();
        for (yaml_node_pair_t *p = n->data.mapping.pairs.start; out && p < n->data.mapping.pairs.top; p++) {
            yaml_node_t *k = yaml_document_get_node(d, p->key);
            if (!k || k->type != YAML_SCALAR_NODE) {
                if (k)
                    ERR_NODE(s, k, "a mapping key must be a plain value");
                else
                    err_at(s, s->ybase, "a mapping key is missing");
                json_decref(out);
                out = NULL;
                break;
            }
            const char *key = (const char *)k->data.scalar.value;
            if (memchr(key, '\0', k->data.scalar.length)) {
                ERR_NODE(s, k, "a key contains a NUL character");
                json_decref(out);
                out = NULL;
                break;
            }
            if (json_object_get(out, key)) {
                ERR_NODE(s, k, "the key '%.100s' appears twice", key);
                json_decref(out);
                out = NULL;
                break;
            }
            json_t *v = to_json(s, d, yaml_document_get_node(d, p->value));
            if (!v) {
                json_decref(out);
                out = NULL;
            } else if (json_object_set_new(out, key, v)) {
                ERR_NODE(s, k, "the key '%.100s' is not valid UTF-8", key);
                json_decref(out);
                out = NULL;
            }
        }
    } else {
        ERR_NODE(s, n, "an empty YAML node");
    }
    s->depth--;
    return out;
}

/* ---- template positions ---- */

/* The byte offset in text of a 1-based (line, col) of tpl_error. */
static size_t tpl_offset(const char *text, size_t len, int line, int col)
{
    size_t i = 0;
    for (int l = 1; l < line && i < len; i++)
        if (text[i] == '\n')
            l++;
    size_t off = i + (col > 0 ? (size_t)col - 1 : 0);
    return off > len ? len : off;
}

static bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/* How many source bytes a double-quoted escape at p takes and how many
 * value bytes it makes (0 for an escaped line break). */
static void escape_size(const char *p, size_t avail, size_t *src_len, size_t *val_len)
{
    *src_len = avail < 2 ? avail : 2;
    *val_len = 1;
    if (avail < 2)
        return;
    switch (p[1]) {
    case 'x': *src_len = 4, *val_len = 2; break;   /* up to 2 UTF-8 bytes: near enough */
    case 'u': *src_len = 6, *val_len = 3; break;
    case 'U': *src_len = 10, *val_len = 4; break;
    case 'N': case '_': *val_len = 2; break;
    case 'L': case 'P': *val_len = 3; break;
    case '\n': case '\r': *val_len = 0; break;
    default: break;
    }
    if (*src_len > avail)
        *src_len = avail;
}

/* The file offset of byte `off` of scalar n's value: walks the scalar's
 * source and its value together. Best effort, always inside the scalar. */
static size_t scalar_file_offset(const src *s, const yaml_node_t *n, size_t off)
{
    size_t rs = mark_offset(s, n->start_mark), re = mark_offset(s, n->end_mark);
    const char *val = (const char *)n->data.scalar.value;
    size_t vlen = n->data.scalar.length;
    yaml_scalar_style_t style = n->data.scalar.style;
    size_t r = rs;
    if (style == YAML_LITERAL_SCALAR_STYLE || style == YAML_FOLDED_SCALAR_STYLE) {
        while (r < re && s->text[r] != '\n')
            r++;
        if (r < re)
            r++;
    } else if (style == YAML_SINGLE_QUOTED_SCALAR_STYLE || style == YAML_DOUBLE_QUOTED_SCALAR_STYLE) {
        r++;
    }
    if (off > vlen)
        off = vlen;
    for (size_t i = 0; i < vlen && r < re; i++) {
        char d = val[i];
        size_t here = r;
        bool matched = false;
        while (r < re && !matched) {
            char c = s->text[r];
            if (style == YAML_DOUBLE_QUOTED_SCALAR_STYLE && c == '\\') {
                size_t sl, vl;
                escape_size(s->text + r, re - r, &sl, &vl);
                r += sl;
                if (vl == 0)
                    continue;
                here = r - sl;
                i += vl - 1;
                matched = true;
                break;
            }
            if (c == d || (is_space(d) && is_space(c))) {
                here = r;
                r++;
                matched = true;
                break;
            }
            r++;
        }
        if (i >= off)
            return matched ? here : r;
    }
    return r < re ? r : re;
}

/* Compiles a template; on an error reports it at the file position that
 * `locate` gives for the template offset. */
typedef size_t (*locate_fn)(const src *s, const void *where, size_t off);

static size_t locate_body(const src *s, const void *where, size_t off) { return *(const size_t *)where + off; }
static size_t locate_scalar(const src *s, const void *where, size_t off)
{
    return scalar_file_offset(s, (const yaml_node_t *)where, off);
}

static err_code check_template(const src *s, const char *text, size_t len, locate_fn locate, const void *where,
                               const char *what)
{
    tpl *t = NULL;
    tpl_error te;
    memset(&te, 0, sizeof te);
    err_code r = tpl_compile(text, len, &t, &te);
    if (r == ERR_OK) {
        tpl_free(t);
        return ERR_OK;
    }
    if (r == ERR_NOMEM)
        return ferr(s->e, s->path, 0, 0, "out of memory compiling a template");
    size_t off = locate(s, where, tpl_offset(text, len, te.line, te.col));
    return err_at(s, off, "%stemplate error: %s", what, te.message);
}

/* ---- the keys of a prompt file ---- */

enum { K_NAME, K_TYPE, K_TEMPLATE, K_MESSAGES, K_CONFIG, K_LABELS, K_MESSAGE, K__COUNT };

static const struct {
    const char *key;
    bool in_md;          /* allowed in Markdown front matter */
} prompt_keys[K__COUNT] = {
    [K_NAME] = { "name", true },         [K_TYPE] = { "type", true },     [K_TEMPLATE] = { "template", false },
    [K_MESSAGES] = { "messages", false }, [K_CONFIG] = { "config", true }, [K_LABELS] = { "labels", true },
    [K_MESSAGE] = { "message", true },
};

/* A scalar's text (any scalar style), or an error naming the key. Plain
 * null-like scalars are refused unless null_ok (then *out = NULL). */
static err_code scalar_text(src *s, yaml_node_t *n, const char *key, bool null_ok, char **out)
{
    *out = NULL;
    if (!n || n->type != YAML_SCALAR_NODE)
        return n ? ERR_NODE(s, n, "'%s' must be a string", key) : err_at(s, s->ybase, "'%s' is missing", key);
    const char *v = (const char *)n->data.scalar.value;
    size_t len = n->data.scalar.length;
    static const char *const nulls[] = { "null", "Null", "NULL", "~", NULL };
    if (is_plain(n) && (len == 0 || word_is(v, len, nulls))) {
        if (null_ok)
            return ERR_OK;
        return ERR_NODE(s, n, "'%s' must be a string, not empty", key);
    }
    if (memchr(v, '\0', len))
        return ERR_NODE(s, n, "'%s' contains a NUL character", key);
    *out = strndup(v, len);
    return *out ? ERR_OK : ferr(s->e, s->path, 0, 0, "out of memory");
}

static void file_init(prompt_file *f)
{
    memset(f, 0, sizeof *f);
}

void prompt_file_clear(prompt_file *f)
{
    if (!f)
        return;
    free(f->path);
    free(f->name);
    free(f->template);
    json_decref(f->messages);
    json_decref(f->config);
    for (size_t i = 0; i < f->nlabels; i++)
        free(f->labels[i]);
    free(f->labels);
    free(f->message);
    memset(f, 0, sizeof *f);
}

/* The messages of a chat prompt: a sequence of mappings with string role
 * and content (other keys kept as JSON); each content compiled. */
static err_code read_messages(src *s, yaml_document_t *d, yaml_node_t *n, json_t **out)
{
    *out = NULL;
    if (n->type != YAML_SEQUENCE_NODE || n->data.sequence.items.top == n->data.sequence.items.start)
        return ERR_NODE(s, n, "'messages' must be a non-empty list of {role, content}");
    json_t *arr = json_array();
    if (!arr)
        return ferr(s->e, s->path, 0, 0, "out of memory");
    int idx = 0;
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
        yaml_node_t *m = yaml_document_get_node(d, *it);
        idx++;
        if (!m || m->type != YAML_MAPPING_NODE) {
            err_code r = m ? ERR_NODE(s, m, "message %d must be a mapping with role and content", idx)
                           : err_at(s, s->ybase, "message %d is missing", idx);
            json_decref(arr);
            return r;
        }
        yaml_node_t *content = NULL;
        for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
            yaml_node_t *k = yaml_document_get_node(d, p->key);
            if (k && k->type == YAML_SCALAR_NODE && k->data.scalar.length == 7 &&
                memcmp(k->data.scalar.value, "content", 7) == 0)
                content = yaml_document_get_node(d, p->value);
        }
        json_t *obj = to_json(s, d, m);
        if (!obj) {
            json_decref(arr);
            return ERR_PARSE;
        }
        json_array_append_new(arr, obj);
        json_t *role = json_object_get(obj, "role"), *c = json_object_get(obj, "content");
        if (!json_is_string(role) || json_string_length(role) == 0) {
            json_decref(arr);
            return ERR_NODE(s, m, "message %d needs a role (a string)", idx);
        }
        if (!json_is_string(c) || !content || content->type != YAML_SCALAR_NODE) {
            /* content: 42 or content: null is not a template */
            json_decref(arr);
            return ERR_NODE(s, content ? content : m, "message %d (%s) needs a content string", idx,
                            json_string_value(role));
        }
        char what[128];
        snprintf(what, sizeof what, "message %d (%.64s): ", idx, json_string_value(role));
        err_code r = check_template(s, json_string_value(c), json_string_length(c), locate_scalar, content, what);
        if (r) {
            json_decref(arr);
            return r;
        }
    }
    *out = arr;
    return ERR_OK;
}

/* Reads the root mapping of a YAML file or front matter into f. md says
 * which keys are allowed. */
static err_code read_root(src *s, yaml_document_t *d, bool md, prompt_file *f, yaml_node_t **template_node)
{
    yaml_node_t *root = yaml_document_get_root_node(d);
    yaml_node_t *vals[K__COUNT] = { 0 };
    err_code r;
    *template_node = NULL;
    if (root && !(root->type == YAML_SCALAR_NODE && is_plain(root) && root->data.scalar.length == 0)) {
        if (root->type != YAML_MAPPING_NODE)
            return ERR_NODE(s, root, "%s must be a mapping of keys (name, type, %sconfig, labels, message)",
                            md ? "the front matter" : "a prompt file", md ? "" : "template or messages, ");
        for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top; p++) {
            yaml_node_t *k = yaml_document_get_node(d, p->key);
            if (!k || k->type != YAML_SCALAR_NODE)
                return k ? ERR_NODE(s, k, "a key must be a plain value") : err_at(s, s->ybase, "a key is missing");
            const char *key = (const char *)k->data.scalar.value;
            int which = -1;
            for (int i = 0; i < K__COUNT; i++)
                if (strlen(prompt_keys[i].key) == k->data.scalar.length && strcmp(prompt_keys[i].key, key) == 0)
                    which = i;
            if (which < 0 || (md && !prompt_keys[which].in_md)) {
                char show[80];
                size_t n = 0;
                for (size_t i = 0; i < k->data.scalar.length && n < 60; i++)
                    show[n++] = (key[i] >= 0x20 && key[i] < 0x7f) ? key[i] : '?';
                show[n] = '\0';
                if (which >= 0)
                    return ERR_NODE(s, k, "'%s' is not allowed in Markdown front matter: the body is the template",
                                    show);
                return ERR_NODE(s, k, "unknown key '%s' (the keys are name, type, %sconfig, labels, message)", show,
                                md ? "" : "template, messages, ");
            }
            if (vals[which])
                return ERR_NODE(s, k, "the key '%s' appears twice", prompt_keys[which].key);
            vals[which] = yaml_document_get_node(d, p->value);
            if (!vals[which])
                return ERR_NODE(s, k, "the key '%s' has no value", prompt_keys[which].key);
        }
    }
    if (vals[K_NAME]) {
        free(f->name);
        f->name = NULL;
        if ((r = scalar_text(s, vals[K_NAME], "name", false, &f->name)))
            return r;
        query_error qe;
        if (!prompt_name_valid(f->name, &qe))
            return ERR_NODE(s, vals[K_NAME], "%s", qe.message);
    }
    bool chat = vals[K_MESSAGES] != NULL;
    if (vals[K_TYPE]) {
        char *t = NULL;
        if ((r = scalar_text(s, vals[K_TYPE], "type", false, &t)))
            return r;
        bool ok = strcmp(t, "text") == 0 || strcmp(t, "chat") == 0;
        chat = strcmp(t, "chat") == 0;
        free(t);
        if (!ok)
            return ERR_NODE(s, vals[K_TYPE], "'type' must be text or chat");
        if (md && chat)
            return ERR_NODE(s, vals[K_TYPE], "a Markdown prompt is a text prompt (chat prompts are YAML files)");
    }
    f->type = chat ? PROMPT_CHAT : PROMPT_TEXT;
    if (chat) {
        if (vals[K_TEMPLATE])
            return ERR_NODE(s, vals[K_TEMPLATE], "a chat prompt has messages, not a template");
        if (!vals[K_MESSAGES])
            return err_at(s, s->ybase, "a chat prompt needs 'messages'");
        if ((r = read_messages(s, d, vals[K_MESSAGES], &f->messages)))
            return r;
    } else if (!md) {
        if (!vals[K_TEMPLATE])
            return err_at(s, s->ybase, "a prompt file needs 'template' (text) or 'messages' (chat)");
        if ((r = scalar_text(s, vals[K_TEMPLATE], "template", false, &f->template)))
            return r;
        *template_node = vals[K_TEMPLATE];
    }
    if (vals[K_CONFIG]) {
        json_t *c = to_json(s, d, vals[K_CONFIG]);
        if (!c)
            return ERR_PARSE;
        if (json_is_null(c)) {
            json_decref(c);
        } else if (!json_is_object(c)) {
            json_decref(c);
            return ERR_NODE(s, vals[K_CONFIG], "'config' must be a mapping");
        } else {
            json_decref(f->config);
            f->config = c;
        }
    }
    if (vals[K_LABELS]) {
        yaml_node_t *l = vals[K_LABELS];
        if (l->type != YAML_SEQUENCE_NODE)
            return ERR_NODE(s, l, "'labels' must be a list of labels");
        size_t n = (size_t)(l->data.sequence.items.top - l->data.sequence.items.start);
        if (n > LABELS_MAX)
            return ERR_NODE(s, l, "at most %d labels", LABELS_MAX);
        f->labels = calloc(n ? n : 1, sizeof *f->labels);
        if (!f->labels)
            return ferr(s->e, s->path, 0, 0, "out of memory");
        for (yaml_node_item_t *it = l->data.sequence.items.start; it < l->data.sequence.items.top; it++) {
            yaml_node_t *item = yaml_document_get_node(d, *it);
            char *label = NULL;
            if (!item)
                return ERR_NODE(s, l, "a label is missing");
            if ((r = scalar_text(s, item, "labels", false, &label)))
                return r;
            f->labels[f->nlabels++] = label;
            query_error qe;
            if (!prompt_label_valid(label, &qe))
                return ERR_NODE(s, item, "%s", qe.message);
            if (strcmp(label, "latest") == 0)
                return ERR_NODE(s, item, "the label 'latest' always points at the newest version and cannot be set");
        }
    }
    if (vals[K_MESSAGE] && (r = scalar_text(s, vals[K_MESSAGE], "message", true, &f->message)))
        return r;
    return ERR_OK;
}

/* Loads the YAML at s->ybase..+ylen (one document at most) and reads it. */
static err_code parse_yaml(src *s, bool md, prompt_file *f, yaml_node_t **tnode, yaml_document_t *doc, bool *loaded)
{
    yaml_parser_t p;
    *loaded = false;
    if (!yaml_parser_initialize(&p))
        return ferr(s->e, s->path, 0, 0, "out of memory");
    yaml_parser_set_input_string(&p, (const unsigned char *)s->text + s->ybase, s->ylen);
    err_code r = ERR_OK;
    if (!yaml_parser_load(&p, doc)) {
        r = err_at(s, mark_offset(s, p.problem_mark), "bad YAML: %s%s%s", p.problem ? p.problem : "syntax error",
                   p.context ? " " : "", p.context ? p.context : "");
        goto out;
    }
    *loaded = true;
    yaml_document_t extra;
    if (!yaml_parser_load(&p, &extra)) {
        r = err_at(s, mark_offset(s, p.problem_mark), "bad YAML: %s%s%s", p.problem ? p.problem : "syntax error",
                   p.context ? " " : "", p.context ? p.context : "");
        goto out;
    }
    bool more = yaml_document_get_root_node(&extra) != NULL;
    yaml_mark_t at = more ? yaml_document_get_root_node(&extra)->start_mark : p.mark;
    yaml_document_delete(&extra);
    if (more) {
        r = err_at(s, mark_offset(s, at), "%s holds more than one YAML document", md ? "the front matter" : "the file");
        goto out;
    }
    r = read_root(s, doc, md, f, tnode);
out:
    yaml_parser_delete(&p);
    return r;
}

/* Whether p starts with a front matter fence line ("---", trailing blanks
 * and '\r' allowed); *next gets the offset after it. */
static bool line_is_fence(const char *p, size_t n, size_t *next)
{
    /* "---" then optional spaces, optional '\r', then '\n' or the end */
    if (n < 3 || memcmp(p, "---", 3) != 0)
        return false;
    size_t i = 3;
    while (i < n && (p[i] == ' ' || p[i] == '\t'))
        i++;
    if (i < n && p[i] == '\r')
        i++;
    if (i < n && p[i] != '\n')
        return false;
    *next = i < n ? i + 1 : i;
    return true;
}

static void ext_of(const char *path, const char **ext)
{
    const char *slash = strrchr(path, '/'), *dot = strrchr(path, '.');
    *ext = dot && (!slash || dot > slash) ? dot : "";
}

static bool ext_ok(const char *ext)
{
    return strcmp(ext, ".yaml") == 0 || strcmp(ext, ".yml") == 0 || strcmp(ext, ".md") == 0;
}

err_code prompt_file_parse(const char *path, const char *text, size_t len, prompt_file *out, prompt_file_error *e)
{
    file_init(out);
    memset(e, 0, sizeof *e);
    if (!path || !*path)
        return ferr(e, "", 0, 0, "no file name");
    const char *ext;
    ext_of(path, &ext);
    if (!ext_ok(ext))
        return ferr(e, path, 0, 0, "not a prompt file (use .yaml, .yml or .md)");
    if (len > FILE_MAX)
        return ferr(e, path, 0, 0, "the file is larger than %u bytes", FILE_MAX);
    if (!text)
        text = "", len = 0;
    src s = { .path = path, .text = text, .len = len, .e = e };
    const char *nul = memchr(text, '\0', len);
    if (nul)
        return err_at(&s, (size_t)(nul - text), "the file contains a NUL byte");
    size_t bad = jscan_utf8_prefix(text, len);
    if (bad < len)
        return err_at(&s, bad, "the file is not valid UTF-8");
    err_code r = ERR_OK;
    bool md = strcmp(ext, ".md") == 0;
    out->path = strdup(path);
    out->name = strndup(path, (size_t)(ext - path));
    out->config = json_object();
    if (!out->path || !out->name || !out->config) {
        r = ferr(e, path, 0, 0, "out of memory");
        goto out;
    }
    yaml_document_t doc;
    bool loaded = false;
    yaml_node_t *tnode = NULL;
    size_t body = 0;
    bool front = false;
    if (md) {
        size_t next = 0;
        if (line_is_fence(text, len, &next)) {
            front = true;
            size_t i = next;
            bool closed = false;
            while (i <= len) {
                size_t after = 0;
                if (line_is_fence(text + i, len - i, &after)) {
                    s.ybase = next;
                    s.ylen = i - next;
                    body = i + after;
                    closed = true;
                    break;
                }
                const char *nl = memchr(text + i, '\n', len - i);
                if (!nl)
                    break;
                i = (size_t)(nl - text) + 1;
            }
            if (!closed) {
                r = ferr(e, path, 1, 1, "the front matter opened on line 1 is not closed by a '---' line");
                goto out;
            }
        }
    } else {
        s.ybase = 0;
        s.ylen = len;
    }
    if (!md || front) {
        r = parse_yaml(&s, md, out, &tnode, &doc, &loaded);
        if (!r && tnode)
            r = check_template(&s, out->template, strlen(out->template), locate_scalar, tnode, "");
        if (loaded)
            yaml_document_delete(&doc);
        if (r)
            goto out;
    }
    if (md) {
        out->type = PROMPT_TEXT;
        out->template = strndup(text + body, len - body);
        if (!out->template) {
            r = ferr(e, path, 0, 0, "out of memory");
            goto out;
        }
        if ((r = check_template(&s, out->template, len - body, locate_body, &body, "")))
            goto out;
    }
    query_error qe;
    if (!prompt_name_valid(out->name, &qe)) {
        r = ferr(e, path, 0, 0, "%s (the name comes from the file's path; set 'name:' to choose another)", qe.message);
        goto out;
    }
out:
    if (r)
        prompt_file_clear(out);
    return r;
}

/* ---- folders ---- */

typedef struct pathlist {
    char **v;
    size_t n, cap;
} pathlist;

static void pathlist_free(pathlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

static bool is_readme(const char *name) { return strcasecmp(name, "README.md") == 0; }

/* Collects the prompt files under root/rel (rel "" for the root). */
static err_code walk(const char *root, const char *rel, int depth, pathlist *l, prompt_file_error *e)
{
    char dirpath[PATH_MAX];
    if (snprintf(dirpath, sizeof dirpath, "%s%s%s", root, *rel ? "/" : "", rel) >= (int)sizeof dirpath)
        return ferr(e, rel, 0, 0, "the path is too long");
    if (depth > DIR_DEPTH_MAX)
        return ferr(e, rel, 0, 0, "folders nest deeper than %d levels", DIR_DEPTH_MAX);
    DIR *d = opendir(dirpath);
    if (!d)
        return ferr(e, *rel ? rel : root, 0, 0, "cannot open the folder: %s", strerror(errno));
    err_code r = ERR_OK;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        const char *name = de->d_name;
        if (name[0] == '.')
            continue;
        char relpath[512];
        if (snprintf(relpath, sizeof relpath, "%s%s%s", rel, *rel ? "/" : "", name) >= (int)sizeof relpath) {
            r = ferr(e, rel, 0, 0, "the path of '%.100s' is longer than %zu bytes", name, sizeof relpath - 1);
            break;
        }
        char full[PATH_MAX];
        if (snprintf(full, sizeof full, "%s/%s", root, relpath) >= (int)sizeof full) {
            r = ferr(e, relpath, 0, 0, "the path is too long");
            break;
        }
        struct stat st;
        if (lstat(full, &st) != 0) {
            r = ferr(e, relpath, 0, 0, "cannot read it: %s", strerror(errno));
            break;
        }
        if (S_ISLNK(st.st_mode)) {
            /* a symlinked file is read; a symlinked folder is skipped (no loops) */
            if (stat(full, &st) != 0 || !S_ISREG(st.st_mode))
                continue;
        }
        if (S_ISDIR(st.st_mode)) {
            if ((r = walk(root, relpath, depth + 1, l, e)))
                break;
            continue;
        }
        if (!S_ISREG(st.st_mode))
            continue;
        const char *ext;
        ext_of(name, &ext);
        if (!ext_ok(ext) || is_readme(name))
            continue;
        if (l->n >= DIR_FILES_MAX) {
            r = ferr(e, relpath, 0, 0, "more than %d prompt files", DIR_FILES_MAX);
            break;
        }
        if (l->n == l->cap) {
            size_t cap = l->cap ? l->cap * 2 : 32;
            char **v = realloc(l->v, cap * sizeof *v);
            if (!v) {
                r = ferr(e, relpath, 0, 0, "out of memory");
                break;
            }
            l->v = v;
            l->cap = cap;
        }
        if (!(l->v[l->n] = strdup(relpath))) {
            r = ferr(e, relpath, 0, 0, "out of memory");
            break;
        }
        l->n++;
    }
    closedir(d);
    return r;
}

static int cmp_path(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Reads one file (at most FILE_MAX bytes) into a malloc'd buffer. */
static err_code read_file(const char *full, const char *rel, char **out, size_t *len, prompt_file_error *e)
{
    *out = NULL;
    FILE *fp = fopen(full, "rb");
    if (!fp)
        return ferr(e, rel, 0, 0, "cannot open it: %s", strerror(errno));
    struct stat st;
    err_code r = ERR_OK;
    if (fstat(fileno(fp), &st) != 0 || !S_ISREG(st.st_mode)) {
        r = ferr(e, rel, 0, 0, "not a regular file");
        goto out;
    }
    if (st.st_size > (off_t)FILE_MAX) {
        r = ferr(e, rel, 0, 0, "the file is larger than %u bytes (1 MiB)", FILE_MAX);
        goto out;
    }
    char *b = malloc(FILE_MAX + 1);
    if (!b) {
        r = ferr(e, rel, 0, 0, "out of memory");
        goto out;
    }
    size_t n = fread(b, 1, FILE_MAX + 1, fp);
    if (ferror(fp)) {
        free(b);
        r = ferr(e, rel, 0, 0, "cannot read it: %s", strerror(errno));
        goto out;
    }
    if (n > FILE_MAX) {
        free(b);
        r = ferr(e, rel, 0, 0, "the file is larger than %u bytes (1 MiB)", FILE_MAX);
        goto out;
    }
    b[n] = '\0';
    *out = b;
    *len = n;
out:
    fclose(fp);
    return r;
}

static const prompt_file *name_sort_base;
static int cmp_file_name(const void *a, const void *b)
{
    size_t i = *(const size_t *)a, j = *(const size_t *)b;
    int c = strcmp(name_sort_base[i].name, name_sort_base[j].name);
    return c ? c : (i < j ? -1 : i > j);
}

err_code prompt_dir_read(const char *dir, prompt_fileset *out, prompt_file_error *e)
{
    memset(out, 0, sizeof *out);
    memset(e, 0, sizeof *e);
    if (!dir || !*dir)
        return ferr(e, "", 0, 0, "no folder given");
    struct stat st;
    if (stat(dir, &st) != 0)
        return ferr(e, dir, 0, 0, "cannot read the folder: %s", strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return ferr(e, dir, 0, 0, "not a folder");
    pathlist l = { 0 };
    err_code r = walk(dir, "", 0, &l, e);
    if (r)
        goto out;
    qsort(l.v, l.n, sizeof *l.v, cmp_path);
    out->files = calloc(l.n ? l.n : 1, sizeof *out->files);
    if (!out->files) {
        r = ferr(e, dir, 0, 0, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < l.n; i++) {
        char full[PATH_MAX];
        snprintf(full, sizeof full, "%s/%s", dir, l.v[i]);
        char *text = NULL;
        size_t len = 0;
        if ((r = read_file(full, l.v[i], &text, &len, e)))
            goto out;
        r = prompt_file_parse(l.v[i], text, len, &out->files[out->n], e);
        free(text);
        if (r)
            goto out;
        out->n++;
    }
    /* two files, one prompt */
    size_t *idx = malloc((out->n ? out->n : 1) * sizeof *idx);
    if (!idx) {
        r = ferr(e, dir, 0, 0, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < out->n; i++)
        idx[i] = i;
    static pthread_mutex_t sort_mu = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&sort_mu);
    name_sort_base = out->files;
    qsort(idx, out->n, sizeof *idx, cmp_file_name);
    name_sort_base = NULL;
    pthread_mutex_unlock(&sort_mu);
    for (size_t k = 1; k < out->n && !r; k++) {
        const prompt_file *a = &out->files[idx[k - 1]], *b = &out->files[idx[k]];
        if (strcmp(a->name, b->name) == 0)
            r = ferr(e, b->path, 0, 0, "the prompt '%.200s' is defined twice: in %.200s and in %.200s", a->name,
                     a->path, b->path);
    }
    free(idx);
out:
    pathlist_free(&l);
    if (r)
        prompt_fileset_free(out);
    return r;
}

void prompt_fileset_free(prompt_fileset *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++)
        prompt_file_clear(&s->files[i]);
    free(s->files);
    memset(s, 0, sizeof *s);
}

err_code prompt_fileset_inputs(const prompt_fileset *s, const char *author, const char *message,
                               const char *const *labels, size_t nlabels, prompt_input **out)
{
    *out = NULL;
    size_t total = 0;
    for (size_t i = 0; i < s->n; i++)
        total += s->files[i].nlabels + nlabels;
    size_t head = (s->n ? s->n : 1) * sizeof(prompt_input);
    char *block = calloc(1, head + (total ? total : 1) * sizeof(const char *));
    if (!block)
        return ERR_NOMEM;
    prompt_input *in = (prompt_input *)block;
    const char **lab = (const char **)(block + head);
    for (size_t i = 0; i < s->n; i++) {
        const prompt_file *f = &s->files[i];
        in[i] = (prompt_input){
            .name = f->name,
            .type = f->type,
            .template = f->type == PROMPT_TEXT ? f->template : NULL,
            .messages = f->type == PROMPT_CHAT ? f->messages : NULL,
            .config = f->config,
            .message = f->message ? f->message : message,
            .author = author,
            .labels = lab,
            .source = f->path,
        };
        size_t n = 0;
        for (size_t k = 0; k < f->nlabels; k++)
            lab[n++] = f->labels[k];
        for (size_t k = 0; k < nlabels; k++) {
            bool dup = false;
            for (size_t j = 0; j < n; j++)
                dup = dup || strcmp(lab[j], labels[k]) == 0;
            if (!dup)
                lab[n++] = labels[k];
        }
        in[i].nlabels = n;
        lab += n;
    }
    *out = in;
    return ERR_OK;
}

/* ---- writing ---- */

/* Appends s as a YAML double-quoted scalar: printable text as it is,
 * everything a YAML reader would fold or refuse as an escape. */
static err_code put_quoted(buf *b, const char *s, size_t n)
{
    err_code r = buf_append(b, "\"", 1);
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n && !r;) {
        unsigned c = p[i];
        if (c == '"' || c == '\\') {
            char esc[2] = { '\\', (char)c };
            r = buf_append(b, esc, 2);
            i++;
        } else if (c == '\n') {
            r = buf_append(b, "\\n", 2), i++;
        } else if (c == '\t') {
            r = buf_append(b, "\\t", 2), i++;
        } else if (c == '\r') {
            r = buf_append(b, "\\r", 2), i++;
        } else if (c < 0x20 || c == 0x7f) {
            r = buf_printf(b, "\\x%02x", c), i++;
        } else if (c < 0x80) {
            r = buf_append(b, s + i, 1), i++;
        } else {
            size_t k = (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : 4;
            if (i + k > n)
                k = n - i;
            unsigned cp = 0;
            if (k == 2)
                cp = ((c & 0x1f) << 6) | (p[i + 1] & 0x3f);
            else if (k == 3)
                cp = ((c & 0x0f) << 12) | ((p[i + 1] & 0x3f) << 6) | (p[i + 2] & 0x3f);
            if (k == 2 && cp < 0xa0)
                r = buf_printf(b, "\\x%02x", cp);        /* C1 controls, NEL */
            else if (k == 3 && (cp == 0x2028 || cp == 0x2029 || cp == 0xfeff))
                r = buf_printf(b, "\\u%04x", cp);        /* line/paragraph separators, BOM */
            else
                r = buf_append(b, s + i, k);
            i += k;
        }
    }
    return r ? r : buf_append(b, "\"", 1);
}

/* Whether s can be a literal block scalar exactly: printable, no '\r',
 * no characters YAML treats as line breaks or refuses, and it has a
 * newline (else quoting reads better). */
static bool literal_ok(const char *s, size_t n)
{
    if (!memchr(s, '\n', n))
        return false;
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n; i++) {
        unsigned c = p[i];
        if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7f)
            return false;
        if (c == 0xc2 && i + 1 < n && p[i + 1] < 0xa0)
            return false; /* C1 controls, NEL */
        if (c == 0xe2 && i + 2 < n && p[i + 1] == 0x80 && (p[i + 2] == 0xa8 || p[i + 2] == 0xa9))
            return false; /* U+2028, U+2029 */
        if (c == 0xef && i + 2 < n && p[i + 1] == 0xbb && p[i + 2] == 0xbf)
            return false; /* BOM */
    }
    /* a tab right after the indentation would be read as indentation */
    for (size_t i = 0; i < n; i++)
        if ((i == 0 || s[i - 1] == '\n') && s[i] == '\t')
            return false;
    return true;
}

static err_code put_indent(buf *b, int n)
{
    err_code r = ERR_OK;
    for (int i = 0; i < n && !r; i++)
        r = buf_append(b, " ", 1);
    return r;
}

/* A string value after "key:" at indentation `indent`: a literal block
 * ("|2-", "|2" or "|2+" by its trailing newlines) when exact, else quoted. */
static err_code put_string(buf *b, const char *s, size_t n, int indent)
{
    if (!literal_ok(s, n)) {
        err_code r = buf_append(b, " ", 1);
        r = r ? r : put_quoted(b, s, n);
        return r ? r : buf_append(b, "\n", 1);
    }
    size_t trail = 0;
    while (trail < n && s[n - 1 - trail] == '\n')
        trail++;
    /* keep ("+") also when there is nothing but newlines: clip would read
     * back as "" */
    const char *chomp = trail == 0 ? "-" : trail == 1 && trail < n ? "" : "+";
    err_code r = buf_printf(b, " |2%s\n", chomp);
    size_t end = n, i = 0; /* every line written with its newline; a last one without gets one */
    while (!r && i < end) {
        const char *nl = memchr(s + i, '\n', end - i);
        size_t ln = nl ? (size_t)(nl - (s + i)) : end - i;
        if (ln > 0)
            r = put_indent(b, indent + 2);
        if (!r)
            r = buf_append(b, s + i, ln);
        if (!r)
            r = buf_append(b, "\n", 1);
        i += ln + 1;
    }
    return r;
}

/* A mapping key at indentation `indent` (already written): plain when it
 * is a simple word that resolves to a string, else quoted; a long one as
 * an explicit "? key" line, since YAML limits implicit keys to 1024
 * characters. Ends with the ':'. */
static err_code put_key(buf *b, const char *k, int indent)
{
    size_t n = strlen(k);
    bool plain = n > 0 && ((k[0] >= 'a' && k[0] <= 'z') || (k[0] >= 'A' && k[0] <= 'Z') || k[0] == '_');
    for (size_t i = 0; plain && i < n; i++)
        plain = (k[i] >= 'a' && k[i] <= 'z') || (k[i] >= 'A' && k[i] <= 'Z') || (k[i] >= '0' && k[i] <= '9') ||
                k[i] == '_' || k[i] == '-' || k[i] == '.';
    static const char *const reserved[] = { "null", "Null", "NULL", "true", "True", "TRUE", "false", "False", "FALSE",
                                            "y", "Y", "n", "N", "yes", "Yes", "YES", "no", "No", "NO", "on", "On",
                                            "ON", "off", "Off", "OFF", NULL };
    if (plain && word_is(k, n, reserved))
        plain = false;
    if (n > 200) {
        err_code r = buf_append(b, "? ", 2);
        r = r ? r : put_quoted(b, k, n);
        r = r ? r : buf_append(b, "\n", 1);
        r = r ? r : put_indent(b, indent);
        return r ? r : buf_append(b, ":", 1);
    }
    err_code r = plain ? buf_append(b, k, n) : put_quoted(b, k, n);
    return r ? r : buf_append(b, ":", 1);
}

static err_code put_value(buf *b, const json_t *v, int indent, int depth);

/* A block mapping or sequence at indent; the first line's indentation is
 * already written when `inline_first` (after "- "). */
static err_code put_block(buf *b, const json_t *v, int indent, bool inline_first, int depth)
{
    err_code r = ERR_OK;
    bool first = true;
    if (depth > YAML_DEPTH_MAX)
        return ERR_TOOBIG;
    if (json_is_object(v)) {
        const char *k;
        const json_t *x;
        /* sorted keys: stable files, stable diffs */
        size_t n = json_object_size(v), i = 0;
        const char **keys = calloc(n ? n : 1, sizeof *keys);
        if (!keys)
            return ERR_NOMEM;
        json_object_foreach((json_t *)v, k, x) keys[i++] = k;
        qsort(keys, n, sizeof *keys, cmp_path);
        for (i = 0; i < n && !r; i++) {
            if (!(first && inline_first))
                r = put_indent(b, indent);
            first = false;
            r = r ? r : put_key(b, keys[i], indent);
            r = r ? r : put_value(b, json_object_get(v, keys[i]), indent, depth + 1);
        }
        free(keys);
    } else {
        size_t i;
        const json_t *x;
        json_array_foreach(v, i, x) {
            if (r)
                break;
            if (!(first && inline_first))
                r = put_indent(b, indent);
            first = false;
            r = r ? r : buf_append(b, "-", 1);
            if (!r && (json_is_object(x) || json_is_array(x)) && json_object_size(x) + json_array_size(x) > 0) {
                r = buf_append(b, " ", 1);
                r = r ? r : put_block(b, x, indent + 2, true, depth + 1);
            } else if (!r) {
                r = put_value(b, x, indent, depth + 1);
            }
        }
    }
    return r;
}

/* A value after "key:" or "-": a scalar on the same line, a container on
 * the next lines, indented by 2. */
static err_code put_value(buf *b, const json_t *v, int indent, int depth)
{
    if (json_is_string(v))
        return put_string(b, json_string_value(v), json_string_length(v), indent);
    if (json_is_object(v) || json_is_array(v)) {
        if (json_object_size(v) + json_array_size(v) == 0)
            return buf_append_str(b, json_is_object(v) ? " {}\n" : " []\n");
        err_code r = buf_append(b, "\n", 1);
        return r ? r : put_block(b, v, indent + 2, false, depth);
    }
    char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_REAL_PRECISION(15));
    if (!s)
        return ERR_NOMEM;
    err_code r = buf_printf(b, " %s\n", s);
    free(s);
    return r;
}

/* mkdir -p for the folders of rel under dir. */
static err_code make_dirs(const char *dir, const char *rel, prompt_file_error *e)
{
    char p[PATH_MAX];
    if (snprintf(p, sizeof p, "%s/%s", dir, rel) >= (int)sizeof p)
        return ferr(e, rel, 0, 0, "the path is too long");
    size_t base = strlen(dir) + 1;
    for (size_t i = base; p[i]; i++)
        if (p[i] == '/') {
            p[i] = '\0';
            if (mkdir(p, 0777) != 0 && errno != EEXIST) {
                err_code r = ferr(e, rel, 0, 0, "cannot create the folder %s: %s", p, strerror(errno));
                return r;
            }
            struct stat st;
            if (stat(p, &st) != 0 || !S_ISDIR(st.st_mode))
                return ferr(e, rel, 0, 0, "%s is not a folder", p);
            p[i] = '/';
        }
    return ERR_OK;
}

static bool exists(const char *dir, const char *name, const char *ext)
{
    char p[PATH_MAX];
    struct stat st;
    if (snprintf(p, sizeof p, "%s/%s%s", dir, name, ext) >= (int)sizeof p)
        return false;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

err_code prompt_file_write(const char *dir, const json_t *version, char **written, prompt_file_error *e)
{
    *written = NULL;
    memset(e, 0, sizeof *e);
    const char *name = json_string_value(json_object_get(version, "name"));
    const char *type = json_string_value(json_object_get(version, "type"));
    const json_t *config = json_object_get(version, "config");
    query_error qe;
    if (!name || !prompt_name_valid(name, &qe))
        return ferr(e, name ? name : "", 0, 0, "%s", name ? qe.message : "the version has no name");
    bool chat = type && strcmp(type, "chat") == 0;
    const json_t *msgs = json_object_get(version, "messages");
    const json_t *tmpl = json_object_get(version, "template");
    if (chat ? !json_is_array(msgs) : !json_is_string(tmpl))
        return ferr(e, name, 0, 0, "the version has no %s", chat ? "messages" : "template");
    if (config && !json_is_object(config))
        return ferr(e, name, 0, 0, "the version's config is not an object");
    /* Keep the format of a file that is already there for this name. */
    const char *ext = chat ? (exists(dir, name, ".yml") && !exists(dir, name, ".yaml") ? ".yml" : ".yaml")
                           : (exists(dir, name, ".md") ? ".md"
                              : exists(dir, name, ".yaml") ? ".yaml"
                              : exists(dir, name, ".yml") ? ".yml"
                                                          : ".md");
    bool md = strcmp(ext, ".md") == 0;
    buf b;
    buf_init(&b, 8u << 20);
    err_code r = ERR_OK;
    char rel[PROMPT_NAME_MAX + 8];
    snprintf(rel, sizeof rel, "%s%s", name, ext);
    if (md) {
        r = buf_append_str(&b, "---\n");
        if (!r && json_object_size(config) > 0) {
            r = buf_append_str(&b, "config:");
            r = r ? r : put_value(&b, config, 0, 0);
        }
        r = r ? r : buf_append_str(&b, "---\n");
        r = r ? r : buf_append(&b, json_string_value(tmpl), json_string_length(tmpl));
    } else if (chat) {
        r = buf_append_str(&b, "type: chat\nmessages:\n");
        size_t i;
        const json_t *m;
        json_array_foreach(msgs, i, m) {
            if (r)
                break;
            if (!json_is_object(m)) {
                r = ERR_INVAL;
                break;
            }
            /* role and content first, then the other keys */
            r = buf_append_str(&b, "  - role:");
            r = r ? r : put_value(&b, json_object_get(m, "role"), 4, 1);
            r = r ? r : buf_append_str(&b, "    content:");
            r = r ? r : put_value(&b, json_object_get(m, "content"), 4, 1);
            const char *k;
            const json_t *x;
            json_object_foreach((json_t *)m, k, x) {
                if (r || strcmp(k, "role") == 0 || strcmp(k, "content") == 0)
                    continue;
                r = put_indent(&b, 4);
                r = r ? r : put_key(&b, k, 4);
                r = r ? r : put_value(&b, x, 4, 1);
            }
        }
        if (!r && json_object_size(config) > 0) {
            r = buf_append_str(&b, "config:");
            r = r ? r : put_value(&b, config, 0, 0);
        }
    } else {
        r = buf_append_str(&b, "template:");
        r = r ? r : put_value(&b, tmpl, 0, 0);
        if (!r && json_object_size(config) > 0) {
            r = buf_append_str(&b, "config:");
            r = r ? r : put_value(&b, config, 0, 0);
        }
    }
    if (r) {
        buf_free(&b);
        return ferr(e, rel, 0, 0, "cannot write the prompt: %s", err_message(r));
    }
    if ((r = make_dirs(dir, rel, e))) {
        buf_free(&b);
        return r;
    }
    char full[PATH_MAX], tmp[PATH_MAX + 16];
    snprintf(full, sizeof full, "%s/%s", dir, rel);
    snprintf(tmp, sizeof tmp, "%s.tmp%ld", full, (long)getpid());
    FILE *fp = fopen(tmp, "wb");
    if (!fp) {
        r = ferr(e, rel, 0, 0, "cannot write it: %s", strerror(errno));
        buf_free(&b);
        return r;
    }
    bool ok = fwrite(b.p ? b.p : "", 1, b.len, fp) == b.len;
    ok = (fclose(fp) == 0) && ok;
    buf_free(&b);
    if (!ok || rename(tmp, full) != 0) {
        r = ferr(e, rel, 0, 0, "cannot write it: %s", strerror(errno));
        unlink(tmp);
        return r;
    }
    *written = strdup(rel);
    if (!*written)
        return ferr(e, rel, 0, 0, "out of memory");
    return ERR_OK;
}
