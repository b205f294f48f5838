/*
 * assert_int.h - what the assertion module's files share and nobody else
 * uses: per-thread scratch memory, JavaScript-compatible text primitives
 * (whitespace, lower-casing, UTF-16 lengths), the regex wrapper, and the
 * text metrics (levenshtein, ROUGE-N, ROUGE-L, BLEU, token F1).
 *
 * Everything here is in assert_text.c. promptfoo runs on JavaScript, so
 * "whitespace" is what JS's \s matches, lower-casing is toLowerCase() for
 * the scripts docs/internals/assertions.md lists, and a string's length
 * counts UTF-16 code units (levenshtein) or code points (JSON Schema's
 * minLength) as the JS libraries promptfoo uses do.
 *
 * Scratch memory: each thread has a few growable byte buffers (at_buf) and
 * raw blocks (at_mem) that the checks reuse, so a check allocates nothing
 * once they have grown; at_scratch_trim() gives back blocks over 1 MiB.
 * A caller owns a slot for the duration of one call and must not hand it
 * to a helper that uses the same slot (the slot lists below say who uses
 * which).
 */
#ifndef GENAIOPS_EVAL_ASSERT_INT_H
#define GENAIOPS_EVAL_ASSERT_INT_H

#ifndef PCRE2_CODE_UNIT_WIDTH
#define PCRE2_CODE_UNIT_WIDTH 8
#endif
#include <pcre2.h>
#include "core/buf.h"
#include "core/common.h"

/* Byte buffer slots: assert.c uses RENDER..REASON, the metrics TMP, TOKA
 * and TOKB. */
enum {
    AT_B_RENDER, AT_B_ITEM, AT_B_LOWER_TEXT, AT_B_LOWER_VAL, AT_B_REASON, AT_B_TMP, AT_B_TOKA, AT_B_TOKB,
    AT_B__COUNT
};
/* Raw memory slots, used by the metrics only. */
enum { AT_M_TOKA, AT_M_TOKB, AT_M_HASHA, AT_M_HASHB, AT_M_ROW, AT_M_U16A, AT_M_U16B, AT_M__COUNT };

/* The largest a scratch buffer or block may grow (bytes). */
#define AT_SCRATCH_MAX (64u << 20)

/* The calling thread's buffer `slot`, emptied (buf_reset). NULL only for a
 * bad slot. Bounded by AT_SCRATCH_MAX. */
buf *at_buf(int slot);
/* The calling thread's raw block `slot`, at least n bytes (contents
 * undefined); NULL when n is over AT_SCRATCH_MAX or memory is out. */
void *at_mem(int slot, size_t n);
/* Frees the calling thread's scratch blocks and buffers larger than 1 MiB
 * (all of them when all is true). */
void at_scratch_trim(bool all);

/* ---- JavaScript-compatible text ------------------------------------------ */

/* Decodes one UTF-8 sequence at s[0..n) (n > 0) into *cp and returns its
 * length; an invalid or truncated sequence gives U+FFFD and length 1, as
 * a decoder that replaces errors does. */
size_t at_utf8_next(const char *s, size_t n, uint32_t *cp);
/* The byte length of the JS whitespace character (\s) at s, or 0. */
size_t at_space_len(const char *s, size_t n);
/* Appends the JS toLowerCase() of s to out (see the header comment for the
 * scripts covered; others are copied). ERR_OK, ERR_TOOBIG, ERR_NOMEM. */
err_code at_lower(sv s, buf *out);
/* Number of code points in s (invalid bytes count one each). */
size_t at_codepoints(sv s);
/* JS's trim(): s without leading and trailing JS whitespace. */
sv at_trim(sv s);
/* promptfoo's word count: the runs of non-whitespace in s. */
size_t at_word_count(sv s);

/* ---- regular expressions (PCRE2 standing in for JS RegExp) --------------- */

/* Compiles a JS-style pattern (UTF, \uXXXX escapes, $ only at the very
 * end, invalid UTF-8 in subjects tolerated) and JIT-compiles it when the
 * platform can. NULL on failure with msg set to "<PCRE2 error> at offset
 * N". The caller frees the code with pcre2_code_free. */
pcre2_code *at_regex_compile(const char *pat, size_t len, char *msg, size_t cap);
/* Searches s for re: 1 match, 0 no match, -1 error (msg says which: the
 * match limit, out of memory). No allocation after the thread's first
 * call. */
int at_regex_search(const pcre2_code *re, const char *s, size_t n, char *msg, size_t cap);

/* ---- text metrics ---------------------------------------------------------
 * Each returns 0 and the result, or -1 with msg set (input too long for
 * AT's bounds, out of scratch memory, or an input promptfoo's library
 * refuses, e.g. an empty text for ROUGE). Inputs are UTF-8 views. */

/* Levenshtein distance between a and b in UTF-16 code units (as
 * fastest-levenshtein counts), each at most max_units long. When limit is
 * not SIZE_MAX and the distance is over limit, *dist may be any value
 * over limit (the banded computation stops early). O(n*m) time, O(min)
 * memory. */
int at_levenshtein(sv a, sv b, size_t max_units, size_t limit, size_t *dist, char *msg, size_t cap);
/* ROUGE-N recall as js-rouge computes it (Penn Treebank tokens of the
 * lower-cased texts; distinct candidate n-grams found in the reference
 * over the number of reference n-grams). n is 1..4. */
int at_rouge_n(sv cand, sv ref, int n, double *score, char *msg, size_t cap);
/* ROUGE-L F1: longest common subsequence of the two token lists, F1 of
 * LCS/len(cand) and LCS/len(ref). Same tokens as at_rouge_n. */
int at_rouge_l(sv cand, sv ref, double *score, char *msg, size_t cap);
/* BLEU-4 as promptfoo's bleu assertion: lower-cased whitespace tokens,
 * clipped n-gram precisions (best reference per n), 1e-7 for a zero
 * precision, uniform weights renormalised over the orders the candidate
 * is long enough for, brevity penalty exp(1 - r/c) against the reference
 * closest in length (ties: the shorter). Blank references are skipped;
 * all blank gives 0. */
int at_bleu(sv cand, const sv *refs, size_t nrefs, double *score, char *msg, size_t cap);
/* SQuAD-style token F1: lower-case, drop punctuation and the articles a,
 * an, the; whitespace tokens; multiset overlap; both empty gives 1. */
int at_token_f1(sv cand, sv ref, double *score, char *msg, size_t cap);

#endif
