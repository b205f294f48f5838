/*
 * test_guard_pii.c - the PII detectors (src/guard/pii.c) and the findings
 * list (src/guard/detect.c).
 *
 * The labeled corpus tests/data/guard/pii_*.jsonl holds one case per line,
 * {"text", "expect": [{"type", "start", "len"}]}, with positives and hard
 * negatives per detector (numbers that fail their checksum, look-alikes,
 * benign prose). guard_test_corpus scans every case with all detectors,
 * matches findings to expectations by exact type and byte span, prints
 * precision and recall per type and returns them; the test fails below
 * the floors documented in docs/internals/guard-detectors.md. It is shared
 * with test_guard_secrets.c.
 *
 * Then table-driven cases per recognizer, the mask property (the findings
 * for a mask are those for all types, filtered), the list API, and
 * hostile inputs that must stay linear.
 */
#include <jansson.h>
#include <stdlib.h>
#include <time.h>
#include "guard/detect.h"
#include "test.h"

/* ---- the labeled corpus --------------------------------------------------- */

typedef err_code (*scan_fn)(const char *, size_t, uint64_t, guard_findings *);

typedef struct corpus_stats {
    unsigned tp[GT__COUNT], fp[GT__COUNT], fn[GT__COUNT];
} corpus_stats;

/* Scans every case of the named files with fn(mask) and adds up, per
 * type, true positives (same type and span as an expectation), false
 * positives and false negatives, printing each miss. Returns the number
 * of cases read (0 when a file is missing or malformed, with a failure). */
size_t guard_test_corpus(const char *const *files, size_t nfiles, scan_fn fn, uint64_t mask, corpus_stats *st);
size_t guard_test_corpus(const char *const *files, size_t nfiles, scan_fn fn, uint64_t mask, corpus_stats *st)
{
    size_t cases = 0;
    memset(st, 0, sizeof *st);
    for (size_t fi = 0; fi < nfiles; fi++) {
        size_t n = 0;
        char *data = test_read_data(files[fi], &n);
        if (!data)
            return 0;
        int line = 0;
        for (char *l = data; l && *l; line++) {
            char *nl = strchr(l, '\n');
            if (nl)
                *nl = '\0';
            json_error_t je;
            json_t *j = json_loads(l, 0, &je);
            const char *text = json_string_value(json_object_get(j, "text"));
            size_t tlen = json_string_length(json_object_get(j, "text"));
            json_t *exp = json_object_get(j, "expect");
            if (!text || !json_is_array(exp)) {
                test_fail(__FILE__, __LINE__, "%s:%d: malformed case", files[fi], line + 1);
                json_decref(j);
                free(data);
                return 0;
            }
            cases++;
            guard_findings f = { 0 };
            CHECK_INT(fn(text, tlen, mask, &f), ERR_OK);
            bool *used = calloc(f.n + 1, sizeof *used);
            size_t k;
            json_t *e;
            json_array_foreach(exp, k, e) {
                guard_type t;
                if (!guard_type_parse(json_string_value(json_object_get(e, "type")), &t)) {
                    test_fail(__FILE__, __LINE__, "%s:%d: unknown type", files[fi], line + 1);
                    continue;
                }
                size_t s = (size_t)json_integer_value(json_object_get(e, "start"));
                size_t len = (size_t)json_integer_value(json_object_get(e, "len"));
                bool found = false;
                for (size_t i = 0; i < f.n && !found; i++)
                    if (!used[i] && f.v[i].type == t && f.v[i].start == s && f.v[i].len == len)
                        found = used[i] = true;
                if (found)
                    st->tp[t]++;
                else {
                    st->fn[t]++;
                    printf("    miss %s:%d %s \"%.*s\"\n", files[fi], line + 1, guard_type_name(t), (int)len,
                           s + len <= tlen ? text + s : "");
                }
            }
            for (size_t i = 0; i < f.n; i++)
                if (!used[i]) {
                    st->fp[f.v[i].type]++;
                    printf("    false %s:%d %s/%s \"%.*s\"\n", files[fi], line + 1, guard_type_name(f.v[i].type),
                           f.v[i].rule, (int)f.v[i].len, text + f.v[i].start);
                }
            free(used);
            guard_findings_free(&f);
            json_decref(j);
            l = nl ? nl + 1 : NULL;
        }
        free(data);
    }
    return cases;
}

/* Prints the table and checks each type against its floor (precision and
 * recall both); a type with no expectations and no findings is skipped. */
void guard_test_floors(const corpus_stats *st, const guard_type *types, const double *floors, size_t n);
void guard_test_floors(const corpus_stats *st, const guard_type *types, const double *floors, size_t n)
{
    printf("    %-18s %5s %5s %5s %9s %7s %6s\n", "type", "tp", "fp", "fn", "precision", "recall", "floor");
    for (size_t i = 0; i < n; i++) {
        guard_type t = types[i];
        unsigned tp = st->tp[t], fp = st->fp[t], fn = st->fn[t];
        double prec = tp + fp ? (double)tp / (tp + fp) : 1.0, rec = tp + fn ? (double)tp / (tp + fn) : 1.0;
        printf("    %-18s %5u %5u %5u %9.3f %7.3f %6.2f\n", guard_type_name(t), tp, fp, fn, prec, rec, floors[i]);
        if (tp + fn == 0)
            test_fail(__FILE__, __LINE__, "%s: no positives in the corpus", guard_type_name(t));
        if (prec < floors[i] || rec < floors[i])
            test_fail(__FILE__, __LINE__, "%s: precision %.3f / recall %.3f below %.2f", guard_type_name(t), prec,
                      rec, floors[i]);
    }
}

static const char *const pii_files[] = {
    "guard/pii_email.jsonl",   "guard/pii_phone.jsonl", "guard/pii_card.jsonl",
    "guard/pii_iban.jsonl",    "guard/pii_network.jsonl", "guard/pii_url.jsonl",
    "guard/pii_holdout.jsonl",
    "guard/pii_ids.jsonl",     "guard/pii_crypto.jsonl", "guard/pii_benign.jsonl",
};

TEST(guard_pii_corpus)
{
    corpus_stats st;
    size_t cases = guard_test_corpus(pii_files, countof(pii_files), guard_scan_pii, GUARD_PII_ALL, &st);
    CHECK(cases > 250);
    /* Checksum-backed and fully structural detectors: 0.95. Phone numbers
     * have no checksum and lean on context: their floor is 0.90. */
    static const guard_type types[] = { GT_EMAIL,  GT_PHONE, GT_CREDIT_CARD, GT_IBAN,    GT_IPV4,
                                        GT_IPV6,   GT_MAC,   GT_URL,         GT_US_SSN,  GT_US_ITIN,
                                        GT_UK_NINO, GT_NHS,  GT_CRYPTO };
    static const double floors[] = { 0.95, 0.90, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95 };
    guard_test_floors(&st, types, floors, countof(types));
}

/* ---- table-driven cases --------------------------------------------------- */

/* Scans text with fn(mask) and checks that the findings, sorted, are
 * exactly want ("TYPE:matched text" each, NULL-terminated). */
static void expect_findings(scan_fn fn, uint64_t mask, const char *text, const char *const *want, int line)
{
    guard_findings f = { 0 };
    size_t tl = strlen(text);
    char *copy = malloc(tl ? tl : 1); /* exact size: ASan sees over-reads */
    memcpy(copy, text, tl);
    err_code e = fn(copy, tl, mask, &f);
    free(copy);
    if (e != ERR_OK)
        test_fail(__FILE__, line, "scan failed: %s", err_name(e));
    guard_findings_sort(&f);
    size_t nw = 0;
    while (want[nw])
        nw++;
    bool ok = f.n == nw;
    for (size_t i = 0; ok && i < f.n; i++) {
        char got[512];
        snprintf(got, sizeof got, "%s:%.*s", guard_type_name(f.v[i].type), (int)f.v[i].len, text + f.v[i].start);
        ok = strcmp(got, want[i]) == 0;
    }
    if (!ok) {
        test_fail(__FILE__, line, "findings for \"%s\":", text);
        for (size_t i = 0; i < f.n; i++)
            fprintf(stderr, "      got %s/%s \"%.*s\"\n", guard_type_name(f.v[i].type), f.v[i].rule, (int)f.v[i].len,
                    text + f.v[i].start);
        for (size_t i = 0; i < nw; i++)
            fprintf(stderr, "      want %s\n", want[i]);
    }
    guard_findings_free(&f);
}

static const struct pii_case {
    const char *text;
    const char *want[4];
} pii_cases[] = {
    /* email */
    { "mail bob@example.com now", { "EMAIL:bob@example.com" } },
    { "end of sentence: a.b@c.example.org.", { "EMAIL:a.b@c.example.org" } },
    { "a@b.c has a one-letter TLD, x@y no TLD", { NULL } },
    { "icon@2x.png and react@18.2.0", { NULL } },
    { "jo..e@example.com", { NULL } },
    { "\"quoted\"@example.com is left alone; 'bob'@x.com too", { NULL } },
    { "postgres://u:pw@db.example.com/x", { NULL } },
    { "Email:ann@example.com", { "EMAIL:ann@example.com" } },
    { "{\"e\":\"\\nzoe@example.com\"}", { "EMAIL:zoe@example.com" } },
    { "联系li@example.cn谢谢", { "EMAIL:li@example.cn" } },
    { "go to www.例子.com now", { "URL:www.例子.com" } },
    /* phone */
    { "call +1 415 555 0132 now", { "PHONE:+1 415 555 0132" } },
    { "+1 415 555 013 has too few digits", { NULL } },
    { "order 415-555-0132", { NULL } },
    { "#415-555-0132", { NULL } },
    { "version 020.7946.0958", { NULL } },
    { "tel: 020 7946 0958", { "PHONE:020 7946 0958" } },
    { "the 1990-2000-2010 decades", { NULL } },
    /* cards */
    { "4111-1111-1111-1111", { "CREDIT_CARD:4111-1111-1111-1111" } },
    { "4111-1111-1111-1112", { NULL } },
    { "pay 4111111111111111.", { "CREDIT_CARD:4111111111111111" } },
    { "x4111111111111111 and 4111111111111111x", { NULL } },
    { "1.4111111111111111", { NULL } },
    { "\\n4111 1111 1111 1111", { "CREDIT_CARD:4111 1111 1111 1111" } },
    /* IBAN */
    { "GB82WEST12345698765432", { "IBAN:GB82WEST12345698765432" } },
    { "gb82west12345698765432 (lower case is not matched)", { NULL } },
    { "BE68 5390 0754 7034 1234 (a fifth group: a longer number)", { NULL } },
    { "BE68 5390 0754 7034.", { "IBAN:BE68 5390 0754 7034" } },
    /* network */
    { "10.0.0.1:8080", { "IPV4:10.0.0.1" } },
    { "999.1.1.1 1.2.3 1.2.3.4.5 01.2.3.4", { NULL } },
    { "ip=192.168.1.1,", { "IPV4:192.168.1.1" } },
    { "::ffff:10.1.2.3", { "IPV6:::ffff:10.1.2.3" } },
    { "1:2:3:4:5:6:7:8", { "IPV6:1:2:3:4:5:6:7:8" } },
    { "12345::1 g::1 1::2::3", { NULL } },
    { "aa:bb:cc:dd:ee:ff", { "MAC_ADDRESS:aa:bb:cc:dd:ee:ff" } },
    { "aa:bb:cc:dd:ee:fg", { NULL } },
    /* URL */
    { "(see https://x.example.com/a_(b)).", { "URL:https://x.example.com/a_(b)" } },
    { "https://example.com/path?a=1,", { "URL:https://example.com/path?a=1" } },
    { "xhttps://example.com", { NULL } },
    { "http://)", { NULL } },
    /* US / UK */
    { "SSN 001-01-0001", { "US_SSN:001-01-0001" } },
    { "666-12-3456 900-12-3456 000-12-3456", { NULL } },
    { "ITIN 970-99-1234", { "US_ITIN:970-99-1234" } },
    { "AB123456D AB123456", { "UK_NINO:AB123456D" } },
    { "NHS 4010232137", { "NHS_NUMBER:4010232137" } },
    { "NHS 4010232138", { NULL } },
    /* crypto */
    { "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa", { "CRYPTO_WALLET:1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa" } },
    { "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNb", { NULL } },
    { "BC1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7KV8F3T4", { "CRYPTO_WALLET:BC1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7KV8F3T4" } },
    { "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t5", { NULL } },
    /* EIP-55 vectors: they pass only when Keccak-256 is right. */
    { "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359", { "CRYPTO_WALLET:0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359" } },
    { "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB", { "CRYPTO_WALLET:0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB" } },
    { "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb", { "CRYPTO_WALLET:0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb" } },
    { "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDB", { NULL } },
    /* texts that end inside a candidate (fuzz crasher: "16-29" read past the end) */
    { "Card 4111111 1111, SSN 16-29", { NULL } },
    { "16-29", { NULL } }, { "aa:bb:cc", { NULL } }, { "0011.2233", { NULL } }, { "AB12345", { NULL } },
    { "GB82WEST", { NULL } }, { "0x5aAe", { NULL } }, { "1A1zP1eP5QGefi2", { NULL } }, { "bc1qw508", { NULL } },
    { "+44 20", { NULL } }, { "(415", { NULL } }, { "a@b", { NULL } }, { "http://", { NULL } },
    { "www.", { NULL } }, { "::", { NULL } }, { "10.0.0.", { NULL } }, { "fe80::", { NULL } },
    /* several in one text, in order */
    { "bob@example.com, +44 20 7946 0958, 10.0.0.1",
      { "EMAIL:bob@example.com", "PHONE:+44 20 7946 0958", "IPV4:10.0.0.1" } },
};

TEST(guard_pii_cases)
{
    for (size_t i = 0; i < countof(pii_cases); i++)
        expect_findings(guard_scan_pii, GUARD_PII_ALL, pii_cases[i].text, pii_cases[i].want, __LINE__);
}

TEST(guard_pii_bad_args)
{
    guard_findings f = { 0 };
    CHECK_INT(guard_scan_pii(NULL, 0, GUARD_PII_ALL, &f), ERR_OK);
    CHECK_INT(guard_scan_pii(NULL, 5, GUARD_PII_ALL, &f), ERR_INVAL);
    CHECK_INT(guard_scan_pii("a@b.com", 7, GUARD_PII_ALL, NULL), ERR_INVAL);
    CHECK_INT(guard_scan_pii("bob@example.com", 15, 0, &f), ERR_OK); /* nothing asked for */
    CHECK_INT(f.n, 0);
    /* A cut in the middle of the text is respected: nothing is read past len. */
    char *heap = malloc(11);
    memcpy(heap, "bob@exampl", 10);
    CHECK_INT(guard_scan_pii(heap, 10, GUARD_PII_ALL, &f), ERR_OK);
    CHECK_INT(f.n, 0);
    free(heap);
    guard_findings_free(&f);
}

/* ---- the findings list and type names --------------------------------------- */

TEST(guard_types_and_list)
{
    for (int t = 0; t < GT__COUNT; t++) {
        guard_type back;
        CHECK(guard_type_parse(guard_type_name((guard_type)t), &back));
        CHECK_INT(back, t);
    }
    guard_type t;
    CHECK(guard_type_parse("credit_card", &t) && t == GT_CREDIT_CARD);
    CHECK(guard_type_parse("Credit-Card", &t) && t == GT_CREDIT_CARD);
    CHECK(guard_type_parse("mac", &t) && t == GT_MAC);
    CHECK(guard_type_parse("MAC_ADDRESS", &t) && t == GT_MAC);
    CHECK(guard_type_parse("high_entropy", &t) && t == GT_HIGH_ENTROPY);
    CHECK(guard_type_parse("secret", &t) && t == GT_HIGH_ENTROPY);
    CHECK(!guard_type_parse("", &t));
    CHECK(!guard_type_parse(NULL, &t));
    CHECK(!guard_type_parse("EMAILS", &t));
    CHECK_STR(guard_type_name(GT__COUNT), "UNKNOWN");
    CHECK_STR(guard_type_name((guard_type)-1), "UNKNOWN");

    guard_findings f = { .max = 3 };
    CHECK_INT(guard_findings_add(&f, GT_EMAIL, 10, 5, 1.0f, "email"), ERR_OK);
    CHECK_INT(guard_findings_add(&f, GT_URL, 2, 3, 2.0f, "url"), ERR_OK);   /* score clamped */
    CHECK_INT(guard_findings_add(&f, GT_PHONE, 2, 8, -1.0f, "x"), ERR_OK);  /* same start, longer */
    CHECK_INT(guard_findings_add(&f, GT_IPV4, 0, 1, 1.0f, "x"), ERR_OK);    /* past max: dropped */
    CHECK_INT(f.n, 3);
    CHECK_INT(f.dropped, 1);
    CHECK_INT(guard_findings_add(&f, GT__COUNT, 0, 1, 1.0f, "x"), ERR_INVAL);
    CHECK_INT(guard_findings_add(&f, GT_EMAIL, (size_t)UINT32_MAX, 2, 1.0f, "x"), ERR_INVAL);
    CHECK_INT(guard_findings_add(NULL, GT_EMAIL, 0, 1, 1.0f, "x"), ERR_INVAL);
    guard_findings_sort(&f);
    CHECK(f.v[0].type == GT_PHONE && f.v[1].type == GT_URL && f.v[2].type == GT_EMAIL);
    CHECK(f.v[1].score == 1.0f && f.v[0].score == 0.0f);
    guard_findings_free(&f);
    CHECK(f.v == NULL && f.n == 0 && f.dropped == 0);
    guard_findings_free(&f); /* twice is fine */

    guard_findings g = { 0 }; /* max 0 means 4096 */
    for (int i = 0; i < 5000; i++)
        CHECK_INT(guard_findings_add(&g, GT_EMAIL, (size_t)i, 1, 1.0f, "x"), ERR_OK);
    CHECK_INT(g.n, 4096);
    CHECK_INT(g.dropped, 5000 - 4096);
    guard_findings_free(&g);
}

/* ---- properties over the corpus --------------------------------------------- */

/* For every corpus text and every single type: the findings for that mask
 * are exactly the findings for all types, filtered; and findings are
 * inside the text, in order and disjoint. */
void guard_test_mask_property(const char *const *files, size_t nfiles, scan_fn fn, uint64_t all);
void guard_test_mask_property(const char *const *files, size_t nfiles, scan_fn fn, uint64_t all)
{
    for (size_t fi = 0; fi < nfiles; fi++) {
        size_t n = 0;
        char *data = test_read_data(files[fi], &n);
        if (!data)
            return;
        for (char *l = data; l && *l;) {
            char *nl = strchr(l, '\n');
            if (nl)
                *nl = '\0';
            json_t *j = json_loads(l, 0, NULL);
            const char *text = json_string_value(json_object_get(j, "text"));
            size_t tlen = json_string_length(json_object_get(j, "text"));
            guard_findings full = { 0 };
            CHECK(text && fn(text, tlen, all, &full) == ERR_OK);
            for (size_t i = 0; i < full.n; i++) {
                CHECK(full.v[i].len > 0 && (size_t)full.v[i].start + full.v[i].len <= tlen);
                CHECK(full.v[i].rule && full.v[i].rule[0] && full.v[i].score > 0 && full.v[i].score <= 1);
                CHECK(all & ((uint64_t)1 << full.v[i].type));
                if (i)
                    CHECK(full.v[i].start >= full.v[i - 1].start + full.v[i - 1].len);
            }
            for (int t = 0; t < 64 && text; t++) {
                uint64_t bit = (uint64_t)1 << t;
                if (!(all & bit))
                    continue;
                guard_findings one = { 0 };
                CHECK(fn(text, tlen, bit, &one) == ERR_OK);
                size_t k = 0;
                for (size_t i = 0; i < full.n; i++) {
                    if (full.v[i].type != (guard_type)t)
                        continue;
                    bool same = k < one.n && one.v[k].start == full.v[i].start && one.v[k].len == full.v[i].len &&
                                strcmp(one.v[k].rule, full.v[i].rule) == 0;
                    if (!same)
                        test_fail(__FILE__, __LINE__, "mask %s changes the findings of \"%.60s\"",
                                  guard_type_name((guard_type)t), text);
                    k++;
                }
                CHECK_INT(one.n, k);
                guard_findings_free(&one);
            }
            guard_findings_free(&full);
            json_decref(j);
            l = nl ? nl + 1 : NULL;
        }
        free(data);
    }
}

TEST(guard_pii_mask_property)
{
    guard_test_mask_property(pii_files, countof(pii_files), guard_scan_pii, GUARD_PII_ALL);
}

/* ---- hostile inputs --------------------------------------------------------- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* 2 MiB of each pattern must scan in well under a second (a quadratic
 * scan would take minutes), with a bounded findings list. */
TEST(guard_pii_hostile)
{
    static const char *const units[] = {
        "1",   "1.",  "1.1.",   "a@",      "@a.", "a@b.co ", "::",  "1:",  "+1 ",     "(1",       "4111 ",
        "0x",  "bc1", "AB12 ",  "\\n1",    "-",   "www.",    "http://", "1-", "\xe4\xbd\xa0", "\xff\xfe", "x",
    };
    size_t len = 2u << 20;
    char *buf = malloc(len);
    for (size_t u = 0; u < countof(units); u++) {
        size_t ul = strlen(units[u]);
        for (size_t i = 0; i < len; i++)
            buf[i] = units[u][i % ul];
        guard_findings f = { .max = 64 };
        double t0 = now_s();
        CHECK_INT(guard_scan_pii(buf, len, GUARD_PII_ALL, &f), ERR_OK);
        double dt = now_s() - t0;
        if (dt > 2.0)
            test_fail(__FILE__, __LINE__, "pattern \"%s\": %.2f s for 2 MiB", units[u], dt);
        CHECK(f.n <= 64);
        guard_findings_free(&f);
    }
    /* random bytes, biased towards the trigger bytes */
    srand(42);
    static const char alphabet[] = "0123456789abcdefABCDEF@:.-+()/ x_%\\n\xc3\xa9";
    for (int round = 0; round < 50; round++) {
        size_t n = (size_t)(rand() % 4096);
        for (size_t i = 0; i < n; i++)
            buf[i] = alphabet[rand() % (int)(sizeof alphabet - 1)];
        guard_findings f = { 0 };
        CHECK_INT(guard_scan_pii(buf, n, GUARD_PII_ALL, &f), ERR_OK);
        for (size_t i = 0; i < f.n; i++)
            CHECK((size_t)f.v[i].start + f.v[i].len <= n &&
                  (i == 0 || f.v[i].start >= f.v[i - 1].start + f.v[i - 1].len));
        guard_findings_free(&f);
    }
    free(buf);
}
