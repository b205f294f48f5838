/*
 * simplay.h - plays a simulator plan (simulator.h) on a libuv loop through
 * the same callbacks as a real upstream call (upstream.h), so the gateway
 * treats the in-process simulator exactly like a remote provider: timed
 * head, body steps, pause/resume for backpressure, cancel, and the planned
 * ending (done, broken connection, or never).
 *
 * The plan must stay valid until on_done or simplay_cancel. A sim_call
 * frees itself after on_done, or on simplay_cancel.
 */
#ifndef GENAIOPS_SIMPLAY_H
#define GENAIOPS_SIMPLAY_H

#include <uv.h>
#include "http/upstream.h"
#include "providers/simulator.h"

typedef struct sim_call sim_call;

/* Starts playing; callbacks come from the loop, never from inside this call. */
err_code simplay_start(uv_loop_t *loop, const sim_plan *plan, const upstream_callbacks *cb, void *ud,
                       sim_call **out);
void simplay_resume(sim_call *c);
void simplay_cancel(sim_call *c);

#endif
