/*
 * otlp.h - export of traces (and metrics) to an OpenTelemetry backend over
 * OTLP/HTTP with JSON bodies (POST ENDPOINT/v1/traces, ENDPOINT/v1/metrics).
 *
 * The exporter owns one thread. The trace writer hands it finished records
 * with otlp_exporter_submit, which never blocks: a bounded queue, and when
 * it is full the record is freed and counted as dropped. The thread sends a
 * batch when batch_size spans are waiting or interval_ms has passed, with
 * libcurl (blocking, in that thread only), the configured headers, and
 * exponential backoff on connection errors and 429/502/503/504 (honouring
 * Retry-After); after 5 tries the batch is dropped and counted. It never
 * touches the data plane.
 *
 * Threads: start/stop from one controlling thread; submit from one or more
 * producer threads; the counters from any thread.
 */
#ifndef GENAIOPS_OTLP_H
#define GENAIOPS_OTLP_H

#include "core/buf.h"
#include "core/config.h"
#include "core/err.h"
#include "observe/trace.h"

typedef struct otlp_exporter otlp_exporter;

/* Renders an OTLP JSON ExportMetricsServiceRequest into out (the metrics
 * module's metrics_render_otlp_json has this shape). */
typedef err_code (*otlp_metrics_render)(buf *out, const char *service_version);

/* Starts the exporter thread for o (o->endpoint must be an http:// or
 * https:// URL; zero sizes and times take the defaults 512 spans, 2000 ms,
 * 10000 traces, 10000 ms). Everything in o is copied. service_version goes
 * into the resource's service.version (NULL = GENAIOPS_VERSION). Returns
 * NULL with a message in err on a bad configuration or a failure to start. */
otlp_exporter *otlp_exporter_start(const cfg_otlp *o, const char *service_version, char *err, size_t errcap);

/* Queues rec for export and takes ownership of it: it is freed by the
 * exporter after sending, or at once (returning false, counted as dropped)
 * when the queue is full, the exporter is stopping, or e is NULL. Never
 * blocks beyond a mutex held for a pointer push. */
bool otlp_exporter_submit(otlp_exporter *e, trace_rec *rec);

/* When the configuration asked for metrics (cfg_otlp.metrics), the thread
 * calls render every interval_ms and POSTs the body to ENDPOINT/v1/metrics.
 * NULL turns metric export off. When this returns, the previous render is
 * not running and will not be called again: call it with NULL before
 * freeing anything render reads (e.g. gauges of the trace writer). Must not
 * be called from inside render. */
void otlp_exporter_set_metrics(otlp_exporter *e, otlp_metrics_render render);

/* Tuning (and tests): the first backoff delay (doubling up to 5 s) and the
 * number of tries per batch before it is dropped. Defaults 250 ms and 5.
 * Call right after start. */
void otlp_exporter_set_retry(otlp_exporter *e, long base_ms, int max_tries);

/* Stops taking records, sends what is queued within the configured
 * timeout_ms (what is left after it is dropped and counted), joins the
 * thread and frees everything. NULL is ignored. */
void otlp_exporter_stop(otlp_exporter *e);

/* Traces dropped (queue full, stopping, or given up after retries) and
 * traces delivered (a 2xx from the receiver), since start. */
uint64_t otlp_exporter_dropped(const otlp_exporter *e);
uint64_t otlp_exporter_exported(const otlp_exporter *e);

/* Appends the OTLP JSON ExportTraceServiceRequest for the n records to out:
 * one resource (service.name "genaiops", service.version) and one scope
 * holding every span of every record. A record without spans becomes one
 * root span. Records are read only. ERR_TOOBIG when out's maximum is
 * reached (out is then left as it was), ERR_NOMEM on allocation failure. */
err_code otlp_encode_traces(trace_rec *const *recs, size_t n, const char *service_version, buf *out);

#endif
