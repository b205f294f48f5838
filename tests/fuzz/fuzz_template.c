/*
 * fuzz_template.c - libFuzzer driver for the template engine
 * (src/prompt/template.c).
 *
 * The input, copied to an exact-size heap buffer so ASan sees any read past
 * its end, is a template. It is compiled; a failure must come with a
 * position inside the input and a message. A compiled template is asked
 * for its variables and partials (sorted, unique arrays of strings) and
 * rendered, strict and lenient, with a fixed set of variables and a
 * resolver that maps every partial name to the template itself (so
 * partials recurse: cycles and the depth limit), except names starting
 * with "none", which do not resolve. The driver aborts when a render
 * fails without a message, a strict failure over missing variables has no
 * list (or a lenient render reports one), an error position is below 1,
 * the output passes its bound, or a template without "{{" does not render
 * as itself. Each render is repeated with the same variables read in place
 * from their JSON text (tpl_render_text): a different result, output or
 * message aborts (a differential test of the two context back ends).
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include "prompt/template.h"

static json_t *vars;
static const char vars_text[] =
    "{\"name\":\"Ada\",\"n\":42,\"x\":0.1,\"t\":true,\"f\":false,\"z\":null,\"s\":\"\","
    "\"o\":{\"a\":{\"b\":\"deep\"},\"l\":[1,2]},\"l\":[{\"name\":\"x\"},{\"o\":{}},3],"
    "\"e\":[],\"nl\":\"line\\nline\",\"u\":\"caf\\u00e9 \\\"q\\\"\",\"r\":2.50,\"big\":1e21}";

static const tpl *resolve_self(void *ud, const char *name, size_t len)
{
    if (len >= 4 && memcmp(name, "none", 4) == 0)
        return NULL;
    return ud;
}

static void check_names(json_t *a)
{
    if (!a || !json_is_array(a))
        abort();
    for (size_t i = 0; i < json_array_size(a); i++) {
        json_t *s = json_array_get(a, i);
        if (!json_is_string(s) || json_string_length(s) == 0)
            abort();
        if (i && strcmp(json_string_value(json_array_get(a, i - 1)), json_string_value(s)) >= 0)
            abort();
    }
    json_decref(a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!vars) {
        vars = json_loads(vars_text, 0, NULL);
        if (!vars)
            abort();
    }
    char *src = malloc(size ? size : 1);
    if (!src)
        return 0;
    if (size)
        memcpy(src, data, size);
    tpl *t = NULL;
    tpl_error e;
    err_code rc = tpl_compile(src, size, &t, &e);
    if (rc) {
        if (rc != ERR_PARSE || t || e.line < 1 || e.col < 1 || !e.message[0])
            abort();
        size_t lines = 1;
        for (size_t i = 0; i < size; i++)
            lines += src[i] == '\n';
        if ((size_t)e.line > lines)
            abort();
        free(src);
        return 0;
    }
    check_names(tpl_variables(t));
    check_names(tpl_partials(t));

    buf b, b2;
    buf_init(&b, 1 << 16);
    buf_init(&b2, 1 << 16);
    jval vt = jscan_root(vars_text, sizeof vars_text - 1);
    for (int lenient = 0; lenient <= 1; lenient++) {
        tpl_opts o = { .resolve = resolve_self, .ud = t, .lenient = lenient };
        buf_reset(&b);
        rc = tpl_render(t, vars, &o, &b, &e);
        if (b.len > b.max)
            abort();
        tpl_error e2;
        buf_reset(&b2);
        err_code rc2 = tpl_render_text(t, vt, &o, &b2, &e2);
        if (rc2 != rc || b2.len != b.len || (b.len && memcmp(b.p, b2.p, b.len) != 0) ||
            strcmp(e.message, e2.message) != 0 || strcmp(e.missing, e2.missing) != 0)
            abort();
        if (rc == ERR_OK) {
            if (e.message[0] || e.missing[0])
                abort();
            if (!memmem(src, size, "{{", 2) && (b.len != size || (size && memcmp(b.p, src, size) != 0)))
                abort();
            continue;
        }
        if ((rc != ERR_INVAL && rc != ERR_TOOBIG) || !e.message[0] || e.line < 1 || e.col < 1)
            abort();
        bool missing = strncmp(e.message, "missing variables: ", 19) == 0;
        if (missing != (e.missing[0] != '\0'))
            abort();
        if (missing && lenient)
            abort();
    }
    buf_free(&b);
    buf_free(&b2);
    tpl_free(t);
    free(src);
    return 0;
}
