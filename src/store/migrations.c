/*
 * migrations.c - the numbered schema steps of the SQLite store.
 *
 * The schema version of a database file is SQLite's `PRAGMA user_version`.
 * Step N brings a database from version N-1 to version N; store.c applies
 * each pending step in its own transaction (the SQL of the step, then the
 * new user_version, then COMMIT), so a crash or a failure leaves the file at
 * the last version that completed. Steps are append-only: once released, a
 * step's SQL never changes; a fix is a new step.
 *
 * Version 1 is the meta table the gateway core created. Version 2 is the
 * observability schema (traces, spans, scores, score configs) shared with
 * the query module (src/store/query.c); version 3 moves spans into their
 * trace row; version 4 is the prompt registry (src/prompt/registry.c) -
 * see docs/internals/store.md.
 */
#include "store/store.h"

static const store_migration migrations[] = {
    { 1, "meta table",
      "CREATE TABLE IF NOT EXISTS genaiops_meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);" },
    { 2, "traces, spans, scores and score configs",
      "CREATE TABLE traces (\n"
      "  trace_id TEXT PRIMARY KEY,\n"
      "  request_id TEXT, start_ns INTEGER NOT NULL, end_ns INTEGER NOT NULL, duration_ms REAL NOT NULL,\n"
      "  operation TEXT, endpoint TEXT, provider TEXT, provider_type TEXT,\n"
      "  request_model TEXT, response_model TEXT, response_id TEXT, finish_reasons TEXT,\n"
      "  deployment TEXT, api_key TEXT, prompt_name TEXT, prompt_version INTEGER,\n"
      "  status INTEGER NOT NULL, error_type TEXT, stream INTEGER NOT NULL,\n"
      "  input_tokens INTEGER, output_tokens INTEGER, cache_read_tokens INTEGER,\n"
      "  cache_creation_tokens INTEGER, reasoning_tokens INTEGER,\n"
      "  cost_usd REAL, ttft_ms REAL, overhead_us INTEGER, attempts INTEGER,\n"
      "  params TEXT,\n"
      "  input_messages TEXT, output_messages TEXT, content_redacted INTEGER NOT NULL DEFAULT 0,\n"
      "  content_truncated INTEGER NOT NULL DEFAULT 0);\n"
      "CREATE INDEX traces_start ON traces(start_ns);\n"
      "CREATE INDEX traces_model ON traces(request_model, start_ns);\n"
      "CREATE INDEX traces_provider ON traces(provider, start_ns);\n"
      "CREATE INDEX traces_status ON traces(status, start_ns);\n"
      "CREATE INDEX traces_deployment ON traces(deployment, start_ns);\n"
      "CREATE TABLE spans (trace_id TEXT NOT NULL, span_id TEXT NOT NULL, parent_id TEXT,\n"
      "  kind TEXT NOT NULL, name TEXT NOT NULL, start_ns INTEGER NOT NULL, end_ns INTEGER NOT NULL,\n"
      "  attributes TEXT NOT NULL,\n"
      "  PRIMARY KEY (trace_id, span_id));\n"
      "CREATE TABLE score_configs (name TEXT PRIMARY KEY, data_type TEXT NOT NULL\n"
      "  CHECK (data_type IN ('numeric','categorical','boolean')),\n"
      "  min_value REAL, max_value REAL, categories TEXT, description TEXT, created_ns INTEGER NOT NULL);\n"
      "CREATE TABLE scores (id TEXT PRIMARY KEY, trace_id TEXT NOT NULL, name TEXT NOT NULL,\n"
      "  data_type TEXT NOT NULL, value_num REAL, value_str TEXT, comment TEXT,\n"
      "  source TEXT NOT NULL CHECK (source IN ('human','model','code')), created_ns INTEGER NOT NULL);\n"
      "CREATE INDEX scores_trace ON scores(trace_id);\n" },
    /* A trace's spans are always written and read together: one JSON array
     * in its row costs one B-tree insert where separate rows cost two per
     * span (the row and its key), which halves the writer's work. The view
     * keeps `spans` queryable as rows, for the query code and for SQL users. */
    { 3, "spans inside their trace row; spans becomes a view",
      "ALTER TABLE traces ADD COLUMN spans TEXT;\n"
      "UPDATE traces SET spans = (SELECT json_group_array(json_object('span_id', s.span_id,\n"
      "  'parent_id', s.parent_id, 'kind', s.kind, 'name', s.name, 'start_ns', s.start_ns,\n"
      "  'end_ns', s.end_ns, 'attributes', json(s.attributes)))\n"
      "  FROM spans s WHERE s.trace_id = traces.trace_id);\n"
      "DROP TABLE spans;\n"
      "CREATE VIEW spans (trace_id, span_id, parent_id, kind, name, start_ns, end_ns, attributes) AS\n"
      "  SELECT t.trace_id, json_extract(s.value, '$.span_id'), json_extract(s.value, '$.parent_id'),\n"
      "    json_extract(s.value, '$.kind'), json_extract(s.value, '$.name'),\n"
      "    json_extract(s.value, '$.start_ns'), json_extract(s.value, '$.end_ns'),\n"
      "    json_extract(s.value, '$.attributes')\n"
      "  FROM traces t, json_each(t.spans) s;\n" },
    /* Issue #4's prompt registry (src/prompt/registry.c, docs/internals/
     * prompts.md): prompts, their immutable versions, the labels that point
     * at versions, and the record of every label move. */
    { 4, "prompt registry: prompts, versions, labels, label moves",
      "CREATE TABLE prompts (name TEXT PRIMARY KEY, type TEXT NOT NULL CHECK (type IN ('text','chat')),\n"
      "  latest INTEGER NOT NULL, created_ns INTEGER NOT NULL, updated_ns INTEGER NOT NULL);\n"
      "CREATE TABLE prompt_versions (name TEXT NOT NULL, version INTEGER NOT NULL,\n"
      "  type TEXT NOT NULL, template TEXT NOT NULL,\n"
      "  config TEXT NOT NULL,\n"
      "  hash TEXT NOT NULL,\n"
      "  message TEXT, author TEXT NOT NULL, created_ns INTEGER NOT NULL,\n"
      "  PRIMARY KEY (name, version));\n"
      "CREATE TABLE prompt_labels (name TEXT NOT NULL, label TEXT NOT NULL, version INTEGER NOT NULL,\n"
      "  updated_ns INTEGER NOT NULL, updated_by TEXT NOT NULL, PRIMARY KEY (name, label));\n"
      "CREATE TABLE prompt_label_moves (id INTEGER PRIMARY KEY, name TEXT NOT NULL, label TEXT NOT NULL,\n"
      "  from_version INTEGER, to_version INTEGER NOT NULL, who TEXT NOT NULL, at_ns INTEGER NOT NULL,\n"
      "  reason TEXT NOT NULL CHECK (reason IN ('set','rollback','push')));\n"
      "CREATE INDEX prompt_label_moves_name ON prompt_label_moves(name, label, id);\n" },
    /* Issue #5's stored evaluation runs (src/eval/evstore.c, docs/internals/
     * eval.md): one row per run with its summary, one row per result (a test
     * x prompt x provider x repeat) with the record as JSON; stored datasets
     * (src/eval/dataset.c): immutable numbered versions of test cases, one
     * row per test case. */
    { 5, "evaluation runs and their results; datasets and their versions",
      "CREATE TABLE eval_runs (id TEXT PRIMARY KEY, created_ns INTEGER NOT NULL,\n"
      "  status TEXT NOT NULL, description TEXT, suite TEXT, meta TEXT NOT NULL, summary TEXT,\n"
      "  records INTEGER NOT NULL DEFAULT 0, passed INTEGER, failed INTEGER, errors INTEGER);\n"
      "CREATE INDEX eval_runs_created ON eval_runs(created_ns);\n"
      "CREATE TABLE eval_results (run_id TEXT NOT NULL, seq INTEGER NOT NULL, test INTEGER NOT NULL,\n"
      "  repeat INTEGER NOT NULL, prompt INTEGER NOT NULL, provider INTEGER NOT NULL,\n"
      "  verdict TEXT NOT NULL CHECK (verdict IN ('pass','fail','error')), score REAL,\n"
      "  record TEXT NOT NULL, PRIMARY KEY (run_id, seq)) WITHOUT ROWID;\n"
      "CREATE TABLE datasets (name TEXT PRIMARY KEY, latest INTEGER NOT NULL,\n"
      "  created_ns INTEGER NOT NULL, updated_ns INTEGER NOT NULL);\n"
      "CREATE TABLE dataset_versions (name TEXT NOT NULL, version INTEGER NOT NULL,\n"
      "  rows INTEGER NOT NULL, hash TEXT NOT NULL, message TEXT, author TEXT NOT NULL,\n"
      "  source TEXT, created_ns INTEGER NOT NULL, PRIMARY KEY (name, version));\n"
      "CREATE TABLE dataset_rows (name TEXT NOT NULL, version INTEGER NOT NULL, idx INTEGER NOT NULL,\n"
      "  row TEXT NOT NULL, PRIMARY KEY (name, version, idx)) WITHOUT ROWID;\n" },
};

/* The steps in order; *n gets their number, which is also the latest
 * version this binary knows. The table is static. */
const store_migration *store_migrations(size_t *n)
{
    *n = countof(migrations);
    return migrations;
}

int store_latest_version(void) { return (int)countof(migrations); }
