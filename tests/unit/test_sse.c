/*
 * test_sse.c - the text/event-stream parser and writer.
 *
 * Each parser case is fed whole, byte by byte, and split at every position
 * into two and three slices; the dispatched events, rendered as
 * "[event]{data}(id)", must be the same every time.
 */
#include <stdlib.h>
#include "http/sse.h"
#include "test.h"

typedef struct collect {
    buf out;
    int stop_after; /* return nonzero after this many events; 0 = never */
    int count;
} collect;

static int on_event(void *ud, const sse_event *ev)
{
    collect *c = ud;
    buf_printf(&c->out, "[%.*s]{%.*s}(%.*s)", SV_FMT(ev->event), SV_FMT(ev->data), SV_FMT(ev->id));
    c->count++;
    return c->stop_after && c->count >= c->stop_after;
}

/* Feeds in[0..n) cut at the given positions (ascending, may be empty). */
static err_code run_split(const char *in, size_t n, const size_t *cuts, size_t ncuts, size_t max,
                          buf *events, bool *pending)
{
    sse_parser p;
    collect c = { .stop_after = 0 };
    buf_init(&c.out, 1 << 16);
    sse_parser_init(&p, max);
    size_t at = 0;
    err_code e = ERR_OK;
    for (size_t k = 0; k <= ncuts && !e; k++) {
        size_t end = k < ncuts ? cuts[k] : n;
        e = sse_parser_feed(&p, in + at, end - at, on_event, &c);
        at = end;
    }
    if (pending)
        *pending = sse_parser_pending(&p);
    sse_parser_free(&p);
    buf_reset(events);
    buf_append(events, c.out.p ? c.out.p : "", c.out.len);
    buf_free(&c.out);
    return e;
}

static const struct parse_case {
    const char *name;
    const char *in;
    size_t len; /* 0 = strlen(in); set for inputs holding NUL */
    const char *want;
    bool pending;
} parse_cases[] = {
    { "simple", "data: hello\n\n", 0, "[]{hello}()", false },
    { "no space", "data:hello\n\n", 0, "[]{hello}()", false },
    { "only one space removed", "data:  two\n\n", 0, "[]{ two}()", false },
    { "named", "event: ping\ndata: x\n\n", 0, "[ping]{x}()", false },
    { "multi data", "data: a\ndata: b\n\n", 0, "[]{a\nb}()", false },
    { "empty data line inside", "data: a\ndata:\ndata: b\n\n", 0, "[]{a\n\nb}()", false },
    { "CR endings", "data: a\rdata: b\r\r", 0, "[]{a\nb}()", false },
    { "CRLF endings", "data: a\r\n\r\n", 0, "[]{a}()", false },
    { "mixed endings", "data: a\r\ndata: b\n\r\ndata: c\r\r\n", 0, "[]{a\nb}()[]{c}()", false },
    { "comment", ": keepalive\n\ndata: x\n\n", 0, "[]{x}()", false },
    { "field without colon", "data\n\n", 0, "[]{}()", false },
    { "event only is not dispatched", "event: foo\n\ndata: y\n\n", 0, "[]{y}()", false },
    { "id persists", "id: 7\ndata: a\n\ndata: b\n\n", 0, "[]{a}(7)[]{b}(7)", false },
    { "id reset", "id: 7\ndata: a\n\nid\ndata: b\n\n", 0, "[]{a}(7)[]{b}()", false },
    { "id with NUL ignored", "id: 1\ndata: a\n\nid: x\0y\ndata: b\n\n", 32, "[]{a}(1)[]{b}(1)", false },
    { "BOM skipped", "\xEF\xBB\xBF" "data: a\n\n", 0, "[]{a}()", false },
    { "second BOM is data", "\xEF\xBB\xBF\xEF\xBB\xBF" "data: a\n\ndata: b\n\n", 0, "[]{b}()", false },
    { "broken BOM replayed", "\xEF" "data: a\n\ndata: b\n\n", 0, "[]{b}()", false },
    { "unknown field", "foo: bar\ndata: a\n\n", 0, "[]{a}()", false },
    { "colon in value", "data: a:b\n\n", 0, "[]{a:b}()", false },
    { "empty event name", "event:\ndata: x\n\n", 0, "[]{x}()", false },
    { "blank lines", "\n\n\ndata: a\n\n\n\n", 0, "[]{a}()", false },
    { "name reset after dispatch", "event: e\ndata: 1\n\ndata: 2\n\n", 0, "[e]{1}()[]{2}()", false },
    { "cut mid line", "data: a\n\ndata: b", 0, "[]{a}()", true },
    { "cut mid event", "data: a\n\nevent: x\n", 0, "[]{a}()", true },
    { "cut after retry", "retry: 10\n", 0, "", true },
    { "comment is not an event", "data: a\n\n: ping\n", 0, "[]{a}()", false },
    { "openai done", "data: {\"x\":1}\n\ndata: [DONE]\n\n", 0, "[]{{\"x\":1}}()[]{[DONE]}()", false },
};

TEST(sse_parse_table_all_splits)
{
    buf got;
    buf_init(&got, 1 << 16);
    for (size_t i = 0; i < countof(parse_cases); i++) {
        const struct parse_case *c = &parse_cases[i];
        size_t n = c->len ? c->len : strlen(c->in);
        bool pending = false;
        /* whole */
        CHECK_INT(run_split(c->in, n, NULL, 0, 0, &got, &pending), ERR_OK);
        if (strcmp(got.p ? got.p : "", c->want) != 0 || pending != c->pending)
            test_fail(__FILE__, __LINE__, "%s: got \"%s\" pending=%d", c->name, got.p ? got.p : "", pending);
        /* byte by byte */
        size_t cuts[512];
        for (size_t k = 1; k < n; k++)
            cuts[k - 1] = k;
        CHECK_INT(run_split(c->in, n, cuts, n ? n - 1 : 0, 0, &got, &pending), ERR_OK);
        if (strcmp(got.p ? got.p : "", c->want) != 0 || pending != c->pending)
            test_fail(__FILE__, __LINE__, "%s (bytewise): got \"%s\"", c->name, got.p ? got.p : "");
        /* every two- and three-way split */
        for (size_t a = 0; a <= n; a++)
            for (size_t b = a; b <= n; b++) {
                size_t two[2] = { a, b };
                run_split(c->in, n, two, 2, 0, &got, &pending);
                if (strcmp(got.p ? got.p : "", c->want) != 0 || pending != c->pending)
                    test_fail(__FILE__, __LINE__, "%s (split %zu,%zu): got \"%s\"", c->name, a, b,
                              got.p ? got.p : "");
            }
    }
    buf_free(&got);
}

TEST(sse_cr_at_slice_end_is_one_line_end)
{
    /* "a\r" | "\n" | "\n" must give exactly one event, not two blank lines */
    sse_parser p;
    collect c = { 0 };
    buf_init(&c.out, 4096);
    sse_parser_init(&p, 0);
    CHECK_INT(sse_parser_feed(&p, "data: a\r", 8, on_event, &c), ERR_OK);
    CHECK_INT(sse_parser_feed(&p, "\n", 1, on_event, &c), ERR_OK);
    CHECK_INT(c.count, 0);
    CHECK(sse_parser_pending(&p));
    CHECK_INT(sse_parser_feed(&p, "\r", 1, on_event, &c), ERR_OK);
    CHECK_INT(c.count, 1);
    CHECK(!sse_parser_pending(&p));
    /* an LF after that CR is its pair, not another blank line; data follows */
    CHECK_INT(sse_parser_feed(&p, "\ndata: b\n\n", 10, on_event, &c), ERR_OK);
    CHECK_STR(c.out.p, "[]{a}()[]{b}()");
    /* empty feeds change nothing */
    CHECK_INT(sse_parser_feed(&p, "", 0, on_event, &c), ERR_OK);
    sse_parser_free(&p);
    buf_free(&c.out);
}

TEST(sse_retry_field)
{
    static const struct { const char *in; long want; } cases[] = {
        { "retry: 1500\n", 1500 },
        { "retry: 15x\n", -1 },
        { "retry:\n", -1 },
        { "retry: -5\n", -1 },
        { "retry: 99999999999999999999999\n", -1 },
        { "retry: 10\nretry: bad\n", 10 },
    };
    for (size_t i = 0; i < countof(cases); i++) {
        sse_parser p;
        sse_parser_init(&p, 0);
        CHECK_INT(sse_parser_feed(&p, cases[i].in, strlen(cases[i].in), NULL, NULL), ERR_OK);
        if (p.retry_ms != cases[i].want)
            test_fail(__FILE__, __LINE__, "%s -> %ld", cases[i].in, p.retry_ms);
        sse_parser_free(&p);
    }
}

TEST(sse_limits)
{
    buf got;
    buf_init(&got, 4096);
    /* a 16-byte line fits a 16-byte limit, 17 does not, whole or split */
    const char *ok = "data: 0123456789\n\n";
    const char *big = "data: 0123456789A\n\n";
    CHECK_INT(run_split(ok, strlen(ok), NULL, 0, 16, &got, NULL), ERR_OK);
    CHECK_STR(got.p, "[]{0123456789}()");
    CHECK_INT(run_split(big, strlen(big), NULL, 0, 16, &got, NULL), ERR_TOOBIG);
    size_t cut[1] = { 9 };
    CHECK_INT(run_split(big, strlen(big), cut, 1, 16, &got, NULL), ERR_TOOBIG);
    /* an unterminated line longer than the limit fails before its end */
    CHECK_INT(run_split("data: 0123456789ABCDEF", 22, NULL, 0, 16, &got, NULL), ERR_TOOBIG);
    /* many small data lines add up: 3 x "0123\n" = 15 ok, 4 = 20 too big */
    const char *three = "data:0123\ndata:0123\ndata:0123\n\n";
    const char *four = "data:0123\ndata:0123\ndata:0123\ndata:0123\n\n";
    CHECK_INT(run_split(three, strlen(three), NULL, 0, 16, &got, NULL), ERR_OK);
    CHECK_INT(run_split(four, strlen(four), NULL, 0, 16, &got, NULL), ERR_TOOBIG);
    /* the event name counts too */
    const char *named = "event:0123456789\ndata:012345\n\n";
    CHECK_INT(run_split(named, strlen(named), NULL, 0, 16, &got, NULL), ERR_TOOBIG);
    /* but dispatching frees the room: many events of 15 bytes each are fine */
    const char *many = "data:0123456789\n\ndata:0123456789\n\ndata:0123456789\n\n";
    CHECK_INT(run_split(many, strlen(many), NULL, 0, 16, &got, NULL), ERR_OK);
    CHECK_STR(got.p, "[]{0123456789}()[]{0123456789}()[]{0123456789}()");
    buf_free(&got);

    /* the error sticks */
    sse_parser p;
    sse_parser_init(&p, 8);
    CHECK_INT(sse_parser_feed(&p, "data: 0123456789", 16, NULL, NULL), ERR_TOOBIG);
    CHECK_INT(sse_parser_feed(&p, "\n\n", 2, NULL, NULL), ERR_TOOBIG);
    sse_parser_free(&p);
}

TEST(sse_callback_cancels)
{
    sse_parser p;
    collect c = { .stop_after = 1 };
    buf_init(&c.out, 4096);
    sse_parser_init(&p, 0);
    const char *in = "data: 1\n\ndata: 2\n\n";
    CHECK_INT(sse_parser_feed(&p, in, strlen(in), on_event, &c), ERR_CANCELED);
    CHECK_INT(c.count, 1);
    CHECK_INT(sse_parser_feed(&p, in, strlen(in), on_event, &c), ERR_CANCELED);
    CHECK_INT(c.count, 1);
    sse_parser_free(&p);
    buf_free(&c.out);
}

TEST(sse_write_event_format)
{
    static const struct { const char *event, *data, *want; } cases[] = {
        { "", "{\"a\":1}", "data: {\"a\":1}\n\n" },
        { "message_stop", "{}", "event: message_stop\ndata: {}\n\n" },
        { "", "a\nb", "data: a\ndata: b\n\n" },
        { "", "a\r\nb\rc", "data: a\ndata: b\ndata: c\n\n" },
        { "", "", "data: \n\n" },
        { "", "a\n", "data: a\ndata: \n\n" },
        { "", " lead", "data:  lead\n\n" },
        /* fuzz_sse crasher: empty lines cost 7 bytes each ("data: \n"), so
         * the writer's output may be ~7x its input */
        { "", "\n\n\n", "data: \ndata: \ndata: \ndata: \n\n" },
        { "e", "\r\r", "event: e\ndata: \ndata: \ndata: \n\n" },
    };
    for (size_t i = 0; i < countof(cases); i++) {
        buf out;
        buf_init(&out, 4096);
        CHECK_INT(sse_write_event(&out, sv_from(cases[i].event), sv_from(cases[i].data)), ERR_OK);
        CHECK_STR(out.p, cases[i].want);
        /* and it parses back to the same event, with LF line joins */
        collect c = { 0 };
        buf_init(&c.out, 4096);
        sse_parser p;
        sse_parser_init(&p, 0);
        CHECK_INT(sse_parser_feed(&p, out.p, out.len, on_event, &c), ERR_OK);
        CHECK_INT(c.count, 1);
        CHECK(!sse_parser_pending(&p));
        sse_parser_free(&p);
        buf_free(&c.out);
        buf_free(&out);
    }
}

TEST(sse_write_event_refuses)
{
    buf out;
    buf_init(&out, 24);
    buf_append_str(&out, "keep");
    CHECK_INT(sse_write_event(&out, SV("a\nb"), SV("x")), ERR_INVAL);
    CHECK_INT(sse_write_event(&out, SV("a\rb"), SV("x")), ERR_INVAL);
    /* too big for the buffer: nothing half-written */
    CHECK_INT(sse_write_event(&out, SV("name"), SV("0123456789")), ERR_TOOBIG);
    CHECK_STR(out.p, "keep");
    CHECK_INT(out.len, 4);
    CHECK_INT(sse_write_event(&out, SV_NULL, SV("0123456789")), ERR_OK);
    CHECK_STR(out.p, "keepdata: 0123456789\n\n");
    buf_free(&out);
}
