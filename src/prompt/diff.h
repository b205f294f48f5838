/*
 * diff.h - a line diff for prompt versions, printed as a unified diff
 * (`--- a`, `+++ b`, `@@ -l,n +l,n @@` hunks with context lines), readable
 * in a terminal. Myers' O(ND) algorithm over lines, bounded: inputs over
 * DIFF_MAX_LINES lines, or an edit distance over DIFF_MAX_EDITS, fall back
 * to "replace everything" (still a correct diff, just not minimal).
 */
#ifndef GENAIOPS_DIFF_H
#define GENAIOPS_DIFF_H

#include "core/buf.h"
#include "core/common.h"
#include "core/err.h"

#define DIFF_MAX_LINES 100000
#define DIFF_MAX_EDITS 20000

/* Appends the unified diff of a -> b (context lines of context around each
 * change) to out, with the header lines naming a_name and b_name; nothing
 * at all when the texts are equal. A last line without '\n' is marked
 * "\ No newline at end of file" as diff(1) does. *changed (may be NULL)
 * says whether they differ. ERR_NOMEM / ERR_TOOBIG from out. */
err_code diff_unified(const char *a, size_t alen, const char *b, size_t blen, const char *a_name,
                      const char *b_name, int context, buf *out, bool *changed);

#endif
