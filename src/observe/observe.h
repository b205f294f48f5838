/*
 * observe.h - the observability runtime of `genaiops serve`: the pricing
 * table, the metrics registry, the trace writer (store) and the OTLP
 * exporter, started together and handed to the gateway as its gw_observe
 * hooks. Stopping drains them in order (writer, then exporter), so no trace
 * of a finished request is lost on a clean shutdown.
 */
#ifndef GENAIOPS_OBSERVE_H
#define GENAIOPS_OBSERVE_H

#include "core/config.h"
#include "gateway/gateway.h"

typedef struct observe observe;

/* Starts what cfg->telemetry asks for, for nworkers server workers. NULL
 * with a reason in err (a corrupt pricing file, an unwritable store...). */
observe *observe_start(const config *cfg, int nworkers, char *err, size_t errcap);
void observe_hooks(observe *o, gw_observe *out);
void observe_stop(observe *o);   /* flushes and frees; NULL ok */

#endif
