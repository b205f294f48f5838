/*
 * guard_stream.c - guardrails over an answer that arrives in pieces (SSE
 * deltas): the text is released as it comes, redacted and restored,
 * except for a held-back tail where a match may still be growing.
 *
 * How it works. The stream keeps the text it has seen (up to
 * STREAM_CAP; past it the released bytes further back than STREAM_KEEP
 * are dropped and only a sliding window is kept) and `released`, the
 * absolute offset up to which text has gone out. Each feed appends the
 * delta and works out the boundary of what may go out; when that would
 * release at least STREAM_STEP bytes (or the hold-back, if smaller), it
 * runs the stage's local detectors over [released - STREAM_CTX, end) (the
 * start moved back to a whitespace, so that scanners start on a word and
 * keep their look-behind context, and out of any PEM block to its BEGIN,
 * as secrets.c reads blocks whole). The boundary is
 *
 *   end - holdback, moved back to the start of the word it falls in, to
 *   the start of the trailing word (a word, e-mail or key still arriving;
 *   see cut_back for what a word is), to the start of any finding that
 *   crosses it, to a "-----BEGIN" of the last STREAM_PEM bytes whose block
 *   has not ended yet (its END line complete, as secrets.c reads it), and
 *   to a trailing "<NAME" that may be a placeholder to restore; never
 *   before `released`.
 *
 * Findings that lie in [released, boundary) are recorded as hits (each
 * once: afterwards they are behind `released`), enforced redact hits are
 * replaced by placeholders, the rest is restored, and `released` moves to
 * the boundary. A finding that starts before `released` (it grew after
 * its start went out, or is an artefact of the window) is clipped to
 * `released`: what is left of it is still replaced. An enforced block hit
 * stops the stream: nothing more is released. finish() scans and releases
 * the rest and ends the stage. docs/internals/guard-engine.md discusses
 * what the hold-back can and cannot catch.
 */
#include <stdlib.h>
#include "guard/guard_int.h"

#define STREAM_CAP (4u << 20)   /* bytes of text kept */
#define STREAM_KEEP 2048u       /* released bytes kept before `released` when sliding */
#define STREAM_CTX 640u         /* released bytes rescanned as context */
#define STREAM_ALIGN 256u       /* how far the scan start moves back to a space */
#define STREAM_WORD 512u        /* a trailing word longer than this is not waited for */
#define STREAM_PEM (64u << 10)  /* an open private key block is waited for this long */
#define STREAM_BLOCKS 64        /* PEM blocks remembered near `released` */
#define STREAM_STEP 32u         /* the least that is scanned for (or the hold-back, if smaller) */

typedef struct stream_span {
    size_t s, e;
} stream_span;

struct guard_stream {
    guard_req *q;
    guard_stage st;
    uint16_t part;
    bool scan;       /* some policy is selected at the stage */
    bool restore;    /* placeholders of the input go back in */
    bool blocked, finished, slid;
    size_t holdback;
    char *t;         /* text [base, base + len) */
    size_t len, cap;
    size_t base, released; /* absolute offsets */
    size_t pem_open; /* absolute offset + 1 of an unmatched "-----BEGIN", 0 when none */
    size_t pem_body; /* where its body starts (an END must be there or later), 0 = not known yet */
    size_t pem_end;  /* absolute offset + 1 of its "-----END", 0 when none yet */
    size_t pem_seen; /* absolute offset from which "-----" is looked for next */
    guard_span *sp;  /* scratch: redactions of one release */
    size_t capsp;
    stream_span *order; /* scratch: candidates by start, descending */
    stream_span blocks[STREAM_BLOCKS]; /* recent PEM blocks, in order, for where a scan may start */
    size_t nblocks;
    size_t caporder;
};

static bool is_space(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == '\f' || c == '\v'; }
static bool ph_char(char c) { return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'; }

/* The byte, and a pointer to it, at absolute offset abs (base <= abs <= end). */
static inline char ch(const guard_stream *s, size_t abs) { return s->t[abs - s->base]; }
static inline const char *ptr(const guard_stream *s, size_t abs) { return s->t + (abs - s->base); }

guard_stream *guard_stream_new(guard_req *q, guard_stage st, uint16_t part)
{
    if (!q || (unsigned)st >= GS__COUNT)
        return NULL;
    guard_stream *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->q = q;
    s->st = st;
    s->part = part;
    s->scan = q->set[st] != 0;
    s->restore = st != GS_INPUT && guard_restore_wanted(q);
    for (guard_set b = q->set[st]; b; b &= b - 1) {
        size_t h = q->g->v[__builtin_ctzll(b)].info.stream_holdback;
        if (h > s->holdback)
            s->holdback = h;
    }
    return s;
}

void guard_stream_free(guard_stream *s)
{
    if (!s)
        return;
    free(s->t);
    free(s->sp);
    free(s->order);
    free(s);
}

bool guard_stream_blocked(const guard_stream *s) { return s && s->blocked; }

/* Drops released bytes that are no longer needed as context. */
static void compact(guard_stream *s)
{
    size_t keep = s->scan ? STREAM_KEEP : 0;
    size_t from = s->released > keep ? s->released - keep : 0;
    if (from <= s->base)
        return;
    size_t drop = from - s->base;
    if (s->scan)
        guard_count_size(s->q, s->st, s->t, drop);
    memmove(s->t, s->t + drop, s->len - drop);
    s->len -= drop;
    s->base = from;
    s->slid = true;
}

static err_code append(guard_stream *s, const char *d, size_t n)
{
    if (s->base + s->len + n > UINT32_MAX || s->base + s->len + n < n)
        return ERR_TOOBIG;
    if (!s->scan && s->released > s->base)
        compact(s);
    if (s->len + n > s->cap) {
        if (s->len + n > STREAM_CAP)
            compact(s);
        if (s->len + n > STREAM_CAP)
            return ERR_TOOBIG;
        size_t cap = s->cap ? s->cap * 2 : 4096;
        while (cap < s->len + n)
            cap *= 2;
        if (cap > STREAM_CAP)
            cap = STREAM_CAP;
        char *t = realloc(s->t, cap);
        if (!t)
            return ERR_NOMEM;
        s->t = t;
        s->cap = cap;
    }
    memcpy(s->t + s->len, d, n);
    s->len += n;
    return ERR_OK;
}

/* Where the body of the block whose "-----BEGIN" is at abs offset at
 * starts, as secrets.c reads the header ("-----BEGIN " label "-----"):
 * an END before it does not close the block. 0 while the header is still
 * arriving; at + 10 for a header secrets.c would not take (any END then
 * closes it). */
static size_t pem_body(const guard_stream *s, size_t at)
{
    size_t end = s->base + s->len, i = at + 10;
    if (i >= end)
        return 0;
    if (ch(s, i) != ' ')
        return at + 10;
    size_t l = ++i;
    while (i < end && i - l < 48) {
        char c = ch(s, i);
        if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == ' '))
            break;
        i++;
    }
    if (i < end && ch(s, i) != '-')
        return at + 10;
    if (i + 5 > end)
        return 0; /* the label or its dashes are still arriving */
    return memcmp(ptr(s, i), "-----", 5) == 0 ? i + 5 : at + 10;
}

/* Where the block whose "-----END" is at e0 ends, as secrets.c reads its
 * END line: after the "-----" that closes the label, or 8 bytes on when the
 * line ends or 80 bytes pass first; 0 while that is not known yet. */
static size_t pem_trailer_end(const guard_stream *s, size_t e0)
{
    size_t end = s->base + s->len, j = e0 + 8;
    for (; j - e0 < 80; j++) {
        if (j >= end)
            return 0;
        if (ch(s, j) == '\n')
            return e0 + 8;
        if (j + 5 > end)
            return 0;
        if (memcmp(ptr(s, j), "-----", 5) == 0)
            return j + 5;
    }
    if (j + 5 > end) /* secrets.c still looks for the dashes where it stopped */
        return 0;
    return memcmp(ptr(s, j), "-----", 5) == 0 ? j + 5 : e0 + 8;
}

/* Remembers a finished block: a scan must not start inside it (secrets.c
 * reads a block whole, and skips the body of a certificate, so what a
 * scan that starts inside one finds differs from the whole text's). */
static void block_add(guard_stream *s, size_t start, size_t end)
{
    if (s->nblocks == STREAM_BLOCKS) {
        memmove(s->blocks, s->blocks + 1, (STREAM_BLOCKS - 1) * sizeof *s->blocks);
        s->nblocks--;
    }
    s->blocks[s->nblocks++] = (stream_span){ start, end };
}

/* Follows private key blocks through the text, each "-----" once, from
 * pem_seen on: pem_open is set from a "-----BEGIN" until the END after its
 * header has arrived with its whole END line (secrets.c runs a block from
 * its BEGIN to the next END, whatever is between, and a BEGIN inside a
 * block starts nothing). The boundary waits for an open block. */
static void track_pem(guard_stream *s)
{
    size_t end = s->base + s->len;
    for (;;) {
        if (s->pem_open && (s->pem_open - 1 < s->base || end - (s->pem_open - 1) > STREAM_PEM)) {
            s->pem_open = s->pem_body = s->pem_end = 0; /* gone or too long: stop waiting */
            continue;
        }
        if (s->pem_open && !s->pem_body && !(s->pem_body = pem_body(s, s->pem_open - 1)))
            return; /* the header is still arriving */
        if (s->pem_end) {
            size_t e = pem_trailer_end(s, s->pem_end - 1);
            if (!e)
                return;
            block_add(s, s->pem_open - 1, e);
            s->pem_open = s->pem_body = s->pem_end = 0;
        }
        size_t from = s->pem_seen > s->base ? s->pem_seen : s->base;
        const char *p = from + 5 <= end ? memmem(ptr(s, from), end - from, "-----", 5) : NULL;
        if (!p) {
            s->pem_seen = end > from + 4 ? end - 4 : from;
            return;
        }
        size_t at = s->base + (size_t)(p - s->t), rest = end - at;
        const char *want = s->pem_open ? "-----END" : "-----BEGIN";
        size_t wl = s->pem_open ? 8 : 10;
        if (rest < wl) {
            if (memcmp(p, want, rest) == 0) {
                s->pem_seen = at; /* maybe the marker, still arriving */
                return;
            }
            s->pem_seen = at + 1;
            continue;
        }
        if (memcmp(p, want, wl) != 0 || (s->pem_open && at < s->pem_body)) {
            s->pem_seen = at + 1;
            continue;
        }
        if (s->pem_open)
            s->pem_end = at + 1;
        else
            s->pem_open = at + 1;
        s->pem_seen = at + wl;
    }
}

static size_t cand_start(const guard_stream *s, size_t a, size_t i) { return a + s->q->cand[i].f.start; }
static size_t cand_end(const guard_stream *s, size_t a, size_t i)
{
    return a + s->q->cand[i].f.start + s->q->cand[i].f.len;
}

/* Spans by start, descending. */
static int order_cmp(const void *x, const void *y)
{
    const stream_span *a = x, *b = y;
    return a->s > b->s ? -1 : a->s < b->s;
}

/* Byte classes for runs, coarse to fine. A word: non-space bytes, where
 * the characters of the scripts written without spaces (3-byte UTF-8 with
 * a lead byte E3..ED: CJK, kana, Hangul) separate words as spaces do, as
 * they end addresses in pii.c; every other byte, invalid UTF-8 included,
 * is part of a word. Then a run of printable ASCII, then a run of ASCII
 * letters and digits. */
static bool cjk_at(const guard_stream *s, size_t lead)
{
    size_t end = s->base + s->len;
    unsigned char c = (unsigned char)ch(s, lead);
    return c >= 0xE3 && c <= 0xED && lead + 2 < end && ((unsigned char)ch(s, lead + 1) & 0xC0) == 0x80 &&
           ((unsigned char)ch(s, lead + 2) & 0xC0) == 0x80 && !(c == 0xED && (unsigned char)ch(s, lead + 1) > 0x9F);
}

static bool in_word(const guard_stream *s, size_t i)
{
    unsigned char c = (unsigned char)ch(s, i);
    if (c < 0x80)
        return !is_space((char)c);
    if (c >= 0xC0)
        return !cjk_at(s, i);
    for (size_t k = 1; k <= 2 && i - k + 1 > s->base; k++) /* a continuation byte: of which lead? */
        if (((unsigned char)ch(s, i - k) & 0xC0) != 0x80)
            return !cjk_at(s, i - k);
    return true;
}

static bool in_graph(const guard_stream *s, size_t i)
{
    char c = ch(s, i);
    return c > 0x20 && c < 0x7F;
}

static bool in_alnum(const guard_stream *s, size_t i)
{
    char c = ch(s, i);
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* A cut at pos moved back to the start of the run it splits (at_end: the
 * run ends at pos, the end of the text, and may go on): the word, or when
 * the word began more than STREAM_WORD bytes back, the printable ASCII run,
 * or else the letters and digits; pos when even those are too long. */
static size_t cut_back(const guard_stream *s, size_t pos, bool at_end)
{
    static bool (*const classes[])(const guard_stream *, size_t) = { in_word, in_graph, in_alnum };
    size_t end = s->base + s->len;
    for (size_t k = 0; k < countof(classes); k++) {
        bool (*in)(const guard_stream *, size_t) = classes[k];
        if (pos <= s->base || !in(s, pos - 1) || (!at_end && (pos >= end || !in(s, pos))))
            return pos; /* splits no run of this class, hence none of a finer one */
        size_t w = pos;
        while (w > s->base && pos - w < STREAM_WORD && in(s, w - 1))
            w--;
        if (w == s->base || !in(s, w - 1))
            return w;
    }
    return pos;
}

/* What may go out before looking at findings (see the file comment):
 * end - holdback moved back by the word, private key and placeholder
 * rules; never before `released`. */
static size_t pre_boundary(const guard_stream *s)
{
    size_t end = s->base + s->len;
    size_t b = end > s->holdback ? end - s->holdback : 0;
    if (b < s->base)
        b = s->base;
    /* never cut a word (a phrase or a spaced number may start with it),
     * and wait for the trailing word: it may still be growing */
    b = cut_back(s, b, false);
    b = MIN(b, cut_back(s, end, true));
    if (s->pem_open)
        b = MIN(b, s->pem_open - 1);
    if (s->restore) {
        size_t k = end;
        while (k > s->base && end - k <= GUARD_PH_MAX_NAME && ph_char(ch(s, k - 1)))
            k--;
        if (k > s->base && ch(s, k - 1) == '<')
            b = MIN(b, k - 1);
    }
    return b < s->released ? s->released : b;
}

/* Moves b back to the start of any finding of the scan (begun at a) that
 * crosses it: from the last start down, one pass. */
static err_code uncross(guard_stream *s, size_t a, size_t *b)
{
    size_t n = s->q->ncand;
    if (!n)
        return ERR_OK;
    if (n > s->caporder) {
        stream_span *o = realloc(s->order, n * sizeof *o);
        if (!o)
            return ERR_NOMEM;
        s->order = o;
        s->caporder = n;
    }
    for (size_t i = 0; i < n; i++)
        s->order[i] = (stream_span){ cand_start(s, a, i), cand_end(s, a, i) };
    if (n > 1)
        qsort(s->order, n, sizeof *s->order, order_cmp);
    for (size_t k = 0; k < n; k++)
        if (s->order[k].s < *b && s->order[k].e > *b)
            *b = s->order[k].s;
    if (*b < s->released)
        *b = s->released;
    return ERR_OK;
}

/* Scans, records and releases what can go out; final releases all. */
static err_code step(guard_stream *s, bool final, buf *out)
{
    guard_req *q = s->q;
    size_t end = s->base + s->len;
    if (s->released >= end)
        return ERR_OK;
    err_code e;
    size_t b = end;
    if (!final) {
        if (end - s->released <= s->holdback)
            return ERR_OK; /* all of it is held back anyway */
        if (s->scan)
            track_pem(s);
        b = pre_boundary(s);
        /* nothing could go out, or too little to be worth a scan */
        if (b <= s->released || (s->scan && b - s->released < MIN(STREAM_STEP, MAX(s->holdback, 1))))
            return ERR_OK;
    }
    size_t a = s->released;
    q->ncand = 0;
    if (s->scan) {
        a = s->released > STREAM_CTX ? s->released - STREAM_CTX : 0;
        if (a < s->base)
            a = s->base;
        for (size_t lim = STREAM_ALIGN; a > s->base && lim && !is_space(ch(s, a - 1)); lim--)
            a--;
        /* not inside a PEM block: from its BEGIN (blocks are disjoint) */
        if (final)
            track_pem(s);
        size_t keep = 0;
        for (size_t k = 0; k < s->nblocks; k++) {
            if (s->blocks[k].s < a && s->blocks[k].e > a)
                a = s->blocks[k].s > s->base ? s->blocks[k].s : s->base;
            if (s->blocks[k].e + STREAM_ALIGN > a) /* the others are behind every later scan's start */
                s->blocks[keep++] = s->blocks[k];
        }
        s->nblocks = keep;
        if ((e = guard_run_local(q, s->st, GR_ASSISTANT, 0, s->t + (a - s->base), end - a)) != ERR_OK)
            return e;
    }
    /* never split a UTF-8 sequence (text without spaces, such as CJK, is
     * cut anywhere): the caller re-encodes what goes out as JSON */
    for (int k = 0; !final && k < 3 && b > s->released && b < end && (ch(s, b) & 0xC0) == 0x80; k++)
        b--;
    if (!final && (e = uncross(s, a, &b)) != ERR_OK)
        return e;
    if (b <= s->released)
        return ERR_OK;

    size_t nsp = 0;
    for (size_t i = 0; i < q->ncand; i++) {
        size_t cs = cand_start(s, a, i), ce = cand_end(s, a, i);
        if (ce <= s->released || cs >= b)
            continue;
        if (cs < s->released)
            cs = s->released;
        if (ce > b)
            ce = b; /* only when final is false and the boundary was clamped: never */
        const guard_cand *c = &q->cand[i];
        const policy *pol = &q->g->v[c->policy];
        guard_finding f = c->f;
        f.start = (uint32_t)cs;
        f.len = (uint32_t)(ce - cs);
        /* a redaction is made here and now, even when the hit list is full */
        int hi = guard_hit_add(q, s->st, s->part, -1, c->policy, (guard_detector)c->det, &f, pol->info.action, true);
        if (pol->info.monitor)
            continue;
        if (pol->info.action == GA_BLOCK)
            s->blocked = true;
        else if (pol->info.action == GA_REDACT && f.len) {
            if (nsp == s->capsp) {
                size_t cap = s->capsp ? s->capsp * 2 : 16;
                guard_span *v = realloc(s->sp, cap * sizeof *v);
                if (!v)
                    return ERR_NOMEM;
                s->sp = v;
                s->capsp = cap;
            }
            s->sp[nsp++] = (guard_span){ .s = cs - s->base,
                                         .e = ce - s->base,
                                         .t = f.type,
                                         .restorable = pol->info.restore,
                                         .hit = hi >= 0 ? (uint32_t)hi : UINT32_MAX };
        }
    }
    guard_cand_lost_apply(q, s->st);
    if (q->overflow[s->st])
        s->blocked = true;
    if (s->blocked)
        return ERR_OK;
    e = guard_emit(q, s->t, s->released - s->base, b - s->base, s->sp, nsp, s->restore, out, NULL);
    if (e)
        return e;
    s->released = b;
    return ERR_OK;
}

err_code guard_stream_feed(guard_stream *s, const char *delta, size_t n, buf *out)
{
    if (!s || !out || (!delta && n))
        return ERR_INVAL;
    if (s->blocked || s->finished || !n)
        return ERR_OK;
    err_code e = append(s, delta, n);
    if (e)
        return e;
    if (!s->scan && !s->restore) { /* nothing to look for: straight through */
        e = buf_append(out, s->t + (s->released - s->base), s->base + s->len - s->released);
        if (!e)
            s->released = s->base + s->len;
        return e;
    }
    return step(s, false, out);
}

err_code guard_stream_finish(guard_stream *s, buf *out)
{
    if (!s || !out)
        return ERR_INVAL;
    if (s->finished)
        return ERR_OK;
    s->finished = true;
    err_code e = ERR_OK;
    if (!s->blocked)
        e = step(s, true, out);
    if (!e && s->scan) {
        guard_count_size(s->q, s->st, s->t, s->len);
        if (s->st == GS_OUTPUT)
            e = guard_keep_output(s->q, s->part, -1, s->t, s->len, s->slid);
    }
    if (!e)
        e = guard_stage_end(s->q, s->st);
    return e;
}
