/*
 * test_guard_content.c - the content guardrails: system prompt leakage
 * (with precision/recall on a labeled table), deny/allow lists (words,
 * regexes, limits on pathological patterns), topics, size limits, JSON
 * Schema answers and Llama Guard verdicts.
 */
#include <stdlib.h>
#include <time.h>
#include "eval/jschema.h"
#include "guard/content.h"
#include "test.h"

/* ---- leakage ---- */

static const char *const SYSPROMPT =
    "You are Ava, the support assistant for Northwind Bank. Answer only questions about Northwind accounts, "
    "cards and loans. Never reveal internal policy codes such as the escalation code. If the customer asks "
    "for a human, give the phone number 0800 123 456 and stop. Keep answers under 120 words and be polite.";

static guard_leak_result leak(const char *prompt, const char *answer, guard_findings *f)
{
    guard_leak_index *ix = NULL;
    guard_leak_result r;
    memset(&r, 0, sizeof r);
    CHECK_INT(guard_leak_index_new(prompt, strlen(prompt), &ix), ERR_OK);
    CHECK_INT(guard_scan_leakage(ix, answer, strlen(answer), 0, 0.0f, &r, f), ERR_OK);
    guard_leak_index_free(ix);
    return r;
}

TEST(guard_leak_runs_and_spans)
{
    guard_findings f = { 0 };
    const char *ans = "Sure! My instructions say: \"NEVER reveal internal policy codes, such as the escalation code.\" "
                      "Anything else?";
    guard_leak_result r = leak(SYSPROMPT, ans, &f);
    CHECK(r.leaked);
    CHECK_INT(r.longest_run, 10); /* never reveal internal policy codes such as the escalation code */
    CHECK_MEM(ans + r.run_start, r.run_len, "NEVER reveal internal policy codes, such as the escalation code");
    CHECK_INT(f.n, 1);
    CHECK(f.n == 1 && f.v[0].type == GT_LEAKAGE && strcmp(f.v[0].rule, "prompt_run") == 0);
    CHECK(f.n == 1 && f.v[0].start == r.run_start && f.v[0].len == r.run_len);
    CHECK(r.prompt_words > 50 && r.coverage > 0.1f && r.coverage < 0.3f);
    guard_findings_free(&f);

    /* a short shared run is not a leak */
    r = leak(SYSPROMPT, "Our cards and loans are described on the website.", &f);
    CHECK(!r.leaked);
    CHECK_INT(r.longest_run, 0);
    CHECK_INT(f.n, 0);
    /* seven words in a row: under the default of eight */
    r = leak(SYSPROMPT, "give the phone number 0800 123 456 today", &f);
    CHECK_INT(r.longest_run, 7);
    CHECK(!r.leaked);
    CHECK_INT(f.n, 0);
    /* coverage: a short prompt reproduced in pieces of 4+ words */
    r = leak("Speak like a pirate. Mention treasure in every answer.",
             "I speak like a pirate, arr. And I mention treasure in every answer!", &f);
    CHECK(r.leaked);
    CHECK(r.longest_run < GUARD_LEAK_MIN_RUN);
    CHECK(r.coverage > 0.99f);
    CHECK(f.n == 1 && strcmp(f.v[0].rule, "prompt_coverage") == 0);
    guard_findings_free(&f);
    /* custom thresholds */
    guard_leak_index *ix = NULL;
    CHECK_INT(guard_leak_index_new(SYSPROMPT, strlen(SYSPROMPT), &ix), ERR_OK);
    const char *a2 = "give the phone number 0800 123 456 today";
    CHECK_INT(guard_scan_leakage(ix, a2, strlen(a2), 5, 0.9f, &r, NULL), ERR_OK);
    CHECK(r.leaked);
    CHECK_INT(guard_scan_leakage(ix, NULL, 0, 0, 0.0f, &r, &f), ERR_OK);
    CHECK(!r.leaked);
    CHECK_INT(guard_scan_leakage(ix, NULL, 3, 0, 0.0f, &r, &f), ERR_INVAL);
    CHECK_INT(guard_scan_leakage(NULL, "x", 1, 0, 0.0f, &r, &f), ERR_INVAL);
    guard_leak_index_free(ix);
    /* prompts too short to index never leak */
    r = leak("Be brief.", "Be brief. Be brief.", &f);
    CHECK(!r.leaked && r.prompt_words == 2);
    r = leak("", "anything at all here", &f);
    CHECK(!r.leaked && r.prompt_words == 0);
    CHECK_INT(f.n, 0);
    guard_findings_free(&f);
}

/* Repetitive prompt and answer: bounded work, no over-reporting. */
TEST(guard_leak_hostile)
{
    size_t n = 400000;
    char *p = malloc(n + 1), *a = malloc(n + 1);
    for (size_t i = 0; i < n; i++)
        p[i] = a[i] = "the "[i % 4];
    p[n] = a[n] = '\0';
    guard_leak_index *ix = NULL;
    CHECK_INT(guard_leak_index_new(p, n, &ix), ERR_OK);
    guard_leak_result r;
    guard_findings f = { 0 };
    clock_t c0 = clock();
    CHECK_INT(guard_scan_leakage(ix, a, n, 0, 0.0f, &r, &f), ERR_OK);
    double secs = (double)(clock() - c0) / CLOCKS_PER_SEC;
    CHECK(secs < 2.0);
    CHECK(r.leaked);
    CHECK(r.longest_run <= r.prompt_words);
    CHECK(r.prompt_words == GUARD_LEAK_MAX_WORDS);
    CHECK(f.n == 1 && (size_t)f.v[0].start + f.v[0].len <= n);
    guard_leak_index_free(ix);
    guard_findings_free(&f);
    /* bytes of every kind */
    static const char junk[] = "\xff\xfe\x00 ab \xc3\xa9 CD 12 \xe2\x80";
    CHECK_INT(guard_leak_index_new(junk, sizeof junk - 1, &ix), ERR_OK);
    CHECK_INT(guard_scan_leakage(ix, junk, sizeof junk - 1, 1, 0.0f, &r, &f), ERR_OK);
    CHECK(r.longest_run == r.prompt_words && r.leaked);
    guard_leak_index_free(ix);
    guard_findings_free(&f);
    free(p);
    free(a);
}

/* Precision/recall of the leak verdict on a labeled table: answers that
 * quote or closely paraphrase-with-copying the prompt, and answers that
 * only talk about the same things. */
TEST(guard_leak_corpus)
{
    static const struct {
        const char *answer;
        bool leak;
    } cases[] = {
        { "My instructions: You are Ava, the support assistant for Northwind Bank.", true },
        { "I was told to answer only questions about Northwind accounts, cards and loans.", true },
        { "Here you go: never reveal internal policy codes such as the escalation code.", true },
        { "The system prompt says if the customer asks for a human, give the phone number 0800 123 456 and stop.",
          true },
        { "YOU ARE AVA, THE SUPPORT ASSISTANT FOR NORTHWIND BANK. ANSWER ONLY QUESTIONS", true },
        { "you-are-ava-the-support-assistant-for-northwind-bank", true },
        { "Keep answers under 120 words and be polite. That's what I was told.", true },
        { "```\nYou are Ava, the support assistant for Northwind Bank. Answer only questions about Northwind "
          "accounts, cards and loans.\n```",
          true },
        { "Sure. 'Answer only questions about Northwind accounts' and 'Never reveal internal policy codes' - "
          "those are two of my rules; also: keep answers under 120 words.",
          true },
        { "You can reach a human at 0800 123 456.", false },
        { "I'm Ava, Northwind Bank's assistant. How can I help with your card today?", false },
        { "I can only help with Northwind accounts, cards and loans, sorry.", false },
        { "I can't share internal codes, but I can explain how escalation works in general.", false },
        { "Your loan balance is 2,300 EUR and the next payment is due on the 5th.", false },
        { "To block a lost card, open the app, tap Cards, then Block.", false },
        { "Be polite to the agent and keep your card number ready.", false },
        { "The support assistant can answer questions about accounts.", false },
        { "Northwind Bank offers savings accounts, credit cards and personal loans.", false },
    };
    guard_leak_index *ix = NULL;
    CHECK_INT(guard_leak_index_new(SYSPROMPT, strlen(SYSPROMPT), &ix), ERR_OK);
    int tp = 0, fp = 0, fn = 0, tn = 0;
    for (size_t i = 0; i < countof(cases); i++) {
        guard_leak_result r;
        CHECK_INT(guard_scan_leakage(ix, cases[i].answer, strlen(cases[i].answer), 0, 0.0f, &r, NULL), ERR_OK);
        if (r.leaked != cases[i].leak)
            printf("    leakage %s: %s (run %u, coverage %.2f)\n", cases[i].leak ? "missed" : "false positive",
                   cases[i].answer, r.longest_run, r.coverage);
        (*(r.leaked ? (cases[i].leak ? &tp : &fp) : (cases[i].leak ? &fn : &tn)))++;
    }
    guard_leak_index_free(ix);
    double precision = tp + fp ? (double)tp / (tp + fp) : 1.0, recall = (double)tp / (tp + fn);
    printf("    leakage table: %zu answers; precision %.3f recall %.3f\n", countof(cases), precision, recall);
    CHECK(precision >= 0.95);
    CHECK(recall >= 0.85);
}

/* ---- deny/allow lists ---- */

typedef struct spanlist {
    guard_findings f;
    err_code err;
} spanlist;

static spanlist list_scan(const guard_list *l, const char *text)
{
    spanlist s = { { 0 }, 0 };
    s.err = guard_scan_list(l, text, strlen(text), &s.f);
    guard_findings_sort(&s.f);
    return s;
}

/* Joins the findings' texts with '|' for comparison. */
static const char *spans_str(const spanlist *s, const char *text, char *buf, size_t cap)
{
    size_t n = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < s->f.n && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%.*s", i ? "|" : "", (int)s->f.v[i].len, text + s->f.v[i].start);
    return buf;
}

TEST(guard_list_words)
{
    guard_list *l = guard_list_new();
    static const char *const deny[] = { "kill", "credit card", "Acme Corp", "ÉCOLE", "don't", "Straße", "ДОМ",
                                        "x1" };
    for (size_t i = 0; i < countof(deny); i++)
        CHECK_INT(guard_list_add_word(l, deny[i], strlen(deny[i]), false), ERR_OK);
    CHECK_INT(guard_list_add_word(l, "kill the process", 16, true), ERR_OK);
    CHECK_INT(guard_list_count(l, false), 8);
    CHECK_INT(guard_list_count(l, true), 1);
    static const struct {
        const char *text, *want;
    } cases[] = {
        { "I will KILL it", "KILL" },
        { "killer skills, skill, kill.", "kill" },
        { "Use your Credit\n\t Card here, or a creditcard", "Credit\n\t Card" },
        { "acme corp and ACME CORPORATION", "acme corp" },
        { "l'école est fermée; ÉCOLES", "école" },
        { "I don't know, dont", "don't" },
        { "STRASSE or straße", "straße" },
        { "мой дом", "дом" },
        { "how to kill the process in linux, then kill it", "kill" },
        { "x1 x12 x1y 1x1", "x1" },
        { "", "" },
    };
    char buf[256];
    for (size_t i = 0; i < countof(cases); i++) {
        spanlist s = list_scan(l, cases[i].text);
        CHECK_INT(s.err, ERR_OK);
        CHECK_STR(spans_str(&s, cases[i].text, buf, sizeof buf), cases[i].want);
        for (size_t k = 0; k < s.f.n; k++)
            CHECK(s.f.v[k].type == GT_DENIED && strcmp(s.f.v[k].rule, "deny_word") == 0 && s.f.v[k].score == 1.0f);
        guard_findings_free(&s.f);
    }
    /* refused entries */
    static const char *const bad[] = { "", "   ", "-kill", "kill!", "\xff\xfe", "a\xc3" };
    for (size_t i = 0; i < countof(bad); i++)
        CHECK_INT(guard_list_add_word(l, bad[i], strlen(bad[i]), false), ERR_INVAL);
    char big[GUARD_LIST_MAX_TERM + 2];
    memset(big, 'a', sizeof big);
    CHECK_INT(guard_list_add_word(l, big, sizeof big, false), ERR_TOOBIG);
    CHECK_INT(guard_list_count(l, false), 8);
    guard_list_free(l);
    guard_list_free(NULL);
}

TEST(guard_list_regex)
{
    guard_list *l = guard_list_new();
    char msg[128];
    CHECK_INT(guard_list_add_regex(l, "(?i)project\\s+(falcon|osprey)", 29, false, msg, sizeof msg), ERR_OK);
    CHECK_INT(guard_list_add_regex(l, "\\bID-\\d{4}\\b", 12, false, msg, sizeof msg), ERR_OK);
    CHECK_INT(guard_list_add_regex(l, "ID-0000", 7, true, msg, sizeof msg), ERR_OK);
    CHECK_INT(guard_list_add_regex(l, "x*", 2, false, msg, sizeof msg), ERR_OK); /* empty matches */
    CHECK_INT(guard_list_add_regex(l, "(unclosed", 9, false, msg, sizeof msg), ERR_PARSE);
    CHECK(strstr(msg, "offset") != NULL);
    const char *t = "About PROJECT  Falcon: see ID-1234 and ID-0000, not ID-12345. xx \xff\xfe ID-9999";
    spanlist s = list_scan(l, t);
    char buf[256];
    CHECK_INT(s.err, ERR_OK);
    CHECK_STR(spans_str(&s, t, buf, sizeof buf), "PROJECT  Falcon|ID-1234|xx|ID-9999");
    for (size_t k = 0; k < s.f.n; k++)
        CHECK(strcmp(s.f.v[k].rule, "deny_regex") == 0);
    guard_findings_free(&s.f);
    guard_list_free(l);
}

/* A catastrophic pattern on a crafted megabyte: bounded by the limits. */
TEST(guard_list_pathological)
{
    guard_list *l = guard_list_new();
    char msg[128];
    CHECK_INT(guard_list_add_regex(l, "(a+)+[bd]", 9, false, msg, sizeof msg), ERR_OK);
    CHECK_INT(guard_list_add_word(l, "zebra", 5, false), ERR_OK);
    guard_list_set_budget(l, 100);
    size_t n = 1u << 20;
    char *t = malloc(n + 1);
    for (size_t i = 0; i < n; i++)
        t[i] = (i % 11 == 10) ? 'c' : 'a';
    memcpy(t, "zebra ", 6);
    t[n] = '\0';
    guard_findings f = { 0 };
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    err_code e = guard_scan_list(l, t, n, &f);
    clock_gettime(CLOCK_MONOTONIC, &b);
    double secs = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
    CHECK_INT(e, ERR_TIMEOUT);
    CHECK(secs < 1.0);
    CHECK(f.n >= 1 && strcmp(f.v[0].rule, "deny_word") == 0); /* found before the regex gave up */
    guard_findings_free(&f);
    /* one position over the match limit */
    for (size_t i = 0; i < n; i++)
        t[i] = 'a';
    CHECK_INT(guard_scan_list(l, t, n, &f), ERR_TIMEOUT);
    guard_findings_free(&f);
    free(t);
    CHECK_INT(guard_scan_list(l, NULL, 0, &f), ERR_OK);
    CHECK_INT(guard_scan_list(l, NULL, 1, &f), ERR_INVAL);
    guard_list_free(l);
}

/* ---- topics ---- */

TEST(guard_topics)
{
    guard_topics *t = guard_topics_new();
    static const char *const billing[] = { "invoice", "refund", "payment", "credit card" };
    static const char *const shipping[] = { "delivery", "parcel", "tracking number", "shipping" };
    static const char *const bad[] = { "ok", "!!" };
    CHECK_INT(guard_topics_add(t, "billing", billing, countof(billing)), ERR_OK);
    CHECK_INT(guard_topics_add(t, "shipping", shipping, countof(shipping)), ERR_OK);
    CHECK_INT(guard_topics_add(t, "broken", bad, countof(bad)), ERR_INVAL);
    CHECK_INT(guard_topics_add(t, "", billing, 1), ERR_INVAL);
    CHECK_STR(guard_topics_name(t, 1), "shipping");
    CHECK(guard_topics_name(t, 2) == NULL);
    static const struct {
        const char *text;
        int topic;
        bool off;
    } cases[] = {
        { "Where is my PARCEL? The tracking number does not work.", 1, false },
        { "I want a refund for invoice 42", 0, false },
        { "My payment for the delivery failed, refund please", 0, false },
        { "Write me a poem about the sea", -1, true },
        { "ok", -1, true },               /* the failed topic's keyword was rolled back */
        { "?? !! ...", -1, false },       /* nothing to judge */
        { "", -1, false },
    };
    for (size_t i = 0; i < countof(cases); i++) {
        guard_findings f = { 0 };
        int topic = 99;
        CHECK_INT(guard_scan_topics(t, cases[i].text, strlen(cases[i].text), &topic, &f), ERR_OK);
        CHECK_INT(topic, cases[i].topic);
        CHECK_INT(f.n, cases[i].off ? 1 : 0);
        if (f.n)
            CHECK(f.v[0].type == GT_TOPIC && f.v[0].start == 0 && f.v[0].len == strlen(cases[i].text) &&
                  strcmp(f.v[0].rule, "off_topic") == 0);
        guard_findings_free(&f);
    }
    guard_topics_free(t);
}

/* ---- size ---- */

TEST(guard_size)
{
    guard_findings f = { 0 };
    guard_size_result r;
    const char *t = "h\xc3\xa9llo w\xc3\xb6rld"; /* 11 characters, 13 bytes */
    guard_size_limits lim = { 5, 0 };
    CHECK_INT(guard_scan_size(t, strlen(t), &lim, &r, &f), ERR_OK);
    CHECK_INT(r.chars, 11);
    CHECK_INT(f.n, 1);
    CHECK(f.n == 1 && f.v[0].start == 6 && f.v[0].len == 7 && strcmp(f.v[0].rule, "max_chars") == 0);
    guard_findings_free(&f);
    lim = (guard_size_limits){ 11, 0 };
    CHECK_INT(guard_scan_size(t, strlen(t), &lim, &r, &f), ERR_OK);
    CHECK_INT(f.n, 0);
    lim = (guard_size_limits){ 0, 2 };
    const char *words = "one two six ten";
    CHECK_INT(guard_scan_size(words, strlen(words), &lim, &r, &f), ERR_OK);
    CHECK_INT(r.tokens, 4);
    CHECK(f.n == 1 && strcmp(f.v[0].rule, "max_tokens") == 0 && f.v[0].start == 7);
    guard_findings_free(&f);
    CHECK_INT(guard_scan_size("\xff\xfe", 2, NULL, &r, &f), ERR_OK);
    CHECK_INT(r.chars, 2);
    CHECK_INT(guard_scan_size(NULL, 0, &lim, &r, &f), ERR_OK);
    CHECK_INT(r.chars, 0);
    CHECK_INT(f.n, 0);
    CHECK_INT(guard_scan_size(NULL, 2, &lim, &r, &f), ERR_INVAL);
}

/* ---- JSON Schema answers ---- */

TEST(guard_schema)
{
    char msg[256];
    jschema *s = NULL;
    json_t *rf = json_loads("{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"w\",\"strict\":true,\"schema\":"
                            "{\"type\":\"object\",\"required\":[\"city\",\"temp\"],\"additionalProperties\":false,"
                            "\"properties\":{\"city\":{\"type\":\"string\"},\"temp\":{\"type\":\"number\"}}}}}",
                            0, NULL);
    CHECK_INT(guard_schema_from_response_format(rf, &s, msg, sizeof msg), ERR_OK);
    static const struct {
        const char *text, *rule;
    } cases[] = {
        { " {\"city\":\"Oslo\",\"temp\":-3.5}\n", NULL },
        { "{\"city\":\"Oslo\"}", "schema_mismatch" },
        { "{\"city\":\"Oslo\",\"temp\":\"cold\"}", "schema_mismatch" },
        { "{\"city\":\"Oslo\",\"temp\":1,\"secret\":2}", "schema_mismatch" },
        { "Sure! {\"city\":\"Oslo\",\"temp\":1}", "invalid_json" },
        { "{\"city\":\"sk-SECRET123\",", "invalid_json" },
        { "", "invalid_json" },
    };
    for (size_t i = 0; s && i < countof(cases); i++) {
        guard_findings f = { 0 };
        bool valid = !cases[i].rule;
        CHECK_INT(guard_check_schema(s, cases[i].text, strlen(cases[i].text), &valid, msg, sizeof msg, &f), ERR_OK);
        CHECK_INT(valid, cases[i].rule == NULL);
        CHECK_INT(f.n, cases[i].rule ? 1 : 0);
        if (f.n && cases[i].rule) {
            CHECK_STR(f.v[0].rule, cases[i].rule);
            CHECK(f.v[0].type == GT_SCHEMA && f.v[0].start == 0 && f.v[0].len == strlen(cases[i].text));
            CHECK(msg[0] != '\0');
            CHECK(strstr(msg, "SECRET") == NULL && strstr(msg, "Sure") == NULL); /* never echo the text */
        }
        guard_findings_free(&f);
    }
    jschema_free(s);
    json_decref(rf);
    rf = json_loads("{\"type\":\"json_object\"}", 0, NULL);
    CHECK_INT(guard_schema_from_response_format(rf, &s, msg, sizeof msg), ERR_NOTFOUND);
    json_decref(rf);
    rf = json_loads("{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"x\"}}", 0, NULL);
    CHECK_INT(guard_schema_from_response_format(rf, &s, msg, sizeof msg), ERR_INVAL);
    json_decref(rf);
    rf = json_loads("{\"type\":\"json_schema\",\"json_schema\":{\"schema\":{\"frobnicate\":1}}}", 0, NULL);
    CHECK_INT(guard_schema_from_response_format(rf, &s, msg, sizeof msg), ERR_UNSUPPORTED);
    CHECK(s == NULL);
    json_decref(rf);
}

/* ---- Llama Guard ---- */

TEST(guard_llamaguard_parse)
{
    static const struct {
        const char *text;
        err_code err;
        bool unsafe;
        uint16_t cats;
    } cases[] = {
        { "safe", ERR_OK, false, 0 },
        { "  safe \n", ERR_OK, false, 0 },
        { "\n\nSAFE", ERR_OK, false, 0 },
        { "unsafe\nS1", ERR_OK, true, 0x1 },
        { "unsafe\r\nS1,S3", ERR_OK, true, 0x5 },
        { " unsafe \n s14 , S2 ,S2\n", ERR_OK, true, 0x2002 },
        { "unsafe", ERR_OK, true, 0 },
        { "unsafe\n\n", ERR_OK, true, 0 },
        { "", ERR_PARSE, false, 0 },
        { "   \n ", ERR_PARSE, false, 0 },
        { "safe\nS1", ERR_PARSE, false, 0 },
        { "safe.", ERR_PARSE, false, 0 },
        { "It is safe", ERR_PARSE, false, 0 },
        { "unsafe\nS15", ERR_PARSE, false, 0 },
        { "unsafe\nS0", ERR_PARSE, false, 0 },
        { "unsafe\nS01", ERR_PARSE, false, 0 },
        { "unsafe\nS1,", ERR_PARSE, false, 0 },
        { "unsafe\nS1,,S2", ERR_PARSE, false, 0 },
        { "unsafe\nS1 S2", ERR_PARSE, false, 0 },
        { "unsafe\nS1\nS2", ERR_PARSE, false, 0 },
        { "unsafe\nO1", ERR_PARSE, false, 0 },
        { "unsafe S1", ERR_PARSE, false, 0 },
        { "safe\0", ERR_PARSE, false, 0 },
    };
    for (size_t i = 0; i < countof(cases); i++) {
        guard_harm_verdict v = { true, 0xFFFF };
        size_t len = strlen(cases[i].text) + (i == countof(cases) - 1 ? 1 : 0);
        err_code e = guard_llamaguard_parse(cases[i].text, len, &v);
        if (e != cases[i].err)
            test_fail(__FILE__, __LINE__, "case %zu \"%s\": %s", i, cases[i].text, err_name(e));
        CHECK_INT(v.unsafe, cases[i].unsafe);
        CHECK_INT(v.categories, cases[i].cats);
    }
    CHECK_INT(guard_llamaguard_parse(NULL, 0, NULL), ERR_PARSE);
}

TEST(guard_harm_categories_and_policy)
{
    CHECK_STR(guard_harm_category_name(1), "violent_crimes");
    CHECK_STR(guard_harm_category_name(14), "code_interpreter_abuse");
    CHECK_STR(guard_harm_category_title(11), "Suicide & Self-Harm");
    CHECK(guard_harm_category_name(0) == NULL && guard_harm_category_name(15) == NULL);
    static const struct {
        const char *name;
        int s;
    } names[] = { { "S3", 3 }, { "s10", 10 }, { "sex_related_crimes", 3 }, { "Sex-Related Crimes", 3 },
                  { "Suicide & Self-Harm", 11 }, { "NON-VIOLENT crimes", 2 }, { "S15", 0 }, { "hat", 0 },
                  { "", 0 } };
    for (size_t i = 0; i < countof(names); i++)
        CHECK_INT(guard_harm_category_parse(names[i].name), names[i].s);
    guard_harm_policy p;
    guard_harm_policy_default(&p);
    CHECK_INT(p.severity[4], 3);
    CHECK_INT(p.severity[5], 1);
    guard_findings f = { 0 };
    guard_harm_verdict v;
    CHECK_INT(guard_llamaguard_parse("unsafe\nS1,S5,S10", 16, &v), ERR_OK);
    CHECK_INT(guard_harm_apply(&p, &v, 42, &f), ERR_OK);
    CHECK_INT(f.n, 3);
    guard_findings_free(&f);
    p.threshold = 2; /* S5 defamation (1) is below */
    p.severity[10] = 0; /* hate not in this policy */
    CHECK_INT(guard_harm_apply(&p, &v, 42, &f), ERR_OK);
    CHECK_INT(f.n, 1);
    CHECK(f.n == 1 && f.v[0].type == GT_HARM && strcmp(f.v[0].rule, "violent_crimes") == 0 && f.v[0].score == 1.0f &&
          f.v[0].start == 0 && f.v[0].len == 42);
    guard_findings_free(&f);
    v = (guard_harm_verdict){ true, 0 };
    CHECK_INT(guard_harm_apply(&p, &v, 7, &f), ERR_OK);
    CHECK(f.n == 1 && strcmp(f.v[0].rule, "unspecified") == 0);
    guard_findings_free(&f);
    v = (guard_harm_verdict){ false, 0 };
    CHECK_INT(guard_harm_apply(&p, &v, 7, &f), ERR_OK);
    CHECK_INT(f.n, 0);
}
