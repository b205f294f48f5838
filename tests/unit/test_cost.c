/*
 * test_cost.c - the pricing table and cost arithmetic (src/observe/cost.c).
 *
 * Golden cases in tests/data/cost/cases.txt (computed by hand from the
 * built-in table and tests/data/cost/pricing_test.json) check the lookup
 * order and exactly-once pricing; the built-in table is checked against
 * src/observe/pricing.json entry by entry (so the embedded copy is the
 * file, and every entry loads); corrupt and invalid files must be refused
 * with their position or the model and field at fault.
 */
#include <errno.h>
#include <float.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/buf.h"
#include "observe/cost.h"
#include "test.h"

static pricing *load_test_table(void)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/cost/pricing_test.json", test_data_dir());
    pricing *p = NULL;
    char err[256] = "";
    err_code e = pricing_load(path, &p, err, sizeof err);
    if (e != ERR_OK)
        test_fail(__FILE__, __LINE__, "loading %s: %s", path, err);
    return p;
}

/* "in=1e-6,out=2e-6" into *o (unset fields -1); false if malformed. */
static bool parse_override(const char *s, cfg_pricing *o)
{
    *o = (cfg_pricing){ -1, -1, -1, -1, -1 };
    while (*s) {
        const char *eq = strchr(s, '=');
        if (!eq)
            return false;
        size_t n = (size_t)(eq - s);
        char *end;
        errno = 0;
        double v = strtod(eq + 1, &end);
        if (errno || end == eq + 1 || (*end && *end != ','))
            return false;
        if (n == 2 && !memcmp(s, "in", 2))
            o->input_cost_per_token = v;
        else if (n == 3 && !memcmp(s, "out", 3))
            o->output_cost_per_token = v;
        else if (n == 2 && !memcmp(s, "cr", 2))
            o->cache_read_input_token_cost = v;
        else if (n == 2 && !memcmp(s, "cc", 2))
            o->cache_creation_input_token_cost = v;
        else if (n == 2 && !memcmp(s, "rs", 2))
            o->output_cost_per_reasoning_token = v;
        else
            return false;
        s = *end ? end + 1 : end;
    }
    return true;
}

TEST(cost_golden_cases)
{
    pricing *builtin = NULL, *test = load_test_table();
    char err[256] = "";
    CHECK_INT(pricing_load(NULL, &builtin, err, sizeof err), ERR_OK);
    char *text = test_read_data("cost/cases.txt", NULL);
    if (!text || !builtin || !test)
        goto out;
    int ncases = 0, lineno = 0;
    for (char *line = text, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        lineno++;
        while (*line == ' ')
            line++;
        if (*line == '\0' || *line == '#')
            continue;
        char table[16], ptype[32], model[256], ov[128], expect[64];
        cost_usage u;
        int n = sscanf(line, "%15s %31s %255s %lld %lld %lld %lld %lld %127s %63s", table, ptype,
                       model, &u.input, &u.output, &u.cache_read, &u.cache_creation, &u.reasoning,
                       ov, expect);
        if (n != 10) {
            test_fail(__FILE__, __LINE__, "cases.txt:%d: malformed line", lineno);
            continue;
        }
        cfg_pricing o;
        if (!parse_override(strcmp(ov, "-") ? ov : "", &o)) {
            test_fail(__FILE__, __LINE__, "cases.txt:%d: bad override %s", lineno, ov);
            continue;
        }
        const pricing *p = strcmp(table, "builtin") == 0 ? builtin : test;
        double usd = -12345;
        bool ok = pricing_cost(p, strcmp(ov, "-") ? &o : NULL, strcmp(ptype, "-") ? ptype : NULL,
                               model, &u, &usd);
        if (strcmp(expect, "none") == 0) {
            if (ok || usd != -12345)
                test_fail(__FILE__, __LINE__, "cases.txt:%d: %s priced at %.15g, expected no price",
                          lineno, model, usd);
        } else {
            double want = strtod(expect, NULL);
            if (!ok || fabs(usd - want) > 1e-12)
                test_fail(__FILE__, __LINE__, "cases.txt:%d: %s cost %s %.15g, expected %.15g",
                          lineno, model, ok ? "is" : "unknown", usd, want);
        }
        ncases++;
    }
    CHECK(ncases >= 50);
out:
    free(text);
    pricing_free(builtin);
    pricing_free(test);
}

/* The embedded table is pricing.json: every model in the file loads with
 * its prices, and the table says its date. */
TEST(cost_builtin_table_matches_file)
{
    pricing *p = NULL;
    char err[256] = "";
    CHECK_INT(pricing_load(NULL, &p, err, sizeof err), ERR_OK);
    CHECK_STR(err, "");
    if (!p)
        return;
    const char *src = pricing_source(p);
    /* "built-in (YYYY-MM-DD)" */
    CHECK(strncmp(src, "built-in (", 10) == 0 && strlen(src) == 21 && src[14] == '-' &&
          src[17] == '-' && src[20] == ')');

    char path[1024];
    snprintf(path, sizeof path, "%s/../../src/observe/pricing.json", test_data_dir());
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    CHECK(root != NULL);
    if (!root)
        goto out;
    char want_src[64];
    snprintf(want_src, sizeof want_src, "built-in (%s)",
             json_string_value(json_object_get(root, "_date")));
    CHECK_STR(src, want_src);
    size_t models = 0;
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val) {
        if (key[0] == '_' || !strcmp(key, "sample_spec"))
            continue;
        models++;
        double in = json_number_value(json_object_get(val, "input_cost_per_token"));
        double outp = json_number_value(json_object_get(val, "output_cost_per_token"));
        CHECK(json_is_number(json_object_get(val, "input_cost_per_token")));
        CHECK(json_is_number(json_object_get(val, "output_cost_per_token")));
        CHECK(json_is_string(json_object_get(val, "litellm_provider")));
        cost_usage u = { 1000, 1000, 0, 0, 0 };
        double usd = -1;
        if (!pricing_cost(p, NULL, NULL, key, &u, &usd) || fabs(usd - 1000 * (in + outp)) > 1e-15)
            test_fail(__FILE__, __LINE__, "built-in %s: %.15g", key, usd);
    }
    CHECK_INT(pricing_count(p), models);
    CHECK(models >= 20 && models <= 40);
    json_decref(root);
out:
    pricing_free(p);
}

TEST(cost_corrupt_files_name_the_position)
{
    static const struct {
        const char *file;
        err_code code;
        const char *msg; /* after "<path>" */
    } cases[] = {
        { "corrupt_comma.json", ERR_PARSE, ":3:5: '}' expected near '\"b\"'" },
        { "corrupt_number.json", ERR_PARSE, ":2:70: '}' expected near '.'" },
        { "corrupt_truncated.json", ERR_PARSE, ":5:0: string or '}' expected near end of file" },
        { "empty.json", ERR_PARSE, ":1:0: '[' or '{' expected near end of file" },
        { "bad_string_price.json", ERR_PARSE,
          ": \"bad\": input_cost_per_token must be a number from 0 to 1000 (USD per token)" },
        { "bad_negative_price.json", ERR_PARSE,
          ": \"bad\": output_cost_per_token must be a number from 0 to 1000 (USD per token)" },
        { "bad_huge_price.json", ERR_PARSE,
          ": \"bad\": input_cost_per_token must be a number from 0 to 1000 (USD per token)" },
        { "bad_entry.json", ERR_PARSE, ": \"bad\": a model's entry must be an object" },
        { "bad_toplevel.json", ERR_PARSE, ": the top level must be a JSON object of model names" },
        { "no-such-file.json", ERR_IO, ": cannot open the pricing file: No such file or directory" },
    };
    for (size_t i = 0; i < countof(cases); i++) {
        char path[1024], want[1400], err[512] = "";
        snprintf(path, sizeof path, "%s/cost/%s", test_data_dir(), cases[i].file);
        snprintf(want, sizeof want, "%s%s", path, cases[i].msg);
        pricing *p = (pricing *)&err; /* must be reset to NULL */
        err_code e = pricing_load(path, &p, err, sizeof err);
        CHECK_INT(e, cases[i].code);
        CHECK(p == NULL);
        CHECK_STR(err, want);
    }
}

TEST(cost_load_buf_and_limits)
{
    pricing *p = NULL;
    char err[128] = "";
    static const char ok[] = "{\"_date\":\"x\",\"m\":{\"input_cost_per_token\":1,\"output_cost_per_token\":2}}";
    CHECK_INT(pricing_load_buf("mem", ok, sizeof ok - 1, &p, err, sizeof err), ERR_OK);
    CHECK_STR(pricing_source(p), "mem"); /* only the built-in table shows its date */
    CHECK_INT(pricing_count(p), 1);
    pricing_free(p);

    /* not NUL-terminated: the length is what counts */
    CHECK_INT(pricing_load_buf("mem", ok, sizeof ok - 3, &p, err, sizeof err), ERR_PARSE);
    CHECK(p == NULL);
    CHECK(strncmp(err, "mem:1:", 6) == 0);
    /* an embedded NUL is refused */
    static const char nul[] = "{\"m\":{}}\0 ";
    CHECK_INT(pricing_load_buf("mem", nul, sizeof nul - 1, &p, err, sizeof err), ERR_PARSE);
    CHECK(p == NULL);
    /* no room for a message is fine; a tiny buffer is truncated, NUL-terminated */
    CHECK_INT(pricing_load_buf("mem", "[", 1, &p, NULL, 0), ERR_PARSE);
    CHECK_INT(pricing_load_buf("mem", "[", 1, &p, err, 4), ERR_PARSE);
    CHECK_STR(err, "mem");
    CHECK_INT(pricing_load_buf("mem", NULL, 3, &p, err, sizeof err), ERR_INVAL);
    /* an empty object is an empty table: nothing is priced */
    CHECK_INT(pricing_load_buf(NULL, "{}", 2, &p, err, sizeof err), ERR_OK);
    CHECK_INT(pricing_count(p), 0);
    cost_usage u = { 10, 10, 0, 0, 0 };
    double usd = -1;
    CHECK(!pricing_cost(p, NULL, "openai", "gpt-4o", &u, &usd));
    CHECK(usd == -1);
    pricing_free(p);
    pricing_free(NULL);
    CHECK_STR(pricing_source(NULL), "none");

    /* a directory is not a pricing file */
    CHECK(pricing_load(test_data_dir(), &p, err, sizeof err) != ERR_OK);
    CHECK(p == NULL);
}

/* A table with many models: every one is found (the hash table grows and
 * probes correctly), and names that differ by a byte are not. */
TEST(cost_many_models)
{
    buf b;
    buf_init(&b, 1 << 20);
    buf_append_str(&b, "{");
    for (int i = 0; i < 2000; i++)
        buf_printf(&b, "%s\"model-%d\":{\"input_cost_per_token\":%.2f,\"output_cost_per_token\":0}",
                   i ? "," : "", i, i / 4.0);
    buf_append_str(&b, "}");
    pricing *p = NULL;
    char err[128];
    CHECK_INT(pricing_load_buf("many", b.p, b.len, &p, err, sizeof err), ERR_OK);
    CHECK_INT(pricing_count(p), 2000);
    int wrong = 0;
    for (int i = 0; i < 2000; i++) {
        char name[32];
        snprintf(name, sizeof name, "model-%d", i);
        cost_usage u = { 1, 0, 0, 0, 0 };
        double usd = -1;
        if (!pricing_cost(p, NULL, "openai", name, &u, &usd) || usd != i / 4.0)
            wrong++;
        snprintf(name, sizeof name, "model-%dx", i);
        if (pricing_cost(p, NULL, "openai", name, &u, &usd))
            wrong++;
    }
    CHECK_INT(wrong, 0);
    pricing_free(p);
    buf_free(&b);
}

TEST(cost_hostile_usage)
{
    pricing *p = load_test_table();
    double usd = -1;
    /* NULL arguments */
    cost_usage u = { 1, 1, 0, 0, 0 };
    CHECK(!pricing_cost(p, NULL, NULL, NULL, &u, &usd));
    CHECK(!pricing_cost(p, NULL, NULL, "m-basic", NULL, &usd));
    CHECK(!pricing_cost(p, NULL, NULL, "m-basic", &u, NULL));
    CHECK(!pricing_cost(NULL, NULL, NULL, "m-basic", &u, &usd));
    CHECK(usd == -1);
    /* overrides alone need no table */
    cfg_pricing o = { 1e-6, 1e-6, -1, -1, -1 };
    CHECK(pricing_cost(NULL, &o, NULL, "anything", &u, &usd) && fabs(usd - 2e-6) < 1e-18);
    /* counts at the limit stay finite and never go negative */
    cost_usage big = { LLONG_MAX, LLONG_MAX, LLONG_MAX, LLONG_MAX, LLONG_MAX };
    CHECK(pricing_cost(p, NULL, NULL, "m-cache", &big, &usd));
    CHECK(isfinite(usd) && usd > 0);
    cost_usage neg = { 5, LLONG_MIN, LLONG_MIN, LLONG_MIN, LLONG_MIN };
    CHECK(pricing_cost(p, NULL, NULL, "m-basic", &neg, &usd) && fabs(usd - 5e-6) < 1e-18);
    /* a model name that is only a date, and one that is too short to hold one */
    cost_usage z = { 0, 0, 0, 0, 0 };
    CHECK(!pricing_cost(p, NULL, NULL, "-2025-01-31", &z, &usd));
    CHECK(!pricing_cost(p, NULL, "", "", &z, &usd));
    /* zero tokens of a known model cost exactly 0 */
    CHECK(pricing_cost(p, NULL, NULL, "m-basic", &z, &usd) && usd == 0);
    pricing_free(p);
}
