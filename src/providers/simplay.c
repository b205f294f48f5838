/*
 * simplay.c - a uv_timer walks the plan's steps: each waits delay_ms, then
 * hands its bytes to on_data. A streamed plan's head goes out at once (as a
 * server sends 200 before the first token); a non-streamed one's with its
 * body. The handle is freed in its close callback (libuv's rule).
 */
#include <stdio.h>
#include <stdlib.h>
#include "providers/simplay.h"

struct sim_call {
    uv_timer_t timer;
    const sim_plan *plan;
    upstream_callbacks cb;
    void *ud;
    size_t next;           /* next step to deliver */
    bool head_sent;
    bool paused;
    bool finished;         /* on_done called or canceled */
};

static void on_closed(uv_handle_t *h) { free(h->data); }

static void finish(sim_call *c)
{
    c->finished = true;
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, on_closed);
}

static bool send_head(sim_call *c)
{
    if (c->head_sent)
        return true;
    c->head_sent = true;
    upstream_header h[2];
    size_t nh = 0;
    char ra[24];
    const char *ct = c->plan->content_type ? c->plan->content_type
                                           : (c->plan->stream ? "text/event-stream" : "application/json");
    h[nh++] = (upstream_header){ SV("content-type"), sv_from(ct) };
    if (c->plan->retry_after_s > 0) {
        snprintf(ra, sizeof ra, "%ld", c->plan->retry_after_s);
        h[nh++] = (upstream_header){ SV("retry-after"), sv_from(ra) };
    }
    int rc = c->cb.on_head ? c->cb.on_head(c->ud, c->plan->status, h, nh) : 0;
    if (c->finished) /* canceled from inside the callback */
        return false;
    if (rc != 0) {
        upstream_callbacks cb = c->cb;
        void *ud = c->ud;
        finish(c);
        cb.on_done(ud, ERR_CANCELED, "aborted by the caller");
        return false;
    }
    return true;
}

static void schedule(sim_call *c);

/* A step is due: the head first if it has not gone out, then the bytes. */
static void on_step(uv_timer_t *t)
{
    sim_call *c = t->data;
    const sim_plan *p = c->plan;
    if (c->finished || c->next >= p->nsteps)
        return;
    if (!send_head(c))
        return;
    const sim_step *s = &p->steps[c->next++];
    int rc = c->cb.on_data ? c->cb.on_data(c->ud, s->data, s->len) : UPSTREAM_CONTINUE;
    if (c->finished) /* canceled from inside the callback */
        return;
    if (rc == UPSTREAM_ABORT) {
        upstream_callbacks cb = c->cb;
        void *ud = c->ud;
        finish(c);
        cb.on_done(ud, ERR_CANCELED, "aborted by the caller");
        return;
    }
    if (rc == UPSTREAM_PAUSE) {
        c->paused = true;
        return;
    }
    schedule(c);
}

/* Arms the timer for the next step, or ends the call as planned. */
static void schedule(sim_call *c)
{
    const sim_plan *p = c->plan;
    if (c->next < p->nsteps) {
        long d = p->steps[c->next].delay_ms;
        uv_timer_start(&c->timer, on_step, (uint64_t)(d > 0 ? d : 0), 0);
        return;
    }
    if (p->end == SIM_END_HANG)
        return; /* nothing more, ever: the caller's timeout or cancel ends it */
    if (p->end == SIM_END_OK && !send_head(c))
        return;
    upstream_callbacks cb = c->cb;
    void *ud = c->ud;
    err_code e = p->end == SIM_END_BREAK ? ERR_UPSTREAM : ERR_OK;
    finish(c);
    cb.on_done(ud, e, e ? "connection closed by the simulator (simulated broken stream)" : NULL);
}

/* First tick: a streamed plan's head goes out at once, then the steps. */
static void on_start(uv_timer_t *t)
{
    sim_call *c = t->data;
    if (c->plan->stream && !send_head(c))
        return;
    schedule(c);
}

err_code simplay_start(uv_loop_t *loop, const sim_plan *plan, const upstream_callbacks *cb, void *ud,
                       sim_call **out)
{
    sim_call *c = calloc(1, sizeof *c);
    if (!c)
        return ERR_NOMEM;
    c->plan = plan;
    c->cb = *cb;
    c->ud = ud;
    uv_timer_init(loop, &c->timer);
    c->timer.data = c;
    uv_timer_start(&c->timer, on_start, 0, 0);
    *out = c;
    return ERR_OK;
}

void simplay_resume(sim_call *c)
{
    if (!c || c->finished || !c->paused)
        return;
    c->paused = false;
    schedule(c);
}

void simplay_cancel(sim_call *c)
{
    if (!c || c->finished)
        return;
    finish(c);
}
