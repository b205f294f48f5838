/*
 * evals.h - evaluation runs on the control plane, for the console and
 * scripts: the stored runs, one run with its results (failures first),
 * two runs compared result by result, and the leaderboard of a run with
 * several providers (docs/api.md, "Evaluations").
 *
 *   GET /api/v1/evals[?limit=N]
 *   GET /api/v1/evals/{id}[?results=false]
 *   GET /api/v1/evals/compare?base=A&current=B[&tolerance=T&alpha=A]
 *
 * Ids may be a unique prefix or "latest", as on the command line.
 */
#ifndef GENAIOPS_API_EVALS_H
#define GENAIOPS_API_EVALS_H

#include "http/server.h"

/* The routes under /api/v1/evals (the caller has checked the admin key). */
void api_evals(http_req *r, const char *store_url);

#endif
