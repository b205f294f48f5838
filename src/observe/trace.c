/*
 * trace.c - allocation of trace records and their ids. Ids come from a
 * per-thread xorshift generator seeded by getrandom(2), so making one costs
 * a few instructions and no system call.
 */
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/random.h>
#include <time.h>
#include "observe/trace.h"

static _Thread_local uint64_t rng;

static uint64_t next64(void)
{
    if (!rng) {
        if (getrandom(&rng, sizeof rng, 0) != sizeof rng)
            rng = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)&rng;
        rng |= 1;
    }
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void fill_id8(uint8_t id[8])
{
    uint64_t v = next64();
    memcpy(id, &v, 8);
}

static void fill_id16(uint8_t id[16])
{
    fill_id8(id);
    fill_id8(id + 8);
}

uint64_t trace_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t ns_of(const struct timespec *ts) { return (uint64_t)ts->tv_sec * 1000000000u + (uint64_t)ts->tv_nsec; }

/* The offset between the two clocks is read again once a second per thread
 * (so NTP's slewing is followed), not per request: the data plane takes one
 * monotonic reading per event and derives the wall time from it. */
uint64_t trace_unix_of_mono(uint64_t mono_ns)
{
    static _Thread_local uint64_t base_mono, offset;
    if (!base_mono || mono_ns - base_mono > 1000000000u) {
        struct timespec rt, mt;
        clock_gettime(CLOCK_REALTIME, &rt);
        clock_gettime(CLOCK_MONOTONIC, &mt);
        offset = ns_of(&rt) - ns_of(&mt);
        base_mono = mono_ns ? mono_ns : 1;
    }
    return mono_ns + offset;
}

static pthread_key_t spare_key;
static pthread_once_t spare_once = PTHREAD_ONCE_INIT;
static bool spare_ok;

static void spare_init(void) { spare_ok = pthread_key_create(&spare_key, free) == 0; }

trace_rec *trace_new(size_t extra)
{
    trace_rec *t = NULL;
    if (!extra) {
        pthread_once(&spare_once, spare_init);
        if (spare_ok && (t = pthread_getspecific(spare_key)) != NULL)
            pthread_setspecific(spare_key, NULL);
    }
    if (!t && !(t = malloc(sizeof *t + extra)))
        return NULL;
    /* only the fields before the spans: trace_add_span clears each span it
     * hands out, and the content area is written before it is read */
    memset(t, 0, offsetof(trace_rec, spans));
    if (extra)
        ((char *)(t + 1))[0] = '\0';
    /* time-ordered ids (as UUIDv7): 48 bits of unix milliseconds, then 80
     * random bits. Still valid W3C trace ids, and they make the store's
     * primary-key inserts land at the end of its B-trees. */
    fill_id16(t->trace_id);
    struct timespec now; /* the coarse clock is enough for milliseconds, and cheaper */
    clock_gettime(CLOCK_REALTIME_COARSE, &now);
    uint64_t ms = ns_of(&now) / 1000000u;
    for (int i = 0; i < 6; i++)
        t->trace_id[i] = (uint8_t)(ms >> (8 * (5 - i)));
    t->input_tokens = t->output_tokens = -1;
    t->cache_read_tokens = t->cache_creation_tokens = t->reasoning_tokens = -1;
    t->no_extra = extra == 0;
    return t;
}

void trace_free(trace_rec *t)
{
    if (t && t->no_extra && spare_ok && !pthread_getspecific(spare_key) && pthread_setspecific(spare_key, t) == 0)
        return;
    free(t);
}

span_rec *trace_add_span(trace_rec *t, span_kind kind, uint64_t start_ns)
{
    if (t->nspans >= TRACE_MAX_SPANS)
        return NULL;
    span_rec *s = &t->spans[t->nspans];
    memset(s, 0, sizeof *s);
    fill_id8(s->span_id);
    if (t->nspans > 0)
        memcpy(s->parent_id, t->spans[0].span_id, sizeof s->parent_id);
    s->kind = kind;
    s->start_ns = start_ns;
    t->nspans++;
    return s;
}

_Static_assert(offsetof(span_rec, guard_detector) == offsetof(span_rec, guard_policy) + 64 &&
                   offsetof(span_rec, guard_stage) == offsetof(span_rec, guard_detector) + 12 &&
                   offsetof(span_rec, guard_verdict) == offsetof(span_rec, guard_stage) + 8 &&
                   offsetof(span_rec, guard_mode) == offsetof(span_rec, guard_verdict) + 8 &&
                   offsetof(span_rec, guard_findings) == offsetof(span_rec, guard_mode) + 8,
               "trace_add_guard_span's widths are the fields'");

/* Five guardrail spans per request with the default policies: the labels
 * are copied at their fixed widths, and of the rest only what is read
 * (every reader stops at a string's NUL) is cleared. */
span_rec *trace_add_guard_span(trace_rec *t, uint64_t start_ns, const char *policy, const char *detector,
                               const char *stage, const char *verdict, const char *mode)
{
    if (t->nspans >= TRACE_MAX_SPANS || t->nspans < 1)
        return NULL;
    span_rec *s = &t->spans[t->nspans];
    memset(s, 0, offsetof(span_rec, guard_policy));
    fill_id8(s->span_id);
    memcpy(s->parent_id, t->spans[0].span_id, sizeof s->parent_id);
    s->kind = SPAN_GUARDRAIL;
    s->start_ns = start_ns;
    memcpy(s->guard_policy, policy, sizeof s->guard_policy);
    memcpy(s->guard_detector, detector, sizeof s->guard_detector);
    memcpy(s->guard_stage, stage, sizeof s->guard_stage);
    memcpy(s->guard_verdict, verdict, sizeof s->guard_verdict);
    memcpy(s->guard_mode, mode, sizeof s->guard_mode);
    s->guard_policy[sizeof s->guard_policy - 1] = '\0';
    s->guard_findings[0] = '\0';
    memset(s->guard_types, 0, sizeof s->guard_types);
    memset(s->guard_counts, 0, sizeof s->guard_counts);
    s->guard_key = 0;
    s->error_type[0] = '\0';
    t->nspans++;
    return s;
}

static void hex(const uint8_t *id, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[id[i] >> 4];
        out[2 * i + 1] = digits[id[i] & 15];
    }
    out[2 * n] = '\0';
}

void trace_id_hex(const uint8_t id[16], char out[33]) { hex(id, 16, out); }
void span_id_hex(const uint8_t id[8], char out[17]) { hex(id, 8, out); }
