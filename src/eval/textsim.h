/*
 * textsim.h - small text and vector helpers shared by the evaluators:
 * vector similarity (cosine, dot product, euclidean distance) for
 * embedding-based checks, and splitting text into sentences or lines for
 * the RAG metrics (context-relevance's units) and for anything else that
 * needs them (AVI's lexical dispersion, say).
 *
 * Nothing here allocates. The splitters hand out views into the caller's
 * text through a callback; the vector functions refuse (return false) rather
 * than produce NaN or infinity, so a caller never has to check for them.
 */
#ifndef GENAIOPS_TEXTSIM_H
#define GENAIOPS_TEXTSIM_H

#include "core/common.h"

/* Cosine similarity of a and b (n values each) into *out, in [-1, 1].
 * false when n is 0, a value is not finite, or either vector has zero norm. */
bool ts_cosine(const double *a, const double *b, size_t n, double *out);

/* Dot product of a and b into *out; false when n is 0 or the result is not finite. */
bool ts_dot(const double *a, const double *b, size_t n, double *out);

/* Euclidean distance between a and b into *out (>= 0); false when n is 0
 * or the result is not finite. */
bool ts_euclidean(const double *a, const double *b, size_t n, double *out);

/* Called once per piece; return false to stop early. The view points into
 * the text being split. */
typedef bool (*ts_piece_fn)(void *ud, sv piece);

/* Splits text into sentences: a sentence ends after a run of '.', '!', '?'
 * (and any closing quotes or brackets right after it) that is followed by
 * white space or the end of the text, and at every line break. Each piece
 * is trimmed of white space; empty pieces are skipped. Returns the number
 * of pieces handed to fn (counting the one that stopped it). fn may be NULL
 * to count only. */
size_t ts_sentences(sv text, ts_piece_fn fn, void *ud);

/* Splits text at line breaks (\n, \r\n, \r); pieces trimmed, empty lines
 * skipped. Returns the number of pieces, as ts_sentences does. */
size_t ts_lines(sv text, ts_piece_fn fn, void *ud);

/* Trims ASCII white space from both ends of s. */
sv ts_trim(sv s);

#endif
