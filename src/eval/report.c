/*
 * report.c - the output files of an evaluation run and the terminal table.
 *
 * How a file is written: ev_report_open() creates "<dir>/.<name>.tmp-XXXXXX"
 * beside the target; ev_report_add() formats each record into a scratch
 * buffer (bounded, reused) and writes it out at once, so the file is
 * always a sequence of whole records; ev_report_close() writes the part
 * that needs the totals, flushes, fsyncs and renames the temp file over
 * the target. Any failed write makes the report "failed": later adds
 * return ERR_IO and close removes the temp file and returns ERR_IO.
 *
 * Per format:
 *   .json   {"version":1,"meta":{..},"results":[ record, ... ],"summary":{..}}
 *           - records are written as they come, the summary after them.
 *   .jsonl  one record a line, then {"summary":{..},"meta":{..}}.
 *   .csv    a header and one RFC 4180 row per record (CRLF, quoted when
 *           needed, quotes doubled).
 *   .xml    JUnit: <testsuites> with one <testsuite> per prompt x provider
 *           column, whose counts are attributes, so each column's test
 *           cases go to an unlinked spool file and are copied in at close.
 *   .html   summary, leaderboard, metrics and a table of records, failures
 *           and errors first, at most EV_REPORT_HTML_MAX_ROWS rows: failing
 *           rows and passing rows go to two spools; the passing spool keeps
 *           the offset after each row so close can stop where the cap is.
 *   .md     summary, leaderboard, metrics and the failed tests (a spool).
 * Text is made safe once, by one escaper with a mode per format; invalid
 * UTF-8 becomes U+FFFD everywhere, and characters XML 1.0 forbids are
 * replaced too, so the xml and html files always parse.
 */
#include "eval/report.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- text escaping --------------------------------------------------------- */

/* The length of the valid UTF-8 sequence at s[0..n) (Unicode table 3-7:
 * no overlong forms, surrogates or code points past U+10FFFF) and its code
 * point, or 0 when the bytes there are not one. */
static size_t u8_seq(const unsigned char *s, size_t n, uint32_t *cp)
{
    unsigned char c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    size_t len;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
        *cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        *cp = c & 0x0F;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        *cp = c & 0x07;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else {
        return 0;
    }
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if (i > 1 && (s[i] < 0x80 || s[i] > 0xBF))
            return 0;
        *cp = (*cp << 6) | (s[i] & 0x3F);
    }
    return len;
}

typedef enum esc_mode {
    E_JSON,   /* inside a JSON string */
    E_MARKUP, /* XML/HTML text or attribute */
    E_PLAIN,  /* only UTF-8 made valid (CSV, unquoted) */
    E_CSVQ,   /* inside a quoted CSV field: quotes doubled */
    E_MD,     /* Markdown inline text, one line */
    E_TERM    /* a terminal: control characters become '?' */
} esc_mode;

#define REPL "\xEF\xBF\xBD" /* U+FFFD */

/* A buffer with a sticky error: after the first failure every call is a
 * no-op, and the caller checks e once. */
typedef struct sb {
    buf *b;
    err_code e;
} sb;

static void sb_put(sb *s, const void *p, size_t n)
{
    if (!s->e && n)
        s->e = buf_append(s->b, p, n);
}

static void sb_str(sb *s, const char *lit)
{
    sb_put(s, lit, strlen(lit));
}

static void sb_printf(sb *s, const char *fmt, ...) PRINTF_LIKE(2, 3);
static void sb_printf(sb *s, const char *fmt, ...)
{
    if (s->e)
        return;
    va_list ap;
    va_start(ap, fmt);
    s->e = buf_vprintf(s->b, fmt, ap);
    va_end(ap);
}

/* Appends s[0..n) escaped for mode. Stops at the first character boundary
 * at or past `limit` source bytes and then sets *cut (if given) to the
 * bytes left out. */
static void sb_esc(sb *s, esc_mode m, const char *src, size_t n, size_t limit, size_t *cut)
{
    const unsigned char *p = (const unsigned char *)src;
    size_t i = 0, run = 0; /* run: start of bytes to copy as they are */
    if (cut)
        *cut = 0;
    while (i < n) {
        if (i >= limit) {
            if (cut)
                *cut = n - i;
            break;
        }
        unsigned char c = p[i];
        const char *rep = NULL;
        char tmp[8];
        size_t adv = 1;
        if (c < 0x80) {
            switch (m) {
            case E_JSON:
                if (c == '"')
                    rep = "\\\"";
                else if (c == '\\')
                    rep = "\\\\";
                else if (c == '\n')
                    rep = "\\n";
                else if (c == '\r')
                    rep = "\\r";
                else if (c == '\t')
                    rep = "\\t";
                else if (c < 0x20) {
                    snprintf(tmp, sizeof tmp, "\\u%04x", c);
                    rep = tmp;
                }
                break;
            case E_MARKUP:
                if (c == '&')
                    rep = "&amp;";
                else if (c == '<')
                    rep = "&lt;";
                else if (c == '>')
                    rep = "&gt;";
                else if (c == '"')
                    rep = "&quot;";
                else if (c == '\'')
                    rep = "&#39;";
                else if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7F)
                    rep = REPL;
                break;
            case E_PLAIN:
                break;
            case E_CSVQ:
                if (c == '"')
                    rep = "\"\"";
                break;
            case E_MD:
                if (c == '&')
                    rep = "&amp;";
                else if (c == '<')
                    rep = "&lt;";
                else if (c == '>')
                    rep = "&gt;";
                else if (c == '\n' || c == '\r' || c == '\t')
                    rep = " ";
                else if (c < 0x20 || c == 0x7F)
                    rep = REPL;
                else if (strchr("\\`*_[]|~#", c)) {
                    tmp[0] = '\\';
                    tmp[1] = (char)c;
                    tmp[2] = '\0';
                    rep = tmp;
                }
                break;
            case E_TERM:
                if (c < 0x20 || c == 0x7F)
                    rep = "?";
                break;
            }
        } else {
            uint32_t cp = 0;
            size_t len = u8_seq(p + i, n - i, &cp);
            if (len == 0)
                rep = m == E_TERM ? "?" : REPL;
            else if (m == E_MARKUP && (cp == 0xFFFE || cp == 0xFFFF))
                rep = REPL, adv = len;
            else if (m == E_TERM && cp < 0xA0)
                rep = "?", adv = len; /* C1 controls */
            else
                adv = len;
        }
        if (rep) {
            sb_put(s, p + run, i - run);
            sb_str(s, rep);
            i += adv;
            run = i;
        } else {
            i += adv;
        }
    }
    sb_put(s, p + run, (i < n ? i : n) - run);
}

static void sb_escs(sb *s, esc_mode m, const char *str)
{
    if (str)
        sb_esc(s, m, str, strlen(str), SIZE_MAX, NULL);
}

/* ---- JSON pieces ------------------------------------------------------------- */

/* The shortest of %.15g..%.17g that reads back as v (v finite). */
static void fmt_num(char out[40], double v)
{
    if (v == trunc(v) && fabs(v) < 1e15) { /* integers (most scores and weights) without stdio */
        long long i = (long long)v;
        unsigned long long u = i < 0 ? (unsigned long long)-i : (unsigned long long)i;
        char tmp[24];
        size_t n = 0;
        do {
            tmp[n++] = (char)('0' + u % 10);
            u /= 10;
        } while (u);
        size_t o = 0;
        if (i < 0)
            out[o++] = '-';
        while (n)
            out[o++] = tmp[--n];
        out[o] = '\0';
        return;
    }
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(out, 40, "%.*g", prec, v);
        if (strtod(out, NULL) == v)
            return;
    }
}

static void j_str(sb *s, const char *str)
{
    if (!str) {
        sb_str(s, "null");
        return;
    }
    sb_put(s, "\"", 1);
    sb_escs(s, E_JSON, str);
    sb_put(s, "\"", 1);
}

static void j_num(sb *s, double v)
{
    if (!isfinite(v)) {
        sb_str(s, "null");
        return;
    }
    char t[40];
    fmt_num(t, v);
    sb_str(s, t);
}

static void j_key(sb *s, bool first, const char *k)
{
    if (!first)
        sb_put(s, ",", 1);
    sb_put(s, "\"", 1);
    sb_str(s, k);
    sb_put(s, "\":", 2);
}

static int dump_cb(const char *p, size_t n, void *d)
{
    sb *s = d;
    sb_put(s, p, n);
    return s->e ? -1 : 0;
}

/* A jansson value in compact form; `dflt` when it is NULL or cannot be
 * encoded. */
static void j_value(sb *s, const json_t *v, const char *dflt)
{
    if (!v || s->e) {
        sb_str(s, dflt);
        return;
    }
    size_t mark = s->b->len;
    if (json_dump_callback(v, dump_cb, s, JSON_COMPACT | JSON_ENCODE_ANY) != 0 && !s->e) {
        s->b->len = mark;
        if (s->b->p)
            s->b->p[mark] = '\0';
        sb_str(s, dflt);
    }
}

static const char *verdict_name(ev_verdict v)
{
    return v == EV_PASS ? "pass" : v == EV_FAIL ? "fail" : "error";
}

static void rec_json(sb *s, const ev_record *r)
{
    sb_printf(s, "{\"test\":%zu,\"repeat\":%d,\"prompt\":%zu,\"provider\":%zu", r->test, r->repeat, r->prompt,
              r->provider);
    j_key(s, false, "description");
    j_str(s, r->description);
    j_key(s, false, "vars");
    j_value(s, r->vars, "{}");
    j_key(s, false, "prompt_text");
    j_str(s, r->prompt_text);
    j_key(s, false, "output");
    j_str(s, r->output);
    j_key(s, false, "error");
    j_str(s, r->error);
    j_key(s, false, "verdict");
    j_str(s, verdict_name(r->verdict));
    j_key(s, false, "score");
    j_num(s, r->score);
    j_key(s, false, "asserts");
    sb_put(s, "[", 1);
    for (size_t i = 0; r->asserts && i < r->nasserts; i++) {
        const ev_assert_outcome *o = &r->asserts[i];
        sb_str(s, i ? ",{\"type\":\"" : "{\"type\":\"");
        if (o->negate)
            sb_str(s, "not-");
        sb_escs(s, E_JSON, o->type);
        sb_put(s, "\"", 1);
        j_key(s, false, "metric");
        j_str(s, o->metric);
        j_key(s, false, "weight");
        j_num(s, o->weight);
        j_key(s, false, "verdict");
        j_str(s, verdict_name(o->r.verdict));
        j_key(s, false, "score");
        j_num(s, o->r.score);
        j_key(s, false, "reason");
        j_str(s, o->r.reason);
        sb_put(s, "}", 1);
    }
    sb_put(s, "]", 1);
    j_key(s, false, "latency_ms");
    j_num(s, r->latency_ms);
    j_key(s, false, "cost_usd");
    j_num(s, r->cost_usd);
    j_key(s, false, "tokens_in");
    if (r->tokens_in >= 0)
        sb_printf(s, "%ld", r->tokens_in);
    else
        sb_str(s, "null");
    j_key(s, false, "tokens_out");
    if (r->tokens_out >= 0)
        sb_printf(s, "%ld", r->tokens_out);
    else
        sb_str(s, "null");
    j_key(s, false, "cached");
    sb_str(s, r->cached ? "true" : "false");
    sb_put(s, "}", 1);
}

err_code ev_record_write(buf *b, const ev_record *r)
{
    if (!b || !r)
        return ERR_INVAL;
    size_t mark = b->len;
    sb s = { b, ERR_OK };
    rec_json(&s, r);
    if (s.e) {
        b->len = mark;
        if (b->p)
            b->p[mark] = '\0';
    }
    return s.e;
}

json_t *ev_record_json(const ev_record *r)
{
    buf b;
    buf_init(&b, EV_REPORT_RECORD_MAX);
    json_t *j = NULL;
    if (ev_record_write(&b, r) == ERR_OK)
        j = json_loadb(b.p, b.len, 0, NULL);
    buf_free(&b);
    return j;
}

/* "type: reason" of every failed or errored assertion, joined by sep. */
static void reasons(sb *s, const ev_record *r, esc_mode m, const char *sep, size_t limit)
{
    bool first = true;
    for (size_t i = 0; r->asserts && i < r->nasserts; i++) {
        const ev_assert_outcome *o = &r->asserts[i];
        if (o->r.verdict == EV_PASS)
            continue;
        if (!first)
            sb_str(s, sep);
        first = false;
        if (o->negate)
            sb_str(s, "not-");
        sb_escs(s, m, o->type ? o->type : "?");
        sb_str(s, o->r.verdict == EV_ERROR ? " (error): " : ": ");
        const char *why = o->r.reason ? o->r.reason : verdict_name(o->r.verdict);
        sb_esc(s, m, why, strlen(why), limit, NULL);
    }
}

/* ---- the report ------------------------------------------------------------ */

typedef enum rfmt { F_JSON, F_JSONL, F_CSV, F_XML, F_HTML, F_MD } rfmt;

typedef struct xcol {          /* a JUnit testsuite being spooled */
    FILE *spool;
    size_t tests, failures, errors;
    double time;
} xcol;

struct ev_report {
    rfmt f;
    char *path, *tmp, *dir, *base;
    FILE *out;
    char *run_id, *description, *config_path, *started_at;
    char **plabels, **vlabels;
    size_t np, nv, ncols;
    size_t records;
    xcol *cols;                /* xml: ncols + 1 (the last for out-of-range records) */
    FILE *sp_fail, *sp_pass;   /* html: both; md: sp_fail */
    size_t nfail, npass;       /* records by kind (html/md) */
    size_t wfail, wpass;       /* rows written to the spools */
    long *pass_off;            /* html: offset after each passing row */
    buf b, t;                  /* record scratch, field scratch */
    bool failed;
    char why[256];
};

static void set_msg(char *msg, size_t cap, const char *fmt, ...) PRINTF_LIKE(3, 4);
static void set_msg(char *msg, size_t cap, const char *fmt, ...)
{
    if (!msg || !cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, cap, fmt, ap);
    va_end(ap);
}

/* Marks the report failed, keeping the first cause. */
static void io_fail(ev_report *rep, const char *what, int err)
{
    if (rep->failed)
        return;
    rep->failed = true;
    snprintf(rep->why, sizeof rep->why, "%s %s: %s", what, rep->path, strerror(err ? err : EIO));
}

static void wr(ev_report *rep, FILE *f, const void *p, size_t n)
{
    if (rep->failed || n == 0)
        return;
    errno = 0;
    if (fwrite(p, 1, n, f) != n || ferror(f))
        io_fail(rep, "writing", errno);
}

static void wr_buf(ev_report *rep, FILE *f, const buf *b)
{
    wr(rep, f, b->p, b->len);
}

static char *dup_str(const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s);
    char *d = malloc(n + 1);
    if (d)
        memcpy(d, s, n + 1);
    return d;
}

/* Copies labels, filling missing ones with "<what> N". */
static char **dup_labels(const char *const *l, size_t n, const char *what)
{
    char **d = calloc(n ? n : 1, sizeof *d);
    if (!d)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (l && l[i]) {
            d[i] = dup_str(l[i]);
        } else {
            char tmp[48];
            snprintf(tmp, sizeof tmp, "%s %zu", what, i + 1);
            d[i] = dup_str(tmp);
        }
        if (!d[i]) {
            for (size_t j = 0; j < i; j++)
                free(d[j]);
            free(d);
            return NULL;
        }
    }
    return d;
}

/* An unlinked read-write temp file beside the target. */
static FILE *spool_open(ev_report *rep)
{
    size_t n = strlen(rep->dir) + strlen(rep->base) + 32;
    char *p = malloc(n);
    if (!p)
        return NULL;
    snprintf(p, n, "%s/.%s.spool-XXXXXX", rep->dir, rep->base);
    int fd = mkstemp(p);
    FILE *f = NULL;
    if (fd >= 0) {
        unlink(p);
        f = fdopen(fd, "w+");
        if (!f)
            close(fd);
    }
    if (!f)
        io_fail(rep, "creating a spool file beside", errno);
    free(p);
    return f;
}

static void free_rep(ev_report *rep)
{
    if (!rep)
        return;
    if (rep->out)
        fclose(rep->out);
    if (rep->cols) {
        for (size_t i = 0; i <= rep->ncols; i++)
            if (rep->cols[i].spool)
                fclose(rep->cols[i].spool);
        free(rep->cols);
    }
    if (rep->sp_fail)
        fclose(rep->sp_fail);
    if (rep->sp_pass)
        fclose(rep->sp_pass);
    if (rep->plabels)
        for (size_t i = 0; i < rep->np; i++)
            free(rep->plabels[i]);
    if (rep->vlabels)
        for (size_t i = 0; i < rep->nv; i++)
            free(rep->vlabels[i]);
    free(rep->plabels);
    free(rep->vlabels);
    free(rep->pass_off);
    free(rep->run_id);
    free(rep->description);
    free(rep->config_path);
    free(rep->started_at);
    free(rep->path);
    free(rep->tmp);
    free(rep->dir);
    free(rep->base);
    buf_free(&rep->b);
    buf_free(&rep->t);
    free(rep);
}

static bool ext_is(const char *ext, const char *want)
{
    return ext && strcasecmp(ext, want) == 0;
}

/* The meta object: {run_id, description, config_path, started_at, prompts, providers}. */
static void meta_json(sb *s, const ev_report *rep)
{
    sb_put(s, "{", 1);
    j_key(s, true, "run_id");
    j_str(s, rep->run_id);
    j_key(s, false, "description");
    j_str(s, rep->description);
    j_key(s, false, "config_path");
    j_str(s, rep->config_path);
    j_key(s, false, "started_at");
    j_str(s, rep->started_at);
    j_key(s, false, "prompts");
    sb_put(s, "[", 1);
    for (size_t i = 0; i < rep->np; i++) {
        if (i)
            sb_put(s, ",", 1);
        j_str(s, rep->plabels[i]);
    }
    sb_str(s, "]");
    j_key(s, false, "providers");
    sb_put(s, "[", 1);
    for (size_t i = 0; i < rep->nv; i++) {
        if (i)
            sb_put(s, ",", 1);
        j_str(s, rep->vlabels[i]);
    }
    sb_str(s, "]}");
}

static const char csv_header[] =
    "test,repeat,prompt,provider,vars,output,verdict,score,latency_ms,cost_usd,error,reasons\r\n";

ev_report *ev_report_open(const char *path, const ev_report_meta *m, char *msg, size_t msgcap)
{
    if (!path || !*path) {
        set_msg(msg, msgcap, "no output path");
        return NULL;
    }
    const char *slash = strrchr(path, '/');
    const char *name = slash ? slash + 1 : path;
    const char *dot = strrchr(name, '.');
    const char *ext = dot ? dot + 1 : NULL;
    rfmt f;
    if (ext_is(ext, "json"))
        f = F_JSON;
    else if (ext_is(ext, "jsonl"))
        f = F_JSONL;
    else if (ext_is(ext, "csv"))
        f = F_CSV;
    else if (ext_is(ext, "xml"))
        f = F_XML;
    else if (ext_is(ext, "html") || ext_is(ext, "htm"))
        f = F_HTML;
    else if (ext_is(ext, "md"))
        f = F_MD;
    else {
        set_msg(msg, msgcap, "%s: unknown output format (use .json, .jsonl, .csv, .xml, .html or .md)", path);
        return NULL;
    }
    if (!*name || name == dot) {
        set_msg(msg, msgcap, "%s: no file name", path);
        return NULL;
    }
    ev_report_meta none = { 0 };
    if (!m)
        m = &none;
    size_t np = m->nprompts, nv = m->nproviders;
    if (np > 100000 || nv > 100000 || np * nv > 100000) {
        set_msg(msg, msgcap, "%s: too many prompts x providers", path);
        return NULL;
    }
    if (f == F_XML && np * nv > EV_REPORT_XML_MAX_COLUMNS) {
        set_msg(msg, msgcap, "%s: JUnit output takes at most %d prompt x provider columns, this run has %zu",
                path, EV_REPORT_XML_MAX_COLUMNS, np * nv);
        return NULL;
    }

    ev_report *rep = calloc(1, sizeof *rep);
    if (!rep) {
        set_msg(msg, msgcap, "out of memory");
        return NULL;
    }
    rep->f = f;
    buf_init(&rep->b, EV_REPORT_RECORD_MAX);
    buf_init(&rep->t, EV_REPORT_RECORD_MAX);
    rep->np = np;
    rep->nv = nv;
    rep->ncols = np * nv;
    rep->path = dup_str(path);
    rep->base = dup_str(name);
    rep->dir = slash ? (slash == path ? dup_str("/") : strndup(path, (size_t)(slash - path))) : dup_str(".");
    rep->plabels = dup_labels(m->prompt_labels, np, "prompt");
    rep->vlabels = dup_labels(m->provider_labels, nv, "provider");
    rep->run_id = dup_str(m->run_id);
    rep->description = dup_str(m->description);
    rep->config_path = dup_str(m->config_path);
    rep->started_at = dup_str(m->started_at);
    if (!rep->path || !rep->base || !rep->dir || !rep->plabels || !rep->vlabels ||
        (m->run_id && !rep->run_id) || (m->description && !rep->description) ||
        (m->config_path && !rep->config_path) || (m->started_at && !rep->started_at)) {
        set_msg(msg, msgcap, "out of memory");
        goto err;
    }
    if (f == F_XML && !(rep->cols = calloc(rep->ncols + 1, sizeof *rep->cols))) {
        set_msg(msg, msgcap, "out of memory");
        goto err;
    }
    if (f == F_HTML && !(rep->pass_off = calloc(EV_REPORT_HTML_MAX_ROWS + 1, sizeof *rep->pass_off))) {
        set_msg(msg, msgcap, "out of memory");
        goto err;
    }

    size_t n = strlen(rep->dir) + strlen(rep->base) + 32;
    rep->tmp = malloc(n);
    if (!rep->tmp) {
        set_msg(msg, msgcap, "out of memory");
        goto err;
    }
    snprintf(rep->tmp, n, "%s/.%s.tmp-XXXXXX", rep->dir, rep->base);
    int fd = mkstemp(rep->tmp);
    if (fd < 0) {
        set_msg(msg, msgcap, "cannot create a temp file beside %s: %s", path, strerror(errno));
        free(rep->tmp);
        rep->tmp = NULL;
        goto err;
    }
    struct stat st;
    fchmod(fd, stat(path, &st) == 0 ? (st.st_mode & 07777) : 0644);
    rep->out = fdopen(fd, "w");
    if (!rep->out) {
        set_msg(msg, msgcap, "cannot open %s: %s", rep->tmp, strerror(errno));
        close(fd);
        goto err_unlink;
    }
    setvbuf(rep->out, NULL, _IOFBF, 64 * 1024);
    if (f == F_HTML || f == F_MD) {
        rep->sp_fail = spool_open(rep);
        if (f == F_HTML && rep->sp_fail)
            rep->sp_pass = spool_open(rep);
        if (rep->failed) {
            set_msg(msg, msgcap, "%s", rep->why);
            goto err_unlink;
        }
    }

    /* What can be written before any record. */
    buf_reset(&rep->b);
    sb s = { &rep->b, ERR_OK };
    if (f == F_JSON) {
        sb_str(&s, "{\"version\":1,\"meta\":");
        meta_json(&s, rep);
        sb_str(&s, ",\"results\":[");
    } else if (f == F_CSV) {
        sb_str(&s, csv_header);
    }
    wr_buf(rep, rep->out, &rep->b);
    if (s.e || rep->failed) {
        set_msg(msg, msgcap, "%s", rep->failed ? rep->why : err_message(s.e));
        goto err_unlink;
    }
    return rep;
err_unlink:
    unlink(rep->tmp);
err:
    free_rep(rep);
    return NULL;
}

static const char *plabel(const ev_report *rep, size_t i)
{
    return i < rep->np ? rep->plabels[i] : NULL;
}

static const char *vlabel(const ev_report *rep, size_t i)
{
    return i < rep->nv ? rep->vlabels[i] : NULL;
}

/* A label, or "#<index>" for an index the meta did not name. */
static void label(sb *s, esc_mode m, const char *l, size_t idx)
{
    if (l)
        sb_escs(s, m, l);
    else
        sb_printf(s, "#%zu", idx);
}

/* One CSV field from raw bytes: quoted when it holds , " CR or LF. */
static void csv_field(sb *s, const char *p, size_t n, bool last)
{
    bool q = false;
    for (size_t i = 0; i < n && !q; i++)
        q = p[i] == ',' || p[i] == '"' || p[i] == '\r' || p[i] == '\n';
    if (q) {
        sb_put(s, "\"", 1);
        sb_esc(s, E_CSVQ, p, n, SIZE_MAX, NULL);
        sb_put(s, "\"", 1);
    } else {
        sb_esc(s, E_PLAIN, p, n, SIZE_MAX, NULL);
    }
    sb_str(s, last ? "\r\n" : ",");
}

static void csv_cstr(sb *s, const char *str, bool last)
{
    csv_field(s, str ? str : "", str ? strlen(str) : 0, last);
}

static void csv_num(sb *s, double v)
{
    char t[40] = "";
    if (isfinite(v))
        fmt_num(t, v);
    csv_cstr(s, t, false);
}

static void rec_csv(ev_report *rep, sb *s, const ev_record *r)
{
    sb ts = { &rep->t, ERR_OK };
    sb_printf(s, "%zu,%d,", r->test, r->repeat);
    buf_reset(&rep->t);
    label(&ts, E_PLAIN, plabel(rep, r->prompt), r->prompt);
    csv_field(s, rep->t.p ? rep->t.p : "", rep->t.len, false);
    buf_reset(&rep->t);
    label(&ts, E_PLAIN, vlabel(rep, r->provider), r->provider);
    csv_field(s, rep->t.p ? rep->t.p : "", rep->t.len, false);
    buf_reset(&rep->t);
    j_value(&ts, r->vars, "{}");
    csv_field(s, rep->t.p ? rep->t.p : "", rep->t.len, false);
    csv_cstr(s, r->output, false);
    sb_str(s, verdict_name(r->verdict));
    sb_put(s, ",", 1);
    csv_num(s, r->score);
    csv_num(s, r->latency_ms);
    csv_num(s, r->cost_usd);
    csv_cstr(s, r->error, false);
    buf_reset(&rep->t);
    reasons(&ts, r, E_PLAIN, "; ", SIZE_MAX);
    csv_field(s, rep->t.p ? rep->t.p : "", rep->t.len, true);
    if (ts.e && !s->e)
        s->e = ts.e;
}

/* "test 3: description (repeat 2)". */
static void case_name(sb *s, esc_mode m, const ev_record *r)
{
    sb_printf(s, "test %zu", r->test);
    if (r->description && *r->description) {
        sb_str(s, ": ");
        sb_escs(s, m, r->description);
    }
    if (r->repeat > 0)
        sb_printf(s, " (repeat %d)", r->repeat);
}

static void rec_xml(ev_report *rep, sb *s, const ev_record *r)
{
    sb_str(s, "    <testcase name=\"");
    case_name(s, E_MARKUP, r);
    sb_str(s, "\" classname=\"");
    label(s, E_MARKUP, plabel(rep, r->prompt), r->prompt);
    sb_str(s, " | ");
    label(s, E_MARKUP, vlabel(rep, r->provider), r->provider);
    double secs = isfinite(r->latency_ms) && r->latency_ms > 0 ? r->latency_ms / 1000.0 : 0.0;
    sb_printf(s, "\" time=\"%.3f\"", secs);
    if (r->verdict == EV_PASS) {
        sb_str(s, "/>\n");
        return;
    }
    sb_str(s, ">\n");
    /* The message attribute: the error, or the first reason, shortened. */
    buf_reset(&rep->t);
    sb ts = { &rep->t, ERR_OK };
    if (r->verdict == EV_ERROR && r->error)
        sb_escs(&ts, E_PLAIN, r->error);
    else
        reasons(&ts, r, E_PLAIN, "; ", SIZE_MAX);
    if (ts.e && !s->e)
        s->e = ts.e;
    const char *tag = r->verdict == EV_FAIL ? "failure" : "error";
    sb_printf(s, "      <%s type=\"%s\" message=\"", tag, verdict_name(r->verdict));
    size_t cut;
    sb_esc(s, E_MARKUP, rep->t.p ? rep->t.p : "", rep->t.len, 1024, &cut);
    if (cut)
        sb_str(s, "...");
    sb_str(s, "\">");
    if (r->error) {
        sb_escs(s, E_MARKUP, r->error);
        if (r->asserts && r->nasserts)
            sb_str(s, "\n");
    }
    reasons(s, r, E_MARKUP, "\n", SIZE_MAX);
    sb_printf(s, "</%s>\n", tag);
    if (r->output) {
        sb_str(s, "      <system-out>");
        sb_escs(s, E_MARKUP, r->output);
        sb_str(s, "</system-out>\n");
    }
    sb_str(s, "    </testcase>\n");
}

#define HTML_OUTPUT_MAX 2000
#define HTML_VARS_MAX 600

static void rec_html(ev_report *rep, sb *s, const ev_record *r)
{
    const char *v = verdict_name(r->verdict);
    sb_printf(s, "<tr><td class=\"n\">%zu", r->test);
    if (r->repeat > 0)
        sb_printf(s, ".%d", r->repeat);
    sb_str(s, "</td><td>");
    sb_escs(s, E_MARKUP, r->description);
    sb_str(s, "</td><td>");
    label(s, E_MARKUP, plabel(rep, r->prompt), r->prompt);
    sb_str(s, "<br>");
    label(s, E_MARKUP, vlabel(rep, r->provider), r->provider);
    sb_printf(s, "</td><td><span class=\"v %s\">%s</span></td><td class=\"n\">", v, v);
    if (isfinite(r->score))
        sb_printf(s, "%.3f", r->score);
    sb_str(s, "</td><td><pre>");
    buf_reset(&rep->t);
    sb ts = { &rep->t, ERR_OK };
    j_value(&ts, r->vars, "{}");
    size_t cut;
    sb_esc(s, E_MARKUP, rep->t.p ? rep->t.p : "", rep->t.len, HTML_VARS_MAX, &cut);
    if (cut)
        sb_printf(s, "\xE2\x80\xA6 (%zu more bytes)", cut);
    sb_str(s, "</pre></td><td><pre>");
    if (r->output) {
        sb_esc(s, E_MARKUP, r->output, strlen(r->output), HTML_OUTPUT_MAX, &cut);
        if (cut)
            sb_printf(s, "\xE2\x80\xA6 (%zu more bytes)", cut);
    }
    sb_str(s, "</pre></td><td><pre>");
    if (r->error) {
        sb_escs(s, E_MARKUP, r->error);
        if (r->verdict != EV_PASS && r->asserts && r->nasserts)
            sb_str(s, "\n");
    }
    if (r->verdict != EV_PASS)
        reasons(s, r, E_MARKUP, "\n", HTML_OUTPUT_MAX);
    sb_str(s, "</pre></td></tr>\n");
    if (ts.e && !s->e)
        s->e = ts.e;
}

#define MD_REASON_MAX 400

static void rec_md(ev_report *rep, sb *s, const ev_record *r)
{
    sb_str(s, "- **");
    case_name(s, E_MD, r);
    sb_str(s, "** (");
    label(s, E_MD, plabel(rep, r->prompt), r->prompt);
    sb_str(s, " / ");
    label(s, E_MD, vlabel(rep, r->provider), r->provider);
    sb_printf(s, "): %s", verdict_name(r->verdict));
    if (r->error) {
        sb_str(s, " \xE2\x80\x94 ");
        sb_esc(s, E_MD, r->error, strlen(r->error), MD_REASON_MAX, NULL);
    }
    buf_reset(&rep->t);
    sb ts = { &rep->t, ERR_OK };
    reasons(&ts, r, E_MD, "; ", MD_REASON_MAX);
    if (rep->t.len) {
        sb_str(s, " \xE2\x80\x94 ");
        sb_put(s, rep->t.p, rep->t.len);
    }
    sb_str(s, "\n");
    if (ts.e && !s->e)
        s->e = ts.e;
}

err_code ev_report_add(ev_report *rep, const ev_record *r)
{
    if (!rep || !r)
        return ERR_INVAL;
    if (rep->failed)
        return ERR_IO;
    buf_reset(&rep->b);
    sb s = { &rep->b, ERR_OK };
    bool bad = r->verdict != EV_PASS;
    switch (rep->f) {
    case F_JSON:
        sb_str(&s, rep->records ? ",\n" : "\n");
        rec_json(&s, r);
        break;
    case F_JSONL:
        rec_json(&s, r);
        sb_str(&s, "\n");
        break;
    case F_CSV:
        rec_csv(rep, &s, r);
        break;
    case F_XML:
        rec_xml(rep, &s, r);
        break;
    case F_HTML:
        if ((bad ? rep->wfail : rep->wpass) < EV_REPORT_HTML_MAX_ROWS)
            rec_html(rep, &s, r);
        break;
    case F_MD:
        if (bad && rep->wfail < EV_REPORT_MD_MAX_FAILS)
            rec_md(rep, &s, r);
        break;
    }
    if (s.e)
        return s.e; /* nothing of this record was written */

    switch (rep->f) {
    case F_XML: {
        size_t ci = r->prompt < rep->np && r->provider < rep->nv ? r->prompt * rep->nv + r->provider : rep->ncols;
        xcol *c = &rep->cols[ci];
        if (!c->spool && !(c->spool = spool_open(rep)))
            return ERR_IO;
        wr_buf(rep, c->spool, &rep->b);
        c->tests++;
        c->failures += r->verdict == EV_FAIL;
        c->errors += r->verdict == EV_ERROR;
        if (isfinite(r->latency_ms) && r->latency_ms > 0)
            c->time += r->latency_ms / 1000.0;
        break;
    }
    case F_HTML:
        if (bad) {
            rep->nfail++;
            if (rep->b.len) {
                wr_buf(rep, rep->sp_fail, &rep->b);
                rep->wfail++;
            }
        } else {
            rep->npass++;
            if (rep->b.len) {
                wr_buf(rep, rep->sp_pass, &rep->b);
                rep->wpass++;
                long off = ftell(rep->sp_pass);
                if (off < 0)
                    io_fail(rep, "spooling", errno);
                rep->pass_off[rep->wpass] = off;
            }
        }
        break;
    case F_MD:
        if (bad) {
            rep->nfail++;
            if (rep->b.len) {
                wr_buf(rep, rep->sp_fail, &rep->b);
                rep->wfail++;
            }
        } else {
            rep->npass++;
        }
        break;
    default:
        wr_buf(rep, rep->out, &rep->b);
        break;
    }
    rep->records++;
    return rep->failed ? ERR_IO : ERR_OK;
}

/* Appends the first `len` bytes of spool f (all when len < 0) to the output. */
static void copy_spool(ev_report *rep, FILE *f, long len)
{
    if (!f || rep->failed)
        return;
    errno = 0;
    if (fflush(f) != 0 || fseek(f, 0, SEEK_SET) != 0) {
        io_fail(rep, "reading back a spool for", errno);
        return;
    }
    char chunk[64 * 1024];
    long left = len;
    while (len < 0 || left > 0) {
        size_t want = sizeof chunk;
        if (len >= 0 && (size_t)left < want)
            want = (size_t)left;
        size_t got = fread(chunk, 1, want, f);
        if (got == 0) {
            if (ferror(f))
                io_fail(rep, "reading back a spool for", errno);
            break;
        }
        wr(rep, rep->out, chunk, got);
        if (rep->failed)
            return;
        left -= (long)got;
    }
}

/* ---- reading the summary ---------------------------------------------------- */

static double jd(const json_t *o, const char *k)
{
    const json_t *v = json_object_get(o, k);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

static long long ji(const json_t *o, const char *k)
{
    const json_t *v = json_object_get(o, k);
    return json_is_integer(v) ? (long long)json_integer_value(v) : -1;
}

static const char *jstr(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static void fmt_pct(char *out, size_t cap, double v)
{
    if (isfinite(v))
        snprintf(out, cap, "%.1f%%", 100.0 * v);
    else
        snprintf(out, cap, "-");
}

static void fmt_fixed(char *out, size_t cap, double v, int prec)
{
    if (isfinite(v))
        snprintf(out, cap, "%.*f", prec, v);
    else
        snprintf(out, cap, "-");
}

static void fmt_ms(char *out, size_t cap, double v)
{
    fmt_fixed(out, cap, v, isfinite(v) && fabs(v) >= 100.0 ? 0 : 1);
}

/* A latency quantile with its interval when known: "12.3 [10.1, 14.0]". */
static void fmt_lat(char *out, size_t cap, const json_t *lat, const char *q)
{
    char k[16], a[24], b[24];
    fmt_ms(out, cap, jd(lat, q));
    snprintf(k, sizeof k, "%s_lo", q);
    double lo = jd(lat, k);
    snprintf(k, sizeof k, "%s_hi", q);
    double hi = jd(lat, k);
    if (!isfinite(lo) || !isfinite(hi))
        return;
    fmt_ms(a, sizeof a, lo);
    fmt_ms(b, sizeof b, hi);
    size_t n = strlen(out);
    snprintf(out + n, cap - n, " [%s, %s]", a, b);
}

/* "[lo, hi]" as percentages or with prec decimals; "-" when unknown. */
static void fmt_ci(char *out, size_t cap, const json_t *o, bool pct, int prec)
{
    double lo = jd(o, "lo"), hi = jd(o, "hi");
    if (!isfinite(lo) || !isfinite(hi)) {
        snprintf(out, cap, "-");
        return;
    }
    if (pct)
        snprintf(out, cap, "[%.1f%%, %.1f%%]", 100.0 * lo, 100.0 * hi);
    else
        snprintf(out, cap, "[%.*f, %.*f]", prec, lo, prec, hi);
}

/* One leaderboard row: two labels and these values. */
enum { LB_RATE, LB_RATE_CI, LB_PFE, LB_SCORE, LB_SCORE_CI, LB_COST, LB_P50, LB_P95, LB_N };
static const char *const lb_head[2 + LB_N] = { "Prompt", "Provider", "Pass rate", "95% CI", "Pass/Fail/Err",
                                               "Score", "Score 95% CI", "Cost $", "p50 ms [95% CI]",
                                               "p95 ms [95% CI]" };

typedef struct lbrow {
    const char *prompt, *provider;
    char v[LB_N][48];
} lbrow;

static void lb_row(const json_t *col, lbrow *row)
{
    row->prompt = jstr(col, "prompt");
    row->provider = jstr(col, "provider");
    if (!row->prompt)
        row->prompt = "?";
    if (!row->provider)
        row->provider = "?";
    const json_t *pr = json_object_get(col, "pass_rate"), *sc = json_object_get(col, "score");
    const json_t *cost = json_object_get(col, "cost"), *lat = json_object_get(col, "latency_ms");
    fmt_pct(row->v[LB_RATE], sizeof row->v[0], jd(pr, "value"));
    fmt_ci(row->v[LB_RATE_CI], sizeof row->v[0], pr, true, 1);
    snprintf(row->v[LB_PFE], sizeof row->v[0], "%lld/%lld/%lld", ji(col, "passed"), ji(col, "failed"),
             ji(col, "errors"));
    fmt_fixed(row->v[LB_SCORE], sizeof row->v[0], jd(sc, "mean"), 3);
    fmt_ci(row->v[LB_SCORE_CI], sizeof row->v[0], sc, false, 3);
    fmt_fixed(row->v[LB_COST], sizeof row->v[0], jd(cost, "total"), 4);
    fmt_lat(row->v[LB_P50], sizeof row->v[0], lat, "p50");
    fmt_lat(row->v[LB_P95], sizeof row->v[0], lat, "p95");
}

typedef struct lbkey {
    size_t i;
    double rate, score;
} lbkey;

static int cmp_lb(const void *a, const void *b)
{
    const lbkey *x = a, *y = b;
    /* Higher first, unknown last, then the column order. */
    double xr = isfinite(x->rate) ? x->rate : -1.0, yr = isfinite(y->rate) ? y->rate : -1.0;
    if (xr != yr)
        return xr > yr ? -1 : 1;
    double xs = isfinite(x->score) ? x->score : -1.0, ys = isfinite(y->score) ? y->score : -1.0;
    if (xs != ys)
        return xs > ys ? -1 : 1;
    return (x->i > y->i) - (x->i < y->i);
}

/* The columns' indexes, best first; caller frees. NULL when there are none. */
static lbkey *lb_order(const json_t *cols, size_t *n)
{
    *n = json_array_size(cols);
    if (*n == 0)
        return NULL;
    lbkey *k = malloc(*n * sizeof *k);
    if (!k) {
        *n = 0;
        return NULL;
    }
    for (size_t i = 0; i < *n; i++) {
        const json_t *c = json_array_get(cols, i);
        k[i] = (lbkey){ i, jd(json_object_get(c, "pass_rate"), "value"), jd(json_object_get(c, "score"), "mean") };
    }
    qsort(k, *n, sizeof *k, cmp_lb);
    return k;
}

/* The metric names in order (sorted by the summary already). */
typedef void (*metric_fn)(void *ctx, const char *name, const json_t *m);

static void each_metric(const json_t *summary, metric_fn fn, void *ctx)
{
    const json_t *ms = json_object_get(summary, "metrics");
    const char *k;
    const json_t *v;
    if (!json_is_object(ms))
        return;
    json_object_foreach((json_t *)ms, k, v)
        fn(ctx, k, v);
}

/* ---- html ------------------------------------------------------------------ */

static const char html_head[] =
    "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
    "<style>\n"
    "body{font:14px/1.45 system-ui,-apple-system,Segoe UI,sans-serif;margin:24px;color:#1d1d1f;background:#fff}\n"
    "h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:28px 0 8px}\n"
    ".meta{color:#555;margin-bottom:16px}.meta span{margin-right:16px}\n"
    ".cards{display:flex;gap:12px;flex-wrap:wrap}\n"
    ".card{border:1px solid #ddd;border-radius:6px;padding:8px 14px;min-width:120px}\n"
    ".card b{display:block;font-size:20px}.card small{color:#666}\n"
    "table{border-collapse:collapse;width:100%;margin-top:4px}\n"
    "th,td{border:1px solid #e3e3e3;padding:4px 6px;text-align:left;vertical-align:top}\n"
    "th{background:#f6f6f6}td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}\n"
    "pre{margin:0;white-space:pre-wrap;word-break:break-word;font:12px/1.35 ui-monospace,Menlo,monospace;"
    "max-height:24em;overflow:auto}\n"
    ".v{display:inline-block;padding:0 6px;border-radius:4px;font-weight:600}\n"
    ".pass{background:#e6f4ea;color:#137333}.fail{background:#fce8e6;color:#a50e0e}"
    ".error{background:#fef7e0;color:#7a4a00}\n"
    ".note{color:#555;margin-top:8px}\n"
    "</style>\n";

static void html_card(sb *s, const char *title, const char *value, const char *small)
{
    sb_str(s, "<div class=\"card\"><small>");
    sb_escs(s, E_MARKUP, title);
    sb_str(s, "</small><b>");
    sb_escs(s, E_MARKUP, value);
    sb_str(s, "</b>");
    if (small) {
        sb_str(s, "<small>");
        sb_escs(s, E_MARKUP, small);
        sb_str(s, "</small>");
    }
    sb_str(s, "</div>\n");
}

static void html_metric(void *ctx, const char *name, const json_t *m)
{
    sb *s = ctx;
    char mean[48], ci[64];
    fmt_fixed(mean, sizeof mean, jd(m, "mean"), 3);
    fmt_ci(ci, sizeof ci, m, false, 3);
    sb_str(s, "<tr><td>");
    sb_escs(s, E_MARKUP, name);
    sb_printf(s, "</td><td class=\"n\">%s</td><td class=\"n\">%s</td><td class=\"n\">%lld</td></tr>\n", mean, ci,
              ji(m, "n"));
}

static void html_top(ev_report *rep, sb *s, const json_t *sum)
{
    const char *title = rep->description ? rep->description : rep->run_id ? rep->run_id : "evaluation";
    sb_str(s, html_head);
    sb_str(s, "<title>genaiops eval: ");
    sb_escs(s, E_MARKUP, title);
    sb_str(s, "</title></head><body>\n<h1>");
    sb_escs(s, E_MARKUP, title);
    sb_str(s, "</h1>\n<div class=\"meta\">");
    const char *const mk[] = { "run", "config", "started" };
    const char *const mv[] = { rep->run_id, rep->config_path, rep->started_at };
    for (size_t i = 0; i < countof(mk); i++) {
        if (!mv[i])
            continue;
        sb_printf(s, "<span>%s: ", mk[i]);
        sb_escs(s, E_MARKUP, mv[i]);
        sb_str(s, "</span>");
    }
    sb_str(s, "</div>\n");

    char a[48], b[64], c[96];
    const json_t *pr = json_object_get(sum, "pass_rate");
    sb_str(s, "<h2>Summary</h2>\n<div class=\"cards\">\n");
    fmt_pct(a, sizeof a, jd(pr, "value"));
    fmt_ci(b, sizeof b, pr, true, 1);
    snprintf(c, sizeof c, "95%% CI %s", b);
    html_card(s, "Pass rate", a, c);
    const char *const ck[] = { "tests", "records", "passed", "failed", "errors" };
    for (size_t i = 0; i < countof(ck); i++) {
        long long v = ji(sum, ck[i]);
        if (v >= 0)
            snprintf(a, sizeof a, "%lld", v);
        else
            snprintf(a, sizeof a, "-");
        html_card(s, ck[i], a, NULL);
    }
    const json_t *sc = json_object_get(sum, "score");
    fmt_fixed(a, sizeof a, jd(sc, "mean"), 3);
    fmt_ci(b, sizeof b, sc, false, 3);
    snprintf(c, sizeof c, "95%% CI %s", b);
    html_card(s, "Score", a, c);
    const json_t *pk = json_object_get(sum, "pass_at_k"), *ph = json_object_get(sum, "pass_hat_k");
    if (pk && ph) {
        long long k = ji(pk, "k");
        char t[32];
        snprintf(t, sizeof t, "pass@%lld", k);
        fmt_fixed(a, sizeof a, jd(pk, "mean"), 3);
        html_card(s, t, a, NULL);
        snprintf(t, sizeof t, "pass^%lld", k);
        fmt_fixed(a, sizeof a, jd(ph, "mean"), 3);
        html_card(s, t, a, NULL);
    }
    sb_str(s, "</div>\n");

    const json_t *cols = json_object_get(sum, "columns");
    size_t n;
    lbkey *ord = lb_order(cols, &n);
    if (n) {
        sb_str(s, "<h2>Leaderboard</h2>\n<table><tr>");
        for (size_t i = 0; i < countof(lb_head); i++)
            sb_printf(s, "<th>%s</th>", lb_head[i]);
        sb_str(s, "</tr>\n");
        for (size_t i = 0; i < n; i++) {
            lbrow row;
            lb_row(json_array_get(cols, ord[i].i), &row);
            sb_str(s, "<tr><td>");
            sb_escs(s, E_MARKUP, row.prompt);
            sb_str(s, "</td><td>");
            sb_escs(s, E_MARKUP, row.provider);
            sb_str(s, "</td>");
            for (size_t j = 0; j < LB_N; j++)
                sb_printf(s, "<td class=\"n\">%s</td>", row.v[j]);
            sb_str(s, "</tr>\n");
        }
        sb_str(s, "</table>\n");
    }
    free(ord);
    if (json_object_size(json_object_get(sum, "metrics"))) {
        sb_str(s, "<h2>Metrics</h2>\n<table><tr><th>Metric</th><th>Mean</th><th>95% CI</th><th>n</th></tr>\n");
        each_metric(sum, html_metric, s);
        sb_str(s, "</table>\n");
    }
    sb_str(s, "<h2>Results</h2>\n<table><tr><th>Test</th><th>Description</th><th>Prompt / provider</th>"
              "<th>Verdict</th><th>Score</th><th>Vars</th><th>Output</th><th>Reasons</th></tr>\n");
}

static void close_html(ev_report *rep, const json_t *sum)
{
    buf_reset(&rep->b);
    sb s = { &rep->b, ERR_OK };
    html_top(rep, &s, sum);
    if (s.e) {
        io_fail(rep, "formatting", ENOMEM);
        return;
    }
    wr_buf(rep, rep->out, &rep->b);
    size_t shown_fail = rep->wfail;
    size_t shown_pass = MIN(rep->wpass, EV_REPORT_HTML_MAX_ROWS - MIN(shown_fail, EV_REPORT_HTML_MAX_ROWS));
    copy_spool(rep, rep->sp_fail, -1);
    copy_spool(rep, rep->sp_pass, rep->pass_off[shown_pass]);
    buf_reset(&rep->b);
    sb_str(&s, "</table>\n");
    size_t total = rep->nfail + rep->npass, shown = shown_fail + shown_pass;
    if (total > shown)
        sb_printf(&s,
                  "<p class=\"note\">%zu of %zu records are not shown (%zu failed or errored, %zu passed); "
                  "the .json or .jsonl output has them all.</p>\n",
                  total - shown, total, rep->nfail - shown_fail, rep->npass - shown_pass);
    sb_str(&s, "<p class=\"note\">Intervals: pass rates by Wilson score, means by percentile bootstrap "
               "(95%).</p>\n</body></html>\n");
    if (s.e)
        io_fail(rep, "formatting", ENOMEM);
    wr_buf(rep, rep->out, &rep->b);
}

/* ---- markdown ------------------------------------------------------------------ */

static void md_metric(void *ctx, const char *name, const json_t *m)
{
    sb *s = ctx;
    char mean[48], ci[64];
    fmt_fixed(mean, sizeof mean, jd(m, "mean"), 3);
    fmt_ci(ci, sizeof ci, m, false, 3);
    sb_str(s, "| ");
    sb_escs(s, E_MD, name);
    sb_printf(s, " | %s | %s | %lld |\n", mean, ci, ji(m, "n"));
}

static void close_md(ev_report *rep, const json_t *sum)
{
    buf_reset(&rep->b);
    sb s = { &rep->b, ERR_OK };
    const char *title = rep->description ? rep->description : rep->run_id ? rep->run_id : "evaluation";
    sb_str(&s, "# genaiops eval: ");
    sb_escs(&s, E_MD, title);
    sb_str(&s, "\n\n");
    if (rep->run_id) {
        sb_str(&s, "- Run: ");
        sb_escs(&s, E_MD, rep->run_id);
        sb_str(&s, "\n");
    }
    if (rep->config_path) {
        sb_str(&s, "- Config: ");
        sb_escs(&s, E_MD, rep->config_path);
        sb_str(&s, "\n");
    }
    if (rep->started_at) {
        sb_str(&s, "- Started: ");
        sb_escs(&s, E_MD, rep->started_at);
        sb_str(&s, "\n");
    }
    char a[48], b[64];
    const json_t *pr = json_object_get(sum, "pass_rate"), *sc = json_object_get(sum, "score");
    fmt_pct(a, sizeof a, jd(pr, "value"));
    fmt_ci(b, sizeof b, pr, true, 1);
    sb_printf(&s, "\n## Summary\n\n| Tests | Records | Passed | Failed | Errors | Pass rate | 95%% CI |\n"
                  "|---:|---:|---:|---:|---:|---:|---|\n| %lld | %lld | %lld | %lld | %lld | %s | %s |\n",
              ji(sum, "tests"), ji(sum, "records"), ji(sum, "passed"), ji(sum, "failed"), ji(sum, "errors"), a,
              b);
    fmt_fixed(a, sizeof a, jd(sc, "mean"), 3);
    fmt_ci(b, sizeof b, sc, false, 3);
    sb_printf(&s, "\nScore: %s %s (95%% bootstrap interval)\n", a, b);
    const json_t *pk = json_object_get(sum, "pass_at_k"), *ph = json_object_get(sum, "pass_hat_k");
    if (pk && ph) {
        char c[48];
        fmt_fixed(a, sizeof a, jd(pk, "mean"), 3);
        fmt_fixed(c, sizeof c, jd(ph, "mean"), 3);
        sb_printf(&s, "\npass@%lld: %s, pass^%lld: %s (repeat %lld)\n", ji(pk, "k"), a, ji(ph, "k"), c,
                  ji(sum, "repeat"));
    }
    const json_t *cols = json_object_get(sum, "columns");
    size_t n;
    lbkey *ord = lb_order(cols, &n);
    if (n) {
        sb_str(&s, "\n## Leaderboard\n\n|");
        for (size_t i = 0; i < countof(lb_head); i++)
            sb_printf(&s, " %s |", lb_head[i]);
        sb_str(&s, "\n|---|---|");
        for (size_t i = 0; i < LB_N; i++)
            sb_str(&s, "---:|");
        sb_str(&s, "\n");
        for (size_t i = 0; i < n; i++) {
            lbrow row;
            lb_row(json_array_get(cols, ord[i].i), &row);
            sb_str(&s, "| ");
            sb_escs(&s, E_MD, row.prompt);
            sb_str(&s, " | ");
            sb_escs(&s, E_MD, row.provider);
            sb_str(&s, " |");
            for (size_t j = 0; j < LB_N; j++)
                sb_printf(&s, " %s |", row.v[j]);
            sb_str(&s, "\n");
        }
    }
    free(ord);
    if (json_object_size(json_object_get(sum, "metrics"))) {
        sb_str(&s, "\n## Metrics\n\n| Metric | Mean | 95% CI | n |\n|---|---:|---|---:|\n");
        each_metric(sum, md_metric, &s);
    }
    sb_printf(&s, "\n## Failed tests (%zu)\n\n", rep->nfail);
    if (rep->nfail == 0)
        sb_str(&s, "None.\n");
    if (s.e)
        io_fail(rep, "formatting", ENOMEM);
    wr_buf(rep, rep->out, &rep->b);
    copy_spool(rep, rep->sp_fail, -1);
    if (rep->nfail > rep->wfail) {
        buf_reset(&rep->b);
        sb_printf(&s, "\n%zu more not listed; the .json or .jsonl output has them all.\n", rep->nfail - rep->wfail);
        wr_buf(rep, rep->out, &rep->b);
    }
}

/* ---- xml ------------------------------------------------------------------------- */

static void close_xml(ev_report *rep)
{
    size_t tests = 0, failures = 0, errors = 0;
    double time = 0.0;
    for (size_t i = 0; i <= rep->ncols; i++) {
        tests += rep->cols[i].tests;
        failures += rep->cols[i].failures;
        errors += rep->cols[i].errors;
        time += rep->cols[i].time;
    }
    buf_reset(&rep->b);
    sb s = { &rep->b, ERR_OK };
    sb_str(&s, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"");
    sb_escs(&s, E_MARKUP, rep->description ? rep->description : "genaiops eval");
    sb_printf(&s, "\" tests=\"%zu\" failures=\"%zu\" errors=\"%zu\" time=\"%.3f\">\n", tests, failures, errors,
              time);
    wr_buf(rep, rep->out, &rep->b);
    for (size_t i = 0; i <= rep->ncols; i++) {
        xcol *c = &rep->cols[i];
        if (i == rep->ncols && !c->tests)
            break;
        buf_reset(&rep->b);
        sb_str(&s, "  <testsuite name=\"");
        if (i < rep->ncols) {
            sb_escs(&s, E_MARKUP, rep->plabels[i / rep->nv]);
            sb_str(&s, " | ");
            sb_escs(&s, E_MARKUP, rep->vlabels[i % rep->nv]);
        } else {
            sb_str(&s, "other");
        }
        sb_printf(&s, "\" tests=\"%zu\" failures=\"%zu\" errors=\"%zu\" skipped=\"0\" time=\"%.3f\"", c->tests,
                  c->failures, c->errors, c->time);
        if (rep->started_at) {
            sb_str(&s, " timestamp=\"");
            sb_escs(&s, E_MARKUP, rep->started_at);
            sb_str(&s, "\"");
        }
        sb_str(&s, c->tests ? ">\n" : "/>\n");
        wr_buf(rep, rep->out, &rep->b);
        if (!c->tests)
            continue;
        copy_spool(rep, c->spool, -1);
        wr(rep, rep->out, "  </testsuite>\n", 15);
    }
    wr(rep, rep->out, "</testsuites>\n", 14);
    if (s.e)
        io_fail(rep, "formatting", ENOMEM);
}

/* ---- close ---------------------------------------------------------------------- */

err_code ev_report_close(ev_report *rep, const json_t *summary, char *msg, size_t msgcap)
{
    if (!rep) {
        set_msg(msg, msgcap, "no report");
        return ERR_INVAL;
    }
    buf_reset(&rep->b);
    sb s = { &rep->b, ERR_OK };
    switch (rep->f) {
    case F_JSON:
        sb_str(&s, rep->records ? "\n],\"summary\":" : "],\"summary\":");
        j_value(&s, summary, "null");
        sb_str(&s, "}\n");
        wr_buf(rep, rep->out, &rep->b);
        break;
    case F_JSONL:
        sb_str(&s, "{\"summary\":");
        j_value(&s, summary, "null");
        sb_str(&s, ",\"meta\":");
        meta_json(&s, rep);
        sb_str(&s, "}\n");
        wr_buf(rep, rep->out, &rep->b);
        break;
    case F_CSV:
        break;
    case F_XML:
        close_xml(rep);
        break;
    case F_HTML:
        close_html(rep, summary);
        break;
    case F_MD:
        close_md(rep, summary);
        break;
    }
    if (s.e)
        io_fail(rep, "formatting", s.e == ERR_NOMEM ? ENOMEM : EFBIG);
    FILE *out = rep->out;
    rep->out = NULL;
    errno = 0;
    if (fflush(out) != 0 || ferror(out))
        io_fail(rep, "writing", errno);
    if (!rep->failed && fsync(fileno(out)) != 0 && errno != EINVAL && errno != EROFS)
        io_fail(rep, "syncing", errno);
    if (fclose(out) != 0)
        io_fail(rep, "closing", errno);
    if (!rep->failed && rename(rep->tmp, rep->path) != 0)
        io_fail(rep, "renaming the temp file to", errno);
    err_code e = ERR_OK;
    if (rep->failed) {
        unlink(rep->tmp);
        set_msg(msg, msgcap, "%s", rep->why);
        e = ERR_IO;
    }
    free_rep(rep);
    return e;
}

void ev_report_abort(ev_report *rep)
{
    if (!rep)
        return;
    if (rep->out) {
        fclose(rep->out);
        rep->out = NULL;
    }
    unlink(rep->tmp);
    free_rep(rep);
}

/* ---- the terminal table -------------------------------------------------------- */

/* Characters on screen (UTF-8 code points; wide characters count one). */
static size_t disp_width(const char *s)
{
    size_t w = 0;
    for (; *s; s++)
        w += ((unsigned char)*s & 0xC0) != 0x80;
    return w;
}

#define TERM_LABEL_MAX 40

/* A label made safe for a terminal and at most TERM_LABEL_MAX bytes. */
static void term_label(char *out, size_t cap, const char *l)
{
    buf b;
    buf_init(&b, 4 * TERM_LABEL_MAX);
    sb s = { &b, ERR_OK };
    size_t cut = 0;
    sb_esc(&s, E_TERM, l, strlen(l), TERM_LABEL_MAX, &cut);
    if (cut)
        sb_str(&s, "...");
    snprintf(out, cap, "%s", s.e || !b.p ? "?" : b.p);
    buf_free(&b);
}

static void pad(FILE *f, const char *s, size_t w, bool right)
{
    size_t n = disp_width(s);
    if (right)
        for (size_t i = n; i < w; i++)
            fputc(' ', f);
    fputs(s, f);
    if (!right)
        for (size_t i = n; i < w; i++)
            fputc(' ', f);
}

static void table_metric(void *ctx, const char *name, const json_t *m)
{
    FILE *f = ctx;
    char l[TERM_LABEL_MAX * 4 + 8], mean[48], ci[64];
    term_label(l, sizeof l, name);
    fmt_fixed(mean, sizeof mean, jd(m, "mean"), 3);
    fmt_ci(ci, sizeof ci, m, false, 3);
    fputs("  ", f);
    pad(f, l, 28, false);
    fprintf(f, " %7s  %-16s  n=%lld\n", mean, ci, ji(m, "n"));
}

void ev_report_table(FILE *f, const json_t *summary, const ev_report_meta *m)
{
    if (!f || !json_is_object(summary))
        return;
    char a[48], b[64];
    if (m && (m->description || m->run_id)) {
        char l[TERM_LABEL_MAX * 4 + 8];
        term_label(l, sizeof l, m->description ? m->description : m->run_id);
        fprintf(f, "Evaluation: %s\n", l);
    }
    fprintf(f, "Tests %lld, records %lld: %lld passed, %lld failed, %lld errors\n", ji(summary, "tests"),
            ji(summary, "records"), ji(summary, "passed"), ji(summary, "failed"), ji(summary, "errors"));
    const json_t *pr = json_object_get(summary, "pass_rate"), *sc = json_object_get(summary, "score");
    fmt_pct(a, sizeof a, jd(pr, "value"));
    fmt_ci(b, sizeof b, pr, true, 1);
    fprintf(f, "Pass rate %s, 95%% CI %s (Wilson)\n", a, b);
    fmt_fixed(a, sizeof a, jd(sc, "mean"), 3);
    fmt_ci(b, sizeof b, sc, false, 3);
    fprintf(f, "Score     %s, 95%% CI %s (bootstrap)\n", a, b);
    const json_t *pk = json_object_get(summary, "pass_at_k"), *ph = json_object_get(summary, "pass_hat_k");
    if (pk && ph) {
        fmt_fixed(a, sizeof a, jd(pk, "mean"), 3);
        fmt_fixed(b, sizeof b, jd(ph, "mean"), 3);
        fprintf(f, "pass@%lld %s, pass^%lld %s over %lld test x column cells\n", ji(pk, "k"), a, ji(ph, "k"), b,
                ji(pk, "n"));
    }
    if (json_object_size(json_object_get(summary, "metrics"))) {
        fputs("Metrics:\n", f);
        each_metric(summary, table_metric, f);
    }
    const json_t *cols = json_object_get(summary, "columns");
    size_t n;
    lbkey *ord = lb_order(cols, &n);
    if (n == 1) {
        lbrow row;
        lb_row(json_array_get(cols, 0), &row);
        fprintf(f, "Latency p50 %s ms, p95 %s ms; cost $%s\n", row.v[LB_P50], row.v[LB_P95], row.v[LB_COST]);
    } else if (n > 1) {
        /* Two passes: widths, then rows. */
        size_t w[2 + LB_N];
        for (size_t j = 0; j < countof(w); j++)
            w[j] = disp_width(lb_head[j]);
        char pl[TERM_LABEL_MAX * 4 + 8], vl[TERM_LABEL_MAX * 4 + 8];
        for (size_t pass = 0; pass < 2; pass++) {
            if (pass == 1) {
                fputs("Leaderboard:\n ", f);
                for (size_t j = 0; j < countof(w); j++) {
                    fputc(' ', f);
                    pad(f, lb_head[j], w[j], j >= 2);
                }
                fputc('\n', f);
            }
            for (size_t i = 0; i < n; i++) {
                lbrow row;
                lb_row(json_array_get(cols, ord[i].i), &row);
                term_label(pl, sizeof pl, row.prompt);
                term_label(vl, sizeof vl, row.provider);
                const char *cell[2 + LB_N] = { pl, vl };
                for (size_t j = 0; j < LB_N; j++)
                    cell[2 + j] = row.v[j];
                if (pass == 0) {
                    for (size_t j = 0; j < countof(w); j++)
                        w[j] = MAX(w[j], disp_width(cell[j]));
                    continue;
                }
                fputc(' ', f);
                for (size_t j = 0; j < countof(w); j++) {
                    fputc(' ', f);
                    pad(f, cell[j], w[j], j >= 2);
                }
                fputc('\n', f);
            }
        }
    }
    free(ord);
}
