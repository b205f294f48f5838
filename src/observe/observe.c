/*
 * observe.c - starts and stops the telemetry pipeline and adapts it to the
 * gateway's hooks:
 *
 *   worker thread: metrics_observe -> trace_writer_submit (lock-free ring)
 *   writer thread: batches into SQLite -> otlp_exporter_submit (if any)
 *   exporter thread: OTLP/HTTP batches -> frees
 */
#include <stdio.h>
#include <stdlib.h>
#include "core/log.h"
#include "observe/cost.h"
#include "observe/metrics.h"
#include "observe/observe.h"
#include "observe/otlp.h"
#include "observe/writer.h"

struct observe {
    const config *cfg;
    pricing *pricing;
    trace_writer *writer;
    otlp_exporter *exporter;
};

static bool hook_submit(void *ud, int worker, trace_rec *t)
{
    observe *o = ud;
    return trace_writer_submit(o->writer, worker, t);
}

static bool hook_price(void *ud, const cfg_model *m, const char *ptype, const char *model, const trace_rec *t,
                       double *usd)
{
    observe *o = ud;
    cost_usage u = { t->input_tokens, t->output_tokens, t->cache_read_tokens, t->cache_creation_tokens,
                     t->reasoning_tokens };
    return pricing_cost(o->pricing, m ? &m->pricing : NULL, ptype, model, &u, usd);
}

static void hook_observe(void *ud, int worker, const trace_rec *t) { metrics_observe(worker, t); }
static void hook_inflight(void *ud, int worker, int delta) { metrics_inflight(worker, delta); }

static bool to_exporter(void *ud, trace_rec *t) { return otlp_exporter_submit(ud, t); }

static double g_depth(void *ud) { return (double)trace_writer_depth(ud); }
static double g_dropped(void *ud) { return (double)trace_writer_dropped(ud); }
static double g_written(void *ud) { return (double)trace_writer_written(ud); }
static double g_limited(void *ud) { return trace_writer_limited(ud) ? 1 : 0; }
static double g_otlp_dropped(void *ud) { return (double)otlp_exporter_dropped(ud); }
static double g_otlp_exported(void *ud) { return (double)otlp_exporter_exported(ud); }

observe *observe_start(const config *cfg, int nworkers, char *err, size_t errcap)
{
    observe *o = calloc(1, sizeof *o);
    if (!o) {
        snprintf(err, errcap, "out of memory");
        return NULL;
    }
    o->cfg = cfg;
    const cfg_telemetry *tc = &cfg->telemetry;
    if (pricing_load(tc->pricing_file, &o->pricing, err, errcap) != ERR_OK)
        goto fail;
    if (metrics_init(nworkers) != ERR_OK) {
        snprintf(err, errcap, "cannot set up metrics");
        goto fail;
    }
    if (tc->traces) {
        o->writer = trace_writer_start(cfg->store_url ? cfg->store_url : "sqlite://./genaiops.db", tc, nworkers,
                                       err, errcap);
        if (!o->writer)
            goto fail;
        metrics_register_gauge("genaiops_trace_queue_depth", "Traces waiting for the trace writer.", g_depth, o->writer,
                               false);
        metrics_register_gauge("genaiops_traces_dropped_total", "Traces dropped because the writer queue was full or the store failed.",
                               g_dropped, o->writer, true);
        metrics_register_gauge("genaiops_traces_written_total", "Traces written to the store.", g_written, o->writer, true);
        metrics_register_gauge("genaiops_trace_writer_limited",
                               "1 while the machine is busy and the trace writer keeps to telemetry.busy_cpu.", g_limited,
                               o->writer, false);
    }
    if (tc->otlp.endpoint) {
        o->exporter = otlp_exporter_start(&tc->otlp, GENAIOPS_VERSION, err, errcap);
        if (!o->exporter)
            goto fail;
        if (tc->otlp.metrics)
            otlp_exporter_set_metrics(o->exporter, metrics_render_otlp_json);
        if (o->writer)
            trace_writer_set_exporter(o->writer, to_exporter, o->exporter);
        metrics_register_gauge("genaiops_otlp_traces_dropped_total", "Traces the OTLP exporter gave up on.",
                               g_otlp_dropped, o->exporter, true);
        metrics_register_gauge("genaiops_otlp_traces_exported_total", "Traces exported over OTLP.", g_otlp_exported,
                               o->exporter, true);
        log_info("exporting traces over OTLP/HTTP to %s", tc->otlp.endpoint);
    }
    log_info("pricing: %s", pricing_source(o->pricing));
    return o;
fail:
    observe_stop(o);
    return NULL;
}

void observe_hooks(observe *o, gw_observe *out)
{
    memset(out, 0, sizeof *out);
    out->ud = o;
    out->submit = o->writer ? hook_submit : NULL;
    out->price = hook_price;
    out->observe = o->cfg->telemetry.metrics ? hook_observe : NULL;
    out->inflight = o->cfg->telemetry.metrics ? hook_inflight : NULL;
}

void observe_stop(observe *o)
{
    if (!o)
        return;
    /* the exporter's metrics pushes read the writer's gauges: detach them
     * (waits for a render in progress) before the writer goes away */
    if (o->exporter)
        otlp_exporter_set_metrics(o->exporter, NULL);
    if (o->writer)
        trace_writer_stop(o->writer);   /* drains into the store and the exporter */
    if (o->exporter)
        otlp_exporter_stop(o->exporter);
    pricing_free(o->pricing);
    metrics_shutdown();
    free(o);
}
