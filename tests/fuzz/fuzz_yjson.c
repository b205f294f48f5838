/*
 * fuzz_yjson.c - libFuzzer driver for core/yjson.c (YAML/JSON to jansson
 * with positions, whole documents and streamed lists).
 *
 * The input is one document. Besides "no crash, no leak" the driver
 * checks the contract and aborts when it is broken:
 *  - an error has a message and a line/column inside the text (or 0:0;
 *    lines as libyaml counts them: CR alone ends a line too);
 *  - every position yjson hands back for the document lies inside it;
 *  - the JSON tokenizer and libyaml agree on every document both accept;
 *  - parsing with skip_key "tests" gives the same document less `tests`;
 *  - streaming the top-level list (from a FILE) gives exactly the items of
 *    the whole parse, and streaming `tests` the items of root.tests.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/yjson.h"

static size_t nlines;

static void check_pos(bool ok, int line, int col)
{
    if (!ok)
        return;
    if (line < 1 || col < 1 || (size_t)line > nlines + 1)
        abort();
}

/* Asks for the position of everything in v. */
static void walk(const yjson_doc *d, const json_t *v, int depth)
{
    int line, col;
    if (depth > 200)
        abort();
    check_pos(yjson_pos(d, v, &line, &col), line, col);
    yjson_span sp;
    if (yjson_scalar_span(d, v, &sp) && sp.end < sp.start)
        abort();
    if (json_is_object(v)) {
        const char *k;
        json_t *x;
        json_object_foreach((json_t *)v, k, x) {
            check_pos(yjson_member_pos(d, v, k, &line, &col), line, col);
            check_pos(yjson_key_pos(d, v, k, &line, &col), line, col);
            walk(d, x, depth + 1);
        }
    } else if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++) {
            check_pos(yjson_item_pos(d, v, i, &line, &col), line, col);
            walk(d, json_array_get(v, i), depth + 1);
        }
    }
}

static void check_error(const yjson_error *e)
{
    if (!e->msg[0])
        abort();
    if (e->line < 0 || e->col < 0 || (size_t)e->line > nlines + 1 || (e->line == 0) != (e->col == 0))
        abort();
}

static yjson_doc *parse(const char *text, size_t len, yjson_backend be, const char *skip)
{
    yjson_opts o = { .backend = be, .skip_key = skip };
    yjson_error e;
    yjson_doc *d = yjson_parse_string(text, len, &o, &e);
    if (!d)
        check_error(&e);
    else
        walk(d, yjson_root(d), 0);
    return d;
}

/* Streams f (list under key, or the top-level list) and checks the items
 * against want (the list the whole parse saw; NULL: not known). */
static void stream(FILE *f, const char *key, const json_t *want)
{
    rewind(f);
    yjson_opts o = { .max_anchor_nodes = YJSON_NODES_DEFAULT };
    yjson_error e;
    yjson_stream *s = yjson_stream_open(f, key, &o, &e);
    if (!s) {
        check_error(&e);
        if (want)
            abort();
        return;
    }
    json_t *it;
    int r;
    size_t i = 0;
    while ((r = yjson_stream_next(s, &it, &e)) == 1) {
        walk(yjson_stream_doc(s), it, 0);
        if (want && (!json_is_array(want) || !json_equal(it, json_array_get(want, i))))
            abort();
        json_decref(it);
        i++;
    }
    if (r < 0) {
        check_error(&e);
        if (want)
            abort();
    } else if (want && i != json_array_size(want)) {
        abort();
    }
    yjson_stream_close(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size ? size : 1);
    if (!text)
        return 0;
    if (size)
        memcpy(text, data, size);
    /* an upper bound of the lines libyaml sees: LF, CR, NEL, LS and PS each break a line */
    nlines = 1;
    for (size_t i = 0; i < size; i++)
        nlines += text[i] == '\n' || text[i] == '\r' || ((unsigned char)text[i] == 0x85 && i) ||
                  ((unsigned char)text[i] == 0xe2 && i + 1 < size && (unsigned char)text[i + 1] == 0x80);
    yjson_doc *a = parse(text, size, YJSON_AUTO, NULL);
    yjson_doc *y = parse(text, size, YJSON_YAML, NULL);
    yjson_doc *j = parse(text, size, YJSON_JSON, NULL);
    if (y && j && !json_equal(yjson_root(y), yjson_root(j)))
        abort();
    if (a && y && !json_equal(yjson_root(a), yjson_root(y)))
        abort();
    if (j && !a && (json_is_object(yjson_root(j)) || json_is_array(yjson_root(j))))
        abort(); /* a JSON document the JSON reader takes, AUTO takes (blank text with tabs aside) */
    yjson_doc *k = parse(text, size, YJSON_AUTO, "tests");
    if (a && k) {
        json_t *less = json_deep_copy(yjson_root(a));
        if (json_is_object(less))
            json_object_del(less, "tests");
        if (!json_equal(less, yjson_root(k)))
            abort();
        json_decref(less);
    }
    FILE *f = fmemopen(text, size ? size : 1, "r");
    if (f && size) {
        const json_t *root = a ? yjson_root(a) : NULL;
        const json_t *list = json_is_array(root) ? root : NULL;
        stream(f, NULL, list);
        const json_t *tests = json_is_object(root) ? json_object_get(root, "tests") : NULL;
        stream(f, "tests", json_is_array(tests) ? tests : NULL);
    }
    if (f)
        fclose(f);
    yjson_free(a);
    yjson_free(y);
    yjson_free(j);
    yjson_free(k);
    free(text);
    return 0;
}
