/*
 * store.h - the embedded store. For now it opens (creating if needed) the
 * SQLite database named by store.url, in WAL mode, and records the schema
 * version; the tables for traces, prompts and the rest arrive with the
 * features that need them (docs/internals/store.md).
 */
#ifndef GENAIOPS_STORE_H
#define GENAIOPS_STORE_H

#include "core/err.h"

typedef struct store store;

/* url: "sqlite://PATH". On error returns it and writes a reason to msg. */
err_code store_open(const char *url, store **out, char *msg, size_t msgcap);
void store_close(store *s);
const char *store_path(const store *s);

#endif
