/*
 * jscan.h - a zero-allocation validating JSON scanner for the request hot
 * path.
 *
 * jscan_validate() checks a whole document in one pass without building a
 * tree (jscan_parse() does the same and also hands back the top-level
 * members); afterwards the other functions walk the caller's bytes to find
 * members, iterate containers and read strings and integers. Nothing here
 * allocates (but jscan_has_duplicate_keys on objects of over 1024 members):
 * every jval is a view (pointer, length) into the caller's text,
 * which must outlive the views. The accept/reject decision is jansson's
 * json_loadb() with JSON_DECODE_ANY, except in two corners where jscan is
 * stricter (JSCAN_MAX_DEPTH below, and a NUL byte jansson 2.14 drops after
 * a number), so a body the gateway accepts is one the translators can
 * load. See docs/internals/jscan.md.
 */
#ifndef GENAIOPS_JSCAN_H
#define GENAIOPS_JSCAN_H

#include "common.h"

/* The deepest container nesting jscan_validate() accepts whatever max_depth
 * says. jansson allows 2048 levels of values (the top-level value being
 * level 1), so the values inside 2047 nested containers are still within
 * its limit; 2048 nested arrays with nothing in the innermost one are the
 * only thing jansson takes and jscan does not. */
#define JSCAN_MAX_DEPTH 2047

typedef enum jtype { J_NONE, J_OBJECT, J_ARRAY, J_STRING, J_NUMBER, J_TRUE, J_FALSE, J_NULL } jtype;

/* A value's raw span in the caller's text: quotes included for strings,
 * brackets for containers. J_NONE means "no value" (p NULL, len 0). */
typedef struct jval {
    jtype type;
    const char *p;
    size_t len;
} jval;

typedef struct jscan_error {
    size_t offset;    /* byte offset of the offending byte (len at end of input) */
    int line, column; /* 1-based; column counted in bytes */
    char message[96];
} jscan_error;

/* Validates text[0..len) as exactly one JSON value (RFC 8259) with optional
 * surrounding whitespace (space, tab, CR, LF). Refused: trailing commas,
 * comments, leading zeros, control characters in strings, bad escapes and
 * lone surrogates, \u0000 (as jansson without JSON_ALLOW_NUL), invalid
 * UTF-8 (overlongs, surrogates, above U+10FFFF), integers outside 64 bits
 * and numbers that overflow a double (as jansson), nesting deeper than
 * max_depth containers (clamped to 1..JSCAN_MAX_DEPTH). Returns true, or
 * false with e (may be NULL) describing the first error. */
bool jscan_validate(const char *text, size_t len, int max_depth, jscan_error *e);

/* A member of an object (key is its J_STRING span) or an element of an
 * array (key is J_NONE). */
typedef struct jscan_member {
    jval key, val;
} jscan_member;

/* jscan_validate that also hands back, from the same single pass, the
 * top-level value in *root and, when that is an object or an array, its
 * members or elements in order: the first cap go to top[], and *count gets
 * how many there are (more than cap: the rest were not stored; use the
 * iterator). The hot path's way to read a request body without walking it
 * twice. On failure *root is J_NONE and *count 0. root, top (with cap 0)
 * and count may be NULL. */
bool jscan_parse(const char *text, size_t len, int max_depth, jval *root, jscan_member *top, size_t cap,
                 size_t *count, jscan_error *e);

/* The top-level value of a validated text: surrounding whitespace trimmed
 * and its type from the first byte. J_NONE for an empty text. */
jval jscan_root(const char *text, size_t len);

/* Finds member key (compared after unescaping, so "mo\u0064el" matches
 * "model") in an object span. When the key occurs more than once the LAST
 * occurrence is returned, as jansson and most parsers keep it; *dup (if
 * dup is non-NULL) says whether it did. Returns false, with *out J_NONE, if
 * absent or obj is not an object. Always walks the whole object. */
bool jscan_get(jval obj, const char *key, jval *out, bool *dup);

/* Iterates the members of an object or the elements of an array:
 *     jscan_iter it; jval k, v;
 *     jscan_iter_init(&it, obj);
 *     while (jscan_next(&it, &k, &v)) ...
 * key is the member name as a J_STRING span (escaped; use jscan_string_eq
 * or jscan_string on it), J_NONE for array elements; key may be NULL. A
 * value that is not a container yields nothing. On a span that was not
 * validated iteration stops early instead of reading past it. */
typedef struct jscan_iter { /* fields are private */
    const char *p, *end, *start;
    jtype type;
    size_t count;
} jscan_iter;
void jscan_iter_init(jscan_iter *it, jval v);
bool jscan_next(jscan_iter *it, jval *key, jval *val);

/* Which of names[0..n) equals the unescaped content of string v? Returns
 * its index, or -1 (also when v is not a string). One call instead of a
 * chain of jscan_string_eq: for picking members out of a body by key, or
 * checking a role against the allowed ones. NULL names are skipped. */
int jscan_match(jval v, const char *const *names, size_t n);

/* Copies a J_STRING's unescaped content (UTF-8) into dst, NUL-terminated;
 * cap counts the NUL. *len (may be NULL) gets the content length, also when
 * it does not fit. Returns false if v is not a string or the content does
 * not fit (dst is then "" when cap > 0). Validated strings hold no NUL. */
bool jscan_string(jval v, char *dst, size_t cap, size_t *len);

/* Does a J_STRING's unescaped content equal the C string s? No copy. */
bool jscan_string_eq(jval v, const char *s);

/* A J_NUMBER written as an integer (no fraction, no exponent: 2 but not
 * 2.0 or 2e0, as jansson tells integers from reals) in *out. Returns false
 * for anything else. */
bool jscan_int(jval v, long long *out);

/* Do two members of the object obj have the same (unescaped) key? Only
 * its own members, not those of nested objects: the one-level equivalent
 * of jansson's JSON_REJECT_DUPLICATES. Up to 32 members every pair is
 * compared; up to 1024 a hash table on the stack (32 KiB) takes one more
 * walk of the object. The only allocation in this module: beyond 1024
 * members the table (32-64 bytes a member) comes from malloc, and if that
 * fails - or the object is over 4 GiB - the answer is true, so a caller
 * refuses rather than passes an unchecked document. False for non-objects. */
bool jscan_has_duplicate_keys(jval obj);
/* The same for members from jscan_parse (or any array of key spans). */
bool jscan_duplicate_members(const jscan_member *m, size_t n);

/* Writes s[0..n) as a JSON string literal with quotes into dst: '"', '\\'
 * and control characters escaped, other bytes as they are, except that
 * invalid UTF-8 and NUL bytes become U+FFFD, so the literal always passes
 * jscan_validate(). Writes min(result, cap) bytes, no NUL terminator (dst
 * may be NULL when cap is 0); returns the full literal's length, so the
 * output is complete when the result is <= cap. */
size_t jscan_escape(char *dst, size_t cap, const char *s, size_t n);

/* The length of the longest prefix of s[0..n) that is valid UTF-8 (Unicode
 * table 3-7: no overlong forms, surrogates or code points past U+10FFFF),
 * i.e. the offset of the first bad byte, or n when all of it is valid. */
size_t jscan_utf8_prefix(const char *s, size_t n);

/* ---- walking text that was NOT validated ----------------------------------
 *
 * A forward cursor for reading a few members out of a document nobody
 * validated, in one pass: a provider's response, which the gateway forwards
 * as it came (src/observe/extract.c). It enters the containers the caller
 * asks for and passes every other value as the readers do (a string to its
 * closing quote, a container to its bracket), so the bytes inside what it
 * passes are not checked. Anything out of place where it steps (a missing
 * colon, comma or bracket, the end of the text) stops it: ok turns false
 * and every later call yields nothing. A caller keeps what it read only if
 * jscan_walk_done() then says the walk got to the end of the text, so a
 * truncated document yields nothing. The spans it hands out are safe to
 * give the readers above, which stay inside a span whatever it holds.
 *
 *     jscan_walk w; jval k, v;
 *     jscan_walk_init(&w, text, len);
 *     if (jscan_walk_enter(&w, '{'))
 *         for (size_t n = 0; jscan_walk_member(&w, n, &k); n++)
 *             if (JSCAN_WALK_KEY_IS(&w, k, "usage")) ... enter it, or
 *             else v = jscan_walk_value(&w);  (every member's value must be
 *                                              entered or passed)
 *     if (jscan_walk_done(&w)) ... keep what was read
 */
typedef struct jscan_walk {
    const char *lo, *p, *end;
    bool ok;      /* nothing out of place so far */
    bool key_esc; /* private: the last key has an escape in it */
} jscan_walk;

void jscan_walk_init(jscan_walk *w, const char *text, size_t len);
/* Enters the object ('{') or array ('[') at the cursor. Anything else is
 * passed over (false). */
bool jscan_walk_enter(jscan_walk *w, char open);
/* The next member of the object entered last: its key (the cursor is then
 * at its value, which the caller enters or passes), n being the number of
 * members seen so far. False at the closing brace, which it consumes. */
bool jscan_walk_member(jscan_walk *w, size_t n, jval *key);
/* The next element of the array entered last, as jscan_walk_member. */
bool jscan_walk_element(jscan_walk *w, size_t n);
/* The type of the value at the cursor, which stays there (J_NONE: none). */
jtype jscan_walk_peek(jscan_walk *w);
/* Passes the value at the cursor and returns its span (J_NONE, and the
 * walk stops, when no value starts there). */
jval jscan_walk_value(jscan_walk *w);
/* Did the walk get to the end of the text with nothing out of place? */
bool jscan_walk_done(jscan_walk *w);

/* Is key, just returned by jscan_walk_member, the n-byte name? Its raw
 * bytes, unless it has an escape in it ("mo\u0064el" is "model"). */
static inline bool jscan_walk_key_is(const jscan_walk *w, jval key, const char *name, size_t n)
{
    if (!w->key_esc)
        return key.len == n + 2 && memcmp(key.p + 1, name, n) == 0;
    return jscan_string_eq(key, name);
}
#define JSCAN_WALK_KEY_IS(w, key, lit) jscan_walk_key_is((w), (key), (lit), sizeof(lit) - 1)

#endif
