/*
 * yjson.h - YAML (and JSON) to jansson, with the position of every value.
 *
 * One reader for every YAML file the program takes (prompt files, eval
 * suites, their test files). It turns a document into jansson values the
 * way YAML 1.2's core schema reads it, and keeps a side table from each
 * value to the line and column it was written at, so that a caller that
 * finds a wrong value can say where it is:
 *
 *   - Plain scalars are typed: null, ~ and nothing are null; true/false
 *     (and True, TRUE...) booleans; decimal, 0x and 0o integers; decimal
 *     floats. An integer outside 64 bits or a float that overflows is an
 *     error, and so are .inf and .nan (JSON has no form for them): quote
 *     them to keep them as text. Everything else (dates included) is a
 *     string. Quoted and block scalars are always strings.
 *   - Tags: !!str (and the non-specific !) make a string; !!int, !!float,
 *     !!bool and !!null type the text and refuse what does not fit; !!map
 *     and !!seq are accepted; any other tag is an error.
 *   - Anchors and aliases are resolved by copying the anchored value (so a
 *     caller may change one copy freely). Every value made counts against
 *     max_nodes, an alias as many times as its value has nodes, so a
 *     "billion laughs" document stops early; an alias to the node that is
 *     still being defined (a recursive structure) is an error.
 *   - Merge keys (<<: *base, or a list of them) copy in the keys the
 *     mapping does not set itself; the first merged mapping wins.
 *   - A key written twice in one mapping is an error; keys are scalars.
 *   - Nesting deeper than max_depth containers is an error.
 *   - Only one document: a second one is an error.
 *
 * Positions: line and column are 1-based and count characters (libyaml's
 * marks), the column of a value being where it starts (its tag or anchor
 * when it has one). jansson shares null, true and false between all uses,
 * so those have no position of their own: ask for the position of the
 * member or item that holds them (yjson_member_pos, yjson_item_pos), which
 * works for any value. Values copied from an alias are placed at the alias.
 *
 * JSON: a document whose first character is '{' or '[' is first read by a
 * fast JSON tokenizer (several times faster than libyaml); if it is not
 * strict JSON after all, libyaml reads it from the start. Both give the
 * same values and positions. backend forces one or the other.
 *
 * Streaming: yjson_stream reads the items of one big list (the top-level
 * list, or the list under one top-level key) one at a time from a FILE, so
 * a 100,000-item file never sits in memory; other top-level keys are
 * skipped without being built, except for the anchors they define, which
 * later items may use (anchors are kept, bounded by max_anchor_nodes).
 *
 * Errors carry no file name (the caller knows it and prefixes it): line
 * and column (0 when unknown) and a message.
 */
#ifndef GENAIOPS_YJSON_H
#define GENAIOPS_YJSON_H

#include <stdio.h>
#include <jansson.h>
#include "common.h"

#define YJSON_DEPTH_DEFAULT 64
#define YJSON_NODES_DEFAULT 1000000
#define YJSON_ANCHOR_NODES_DEFAULT 100000
#define YJSON_SCALAR_DEFAULT (16u << 20)

typedef enum yjson_backend {
    YJSON_AUTO = 0,    /* JSON tokenizer when the text starts with '{' or '[' and is JSON, else libyaml */
    YJSON_YAML,        /* libyaml only */
    YJSON_JSON,        /* JSON only (an error if the text is not JSON) */
} yjson_backend;

/* The scalar styles of yjson_span (libyaml's, in its order). */
typedef enum yjson_style {
    YJSON_ANY = 0, YJSON_PLAIN, YJSON_SINGLE, YJSON_DOUBLE, YJSON_LITERAL, YJSON_FOLDED,
} yjson_style;

/* An event of a value that yjson_parse_* skipped (opts.skip_key), for a
 * caller that wants to look at it without building it (e.g. count items).
 * value/len: a scalar's text or an alias's name, valid during the call.
 * depth: 0 for the skipped value itself, 1 for its items, ... YJ_RESET
 * says "forget what you saw": the JSON attempt failed and libyaml starts
 * over. An anchored value inside the skipped one is built (for later
 * aliases) and reported as one event with `anchored` set. */
typedef enum yjson_evtype {
    YJ_SCALAR, YJ_ALIAS, YJ_SEQ_START, YJ_SEQ_END, YJ_MAP_START, YJ_MAP_END, YJ_RESET,
} yjson_evtype;

typedef struct yjson_event {
    yjson_evtype type;
    const char *value;
    size_t len;
    bool plain;         /* a plain untagged scalar (typed by the core schema) */
    bool tagged;        /* the value has an explicit tag (!!str, !!int...) */
    bool anchored;      /* this value had an anchor (it was built and is not walked) */
    int depth;
    int line, col;
} yjson_event;

typedef void (*yjson_skip_fn)(void *ctx, const yjson_event *ev);

typedef struct yjson_opts {
    int max_depth;            /* nested containers; 0 = YJSON_DEPTH_DEFAULT */
    size_t max_nodes;         /* values made, per document or per streamed item; 0 = default */
    size_t max_anchor_nodes;  /* streaming: nodes held by anchors; 0 = default */
    size_t max_scalar;        /* bytes of one scalar; 0 = default */
    yjson_backend backend;
    const char *skip_key;     /* yjson_parse_*: a top-level key whose value is not built */
    yjson_skip_fn on_skip;    /* sees the skipped value's events (may be NULL) */
    void *skip_ctx;
} yjson_opts;

typedef struct yjson_error {
    int line, col;            /* 1-based; 0 when unknown */
    size_t index;             /* character offset of the position in the text */
    char msg[256];
} yjson_error;

typedef struct yjson_doc yjson_doc;

/* Parses text[0..len) (one document). Returns a new doc (free with
 * yjson_free) or NULL with e set. opts may be NULL (defaults). An empty
 * text gives a null root. */
yjson_doc *yjson_parse_string(const char *text, size_t len, const yjson_opts *opts, yjson_error *e);
/* The same reading f from its current position to the end; f is not
 * closed. With YJSON_AUTO, f must be seekable (for the libyaml retry). */
yjson_doc *yjson_parse_file(FILE *f, const yjson_opts *opts, yjson_error *e);
/* The root value, owned by the doc (json_incref it to keep it longer; its
 * positions go with the doc). */
json_t *yjson_root(const yjson_doc *d);
/* Which reader parsed it (YJSON_YAML or YJSON_JSON). */
yjson_backend yjson_doc_backend(const yjson_doc *d);
void yjson_free(yjson_doc *d);

/* Where a value starts. False for null/true/false (shared by jansson) and
 * for values the doc did not make. */
bool yjson_pos(const yjson_doc *d, const json_t *node, int *line, int *col);
/* Where the value of obj's member `key` starts / where the key is written. */
bool yjson_member_pos(const yjson_doc *d, const json_t *obj, const char *key, int *line, int *col);
bool yjson_key_pos(const yjson_doc *d, const json_t *obj, const char *key, int *line, int *col);
/* Where item i of array arr starts. */
bool yjson_item_pos(const yjson_doc *d, const json_t *arr, size_t i, int *line, int *col);

/* A string's source extent, for mapping an offset inside its value back to
 * the text: character indexes of its first and one-past-last characters
 * (quotes and block indicators included) and its style. */
typedef struct yjson_span {
    size_t start, end;
    yjson_style style;
} yjson_span;
bool yjson_scalar_span(const yjson_doc *d, const json_t *node, yjson_span *out);

/* Would a plain (unquoted, untagged) scalar with this text be a string? */
bool yjson_plain_is_string(const char *v, size_t len);

/* ---- streaming ---- */

typedef struct yjson_stream yjson_stream;

/* Opens a reader of the items of the list under top-level key `key` (or
 * of the top-level list when key is NULL; a top-level mapping is then one
 * item, an empty document none). f stays the caller's and must stay open
 * until yjson_stream_close. With YJSON_AUTO the whole file is first checked
 * as JSON (a fast pass without building) to choose the reader, so f must be
 * seekable. NULL with e set on error (including: key present but not a
 * list). A missing key gives a stream with no items. */
yjson_stream *yjson_stream_open(FILE *f, const char *key, const yjson_opts *opts, yjson_error *e);
/* 1 and a new value in *item (caller decrefs), 0 at the end, -1 on error
 * (e set; the stream is then done). Positions of the item just returned
 * are in yjson_stream_doc() until the next call. */
int yjson_stream_next(yjson_stream *s, json_t **item, yjson_error *e);
const yjson_doc *yjson_stream_doc(const yjson_stream *s);
yjson_backend yjson_stream_backend(const yjson_stream *s);
/* Line and column where the list itself starts (0 if none). */
void yjson_stream_list_pos(const yjson_stream *s, int *line, int *col);
void yjson_stream_close(yjson_stream *s);

#endif
