/*
 * registry.h - the prompt registry on the store: prompts with path-like
 * names, immutable numbered versions, labels that point at versions, and
 * the record of every label move.
 *
 * A prompt is `text` (one template) or `chat` (a list of {role, content}
 * messages whose contents are templates), with a config object versioned
 * with it (model, parameters, tools, response_format, anything else the
 * team keeps there). Saving content whose hash equals the latest version's
 * creates no version. Version numbers come from one BEGIN IMMEDIATE
 * transaction per save, so concurrent savers (processes or threads) never
 * lose or duplicate a number.
 *
 * Labels: any name matching [a-z0-9][a-z0-9._-]{0,63}; `latest` is not
 * stored, it is always the highest version and cannot be moved. Moving a
 * label records who, when, from and to (prompt_label_moves); rollback moves
 * a label back to the version it pointed at before its last move. Labels in
 * the protected list (config prompts.protected_labels, default
 * [production]) move only when the caller says `admin`.
 *
 * Every change (a new version, a label move) bumps the store's prompt
 * revision (genaiops_meta key 'prompts.rev'), which the gateway polls to
 * reload what it serves.
 *
 * All calls take the store URL ("sqlite://PATH"), block on SQLite (run them
 * off the event loops), are thread-safe, and report failures in a
 * query_error (HTTP status, code, param, message), as the trace queries do.
 * Results are jansson trees the caller owns.
 *
 * The JSON of a version (prompt_get, prompt_save's result):
 *   {"name": "support/answer", "version": 3, "type": "chat",
 *    "template": "..."              (text prompts)
 *    "messages": [{"role": "system", "content": "..."}, ...]   (chat prompts)
 *    "config": {...}, "hash": "sha256:<64 hex>", "message": "..." | null,
 *    "author": "...", "created_ns": N, "created_at": "2026-11-21T10:00:00.000Z",
 *    "labels": ["latest", "production"], "variables": ["customer", ...]}
 */
#ifndef GENAIOPS_REGISTRY_H
#define GENAIOPS_REGISTRY_H

#include <jansson.h>
#include "core/common.h"
#include "core/err.h"
#include "store/query.h"

#define PROMPT_NAME_MAX 200
#define PROMPT_LABEL_MAX 64

typedef enum prompt_type { PROMPT_TEXT, PROMPT_CHAT } prompt_type;

/* A prompt to save. Either template (text) or messages (chat: a JSON array
 * of objects with string "role" and string "content"; other keys such as
 * "name" are kept) is set. config may be NULL ({}). Every template is
 * compiled (template.h) and a syntax error refuses the save (400,
 * code "template_error", the message with line and column and, for chat,
 * which message). */
typedef struct prompt_input {
    const char *name;
    prompt_type type;
    const char *template;
    const json_t *messages;
    const json_t *config;
    const char *message;          /* commit message, may be NULL */
    const char *author;           /* may be NULL: "unknown" */
    const char *const *labels;    /* labels to point at the saved (or unchanged latest) version */
    size_t nlabels;
    const char *source;           /* where it came from, for errors: "prompts/a.yaml:3" or NULL */
} prompt_input;

/* A reference: "name", "name@label", "name:version". */
typedef struct prompt_ref {
    char name[PROMPT_NAME_MAX + 1];
    char label[PROMPT_LABEL_MAX + 1];   /* "" when none */
    int version;                        /* 0 when none */
} prompt_ref;

/* Parses a reference; false with e (400, code "invalid_prompt_ref") on a bad
 * one. "name" alone means latest. */
bool prompt_ref_parse(const char *s, prompt_ref *ref, query_error *e);
/* Name and label syntax checks (400 naming what is wrong). Names: segments
 * of [A-Za-z0-9._-] joined by '/', no empty, "." or ".." segment, at most
 * PROMPT_NAME_MAX bytes, and the last segment is none of the words the
 * REST paths use after a name (versions, labels, history, diff, render,
 * rollback, run). */
bool prompt_name_valid(const char *name, query_error *e);
bool prompt_label_valid(const char *label, query_error *e);

/* Saves in one transaction: *out gets the version's JSON, *created whether
 * a new version was made. 400 on invalid input, 409 ("type_changed") when
 * a prompt changes type. */
err_code prompt_save(const char *url, const prompt_input *in, json_t **out, bool *created, query_error *e);
/* Saves n prompts in ONE transaction (all or none): a push. *out gets an
 * array of {"name", "version", "created"}. On a failure e names the input
 * (its source when set) and nothing is saved. */
err_code prompt_save_many(const char *url, const prompt_input *in, size_t n, json_t **out, query_error *e);

/* One version: by ref (label, version, or latest). 404 codes:
 * "prompt_not_found", "label_not_found", "version_not_found", each naming
 * what was asked. */
err_code prompt_get(const char *url, const prompt_ref *ref, json_t **out, query_error *e);
/* All prompts (name prefix filter, "" = all), sorted by name:
 * [{"name", "type", "latest_version", "labels": {"production": 2, ...},
 *   "updated_ns", "updated_at"}]. */
err_code prompt_list(const char *url, const char *prefix, json_t **out, query_error *e);
/* A prompt's versions, newest first, each the version JSON. */
err_code prompt_versions(const char *url, const char *name, json_t **out, query_error *e);

/* Points label at version (0 = latest) of name; who records the mover.
 * 403 ("protected_label") when the label is protected and !admin; 400 for
 * `latest`. *out: {"name", "label", "version", "previous": N | null}. */
err_code prompt_label_set(const char *url, const char *name, const char *label, int version, const char *who,
                          bool admin, const char *const *protected_labels, size_t nprotected, json_t **out,
                          query_error *e);
/* Moves label back to where it pointed before its last move (409
 * "nothing_to_roll_back" when it has no earlier version). Same *out. */
err_code prompt_rollback(const char *url, const char *name, const char *label, const char *who, bool admin,
                         const char *const *protected_labels, size_t nprotected, json_t **out, query_error *e);
/* The label moves of name (label "" = all), newest first:
 * [{"label", "from": N | null, "to": N, "who", "at_ns", "at", "reason":
 *   "set" | "rollback" | "push"}]. */
err_code prompt_history(const char *url, const char *name, const char *label, json_t **out, query_error *e);

/* The line diff between two versions of the same or different prompts:
 * *out = {"from": ref JSON, "to": ref JSON, "template": "<unified diff>",
 *  "config": "<unified diff of the configs as pretty JSON>", "changed": bool}.
 * For chat prompts the template side is the messages rendered as
 * "[role]\ncontent" blocks. */
err_code prompt_diff(const char *url, const prompt_ref *from, const prompt_ref *to, json_t **out, query_error *e);

/* The store's prompt revision (0 when no prompt was ever saved), and every
 * labelled or latest version of every prompt in one read transaction, for
 * the gateway's snapshot: [{"name", "version", "type", "template" |
 * "messages", "config", "labels": [...]}] (each version once, with all its
 * labels including "latest"). */
err_code prompt_revision(const char *url, int64_t *rev, query_error *e);
err_code prompt_served(const char *url, int64_t *rev, json_t **out, query_error *e);

#endif
