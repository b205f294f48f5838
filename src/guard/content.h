/*
 * content.h - the content guardrails that are not pattern libraries:
 * system prompt leakage, deny/allow lists of words and regexes, topic
 * restriction, size limits, JSON Schema validity of an answer, and the
 * parsing of a Llama Guard classifier's verdict.
 *
 * Like detect.h: findings are a type and a span (never a copy of the
 * text), scans accept any bytes (invalid UTF-8 included) and never read
 * outside [text, text + len). Objects built from configuration (a leak
 * index, a list, a topic set, a harm policy) are built once, then
 * read-only: any number of threads may scan with one at the same time.
 * Each `_new` has a `_free`; a scan never takes ownership of anything.
 */
#ifndef GENAIOPS_GUARD_CONTENT_H
#define GENAIOPS_GUARD_CONTENT_H

#include <jansson.h>
#include "guard/detect.h"

struct jschema;

/* ------------------------------------------------------------------ */
/* System prompt leakage (OWASP LLM07): does the answer reproduce a long
 * stretch of the system prompt? Both texts are cut into words (runs of
 * ASCII letters and digits and of non-ASCII bytes; ASCII case folded;
 * punctuation and spacing ignored). The index holds the prompt's 4-word
 * shingles; a scan finds every run of the answer that matches the prompt
 * word for word and reports the longest one and the share of the prompt's
 * words that some run of 4+ words reproduces (coverage). */

#define GUARD_LEAK_MIN_RUN 8          /* default: 8 consecutive words leak */
#define GUARD_LEAK_MIN_COVERAGE 0.5f  /* default: or half of the prompt */
#define GUARD_LEAK_SHINGLE 4          /* runs shorter than this are not counted */
#define GUARD_LEAK_MAX_WORDS 65536    /* words of the prompt indexed (the rest are ignored) */

typedef struct guard_leak_index guard_leak_index;

/* Indexes a system prompt (the bytes are not kept). ERR_OK with *out set
 * (also for an empty prompt, which never leaks), ERR_NOMEM. */
err_code guard_leak_index_new(const char *prompt, size_t len, guard_leak_index **out);
void guard_leak_index_free(guard_leak_index *ix); /* NULL ok */

typedef struct guard_leak_result {
    uint32_t prompt_words;  /* words in the indexed prompt */
    uint32_t longest_run;   /* longest run of the answer found in the prompt, in words */
    size_t run_start, run_len; /* its bytes in the answer (0, 0 when none) */
    float coverage;         /* share of the prompt's words reproduced by runs of 4+ words */
    float score;            /* max(coverage, longest_run / (2 * min_run)), at most 1 */
    bool leaked;            /* longest_run >= min_run, or coverage >= min_coverage with a run of 4+ */
} guard_leak_result;

/* Compares an answer with the indexed prompt. min_run 0 means
 * GUARD_LEAK_MIN_RUN, min_coverage <= 0 means GUARD_LEAK_MIN_COVERAGE.
 * When leaked, appends a GT_LEAKAGE finding over the longest run (rule
 * "prompt_run" or "prompt_coverage"). res may be NULL. ERR_OK, ERR_NOMEM
 * (the coverage bitmap is allocated per call: prompt_words / 8 bytes). */
err_code guard_scan_leakage(const guard_leak_index *ix, const char *answer, size_t len, uint32_t min_run,
                            float min_coverage, guard_leak_result *res, guard_findings *out);

/* ------------------------------------------------------------------ */
/* Deny and allow lists. A word entry matches whole words, case-insensitive
 * for ASCII, Latin-1, Latin Extended-A, Greek and Cyrillic letters (no
 * accent folding: "café" is not "cafe"); spaces in an entry match any run
 * of whitespace ("credit card" matches "Credit\n card"). An entry must
 * start and end with a letter or digit (use a regex otherwise). A regex
 * entry is PCRE2 syntax, compiled once with UTF and invalid-UTF support
 * (and JIT when available), matched as written (use (?i) for caseless).
 *
 * Matching has hard limits so that a pathological pattern cannot hang a
 * worker: GUARD_LIST_MATCH_LIMIT backtracking steps and
 * GUARD_LIST_DEPTH_LIMIT nesting per start position, start positions tried
 * in windows of GUARD_LIST_WINDOW, and a wall-clock budget per scan
 * (guard_list_set_budget) checked between windows.
 *
 * A deny match is a GT_DENIED finding (rule "deny_word" or "deny_regex",
 * score 1) unless it lies inside an allow match: allow entries only exempt,
 * they never produce findings. */

#define GUARD_LIST_MAX_ENTRIES 4096
#define GUARD_LIST_MAX_TERM 256         /* bytes in a word entry */
#define GUARD_LIST_MAX_PATTERN 4096     /* bytes in a regex entry */
#define GUARD_LIST_MATCH_LIMIT 10000
#define GUARD_LIST_DEPTH_LIMIT 2000
#define GUARD_LIST_WINDOW 1024
#define GUARD_LIST_BUDGET_MS 50

typedef struct guard_list guard_list;

guard_list *guard_list_new(void); /* NULL on out of memory */
void guard_list_free(guard_list *l); /* NULL ok */

/* Adds a word or phrase. ERR_INVAL (empty, does not start and end with a
 * letter or digit, invalid UTF-8), ERR_TOOBIG (over GUARD_LIST_MAX_TERM,
 * or the list is full), ERR_NOMEM. The term is copied. */
err_code guard_list_add_word(guard_list *l, const char *term, size_t len, bool allow);

/* Compiles and adds a regex. ERR_PARSE with msg ("missing closing
 * parenthesis at offset 4") when it does not compile, ERR_TOOBIG, ERR_NOMEM. */
err_code guard_list_add_regex(guard_list *l, const char *pattern, size_t len, bool allow, char *msg, size_t cap);

/* Wall-clock budget for one guard_scan_list call (0 = GUARD_LIST_BUDGET_MS). */
void guard_list_set_budget(guard_list *l, unsigned ms);

size_t guard_list_count(const guard_list *l, bool allow); /* entries of one kind */

/* Scans text and appends GT_DENIED findings. ERR_OK; ERR_TIMEOUT when a
 * regex hit its match limit or the budget ran out (the findings found so
 * far are kept; the policy decides whether that fails open or closed);
 * ERR_NOMEM. */
err_code guard_scan_list(const guard_list *l, const char *text, size_t len, guard_findings *out);

/* ------------------------------------------------------------------ */
/* Topic restriction (lexical): each allowed topic is a set of keywords
 * matched like deny-list words. A text that contains no keyword of any
 * topic is OFF_TOPIC. This is keyword spotting, not understanding: "How
 * do I cancel my subscription?" is on topic for a topic listing
 * "subscription", and a paraphrase without any listed word is not. */

typedef struct guard_topics guard_topics;

guard_topics *guard_topics_new(void); /* NULL on out of memory */
void guard_topics_free(guard_topics *t);

/* Adds a topic. name is copied; keywords[0..n) follow guard_list_add_word's
 * rules. ERR_INVAL (a bad keyword, n == 0, empty name), ERR_TOOBIG
 * (more than 64 topics or the keyword limit), ERR_NOMEM. */
err_code guard_topics_add(guard_topics *t, const char *name, const char *const *keywords, size_t n);

/* Scans text. *topic (may be NULL) is set to the index of the topic with
 * the most keyword hits, or -1. A text with no keyword of any topic gets a
 * GT_TOPIC finding over the whole text (rule "off_topic", score 1); a text
 * with no letters or digits at all is not judged. ERR_OK, ERR_NOMEM. */
err_code guard_scan_topics(const guard_topics *t, const char *text, size_t len, int *topic,
                           guard_findings *out);
const char *guard_topics_name(const guard_topics *t, int i); /* NULL past the end */

/* ------------------------------------------------------------------ */
/* Size limits. Characters are UTF-8 code points (a stray byte counts as
 * one); tokens are tokens_estimate()'s (src/providers/tokens.h), a stable
 * approximation, not any model's tokenizer. */

typedef struct guard_size_limits {
    size_t max_chars;  /* 0 = no limit */
    size_t max_tokens; /* 0 = no limit */
} guard_size_limits;

typedef struct guard_size_result {
    size_t chars;
    long tokens;
} guard_size_result;

/* Counts and checks. Over a limit: a GT_SIZE finding from the first byte
 * past the limit to the end (rule "max_chars" or "max_tokens", score 1).
 * res may be NULL. Always ERR_OK but ERR_NOMEM from the findings list. */
err_code guard_scan_size(const char *text, size_t len, const guard_size_limits *lim, guard_size_result *res,
                         guard_findings *out);

/* ------------------------------------------------------------------ */
/* Output validity for response_format json_schema. */

/* Compiles the schema of an OpenAI response_format object
 * ({"type":"json_schema","json_schema":{"name":..,"schema":{..}}}).
 * ERR_NOTFOUND when rf is not of type json_schema (nothing to check),
 * ERR_INVAL when it has no schema object, or jschema_compile's errors,
 * with msg. The caller frees *out with jschema_free. */
err_code guard_schema_from_response_format(const json_t *rf, struct jschema **out, char *msg, size_t cap);

/* Checks that text is one JSON document (surrounding whitespace allowed)
 * valid against s. A failure is a GT_SCHEMA finding over the whole text,
 * rule "invalid_json" or "schema_mismatch", with the reason in msg (may be
 * NULL; the validator's message names the failing path, never a value).
 * *valid (may be NULL) says which. ERR_OK or ERR_NOMEM. */
err_code guard_check_schema(const struct jschema *s, const char *text, size_t len, bool *valid, char *msg,
                            size_t cap, guard_findings *out);

/* ------------------------------------------------------------------ */
/* Llama Guard (harm categories through a classifier model). The answer
 * format is "safe", or "unsafe" then a line of categories "S1,S3"
 * (Llama Guard 3's MLCommons hazard taxonomy, S1..S14). */

#define GUARD_HARM_CATEGORIES 14

typedef struct guard_harm_verdict {
    bool unsafe;
    uint16_t categories; /* bit (i - 1) for Si */
} guard_harm_verdict;

/* Parses a classifier answer strictly: leading and trailing whitespace,
 * spaces around commas and CRLF are tolerated, "safe"/"unsafe" and the S
 * are case-insensitive; anything else (extra words or lines, "safe" with
 * categories, S0 or S15, an empty answer) is ERR_PARSE, never "safe".
 * "unsafe" without a category line is accepted with categories == 0. */
err_code guard_llamaguard_parse(const char *text, size_t len, guard_harm_verdict *out);

/* "violent_crimes" ... for S1..S14 (NULL otherwise), and the display
 * names ("Violent Crimes"). */
const char *guard_harm_category_name(int s);
const char *guard_harm_category_title(int s);
/* Accepts "S3", "s3", "sex_related_crimes", "Sex-Related Crimes"; 0 if unknown. */
int guard_harm_category_parse(const char *name);

/* A policy: which categories it acts on and how severe each one is
 * (1 low .. 3 high; 0 = ignored), and the severity from which a reported
 * category becomes a finding. */
typedef struct guard_harm_policy {
    uint8_t severity[GUARD_HARM_CATEGORIES + 1]; /* index 1..14 */
    uint8_t threshold;                           /* 1..3 */
} guard_harm_policy;

/* Every category at its default severity (S4 child exploitation, S1
 * violent crimes, S9 weapons, S3, S11 self-harm: 3; S2, S7, S10, S12, S14:
 * 2; S5, S6, S8, S13: 1), threshold 1. */
void guard_harm_policy_default(guard_harm_policy *p);

/* Findings for a verdict under a policy: one GT_HARM finding over the
 * classified text [0, len) per reported category whose severity reaches
 * the threshold (rule: the category name, score severity / 3). "unsafe"
 * with no category gives one finding, rule "unspecified", score 1 (never
 * silently allowed). ERR_OK or ERR_NOMEM. */
err_code guard_harm_apply(const guard_harm_policy *p, const guard_harm_verdict *v, size_t len,
                          guard_findings *out);

#endif
