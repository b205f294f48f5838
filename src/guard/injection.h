/*
 * injection.h - the prompt injection and jailbreak detector: a curated,
 * documented library of phrase rules, each with a score, matched over a
 * normalised word stream in one pass; the scan's score combines the rules
 * that fired and a threshold decides.
 *
 * Normalisation (done on the fly, nothing is copied): ASCII case is folded;
 * Cyrillic and Greek look-alikes, fullwidth forms and Latin-1 accented
 * letters map to their ASCII letter; zero-width characters, soft hyphens
 * and apostrophes inside a word are dropped ("ig\u200Bnore", "don't" ->
 * "dont"); leetspeak digits and '@' '$' inside a word that also has a
 * letter read as letters ("1gn0r3" -> "ignore"); every other punctuation
 * and whitespace run separates words. Base64 blobs (20+ characters) are
 * decoded and the result is scanned again (one level deep), a finding
 * covering the blob. Chat-template tokens ("<|im_start|>", "[INST]",
 * "<<SYS>>") and hidden HTML comments are found by small matchers started
 * by their first byte.
 *
 * A rule is a sequence of steps; each step is a set of words, and a step
 * may follow the previous one after at most `gap` other words (sentence
 * ends count as several words, so rules rarely span sentences). Words
 * outside the rules' vocabulary are never stored, so prose costs a byte
 * class lookup per byte and a hash probe per word.
 *
 * The score of a scan is 1 - prod(1 - s_r) over the rules r that fired,
 * taking each rule's highest finding once (a rule repeated ten times does
 * not add up). Findings (type GT_INJECTION, the rule's name, its score)
 * cover the matched words in the original text. docs/internals/
 * guard-detectors.md lists every rule, what it catches and what it misses.
 *
 * Thread-safety and ownership as in detect.h: the rule tables are built
 * once (pthread_once) and read-only afterwards; the text is only read.
 */
#ifndef GENAIOPS_GUARD_INJECTION_H
#define GENAIOPS_GUARD_INJECTION_H

#include "guard/detect.h"

#define GUARD_INJECTION_THRESHOLD 0.5f /* default: flag at or above */

/* Flags for guard_scan_injection. */
#define GUARD_INJ_NO_BASE64 0x1u /* do not decode base64 blobs */
#define GUARD_INJ_NO_MARKUP 0x2u /* skip chat-template and HTML comment matchers */

/* Scans text for injection and jailbreak phrasing, appends findings to out
 * and, when score is not NULL, sets *score to the combined score (0 when
 * nothing fired). ERR_OK, or ERR_NOMEM when the findings list could not
 * grow (the score is still set). Findings are in text order per rule but
 * not sorted overall; call guard_findings_sort if needed. */
err_code guard_scan_injection(const char *text, size_t len, unsigned flags, guard_findings *out, float *score);

/* Combined score of the GT_INJECTION findings in f[from..f->n): the rule
 * that scan would report for them. For callers that scan several texts
 * (messages) into one list and need the score of one part. */
float guard_injection_score(const guard_findings *f, size_t from);

/* The rule library, for documentation and `guard test`: rule i's name,
 * score and an example it catches. Returns false past the end. */
bool guard_injection_rule(size_t i, const char **name, float *score, const char **example);

#endif
