/*
 * template.h - the prompt template engine: a strict subset of mustache.
 *
 * Syntax: {{name}} and {{dotted.name}} substitute a variable (strings as they
 * are, numbers and booleans as JSON text, null as ""; objects and arrays are
 * an error at render time: "variable 'x' is an object"), {{{name}}} and
 * {{& name}} the same (there is no HTML escaping at all: prompts are not
 * HTML), {{#section}}...{{/section}} renders its body once per element of a
 * list, once for a truthy value (pushing objects onto the context stack),
 * not at all for false, null, "", 0 and [], {{^inverted}}...{{/inverted}}
 * renders when the section would not, {{! comment }} renders nothing,
 * {{> other/prompt}} includes another prompt (a partial, resolved through a
 * callback), {{.}} is the current element. Standalone tags (a section,
 * inverted, closing, comment or partial tag alone on its line) take their
 * line with them, as mustache does. Set-delimiter tags are not supported.
 *
 * Strict by default: rendering with variables that lack a name used
 * outside a section test fails and names every missing variable (sorted,
 * each once). A name missing in a {{#section}} or {{^inverted}} test is
 * false, not an error.
 *
 * Compile once, render many times: tpl_compile parses the text into a
 * flat op list (one allocation for ops and names); rendering walks it with
 * no allocation but the output buffer's growth.
 */
#ifndef GENAIOPS_TEMPLATE_H
#define GENAIOPS_TEMPLATE_H

#include <jansson.h>
#include "core/buf.h"
#include "core/common.h"
#include "core/err.h"
#include "core/jscan.h"

#define TPL_MAX_DEPTH 16          /* partials nested at most this deep */
#define TPL_MAX_SECTIONS 64       /* sections nested at most this deep */

typedef struct tpl tpl;

/* Where a template went wrong. line and col are 1-based (col counts bytes)
 * and refer to the template being compiled or rendered; for errors inside
 * a partial, `partial` names it and line/col are inside it. */
typedef struct tpl_error {
    int line, col;
    char partial[128];            /* "" when the error is in the template itself */
    char message[512];            /* e.g. "unclosed section 'items' (opened at 3:5)",
                                     "missing variables: customer.name, order_id" */
    char missing[1024];           /* render: the missing names, comma-separated; "" otherwise */
} tpl_error;

/* Parses src[0..len). ERR_OK with *out set, or ERR_PARSE with e filled
 * (line, column, message). src need not be NUL-terminated; invalid UTF-8
 * is refused (ERR_PARSE, with its position). The template keeps no
 * pointer into src. */
err_code tpl_compile(const char *src, size_t len, tpl **out, tpl_error *e);
void tpl_free(tpl *t);

/* Resolves a partial's name to a compiled template (owned by the resolver,
 * alive for the whole render), or NULL when there is no such prompt (the
 * render fails naming it). */
typedef const tpl *(*tpl_resolve_fn)(void *ud, const char *name, size_t len);

typedef struct tpl_opts {
    tpl_resolve_fn resolve;       /* NULL: any partial is an error */
    void *ud;
    bool lenient;                 /* missing variables render as "" instead of failing */
} tpl_opts;

/* Renders t with vars (a JSON object, or NULL for none) into out
 * (appending). ERR_OK, or ERR_INVAL with e filled: missing variables (all
 * of them), a partial that does not resolve, nesting deeper than
 * TPL_MAX_DEPTH, a partial cycle ("partial cycle: a -> b -> a"), an object
 * substituted as text; ERR_NOMEM / ERR_TOOBIG when out cannot grow (its
 * bound). On failure out may hold a partial result. opts may be NULL. */
err_code tpl_render(const tpl *t, const json_t *vars, const tpl_opts *opts, buf *out, tpl_error *e);

/* The same with the variables as a value in validated JSON text (an
 * object, or null for none), read in place with jscan: no tree is built,
 * strings are unescaped only when they hold escapes. Renders exactly what
 * tpl_render renders for the same JSON parsed by jansson. For the gateway,
 * whose request bytes are already validated. */
err_code tpl_render_text(const tpl *t, jval vars, const tpl_opts *opts, buf *out, tpl_error *e);

/* The top-level variable names t uses (substitutions and section tests,
 * not the names inside sections that come from the section's element), as
 * a JSON array of strings, sorted, each once; and the partials it names.
 * For the registry and the console. NULL on out of memory. */
json_t *tpl_variables(const tpl *t);
json_t *tpl_partials(const tpl *t);

#endif
