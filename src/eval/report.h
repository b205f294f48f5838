/*
 * report.h - the output files of an evaluation run, written as the records
 * arrive (json, jsonl, csv, JUnit xml, html, md), the record's JSON shape
 * that the store shares, and the summary table for a terminal.
 *
 * Every file is written to a temp file beside its target and renamed into
 * place when closed, so a reader never sees half a report and a failed run
 * leaves the previous file as it was. Formats whose beginning needs the
 * totals (xml, html, md) spool their records to unlinked temp files and
 * put the document together at close. Memory stays flat on any number of
 * records. See docs/internals/eval-stats.md.
 */
#ifndef GENAIOPS_EVAL_REPORT_H
#define GENAIOPS_EVAL_REPORT_H

#include <stdio.h>
#include "core/buf.h"
#include "eval/stats.h"

/* Rows of the html report (failures and errors first) and entries of the
 * md failed-tests list; what is left out is counted in a note. */
#define EV_REPORT_HTML_MAX_ROWS 1000
#define EV_REPORT_MD_MAX_FAILS 200
/* The largest a single record may be once formatted (ERR_TOOBIG past it). */
#define EV_REPORT_RECORD_MAX ((size_t)64 << 20)
/* JUnit keeps a spool file per prompt x provider column: at most this many. */
#define EV_REPORT_XML_MAX_COLUMNS 200

typedef struct ev_report ev_report;

typedef struct ev_report_meta {       /* what the run was; all borrowed, any may be NULL */
    const char *run_id, *description, *config_path, *started_at /* RFC 3339 */;
    const char *const *prompt_labels; size_t nprompts;
    const char *const *provider_labels; size_t nproviders;
} ev_report_meta;

/* Opens an output by its extension (case-insensitive): .json .jsonl .csv
 * .xml (JUnit) .html/.htm (self-contained: inline CSS, no script, no
 * network) .md. m is copied. Unknown extension, a directory that cannot
 * take the temp file, or too many columns for JUnit -> NULL and a message
 * in msg. */
ev_report *ev_report_open(const char *path, const ev_report_meta *m, char *msg, size_t msgcap);

/* Writes one record (nothing of r is kept). ERR_IO once any write has
 * failed (later calls too), ERR_TOOBIG for a record over
 * EV_REPORT_RECORD_MAX (skipped; the file stays well-formed). */
err_code ev_report_add(ev_report *rep, const ev_record *r);

/* Writes the summary (from ev_stats_summary; NULL is written as null or
 * left out) and moves the file into place atomically. Returns ERR_IO with
 * msg on any write failure (the target is then untouched and no temp file
 * is left). Frees rep in every case; rep may be NULL (ERR_INVAL). */
err_code ev_report_close(ev_report *rep, const json_t *summary, char *msg, size_t msgcap);

/* Removes the temp files and frees rep (NULL ok); the target is untouched. */
void ev_report_abort(ev_report *rep);

/* The summary table for a terminal, written to f: totals, pass rate with
 * its interval, pass@k, metrics, and a leaderboard (best pass rate first)
 * when there are several prompt x provider columns. Plain text, aligned,
 * control characters in labels shown as '?'. */
void ev_report_table(FILE *f, const json_t *summary, const ev_report_meta *m);

/* Appends the record as one line of compact JSON (no newline):
 * {test, repeat, prompt, provider (indexes), description, vars,
 *  prompt_text, output, error, verdict:"pass"|"fail"|"error", score,
 *  asserts:[{type ("not-" prefixed when negated), metric, weight, verdict,
 *  score, reason}], latency_ms, cost_usd, tokens_in, tokens_out, cached}.
 * NAN and -1 are null; invalid UTF-8 becomes U+FFFD. On error (ERR_TOOBIG,
 * ERR_NOMEM) b is as it was. */
err_code ev_record_write(buf *b, const ev_record *r);

/* The same record as a new jansson object (caller owns it); NULL on error. */
json_t *ev_record_json(const ev_record *r);

#endif
