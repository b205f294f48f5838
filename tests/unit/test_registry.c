/*
 * test_registry.c - the prompt registry (src/prompt/registry.c) on a fresh
 * SQLite store per test: references, names and labels (tables of good and
 * bad ones), saving and deduplication, the content hash, chat prompts and
 * template errors, label moves, protection, rollback's undo walk, history,
 * pushes (all or nothing), the gateway snapshot, and concurrent savers.
 */
#include <jansson.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include "prompt/registry.h"
#include "test.h"

typedef struct tmpdb {
    char dir[64];
    char path[128];
    char url[160];
} tmpdb;

static void tmpdb_make(tmpdb *t)
{
    snprintf(t->dir, sizeof t->dir, "/tmp/genaiops-reg-XXXXXX");
    if (!mkdtemp(t->dir))
        test_fail(__FILE__, __LINE__, "mkdtemp failed");
    snprintf(t->path, sizeof t->path, "%s/p.db", t->dir);
    snprintf(t->url, sizeof t->url, "sqlite://%s", t->path);
}

static void tmpdb_drop(tmpdb *t)
{
    char p[200];
    const char *sfx[] = { "", "-wal", "-shm" };
    for (size_t i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s%s", t->path, sfx[i]);
        unlink(p);
    }
    rmdir(t->dir);
}

static long long q_int(const char *path, const char *sql)
{
    long long v = -1;
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
            v = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    return v;
}

static prompt_input text_input(const char *name, const char *tmpl)
{
    return (prompt_input){ .name = name, .type = PROMPT_TEXT, .template = tmpl, .author = "ann" };
}

static int save_text(const char *url, const char *name, const char *tmpl, bool *created)
{
    prompt_input in = text_input(name, tmpl);
    json_t *out = NULL;
    query_error e = { 0 };
    bool c = false;
    err_code r = prompt_save(url, &in, &out, &c, &e);
    if (r) {
        test_fail(__FILE__, __LINE__, "save %s: %s", name, e.message);
        return -1;
    }
    int v = (int)json_integer_value(json_object_get(out, "version"));
    json_decref(out);
    if (created)
        *created = c;
    return v;
}

static json_t *get(const char *url, const char *refs, query_error *e)
{
    prompt_ref ref;
    json_t *out = NULL;
    if (!prompt_ref_parse(refs, &ref, e))
        return NULL;
    if (prompt_get(url, &ref, &out, e) != ERR_OK)
        return NULL;
    return out;
}

static bool has_label(const json_t *v, const char *label)
{
    size_t i;
    json_t *x;
    json_array_foreach(json_object_get(v, "labels"), i, x)
        if (strcmp(json_string_value(x), label) == 0)
            return true;
    return false;
}

TEST(registry_ref_parse)
{
    static const struct {
        const char *in;
        bool ok;
        const char *name, *label;
        int version;
    } cases[] = {
        { "support/answer", true, "support/answer", "", 0 },
        { "support/answer@production", true, "support/answer", "production", 0 },
        { "support/answer:12", true, "support/answer", "", 12 },
        { "a@latest", true, "a", "latest", 0 },
        { "a:007", true, "a", "", 7 },
        { "", false, NULL, NULL, 0 },
        { "a:", false, NULL, NULL, 0 },
        { "a:0", false, NULL, NULL, 0 },
        { "a:-1", false, NULL, NULL, 0 },
        { "a:1x", false, NULL, NULL, 0 },
        { "a:99999999999", false, NULL, NULL, 0 },
        { "a@", false, NULL, NULL, 0 },
        { "a@Prod", false, NULL, NULL, 0 },
        { "a@x@y", false, NULL, NULL, 0 },
        { "a@1:2", false, NULL, NULL, 0 },
        { "@prod", false, NULL, NULL, 0 },
        { ":3", false, NULL, NULL, 0 },
        { "a/../b", false, NULL, NULL, 0 },
        { "a b", false, NULL, NULL, 0 },
        { "a/versions", false, NULL, NULL, 0 },
    };
    for (size_t i = 0; i < countof(cases); i++) {
        prompt_ref ref;
        query_error e = { 0 };
        bool ok = prompt_ref_parse(cases[i].in, &ref, &e);
        if (ok != cases[i].ok) {
            test_fail(__FILE__, __LINE__, "'%s': ok=%d (%s)", cases[i].in, ok, e.message);
            continue;
        }
        if (ok) {
            CHECK_STR(ref.name, cases[i].name);
            CHECK_STR(ref.label, cases[i].label);
            CHECK_INT(ref.version, cases[i].version);
        } else {
            CHECK_INT(e.status, 400);
            CHECK_STR(e.code, "invalid_prompt_ref");
            CHECK(e.message[0] != '\0');
        }
    }
    query_error e = { 0 };
    prompt_ref ref;
    CHECK(!prompt_ref_parse(NULL, &ref, &e));
    char longname[PROMPT_NAME_MAX + 10];
    memset(longname, 'x', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    CHECK(!prompt_ref_parse(longname, &ref, &e));
    CHECK(strstr(e.message, "longer") != NULL);
}

TEST(registry_name_and_label_syntax)
{
    static const struct {
        const char *name;
        bool ok;
        const char *why; /* a word the message must contain */
    } names[] = {
        { "a", true, NULL },
        { "support/answer", true, NULL },
        { "A.b_c-d/e.f/g", true, NULL },
        { ".hidden", true, NULL },
        { "a/versions/b", true, NULL },
        { "", false, "empty" },
        { "/a", false, "empty" },
        { "a/", false, "empty" },
        { "a//b", false, "empty" },
        { "a/./b", false, "'.'" },
        { "..", false, "'..'" },
        { "a b", false, "' '" },
        { "a@b", false, "'@'" },
        { "a:b", false, "':'" },
        { "caf\xc3\xa9", false, "0xc3" },
        { "a\nb", false, "0x0a" },
        { "x/labels", false, "labels" },
        { "history", false, "history" },
        { "a/diff", false, "diff" },
        { "a/render", false, "render" },
        { "a/rollback", false, "rollback" },
        { "a/run", false, "run" },
        { "a/versions", false, "versions" },
    };
    for (size_t i = 0; i < countof(names); i++) {
        query_error e = { 0 };
        bool ok = prompt_name_valid(names[i].name, &e);
        if (ok != names[i].ok)
            test_fail(__FILE__, __LINE__, "name '%s': ok=%d", names[i].name, ok);
        else if (!ok) {
            CHECK_INT(e.status, 400);
            CHECK_STR(e.code, "invalid_prompt_name");
            CHECK_STR(e.param, "name");
            if (!strstr(e.message, names[i].why))
                test_fail(__FILE__, __LINE__, "name '%s': message '%s' lacks '%s'", names[i].name, e.message,
                          names[i].why);
        }
    }
    char n201[PROMPT_NAME_MAX + 2];
    memset(n201, 'a', sizeof n201 - 1);
    n201[sizeof n201 - 1] = '\0';
    query_error e = { 0 };
    CHECK(!prompt_name_valid(n201, &e));
    n201[PROMPT_NAME_MAX] = '\0';
    CHECK(prompt_name_valid(n201, &e));

    static const struct {
        const char *label;
        bool ok;
    } labels[] = {
        { "production", true }, { "staging", true }, { "v1.2_rc-3", true }, { "0", true }, { "latest", true },
        { "", false },          { "Prod", false },   { "-x", false },         { ".x", false }, { "a b", false },
        { "a/b", false },       { "\xc3\xa9", false },
    };
    for (size_t i = 0; i < countof(labels); i++) {
        bool ok = prompt_label_valid(labels[i].label, &e);
        if (ok != labels[i].ok)
            test_fail(__FILE__, __LINE__, "label '%s': ok=%d", labels[i].label, ok);
        else if (!ok)
            CHECK_STR(e.code, "invalid_label");
    }
    char l65[PROMPT_LABEL_MAX + 2];
    memset(l65, 'a', sizeof l65 - 1);
    l65[sizeof l65 - 1] = '\0';
    CHECK(!prompt_label_valid(l65, &e));
    l65[PROMPT_LABEL_MAX] = '\0';
    CHECK(prompt_label_valid(l65, &e));
}

TEST(registry_save_versions_and_dedup)
{
    tmpdb t;
    tmpdb_make(&t);
    bool created = false;
    CHECK_INT(save_text(t.url, "greet", "Hello {{name}}", &created), 1);
    CHECK(created);
    CHECK_INT(save_text(t.url, "greet", "Hello {{name}}", &created), 1);
    CHECK(!created);
    CHECK_INT(save_text(t.url, "greet", "Hi {{name}}", &created), 2);
    CHECK(created);
    /* Going back to v1's content is a new version: only the latest dedups. */
    CHECK_INT(save_text(t.url, "greet", "Hello {{name}}", &created), 3);
    CHECK(created);
    CHECK_INT(q_int(t.path, "SELECT count(*) FROM prompt_versions"), 3);
    CHECK_INT(q_int(t.path, "SELECT latest FROM prompts WHERE name='greet'"), 3);

    query_error e = { 0 };
    json_t *v = get(t.url, "greet:1", &e);
    CHECK(v != NULL);
    CHECK_STR(json_string_value(json_object_get(v, "name")), "greet");
    CHECK_INT(json_integer_value(json_object_get(v, "version")), 1);
    CHECK_STR(json_string_value(json_object_get(v, "type")), "text");
    CHECK_STR(json_string_value(json_object_get(v, "template")), "Hello {{name}}");
    CHECK(json_object_get(v, "messages") == NULL);
    CHECK(json_is_object(json_object_get(v, "config")));
    /* The content hash of {"config":{},"template":"Hello {{name}}","type":"text"}. */
    CHECK_STR(json_string_value(json_object_get(v, "hash")),
              "sha256:0d05631402513338dd19ce8f7ed6fee63ba397b345cda00ea3d8feb8726dcf83");
    CHECK(json_is_null(json_object_get(v, "message")));
    CHECK_STR(json_string_value(json_object_get(v, "author")), "ann");
    const char *at = json_string_value(json_object_get(v, "created_at"));
    CHECK(at && strlen(at) == 24 && at[10] == 'T' && at[19] == '.' && at[23] == 'Z');
    CHECK(json_integer_value(json_object_get(v, "created_ns")) > 1700000000000000000LL);
    CHECK_INT(json_array_size(json_object_get(v, "labels")), 0);
    CHECK_STR(json_string_value(json_array_get(json_object_get(v, "variables"), 0)), "name");
    /* the same hash for v3, which has v1's content */
    json_t *v3 = get(t.url, "greet", &e);
    CHECK(v3 && json_equal(json_object_get(v, "hash"), json_object_get(v3, "hash")));
    CHECK(v3 && has_label(v3, "latest"));
    json_decref(v3);
    json_decref(v);

    /* A config changes the hash, and its key order does not. */
    json_t *c1 = json_pack("{s:s, s:f}", "model", "gpt-4o-mini", "temperature", 0.25);
    json_t *c2 = json_pack("{s:f, s:s}", "temperature", 0.25, "model", "gpt-4o-mini");
    prompt_input in = text_input("greet", "Hello {{name}}");
    in.config = c1;
    in.message = "with a model";
    json_t *out = NULL;
    CHECK_INT(prompt_save(t.url, &in, &out, &created, &e), ERR_OK);
    CHECK(created);
    CHECK_INT(json_integer_value(json_object_get(out, "version")), 4);
    CHECK_STR(json_string_value(json_object_get(out, "message")), "with a model");
    CHECK_STR(json_string_value(json_object_get(json_object_get(out, "config"), "model")), "gpt-4o-mini");
    json_decref(out);
    in.config = c2;
    CHECK_INT(prompt_save(t.url, &in, &out, &created, &e), ERR_OK);
    CHECK(!created);
    CHECK_INT(json_integer_value(json_object_get(out, "version")), 4);
    json_decref(out);
    json_decref(c1);
    json_decref(c2);

    /* versions, newest first */
    json_t *vs = NULL;
    CHECK_INT(prompt_versions(t.url, "greet", &vs, &e), ERR_OK);
    CHECK_INT(json_array_size(vs), 4);
    CHECK_INT(json_integer_value(json_object_get(json_array_get(vs, 0), "version")), 4);
    CHECK_INT(json_integer_value(json_object_get(json_array_get(vs, 3), "version")), 1);
    json_decref(vs);
    CHECK_INT(prompt_versions(t.url, "nope", &vs, &e), ERR_NOTFOUND);
    CHECK_STR(e.code, "prompt_not_found");
    tmpdb_drop(&t);
}

TEST(registry_get_not_found)
{
    tmpdb t;
    tmpdb_make(&t);
    save_text(t.url, "a/b", "x", NULL);
    static const struct {
        const char *ref;
        const char *code;
        const char *words;
    } cases[] = {
        { "a/c", "prompt_not_found", "'a/c'" },
        { "a/b:2", "version_not_found", "version 2" },
        { "a/b@production", "label_not_found", "'production'" },
        { "zzz@latest", "prompt_not_found", "'zzz'" },
    };
    for (size_t i = 0; i < countof(cases); i++) {
        query_error e = { 0 };
        json_t *v = get(t.url, cases[i].ref, &e);
        CHECK(v == NULL);
        CHECK_INT(e.status, 404);
        CHECK_STR(e.code, cases[i].code);
        if (!strstr(e.message, cases[i].words))
            test_fail(__FILE__, __LINE__, "%s: '%s'", cases[i].ref, e.message);
        json_decref(v);
    }
    query_error e = { 0 };
    json_t *v = get(t.url, "a/b@latest", &e);
    CHECK(v && json_integer_value(json_object_get(v, "version")) == 1);
    json_decref(v);
    /* a hand-made ref with both a label and a version */
    prompt_ref ref = { .version = 1 };
    snprintf(ref.name, sizeof ref.name, "a/b");
    snprintf(ref.label, sizeof ref.label, "production");
    CHECK_INT(prompt_get(t.url, &ref, &v, &e), ERR_INVAL);
    tmpdb_drop(&t);
}

TEST(registry_chat_prompts)
{
    tmpdb t;
    tmpdb_make(&t);
    json_error_t je;
    json_t *msgs = json_loads("[{\"role\":\"system\",\"content\":\"You answer for {{company}}.\"},"
                              "{\"role\":\"user\",\"content\":\"{{question}}\",\"name\":\"bob\"}]",
                              0, &je);
    prompt_input in = { .name = "support/answer", .type = PROMPT_CHAT, .messages = msgs, .author = "ann" };
    json_t *out = NULL;
    bool created = false;
    query_error e = { 0 };
    CHECK_INT(prompt_save(t.url, &in, &out, &created, &e), ERR_OK);
    CHECK(created);
    CHECK_STR(json_string_value(json_object_get(out, "type")), "chat");
    CHECK(json_equal(json_object_get(out, "messages"), msgs)); /* "name" is kept */
    CHECK(json_object_get(out, "template") == NULL);
    json_t *vars = json_object_get(out, "variables");
    CHECK_INT(json_array_size(vars), 2);
    CHECK_STR(json_string_value(json_array_get(vars, 0)), "company");
    CHECK_STR(json_string_value(json_array_get(vars, 1)), "question");
    json_decref(out);

    /* A text prompt cannot replace a chat one. */
    prompt_input ti = text_input("support/answer", "hi");
    CHECK_INT(prompt_save(t.url, &ti, &out, &created, &e), ERR_EXISTS);
    CHECK_INT(e.status, 409);
    CHECK_STR(e.code, "type_changed");

    /* A syntax error in message 2 names the message, its role, line and column. */
    json_t *bad = json_loads("[{\"role\":\"system\",\"content\":\"ok\"},"
                             "{\"role\":\"user\",\"content\":\"line one\\nx {{#items}} y\"}]",
                             0, &je);
    in.messages = bad;
    CHECK_INT(prompt_save(t.url, &in, &out, &created, &e), ERR_INVAL);
    CHECK_INT(e.status, 400);
    CHECK_STR(e.code, "template_error");
    CHECK(strstr(e.message, "message 2 (user)") != NULL);
    CHECK(strstr(e.message, "line 2, column") != NULL);
    json_decref(bad);
    json_decref(msgs);

    prompt_input tb = text_input("t", "a\nb {{x");
    CHECK_INT(prompt_save(t.url, &tb, &out, &created, &e), ERR_INVAL);
    CHECK_STR(e.code, "template_error");
    CHECK(strstr(e.message, "line 2, column 3") != NULL);
    CHECK_INT(q_int(t.path, "SELECT count(*) FROM prompt_versions"), 1);
    tmpdb_drop(&t);
}

TEST(registry_refuses_bad_input)
{
    tmpdb t;
    tmpdb_make(&t);
    json_t *none = NULL;
    query_error e0 = { 0 };
    CHECK_INT(prompt_list(t.url, "", &none, &e0), ERR_OK); /* creates the store */
    json_decref(none);
    json_error_t je;
    json_t *notarr = json_loads("{\"role\":\"user\"}", 0, &je);
    json_t *empty = json_array();
    json_t *norole = json_loads("[{\"content\":\"x\"}]", 0, &je);
    json_t *numcontent = json_loads("[{\"role\":\"user\",\"content\":3}]", 0, &je);
    json_t *notobj = json_loads("[\"x\"]", 0, &je);
    json_t *cfg_arr = json_array();
    const char *latest[] = { "latest" };
    const char *badlabel[] = { "Prod" };
    static char big[(1u << 20) + 2];
    memset(big, 'x', sizeof big - 1);
    struct {
        prompt_input in;
        const char *param;
    } cases[] = {
        { { .name = "a", .type = PROMPT_TEXT }, "template" },
        { { .name = "a", .type = PROMPT_TEXT, .template = "x", .messages = empty }, "messages" },
        { { .name = "a", .type = PROMPT_CHAT, .template = "x" }, "template" },
        { { .name = "a", .type = PROMPT_CHAT, .messages = notarr }, "messages" },
        { { .name = "a", .type = PROMPT_CHAT, .messages = empty }, "messages" },
        { { .name = "a", .type = PROMPT_CHAT, .messages = norole }, "messages" },
        { { .name = "a", .type = PROMPT_CHAT, .messages = numcontent }, "messages" },
        { { .name = "a", .type = PROMPT_CHAT, .messages = notobj }, "messages" },
        { { .name = "a", .type = (prompt_type)7, .template = "x" }, "type" },
        { { .name = "a b", .type = PROMPT_TEXT, .template = "x" }, "name" },
        { { .name = NULL, .type = PROMPT_TEXT, .template = "x" }, "name" },
        { { .name = "a", .type = PROMPT_TEXT, .template = "x", .config = cfg_arr }, "config" },
        { { .name = "a", .type = PROMPT_TEXT, .template = "x", .labels = latest, .nlabels = 1 }, "labels" },
        { { .name = "a", .type = PROMPT_TEXT, .template = "x", .labels = badlabel, .nlabels = 1 }, "label" },
        { { .name = "a", .type = PROMPT_TEXT, .template = "x", .author = "\xff" }, "author" },
        { { .name = "a", .type = PROMPT_TEXT, .template = "\xc3(" }, "template" },
        { { .name = "a", .type = PROMPT_TEXT, .template = big }, "template" },
    };
    for (size_t i = 0; i < countof(cases); i++) {
        json_t *out = NULL;
        bool created = true;
        query_error e = { 0 };
        err_code r = prompt_save(t.url, &cases[i].in, &out, &created, &e);
        if (r != ERR_INVAL || e.status != 400)
            test_fail(__FILE__, __LINE__, "case %zu: r=%d status=%d (%s)", i, r, e.status, e.message);
        if (strcmp(e.param, cases[i].param) != 0)
            test_fail(__FILE__, __LINE__, "case %zu: param '%s', expected '%s' (%s)", i, e.param, cases[i].param,
                      e.message);
        CHECK(out == NULL);
        CHECK(!created);
    }
    CHECK_INT(q_int(t.path, "SELECT count(*) FROM prompt_versions"), 0);
    json_decref(notarr);
    json_decref(empty);
    json_decref(norole);
    json_decref(numcontent);
    json_decref(notobj);
    json_decref(cfg_arr);
    tmpdb_drop(&t);
}

TEST(registry_labels_and_rollback)
{
    tmpdb t;
    tmpdb_make(&t);
    for (int i = 1; i <= 4; i++) {
        char tmpl[32];
        snprintf(tmpl, sizeof tmpl, "version %d", i);
        save_text(t.url, "p", tmpl, NULL);
    }
    const char *prot[] = { "production" };
    json_t *out = NULL;
    query_error e = { 0 };
    long long rev0 = q_int(t.path, "SELECT value FROM genaiops_meta WHERE key='prompts.rev'");
    CHECK_INT(rev0, 4);

    /* protected: 403 without admin, fine with it */
    CHECK_INT(prompt_label_set(t.url, "p", "production", 1, "bob", false, prot, 1, &out, &e), ERR_DENIED);
    CHECK_INT(e.status, 403);
    CHECK_STR(e.code, "protected_label");
    CHECK_INT(prompt_label_set(t.url, "p", "production", 1, "admin", true, prot, 1, &out, &e), ERR_OK);
    CHECK_INT(json_integer_value(json_object_get(out, "version")), 1);
    CHECK(json_is_null(json_object_get(out, "previous")));
    json_decref(out);
    /* unprotected labels move without admin; 0 = latest */
    CHECK_INT(prompt_label_set(t.url, "p", "staging", 0, "bob", false, prot, 1, &out, &e), ERR_OK);
    CHECK_INT(json_integer_value(json_object_get(out, "version")), 4);
    json_decref(out);
    CHECK_INT(prompt_label_set(t.url, "p", "production", 2, "admin", true, prot, 1, &out, &e), ERR_OK);
    CHECK_INT(json_integer_value(json_object_get(out, "previous")), 1);
    json_decref(out);
    CHECK_INT(prompt_label_set(t.url, "p", "production", 3, "admin", true, prot, 1, &out, &e), ERR_OK);
    json_decref(out);
    CHECK_INT(q_int(t.path, "SELECT value FROM genaiops_meta WHERE key='prompts.rev'"), rev0 + 4);
    /* setting it where it is records nothing */
    CHECK_INT(prompt_label_set(t.url, "p", "production", 3, "admin", true, prot, 1, &out, &e), ERR_OK);
    CHECK_INT(json_integer_value(json_object_get(out, "previous")), 3);
    json_decref(out);
    CHECK_INT(q_int(t.path, "SELECT count(*) FROM prompt_label_moves WHERE label='production'"), 3);
    CHECK_INT(q_int(t.path, "SELECT value FROM genaiops_meta WHERE key='prompts.rev'"), rev0 + 4);

    /* bad moves */
    CHECK_INT(prompt_label_set(t.url, "p", "latest", 1, "x", true, prot, 1, &out, &e), ERR_INVAL);
    CHECK_INT(prompt_label_set(t.url, "p", "staging", 9, "x", true, prot, 1, &out, &e), ERR_NOTFOUND);
    CHECK_STR(e.code, "version_not_found");
    CHECK_INT(prompt_label_set(t.url, "q", "staging", 1, "x", true, prot, 1, &out, &e), ERR_NOTFOUND);
    CHECK_STR(e.code, "prompt_not_found");
    CHECK_INT(prompt_label_set(t.url, "p", "Bad", 1, "x", true, prot, 1, &out, &e), ERR_INVAL);

    json_t *v = get(t.url, "p@production", &e);
    CHECK(v && json_integer_value(json_object_get(v, "version")) == 3);
    json_decref(v);

    /* Rollback walks back one move at a time: 3 -> 2 -> 1, then nothing. */
    CHECK_INT(prompt_rollback(t.url, "p", "production", "bob", false, prot, 1, &out, &e), ERR_DENIED);
    CHECK_INT(prompt_rollback(t.url, "p", NULL, "admin", true, prot, 1, &out, &e), ERR_OK);
    CHECK_STR(json_string_value(json_object_get(out, "label")), "production");
    CHECK_INT(json_integer_value(json_object_get(out, "version")), 2);
    CHECK_INT(json_integer_value(json_object_get(out, "previous")), 3);
    json_decref(out);
    CHECK_INT(prompt_rollback(t.url, "p", "production", "admin", true, prot, 1, &out, &e), ERR_OK);
    CHECK_INT(json_integer_value(json_object_get(out, "version")), 1);
    json_decref(out);
    CHECK_INT(prompt_rollback(t.url, "p", "production", "admin", true, prot, 1, &out, &e), ERR_EXISTS);
    CHECK_INT(e.status, 409);
    CHECK_STR(e.code, "nothing_to_roll_back");
    /* A new move after rollbacks, then a rollback: back to where it was (1). */
    CHECK_INT(prompt_label_set(t.url, "p", "production", 4, "admin", true, prot, 1, &out, &e), ERR_OK);
    json_decref(out);
    CHECK_INT(prompt_rollback(t.url, "p", "production", "admin", true, prot, 1, &out, &e), ERR_OK);
    CHECK_INT(json_integer_value(json_object_get(out, "version")), 1);
    json_decref(out);
    CHECK_INT(prompt_rollback(t.url, "p", "production", "admin", true, prot, 1, &out, &e), ERR_EXISTS);
    CHECK_INT(prompt_rollback(t.url, "p", "nolabel", "admin", true, prot, 1, &out, &e), ERR_NOTFOUND);
    CHECK_STR(e.code, "label_not_found");
    CHECK_INT(prompt_rollback(t.url, "p", "latest", "admin", true, prot, 1, &out, &e), ERR_INVAL);

    /* history: newest first, every move with its reason */
    json_t *h = NULL;
    CHECK_INT(prompt_history(t.url, "p", "production", &h, &e), ERR_OK);
    static const struct {
        int from, to;
        const char *reason, *who;
    } want[] = {
        { 4, 1, "rollback", "admin" }, { 1, 4, "set", "admin" },      { 2, 1, "rollback", "admin" },
        { 3, 2, "rollback", "admin" }, { 2, 3, "set", "admin" },      { 1, 2, "set", "admin" },
        { 0, 1, "set", "admin" },
    };
    CHECK_INT(json_array_size(h), countof(want));
    for (size_t i = 0; i < countof(want) && i < json_array_size(h); i++) {
        json_t *m = json_array_get(h, i);
        if (want[i].from)
            CHECK_INT(json_integer_value(json_object_get(m, "from")), want[i].from);
        else
            CHECK(json_is_null(json_object_get(m, "from")));
        CHECK_INT(json_integer_value(json_object_get(m, "to")), want[i].to);
        CHECK_STR(json_string_value(json_object_get(m, "reason")), want[i].reason);
        CHECK_STR(json_string_value(json_object_get(m, "who")), want[i].who);
        CHECK_STR(json_string_value(json_object_get(m, "label")), "production");
        CHECK(json_string_value(json_object_get(m, "at")) != NULL);
    }
    json_decref(h);
    CHECK_INT(prompt_history(t.url, "p", "", &h, &e), ERR_OK);
    CHECK_INT(json_array_size(h), countof(want) + 1); /* + staging */
    json_decref(h);
    CHECK_INT(prompt_history(t.url, "nope", "", &h, &e), ERR_NOTFOUND);

    /* labels show on the version and in the list */
    v = get(t.url, "p:4", &e);
    CHECK(v && has_label(v, "latest") && has_label(v, "staging") && !has_label(v, "production"));
    CHECK_STR(json_string_value(json_array_get(json_object_get(v, "labels"), 0)), "latest");
    json_decref(v);
    json_t *list = NULL;
    CHECK_INT(prompt_list(t.url, "", &list, &e), ERR_OK);
    CHECK_INT(json_array_size(list), 1);
    json_t *row = json_array_get(list, 0);
    CHECK_INT(json_integer_value(json_object_get(row, "latest_version")), 4);
    CHECK_INT(json_integer_value(json_object_get(json_object_get(row, "labels"), "production")), 1);
    CHECK_INT(json_integer_value(json_object_get(json_object_get(row, "labels"), "staging")), 4);
    json_decref(list);
    tmpdb_drop(&t);
}

TEST(registry_list_prefix)
{
    tmpdb t;
    tmpdb_make(&t);
    const char *names[] = { "support/answer", "b", "support/triage", "supportx", "a/support" };
    for (size_t i = 0; i < countof(names); i++)
        save_text(t.url, names[i], "x", NULL);
    json_t *list = NULL;
    query_error e = { 0 };
    CHECK_INT(prompt_list(t.url, "", &list, &e), ERR_OK);
    CHECK_INT(json_array_size(list), 5);
    CHECK_STR(json_string_value(json_object_get(json_array_get(list, 0), "name")), "a/support");
    CHECK_STR(json_string_value(json_object_get(json_array_get(list, 4), "name")), "supportx");
    CHECK_STR(json_string_value(json_object_get(json_array_get(list, 0), "type")), "text");
    CHECK(json_string_value(json_object_get(json_array_get(list, 0), "updated_at")) != NULL);
    json_decref(list);
    CHECK_INT(prompt_list(t.url, "support/", &list, &e), ERR_OK);
    CHECK_INT(json_array_size(list), 2);
    json_decref(list);
    CHECK_INT(prompt_list(t.url, "%", &list, &e), ERR_OK); /* no LIKE wildcards */
    CHECK_INT(json_array_size(list), 0);
    json_decref(list);
    tmpdb_drop(&t);
}

TEST(registry_push_all_or_nothing)
{
    tmpdb t;
    tmpdb_make(&t);
    const char *labels[] = { "staging" };
    prompt_input in[3] = {
        { .name = "a", .type = PROMPT_TEXT, .template = "A", .labels = labels, .nlabels = 1, .source = "a.md" },
        { .name = "b", .type = PROMPT_TEXT, .template = "B {{x", .source = "b.md:4" },
        { .name = "c", .type = PROMPT_TEXT, .template = "C", .source = "c.md" },
    };
    json_t *out = NULL;
    query_error e = { 0 };
    CHECK_INT(prompt_save_many(t.url, in, 3, &out, &e), ERR_INVAL);
    CHECK(out == NULL);
    CHECK(strncmp(e.message, "b.md:4: ", 8) == 0);
    CHECK_STR(e.code, "template_error");
    CHECK_INT(prompt_list(t.url, "", &out, &e), ERR_OK);
    CHECK_INT(json_array_size(out), 0);
    json_decref(out);

    in[1].template = "B {{x}}";
    CHECK_INT(prompt_save_many(t.url, in, 3, &out, &e), ERR_OK);
    CHECK_INT(json_array_size(out), 3);
    CHECK_STR(json_string_value(json_object_get(json_array_get(out, 1), "name")), "b");
    CHECK(json_is_true(json_object_get(json_array_get(out, 1), "created")));
    CHECK_INT(json_integer_value(json_object_get(json_array_get(out, 1), "version")), 1);
    json_decref(out);
    CHECK_INT(q_int(t.path, "SELECT count(*) FROM prompt_label_moves WHERE reason='push' AND name='a'"), 1);
    long long rev = q_int(t.path, "SELECT value FROM genaiops_meta WHERE key='prompts.rev'");
    CHECK_INT(rev, 1); /* one push, one revision */

    /* Pushing the same again changes nothing. */
    CHECK_INT(prompt_save_many(t.url, in, 3, &out, &e), ERR_OK);
    CHECK(json_is_false(json_object_get(json_array_get(out, 0), "created")));
    json_decref(out);
    CHECK_INT(q_int(t.path, "SELECT value FROM genaiops_meta WHERE key='prompts.rev'"), rev);
    CHECK_INT(q_int(t.path, "SELECT count(*) FROM prompt_label_moves"), 1);

    /* A type change fails inside the transaction: the new 'd' is not kept. */
    json_t *msgs = json_pack("[{s:s, s:s}]", "role", "user", "content", "hi");
    prompt_input in2[2] = {
        { .name = "d", .type = PROMPT_TEXT, .template = "D" },
        { .name = "a", .type = PROMPT_CHAT, .messages = msgs, .source = "a.yaml" },
    };
    CHECK_INT(prompt_save_many(t.url, in2, 2, &out, &e), ERR_EXISTS);
    CHECK(strstr(e.message, "a.yaml") == e.message);
    CHECK_INT(q_int(t.path, "SELECT count(*) FROM prompts WHERE name='d'"), 0);
    json_decref(msgs);

    /* the same name twice */
    prompt_input dup[2] = {
        { .name = "x", .type = PROMPT_TEXT, .template = "1", .source = "x.md" },
        { .name = "x", .type = PROMPT_TEXT, .template = "2", .source = "x.yaml" },
    };
    CHECK_INT(prompt_save_many(t.url, dup, 2, &out, &e), ERR_INVAL);
    CHECK_STR(e.code, "duplicate_prompt");
    CHECK(strstr(e.message, "x.md") && strstr(e.message, "x.yaml"));
    /* an empty push is fine */
    CHECK_INT(prompt_save_many(t.url, NULL, 0, &out, &e), ERR_OK);
    CHECK_INT(json_array_size(out), 0);
    json_decref(out);
    tmpdb_drop(&t);
}

TEST(registry_served_snapshot)
{
    tmpdb t;
    tmpdb_make(&t);
    int64_t rev = -1;
    json_t *out = NULL;
    query_error e = { 0 };
    CHECK_INT(prompt_revision(t.url, &rev, &e), ERR_OK);
    CHECK_INT(rev, 0);
    save_text(t.url, "p", "one", NULL);
    save_text(t.url, "p", "two", NULL);
    save_text(t.url, "p", "three", NULL);
    save_text(t.url, "q", "q1", NULL);
    const char *none[] = { NULL };
    CHECK_INT(prompt_label_set(t.url, "p", "production", 1, "a", false, none, 0, &out, &e), ERR_OK);
    json_decref(out);
    CHECK_INT(prompt_label_set(t.url, "p", "staging", 3, "a", false, none, 0, &out, &e), ERR_OK);
    json_decref(out);
    CHECK_INT(prompt_served(t.url, &rev, &out, &e), ERR_OK);
    CHECK_INT(rev, 6);
    /* p:1 (production), p:3 (latest, staging), q:1 (latest); not p:2 */
    CHECK_INT(json_array_size(out), 3);
    json_t *p1 = json_array_get(out, 0), *p3 = json_array_get(out, 1), *q1 = json_array_get(out, 2);
    CHECK_INT(json_integer_value(json_object_get(p1, "version")), 1);
    CHECK_STR(json_string_value(json_object_get(p1, "template")), "one");
    CHECK_INT(json_array_size(json_object_get(p1, "labels")), 1);
    CHECK_INT(json_integer_value(json_object_get(p3, "version")), 3);
    CHECK_INT(json_array_size(json_object_get(p3, "labels")), 2);
    CHECK_STR(json_string_value(json_array_get(json_object_get(p3, "labels"), 0)), "latest");
    CHECK_STR(json_string_value(json_array_get(json_object_get(p3, "labels"), 1)), "staging");
    CHECK_STR(json_string_value(json_object_get(q1, "name")), "q");
    CHECK(json_is_object(json_object_get(q1, "config")));
    json_decref(out);
    tmpdb_drop(&t);
}

TEST(registry_diff)
{
    tmpdb t;
    tmpdb_make(&t);
    save_text(t.url, "p", "a\nb\nc\n", NULL);
    json_t *cfg = json_pack("{s:s}", "model", "m2");
    prompt_input in = text_input("p", "a\nB\nc\n");
    in.config = cfg;
    json_t *out = NULL;
    query_error e = { 0 };
    bool created;
    CHECK_INT(prompt_save(t.url, &in, &out, &created, &e), ERR_OK);
    json_decref(out);
    json_decref(cfg);
    prompt_ref a, b;
    CHECK(prompt_ref_parse("p:1", &a, &e));
    CHECK(prompt_ref_parse("p", &b, &e));
    CHECK_INT(prompt_diff(t.url, &a, &b, &out, &e), ERR_OK);
    CHECK_STR(json_string_value(json_object_get(out, "template")),
              "--- p:1\n+++ p:2\n@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n");
    CHECK_STR(json_string_value(json_object_get(out, "config")),
              "--- p:1\n+++ p:2\n@@ -1 +1,3 @@\n-{}\n+{\n+  \"model\": \"m2\"\n+}\n");
    CHECK(json_is_true(json_object_get(out, "changed")));
    CHECK_INT(json_integer_value(json_object_get(json_object_get(out, "to"), "version")), 2);
    json_decref(out);
    CHECK_INT(prompt_diff(t.url, &a, &a, &out, &e), ERR_OK);
    CHECK_STR(json_string_value(json_object_get(out, "template")), "");
    CHECK(json_is_false(json_object_get(out, "changed")));
    json_decref(out);
    CHECK(prompt_ref_parse("p@production", &b, &e));
    CHECK_INT(prompt_diff(t.url, &a, &b, &out, &e), ERR_NOTFOUND);
    CHECK_STR(e.code, "label_not_found");

    /* chat prompts diff as [role] blocks */
    json_t *m1 = json_pack("[{s:s,s:s},{s:s,s:s}]", "role", "system", "content", "Be brief.", "role", "user",
                           "content", "{{q}}");
    json_t *m2 = json_pack("[{s:s,s:s},{s:s,s:s}]", "role", "system", "content", "Be very brief.", "role", "user",
                           "content", "{{q}}");
    prompt_input c = { .name = "c", .type = PROMPT_CHAT, .messages = m1 };
    CHECK_INT(prompt_save(t.url, &c, &out, &created, &e), ERR_OK);
    json_decref(out);
    c.messages = m2;
    CHECK_INT(prompt_save(t.url, &c, &out, &created, &e), ERR_OK);
    json_decref(out);
    CHECK(prompt_ref_parse("c:1", &a, &e));
    CHECK(prompt_ref_parse("c:2", &b, &e));
    CHECK_INT(prompt_diff(t.url, &a, &b, &out, &e), ERR_OK);
    CHECK_STR(json_string_value(json_object_get(out, "template")),
              "--- c:1\n+++ c:2\n@@ -1,5 +1,5 @@\n [system]\n-Be brief.\n+Be very brief.\n \n [user]\n {{q}}\n");
    CHECK_STR(json_string_value(json_object_get(out, "config")), "");
    json_decref(out);
    json_decref(m1);
    json_decref(m2);
    tmpdb_drop(&t);
}

TEST(registry_store_errors)
{
    query_error e = { 0 };
    json_t *out = NULL;
    CHECK_INT(prompt_list("postgres://x", "", &out, &e), ERR_STORE);
    CHECK_INT(e.status, 500);
    tmpdb t;
    tmpdb_make(&t);
    sqlite3 *db = NULL;
    CHECK(sqlite3_open(t.path, &db) == SQLITE_OK);
    sqlite3_exec(db, "PRAGMA user_version=99", NULL, NULL, NULL);
    sqlite3_close(db);
    CHECK_INT(prompt_list(t.url, "", &out, &e), ERR_STORE);
    CHECK_INT(e.status, 503);
    CHECK_STR(e.code, "store_unavailable");
    CHECK(strstr(e.message, "upgrade genaiops") != NULL);
    tmpdb_drop(&t);
}

/* ---- concurrency ---- */

typedef struct saver {
    const char *url;
    int id;
    int rounds;
    bool same;          /* everyone saves identical content */
    int fails;
    int created;
} saver;

static void *saver_main(void *arg)
{
    saver *s = arg;
    for (int i = 0; i < s->rounds; i++) {
        char tmpl[64];
        if (s->same)
            snprintf(tmpl, sizeof tmpl, "the same text");
        else
            snprintf(tmpl, sizeof tmpl, "thread %d round %d {{x}}", s->id, i);
        prompt_input in = text_input("shared/prompt", tmpl);
        json_t *out = NULL;
        bool created = false;
        query_error e = { 0 };
        if (prompt_save(s->url, &in, &out, &created, &e) != ERR_OK)
            s->fails++;
        else if (created)
            s->created++;
        json_decref(out);
    }
    return NULL;
}

static void run_savers(const char *url, int n, int rounds, bool same, int *created, int *fails)
{
    pthread_t th[8];
    saver s[8];
    *created = *fails = 0;
    for (int i = 0; i < n; i++) {
        s[i] = (saver){ .url = url, .id = i, .rounds = rounds, .same = same };
        pthread_create(&th[i], NULL, saver_main, &s[i]);
    }
    for (int i = 0; i < n; i++) {
        pthread_join(th[i], NULL);
        *created += s[i].created;
        *fails += s[i].fails;
    }
}

TEST(registry_concurrent_saves)
{
    tmpdb t;
    tmpdb_make(&t);
    int created = 0, fails = 0;
    run_savers(t.url, 8, 1, true, &created, &fails);
    CHECK_INT(fails, 0);
    CHECK_INT(created, 1);
    CHECK_INT(q_int(t.path, "SELECT count(*) FROM prompt_versions"), 1);

    run_savers(t.url, 6, 10, false, &created, &fails);
    CHECK_INT(fails, 0);
    CHECK_INT(created, 60);
    CHECK_INT(q_int(t.path, "SELECT count(*) FROM prompt_versions"), 61);
    CHECK_INT(q_int(t.path, "SELECT count(DISTINCT version) FROM prompt_versions"), 61);
    CHECK_INT(q_int(t.path, "SELECT min(version) FROM prompt_versions"), 1);
    CHECK_INT(q_int(t.path, "SELECT max(version) FROM prompt_versions"), 61);
    CHECK_INT(q_int(t.path, "SELECT latest FROM prompts"), 61);
    CHECK_INT(q_int(t.path, "SELECT value FROM genaiops_meta WHERE key='prompts.rev'"), 61);
    tmpdb_drop(&t);
}
