/*
 * metrics.h - the gateway's metrics: the OpenTelemetry GenAI client metrics
 * (token usage, operation duration, time to first chunk) and genaiops' own
 * (requests, upstream errors and retries, in-flight requests, overhead,
 * cost), rendered for a Prometheus scrape (GET /metrics, text format 0.0.4)
 * or as an OTLP/HTTP JSON metrics request body.
 *
 * Recording is lock-free: each worker thread owns one shard of plain
 * counters that only it writes; a scrape sums the shards with relaxed
 * atomic loads. Label sets are interned in bounded per-metric tables: after
 * METRICS_FOLD_AT distinct label sets a metric folds new ones into
 * model="other", so a client that invents model names cannot grow memory.
 *
 * Threads: metrics_init before the workers start (and not while they run);
 * metrics_observe / metrics_inflight from worker `worker` only (an index
 * outside [0, nworkers) goes to a shared shard behind a mutex); rendering
 * and gauge registration from any thread.
 */
#ifndef GENAIOPS_METRICS_H
#define GENAIOPS_METRICS_H

#include "core/buf.h"
#include "core/common.h"
#include "core/err.h"
#include "observe/trace.h"

#define METRICS_MAX_SERIES 512   /* label sets per metric, the folded ones included */
#define METRICS_FOLD_AT 400      /* label sets per metric before model="other" */
#define METRICS_MAX_GAUGES 32    /* registered gauges/counters */

/* Sets up (or resets: all values and registered gauges are dropped) the
 * metrics for nworkers worker shards. ERR_NOMEM (logged) when the shards
 * cannot be allocated: metrics stay off (recording is a no-op, rendering
 * gives nothing). */
err_code metrics_init(int nworkers);
/* Frees everything metrics_init made; recording and rendering after it are
 * no-ops (rendering gives an empty body). */
void metrics_shutdown(void);

/* Records one finished request from its trace (read only; the caller keeps
 * ownership of t). Call on worker thread `worker`. */
void metrics_observe(int worker, const trace_rec *t);
/* genaiops_inflight_requests: +1 when a request starts, -1 when it ends. */
void metrics_inflight(int worker, int delta);

/* Registers a value owned by another module, read at scrape time by
 * read(ud) on the scraping thread (so it must be thread-safe). name must be
 * a valid Prometheus name ([a-zA-Z_:][a-zA-Z0-9_:]*, counters should end in
 * _total); help is copied. counter selects TYPE counter, else gauge.
 * Invalid names, a full table or a duplicate name are logged and ignored. */
void metrics_register_gauge(const char *name, const char *help, double (*read)(void *), void *ud, bool counter);

/* Appends the Prometheus text exposition (format 0.0.4) of every metric to
 * out. ERR_TOOBIG when out's maximum is reached (out then holds a prefix).
 * A few KiB in practice; with every metric at METRICS_MAX_SERIES label sets
 * it approaches 8 MiB, so give out a maximum of 8 MiB or more. */
err_code metrics_render_prometheus(buf *out);
/* Appends an OTLP/HTTP JSON ExportMetricsServiceRequest (cumulative
 * temporality, OTel metric and attribute names) to out. ERR_TOOBIG as above,
 * ERR_NOMEM on allocation failure. */
err_code metrics_render_otlp_json(buf *out, const char *service_version);

#endif
