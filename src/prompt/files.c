/*
 * files.c - prompts as code: read a folder of prompt files (YAML, or
 * Markdown with YAML front matter) into registry inputs, and write a
 * version back out as a file (docs/internals/prompts.md).
 *
 * How it works:
 *  - Parsing: yjson (core/yjson.h) reads the YAML (the whole .yaml file,
 *    or the front matter of a .md file) into JSON with YAML 1.2 core-schema
 *    scalars, bounded in depth and in nodes made (aliases count again), and
 *    keeps each value's position; the root mapping's keys are checked
 *    against a table (prompt_keys: which key, in which format, what type),
 *    so a typo is an error naming file, line and key.
 *  - Positions: yjson's lines and columns count characters; they are
 *    turned into byte offsets of the file and then into the 1-based line
 *    and byte column an editor shows. Front matter offsets are shifted by
 *    where the front matter starts. A template error (line/column inside the
 *    template) becomes an offset in the template, then an offset in the
 *    file: for a Markdown body by adding where the body starts; for a YAML
 *    scalar by walking the scalar's source text (its span from yjson) and
 *    its value side by side (escapes counted as units, quotes and
 *    indentation skipped).
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
#include "core/buf.h"
#include "core/jscan.h"
#include "core/yjson.h"
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
    const yjson_doc *doc;
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

/* The file byte offset of a character index of the YAML text (yjson's
 * indexes and columns count characters). */
static size_t index_offset(const src *s, size_t index)
{
    size_t chars = 0, i = s->ybase, end = s->ybase + s->ylen;
    for (; i < end && chars < index; i++)
        if (((unsigned char)s->text[i] & 0xc0) != 0x80) {
            /* count the lead bytes; stop before the continuation bytes of the next */
            chars++;
        }
    while (i < end && ((unsigned char)s->text[i] & 0xc0) == 0x80)
        i++;
    return i;
}

/* The file byte offset of a yjson (line, column), both 1-based, the column
 * in characters, relative to the YAML text. */
static size_t linecol_offset(const src *s, int line, int col)
{
    size_t i = s->ybase, end = s->ybase + s->ylen;
    for (int l = 1; l < line && i < end; i++)
        if (s->text[i] == '\n')
            l++;
    for (int c = 1; c < col && i < end && s->text[i] != '\n'; c++) {
        i++;
        while (i < end && ((unsigned char)s->text[i] & 0xc0) == 0x80)
            i++;
    }
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

/* File offsets of what yjson knows the position of: the value of member
 * `key` of obj, that key itself, item i of a list, a value. The start of
 * the YAML when yjson has no position for it. */
static size_t where_member(const src *s, const json_t *obj, const char *key)
{
    int line = 0, col = 0;
    if (yjson_member_pos(s->doc, obj, key, &line, &col))
        return linecol_offset(s, line, col);
    return s->ybase;
}

static size_t where_key(const src *s, const json_t *obj, const char *key)
{
    int line = 0, col = 0;
    if (yjson_key_pos(s->doc, obj, key, &line, &col))
        return linecol_offset(s, line, col);
    return s->ybase;
}

static size_t where_item(const src *s, const json_t *arr, size_t i)
{
    int line = 0, col = 0;
    if (yjson_item_pos(s->doc, arr, i, &line, &col))
        return linecol_offset(s, line, col);
    return s->ybase;
}

static size_t where_node(const src *s, const json_t *v)
{
    int line = 0, col = 0;
    if (yjson_pos(s->doc, v, &line, &col))
        return linecol_offset(s, line, col);
    return s->ybase;
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

/* A template scalar: its value and where its source is. */
typedef struct scalar_at {
    const json_t *node;
    yjson_span span;
} scalar_at;

/* The file offset of byte `off` of a scalar's value: walks the scalar's
 * source and its value together. Best effort, always inside the scalar. */
static size_t scalar_file_offset(const src *s, const scalar_at *sa, size_t off)
{
    size_t rs = index_offset(s, sa->span.start), re = index_offset(s, sa->span.end);
    const char *val = json_string_value(sa->node);
    size_t vlen = json_string_length(sa->node);
    yjson_style style = sa->span.style;
    size_t r = rs;
    if (style == YJSON_LITERAL || style == YJSON_FOLDED) {
        while (r < re && s->text[r] != '\n')
            r++;
        if (r < re)
            r++;
    } else if (style == YJSON_SINGLE || style == YJSON_DOUBLE) {
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
            if (style == YJSON_DOUBLE && c == '\\') {
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
    const scalar_at *sa = where;
    if (!sa->node)
        return s->ybase;
    return scalar_file_offset(s, sa, off);
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

/* A scalar's text: a string as it is, a number as written, a boolean as
 * true/false; an error naming the key for anything else. null is refused
 * unless null_ok (then *out = NULL). at: where the value is (for messages). */
static err_code scalar_text(src *s, const json_t *v, size_t at, const char *key, bool null_ok, char **out)
{
    *out = NULL;
    if (!v || json_is_null(v)) {
        if (v && null_ok)
            return ERR_OK;
        return v ? err_at(s, at, "'%s' must be a string, not empty", key) : err_at(s, s->ybase, "'%s' is missing", key);
    }
    if (json_is_object(v) || json_is_array(v))
        return err_at(s, at, "'%s' must be a string", key);
    if (json_is_string(v)) {
        *out = strndup(json_string_value(v), json_string_length(v));
    } else if (json_is_boolean(v)) {
        *out = strdup(json_is_true(v) ? "true" : "false");
    } else {
        /* a number: its text as written in the file */
        yjson_span sp;
        if (yjson_scalar_span(s->doc, v, &sp)) {
            size_t a = index_offset(s, sp.start), b = index_offset(s, sp.end);
            *out = strndup(s->text + a, b - a);
        } else {
            *out = json_dumps(v, JSON_ENCODE_ANY);
        }
    }
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

/* The messages of a chat prompt: a list of mappings with string role and
 * content (other keys kept); each content compiled. */
static err_code read_messages(src *s, const json_t *n, size_t at, json_t **out)
{
    *out = NULL;
    if (!json_is_array(n) || json_array_size(n) == 0)
        return err_at(s, at, "'messages' must be a non-empty list of {role, content}");
    for (size_t i = 0; i < json_array_size(n); i++) {
        const json_t *m = json_array_get(n, i);
        int idx = (int)i + 1;
        size_t mat = where_item(s, n, i);
        if (!json_is_object(m))
            return err_at(s, mat, "message %d must be a mapping with role and content", idx);
        const json_t *role = json_object_get(m, "role"), *c = json_object_get(m, "content");
        if (!json_is_string(role) || json_string_length(role) == 0)
            return err_at(s, mat, "message %d needs a role (a string)", idx);
        if (!json_is_string(c)) {
            /* content: 42 or content: null is not a template */
            return err_at(s, c ? where_member(s, m, "content") : mat, "message %d (%s) needs a content string", idx,
                          json_string_value(role));
        }
        char what[128];
        snprintf(what, sizeof what, "message %d (%.64s): ", idx, json_string_value(role));
        scalar_at sa = { .node = c };
        if (!yjson_scalar_span(s->doc, c, &sa.span))
            sa.node = NULL;
        err_code r = check_template(s, json_string_value(c), json_string_length(c), locate_scalar, &sa, what);
        if (r)
            return r;
    }
    *out = json_incref((json_t *)n);
    return ERR_OK;
}

/* Reads the root mapping of a YAML file or front matter into f. md says
 * which keys are allowed. *template_node: the template scalar (text). */
static err_code read_root(src *s, const json_t *root, bool md, prompt_file *f, const json_t **template_node)
{
    const json_t *vals[K__COUNT] = { 0 };
    err_code r;
    *template_node = NULL;
    if (root && !json_is_null(root)) {
        if (!json_is_object(root))
            return err_at(s, where_node(s, root), "%s must be a mapping of keys (name, type, %sconfig, labels, message)",
                          md ? "the front matter" : "a prompt file", md ? "" : "template or messages, ");
        const char *key;
        size_t klen;
        json_t *v;
        json_object_keylen_foreach((json_t *)root, key, klen, v) {
            int which = -1;
            for (int i = 0; i < K__COUNT; i++)
                if (strlen(prompt_keys[i].key) == klen && strcmp(prompt_keys[i].key, key) == 0)
                    which = i;
            if (which < 0 || (md && !prompt_keys[which].in_md)) {
                char show[80];
                size_t n = 0;
                for (size_t i = 0; i < klen && n < 60; i++)
                    show[n++] = (key[i] >= 0x20 && key[i] < 0x7f) ? key[i] : '?';
                show[n] = '\0';
                size_t at = where_key(s, root, key);
                if (which >= 0)
                    return err_at(s, at, "'%s' is not allowed in Markdown front matter: the body is the template",
                                  show);
                return err_at(s, at, "unknown key '%s' (the keys are name, type, %sconfig, labels, message)", show,
                              md ? "" : "template, messages, ");
            }
            vals[which] = v;
        }
    }
    if (vals[K_NAME]) {
        free(f->name);
        f->name = NULL;
        size_t at = where_member(s, root, "name");
        if ((r = scalar_text(s, vals[K_NAME], at, "name", false, &f->name)))
            return r;
        query_error qe;
        if (!prompt_name_valid(f->name, &qe))
            return err_at(s, at, "%s", qe.message);
    }
    bool chat = vals[K_MESSAGES] != NULL;
    if (vals[K_TYPE]) {
        char *t = NULL;
        size_t at = where_member(s, root, "type");
        if ((r = scalar_text(s, vals[K_TYPE], at, "type", false, &t)))
            return r;
        bool ok = strcmp(t, "text") == 0 || strcmp(t, "chat") == 0;
        chat = strcmp(t, "chat") == 0;
        free(t);
        if (!ok)
            return err_at(s, at, "'type' must be text or chat");
        if (md && chat)
            return err_at(s, at, "a Markdown prompt is a text prompt (chat prompts are YAML files)");
    }
    f->type = chat ? PROMPT_CHAT : PROMPT_TEXT;
    if (chat) {
        if (vals[K_TEMPLATE])
            return err_at(s, where_member(s, root, "template"), "a chat prompt has messages, not a template");
        if (!vals[K_MESSAGES])
            return err_at(s, s->ybase, "a chat prompt needs 'messages'");
        if ((r = read_messages(s, vals[K_MESSAGES], where_member(s, root, "messages"), &f->messages)))
            return r;
    } else if (!md) {
        if (!vals[K_TEMPLATE])
            return err_at(s, s->ybase, "a prompt file needs 'template' (text) or 'messages' (chat)");
        if ((r = scalar_text(s, vals[K_TEMPLATE], where_member(s, root, "template"), "template", false,
                             &f->template)))
            return r;
        if (json_is_string(vals[K_TEMPLATE]))
            *template_node = vals[K_TEMPLATE];
    }
    if (vals[K_CONFIG] && !json_is_null(vals[K_CONFIG])) {
        if (!json_is_object(vals[K_CONFIG]))
            return err_at(s, where_member(s, root, "config"), "'config' must be a mapping");
        json_decref(f->config);
        f->config = json_deep_copy(vals[K_CONFIG]);
        if (!f->config)
            return ferr(s->e, s->path, 0, 0, "out of memory");
    }
    if (vals[K_LABELS]) {
        const json_t *l = vals[K_LABELS];
        if (!json_is_array(l))
            return err_at(s, where_member(s, root, "labels"), "'labels' must be a list of labels");
        size_t n = json_array_size(l);
        if (n > LABELS_MAX)
            return err_at(s, where_member(s, root, "labels"), "at most %d labels", LABELS_MAX);
        f->labels = calloc(n ? n : 1, sizeof *f->labels);
        if (!f->labels)
            return ferr(s->e, s->path, 0, 0, "out of memory");
        for (size_t i = 0; i < n; i++) {
            char *label = NULL;
            size_t at = where_item(s, l, i);
            if ((r = scalar_text(s, json_array_get(l, i), at, "labels", false, &label)))
                return r;
            f->labels[f->nlabels++] = label;
            query_error qe;
            if (!prompt_label_valid(label, &qe))
                return err_at(s, at, "%s", qe.message);
            if (strcmp(label, "latest") == 0)
                return err_at(s, at, "the label 'latest' always points at the newest version and cannot be set");
        }
    }
    if (vals[K_MESSAGE] &&
        (r = scalar_text(s, vals[K_MESSAGE], where_member(s, root, "message"), "message", true, &f->message)))
        return r;
    return ERR_OK;
}

/* Parses the YAML at s->ybase..+ylen (one document at most) with yjson
 * and reads it; the template (if any) is checked against its position. */
static err_code parse_yaml(src *s, bool md, prompt_file *f)
{
    yjson_opts o = { .max_depth = YAML_DEPTH_MAX, .max_nodes = YAML_NODES_MAX, .backend = YJSON_YAML };
    yjson_error ye;
    yjson_doc *doc = yjson_parse_string(s->text + s->ybase, s->ylen, &o, &ye);
    if (!doc) {
        size_t off = ye.line > 0 ? index_offset(s, ye.index) : s->ybase;
        return err_at(s, off, "%s", ye.msg);
    }
    s->doc = doc;
    const json_t *tnode = NULL;
    err_code r = read_root(s, yjson_root(doc), md, f, &tnode);
    if (!r && tnode) {
        scalar_at sa = { .node = tnode };
        if (!yjson_scalar_span(doc, tnode, &sa.span))
            sa.node = NULL;
        r = check_template(s, f->template, strlen(f->template), locate_scalar, &sa, "");
    }
    s->doc = NULL;
    yjson_free(doc);
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
    if ((!md || front) && (r = parse_yaml(&s, md, out)))
        goto out;
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

static bool word_is(const char *s, size_t n, const char *const *words)
{
    for (; *words; words++)
        if (strlen(*words) == n && memcmp(*words, s, n) == 0)
            return true;
    return false;
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
    /* a real: the shortest of 15 to 17 digits that reads back as the same
     * double (0.2 stays 0.2; 1111111111111111111111111111111111112.5 does
     * not become 1.11111111111111e36) */
    char *s = NULL;
    for (int prec = json_is_real(v) ? 15 : 17; prec <= 17; prec++) {
        free(s);
        if (!(s = json_dumps(v, JSON_ENCODE_ANY | JSON_REAL_PRECISION(prec))))
            return ERR_NOMEM;
        if (strtod(s, NULL) == json_real_value(v))
            break;
    }
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
