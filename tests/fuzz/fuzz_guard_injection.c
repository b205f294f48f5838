/*
 * fuzz_guard_injection.c - libFuzzer driver for the injection detector and
 * the other text scans of src/guard/content.c (leakage, deny/allow lists,
 * topics, size, JSON Schema answers).
 *
 * The input, copied to an exact-size heap buffer so ASan sees any read past
 * its end, is the text. The driver aborts when:
 *  - a finding lies outside the text, is empty, has the wrong type, a score
 *    outside (0, 1] or no rule; two findings of one injection rule overlap;
 *  - the injection score is not in [0, 1], is below the score of its own
 *    findings, or differs between two scans of the same bytes;
 *  - leakage (the first half of the input as the system prompt, the second
 *    as the answer) reports a run outside the answer, longer than the
 *    prompt, or a coverage outside [0, 1]; the prompt against itself finds
 *    no run although it has 4+ words;
 *  - a deny-list or topic finding lies outside the text, or a size count
 *    is off (a text of n bytes has 1..n characters when n > 0).
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include "eval/jschema.h"
#include "guard/content.h"
#include "guard/injection.h"

static void check_findings(const guard_findings *f, size_t len, int type)
{
    for (size_t i = 0; i < f->n; i++) {
        const guard_finding *x = &f->v[i];
        if ((int)x->type != type || (size_t)x->start + x->len > len || !x->rule || !(x->score > 0.0f) ||
            x->score > 1.0f)
            abort();
        if (x->len == 0 && type != GT_SIZE && type != GT_SCHEMA && type != GT_TOPIC && type != GT_LEAKAGE)
            abort();
    }
}

static void fuzz_injection(const char *p, size_t n, unsigned flags)
{
    guard_findings f = { .max = 256 }, g = { .max = 256 };
    float s1 = -1, s2 = -1;
    if (guard_scan_injection(p, n, flags, &f, &s1) != ERR_OK || guard_scan_injection(p, n, flags, &g, &s2) != ERR_OK)
        abort();
    if (!(s1 >= 0.0f && s1 <= 1.0f) || s1 != s2 || f.n != g.n)
        abort();
    check_findings(&f, n, GT_INJECTION);
    for (size_t i = 0; i < f.n; i++) {
        if (f.v[i].start != g.v[i].start || f.v[i].len != g.v[i].len || f.v[i].rule != g.v[i].rule)
            abort();
        for (size_t j = 0; j < i; j++)
            if (strcmp(f.v[j].rule, f.v[i].rule) == 0 && f.v[j].start < f.v[i].start + f.v[i].len &&
                f.v[i].start < f.v[j].start + f.v[j].len)
                abort();
    }
    if (guard_injection_score(&f, 0) > s1 + 1e-5f)
        abort();
    guard_findings_free(&f);
    guard_findings_free(&g);
}

static void fuzz_leakage(const char *p, size_t n)
{
    size_t half = n / 2;
    guard_leak_index *ix = NULL;
    guard_leak_result r;
    guard_findings f = { 0 };
    if (guard_leak_index_new(p, half, &ix) != ERR_OK)
        abort();
    if (guard_scan_leakage(ix, p + half, n - half, 0, 0.0f, &r, &f) != ERR_OK)
        abort();
    if (r.run_start + r.run_len > n - half || r.longest_run > r.prompt_words || !(r.coverage >= 0.0f) ||
        r.coverage > 1.0f || r.score > 1.0f || (r.leaked != (f.n == 1)))
        abort();
    check_findings(&f, n - half, GT_LEAKAGE);
    if (guard_scan_leakage(ix, p, half, 1, 0.0f, &r, NULL) != ERR_OK)
        abort();
    if (r.prompt_words >= GUARD_LEAK_SHINGLE && r.longest_run < GUARD_LEAK_SHINGLE)
        abort();
    guard_leak_index_free(ix);
    guard_findings_free(&f);
}

static guard_list *list;
static guard_topics *topics;
static jschema *schema;

static void setup(void)
{
    static const char *const words[] = { "secret", "project falcon", "über", "ok", "a1" };
    char msg[128];
    list = guard_list_new();
    for (size_t i = 0; i < sizeof words / sizeof *words; i++)
        if (guard_list_add_word(list, words[i], strlen(words[i]), i == 3) != ERR_OK)
            abort();
    if (guard_list_add_regex(list, "(?i)\\bID-\\d+", 12, false, msg, sizeof msg) != ERR_OK ||
        guard_list_add_regex(list, "(a|b)*c", 7, false, msg, sizeof msg) != ERR_OK ||
        guard_list_add_regex(list, "x?", 2, true, msg, sizeof msg) != ERR_OK)
        abort();
    topics = guard_topics_new();
    static const char *const t1[] = { "invoice", "refund" }, *const t2[] = { "parcel", "tracking number" };
    if (guard_topics_add(topics, "billing", t1, 2) != ERR_OK || guard_topics_add(topics, "shipping", t2, 2) != ERR_OK)
        abort();
    json_t *s = json_loads("{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"string\",\"maxLength\":5}}}", 0,
                           NULL);
    if (!s || jschema_compile(s, &schema, msg, sizeof msg) != ERR_OK)
        abort();
    json_decref(s);
}

static void fuzz_content(const char *p, size_t n)
{
    guard_findings f = { .max = 512 };
    err_code e = guard_scan_list(list, p, n, &f);
    if (e != ERR_OK && e != ERR_TIMEOUT)
        abort();
    check_findings(&f, n, GT_DENIED);
    guard_findings_free(&f);
    int topic = 7;
    if (guard_scan_topics(topics, p, n, &topic, &f) != ERR_OK || topic < -1 || topic > 1 || f.n > 1)
        abort();
    check_findings(&f, n, GT_TOPIC);
    if (f.n == 1 && topic != -1)
        abort();
    guard_findings_free(&f);
    guard_size_limits lim = { 3, 2 };
    guard_size_result r;
    if (guard_scan_size(p, n, &lim, &r, &f) != ERR_OK || r.chars > n || (n && r.chars == 0) || r.tokens < 0)
        abort();
    check_findings(&f, n, GT_SIZE);
    if ((f.n >= 1) != (r.chars > 3 || r.tokens > 2))
        abort();
    guard_findings_free(&f);
    bool valid;
    char msg[128];
    if (guard_check_schema(schema, p, n, &valid, msg, sizeof msg, &f) != ERR_OK || (valid != (f.n == 0)))
        abort();
    check_findings(&f, n, GT_SCHEMA);
    guard_findings_free(&f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!list)
        setup();
    char *p = malloc(size ? size : 1);
    memcpy(p, data, size);
    fuzz_injection(p, size, 0);
    if (size <= 4096)
        fuzz_injection(p, size, GUARD_INJ_NO_BASE64 | GUARD_INJ_NO_MARKUP);
    fuzz_leakage(p, size);
    fuzz_content(p, size);
    free(p);
    return 0;
}
