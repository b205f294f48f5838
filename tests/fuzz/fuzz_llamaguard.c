/*
 * fuzz_llamaguard.c - libFuzzer driver for the Llama Guard verdict parser
 * and the harm category helpers (src/guard/content.c).
 *
 * The input, in an exact-size heap buffer, is a classifier answer. The
 * driver aborts when:
 *  - a parse that succeeds says "safe" with categories, or the trimmed
 *    input does not start with "safe"/"unsafe" (any case);
 *  - the canonical rendering of an accepted verdict ("unsafe\nS1,S4")
 *    does not parse back to the same verdict;
 *  - a failed parse leaves anything but the zero verdict (never "safe" by
 *    accident: callers must see the error);
 *  - applying the default policy gives findings outside [0, len), more
 *    than one per category, or rule names that are not category names;
 *  - guard_harm_category_parse on the input (as a C string) returns a
 *    number outside 0..14, or a name that does not parse back.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include "guard/content.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *p = malloc(size ? size : 1);
    memcpy(p, data, size);
    guard_harm_verdict v = { true, 0xFFFF };
    err_code e = guard_llamaguard_parse(p, size, &v);
    if (e != ERR_OK) {
        if (e != ERR_PARSE || v.unsafe || v.categories)
            abort();
    } else {
        size_t a = 0;
        while (a < size && (p[a] == ' ' || p[a] == '\t' || p[a] == '\r' || p[a] == '\n'))
            a++;
        bool starts_unsafe = size - a >= 6 && strncasecmp(p + a, "unsafe", 6) == 0;
        bool starts_safe = size - a >= 4 && strncasecmp(p + a, "safe", 4) == 0;
        if ((!v.unsafe && (v.categories || !starts_safe)) || (v.unsafe && !starts_unsafe) ||
            (v.categories >> GUARD_HARM_CATEGORIES))
            abort();
        char canon[128];
        size_t n = (size_t)snprintf(canon, sizeof canon, "%s", v.unsafe ? "unsafe" : "safe");
        for (int i = 1; i <= GUARD_HARM_CATEGORIES; i++)
            if (v.categories & (1u << (i - 1)))
                n += (size_t)snprintf(canon + n, sizeof canon - n, "%sS%d", n == 6 ? "\n" : ",", i);
        guard_harm_verdict w;
        if (guard_llamaguard_parse(canon, n, &w) != ERR_OK || w.unsafe != v.unsafe || w.categories != v.categories)
            abort();
        guard_harm_policy pol;
        guard_harm_policy_default(&pol);
        guard_findings f = { 0 };
        if (guard_harm_apply(&pol, &v, size, &f) != ERR_OK || f.n > GUARD_HARM_CATEGORIES)
            abort();
        for (size_t i = 0; i < f.n; i++) {
            if (f.v[i].type != GT_HARM || f.v[i].start != 0 || f.v[i].len != size ||
                (!guard_harm_category_parse(f.v[i].rule) && strcmp(f.v[i].rule, "unspecified") != 0))
                abort();
            for (size_t j = 0; j < i; j++)
                if (strcmp(f.v[i].rule, f.v[j].rule) == 0)
                    abort();
        }
        if (v.unsafe != (f.n > 0))
            abort();
        guard_findings_free(&f);
    }
    char *s = malloc(size + 1);
    memcpy(s, data, size);
    s[size] = '\0';
    int c = guard_harm_category_parse(s);
    if (c < 0 || c > GUARD_HARM_CATEGORIES || (c && guard_harm_category_parse(guard_harm_category_name(c)) != c))
        abort();
    free(s);
    free(p);
    return 0;
}
