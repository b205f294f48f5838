/*
 * served.h - the prompts the gateway serves: an immutable in-memory
 * snapshot of every prompt's labelled and latest versions, compiled, that
 * the workers read with no lock and no store round-trip, and a poller
 * thread that rebuilds it when the registry changes.
 *
 * How it works: the poller asks the store for its prompt revision every
 * prompts.poll_ms (one small query); when it moved, it reads every served
 * version in one transaction (prompt_served), compiles the templates,
 * builds a new snapshot and publishes it with one atomic pointer store.
 * Workers load the pointer, look up and render synchronously, and never
 * keep it past the current callback, so a replaced snapshot is freed after
 * a grace period (10 s) with no reference counting on the data plane. A
 * label move is therefore served within poll_ms plus the build time.
 *
 * Versions that are neither labelled nor the latest are not in the
 * snapshot: the gateway serves labels and latest (a pinned old version
 * needs a label, e.g. `pinned`).
 */
#ifndef GENAIOPS_SERVED_H
#define GENAIOPS_SERVED_H

#include <jansson.h>
#include "core/common.h"
#include "prompt/registry.h"
#include "prompt/template.h"

typedef struct served_msg {
    char *role;
    tpl *content;
    char *extra;                  /* the message's other members as JSON text ("\"name\":\"x\""), or NULL */
} served_msg;

typedef struct served_param {
    char *key;                    /* a chat completion field: temperature, tools, response_format ... */
    char *json;                   /* its value as compact JSON text */
    size_t key_len, json_len;
    bool is_num;                  /* the value is a number: num holds it (for the trace's parameters) */
    double num;
} served_param;

typedef struct served_prompt {
    char *name;
    int version;
    prompt_type type;
    tpl *text;                    /* text prompts */
    served_msg *msgs;             /* chat prompts */
    size_t nmsgs;
    char *model;                  /* config.model, or NULL */
    served_param *params;         /* config entries that are request fields (model excluded) */
    size_t nparams;
} served_prompt;

typedef struct prompt_server prompt_server;

/* Loads the first snapshot (a store that cannot be read yet is logged and
 * retried by the poller) and starts the poller. NULL with err on failure
 * to start the thread. */
prompt_server *prompt_server_start(const char *store_url, long poll_ms, char *err, size_t errcap);
void prompt_server_stop(prompt_server *ps);

/* The snapshot's entry for name with label (or version > 0, or latest when
 * label is NULL/"" and version is 0). NULL when not served; *why then says
 * "prompt_not_found", "label_not_found" or "version_not_found". The result
 * is valid until the caller returns to its event loop. */
const served_prompt *prompt_server_find(prompt_server *ps, const char *name, size_t nlen, const char *label,
                                        int version, const char **why);

/* The partial resolver for rendering sp's templates: a partial resolves to
 * the version of that prompt with the same label the parent was found by,
 * else its latest; only text prompts can be partials. */
typedef struct served_resolver {
    prompt_server *ps;
    const char *label;            /* the label the parent was looked up by, or NULL */
} served_resolver;
const tpl *served_resolve(void *ud, const char *name, size_t len);

/* The snapshot's revision (-1 before the first successful load). */
int64_t prompt_server_revision(prompt_server *ps);

#endif
