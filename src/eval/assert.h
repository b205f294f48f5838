/*
 * assert.h - the assertions of an evaluation suite: parsing them from the
 * suite's JSON, running the deterministic ones on an answer, and combining
 * results into a test's (or an assert-set's) verdict and score.
 *
 * The types, their defaults and their exact definitions (promptfoo's, with
 * references) are in docs/internals/assertions.md. Model-graded types and
 * external commands are parsed here but run by grader.h.
 *
 * Ownership: ev_assert_parse returns a malloc'd tree that the caller frees
 * with ev_assert_free (only the top-level pointer; a set's children go with
 * it). Every node of the tree, a set's children included, can be given to
 * ev_assert_check and ev_assert_is_graded on its own. ev_assert_check and ev_assert_combine fill an ev_result whose reason
 * (malloc'd, may be NULL) the caller frees with ev_result_clear.
 *
 * Thread safety: a parsed tree is read-only after parsing; checks of the
 * same tree may run on several threads at once (scratch memory is
 * per-thread).
 */
#ifndef GENAIOPS_EVAL_ASSERT_H
#define GENAIOPS_EVAL_ASSERT_H

#include "eval/eval.h"

/* Bounds of the checks: a text longer than this (the answer, or a rendered
 * value) makes levenshtein, rouge-*, bleu and token-f1 an EV_ERROR. */
#define EV_ASSERT_MAX_TEXT (64 * 1024)

/* Parses one assertion object of a suite: {type, value, threshold, weight,
 * metric, provider, assert (for assert-set), config, ...}. Keys it does not
 * know (rubricPrompt, n, ...) are kept in (*out)->config. `path` is its key
 * path ("tests[3].assert[1]"), copied into (*out)->path and used in
 * messages. Returns ERR_OK and a malloc'd tree, or ERR_PARSE (malformed:
 * not an object, missing type, wrong value kind, bad threshold, a regex
 * that does not compile -> the message names the path and the PCRE2 error
 * with its offset) or ERR_UNSUPPORTED (a type promptfoo has but genaiops
 * does not implement: "tests[3].assert[1]: assertion type 'javascript' is
 * not implemented"; an unknown type: "...: unknown assertion type 'foo'";
 * a JSON Schema keyword outside the supported subset; `transform`), or
 * ERR_NOMEM. msg gets the message (NUL-terminated, truncated to msgcap). */
err_code ev_assert_parse(const json_t *spec, const char *path, ev_assert **out, char *msg, size_t msgcap);

/* Frees the whole tree; NULL ok. Only for trees from ev_assert_parse. */
void ev_assert_free(ev_assert *a);

/* True when a (or a child of an assert-set) is model-graded (similar,
 * llm-rubric, g-eval, factuality, model-graded-closedqa, answer-relevance,
 * context-faithfulness, context-recall, context-relevance) or an external
 * `command`: it goes to grader.h, not ev_assert_check. */
bool ev_assert_is_graded(const ev_assert *a);

/* Runs one deterministic assertion on an answer and fills r (verdict,
 * score, reason; r's old contents are overwritten, not freed). A graded
 * type gives EV_ERROR. "not-" flips pass and fail (never an error) and
 * turns a 0..1 score s into 1-s, as promptfoo does. A weight of 0 makes a
 * fail a pass (promptfoo: "if weight is set to 0, the assertion
 * automatically passes"). An assert-set runs its children and combines
 * them (graded children give EV_ERROR here: a runner with such a set runs
 * each child itself, ev_assert_check(&set->children[i]) or the grader, and
 * combines them with ev_assert_combine and the set's threshold). Never
 * crashes, never gives NaN. A passing check allocates nothing for the
 * common types (reason NULL). Latency and cost with a metric but no
 * threshold pass with the raw value (ms, USD) as score. */
void ev_assert_check(const ev_assert *a, const ev_output *o, ev_result *r);

/* Combines n child results into one (out is overwritten): the score is the
 * weighted mean of the scores with the assertions' weights (weight 0
 * counts for nothing; a total weight of 0 gives 0, as promptfoo; no
 * results at all give a pass with score 1); the verdict: any EV_ERROR ->
 * EV_ERROR, else if threshold is not NAN pass iff score >= threshold, else
 * pass iff every child passed (a weight-0 child always counts as passed).
 * This is promptfoo's rule for a test and for an assert-set. as[i] only
 * needs its weight set. */
void ev_assert_combine(const ev_assert *const *as, const ev_result *rs, size_t n, double threshold,
                       ev_result *out);

/* The names of all types implemented (deterministic and graded), sorted,
 * NULL-terminated, for --help and docs. */
const char *const *ev_assert_types(void);

#endif
