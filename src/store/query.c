/*
 * query.c - searches over the trace store and the score tables.
 *
 * Connections: a process-wide pool of idle SQLite connections, each tagged
 * with its store URL and whether it may write. A call takes one (or opens
 * one), runs its statements and gives it back; at most POOL_IDLE_MAX stay
 * open. Searches use read-only connections, so they can never take the
 * write lock from the trace writer; score inserts use read-write ones.
 *
 * Trace search builds one SELECT from the filters with named parameters and
 * orders by (start_ns DESC, trace_id DESC): that pair is unique, so the
 * cursor (the last row's pair, base64url) gives stable keyset pagination
 * even while new traces arrive. The filters are a table (filter_defs): name,
 * kind, and where in query_filter the parsed value goes.
 *
 * Rows become JSON column by column; the few columns holding JSON text
 * (params, content, span attributes, categories) are embedded as JSON, and
 * text that is not valid UTF-8 is repaired rather than dropped.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>
#include <time.h>
#include "core/buf.h"
#include "http/parser.h"
#include "store/query.h"

#define POOL_IDLE_MAX 8
#define BUSY_TIMEOUT_MS 5000
#define SCORE_NAME_MAX 200
#define SCORE_STR_MAX 1000
#define SCORE_COMMENT_MAX 4096
#define CONFIG_CATEGORIES_MAX 100
#define CONFIG_DESCRIPTION_MAX 1000
#define SEARCH_TIMEOUT_MS 10000 /* default: a search that runs longer is stopped */

/* ---- errors ---- */

err_code query_fail(query_error *e, int status, const char *param, const char *code, const char *fmt, ...)
{
    e->status = status;
    snprintf(e->type, sizeof e->type, "%s", status >= 500 ? "server_error" : "invalid_request_error");
    snprintf(e->code, sizeof e->code, "%s", code ? code : "");
    snprintf(e->param, sizeof e->param, "%s", param ? param : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    switch (status) {
    case 400: return ERR_INVAL;
    case 403: return ERR_DENIED;
    case 404: return ERR_NOTFOUND;
    case 409: return ERR_EXISTS;
    default:
        if (status == 500 && strcmp(e->code, "out_of_memory") == 0)
            return ERR_NOMEM;
        return status >= 500 ? ERR_STORE : ERR_INVAL;
    }
}

err_code query_fail_db(query_error *e, sqlite3 *db, const char *what)
{
    int rc = db ? sqlite3_errcode(db) : SQLITE_ERROR;
    const char *msg = db ? sqlite3_errmsg(db) : "no connection";
    if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
        return query_fail(e, 503, NULL, "store_busy", "the store is busy (%s); try again", what);
    if (rc == SQLITE_NOMEM)
        return query_fail(e, 500, NULL, "out_of_memory", "out of memory");
    if (strstr(msg, "no such table") || strstr(msg, "no such column"))
        return query_fail(e, 503, NULL, "store_not_migrated",
                    "the store is not migrated yet (%s); start the gateway or run `genaiops migrate`", msg);
    return query_fail(e, 500, NULL, "store_error", "store error while %s: %s", what, msg);
}

json_t *query_error_json(const query_error *e)
{
    return json_pack("{s:{s:s, s:s, s:s?, s:s?}}", "error", "message", e->message, "type",
                     e->type[0] ? e->type : "server_error", "param", e->param[0] ? e->param : NULL, "code",
                     e->code[0] ? e->code : NULL);
}

/* ---- the connection pool ---- */

typedef struct idle_conn {
    sqlite3 *db;
    char *url;
    bool rw;
} idle_conn;

static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;
static idle_conn idle[POOL_IDLE_MAX];

static const char *url_path(const char *url)
{
    if (strncmp(url, "sqlite://", 9) == 0)
        return url + 9;
    if (strstr(url, "://"))
        return NULL;
    return url;
}

/* Takes an idle connection for url or opens one. */
static err_code conn_get(const char *url, bool rw, sqlite3 **out, query_error *e)
{
    pthread_mutex_lock(&pool_mu);
    for (int i = 0; i < POOL_IDLE_MAX; i++)
        if (idle[i].db && idle[i].rw == rw && strcmp(idle[i].url, url) == 0) {
            *out = idle[i].db;
            free(idle[i].url);
            idle[i] = (idle_conn){ 0 };
            pthread_mutex_unlock(&pool_mu);
            return ERR_OK;
        }
    pthread_mutex_unlock(&pool_mu);
    const char *path = url_path(url);
    if (!path || !*path)
        return query_fail(e, 500, NULL, "store_error", "store url '%s' is not supported (use sqlite://PATH)", url);
    sqlite3 *db = NULL;
    int flags = (rw ? SQLITE_OPEN_READWRITE : SQLITE_OPEN_READONLY) | SQLITE_OPEN_NOMUTEX;
    int rc = sqlite3_open_v2(path, &db, flags, NULL);
    if (rc != SQLITE_OK) {
        err_code r = query_fail(e, 503, NULL, "store_unavailable", "cannot open the store %s: %s", path,
                          db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
        sqlite3_close(db);
        return r;
    }
    sqlite3_busy_timeout(db, BUSY_TIMEOUT_MS);
    *out = db;
    return ERR_OK;
}

/* Gives a connection back (or closes it when the pool is full). */
static void conn_put(const char *url, bool rw, sqlite3 *db)
{
    if (!db)
        return;
    char *copy = strdup(url);
    pthread_mutex_lock(&pool_mu);
    for (int i = 0; copy && i < POOL_IDLE_MAX; i++)
        if (!idle[i].db) {
            idle[i] = (idle_conn){ db, copy, rw };
            db = NULL;
            copy = NULL;
            break;
        }
    pthread_mutex_unlock(&pool_mu);
    free(copy);
    sqlite3_close(db);
}

void query_shutdown(void)
{
    pthread_mutex_lock(&pool_mu);
    for (int i = 0; i < POOL_IDLE_MAX; i++) {
        sqlite3_close(idle[i].db);
        free(idle[i].url);
        idle[i] = (idle_conn){ 0 };
    }
    pthread_mutex_unlock(&pool_mu);
}

/* ---- time and cursors ---- */

static bool digits(const char *p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
        v = v * 10 + (p[i] - '0');
    }
    *out = v;
    return true;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (civil calendar
 * arithmetic with eras of 400 years, which repeat exactly). */
static int64_t days_from_civil(int y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;                          /* 0..399 */
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1; /* 0..365, from March 1 */
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;  /* 0..146096 */
    return era * 146097 + doe - 719468;
}

static int days_in_month(int y, int m)
{
    static const int n[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : n[m - 1];
}

bool query_parse_time(sv s, int64_t *ns)
{
    if (s.len == 0 || s.len > 40)
        return false;
    const char *p = s.p;
    size_t n = s.len;
    size_t nd = 0;
    while (nd < n && p[nd] >= '0' && p[nd] <= '9')
        nd++;
    if (nd == n) { /* unix milliseconds */
        if (n > 13)
            return false;
        int64_t ms = 0;
        for (size_t i = 0; i < n; i++)
            ms = ms * 10 + (p[i] - '0');
        if (ms > INT64_MAX / 1000000)
            return false;
        *ns = ms * 1000000;
        return true;
    }
    int y, mo, d, h = 0, mi = 0, sec = 0;
    if (n < 10 || p[4] != '-' || p[7] != '-' || !digits(p, 4, &y) || !digits(p + 5, 2, &mo) ||
        !digits(p + 8, 2, &d))
        return false;
    if (y < 1970 || y > 2261 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo))
        return false;
    size_t i = 10;
    int64_t frac = 0, offset_s = 0;
    if (i < n) {
        if ((p[i] != 'T' && p[i] != 't' && p[i] != ' ') || n < i + 9 || p[i + 3] != ':' || p[i + 6] != ':' ||
            !digits(p + i + 1, 2, &h) || !digits(p + i + 4, 2, &mi) || !digits(p + i + 7, 2, &sec))
            return false;
        if (h > 23 || mi > 59 || sec > 60)
            return false;
        i += 9;
        if (i < n && p[i] == '.') {
            i++;
            size_t start = i;
            int64_t scale = 100000000;
            while (i < n && p[i] >= '0' && p[i] <= '9') {
                frac += (p[i] - '0') * scale;
                scale /= 10;
                i++;
            }
            if (i == start || i - start > 9)
                return false;
        }
        if (i == n)
            return false; /* RFC 3339 needs a zone */
        if (p[i] == 'Z' || p[i] == 'z') {
            i++;
        } else if (p[i] == '+' || p[i] == '-') {
            int oh, om;
            if (n - i != 6 || p[i + 3] != ':' || !digits(p + i + 1, 2, &oh) || !digits(p + i + 4, 2, &om) ||
                oh > 23 || om > 59)
                return false;
            offset_s = (int64_t)(oh * 3600 + om * 60) * (p[i] == '+' ? 1 : -1);
            i += 6;
        } else
            return false;
        if (i != n)
            return false;
    }
    int64_t secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - offset_s;
    if (secs < 0 || secs > INT64_MAX / 1000000000 - 1)
        return false;
    *ns = secs * 1000000000 + frac;
    return true;
}

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

void query_cursor_encode(int64_t start_ns, const char *trace_id, char *out, size_t cap)
{
    char raw[64];
    int n = snprintf(raw, sizeof raw, "%lld.%s", (long long)start_ns, trace_id);
    if (n < 0 || (size_t)n >= sizeof raw)
        n = 0;
    size_t o = 0;
    for (int i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)(unsigned char)raw[i] << 16;
        int k = n - i >= 3 ? 3 : n - i;
        if (k > 1)
            v |= (uint32_t)(unsigned char)raw[i + 1] << 8;
        if (k > 2)
            v |= (unsigned char)raw[i + 2];
        for (int j = 0; j <= k && o + 1 < cap; j++)
            out[o++] = b64url[(v >> (18 - 6 * j)) & 63];
    }
    if (cap)
        out[o < cap ? o : cap - 1] = '\0';
}

static int b64val(char c)
{
    const char *p = c ? strchr(b64url, c) : NULL;
    return p ? (int)(p - b64url) : -1;
}

bool query_cursor_decode(sv s, int64_t *start_ns, char trace_id[33])
{
    char raw[64];
    size_t o = 0;
    if (s.len == 0 || s.len > 80 || s.len % 4 == 1)
        return false;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < s.len; i++) {
        int v = b64val(s.p[i]);
        if (v < 0)
            return false;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o >= sizeof raw - 1)
                return false;
            raw[o++] = (char)((acc >> bits) & 0xff);
        }
    }
    raw[o] = '\0';
    const char *dot = memchr(raw, '.', o);
    if (!dot || dot == raw || (size_t)(raw + o - dot - 1) != 32)
        return false;
    int64_t v = 0;
    for (const char *p = raw; p < dot; p++) {
        if (*p < '0' || *p > '9' || v > (INT64_MAX - (*p - '0')) / 10)
            return false;
        v = v * 10 + (*p - '0');
    }
    for (int i = 0; i < 32; i++) {
        char c = dot[1 + i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
        trace_id[i] = c;
    }
    trace_id[32] = '\0';
    *start_ns = v;
    return true;
}

/* ---- filters ---- */

typedef enum fkind { F_TEXT, F_FROM, F_TO, F_STATUS, F_LATENCY, F_COST, F_LIMIT, F_CURSOR } fkind;

static const struct filter_def {
    const char *name;
    fkind kind;
    size_t off; /* F_TEXT: offset of the char array in query_filter */
} filter_defs[] = {
    { "from", F_FROM, 0 },
    { "to", F_TO, 0 },
    { "model", F_TEXT, offsetof(query_filter, model) },
    { "provider", F_TEXT, offsetof(query_filter, provider) },
    { "status", F_STATUS, 0 },
    { "deployment", F_TEXT, offsetof(query_filter, deployment) },
    { "key", F_TEXT, offsetof(query_filter, key) },
    { "min_latency_ms", F_LATENCY, 0 },
    { "min_cost", F_COST, 0 },
    { "q", F_TEXT, offsetof(query_filter, q) },
    { "limit", F_LIMIT, 0 },
    { "cursor", F_CURSOR, 0 },
};

static bool parse_double(sv v, double *out)
{
    char tmp[64];
    if (v.len == 0 || v.len >= sizeof tmp)
        return false;
    memcpy(tmp, v.p, v.len);
    tmp[v.len] = '\0';
    if (!((tmp[0] >= '0' && tmp[0] <= '9') || tmp[0] == '.'))
        return false; /* no sign, no "inf", no "nan", no spaces */
    char *end;
    errno = 0;
    double d = strtod(tmp, &end);
    if (*end || errno || !isfinite(d) || d < 0)
        return false;
    *out = d;
    return true;
}

static bool parse_int(sv v, long lo, long hi, long *out)
{
    if (v.len == 0 || v.len > 9)
        return false;
    long n = 0;
    for (size_t i = 0; i < v.len; i++) {
        if (v.p[i] < '0' || v.p[i] > '9')
            return false;
        n = n * 10 + (v.p[i] - '0');
    }
    if (n < lo || n > hi)
        return false;
    *out = n;
    return true;
}

err_code query_filter_set(query_filter *f, const char *name, sv v, query_error *e)
{
    const struct filter_def *d = NULL;
    for (size_t i = 0; i < countof(filter_defs); i++)
        if (!strcmp(filter_defs[i].name, name))
            d = &filter_defs[i];
    if (!d)
        return query_fail(e, 400, name, "invalid_filter",
                    "unknown filter '%.40s' (known: from, to, model, provider, status, deployment, key, "
                    "min_latency_ms, min_cost, q, limit, cursor)",
                    name);
    if (v.len == 0)
        return ERR_OK; /* an empty value leaves the filter out */
    if (memchr(v.p, '\0', v.len))
        return query_fail(e, 400, name, "invalid_filter", "'%s' contains a NUL byte", name);
    long n;
    int64_t ns;
    switch (d->kind) {
    case F_TEXT:
        if (v.len > QUERY_TEXT_MAX)
            return query_fail(e, 400, name, "invalid_filter", "'%s' is longer than %d bytes", name, QUERY_TEXT_MAX);
        memcpy((char *)f + d->off, v.p, v.len);
        ((char *)f + d->off)[v.len] = '\0';
        return ERR_OK;
    case F_FROM:
    case F_TO:
        if (!query_parse_time(v, &ns))
            return query_fail(e, 400, name, "invalid_filter",
                        "'%s' must be unix milliseconds or an RFC 3339 time (2024-11-21T09:30:00Z)", name);
        if (d->kind == F_FROM) {
            f->has_from = true;
            f->from_ns = ns;
        } else {
            f->has_to = true;
            f->to_ns = ns;
        }
        return ERR_OK;
    case F_STATUS:
        if (v.len == 5 && !strncasecmp(v.p, "error", 5))
            f->status_mode = QSTATUS_ERROR;
        else if (v.len == 2 && !strncasecmp(v.p, "ok", 2))
            f->status_mode = QSTATUS_OK;
        else if (parse_int(v, 100, 599, &n)) {
            f->status_mode = QSTATUS_EXACT;
            f->status = (int)n;
        } else
            return query_fail(e, 400, name, "invalid_filter", "'status' must be an HTTP status (100-599), 'ok' or 'error'");
        return ERR_OK;
    case F_LATENCY:
        if (!parse_double(v, &f->min_latency_ms))
            return query_fail(e, 400, name, "invalid_filter", "'min_latency_ms' must be a number >= 0");
        f->has_min_latency = true;
        return ERR_OK;
    case F_COST:
        if (!parse_double(v, &f->min_cost))
            return query_fail(e, 400, name, "invalid_filter", "'min_cost' must be a number >= 0 (USD)");
        f->has_min_cost = true;
        return ERR_OK;
    case F_LIMIT:
        if (!parse_int(v, 1, QUERY_LIMIT_MAX, &n))
            return query_fail(e, 400, name, "invalid_filter", "'limit' must be an integer from 1 to %d", QUERY_LIMIT_MAX);
        f->limit = (int)n;
        return ERR_OK;
    case F_CURSOR:
        if (!query_cursor_decode(v, &f->cursor_start_ns, f->cursor_id))
            return query_fail(e, 400, name, "invalid_filter", "'cursor' is not a cursor this API returned");
        f->has_cursor = true;
        return ERR_OK;
    }
    return ERR_OK;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

err_code query_filter_parse(query_filter *f, sv query, query_error *e)
{
    uint32_t seen = 0;
    size_t pos = 0;
    sv rawname, rawval;
    while (http_query_next(query, &pos, &rawname, &rawval)) {
        if (rawname.len == 0)
            continue; /* "=x": no name, like an empty pair */
        char name[33], val[QUERY_TEXT_MAX * 2 + 1];
        /* percent-decoding as the HTTP layer does it (http/parser.h): a
         * malformed escape, %00 or too long a result is refused */
        size_t nlen = http_url_decode(name, sizeof name, rawname);
        if (nlen == (size_t)-1 || memchr(name, '\0', nlen)) { /* raw NUL bytes pass the decoder */
            char shown[33];
            size_t k = MIN(rawname.len, sizeof shown - 1);
            for (size_t m = 0; m < k; m++)
                shown[m] = rawname.p[m] >= 0x20 && rawname.p[m] < 0x7f ? rawname.p[m] : '?';
            shown[k] = '\0';
            return query_fail(e, 400, shown, "invalid_filter", "unknown or malformed filter name '%s'", shown);
        }
        size_t vlen = http_url_decode(val, sizeof val, rawval);
        if (vlen == (size_t)-1)
            return query_fail(e, 400, name, "invalid_filter", "the value of '%.32s' is malformed or too long", name);
        err_code r = query_filter_set(f, name, sv_make(val, vlen), e);
        if (r != ERR_OK)
            return r;
        for (size_t k = 0; k < countof(filter_defs); k++)
            if (!strcmp(filter_defs[k].name, name)) {
                if (seen & (1u << k))
                    return query_fail(e, 400, name, "invalid_filter", "'%s' is given more than once", name);
                seen |= 1u << k;
            }
    }
    return ERR_OK;
}

/* ---- rows to JSON ---- */

/* A JSON string from bytes that should be UTF-8; invalid sequences become
 * U+FFFD instead of failing the whole answer. */
static json_t *jstr(const char *p, size_t n)
{
    json_t *s = json_stringn(p, n);
    if (s)
        return s;
    buf b;
    buf_init(&b, n * 3 + 16);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c < 0x80 && c != 0)
            buf_append(&b, &c, 1);
        else {
            json_t *one = NULL;
            size_t k = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
            if (k > 1 && i + k <= n && (one = json_stringn(p + i, k)) != NULL) {
                buf_append(&b, p + i, k);
                i += k - 1;
                json_decref(one);
            } else
                buf_append(&b, "\xef\xbf\xbd", 3);
        }
    }
    s = json_stringn(b.p ? b.p : "", b.len);
    buf_free(&b);
    return s ? s : json_string("");
}

static json_t *col_json(sqlite3_stmt *st, int i)
{
    switch (sqlite3_column_type(st, i)) {
    case SQLITE_INTEGER: return json_integer(sqlite3_column_int64(st, i));
    case SQLITE_FLOAT: return json_real(sqlite3_column_double(st, i));
    case SQLITE_TEXT: return jstr((const char *)sqlite3_column_text(st, i), (size_t)sqlite3_column_bytes(st, i));
    case SQLITE_BLOB: return jstr((const char *)sqlite3_column_blob(st, i), (size_t)sqlite3_column_bytes(st, i));
    default: return json_null();
    }
}

/* A column holding JSON text: embedded as JSON when it parses, else as a
 * string. */
static json_t *col_embedded(sqlite3_stmt *st, int i)
{
    if (sqlite3_column_type(st, i) != SQLITE_TEXT)
        return col_json(st, i);
    const char *t = (const char *)sqlite3_column_text(st, i);
    json_t *v = json_loadb(t, (size_t)sqlite3_column_bytes(st, i), JSON_DECODE_ANY, NULL);
    return v ? v : col_json(st, i);
}

/* finish_reasons: a JSON array as stored, or comma-separated text. */
static json_t *col_reasons(sqlite3_stmt *st, int i)
{
    if (sqlite3_column_type(st, i) != SQLITE_TEXT)
        return col_json(st, i);
    const char *t = (const char *)sqlite3_column_text(st, i);
    size_t n = (size_t)sqlite3_column_bytes(st, i);
    if (n && t[0] == '[') {
        json_t *v = json_loadb(t, n, 0, NULL);
        if (json_is_array(v))
            return v;
        json_decref(v);
    }
    json_t *a = json_array();
    size_t s = 0;
    for (size_t k = 0; k <= n; k++)
        if (k == n || t[k] == ',') {
            if (k > s)
                json_array_append_new(a, jstr(t + s, k - s));
            s = k + 1;
        }
    return a;
}

static void fmt_time(int64_t ns, char *out, size_t cap)
{
    time_t secs = (time_t)(ns / 1000000000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", (tm.tm_year + 1900) % 10000, (tm.tm_mon + 1) % 100,
             tm.tm_mday % 100, tm.tm_hour % 100, tm.tm_min % 100, tm.tm_sec % 100, (int)(ns / 1000000 % 1000));
}

/* Every column of the current row into obj, by column name, with the
 * special columns decoded. */
static void row_object(sqlite3_stmt *st, json_t *obj)
{
    int n = sqlite3_column_count(st);
    for (int i = 0; i < n; i++) {
        const char *name = sqlite3_column_name(st, i);
        json_t *v;
        if (!strcmp(name, "stream") || !strcmp(name, "content_redacted") || !strcmp(name, "content_truncated"))
            v = sqlite3_column_type(st, i) == SQLITE_NULL ? json_null() : json_boolean(sqlite3_column_int(st, i));
        else if (!strcmp(name, "params") || !strcmp(name, "input_messages") || !strcmp(name, "output_messages") ||
                 !strcmp(name, "attributes") || !strcmp(name, "categories"))
            v = col_embedded(st, i);
        else if (!strcmp(name, "finish_reasons"))
            v = col_reasons(st, i);
        else
            v = col_json(st, i);
        json_object_set_new(obj, name, v);
        if (!strcmp(name, "start_ns") || !strcmp(name, "created_ns")) {
            char t[40];
            fmt_time(sqlite3_column_int64(st, i), t, sizeof t);
            json_object_set_new(obj, name[0] == 's' ? "start_time" : "created_time", json_string(t));
        }
    }
}

/* ---- trace search ---- */

static const char summary_cols[] =
    "trace_id, request_id, start_ns, duration_ms, operation, endpoint, provider, request_model, "
    "response_model, deployment, api_key, status, error_type, stream, input_tokens, output_tokens, "
    "cache_read_tokens, reasoning_tokens, cost_usd, ttft_ms, attempts, prompt_name, prompt_version";

void query_bind_text(sqlite3_stmt *st, const char *name, const char *v)
{
    int i = sqlite3_bind_parameter_index(st, name);
    if (i > 0)
        sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT);
}

void query_bind_i64(sqlite3_stmt *st, const char *name, int64_t v)
{
    int i = sqlite3_bind_parameter_index(st, name);
    if (i > 0)
        sqlite3_bind_int64(st, i, v);
}

static void bind_dbl(sqlite3_stmt *st, const char *name, double v)
{
    int i = sqlite3_bind_parameter_index(st, name);
    if (i > 0)
        sqlite3_bind_double(st, i, v);
}

/* The WHERE clause of f with named parameters (:model ...). */
static err_code where_clause(const query_filter *f, buf *sql)
{
    err_code r = buf_append_str(sql, " WHERE 1");
    if (f->has_from)
        r |= buf_append_str(sql, " AND start_ns >= :from");
    if (f->has_to)
        r |= buf_append_str(sql, " AND start_ns < :to");
    if (f->model[0])
        r |= buf_append_str(sql, " AND request_model = :model");
    if (f->provider[0])
        r |= buf_append_str(sql, " AND provider = :provider");
    if (f->deployment[0])
        r |= buf_append_str(sql, " AND deployment = :deployment");
    if (f->key[0])
        r |= buf_append_str(sql, " AND api_key = :key");
    /* The status ranges are written so that the status index is not used:
     * walking traces_start newest-first and skipping is quicker than
     * sorting every error trace ever stored. An exact code uses it. */
    if (f->status_mode == QSTATUS_EXACT)
        r |= buf_append_str(sql, " AND status = :status");
    else if (f->status_mode == QSTATUS_ERROR)
        r |= buf_append_str(sql, " AND +status >= 400");
    else if (f->status_mode == QSTATUS_OK)
        r |= buf_append_str(sql, " AND +status < 400");
    if (f->has_min_latency)
        r |= buf_append_str(sql, " AND duration_ms >= :min_latency");
    if (f->has_min_cost)
        r |= buf_append_str(sql, " AND cost_usd >= :min_cost");
    if (f->q[0])
        r |= buf_append_str(sql, " AND (request_id LIKE :q ESCAPE '\\' OR response_id LIKE :q ESCAPE '\\'"
                                 " OR request_model LIKE :q ESCAPE '\\' OR response_model LIKE :q ESCAPE '\\'"
                                 " OR input_messages LIKE :q ESCAPE '\\' OR output_messages LIKE :q ESCAPE '\\')");
    if (f->has_cursor)
        r |= buf_append_str(sql, " AND (start_ns < :cur_ns OR (start_ns = :cur_ns AND trace_id < :cur_id))");
    return r ? ERR_TOOBIG : ERR_OK;
}

static void bind_filter(sqlite3_stmt *st, const query_filter *f)
{
    query_bind_i64(st, ":from", f->from_ns);
    query_bind_i64(st, ":to", f->to_ns);
    query_bind_text(st, ":model", f->model);
    query_bind_text(st, ":provider", f->provider);
    query_bind_text(st, ":deployment", f->deployment);
    query_bind_text(st, ":key", f->key);
    query_bind_i64(st, ":status", f->status);
    bind_dbl(st, ":min_latency", f->min_latency_ms);
    bind_dbl(st, ":min_cost", f->min_cost);
    if (f->q[0]) { /* %q% with LIKE's wildcards escaped */
        char pat[QUERY_TEXT_MAX * 2 + 3];
        size_t o = 0;
        pat[o++] = '%';
        for (const char *c = f->q; *c; c++) {
            if (*c == '%' || *c == '_' || *c == '\\')
                pat[o++] = '\\';
            pat[o++] = *c;
        }
        pat[o++] = '%';
        pat[o] = '\0';
        query_bind_text(st, ":q", pat);
    }
    query_bind_i64(st, ":cur_ns", f->cursor_start_ns);
    query_bind_text(st, ":cur_id", f->cursor_id);
}

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* SQLite's progress callback: non-zero stops the statement (SQLITE_INTERRUPT)
 * once the deadline has passed. */
static int past_deadline(void *ud) { return mono_ns() > *(const int64_t *)ud; }

err_code query_traces_list(const char *store_url, const query_filter *f, json_t **out, query_error *e)
{
    *out = NULL;
    int limit = f->limit > 0 ? MIN(f->limit, QUERY_LIMIT_MAX) : QUERY_LIMIT_DEFAULT;
    buf sql;
    buf_init(&sql, 8192);
    buf_printf(&sql, "SELECT %s FROM traces", summary_cols);
    if (where_clause(f, &sql) != ERR_OK || buf_printf(&sql, " ORDER BY start_ns DESC, trace_id DESC LIMIT %d", limit + 1)) {
        buf_free(&sql);
        return query_fail(e, 500, NULL, "store_error", "query too long");
    }
    sqlite3 *db = NULL;
    err_code r = conn_get(store_url, false, &db, e);
    if (r != ERR_OK) {
        buf_free(&sql);
        return r;
    }
    sqlite3_stmt *st = NULL;
    json_t *data = json_array();
    int rows = 0, rc;
    char last_id[33] = "";
    int64_t last_ns = 0;
    if (sqlite3_prepare_v2(db, sql.p, (int)sql.len, &st, NULL) != SQLITE_OK) {
        r = query_fail_db(e, db, "searching traces");
        goto out;
    }
    bind_filter(st, f);
    /* a scan (q, or a filter no index serves) must not hold a pool thread forever */
    long timeout_ms = f->timeout_ms > 0 ? f->timeout_ms : SEARCH_TIMEOUT_MS;
    int64_t deadline = mono_ns() + (int64_t)timeout_ms * 1000000;
    sqlite3_progress_handler(db, 1000, past_deadline, &deadline);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (++rows > limit)
            break;
        json_t *o = json_object();
        row_object(st, o);
        json_array_append_new(data, o);
        last_ns = sqlite3_column_int64(st, 2);
        snprintf(last_id, sizeof last_id, "%s", (const char *)sqlite3_column_text(st, 0) ? (const char *)sqlite3_column_text(st, 0) : "");
    }
    sqlite3_progress_handler(db, 0, NULL, NULL);
    if (rc == SQLITE_INTERRUPT) {
        r = query_fail(e, 503, NULL, "search_timeout",
                 "the search took longer than %ld ms; narrow it (from/to, model, provider ...)", timeout_ms);
        goto out;
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        r = query_fail_db(e, db, "searching traces");
        goto out;
    }
    json_t *next = json_null();
    if (rows > limit && strlen(last_id) == 32) {
        char cur[96];
        query_cursor_encode(last_ns, last_id, cur, sizeof cur);
        json_decref(next);
        next = json_string(cur);
    }
    *out = json_pack("{s:O, s:o}", "data", data, "next_cursor", next);
out:
    sqlite3_finalize(st);
    conn_put(store_url, false, db);
    json_decref(data);
    buf_free(&sql);
    if (r == ERR_OK && !*out)
        r = query_fail(e, 500, NULL, "store_error", "out of memory");
    return r;
}

/* Lower-case 32-hex form of id in out; false if it is not one. */
static bool norm_trace_id(sv id, char out[33])
{
    if (id.len != 32)
        return false;
    for (size_t i = 0; i < 32; i++) {
        int v = hexval(id.p[i]);
        if (v < 0)
            return false;
        out[i] = "0123456789abcdef"[v];
    }
    out[32] = '\0';
    return true;
}

static err_code scores_of(sqlite3 *db, const char *trace_id, json_t *arr, query_error *e)
{
    sqlite3_stmt *st = NULL;
    int rc;
    if (sqlite3_prepare_v2(db,
                           "SELECT id, trace_id, name, data_type, value_num, value_str, comment, source, created_ns "
                           "FROM scores WHERE trace_id = ?1 ORDER BY created_ns, id",
                           -1, &st, NULL) != SQLITE_OK)
        return query_fail_db(e, db, "reading scores");
    sqlite3_bind_text(st, 1, trace_id, -1, SQLITE_STATIC);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        json_t *o = json_object();
        const char *type = (const char *)sqlite3_column_text(st, 3);
        type = type ? type : "";
        json_t *v;
        if (!strcmp(type, "categorical"))
            v = col_json(st, 5);
        else if (!strcmp(type, "boolean"))
            v = json_boolean(sqlite3_column_double(st, 4) != 0);
        else
            v = col_json(st, 4);
        json_object_set_new(o, "id", col_json(st, 0));
        json_object_set_new(o, "trace_id", col_json(st, 1));
        json_object_set_new(o, "name", col_json(st, 2));
        json_object_set_new(o, "data_type", col_json(st, 3));
        json_object_set_new(o, "value", v);
        json_object_set_new(o, "comment", col_json(st, 6));
        json_object_set_new(o, "source", col_json(st, 7));
        json_object_set_new(o, "created_ns", col_json(st, 8));
        char t[40];
        fmt_time(sqlite3_column_int64(st, 8), t, sizeof t);
        json_object_set_new(o, "created_time", json_string(t));
        json_array_append_new(arr, o);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return query_fail_db(e, db, "reading scores");
    return ERR_OK;
}

err_code query_trace_get(const char *store_url, sv id, json_t **out, query_error *e)
{
    *out = NULL;
    char tid[33];
    if (!norm_trace_id(id, tid))
        return query_fail(e, 404, "id", "trace_not_found", "no trace with id '%.*s' (trace ids are 32 hex digits)",
                    (int)MIN(id.len, 64), id.p);
    sqlite3 *db = NULL;
    err_code r = conn_get(store_url, false, &db, e);
    if (r != ERR_OK)
        return r;
    sqlite3_stmt *st = NULL;
    json_t *t = NULL;
    int rc;
    /* One read transaction so the trace, its spans and scores agree. */
    sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
    if (sqlite3_prepare_v2(db, "SELECT * FROM traces WHERE trace_id = ?1", -1, &st, NULL) != SQLITE_OK) {
        r = query_fail_db(e, db, "reading a trace");
        goto out;
    }
    sqlite3_bind_text(st, 1, tid, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        r = query_fail(e, 404, "id", "trace_not_found", "no trace with id '%s'", tid);
        goto out;
    }
    if (rc != SQLITE_ROW) {
        r = query_fail_db(e, db, "reading a trace");
        goto out;
    }
    t = json_object();
    row_object(st, t);
    sqlite3_finalize(st);
    st = NULL;
    json_t *spans = json_array();
    json_object_set_new(t, "spans", spans);
    if (sqlite3_prepare_v2(db,
                           "SELECT span_id, parent_id, kind, name, start_ns, end_ns, attributes FROM spans "
                           "WHERE trace_id = ?1 ORDER BY start_ns, parent_id IS NOT NULL, span_id",
                           -1, &st, NULL) != SQLITE_OK) {
        r = query_fail_db(e, db, "reading spans");
        goto out;
    }
    sqlite3_bind_text(st, 1, tid, -1, SQLITE_STATIC);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        json_t *o = json_object();
        row_object(st, o);
        json_t *pid = json_object_get(o, "parent_id");
        if (json_is_string(pid) && json_string_length(pid) == 0)
            json_object_set_new(o, "parent_id", json_null());
        json_object_set_new(o, "duration_ms",
                            json_real((double)(sqlite3_column_int64(st, 5) - sqlite3_column_int64(st, 4)) / 1e6));
        json_array_append_new(spans, o);
    }
    if (rc != SQLITE_DONE) {
        r = query_fail_db(e, db, "reading spans");
        goto out;
    }
    json_t *scores = json_array();
    json_object_set_new(t, "scores", scores);
    r = scores_of(db, tid, scores, e);
out:
    sqlite3_finalize(st);
    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    conn_put(store_url, false, db);
    if (r == ERR_OK)
        *out = t;
    else
        json_decref(t);
    return r;
}

/* ---- scores ---- */

static const char *const data_types[] = { "numeric", "categorical", "boolean" };
static const char *const sources[] = { "human", "model", "code" };

static bool one_of(const char *s, const char *const *set, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(s, set[i]))
            return true;
    return false;
}

/* The body as a JSON object, checking that only `allowed` fields appear. */
static err_code body_object(const char *body, size_t len, const char *const *allowed, size_t nallowed,
                            json_t **out, query_error *e)
{
    json_error_t je;
    json_t *o = json_loadb(body ? body : "", len, JSON_REJECT_DUPLICATES, &je);
    if (!o)
        return query_fail(e, 400, NULL, "invalid_json", "the body is not valid JSON: %s at line %d, column %d", je.text,
                    je.line, je.column);
    if (!json_is_object(o)) {
        json_decref(o);
        return query_fail(e, 400, NULL, "invalid_json", "the body must be a JSON object");
    }
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v) {
        bool ok = false;
        for (size_t i = 0; i < nallowed; i++)
            ok |= !strcmp(k, allowed[i]);
        if (!ok) {
            char name[32];
            snprintf(name, sizeof name, "%s", k);
            json_decref(o);
            return query_fail(e, 400, name, "unknown_parameter", "unknown field '%s'", name);
        }
    }
    *out = o;
    return ERR_OK;
}

/* A string field: required or optional (NULL/null when absent), 1..max bytes,
 * no control characters. */
static err_code str_field(json_t *o, const char *name, bool required, size_t max, const char **out,
                          query_error *e)
{
    json_t *v = json_object_get(o, name);
    *out = NULL;
    if (!v || json_is_null(v)) {
        if (required)
            return query_fail(e, 400, name, "missing_parameter", "'%s' is required", name);
        return ERR_OK;
    }
    if (!json_is_string(v))
        return query_fail(e, 400, name, "invalid_type", "'%s' must be a string", name);
    size_t n = json_string_length(v);
    const char *s = json_string_value(v);
    if (n == 0 || n > max)
        return query_fail(e, 400, name, "invalid_value", "'%s' must be 1 to %zu bytes long", name, max);
    if (strlen(s) != n)
        return query_fail(e, 400, name, "invalid_value", "'%s' contains a NUL character", name);
    *out = s;
    return ERR_OK;
}

static bool printable_name(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return false;
    return true;
}

static void random_id(char out[33])
{
    uint8_t b[16];
    if (getrandom(b, sizeof b, 0) != (ssize_t)sizeof b) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t x = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ (uint64_t)(uintptr_t)out;
        for (int i = 0; i < 16; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            b[i] = (uint8_t)x;
        }
    }
    for (int i = 0; i < 16; i++) {
        out[2 * i] = "0123456789abcdef"[b[i] >> 4];
        out[2 * i + 1] = "0123456789abcdef"[b[i] & 15];
    }
    out[32] = '\0';
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Checks a score value against the score config `name` if one exists.
 * *type may be narrowed (a 0/1 number for a boolean config). */
static err_code check_config(sqlite3 *db, const char *name, const char **type, double *num, const char *str,
                             bool type_given, query_error *e)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "SELECT data_type, min_value, max_value, categories FROM score_configs WHERE name = ?1",
                           -1, &st, NULL) != SQLITE_OK)
        return query_fail_db(e, db, "reading score configs");
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    err_code r = ERR_OK;
    if (rc == SQLITE_DONE)
        goto out;
    if (rc != SQLITE_ROW) {
        r = query_fail_db(e, db, "reading score configs");
        goto out;
    }
    const char *ctype = (const char *)sqlite3_column_text(st, 0);
    ctype = ctype ? ctype : "";
    if (!strcmp(ctype, "boolean") && !strcmp(*type, "numeric") && !type_given && (*num == 0 || *num == 1))
        *type = "boolean";
    if (strcmp(ctype, *type) != 0) {
        r = query_fail(e, 400, "value", "invalid_value", "score '%.64s' is %s by its config; a %s value was given", name,
                 ctype, *type);
        goto out;
    }
    if (!strcmp(ctype, "numeric")) {
        if (sqlite3_column_type(st, 1) != SQLITE_NULL && *num < sqlite3_column_double(st, 1)) {
            r = query_fail(e, 400, "value", "invalid_value", "score '%.64s' must be >= %g (its config's min_value)", name,
                     sqlite3_column_double(st, 1));
            goto out;
        }
        if (sqlite3_column_type(st, 2) != SQLITE_NULL && *num > sqlite3_column_double(st, 2)) {
            r = query_fail(e, 400, "value", "invalid_value", "score '%.64s' must be <= %g (its config's max_value)", name,
                     sqlite3_column_double(st, 2));
            goto out;
        }
    } else if (!strcmp(ctype, "categorical")) {
        const char *cats = (const char *)sqlite3_column_text(st, 3);
        json_t *a = cats ? json_loads(cats, 0, NULL) : NULL;
        bool found = false;
        size_t i;
        json_t *c;
        json_array_foreach(a, i, c) found |= json_is_string(c) && !strcmp(json_string_value(c), str);
        json_decref(a);
        if (!found) {
            r = query_fail(e, 400, "value", "invalid_value", "'%.64s' is not one of the categories of score '%.64s' (%.80s)",
                     str, name, cats ? cats : "[]");
            goto out;
        }
    }
out:
    sqlite3_finalize(st);
    return r;
}

err_code query_score_add(const char *store_url, const char *body, size_t len, json_t **out, query_error *e)
{
    static const char *const fields[] = { "trace_id", "name", "value", "data_type", "comment", "source" };
    *out = NULL;
    json_t *o = NULL;
    err_code r = body_object(body, len, fields, countof(fields), &o, e);
    if (r != ERR_OK)
        return r;
    const char *tid_s, *name, *type = NULL, *comment, *source, *str = NULL;
    double num = 0;
    char tid[33];
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    if ((r = str_field(o, "trace_id", true, 64, &tid_s, e)) || (r = str_field(o, "name", true, SCORE_NAME_MAX, &name, e)) ||
        (r = str_field(o, "data_type", false, 32, &type, e)) ||
        (r = str_field(o, "comment", false, SCORE_COMMENT_MAX, &comment, e)) ||
        (r = str_field(o, "source", false, 16, &source, e)))
        goto out;
    if (!norm_trace_id(sv_from(tid_s), tid)) {
        r = query_fail(e, 400, "trace_id", "invalid_value", "'trace_id' must be 32 hex digits");
        goto out;
    }
    if (!printable_name(name)) {
        r = query_fail(e, 400, "name", "invalid_value", "'name' must not contain control characters");
        goto out;
    }
    if (type && !one_of(type, data_types, countof(data_types))) {
        r = query_fail(e, 400, "data_type", "invalid_value", "'data_type' must be numeric, categorical or boolean");
        goto out;
    }
    if (!source)
        source = "human";
    else if (!one_of(source, sources, countof(sources))) {
        r = query_fail(e, 400, "source", "invalid_value", "'source' must be human, model or code");
        goto out;
    }
    bool type_given = type != NULL;
    json_t *v = json_object_get(o, "value");
    if (!v || json_is_null(v)) {
        r = query_fail(e, 400, "value", "missing_parameter", "'value' is required");
        goto out;
    }
    if (json_is_boolean(v)) {
        num = json_is_true(v);
        if (!type)
            type = "boolean";
    } else if (json_is_number(v)) {
        num = json_number_value(v);
        if (!type)
            type = "numeric";
    } else if (json_is_string(v)) {
        if ((r = str_field(o, "value", true, SCORE_STR_MAX, &str, e)))
            goto out;
        if (!type)
            type = "categorical";
    } else {
        r = query_fail(e, 400, "value", "invalid_type", "'value' must be a number, a string or a boolean");
        goto out;
    }
    bool fits = !strcmp(type, "categorical") ? str != NULL
                : !strcmp(type, "numeric")   ? json_is_number(v)
                                             : json_is_boolean(v) || (json_is_number(v) && (num == 0 || num == 1));
    if (!fits) {
        r = query_fail(e, 400, "value", "invalid_type", "the value does not fit data_type '%s'%s", type,
                 !strcmp(type, "boolean") ? " (true, false, 1 or 0)" : "");
        goto out;
    }
    if ((r = conn_get(store_url, true, &db, e)))
        goto out;
    if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
        r = query_fail_db(e, db, "adding a score");
        goto out;
    }
    if ((r = check_config(db, name, &type, &num, str, type_given, e)))
        goto rollback;
    if (sqlite3_prepare_v2(db, "SELECT 1 FROM traces WHERE trace_id = ?1", -1, &st, NULL) != SQLITE_OK) {
        r = query_fail_db(e, db, "adding a score");
        goto rollback;
    }
    sqlite3_bind_text(st, 1, tid, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    st = NULL;
    if (rc == SQLITE_DONE) {
        r = query_fail(e, 404, "trace_id", "trace_not_found", "no trace with id '%s'", tid);
        goto rollback;
    }
    if (rc != SQLITE_ROW) {
        r = query_fail_db(e, db, "adding a score");
        goto rollback;
    }
    char id[33];
    random_id(id);
    int64_t created = now_ns();
    if (sqlite3_prepare_v2(db,
                           "INSERT INTO scores (id, trace_id, name, data_type, value_num, value_str, comment, source, "
                           "created_ns) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                           -1, &st, NULL) != SQLITE_OK) {
        r = query_fail_db(e, db, "adding a score");
        goto rollback;
    }
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, tid, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, type, -1, SQLITE_STATIC);
    if (str)
        sqlite3_bind_text(st, 6, str, -1, SQLITE_STATIC);
    else
        sqlite3_bind_double(st, 5, num);
    if (comment)
        sqlite3_bind_text(st, 7, comment, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 8, source, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 9, created);
    if (sqlite3_step(st) != SQLITE_DONE || sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        r = query_fail_db(e, db, "adding a score");
        goto rollback;
    }
    char t[40];
    fmt_time(created, t, sizeof t);
    json_t *val = str ? json_string(str) : !strcmp(type, "boolean") ? json_boolean(num != 0) : json_real(num);
    *out = json_pack("{s:s, s:s, s:s, s:s, s:o, s:s?, s:s, s:I, s:s}", "id", id, "trace_id", tid, "name", name,
                     "data_type", type, "value", val, "comment", comment, "source", source, "created_ns",
                     (json_int_t)created, "created_time", t);
    if (!*out)
        r = query_fail(e, 500, NULL, "store_error", "out of memory");
    goto out;
rollback:
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
out:
    sqlite3_finalize(st);
    conn_put(store_url, true, db);
    json_decref(o);
    return r;
}

static err_code opt_number(json_t *o, const char *name, bool *has, double *v, query_error *e)
{
    json_t *x = json_object_get(o, name);
    *has = false;
    if (!x || json_is_null(x))
        return ERR_OK;
    if (!json_is_number(x))
        return query_fail(e, 400, name, "invalid_type", "'%s' must be a number", name);
    *has = true;
    *v = json_number_value(x);
    return ERR_OK;
}

err_code query_score_config_create(const char *store_url, const char *body, size_t len, json_t **out,
                                   query_error *e)
{
    static const char *const fields[] = { "name", "data_type", "min_value", "max_value", "categories", "description" };
    *out = NULL;
    json_t *o = NULL;
    err_code r = body_object(body, len, fields, countof(fields), &o, e);
    if (r != ERR_OK)
        return r;
    const char *name, *type, *desc;
    bool has_min, has_max;
    double mn = 0, mx = 0;
    char *cats_text = NULL;
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    if ((r = str_field(o, "name", true, SCORE_NAME_MAX, &name, e)) || (r = str_field(o, "data_type", true, 32, &type, e)) ||
        (r = str_field(o, "description", false, CONFIG_DESCRIPTION_MAX, &desc, e)) ||
        (r = opt_number(o, "min_value", &has_min, &mn, e)) || (r = opt_number(o, "max_value", &has_max, &mx, e)))
        goto out;
    if (!printable_name(name)) {
        r = query_fail(e, 400, "name", "invalid_value", "'name' must not contain control characters");
        goto out;
    }
    if (!one_of(type, data_types, countof(data_types))) {
        r = query_fail(e, 400, "data_type", "invalid_value", "'data_type' must be numeric, categorical or boolean");
        goto out;
    }
    bool numeric = !strcmp(type, "numeric"), categorical = !strcmp(type, "categorical");
    if (!numeric && (has_min || has_max)) {
        r = query_fail(e, 400, has_min ? "min_value" : "max_value", "invalid_value", "only numeric scores have min_value and max_value");
        goto out;
    }
    if (has_min && has_max && mn > mx) {
        r = query_fail(e, 400, "min_value", "invalid_value", "min_value (%g) is greater than max_value (%g)", mn, mx);
        goto out;
    }
    json_t *cats = json_object_get(o, "categories");
    if (cats && json_is_null(cats))
        cats = NULL;
    if (!categorical && cats) {
        r = query_fail(e, 400, "categories", "invalid_value", "only categorical scores have categories");
        goto out;
    }
    if (categorical) {
        if (!json_is_array(cats) || json_array_size(cats) == 0 || json_array_size(cats) > CONFIG_CATEGORIES_MAX) {
            r = query_fail(e, 400, "categories", "invalid_value", "a categorical score needs 'categories': 1 to %d strings",
                     CONFIG_CATEGORIES_MAX);
            goto out;
        }
        size_t i, j;
        json_t *c;
        json_array_foreach(cats, i, c) {
            size_t n = json_is_string(c) ? json_string_length(c) : 0;
            if (n == 0 || n > SCORE_STR_MAX || strlen(json_string_value(c)) != n) {
                r = query_fail(e, 400, "categories", "invalid_value", "categories[%zu] must be a non-empty string", i);
                goto out;
            }
            for (j = 0; j < i; j++)
                if (json_equal(c, json_array_get(cats, j))) {
                    r = query_fail(e, 400, "categories", "invalid_value", "category '%.64s' is listed twice",
                             json_string_value(c));
                    goto out;
                }
        }
        cats_text = json_dumps(cats, JSON_COMPACT);
    }
    if ((r = conn_get(store_url, true, &db, e)))
        goto out;
    int64_t created = now_ns();
    if (sqlite3_prepare_v2(db,
                           "INSERT INTO score_configs (name, data_type, min_value, max_value, categories, description, "
                           "created_ns) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                           -1, &st, NULL) != SQLITE_OK) {
        r = query_fail_db(e, db, "creating a score config");
        goto out;
    }
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, type, -1, SQLITE_STATIC);
    if (has_min)
        sqlite3_bind_double(st, 3, mn);
    if (has_max)
        sqlite3_bind_double(st, 4, mx);
    if (cats_text)
        sqlite3_bind_text(st, 5, cats_text, -1, SQLITE_STATIC);
    if (desc)
        sqlite3_bind_text(st, 6, desc, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 7, created);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_CONSTRAINT) {
        r = query_fail(e, 409, "name", "score_config_exists", "a score config named '%.64s' exists already", name);
        goto out;
    }
    if (rc != SQLITE_DONE) {
        r = query_fail_db(e, db, "creating a score config");
        goto out;
    }
    char t[40];
    fmt_time(created, t, sizeof t);
    *out = json_pack("{s:s, s:s, s:o, s:o, s:O?, s:s?, s:I, s:s}", "name", name, "data_type", type, "min_value",
                     has_min ? json_real(mn) : json_null(), "max_value", has_max ? json_real(mx) : json_null(),
                     "categories", categorical ? cats : NULL, "description", desc, "created_ns", (json_int_t)created,
                     "created_time", t);
    if (*out && !categorical)
        json_object_set_new(*out, "categories", json_null());
    if (!*out)
        r = query_fail(e, 500, NULL, "store_error", "out of memory");
out:
    sqlite3_finalize(st);
    conn_put(store_url, true, db);
    free(cats_text);
    json_decref(o);
    return r;
}

err_code query_score_configs_list(const char *store_url, json_t **out, query_error *e)
{
    *out = NULL;
    sqlite3 *db = NULL;
    err_code r = conn_get(store_url, false, &db, e);
    if (r != ERR_OK)
        return r;
    sqlite3_stmt *st = NULL;
    json_t *data = json_array();
    int rc;
    if (sqlite3_prepare_v2(db,
                           "SELECT name, data_type, min_value, max_value, categories, description, created_ns "
                           "FROM score_configs ORDER BY name",
                           -1, &st, NULL) != SQLITE_OK) {
        r = query_fail_db(e, db, "listing score configs");
        goto out;
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        json_t *c = json_object();
        row_object(st, c);
        json_array_append_new(data, c);
    }
    if (rc != SQLITE_DONE) {
        r = query_fail_db(e, db, "listing score configs");
        goto out;
    }
    *out = json_pack("{s:O}", "data", data);
out:
    sqlite3_finalize(st);
    conn_put(store_url, false, db);
    json_decref(data);
    return r;
}
