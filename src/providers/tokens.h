/*
 * tokens.h - a small, deterministic stand-in for a model tokenizer, used by
 * the simulator for usage counts and for cutting answers into streamed
 * pieces (and by anyone who needs a cheap, stable token estimate).
 *
 * It is NOT any real model's tokenizer. The rule, applied left to right:
 *   - a run of whitespace of up to 8 bytes is glued to the front of the
 *     piece that follows it (" world" is one piece); longer runs are cut
 *     into 8-byte whitespace-only pieces first;
 *   - a word (a run of ASCII letters and digits and of bytes >= 0x80) of L
 *     bytes is cut into ceil(L / 4) pieces of near-equal size, never inside
 *     a valid UTF-8 sequence (so a piece is at most 8 + 7 bytes);
 *   - every other byte (punctuation, symbols, control bytes) is one piece.
 * tokens_estimate() counts exactly the pieces tokens_split() produces, so a
 * streamed answer has as many content chunks as its usage says.
 */
#ifndef GENAIOPS_TOKENS_H
#define GENAIOPS_TOKENS_H

#include "core/common.h"

/* Number of pieces the rule above gives for text[0..len). 0 for empty text;
 * text may be NULL when len is 0. Never fails. */
long tokens_estimate(const char *text, size_t len);

/* Cuts text[0..len) into at most max pieces (views into text, which the
 * caller keeps alive) and returns how many were written to out. The pieces
 * concatenated are always exactly the text: when the text has more pieces
 * than max, the last one written holds all the rest. max == 0 writes
 * nothing and returns 0 (then use tokens_estimate to size out). */
size_t tokens_split(const char *text, size_t len, sv *out, size_t max);

/* Length in bytes of the first n pieces of text (the whole length when the
 * text has n pieces or fewer): cutting an answer at max_tokens. */
size_t tokens_prefix_len(const char *text, size_t len, long n);

#endif
