/*
 * stats.h - aggregates of the stored traces for dashboards (the console's
 * overview and guardrail pages): requests, errors, latency and time to
 * first token percentiles, tokens and cost per time bucket, overall and
 * by model, deployment or provider; guardrail checks and findings per
 * bucket by policy and detector, with the traces behind them
 * (docs/api.md, "Statistics").
 *
 *   GET /api/v1/stats/overview?from=&to=&bucket=&by=&model=&deployment=&provider=
 *   GET /api/v1/stats/guardrails?from=&to=&bucket=&policy=&detector=&stage=&verdict=
 *
 * The aggregation itself is store/stats.c; this is the HTTP side.
 */
#ifndef GENAIOPS_API_STATS_H
#define GENAIOPS_API_STATS_H

#include "http/server.h"

/* The routes under /api/v1/stats/ (the caller has checked the admin key). */
void api_stats(http_req *r, const char *store_url);

#endif
