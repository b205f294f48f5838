/*
 * test_report.c - the output files and the record JSON (src/eval/report.c).
 *
 * Three records (a pass, a hostile failure with quotes, commas, newlines,
 * <script>, a control character and invalid UTF-8, and a provider error)
 * go through every format. CSV, JUnit and the JSONL records are compared
 * with golden files in tests/data/report/; the XML is also checked by a
 * small well-formedness parser (tags balance, attributes quoted, only the
 * predefined entities, no characters XML 1.0 forbids), and the .json by
 * jansson. HTML must escape everything and load nothing; the row cap must
 * be noted. The write path: the target appears only at close, abort and
 * failure leave no temp file, and a write past RLIMIT_FSIZE is ERR_IO with
 * the old target untouched.
 */
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "eval/report.h"
#include "test.h"

/* Set REPORT_REGEN=1 to rewrite the golden files from the current output. */
static bool regen(void)
{
    const char *e = getenv("REPORT_REGEN");
    return e && *e == '1';
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    buf b;
    buf_init(&b, (size_t)1 << 30);
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        if (buf_append(&b, chunk, n) != ERR_OK)
            break;
    fclose(f);
    if (!b.p)
        buf_append(&b, "", 0);
    if (len)
        *len = b.len;
    return b.p;
}

static void make_dir(char *out, size_t cap)
{
    snprintf(out, cap, "/tmp/genaiops-report-XXXXXX");
    if (!mkdtemp(out))
        test_fail(__FILE__, __LINE__, "mkdtemp: %s", strerror(errno));
}

/* Entries in dir (other than . and ..); the first name into first. */
static int dir_entries(const char *dir, char *first, size_t cap)
{
    DIR *d = opendir(dir);
    int n = 0;
    if (first && cap)
        first[0] = '\0';
    if (!d)
        return -1;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        if (n++ == 0 && first)
            snprintf(first, cap, "%s", e->d_name);
    }
    closedir(d);
    return n;
}

static void remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    char p[1024];
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

static const char *const prompts[] = { "greeting" };
static const char *const providers[] = { "openai:gpt-4o-mini", "anthropic:claude" };
static const ev_report_meta meta = { "run-1", "demo & <test>", "promptfooconfig.yaml", "2025-11-21T12:00:00Z",
                                     prompts, 1, providers, 2 };

/* The three records; vars are built once. */
typedef struct fixture {
    json_t *vars0, *vars1;
    ev_assert_outcome a0[1], a1[2];
    ev_record r[3];
} fixture;

static void fixture_init(fixture *f)
{
    f->vars0 = json_pack("{s:s}", "name", "Ada");
    f->vars1 = json_pack("{s:s,s:i}", "q", "a \"quoted\", value", "n", 3);
    f->a0[0] = (ev_assert_outcome){ "contains", false, NULL, 1, { EV_PASS, 1.0, "Assertion passed" } };
    f->a1[0] = (ev_assert_outcome){ "icontains", true, NULL, 1,
                                    { EV_FAIL, 0.0, "Expected output to not contain \"<script>\"" } };
    f->a1[1] = (ev_assert_outcome){ "llm-rubric", false, "tone", 2, { EV_FAIL, 0.5, "Too <b>rude</b>, says the judge" } };
    f->r[0] = (ev_record){ .test = 0, .repeat = 0, .prompt = 0, .provider = 0, .description = "greets",
                           .vars = f->vars0, .prompt_text = "Say hi to Ada", .output = "Hello, Ada!",
                           .verdict = EV_PASS, .score = 1.0, .asserts = f->a0, .nasserts = 1,
                           .latency_ms = 120.5, .cost_usd = 0.00012, .tokens_in = 10, .tokens_out = 4 };
    f->r[1] = (ev_record){ .test = 1, .repeat = 1, .prompt = 0, .provider = 0, .description = "hostile <script>",
                           .vars = f->vars1, .prompt_text = "Q: a \"quoted\", value",
                           .output = "line1\nline2, \"q\" <script>alert(1)</script> & \x01 bad\xff end",
                           .verdict = EV_FAIL, .score = 0.25, .asserts = f->a1, .nasserts = 2,
                           .latency_ms = NAN, .cost_usd = NAN, .tokens_in = -1, .tokens_out = -1 };
    f->r[2] = (ev_record){ .test = 2, .repeat = 0, .prompt = 0, .provider = 1, .description = NULL, .vars = NULL,
                           .prompt_text = "Say hi", .output = NULL, .error = "upstream 503: Service Unavailable",
                           .verdict = EV_ERROR, .score = 0.0, .latency_ms = 0.0, .cost_usd = NAN,
                           .tokens_in = -1, .tokens_out = -1, .cached = true };
}

static void fixture_free(fixture *f)
{
    json_decref(f->vars0);
    json_decref(f->vars1);
}

static json_t *fixture_summary(const fixture *f)
{
    ev_stats *s = ev_stats_new(prompts, 1, providers, 2, 3, 1);
    for (int i = 0; i < 3; i++)
        ev_stats_add(s, &f->r[i]);
    json_t *j = ev_stats_summary(s, 1);
    ev_stats_free(s);
    return j;
}

/* Writes the fixture to dir/name; returns the file's bytes (caller frees). */
static char *write_report(const char *dir, const char *name, size_t *len)
{
    fixture f;
    fixture_init(&f);
    char path[512], msg[256] = "";
    snprintf(path, sizeof path, "%s/%s", dir, name);
    ev_report *rep = ev_report_open(path, &meta, msg, sizeof msg);
    CHECK(rep != NULL);
    if (!rep) {
        test_fail(__FILE__, __LINE__, "open %s: %s", path, msg);
        fixture_free(&f);
        return NULL;
    }
    CHECK(access(path, F_OK) != 0); /* not there until close */
    for (int i = 0; i < 3; i++)
        CHECK_INT(ev_report_add(rep, &f.r[i]), ERR_OK);
    json_t *sum = fixture_summary(&f);
    CHECK_INT(ev_report_close(rep, sum, msg, sizeof msg), ERR_OK);
    json_decref(sum);
    fixture_free(&f);
    char only[256];
    CHECK_INT(dir_entries(dir, only, sizeof only), 1); /* no temp or spool file left */
    CHECK_STR(only, name);
    return slurp(path, len);
}

/* Compares with tests/data/report/<golden> (or rewrites it when regenerating). */
static void check_golden(const char *got, size_t len, const char *golden)
{
    char rel[256];
    snprintf(rel, sizeof rel, "report/%s", golden);
    if (regen()) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", test_data_dir(), rel);
        FILE *f = fopen(path, "wb");
        if (f) {
            fwrite(got, 1, len, f);
            fclose(f);
        }
        return;
    }
    size_t glen = 0;
    char *want = test_read_data(rel, &glen);
    if (!want)
        return;
    if (glen != len || memcmp(want, got, len) != 0) {
        size_t i = 0;
        while (i < len && i < glen && want[i] == got[i])
            i++;
        test_fail(__FILE__, __LINE__, "%s differs at byte %zu: got \"%.40s\", want \"%.40s\"", golden, i,
                  got + i, want + i);
    }
    free(want);
}

/* ---- a small XML well-formedness check ------------------------------------------ */

static bool xml_name_char(char c, bool first)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
           (!first && ((c >= '0' && c <= '9') || c == '-' || c == '.'));
}

/* Character data up to stop (exclusive): entities and characters must be legal. */
static bool xml_chars(const char **pp, const char *end, char stop, const char **why)
{
    const unsigned char *p = (const unsigned char *)*pp;
    while ((const char *)p < end && *p != (unsigned char)stop) {
        if (*p == '<') {
            *why = "raw < in text";
            return false;
        }
        if (*p == '&') {
            static const char *const ents[] = { "&amp;", "&lt;", "&gt;", "&quot;", "&apos;", "&#39;" };
            bool ok = false;
            for (size_t i = 0; i < countof(ents) && !ok; i++)
                if (strncmp((const char *)p, ents[i], strlen(ents[i])) == 0) {
                    p += strlen(ents[i]);
                    ok = true;
                }
            if (!ok) {
                *why = "bad entity";
                return false;
            }
            continue;
        }
        if ((*p < 0x20 && *p != '\t' && *p != '\n' && *p != '\r') || *p == 0xFF || *p == 0xFE || *p == 0xC0 ||
            *p == 0xC1 || *p >= 0xF5) {
            *why = "forbidden character";
            return false;
        }
        if (p[0] == 0xEF && p[1] == 0xBF && (p[2] == 0xBE || p[2] == 0xBF)) {
            *why = "U+FFFE/FFFF";
            return false;
        }
        p++;
    }
    *pp = (const char *)p;
    return true;
}

static bool xml_wellformed(const char *s, size_t n, const char **why)
{
    const char *p = s, *end = s + n;
    const char *stack[64];
    size_t stackn[64];
    int depth = 0, roots = 0;
    if (strncmp(p, "<?xml", 5) == 0) {
        const char *q = strstr(p, "?>");
        if (!q) {
            *why = "unterminated prolog";
            return false;
        }
        p = q + 2;
    }
    while (p < end) {
        if (*p != '<') {
            if (!xml_chars(&p, end, '<', why))
                return false;
            continue;
        }
        p++;
        bool closing = *p == '/';
        if (closing)
            p++;
        const char *name = p;
        if (!xml_name_char(*p, true)) {
            *why = "bad tag name";
            return false;
        }
        while (p < end && xml_name_char(*p, false))
            p++;
        size_t nlen = (size_t)(p - name);
        if (closing) {
            if (depth == 0 || stackn[depth - 1] != nlen || strncmp(stack[depth - 1], name, nlen) != 0) {
                *why = "mismatched close tag";
                return false;
            }
            depth--;
            if (*p++ != '>') {
                *why = "bad close tag";
                return false;
            }
            continue;
        }
        for (;;) {
            while (p < end && (*p == ' ' || *p == '\n'))
                p++;
            if (*p == '>' || (*p == '/' && p[1] == '>'))
                break;
            if (!xml_name_char(*p, true)) {
                *why = "bad attribute";
                return false;
            }
            while (p < end && xml_name_char(*p, false))
                p++;
            if (*p++ != '=' || *p++ != '"') {
                *why = "unquoted attribute";
                return false;
            }
            if (!xml_chars(&p, end, '"', why))
                return false;
            if (*p++ != '"') {
                *why = "unterminated attribute";
                return false;
            }
        }
        if (depth == 0)
            roots++;
        if (*p == '/') {
            p += 2;
        } else {
            if (depth == 64) {
                *why = "too deep";
                return false;
            }
            stack[depth] = name;
            stackn[depth++] = nlen;
            p++;
        }
    }
    if (depth != 0 || roots != 1) {
        *why = depth ? "unclosed element" : "not one root";
        return false;
    }
    return true;
}

TEST(report_xml_checker_self_test)
{
    static const struct {
        const char *doc;
        bool ok;
    } cases[] = {
        { "<?xml version=\"1.0\"?>\n<a x=\"1\"><b/>t &amp; u</a>\n", true },
        { "<a><b></a></b>", false },
        { "<a>x < y</a>", false },
        { "<a>&nbsp;</a>", false },
        { "<a x=1/>", false },
        { "<a>\x01</a>", false },
        { "<a/><b/>", false },
        { "<a>", false },
    };
    for (size_t i = 0; i < countof(cases); i++) {
        const char *why = "";
        if (xml_wellformed(cases[i].doc, strlen(cases[i].doc), &why) != cases[i].ok)
            test_fail(__FILE__, __LINE__, "case %zu: %s", i, why);
    }
}

/* ---- the formats ----------------------------------------------------------------- */

TEST(report_csv_golden)
{
    char dir[64];
    make_dir(dir, sizeof dir);
    size_t len = 0;
    char *got = write_report(dir, "out.csv", &len);
    if (got) {
        check_golden(got, len, "basic.csv");
        /* RFC 4180: CRLF line ends, quotes doubled inside quoted fields. */
        CHECK(strstr(got, "\r\n0,0,greeting,openai:gpt-4o-mini,") != NULL);
        CHECK(strstr(got, "\"line1\nline2, \"\"q\"\" <script>") != NULL);
        CHECK(strstr(got, "\xEF\xBF\xBD end") != NULL); /* invalid byte replaced */
        CHECK(strstr(got, "\xff") == NULL);
    }
    free(got);
    remove_dir(dir);
}

TEST(report_xml_golden_and_wellformed)
{
    char dir[64];
    make_dir(dir, sizeof dir);
    size_t len = 0;
    char *got = write_report(dir, "junit.xml", &len);
    if (got) {
        check_golden(got, len, "basic.xml");
        const char *why = "";
        if (!xml_wellformed(got, len, &why))
            test_fail(__FILE__, __LINE__, "junit.xml is not well-formed: %s", why);
        CHECK(strstr(got, "<testsuites name=\"demo &amp; &lt;test&gt;\" tests=\"3\" failures=\"1\" errors=\"1\"") !=
              NULL);
        CHECK(strstr(got, "<testsuite name=\"greeting | openai:gpt-4o-mini\" tests=\"2\" failures=\"1\" errors=\"0\"") !=
              NULL);
        CHECK(strstr(got, "<testsuite name=\"greeting | anthropic:claude\" tests=\"1\" failures=\"0\" errors=\"1\"") !=
              NULL);
        CHECK(strstr(got, "<error type=\"error\" message=\"upstream 503: Service Unavailable\">") != NULL);
        CHECK(strstr(got, "<script>") == NULL);
    }
    free(got);
    remove_dir(dir);
}

TEST(report_jsonl_golden)
{
    char dir[64];
    make_dir(dir, sizeof dir);
    size_t len = 0;
    char *got = write_report(dir, "out.jsonl", &len);
    if (got) {
        /* Every line is a JSON object; the last holds the summary. */
        char *line = got;
        int lines = 0;
        size_t records_len = 0;
        json_t *last = NULL;
        while (*line) {
            char *nl = strchr(line, '\n');
            CHECK(nl != NULL);
            if (!nl)
                break;
            json_error_t e;
            json_t *j = json_loadb(line, (size_t)(nl - line), 0, &e);
            if (!j)
                test_fail(__FILE__, __LINE__, "line %d: %s", lines + 1, e.text);
            json_decref(last);
            last = j;
            lines++;
            if (lines == 3)
                records_len = (size_t)(nl + 1 - got);
            line = nl + 1;
        }
        CHECK_INT(lines, 4);
        CHECK(json_is_object(json_object_get(last, "summary")));
        CHECK_STR(json_string_value(json_object_get(json_object_get(last, "meta"), "run_id")), "run-1");
        json_decref(last);
        check_golden(got, records_len, "basic.jsonl");
    }
    free(got);
    remove_dir(dir);
}

TEST(report_json_document)
{
    char dir[64];
    make_dir(dir, sizeof dir);
    size_t len = 0;
    char *got = write_report(dir, "out.json", &len);
    json_error_t e;
    json_t *j = got ? json_loadb(got, len, 0, &e) : NULL;
    if (got && !j)
        test_fail(__FILE__, __LINE__, "out.json: %s at %d", e.text, e.position);
    if (j) {
        CHECK_INT(json_integer_value(json_object_get(j, "version")), 1);
        const json_t *m = json_object_get(j, "meta");
        CHECK_STR(json_string_value(json_object_get(m, "description")), "demo & <test>");
        CHECK_STR(json_string_value(json_array_get(json_object_get(m, "providers"), 1)), "anthropic:claude");
        const json_t *res = json_object_get(j, "results");
        CHECK_INT(json_array_size(res), 3);
        const json_t *r1 = json_array_get(res, 1);
        CHECK_STR(json_string_value(json_object_get(r1, "verdict")), "fail");
        CHECK(json_is_null(json_object_get(r1, "latency_ms")));
        CHECK(json_is_null(json_object_get(r1, "tokens_in")));
        CHECK_STR(json_string_value(json_object_get(json_array_get(json_object_get(r1, "asserts"), 0), "type")),
                  "not-icontains");
        CHECK_STR(json_string_value(json_object_get(json_array_get(res, 2), "verdict")), "error");
        CHECK(json_is_null(json_object_get(json_array_get(res, 2), "output")));
        CHECK(json_is_true(json_object_get(json_array_get(res, 2), "cached")));
        fixture f;
        fixture_init(&f);
        json_t *sum = fixture_summary(&f);
        CHECK(json_equal(json_object_get(j, "summary"), sum));
        json_decref(sum);
        fixture_free(&f);
    }
    json_decref(j);
    free(got);

    /* No records at all is still a valid document. */
    char path[512], msg[128];
    snprintf(path, sizeof path, "%s/empty.json", dir);
    ev_report *rep = ev_report_open(path, NULL, msg, sizeof msg);
    CHECK(rep != NULL);
    CHECK_INT(ev_report_close(rep, NULL, msg, sizeof msg), ERR_OK);
    j = json_load_file(path, 0, &e);
    CHECK(j != NULL);
    CHECK_INT(json_array_size(json_object_get(j, "results")), 0);
    CHECK(json_is_null(json_object_get(j, "summary")));
    json_decref(j);
    remove_dir(dir);
}

static bool contains_ci(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (const char *p = hay; *p; p++)
        if (strncasecmp(p, needle, n) == 0)
            return true;
    return false;
}

TEST(report_html_escapes_and_loads_nothing)
{
    char dir[64];
    make_dir(dir, sizeof dir);
    size_t len = 0;
    char *got = write_report(dir, "r.html", &len);
    if (got) {
        CHECK(strncmp(got, "<!DOCTYPE html>", 15) == 0);
        CHECK(!contains_ci(got, "<script"));
        CHECK(strstr(got, "&lt;script&gt;alert(1)&lt;/script&gt;") != NULL);
        CHECK(strstr(got, "Too &lt;b&gt;rude&lt;/b&gt;") != NULL);
        CHECK(strstr(got, "<title>genaiops eval: demo &amp; &lt;test&gt;</title>") != NULL);
        /* Self-contained: no external resource of any kind. */
        CHECK(!contains_ci(got, "src="));
        CHECK(!contains_ci(got, "href="));
        CHECK(!contains_ci(got, "url("));
        CHECK(!contains_ci(got, "@import"));
        /* Failures and errors come first. */
        const char *fail = strstr(got, "hostile"), *pass = strstr(got, "greets");
        CHECK(fail && pass && fail < pass);
        CHECK(strstr(got, "<h2>Leaderboard</h2>") != NULL);
        CHECK(strstr(got, "</body></html>\n") != NULL);
        CHECK(strstr(got, "\x01") == NULL);
    }
    free(got);
    remove_dir(dir);
}

TEST(report_html_row_cap)
{
    char dir[64], path[512], msg[256];
    make_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/big.html", dir);
    ev_report *rep = ev_report_open(path, &meta, msg, sizeof msg);
    CHECK(rep != NULL);
    ev_record r = { .verdict = EV_PASS, .score = 1, .output = "ok", .latency_ms = NAN, .cost_usd = NAN,
                    .tokens_in = -1, .tokens_out = -1 };
    for (size_t i = 0; i < 1200; i++) {
        r.test = i;
        r.verdict = i % 400 == 7 ? EV_FAIL : EV_PASS; /* 3 failures, late in the run */
        r.description = r.verdict == EV_FAIL ? "FAILING" : NULL;
        CHECK_INT(ev_report_add(rep, &r), ERR_OK);
    }
    CHECK_INT(ev_report_close(rep, NULL, msg, sizeof msg), ERR_OK);
    char *got = slurp(path, NULL);
    if (got) {
        int rows = 0;
        for (const char *p = got; (p = strstr(p, "<tr><td class=\"n\">")); p++)
            rows++;
        CHECK_INT(rows, EV_REPORT_HTML_MAX_ROWS);
        CHECK(strstr(got, "200 of 1200 records are not shown (0 failed or errored, 200 passed)") != NULL);
        /* The three failures are the first rows. */
        const char *first_row = strstr(got, "<tr><td class=\"n\">");
        CHECK(first_row && strncmp(first_row, "<tr><td class=\"n\">7</td><td>FAILING", 35) == 0);
    }
    free(got);
    remove_dir(dir);
}

TEST(report_md)
{
    char dir[64];
    make_dir(dir, sizeof dir);
    size_t len = 0;
    char *got = write_report(dir, "r.md", &len);
    if (got) {
        CHECK(strncmp(got, "# genaiops eval: demo &amp; &lt;test&gt;\n", 41) == 0);
        CHECK(strstr(got, "## Leaderboard") != NULL);
        CHECK(strstr(got, "## Failed tests (2)") != NULL);
        CHECK(strstr(got, "- **test 1: hostile &lt;script&gt; (repeat 1)** (greeting / openai:gpt-4o-mini): fail") !=
              NULL);
        CHECK(strstr(got, "upstream 503") != NULL);
        CHECK(strstr(got, "<script") == NULL);
        CHECK(strstr(got, "| not\\-contains") == NULL); /* '-' needs no escape */
    }
    free(got);
    remove_dir(dir);
}

/* ---- the write path ----------------------------------------------------------------- */

TEST(report_open_refusals)
{
    char msg[256] = "";
    CHECK(ev_report_open("/tmp/x.txt", &meta, msg, sizeof msg) == NULL);
    CHECK(strstr(msg, "unknown output format") != NULL);
    CHECK(ev_report_open("/tmp/noext", &meta, msg, sizeof msg) == NULL);
    CHECK(ev_report_open("/tmp/dir/", &meta, msg, sizeof msg) == NULL);
    CHECK(ev_report_open("", &meta, msg, sizeof msg) == NULL);
    CHECK(ev_report_open(NULL, &meta, msg, sizeof msg) == NULL);
    msg[0] = '\0';
    CHECK(ev_report_open("/nonexistent-genaiops-dir/r.json", &meta, msg, sizeof msg) == NULL);
    CHECK(strstr(msg, "cannot create") != NULL);
    /* JUnit keeps a spool per column: too many columns are refused up front. */
    const char *many[300];
    for (int i = 0; i < 300; i++)
        many[i] = "p";
    ev_report_meta big = meta;
    big.prompt_labels = many;
    big.nprompts = 300;
    CHECK(ev_report_open("/tmp/r.xml", &big, msg, sizeof msg) == NULL);
    CHECK(strstr(msg, "at most") != NULL);
    CHECK(ev_report_add(NULL, NULL) == ERR_INVAL);
    CHECK(ev_report_close(NULL, NULL, msg, sizeof msg) == ERR_INVAL);
    ev_report_abort(NULL);
}

TEST(report_abort_leaves_nothing)
{
    static const char *const names[] = { "a.json", "a.jsonl", "a.csv", "a.xml", "a.html", "a.md" };
    char dir[64], path[512], msg[128];
    make_dir(dir, sizeof dir);
    fixture f;
    fixture_init(&f);
    for (size_t i = 0; i < countof(names); i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        ev_report *rep = ev_report_open(path, &meta, msg, sizeof msg);
        CHECK(rep != NULL);
        for (int k = 0; k < 3; k++)
            ev_report_add(rep, &f.r[k]);
        CHECK_INT(dir_entries(dir, NULL, 0), 1); /* the temp file (spools are unlinked) */
        ev_report_abort(rep);
        CHECK_INT(dir_entries(dir, NULL, 0), 0);
    }
    fixture_free(&f);
    remove_dir(dir);
}

TEST(report_write_failure_is_err_io)
{
    char dir[64], path[512], msg[256] = "";
    make_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/out.jsonl", dir);
    FILE *old = fopen(path, "w");
    fputs("previous run\n", old);
    fclose(old);

    struct rlimit saved, lim;
    getrlimit(RLIMIT_FSIZE, &saved);
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    lim = saved;
    lim.rlim_cur = 100 * 1024;
    CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0);

    ev_report *rep = ev_report_open(path, &meta, msg, sizeof msg);
    CHECK(rep != NULL);
    char *big = malloc(4096);
    memset(big, 'x', 4095);
    big[4095] = '\0';
    ev_record r = { .output = big, .verdict = EV_PASS, .score = 1, .latency_ms = NAN, .cost_usd = NAN,
                    .tokens_in = -1, .tokens_out = -1 };
    err_code e = ERR_OK;
    for (int i = 0; i < 200 && e == ERR_OK; i++)
        e = ev_report_add(rep, &r);
    CHECK_INT(e, ERR_IO);
    CHECK_INT(ev_report_add(rep, &r), ERR_IO); /* sticky */
    CHECK_INT(ev_report_close(rep, NULL, msg, sizeof msg), ERR_IO);
    CHECK(strstr(msg, "out.jsonl") != NULL);
    CHECK(strstr(msg, "too large") != NULL || strstr(msg, "File") != NULL);

    setrlimit(RLIMIT_FSIZE, &saved);
    signal(SIGXFSZ, prev);
    free(big);
    /* The previous file is untouched and no temp file is left behind. */
    char *now = slurp(path, NULL);
    CHECK_STR(now, "previous run\n");
    free(now);
    CHECK_INT(dir_entries(dir, NULL, 0), 1);
    remove_dir(dir);
}

TEST(report_close_failure_in_spooled_format)
{
    /* The html spools fit, but the document written at close does not. */
    char dir[64], path[512], msg[256] = "";
    make_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/out.html", dir);
    struct rlimit saved, lim;
    getrlimit(RLIMIT_FSIZE, &saved);
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    lim = saved;
    lim.rlim_cur = 256 * 1024;
    setrlimit(RLIMIT_FSIZE, &lim);
    ev_report *rep = ev_report_open(path, &meta, msg, sizeof msg);
    CHECK(rep != NULL);
    char *out = malloc(1800);
    memset(out, 'y', 1799);
    out[1799] = '\0';
    ev_record r = { .output = out, .verdict = EV_PASS, .score = 1, .latency_ms = NAN, .cost_usd = NAN,
                    .tokens_in = -1, .tokens_out = -1 };
    for (int i = 0; i < 60; i++) { /* ~110 KB in each spool */
        r.verdict = EV_PASS;
        CHECK_INT(ev_report_add(rep, &r), ERR_OK);
        r.verdict = EV_FAIL;
        CHECK_INT(ev_report_add(rep, &r), ERR_OK);
    }
    /* Both spools together exceed the limit once copied into one file. */
    for (int i = 0; i < 40; i++) {
        r.verdict = i % 2 ? EV_PASS : EV_FAIL;
        ev_report_add(rep, &r);
    }
    CHECK_INT(ev_report_close(rep, NULL, msg, sizeof msg), ERR_IO);
    setrlimit(RLIMIT_FSIZE, &saved);
    signal(SIGXFSZ, prev);
    free(out);
    CHECK(access(path, F_OK) != 0);
    CHECK_INT(dir_entries(dir, NULL, 0), 0);
    remove_dir(dir);
}

TEST(report_record_too_big_is_skipped)
{
    char dir[64], path[512], msg[128];
    make_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/out.json", dir);
    ev_report *rep = ev_report_open(path, NULL, msg, sizeof msg);
    size_t n = EV_REPORT_RECORD_MAX + 1;
    char *huge = malloc(n + 1);
    memset(huge, 'z', n);
    huge[n] = '\0';
    ev_record r = { .output = huge, .verdict = EV_PASS, .latency_ms = NAN, .cost_usd = NAN, .tokens_in = -1,
                    .tokens_out = -1 };
    CHECK_INT(ev_report_add(rep, &r), ERR_TOOBIG);
    free(huge);
    r.output = "small";
    CHECK_INT(ev_report_add(rep, &r), ERR_OK);
    CHECK_INT(ev_report_close(rep, NULL, msg, sizeof msg), ERR_OK);
    json_t *j = json_load_file(path, 0, NULL);
    CHECK(j != NULL);
    CHECK_INT(json_array_size(json_object_get(j, "results")), 1);
    json_decref(j);
    remove_dir(dir);
}

TEST(report_keeps_target_mode)
{
    char dir[64], path[512], msg[128];
    make_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/out.csv", dir);
    ev_report *rep = ev_report_open(path, NULL, msg, sizeof msg);
    CHECK_INT(ev_report_close(rep, NULL, msg, sizeof msg), ERR_OK);
    struct stat st;
    CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0644);
    chmod(path, 0600);
    rep = ev_report_open(path, NULL, msg, sizeof msg);
    CHECK_INT(ev_report_close(rep, NULL, msg, sizeof msg), ERR_OK);
    CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
    char *got = slurp(path, NULL);
    CHECK_STR(got, "test,repeat,prompt,provider,vars,output,verdict,score,latency_ms,cost_usd,error,reasons\r\n");
    free(got);
    remove_dir(dir);
}

/* ---- the record JSON ------------------------------------------------------------------ */

TEST(report_record_json)
{
    fixture f;
    fixture_init(&f);
    json_t *j = ev_record_json(&f.r[1]);
    CHECK(j != NULL);
    CHECK_INT(json_integer_value(json_object_get(j, "test")), 1);
    CHECK_INT(json_integer_value(json_object_get(j, "repeat")), 1);
    CHECK_STR(json_string_value(json_object_get(j, "output")),
              "line1\nline2, \"q\" <script>alert(1)</script> & \x01 bad\xEF\xBF\xBD end");
    CHECK(fabs(json_number_value(json_object_get(j, "score")) - 0.25) < 1e-15);
    CHECK(json_is_null(json_object_get(j, "cost_usd")));
    CHECK(json_is_null(json_object_get(j, "error")));
    CHECK(json_equal(json_object_get(j, "vars"), f.vars1));
    const json_t *a = json_array_get(json_object_get(j, "asserts"), 1);
    CHECK_STR(json_string_value(json_object_get(a, "type")), "llm-rubric");
    CHECK_STR(json_string_value(json_object_get(a, "metric")), "tone");
    CHECK(json_number_value(json_object_get(a, "weight")) == 2.0);
    CHECK_STR(json_string_value(json_object_get(a, "verdict")), "fail");
    json_decref(j);

    /* ev_record_write appends to what is there and leaves it as it was on error. */
    buf b;
    buf_init(&b, 64);
    buf_append_str(&b, "prefix:");
    CHECK_INT(ev_record_write(&b, &f.r[0]), ERR_TOOBIG);
    CHECK_INT(b.len, 7);
    CHECK_STR(b.p, "prefix:");
    buf_free(&b);
    buf_init(&b, 1 << 20);
    CHECK_INT(ev_record_write(&b, &f.r[2]), ERR_OK);
    j = json_loadb(b.p, b.len, 0, NULL);
    CHECK(j != NULL);
    CHECK(json_is_object(json_object_get(j, "vars")) && json_object_size(json_object_get(j, "vars")) == 0);
    CHECK_STR(json_string_value(json_object_get(j, "error")), "upstream 503: Service Unavailable");
    json_decref(j);
    buf_free(&b);
    CHECK_INT(ev_record_write(NULL, &f.r[0]), ERR_INVAL);
    fixture_free(&f);
}

TEST(report_record_json_utf8_table)
{
    /* Invalid UTF-8 of every kind becomes U+FFFD, one per bad byte; valid passes. */
    static const struct {
        const char *in, *out;
    } cases[] = {
        { "caf\xC3\xA9", "caf\xC3\xA9" },
        { "\xC0\xAF", "\xEF\xBF\xBD\xEF\xBF\xBD" },                 /* overlong */
        { "\xED\xA0\x80", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD" }, /* surrogate */
        { "\xF4\x90\x80\x80", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD" }, /* > U+10FFFF */
        { "\xE2\x82", "\xEF\xBF\xBD\xEF\xBF\xBD" },                 /* truncated */
        { "\xF0\x9F\x98\x80", "\xF0\x9F\x98\x80" },                 /* emoji */
        { "tab\there", "tab\there" },
    };
    for (size_t i = 0; i < countof(cases); i++) {
        ev_record r = { .output = cases[i].in, .latency_ms = NAN, .cost_usd = NAN, .tokens_in = -1,
                        .tokens_out = -1 };
        json_t *j = ev_record_json(&r);
        CHECK(j != NULL);
        CHECK_STR(json_string_value(json_object_get(j, "output")), cases[i].out);
        json_decref(j);
    }
}

/* ---- the terminal table ----------------------------------------------------------------- */

TEST(report_table)
{
    const char *pl[] = { "p\x1b[31mred" };
    const char *vl[] = { "model-a", "model-bb" };
    ev_stats *s = ev_stats_new(pl, 1, vl, 2, 10, 1);
    for (size_t i = 0; i < 10; i++) {
        ev_record r = { .test = i, .provider = i % 2, .verdict = i % 3 ? EV_PASS : EV_FAIL, .score = 1,
                        .latency_ms = 100 + (double)i, .cost_usd = 0.001, .tokens_in = 1, .tokens_out = 1 };
        ev_stats_add(s, &r);
    }
    json_t *sum = ev_stats_summary(s, 1);
    ev_stats_free(s);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    ev_report_table(f, sum, &meta);
    fclose(f);
    CHECK(strstr(text, "Evaluation: demo & <test>\n") != NULL);
    CHECK(strstr(text, "Tests 10, records 10: 6 passed, 4 failed, 0 errors\n") != NULL);
    CHECK(strstr(text, "Pass rate 60.0%, 95% CI [31.3%, 83.2%] (Wilson)") != NULL);
    CHECK(strstr(text, "Leaderboard:\n") != NULL);
    CHECK(strchr(text, 0x1b) == NULL);
    CHECK(strstr(text, "p?[31mred") != NULL);
    /* The header and the two rows are aligned: the same width. */
    const char *lb = strstr(text, "Leaderboard:\n");
    if (lb) {
        const char *l1 = lb + 13, *l2 = strchr(l1, '\n') + 1, *l3 = strchr(l2, '\n') + 1;
        size_t w1 = (size_t)(strchr(l1, '\n') - l1), w2 = (size_t)(strchr(l2, '\n') - l2),
               w3 = (size_t)(strchr(l3, '\n') - l3);
        CHECK_INT(w1, w2);
        CHECK_INT(w2, w3);
        CHECK(strstr(l2, "model-a") != NULL); /* 3/5 vs 3/5: the tie keeps column order */
    }
    free(text);
    /* Garbage summaries print what they can and do not crash. */
    f = open_memstream(&text, &len);
    json_t *junk = json_pack("{s:s,s:[i,s],s:{s:i}}", "pass_rate", "x", "columns", 1, "y", "metrics", "m", 2);
    ev_report_table(f, junk, NULL);
    ev_report_table(f, NULL, NULL);
    fclose(f);
    CHECK(strstr(text, "Pass rate -") != NULL);
    free(text);
    json_decref(junk);
    json_decref(sum);
}
