/*
 * test_guard_secrets.c - the secret detectors (src/guard/secrets.c).
 *
 * The labeled corpus tests/data/guard/secrets_*.jsonl (keys by provider,
 * key blocks and JWTs, connection strings, high-entropy tokens with their
 * hard negatives - hashes, UUIDs, paths, identifiers - and benign prose)
 * is scored by guard_test_corpus from test_guard_pii.c. Then table-driven
 * cases per rule, the mask property, JSON-escaped text, and hostile inputs
 * (many BEGIN lines without an END, long token runs) that must stay linear.
 */
#include <stdlib.h>
#include <time.h>
#include "guard/detect.h"
#include "test.h"

typedef err_code (*scan_fn)(const char *, size_t, uint64_t, guard_findings *);
typedef struct corpus_stats {
    unsigned tp[GT__COUNT], fp[GT__COUNT], fn[GT__COUNT];
} corpus_stats;
/* Defined in test_guard_pii.c. */
size_t guard_test_corpus(const char *const *files, size_t nfiles, scan_fn fn, uint64_t mask, corpus_stats *st);
void guard_test_floors(const corpus_stats *st, const guard_type *types, const double *floors, size_t n);

static const char *const secret_files[] = {
    "guard/secrets_keys.jsonl",    "guard/secrets_blocks.jsonl", "guard/secrets_conn.jsonl",
    "guard/secrets_entropy.jsonl", "guard/secrets_benign.jsonl", "guard/secrets_holdout.jsonl",
};

TEST(guard_secrets_corpus)
{
    corpus_stats st;
    size_t cases = guard_test_corpus(secret_files, countof(secret_files), guard_scan_secrets, GUARD_SECRETS_ALL, &st);
    CHECK(cases > 150);
    /* Prefix-and-shape keys, decoded JWTs, key blocks and connection
     * strings are exact formats: 0.95. The entropy rule is a heuristic:
     * its documented floor is 0.85. */
    static const guard_type types[] = { GT_API_KEY, GT_PRIVATE_KEY, GT_JWT, GT_CONN_STRING, GT_HIGH_ENTROPY };
    static const double floors[] = { 0.95, 0.95, 0.95, 0.95, 0.85 };
    guard_test_floors(&st, types, floors, countof(types));
}

void guard_test_mask_property(const char *const *files, size_t nfiles, scan_fn fn, uint64_t all);

TEST(guard_secrets_mask_property)
{
    guard_test_mask_property(secret_files, countof(secret_files), guard_scan_secrets, GUARD_SECRETS_ALL);
}

/* ---- table-driven cases --------------------------------------------------- */

static void expect_secrets(const char *text, const char *const *want, int line)
{
    guard_findings f = { 0 };
    size_t tl = strlen(text);
    char *copy = malloc(tl ? tl : 1); /* exact size: ASan sees over-reads */
    memcpy(copy, text, tl);
    err_code e = guard_scan_secrets(copy, tl, GUARD_SECRETS_ALL, &f);
    free(copy);
    if (e != ERR_OK)
        test_fail(__FILE__, line, "scan failed: %s", err_name(e));
    size_t nw = 0;
    while (want[nw])
        nw++;
    bool ok = f.n == nw;
    for (size_t i = 0; ok && i < f.n; i++) {
        char got[600];
        snprintf(got, sizeof got, "%s/%s:%.*s", guard_type_name(f.v[i].type), f.v[i].rule, (int)f.v[i].len,
                 text + f.v[i].start);
        ok = strcmp(got, want[i]) == 0;
    }
    if (!ok) {
        test_fail(__FILE__, line, "findings for \"%.80s\":", text);
        for (size_t i = 0; i < f.n; i++)
            fprintf(stderr, "      got %s/%s:%.*s\n", guard_type_name(f.v[i].type), f.v[i].rule, (int)f.v[i].len,
                    text + f.v[i].start);
        for (size_t i = 0; i < nw; i++)
            fprintf(stderr, "      want %s\n", want[i]);
    }
    guard_findings_free(&f);
}

static const struct secret_case {
    const char *text;
    const char *want[3];
} secret_cases[] = {
    /* prefix rules: length, character set and boundaries */
    { "AKIAIOSFODNN7EXAMPLE", { "API_KEY/aws_access_key_id:AKIAIOSFODNN7EXAMPLE" } },
    { "AKIAIOSFODNN7EXAMPL and AKIAIOSFODNN7EXAMPLEX and akiaiosfodnn7example", { NULL } },
    { "AKIAXXXXXXXXXXXXXXXX", { NULL } },
    { "key=AIzaSyD-1234567890abcdefghijklmnopqrstu;",
      { "API_KEY/google_api_key:AIzaSyD-1234567890abcdefghijklmnopqrstu" } },
    { "AIzaSyD-1234567890abcdefghijklmnopqrst (34)", { NULL } },
    { "sk-abcdefghijklmnopqrstuvwxyz (no digit, one case)", { NULL } },
    { "sk-Abcdefghijklmnopqrst1234", { "API_KEY/openai_api_key:sk-Abcdefghijklmnopqrst1234" } },
    { "sk-0123456789abcdef0123456789abcdef", { "API_KEY/openai_api_key:sk-0123456789abcdef0123456789abcdef" } },
    { "SK0123456789abcdef0123456789abcdeF", { NULL } },
    { "https://x.example/v1/ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789/raw",
      { "API_KEY/github_pat:ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789" } },
    { "{\"k\":\"\\nxoxb-1234567890-abcdefghijKLMNOP\"}",
      { "API_KEY/slack_bot_token:xoxb-1234567890-abcdefghijKLMNOP" } },
    /* JWT */
    { "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.", { "JWT/jwt:eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0." } },
    { "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0", { NULL } },
    { "eyJhbGciOiJub25lIn0.bm90IGpzb24.c2ln (payload not JSON)", { NULL } },
    { "eyJ0eXAiOiJKV1QifQ.eyJzdWIiOiJ4In0.c2ln (no alg)", { NULL } },
    /* private keys */
    { "-----BEGIN PRIVATE KEY-----\nMIIBVQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\nbye",
      { "PRIVATE_KEY/private_key_block:-----BEGIN PRIVATE KEY-----\nMIIBVQIBADANBgkqhkiG9w0BAQEFAASC\n"
        "-----END PRIVATE KEY-----" } },
    { "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIIGlRHU1nvmHkzbNn5Ql3jcJ0rF9\nMHcCAQEE\n\nthat is all I have",
      { "PRIVATE_KEY/private_key_truncated:-----BEGIN EC PRIVATE KEY-----\n"
        "MHcCAQEEIIGlRHU1nvmHkzbNn5Ql3jcJ0rF9\nMHcCAQEE" } },
    { "-----BEGIN RSA PRIVATE KEY-----\nshort\n", { NULL } },
    { "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0t\n"
      "-----END PUBLIC KEY-----",
      { NULL } },
    /* connection strings */
    { "postgres://u:Zx9-pw@db/x", { "CONNECTION_STRING/postgres_url:postgres://u:Zx9-pw@db/x" } },
    { "postgres://u:@db/x postgres://u:pw@ postgres://:password@db", { NULL } },
    { "Server=a;Password='p;w d';Database=b",
      { "CONNECTION_STRING/conn_string_password:Server=a;Password='p;w d';Database=b" } },
    { "Password=abc", { NULL } },
    { "AccountKey=short==", { NULL } },
    { "x;AccountKey=QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo=",
      { "CONNECTION_STRING/azure_storage_key:AccountKey=QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo=" } },
    /* entropy */
    { "token: Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MA", { "SECRET/entropy_context:Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MA" } },
    { "sha1 0beec7b5ea3f0fdbc95d0dd47f3c5bc275da8a33, token 0beec7b5ea3f0fdbc95d0dd47f3c5bc275da8a33",
      { "SECRET/entropy_hex_context:0beec7b5ea3f0fdbc95d0dd47f3c5bc275da8a33" } },
    { "/home/alice/projects/genaiops/build-release/unit_tests", { NULL } },
    { "useTheForceLuke2024WithCamelCase", { NULL } },
};

TEST(guard_secrets_cases)
{
    for (size_t i = 0; i < countof(secret_cases); i++)
        expect_secrets(secret_cases[i].text, secret_cases[i].want, __LINE__);
}

/* The scan classifies sixteen or eight bytes per step and falls back to
 * single bytes: every case keeps its findings wherever it starts in a
 * step, after prose or after a run of token bytes that stops short. */
TEST(guard_secrets_every_alignment)
{
    static const char *const leads[] = { " ", "word ", "abcdefgh, ", "\n(" };
    for (size_t i = 0; i < countof(secret_cases); i++)
        for (size_t l = 0; l < countof(leads); l++)
            for (size_t pad = 0; pad < 33; pad++) {
                char text[1200], want_buf[3][700];
                const char *want[3] = { NULL, NULL, NULL };
                size_t k = 0, tl = strlen(secret_cases[i].text);
                for (size_t j = 0; j < pad; j++)
                    text[k++] = j % 7 == 6 ? ' ' : 'a' + (char)(j % 5); /* short words: no finding */
                size_t ll = strlen(leads[l]);
                memcpy(text + k, leads[l], ll);
                k += ll;
                if (k + tl + 1 > sizeof text)
                    continue;
                memcpy(text + k, secret_cases[i].text, tl + 1);
                for (size_t w = 0; w < 3 && secret_cases[i].want[w]; w++) {
                    snprintf(want_buf[w], sizeof want_buf[w], "%s", secret_cases[i].want[w]);
                    want[w] = want_buf[w];
                }
                expect_secrets(text, want, __LINE__);
            }
}

TEST(guard_secrets_bad_args)
{
    guard_findings f = { 0 };
    CHECK_INT(guard_scan_secrets(NULL, 0, GUARD_SECRETS_ALL, &f), ERR_OK);
    CHECK_INT(guard_scan_secrets(NULL, 1, GUARD_SECRETS_ALL, &f), ERR_INVAL);
    CHECK_INT(guard_scan_secrets("x", 1, GUARD_SECRETS_ALL, NULL), ERR_INVAL);
    CHECK_INT(guard_scan_secrets("AKIAIOSFODNN7EXAMPLE", 20, GUARD_PII_ALL, &f), ERR_OK);
    CHECK_INT(f.n, 0);
    /* An AKIA key cut by len is not read past it. */
    char *heap = malloc(19);
    memcpy(heap, "AKIAIOSFODNN7EXAMPL", 19);
    CHECK_INT(guard_scan_secrets(heap, 19, GUARD_SECRETS_ALL, &f), ERR_OK);
    CHECK_INT(f.n, 0);
    free(heap);
    guard_findings_free(&f);
}

static double sec_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Repeated BEGIN lines without END, one endless token, "k=v;" chains,
 * '/'-separated runs, JWT-looking dots: 2 MiB each, linear time. */
TEST(guard_secrets_hostile)
{
    static const char *const units[] = {
        "-----BEGIN RSA PRIVATE KEY-----\n", "-----BEGIN CERTIFICATE-----\nQUJD\n", "A", "a/", "x=y;",
        ";Password=p", "eyJhbGciOiJub25lIn0.", "postgres://a:b@", "SG.", "Server=a;", "\\n", "/sk-", "=",
    };
    size_t len = 2u << 20;
    char *buf = malloc(len);
    for (size_t u = 0; u < countof(units); u++) {
        size_t ul = strlen(units[u]);
        for (size_t i = 0; i < len; i++)
            buf[i] = units[u][i % ul];
        guard_findings f = { .max = 64 };
        double t0 = sec_now();
        CHECK_INT(guard_scan_secrets(buf, len, GUARD_SECRETS_ALL, &f), ERR_OK);
        double dt = sec_now() - t0;
        if (dt > 2.0)
            test_fail(__FILE__, __LINE__, "pattern \"%s\": %.2f s for 2 MiB", units[u], dt);
        guard_findings_free(&f);
    }
    free(buf);
}
