/*
 * prompt.c - `genaiops prompt push|pull|list|show|diff|label|rollback|
 * history|render|run`: the prompt registry from a terminal.
 *
 * Two sources give the same JSON, as `genaiops traces` has them: the local
 * store named by the config (--config FILE, $GENAIOPS_CONFIG, or the
 * default ./genaiops.db), through the registry module (prompt/registry.c)
 * and api/prompts.c's renderer; or a running gateway's REST API (--server
 * URL or $GENAIOPS_SERVER, with --admin-key / $GENAIOPS_ADMIN_KEY as a
 * bearer token) through libcurl. Every subcommand fetches a JSON answer
 * from one of the two, then prints it as text, or as it is with --json.
 *
 * Locally the caller holds the store file, but protected labels are still
 * honoured so a script cannot move `production` by accident: with an admin
 * key configured they move only when --admin-key (or $GENAIOPS_ADMIN_KEY)
 * matches it. Label moves are recorded under --author (default $USER).
 *
 * `push` reads the folder here in both modes (prompt/files.c, all or
 * nothing, errors name file, line and column) and saves every prompt in one
 * transaction (locally) or one POST /api/v1/prompts/push. `run` always goes
 * through a server: it sends the prompt by reference to /v1/chat/completions
 * and prints the answer, tokens, cost and latency.
 */
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include "api/prompts.h"
#include "cli/cli.h"
#include "core/buf.h"
#include "prompt/files.h"
#include "prompt/registry.h"
#include "store/query.h"

#define RESPONSE_MAX (64u << 20)
#define MAX_LABELS 32
#define MAX_VARS 256
#define MAX_POS 4
#define VARS_FILE_MAX (16u << 20)
#define DEFAULT_SERVER "http://127.0.0.1:8080"

static const char usage[] =
    "usage: genaiops prompt <subcommand> [arguments] [options]\n"
    "\n"
    "Prompts have path-like names (support/answer), immutable numbered versions and\n"
    "labels (production, staging, ...) that point at versions; `latest` is always the\n"
    "newest. A REF is NAME (latest), NAME@LABEL or NAME:VERSION.\n"
    "\n"
    "subcommands:\n"
    "  push DIR [--label L]... [--message M] [--author A]\n"
    "      save every prompt file under DIR (*.yaml, *.yml, *.md) as a new version when\n"
    "      its content changed; all or nothing. --label points L at each pushed version.\n"
    "        genaiops prompt push examples/prompts --label staging -m \"shorter answers\"\n"
    "  pull DIR [--label L] [--prefix P]\n"
    "      write each prompt's latest (or L-labelled) version as a file under DIR.\n"
    "        genaiops prompt pull prompts/ --label production\n"
    "  list [--prefix P]\n"
    "      the prompts with their type, latest version and labels.\n"
    "        genaiops prompt list --prefix support/\n"
    "  show REF\n"
    "      one version: its template or messages, config, labels and variables.\n"
    "        genaiops prompt show support/answer@production\n"
    "  diff REF REF | diff NAME V1 V2\n"
    "      a unified diff of two versions (template and config); V is a version\n"
    "      number or a label.\n"
    "        genaiops prompt diff support/answer 1 2\n"
    "        genaiops prompt diff support/answer@production support/answer@staging\n"
    "  label REF LABEL\n"
    "      point LABEL at the version REF names (protected labels need the admin key).\n"
    "        genaiops prompt label support/answer:3 production\n"
    "  rollback NAME [--label L]\n"
    "      move L (default production) back to where it pointed before its last move.\n"
    "        genaiops prompt rollback support/answer\n"
    "  history NAME [--label L]\n"
    "      every label move of NAME (or of L only): when, from, to, who, why.\n"
    "        genaiops prompt history support/answer --label production\n"
    "  render REF [--var K=V]... [--vars FILE.json]\n"
    "      render the template with variables (K=V values are strings; a dotted K sets\n"
    "      a nested value; --vars is a JSON object, --var entries win over it).\n"
    "        genaiops prompt render support/answer@production --var company=Acme --var question=Hi\n"
    "  run REF [--var K=V]... [--vars FILE.json] [--model M]\n"
    "      render through a running gateway and send it to a model (M, or the\n"
    "      prompt's config.model); prints the answer, tokens, cost and latency.\n"
    "        genaiops prompt run support/answer@staging --var company=Acme --var question=Hi\n"
    "\n"
    "options (every subcommand):\n"
    "  --json                print the API's JSON instead of text\n"
    "  --config FILE         use the store named by FILE's store.url (local mode)\n"
    "  --server URL          work through a running gateway's API (or $GENAIOPS_SERVER;\n"
    "                        run defaults to " DEFAULT_SERVER ")\n"
    "  --admin-key KEY       its server.admin_key (or $GENAIOPS_ADMIN_KEY); needed for\n"
    "                        protected labels when one is configured\n"
    "  --author NAME         who saves (push) and, locally, who moves labels (default $USER)\n"
    "  -m, --message TEXT    push: the commit message for prompts whose file has none\n"
    "\n"
    "exit status: 0 done, 1 an error (the message names what is wrong), 2 a usage error.\n";

typedef struct source {
    const char *server;
    const char *admin_key;
    config *cfg;
    const char *store_url;
    bool admin;                       /* local: may move protected labels */
    const char *const *prot;
    size_t nprot;
    const char *author;
} source;

typedef struct opts {
    const char *sub;
    bool json;
    const char *labels[MAX_LABELS];
    size_t nlabels;
    const char *message, *prefix, *vars_file, *model;
    const char *vars[MAX_VARS];
    size_t nvars;
    const char *pos[MAX_POS];
    size_t npos;
} opts;

typedef struct http_result {
    long status;
    json_t *body;
    char cost[64];                    /* x-genaiops-cost-usd */
    double ms;
} http_result;

static const char *sub_name = "prompt";

static void PRINTF_LIKE(1, 2) errorf(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "genaiops prompt %s: ", sub_name);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* ---- the server ---- */

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    return buf_append(ud, p, size * n) == ERR_OK ? size * n : 0;
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    http_result *res = ud;
    size_t len = size * n;
    static const char name[] = "x-genaiops-cost-usd:";
    if (len > sizeof name - 1 && strncasecmp(p, name, sizeof name - 1) == 0) {
        const char *v = p + sizeof name - 1;
        size_t vl = len - (sizeof name - 1);
        while (vl && (*v == ' ' || *v == '\t'))
            v++, vl--;
        while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
            vl--;
        snprintf(res->cost, sizeof res->cost, "%.*s", (int)MIN(vl, sizeof res->cost - 1), v);
    }
    return len;
}

static void url_escape(buf *b, const char *s, bool keep_slash)
{
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || strchr("-._~", ch) ||
            (keep_slash && ch == '/'))
            buf_append(b, s, 1);
        else
            buf_printf(b, "%%%02X", ch);
    }
}

/* Sends method path (body: JSON or NULL) to the server. Returns false with
 * the reason printed on a transport failure, an answer that is not JSON, or
 * a status >= 300 (the server's error message). res->body is the answer
 * (the caller frees it, also after a failure). */
static bool http_call(const source *s, const char *method, const char *path, const json_t *body, http_result *res)
{
    memset(res, 0, sizeof *res);
    CURL *c = curl_easy_init();
    if (!c) {
        errorf("cannot start libcurl");
        return false;
    }
    buf url, out;
    buf_init(&url, 16384);
    buf_init(&out, RESPONSE_MAX);
    size_t n = strlen(s->server);
    while (n && s->server[n - 1] == '/')
        n--;
    buf_append(&url, s->server, n);
    buf_append_str(&url, path);
    char *payload = body ? json_dumps(body, JSON_COMPACT | JSON_REAL_PRECISION(15)) : NULL;
    struct curl_slist *hdrs = NULL;
    char auth[600];
    if (s->admin_key && *s->admin_key) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", s->admin_key);
        hdrs = curl_slist_append(hdrs, auth);
    }
    hdrs = curl_slist_append(hdrs, "Accept: application/json");
    if (payload)
        hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, url.p ? url.p : "");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (payload) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, payload);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(payload));
    } else if (!strcmp(method, "POST")) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
    }
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &out);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, res);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 600000L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "genaiops/" GENAIOPS_VERSION);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CURLcode rc = curl_easy_perform(c);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    res->ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    bool ok = false;
    if (rc != CURLE_OK)
        errorf("cannot reach %s: %s", url.p ? url.p : s->server, curl_easy_strerror(rc));
    else {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &res->status);
        json_error_t je;
        res->body = json_loadb(out.p ? out.p : "", out.len, 0, &je);
        if (!res->body)
            errorf("%s answered %ld with something that is not JSON (%s)", url.p, res->status, je.text);
        else if (res->status >= 300) {
            json_t *err = json_object_get(res->body, "error");
            const char *m = json_string_value(json_object_get(err, "message"));
            if (!m)
                m = json_string_value(json_object_get(res->body, "message"));
            errorf("%s (HTTP %ld)", m ? m : "error", res->status);
        } else
            ok = true;
    }
    free(payload);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(c);
    buf_free(&url);
    buf_free(&out);
    return ok;
}

/* The REST path of a prompt: /api/v1/prompts/NAME[/action]. */
static void prompt_path(buf *b, const char *name, const char *action)
{
    buf_append_str(b, "/api/v1/prompts/");
    url_escape(b, name, true);
    if (action) {
        buf_append_str(b, "/");
        buf_append_str(b, action);
    }
}

/* Calls the server and hands back its JSON (*out, caller frees). */
static bool remote(const source *s, const char *method, const buf *path, const json_t *body, json_t **out)
{
    http_result res;
    *out = NULL;
    if (!path->p) {
        errorf("out of memory");
        return false;
    }
    bool ok = http_call(s, method, path->p, body, &res);
    if (ok)
        *out = res.body;
    else
        json_decref(res.body);
    return ok;
}

static bool local_fail(const query_error *e)
{
    errorf("%s", e->message[0] ? e->message : "failed");
    return false;
}

static int fail_rc(const query_error *e)
{
    local_fail(e);
    return 1;
}

/* ---- operations (local or remote), each printing its own error ---- */

static void ref_text(const prompt_ref *ref, char *out, size_t cap)
{
    if (ref->version > 0)
        snprintf(out, cap, "%s:%d", ref->name, ref->version);
    else
        snprintf(out, cap, "%s@%s", ref->name, ref->label[0] ? ref->label : "latest");
}

static bool op_get(const source *s, const prompt_ref *ref, json_t **out)
{
    if (!s->server) {
        query_error e = { 0 };
        return prompt_get(s->store_url, ref, out, &e) == ERR_OK || local_fail(&e);
    }
    buf p;
    buf_init(&p, 4096);
    prompt_path(&p, ref->name, NULL);
    if (ref->version > 0)
        buf_printf(&p, "?version=%d", ref->version);
    else if (ref->label[0]) {
        buf_append_str(&p, "?label=");
        url_escape(&p, ref->label, false);
    }
    bool ok = remote(s, "GET", &p, NULL, out);
    buf_free(&p);
    return ok;
}

static bool op_list(const source *s, const char *prefix, json_t **out)
{
    if (!s->server) {
        query_error e = { 0 };
        json_t *arr = NULL;
        if (prompt_list(s->store_url, prefix ? prefix : "", &arr, &e) != ERR_OK)
            return local_fail(&e);
        *out = json_pack("{s:o}", "data", arr);
        return *out != NULL;
    }
    buf p;
    buf_init(&p, 4096);
    buf_append_str(&p, "/api/v1/prompts");
    if (prefix && *prefix) {
        buf_append_str(&p, "?prefix=");
        url_escape(&p, prefix, false);
    }
    bool ok = remote(s, "GET", &p, NULL, out);
    buf_free(&p);
    return ok;
}

/* ---- printing ---- */

static const char *jstr(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

static long long jint(const json_t *o, const char *k) { return (long long)json_integer_value(json_object_get(o, k)); }

static void print_json(const json_t *j)
{
    char *s = json_dumps(j, JSON_INDENT(2) | JSON_REAL_PRECISION(15));
    if (s)
        puts(s);
    free(s);
}

static void fmt_local_time(long long ns, char *out, size_t cap)
{
    time_t secs = (time_t)(ns / 1000000000);
    struct tm tm;
    localtime_r(&secs, &tm);
    strftime(out, cap, "%Y-%m-%d %H:%M:%S", &tm);
}

/* Text with a final newline. */
static void put_text(const char *s)
{
    size_t n = strlen(s);
    fwrite(s, 1, n, stdout);
    if (n == 0 || s[n - 1] != '\n')
        putchar('\n');
}

static void print_messages(const json_t *msgs)
{
    size_t i;
    json_t *m;
    json_array_foreach(msgs, i, m) {
        printf("%s[%s]\n", i ? "\n" : "", jstr(m, "role"));
        put_text(jstr(m, "content"));
    }
}

static void join_strings(const json_t *arr, char *out, size_t cap)
{
    size_t i, o = 0;
    json_t *x;
    out[0] = '\0';
    json_array_foreach(arr, i, x) {
        if (o >= cap)
            break;
        o += (size_t)snprintf(out + o, cap - o, "%s%s", i ? ", " : "", json_string_value(x) ? json_string_value(x) : "");
    }
}

static void print_version(const json_t *v)
{
    char line[1024], when[40];
    printf("%-10s %s\n", "name", jstr(v, "name"));
    printf("%-10s %lld\n", "version", jint(v, "version"));
    printf("%-10s %s\n", "type", jstr(v, "type"));
    join_strings(json_object_get(v, "labels"), line, sizeof line);
    if (line[0])
        printf("%-10s %s\n", "labels", line);
    fmt_local_time(jint(v, "created_ns"), when, sizeof when);
    printf("%-10s %s by %s\n", "created", when, jstr(v, "author"));
    if (*jstr(v, "message"))
        printf("%-10s %s\n", "message", jstr(v, "message"));
    printf("%-10s %s\n", "hash", jstr(v, "hash"));
    join_strings(json_object_get(v, "variables"), line, sizeof line);
    if (line[0])
        printf("%-10s %s\n", "variables", line);
    json_t *cfg = json_object_get(v, "config");
    if (json_object_size(cfg)) {
        char *c = json_dumps(cfg, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(15));
        printf("%-10s %s\n", "config", c ? c : "");
        free(c);
    }
    putchar('\n');
    if (!strcmp(jstr(v, "type"), "chat"))
        print_messages(json_object_get(v, "messages"));
    else
        put_text(jstr(v, "template"));
}

/* ---- variables ---- */

/* Sets a dotted key (a.b.c) in obj to a string, creating objects. */
static bool set_var(json_t *obj, const char *key, size_t klen, const char *value)
{
    const char *dot = memchr(key, '.', klen);
    if (klen == 0 || (dot && (dot == key || dot == key + klen - 1))) {
        errorf("--var needs K=V with a non-empty name, not '%.*s'", (int)klen, key);
        return false;
    }
    char k[256];
    size_t n = dot ? (size_t)(dot - key) : klen;
    if (n >= sizeof k) {
        errorf("the variable name '%.*s...' is too long", 40, key);
        return false;
    }
    memcpy(k, key, n);
    k[n] = '\0';
    if (!dot)
        return json_object_set_new(obj, k, json_string(value)) == 0;
    json_t *child = json_object_get(obj, k);
    if (!child) {
        child = json_object();
        if (json_object_set_new(obj, k, child) != 0)
            return false;
    } else if (!json_is_object(child)) {
        errorf("--var %.*s: '%s' is already a value, not an object", (int)klen, key, k);
        return false;
    }
    return set_var(child, dot + 1, klen - n - 1, value);
}

/* The variables of --vars FILE and --var K=V (which win). NULL on error. */
static json_t *build_vars(const opts *o)
{
    json_t *vars;
    if (o->vars_file) {
        json_error_t je;
        vars = json_load_file(o->vars_file, JSON_REJECT_DUPLICATES, &je);
        if (!vars) {
            errorf("%s:%d:%d: %s", o->vars_file, je.line, je.column, je.text);
            return NULL;
        }
        if (!json_is_object(vars)) {
            errorf("%s must hold a JSON object of variables", o->vars_file);
            json_decref(vars);
            return NULL;
        }
    } else
        vars = json_object();
    for (size_t i = 0; vars && i < o->nvars; i++) {
        const char *eq = strchr(o->vars[i], '=');
        if (!eq) {
            errorf("--var needs K=V, not '%s'", o->vars[i]);
            json_decref(vars);
            return NULL;
        }
        if (!set_var(vars, o->vars[i], (size_t)(eq - o->vars[i]), eq + 1)) {
            json_decref(vars);
            return NULL;
        }
    }
    return vars;
}

/* ---- subcommands ---- */

static bool parse_ref(const char *text, prompt_ref *ref)
{
    query_error e = { 0 };
    if (!prompt_ref_parse(text, ref, &e)) {
        errorf("%s", e.message);
        return false;
    }
    return true;
}

static void print_file_error(const char *dir, const prompt_file_error *fe)
{
    size_t n = strlen(dir);
    const char *sep = n && dir[n - 1] == '/' ? "" : "/";
    if (fe->line > 0 && fe->col > 0)
        errorf("%s%s%s:%d:%d: %s", dir, sep, fe->path, fe->line, fe->col, fe->message);
    else if (fe->line > 0)
        errorf("%s%s%s:%d: %s", dir, sep, fe->path, fe->line, fe->message);
    else if (fe->path[0])
        errorf("%s%s%s: %s", dir, sep, fe->path, fe->message);
    else
        errorf("%s: %s", dir, fe->message);
}

/* The JSON of one pushed file for POST /api/v1/prompts/push. */
static json_t *file_json(const prompt_file *f)
{
    json_t *o = json_pack("{s:s, s:s, s:O, s:s}", "name", f->name, "type", f->type == PROMPT_CHAT ? "chat" : "text",
                          "config", f->config ? f->config : json_object(), "source", f->path);
    if (!o)
        return NULL;
    if (f->type == PROMPT_CHAT)
        json_object_set(o, "messages", f->messages);
    else
        json_object_set_new(o, "template", json_string(f->template ? f->template : ""));
    if (f->message)
        json_object_set_new(o, "message", json_string(f->message));
    if (f->nlabels) {
        json_t *l = json_array();
        for (size_t i = 0; i < f->nlabels; i++)
            json_array_append_new(l, json_string(f->labels[i]));
        json_object_set_new(o, "labels", l);
    }
    return o;
}

static bool check_protected(const source *s, const char *label)
{
    if (s->admin || !api_prompt_label_protected(label, s->prot, s->nprot))
        return true;
    errorf("label '%s' is protected: pointing it at a version needs the admin key (--admin-key or "
           "$GENAIOPS_ADMIN_KEY)",
           label);
    return false;
}

static int cmd_push(const source *s, const opts *o)
{
    prompt_fileset fs = { 0 };
    prompt_file_error fe = { 0 };
    json_t *res = NULL;
    prompt_input *in = NULL;
    int rc = 1;
    if (prompt_dir_read(o->pos[0], &fs, &fe) != ERR_OK) {
        print_file_error(o->pos[0], &fe);
        errorf("nothing was pushed");
        return 1;
    }
    if (fs.n == 0) {
        errorf("no prompt files (*.yaml, *.yml, *.md) under %s", o->pos[0]);
        goto out;
    }
    if (s->server) {
        json_t *body = json_pack("{s:[], s:s}", "prompts", "author", s->author);
        json_t *arr = json_object_get(body, "prompts");
        for (size_t i = 0; body && i < fs.n; i++)
            json_array_append_new(arr, file_json(&fs.files[i]));
        if (o->message)
            json_object_set_new(body, "message", json_string(o->message));
        if (o->nlabels) {
            json_t *l = json_array();
            for (size_t i = 0; i < o->nlabels; i++)
                json_array_append_new(l, json_string(o->labels[i]));
            json_object_set_new(body, "labels", l);
        }
        buf p;
        buf_init(&p, 64);
        buf_append_str(&p, "/api/v1/prompts/push");
        bool ok = body && remote(s, "POST", &p, body, &res);
        buf_free(&p);
        json_decref(body);
        if (!ok)
            goto fail;
    } else {
        for (size_t i = 0; i < o->nlabels; i++)
            if (!check_protected(s, o->labels[i]))
                goto fail;
        for (size_t i = 0; i < fs.n; i++)
            for (size_t k = 0; k < fs.files[i].nlabels; k++)
                if (!check_protected(s, fs.files[i].labels[k]))
                    goto fail;
        if (prompt_fileset_inputs(&fs, s->author, o->message, o->labels, o->nlabels, &in) != ERR_OK) {
            errorf("out of memory");
            goto fail;
        }
        query_error e = { 0 };
        json_t *arr = NULL;
        if (prompt_save_many(s->store_url, in, fs.n, &arr, &e) != ERR_OK) {
            local_fail(&e);
            goto fail;
        }
        res = json_pack("{s:o}", "data", arr);
    }
    if (o->json)
        print_json(res);
    else {
        int width = 0;
        size_t i;
        json_t *x;
        json_array_foreach(json_object_get(res, "data"), i, x) width = MAX(width, (int)strlen(jstr(x, "name")));
        json_array_foreach(json_object_get(res, "data"), i, x)
            printf("%-*s  v%lld (%s)\n", width, jstr(x, "name"), jint(x, "version"),
                   json_is_true(json_object_get(x, "created")) ? "new" : "unchanged");
    }
    rc = 0;
    goto out;
fail:
    errorf("nothing was pushed");
out:
    free(in);
    json_decref(res);
    prompt_fileset_free(&fs);
    return rc;
}

/* mkdir -p dir: false with the reason printed. */
static bool make_dirs(const char *dir)
{
    char p[4096];
    size_t n = strlen(dir);
    if (n == 0 || n >= sizeof p) {
        errorf("the folder name '%s' is empty or too long", dir);
        return false;
    }
    memcpy(p, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (p[i] != '/' && p[i] != '\0')
            continue;
        char c = p[i];
        p[i] = '\0';
        if (mkdir(p, 0777) != 0 && errno != EEXIST) {
            errorf("cannot create the folder %s: %s", p, strerror(errno));
            return false;
        }
        p[i] = c;
    }
    return true;
}

static int cmd_pull(const source *s, const opts *o)
{
    json_t *list;
    if (!make_dirs(o->pos[0]) || !op_list(s, o->prefix, &list))
        return 1;
    json_t *written = json_array();
    size_t i;
    json_t *row;
    int rc = 0;
    json_array_foreach(json_object_get(list, "data"), i, row) {
        prompt_ref ref = { 0 };
        snprintf(ref.name, sizeof ref.name, "%s", jstr(row, "name"));
        if (o->nlabels) {
            if (!json_object_get(json_object_get(row, "labels"), o->labels[0]) && strcmp(o->labels[0], "latest")) {
                if (!o->json)
                    fprintf(stderr, "skipped %s: it has no label '%s'\n", ref.name, o->labels[0]);
                continue;
            }
            snprintf(ref.label, sizeof ref.label, "%s", o->labels[0]);
        }
        json_t *v;
        if (!op_get(s, &ref, &v)) {
            rc = 1;
            break;
        }
        char *path = NULL;
        prompt_file_error fe = { 0 };
        if (prompt_file_write(o->pos[0], v, &path, &fe) != ERR_OK) {
            print_file_error(o->pos[0], &fe);
            json_decref(v);
            rc = 1;
            break;
        }
        json_array_append_new(written, json_pack("{s:s, s:I, s:s}", "name", ref.name, "version",
                                                 (json_int_t)jint(v, "version"), "path", path));
        free(path);
        json_decref(v);
    }
    if (rc == 0 && o->json) {
        json_t *j = json_pack("{s:O}", "data", written);
        print_json(j);
        json_decref(j);
    } else {
        int width = 0;
        json_t *x;
        json_array_foreach(written, i, x) width = MAX(width, (int)strlen(jstr(x, "path")));
        json_array_foreach(written, i, x) printf("%-*s  v%lld\n", width, jstr(x, "path"), jint(x, "version"));
    }
    json_decref(written);
    json_decref(list);
    return rc;
}

static int cmd_list(const source *s, const opts *o)
{
    json_t *list;
    if (!op_list(s, o->prefix, &list))
        return 1;
    json_t *data = json_object_get(list, "data");
    if (o->json)
        print_json(list);
    else if (json_array_size(data) == 0)
        printf("(no prompts%s%s)\n", o->prefix ? " under " : "", o->prefix ? o->prefix : "");
    else {
        int width = 4;
        size_t i;
        json_t *x;
        json_array_foreach(data, i, x) width = MAX(width, (int)strlen(jstr(x, "name")));
        printf("%-*s  %-4s  %6s  %-19s  %s\n", width, "NAME", "TYPE", "LATEST", "UPDATED", "LABELS");
        json_array_foreach(data, i, x) {
            char labels[1024] = "", when[40];
            size_t off = 0;
            const char *k;
            json_t *v;
            json_object_foreach(json_object_get(x, "labels"), k, v) {
                if (off < sizeof labels)
                    off += (size_t)snprintf(labels + off, sizeof labels - off, "%s%s=%lld", off ? " " : "", k,
                                            (long long)json_integer_value(v));
            }
            fmt_local_time(jint(x, "updated_ns"), when, sizeof when);
            printf("%-*s  %-4s  %6lld  %-19s  %s\n", width, jstr(x, "name"), jstr(x, "type"),
                   jint(x, "latest_version"), when, labels);
        }
    }
    json_decref(list);
    return 0;
}

static int cmd_show(const source *s, const opts *o)
{
    prompt_ref ref;
    if (!parse_ref(o->pos[0], &ref))
        return 2;
    json_t *v;
    if (!op_get(s, &ref, &v))
        return 1;
    if (o->json)
        print_json(v);
    else
        print_version(v);
    json_decref(v);
    return 0;
}

/* A diff side given as NAME plus a version number, a label or a full ref. */
static bool side_ref(const char *name, const char *text, prompt_ref *ref)
{
    if (strchr(text, '@') || strchr(text, ':'))
        return parse_ref(text, ref);
    memset(ref, 0, sizeof *ref);
    snprintf(ref->name, sizeof ref->name, "%s", name);
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (*text >= '0' && *text <= '9') {
        if (*end || errno || v < 1 || v > 1000000000) {
            errorf("'%s' is not a version number", text);
            return false;
        }
        ref->version = (int)v;
        return true;
    }
    query_error e = { 0 };
    if (!prompt_label_valid(text, &e)) {
        errorf("%s", e.message);
        return false;
    }
    if (strcmp(text, "latest"))
        snprintf(ref->label, sizeof ref->label, "%s", text);
    return true;
}

static int cmd_diff(const source *s, const opts *o)
{
    prompt_ref a, b;
    if (o->npos == 2) {
        if (!parse_ref(o->pos[0], &a) || !parse_ref(o->pos[1], &b))
            return 2;
    } else {
        query_error e = { 0 };
        if (!prompt_name_valid(o->pos[0], &e)) {
            errorf("%s", e.message);
            return 2;
        }
        if (!side_ref(o->pos[0], o->pos[1], &a) || !side_ref(o->pos[0], o->pos[2], &b))
            return 2;
    }
    json_t *d = NULL;
    if (!s->server) {
        query_error e = { 0 };
        if (prompt_diff(s->store_url, &a, &b, &d, &e) != ERR_OK)
            return fail_rc(&e);
    } else {
        char ta[PROMPT_NAME_MAX + PROMPT_LABEL_MAX + 4], tb[sizeof ta];
        ref_text(&a, ta, sizeof ta);
        ref_text(&b, tb, sizeof tb);
        buf p;
        buf_init(&p, 4096);
        prompt_path(&p, a.name, "diff");
        buf_append_str(&p, "?from=");
        url_escape(&p, ta, false);
        buf_append_str(&p, "&to=");
        url_escape(&p, tb, false);
        bool ok = remote(s, "GET", &p, NULL, &d);
        buf_free(&p);
        if (!ok)
            return 1;
    }
    if (o->json)
        print_json(d);
    else if (!json_is_true(json_object_get(d, "changed"))) {
        char ta[PROMPT_NAME_MAX + PROMPT_LABEL_MAX + 4], tb[sizeof ta];
        ref_text(&a, ta, sizeof ta);
        ref_text(&b, tb, sizeof tb);
        printf("no differences between %s and %s\n", ta, tb);
    } else {
        fputs(jstr(d, "template"), stdout);
        if (*jstr(d, "config")) {
            if (*jstr(d, "template"))
                putchar('\n');
            fputs(jstr(d, "config"), stdout);
        }
    }
    json_decref(d);
    return 0;
}

static void print_move(const json_t *m, const char *verb)
{
    json_t *prev = json_object_get(m, "previous");
    if (json_is_integer(prev))
        printf("%s: %s %s v%lld (was v%lld)\n", jstr(m, "name"), jstr(m, "label"), verb, jint(m, "version"),
               (long long)json_integer_value(prev));
    else
        printf("%s: %s %s v%lld (was unset)\n", jstr(m, "name"), jstr(m, "label"), verb, jint(m, "version"));
}

static int cmd_label(const source *s, const opts *o)
{
    prompt_ref ref;
    const char *label = o->pos[1];
    query_error e = { 0 };
    if (!parse_ref(o->pos[0], &ref))
        return 2;
    if (!prompt_label_valid(label, &e)) {
        errorf("%s", e.message);
        return 2;
    }
    int version = ref.version;
    if (ref.label[0]) { /* NAME@OTHER: the version OTHER points at */
        json_t *v;
        if (!op_get(s, &ref, &v))
            return 1;
        version = (int)jint(v, "version");
        json_decref(v);
    }
    json_t *m = NULL;
    if (!s->server) {
        if (!check_protected(s, label))
            return 1;
        if (prompt_label_set(s->store_url, ref.name, label, version, s->author, s->admin, s->prot, s->nprot, &m, &e) !=
            ERR_OK)
            return fail_rc(&e);
    } else {
        json_t *body = json_pack("{s:s, s:i}", "label", label, "version", version);
        buf p;
        buf_init(&p, 4096);
        prompt_path(&p, ref.name, "labels");
        bool ok = body && remote(s, "POST", &p, body, &m);
        buf_free(&p);
        json_decref(body);
        if (!ok)
            return 1;
    }
    if (o->json)
        print_json(m);
    else
        print_move(m, "->");
    json_decref(m);
    return 0;
}

static int cmd_rollback(const source *s, const opts *o)
{
    const char *name = o->pos[0];
    const char *label = o->nlabels ? o->labels[0] : "production";
    json_t *m = NULL;
    query_error e = { 0 };
    if (!s->server) {
        if (!check_protected(s, label))
            return 1;
        if (prompt_rollback(s->store_url, name, label, s->author, s->admin, s->prot, s->nprot, &m, &e) != ERR_OK)
            return fail_rc(&e);
    } else {
        json_t *body = json_pack("{s:s}", "label", label);
        buf p;
        buf_init(&p, 4096);
        prompt_path(&p, name, "rollback");
        bool ok = body && remote(s, "POST", &p, body, &m);
        buf_free(&p);
        json_decref(body);
        if (!ok)
            return 1;
    }
    if (o->json)
        print_json(m);
    else
        print_move(m, "rolled back to");
    json_decref(m);
    return 0;
}

static int cmd_history(const source *s, const opts *o)
{
    const char *name = o->pos[0];
    const char *label = o->nlabels ? o->labels[0] : "";
    json_t *h = NULL;
    if (!s->server) {
        query_error e = { 0 };
        json_t *arr = NULL;
        if (prompt_history(s->store_url, name, label, &arr, &e) != ERR_OK)
            return fail_rc(&e);
        h = json_pack("{s:o}", "data", arr);
    } else {
        buf p;
        buf_init(&p, 4096);
        prompt_path(&p, name, "history");
        if (*label) {
            buf_append_str(&p, "?label=");
            url_escape(&p, label, false);
        }
        bool ok = remote(s, "GET", &p, NULL, &h);
        buf_free(&p);
        if (!ok)
            return 1;
    }
    json_t *data = json_object_get(h, "data");
    if (o->json)
        print_json(h);
    else if (json_array_size(data) == 0)
        printf("(no label moves for %s%s%s)\n", name, *label ? "@" : "", label);
    else {
        printf("%-19s  %-16s  %5s  %5s  %-8s  %s\n", "TIME", "LABEL", "FROM", "TO", "REASON", "WHO");
        size_t i;
        json_t *x;
        json_array_foreach(data, i, x) {
            char when[40], from[24] = "-";
            fmt_local_time(jint(x, "at_ns"), when, sizeof when);
            if (json_is_integer(json_object_get(x, "from")))
                snprintf(from, sizeof from, "v%lld", jint(x, "from"));
            char to[24];
            snprintf(to, sizeof to, "v%lld", jint(x, "to"));
            printf("%-19s  %-16s  %5s  %5s  %-8s  %s\n", when, jstr(x, "label"), from, to, jstr(x, "reason"),
                   jstr(x, "who"));
        }
    }
    json_decref(h);
    return 0;
}

/* The render request body for ref: {"label"|"version", "variables"}. */
static json_t *render_body(const prompt_ref *ref, json_t *vars)
{
    json_t *b = json_pack("{s:O}", "variables", vars);
    if (b && ref->version > 0)
        json_object_set_new(b, "version", json_integer(ref->version));
    else if (b && ref->label[0])
        json_object_set_new(b, "label", json_string(ref->label));
    return b;
}

static int cmd_render(const source *s, const opts *o)
{
    prompt_ref ref;
    if (!parse_ref(o->pos[0], &ref))
        return 2;
    json_t *vars = build_vars(o);
    if (!vars)
        return 2;
    json_t *out = NULL;
    int rc = 1;
    if (!s->server) {
        query_error e = { 0 };
        if (api_prompt_render(s->store_url, &ref, vars, &out, NULL, &e) != ERR_OK) {
            local_fail(&e);
            goto done;
        }
    } else {
        json_t *body = render_body(&ref, vars);
        buf p;
        buf_init(&p, 4096);
        prompt_path(&p, ref.name, "render");
        bool ok = body && remote(s, "POST", &p, body, &out);
        buf_free(&p);
        json_decref(body);
        if (!ok)
            goto done;
    }
    if (o->json)
        print_json(out);
    else if (!strcmp(jstr(out, "type"), "chat"))
        print_messages(json_object_get(out, "messages"));
    else
        put_text(jstr(out, "text"));
    rc = 0;
done:
    json_decref(out);
    json_decref(vars);
    return rc;
}

static int cmd_run(const source *s, const opts *o)
{
    prompt_ref ref;
    if (!parse_ref(o->pos[0], &ref))
        return 2;
    json_t *vars = build_vars(o);
    if (!vars)
        return 2;
    json_t *v = NULL, *req = NULL;
    http_result res = { 0 };
    int rc = 1;
    if (!op_get(s, &ref, &v))
        goto done;
    const char *model = o->model ? o->model : json_string_value(json_object_get(json_object_get(v, "config"), "model"));
    if (!model || !*model) {
        errorf("%s has no config.model: pass --model M", jstr(v, "name"));
        rc = 2;
        goto done;
    }
    req = json_pack("{s:s, s:{s:s, s:I, s:O}}", "model", model, "prompt", "name", jstr(v, "name"), "version",
                    (json_int_t)jint(v, "version"), "variables", vars);
    if (!req || !http_call(s, "POST", "/v1/chat/completions", req, &res))
        goto done;
    json_t *tokens = json_object_get(res.body, "usage");
    if (o->json) {
        json_t *j = json_pack("{s:{s:s, s:I}, s:s, s:O, s:s?, s:f}", "prompt", "name", jstr(v, "name"), "version",
                              (json_int_t)jint(v, "version"), "model", model, "response", res.body, "cost_usd",
                              res.cost[0] ? res.cost : NULL, "latency_ms", res.ms);
        print_json(j);
        json_decref(j);
    } else {
        json_t *msg = json_object_get(json_array_get(json_object_get(res.body, "choices"), 0), "message");
        json_t *content = json_object_get(msg, "content");
        if (json_is_string(content))
            put_text(json_string_value(content));
        else if (json_object_get(msg, "tool_calls")) {
            char *t = json_dumps(json_object_get(msg, "tool_calls"), JSON_INDENT(2));
            printf("(tool calls)\n%s\n", t ? t : "");
            free(t);
        }
        fprintf(stdout, "\n-- %s v%lld via %s: ", jstr(v, "name"), jint(v, "version"), model);
        if (tokens)
            printf("tokens %lld in / %lld out, ", jint(tokens, "prompt_tokens"), jint(tokens, "completion_tokens"));
        printf("cost %s%s, latency %.*f ms\n", res.cost[0] ? "$" : "", res.cost[0] ? res.cost : "-",
               res.ms < 10 ? 1 : 0, res.ms);
    }
    rc = 0;
done:
    json_decref(res.body);
    json_decref(req);
    json_decref(v);
    json_decref(vars);
    return rc;
}

/* ---- dispatch ---- */

static const struct {
    const char *name;
    int (*run)(const source *s, const opts *o);
    size_t min_pos, max_pos;
    const char *args;                   /* for the usage error */
} subs[] = {
    { "push", cmd_push, 1, 1, "DIR" },          { "pull", cmd_pull, 1, 1, "DIR" },
    { "list", cmd_list, 0, 0, "" },             { "show", cmd_show, 1, 1, "REF" },
    { "diff", cmd_diff, 2, 3, "REF REF" },      { "label", cmd_label, 2, 2, "REF LABEL" },
    { "rollback", cmd_rollback, 1, 1, "NAME" }, { "history", cmd_history, 1, 1, "NAME" },
    { "render", cmd_render, 1, 1, "REF" },      { "run", cmd_run, 1, 1, "REF" },
};

/* Which options a subcommand takes (beyond the common ones). */
static bool takes(const char *sub, const char *opt)
{
    static const struct {
        const char *opt, *subs;
    } t[] = {
        { "--label", " push pull rollback history " },
        { "--message", " push " },
        { "--prefix", " pull list " },
        { "--var", " render run " },
        { "--vars", " render run " },
        { "--model", " run " },
    };
    char key[32];
    snprintf(key, sizeof key, " %s ", sub);
    for (size_t i = 0; i < countof(t); i++)
        if (!strcmp(t[i].opt, opt))
            return strstr(t[i].subs, key) != NULL;
    return true;
}

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "genaiops prompt %s: ", sub_name);
    fprintf(stderr, fmt, arg);
    fprintf(stderr, " (genaiops prompt --help)\n");
    return 2;
}

int cli_prompt(int argc, char **argv)
{
    if (argc < 2 || cli_flag(argv, 1, "-h") || cli_flag(argv, 1, "--help") || !strcmp(argv[1], "help")) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    opts o = { .sub = argv[1] };
    size_t which = countof(subs);
    for (size_t i = 0; i < countof(subs); i++)
        if (!strcmp(subs[i].name, o.sub))
            which = i;
    if (which == countof(subs)) {
        fprintf(stderr, "genaiops prompt: unknown subcommand '%s'\n\n%s", o.sub, usage);
        return 2;
    }
    sub_name = subs[which].name;
    const char *config_path = NULL, *server = NULL, *admin_key = NULL, *author = NULL, *v;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (cli_flag(argv, i, "-h") || cli_flag(argv, i, "--help")) {
            fputs(usage, stdout);
            return 0;
        }
        if (cli_flag(argv, i, "--json"))
            o.json = true;
        else if (cli_opt(argc, argv, &i, "--config", &config_path) || cli_opt(argc, argv, &i, "--server", &server) ||
                 cli_opt(argc, argv, &i, "--admin-key", &admin_key) || cli_opt(argc, argv, &i, "--author", &author))
            ;
        else if (cli_opt(argc, argv, &i, "--label", &v)) {
            if (!takes(o.sub, "--label"))
                return usage_error("%s takes no --label", o.sub);
            if (o.nlabels && strcmp(o.sub, "push"))
                return usage_error("--label is given more than once%s", "");
            if (o.nlabels == MAX_LABELS)
                return usage_error("too many --label options%s", "");
            o.labels[o.nlabels++] = v;
        } else if (cli_opt(argc, argv, &i, "--message", &v) || cli_opt(argc, argv, &i, "-m", &v)) {
            if (!takes(o.sub, "--message"))
                return usage_error("%s takes no --message", o.sub);
            o.message = v;
        } else if (cli_opt(argc, argv, &i, "--prefix", &v)) {
            if (!takes(o.sub, "--prefix"))
                return usage_error("%s takes no --prefix", o.sub);
            o.prefix = v;
        } else if (cli_opt(argc, argv, &i, "--vars", &v)) {
            if (!takes(o.sub, "--vars"))
                return usage_error("%s takes no --vars", o.sub);
            o.vars_file = v;
        } else if (cli_opt(argc, argv, &i, "--var", &v)) {
            if (!takes(o.sub, "--var"))
                return usage_error("%s takes no --var", o.sub);
            if (o.nvars == MAX_VARS)
                return usage_error("too many --var options%s", "");
            o.vars[o.nvars++] = v;
        } else if (cli_opt(argc, argv, &i, "--model", &v)) {
            if (!takes(o.sub, "--model"))
                return usage_error("%s takes no --model", o.sub);
            o.model = v;
        } else if (a[0] == '-' && a[1])
            return usage_error("unknown option '%s'", a);
        else if (o.npos == subs[which].max_pos)
            return usage_error("unexpected argument '%s'", a);
        else
            o.pos[o.npos++] = a;
    }
    if (o.npos < subs[which].min_pos) {
        fprintf(stderr, "genaiops prompt %s: missing arguments: genaiops prompt %s %s (genaiops prompt --help)\n",
                sub_name, sub_name, subs[which].args);
        return 2;
    }
    for (size_t i = 0; i < o.nlabels; i++) {
        query_error e = { 0 };
        if (!prompt_label_valid(o.labels[i], &e)) {
            fprintf(stderr, "genaiops prompt %s: %s\n", sub_name, e.message);
            return 2;
        }
    }

    source src = { 0 };
    src.author = author && *author ? author : getenv("USER");
    if (!src.author || !*src.author)
        src.author = "unknown";
    if (!admin_key)
        admin_key = getenv("GENAIOPS_ADMIN_KEY");
    if (!server && !config_path) {
        const char *env = getenv("GENAIOPS_SERVER");
        server = env && *env ? env : NULL;
    }
    if (!server && !strcmp(o.sub, "run"))
        server = DEFAULT_SERVER;
    int rc;
    if (server) {
        src.server = server;
        src.admin_key = admin_key;
        curl_global_init(CURL_GLOBAL_DEFAULT);
    } else {
        src.cfg = cli_load_config(config_path);
        if (!src.cfg)
            return 1;
        src.store_url = src.cfg->store_url ? src.cfg->store_url : "sqlite://./genaiops.db";
        const char *key = src.cfg->server.admin_key;
        bool has_key = key && *key;
        src.admin = !has_key || (admin_key && strcmp(admin_key, key) == 0);
        src.prot = src.cfg->prompts.protected_labels;
        src.nprot = has_key ? src.cfg->prompts.nprotected : 0;
    }
    rc = subs[which].run(&src, &o);
    if (src.cfg)
        config_free(src.cfg);
    if (server)
        curl_global_cleanup();
    query_shutdown();
    return rc;
}
