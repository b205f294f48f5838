/*
 * writer.h - the trace writer: background threads that take finished
 * trace records from the gateway's workers and store them in batches.
 *
 * Each gateway worker thread has its own lock-free single-producer ring
 * (capacity queue_size / nworkers); trace_writer_submit() never blocks and
 * never takes a lock: when the worker's ring is full the record is freed
 * and counted as dropped. Behind the rings two threads form a pipeline: an
 * encoder drains the rings and renders each record's JSON, a store thread
 * writes each batch in one transaction on its own store connection, then
 * hands each record to the exporter (if one is set) or frees it. The
 * store thread also purges traces older than telemetry.retention_days, in
 * bounded chunks, at start and hourly. A failing store (disk full, I/O error) drops the batch, counts
 * it and keeps going. While the machine is busy (under 20% CPU to spare),
 * the two threads keep to telemetry.busy_cpu of it (see writer.c).
 * trace_writer_stop() drains everything queued first.
 */
#ifndef GENAIOPS_WRITER_H
#define GENAIOPS_WRITER_H

#include "core/config.h"
#include "observe/trace.h"
#include "store/store.h"

typedef struct trace_writer trace_writer;

/* Opens its own connection to store_url (migrating it if needed) and
 * starts the thread. t gives queue_size (split across nworkers rings, at
 * least 1 each) and retention_days; t is read only here. NULL with a
 * reason in err on failure (the store's own message when it cannot open). */
trace_writer *trace_writer_start(const char *store_url, const cfg_telemetry *t, int nworkers, char *err,
                                 size_t errcap);
/* Same with store options (e.g. max_bytes, a cap on the file's size); so
 * may be NULL. */
trace_writer *trace_writer_start_opts(const char *store_url, const store_opts *so, const cfg_telemetry *t,
                                      int nworkers, char *err, size_t errcap);

/* Queues rec from worker thread `worker` (0..nworkers-1; one thread per
 * index). Takes ownership of rec in every case. Wait-free: returns false
 * when rec was dropped (ring full, bad index, writer stopping), and the
 * drop is counted. */
bool trace_writer_submit(trace_writer *w, int worker, trace_rec *rec);

/* After each committed batch, every record is passed to submit(ud, rec),
 * which takes ownership (and must not block for long: it runs on the store
 * thread). Without an exporter the writer frees the records. Call it before
 * traffic starts, or at any time: the writer picks it up at its next batch. */
void trace_writer_set_exporter(trace_writer *w, bool (*submit)(void *ud, trace_rec *r), void *ud);

/* Stops taking records, stores everything already queued, commits, joins
 * the thread, closes the store and frees w. Call it after the workers have
 * stopped submitting (records submitted during or after stop are dropped).
 * NULL ok. */
void trace_writer_stop(trace_writer *w);

/* Counters for metrics; safe from any thread. */
uint64_t trace_writer_dropped(const trace_writer *w);  /* queue full or store failures */
uint64_t trace_writer_written(const trace_writer *w);  /* traces committed to the store */
size_t trace_writer_depth(const trace_writer *w);      /* traces waiting in the rings */
uint64_t trace_writer_purged(const trace_writer *w);   /* traces deleted by retention */
bool trace_writer_limited(const trace_writer *w);      /* the machine is busy: the writer keeps to telemetry.busy_cpu */

#endif
