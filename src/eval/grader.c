/*
 * grader.c - model-graded assertions as state machines, and external
 * command evaluators (see grader.h; formulas and prompts are described in
 * docs/internals/graders.md).
 *
 * How a check runs. ev_grader_new() copies what it needs from the output
 * (answer text, prompt, the variables it reads), checks the value and the
 * config, and queues the first call: either a chat request (g->messages, a
 * system and a user message this file writes) or an embeddings request
 * (g->texts). ev_grader_next() hands the pending call out; the reply
 * functions parse the answer and either queue the next call or finish.
 * Type and step live in g->kind and g->step:
 *
 *   similar                 EMBED [answer, value...]           -> similarity
 *   llm-rubric              CHAT {reason, pass, score}
 *   factuality              CHAT {category A-E, reason}
 *   model-graded-closedqa   CHAT {reason, verdict Y/N}
 *   g-eval                  per criterion: CHAT {steps} -> CHAT {score 0-10, reason}
 *   answer-relevance        CHAT {questions x3} -> EMBED [query, q1, q2, q3]
 *   context-faithfulness    CHAT {statements} -> CHAT {verdicts: supported}
 *   context-recall          CHAT {statements: [{statement, attributed}]}
 *   context-relevance       CHAT {verdicts: relevant} over numbered context units
 *
 * Strict parsing. A reply is scanned for '{'; each candidate is parsed with
 * jansson (rejecting duplicate keys, stopping at the end of the object) and
 * handed to the step's checker, which validates keys and types and only
 * then acts. The first candidate that validates wins, so a ```json fence
 * or a sentence around the object does not matter, but a wrong key or a
 * non-number score does. When nothing validates, one repair call repeats
 * the conversation with the bad reply and asks for only the JSON; a second
 * failure ends the check as EV_ERROR "judge reply not valid JSON: ...".
 *
 * Every text sent to a judge is valid UTF-8 (bad bytes become U+FFFD) and
 * bounded (GR_TEXT_MAX); every list the judge returns is bounded
 * (GR_MAX_ITEMS). Results never carry NaN: vector maths that would make one
 * (a zero-norm embedding) is an EV_ERROR instead.
 *
 * ev_command_check() runs a shell command with posix_spawn in its own
 * process group, feeds it JSON on stdin through a socketpair (send with
 * MSG_NOSIGNAL, so a child that exits early cannot raise SIGPIPE here),
 * collects stdout (bounded) and the tail of stderr with poll() against a
 * monotonic deadline, and kills the whole group on timeout.
 */
#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "core/buf.h"
#include "core/jscan.h"
#include "eval/grader.h"
#include "eval/textsim.h"
#include "prompt/template.h"

extern char **environ;

#define GR_TEXT_MAX ((size_t)4 << 20)    /* bytes of one prompt or rendered value */
#define GR_REPLY_MAX ((size_t)1 << 20)   /* bytes of a judge reply we parse */
#define GR_REPAIR_ECHO 8192              /* bytes of a bad reply shown back in the repair call */
#define GR_REASON_MAX 4096               /* bytes of a result's reason */
#define GR_MAX_ITEMS 512                 /* statements, context units, values, criteria */
#define GR_CANDIDATES 32                 /* '{' positions tried in one reply */
#define GR_QUESTIONS 3                   /* answer-relevance: questions generated */
#define GR_EPS DBL_EPSILON               /* threshold comparisons, as promptfoo's Number.EPSILON */

#define CMD_STDOUT_MAX ((size_t)1 << 20) /* bytes of a command's stdout */
#define CMD_STDERR_KEEP 4096             /* bytes of its stderr's tail kept */
#define CMD_TIMEOUT_MS 30000

typedef enum gkind {
    G_SIMILAR,
    G_RUBRIC,
    G_FACTUALITY,
    G_CLOSEDQA,
    G_GEVAL,
    G_ANSWER_REL,
    G_FAITHFUL,
    G_RECALL,
    G_CTX_REL,
} gkind;

typedef enum sim_metric { SIM_COSINE, SIM_DOT, SIM_EUCLID } sim_metric;

static const struct {
    const char *name;
    gkind kind;
    sim_metric metric;
} graded_types[] = {
    { "similar", G_SIMILAR, SIM_COSINE },
    { "similar:cosine", G_SIMILAR, SIM_COSINE },
    { "similar:dot", G_SIMILAR, SIM_DOT },
    { "similar:euclidean", G_SIMILAR, SIM_EUCLID },
    { "llm-rubric", G_RUBRIC, 0 },
    { "factuality", G_FACTUALITY, 0 },
    { "model-graded-closedqa", G_CLOSEDQA, 0 },
    { "g-eval", G_GEVAL, 0 },
    { "answer-relevance", G_ANSWER_REL, 0 },
    { "context-faithfulness", G_FAITHFUL, 0 },
    { "context-recall", G_RECALL, 0 },
    { "context-relevance", G_CTX_REL, 0 },
};

/* A list of owned strings, at most GR_MAX_ITEMS. */
typedef struct strv {
    char **v;
    size_t n;
} strv;

struct ev_grader {
    const ev_assert *a;
    gkind kind;
    sim_metric metric;
    int step;
    double threshold;           /* the type's default applied; NAN = none (llm-rubric) */

    /* the pending call */
    bool pending;
    ev_call_kind call_kind;
    json_t *messages;           /* CHAT */
    const char *hint;           /* the JSON shape the current step wants, for the repair call */
    bool repaired;              /* the current step already had its repair call */
    bool json_mode;             /* CHAT: ask for response_format json_object */
    const char **texts;         /* EMBED: pointers into embed */
    strv embed;

    /* the finished result */
    bool done;
    ev_verdict verdict;
    double score;
    char *reason;

    /* inputs, copied */
    char *output;               /* the answer, valid UTF-8 */
    char *prompt;               /* the prompt, valid UTF-8, "" when none */
    char *value;                /* the rendered value (rubric, reference, criterion) */
    char *query;
    char *context;              /* context units joined by blank lines */
    json_t *custom;             /* llm-rubric: rubricPrompt's rendered messages */
    bool custom_says_json;      /* ...and one of them mentions JSON (OpenAI's JSON mode needs that) */
    strv items;                 /* similar: values; g-eval: criteria; faithfulness: statements;
                                   context-relevance: context units */
    double fact_score[5];       /* factuality: score of categories A-E */

    /* g-eval progress */
    size_t idx;
    double acc;
    char *steps;                /* the current criterion's steps, "- step" lines */
    buf reasons;
};

/* ---- small helpers ---------------------------------------------------------- */

static char *dup_n(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (!p)
        return NULL;
    if (n)
        memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

static void strv_free(strv *v)
{
    for (size_t i = 0; i < v->n; i++)
        free(v->v[i]);
    free(v->v);
    v->v = NULL;
    v->n = 0;
}

/* Appends a copy of s[0..n); false on out of memory or past GR_MAX_ITEMS. */
static bool strv_push(strv *v, const char *s, size_t n)
{
    if (v->n >= GR_MAX_ITEMS)
        return false;
    if ((v->n & (v->n - 1)) == 0) { /* grow at 0, 1, 2, 4, 8, ... */
        char **nv = realloc(v->v, (v->n ? v->n * 2 : 1) * sizeof *nv);
        if (!nv)
            return false;
        v->v = nv;
    }
    char *c = dup_n(s, n);
    if (!c)
        return false;
    v->v[v->n++] = c;
    return true;
}

/* Appends s[0..n) to out as valid UTF-8: every invalid byte and every NUL
 * becomes U+FFFD. */
static err_code put_utf8(buf *out, const char *s, size_t n)
{
    while (n) {
        size_t ok = jscan_utf8_prefix(s, n);
        const char *z = ok ? memchr(s, '\0', ok) : NULL;
        if (z)
            ok = (size_t)(z - s);
        err_code e = buf_append(out, s, ok);
        if (e)
            return e;
        if (ok == n)
            break;
        if ((e = buf_append(out, "\xEF\xBF\xBD", 3)))
            return e;
        s += ok + 1;
        n -= ok + 1;
    }
    return ERR_OK;
}

/* A malloc'd valid-UTF-8 copy of s[0..n), cut at GR_TEXT_MAX; NULL on OOM. */
static char *clean_dup(const char *s, size_t n)
{
    buf b;
    buf_init(&b, GR_TEXT_MAX + 3);
    if (n > GR_TEXT_MAX)
        n = GR_TEXT_MAX;
    if (put_utf8(&b, s ? s : "", s ? n : 0) || buf_append(&b, "", 0)) {
        buf_free(&b);
        return NULL;
    }
    return buf_steal(&b, NULL);
}

static bool ge_threshold(double v, double t) { return v >= t - GR_EPS; }

/* A number from a JSON value: integers and reals; false otherwise. */
static bool num_of(const json_t *v, double *out)
{
    if (!json_is_number(v))
        return false;
    double d = json_number_value(v);
    if (!isfinite(d))
        return false;
    *out = d;
    return true;
}

static double clamp(double v, double lo, double hi) { return v < lo ? lo : v > hi ? hi : v; }

/* The config key of the assertion, or the same key under config.options
 * (promptfoo spells some of them as `options: {factuality: ...}`). */
static const json_t *cfg_get(const ev_assert *a, const char *key)
{
    if (!json_is_object(a->config))
        return NULL;
    const json_t *v = json_object_get(a->config, key);
    if (v)
        return v;
    const json_t *opts = json_object_get(a->config, "options");
    return json_is_object(opts) ? json_object_get(opts, key) : NULL;
}

/* ---- finishing -------------------------------------------------------------- */

static void clear_call(ev_grader *g)
{
    g->pending = false;
    json_decref(g->messages);
    g->messages = NULL;
    free(g->texts);
    g->texts = NULL;
    strv_free(&g->embed);
}

static void set_reason(ev_grader *g, const char *fmt, va_list ap)
{
    char tmp[GR_REASON_MAX];
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    free(g->reason);
    g->reason = clean_dup(tmp, strlen(tmp));
}

static void finish_error(ev_grader *g, const char *fmt, ...) PRINTF_LIKE(2, 3);
static void finish_error(ev_grader *g, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    set_reason(g, fmt, ap);
    va_end(ap);
    clear_call(g);
    g->done = true;
    g->verdict = EV_ERROR;
    g->score = 0;
}

/* Finishes with pass or fail, applying the assertion's negation: the
 * verdict flips and a score in [0, 1] becomes 1 - score (as promptfoo
 * reports inverted checks). */
static void finish(ev_grader *g, bool pass, double score, const char *fmt, ...) PRINTF_LIKE(4, 5);
static void finish(ev_grader *g, bool pass, double score, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    set_reason(g, fmt, ap);
    va_end(ap);
    clear_call(g);
    if (!isfinite(score))
        score = 0;
    if (g->a->negate) {
        pass = !pass;
        if (score >= 0 && score <= 1)
            score = 1 - score;
    }
    g->done = true;
    g->verdict = pass ? EV_PASS : EV_FAIL;
    g->score = score;
}

/* ---- queueing calls ------------------------------------------------------------ */

static json_t *message(const char *role, const char *content, size_t len)
{
    return json_pack("{s:s, s:s%}", "role", role, "content", content, len);
}

/* Queues a chat call of a system and a user message (user is taken as
 * built; both are valid UTF-8 by construction). hint is the JSON shape the
 * step wants. On out of memory the check finishes with an error. */
static void queue_chat(ev_grader *g, const char *system, const buf *user, const char *hint)
{
    clear_call(g);
    json_t *m = json_array();
    if (!m || json_array_append_new(m, message("system", system, strlen(system))) ||
        json_array_append_new(m, message("user", user->p ? user->p : "", user->len))) {
        json_decref(m);
        finish_error(g, "out of memory building the judge prompt");
        return;
    }
    g->messages = m;
    g->call_kind = EV_CALL_CHAT;
    g->json_mode = true;
    g->hint = hint;
    g->repaired = false;
    g->pending = true;
}

/* Queues the custom messages of a rubricPrompt (llm-rubric). */
static void queue_custom(ev_grader *g, const char *hint)
{
    clear_call(g);
    g->messages = json_incref(g->custom);
    g->call_kind = EV_CALL_CHAT;
    g->json_mode = g->custom_says_json;
    g->hint = hint;
    g->repaired = false;
    g->pending = true;
}

/* Queues an embeddings call of the texts already in g->embed. */
static void queue_embed(ev_grader *g)
{
    json_decref(g->messages);
    g->messages = NULL;
    free(g->texts);
    g->texts = malloc((g->embed.n ? g->embed.n : 1) * sizeof *g->texts);
    if (!g->texts) {
        finish_error(g, "out of memory");
        return;
    }
    for (size_t i = 0; i < g->embed.n; i++)
        g->texts[i] = g->embed.v[i];
    g->call_kind = EV_CALL_EMBED;
    g->hint = NULL;
    g->repaired = false;
    g->pending = true;
}

/* The repair call: the same conversation, the bad reply as the assistant's
 * turn, and a request for just the JSON object. */
static void queue_repair(ev_grader *g, const char *text, size_t len, const char *why)
{
    json_t *m = json_array();
    buf said, ask;
    buf_init(&said, GR_REPAIR_ECHO + 64);
    buf_init(&ask, GR_REASON_MAX + 1024);
    bool cut = len > GR_REPAIR_ECHO;
    bool ok = m && json_array_extend(m, g->messages) == 0 &&
              put_utf8(&said, text, cut ? GR_REPAIR_ECHO : len) == ERR_OK &&
              (!cut || buf_append_str(&said, "\n[...]") == ERR_OK) &&
              (said.len || buf_append_str(&said, "(empty reply)") == ERR_OK) &&
              buf_printf(&ask,
                         "Your previous reply could not be used: %s. Reply again with ONLY a JSON object, "
                         "no other text and no code fence, in exactly this form:\n%s",
                         why, g->hint ? g->hint : "{}") == ERR_OK &&
              json_array_append_new(m, message("assistant", said.p, said.len)) == 0 &&
              json_array_append_new(m, message("user", ask.p, ask.len)) == 0;
    buf_free(&said);
    buf_free(&ask);
    if (!ok) {
        json_decref(m);
        finish_error(g, "out of memory building the repair prompt");
        return;
    }
    json_decref(g->messages);
    g->messages = m;
    g->json_mode = true; /* the repair request itself says JSON */
    g->repaired = true;
    g->pending = true;
}

/* ---- the prompts ------------------------------------------------------------------ */

/* Each prompt is a fixed system message (the task and the JSON shape) and
 * a user message with the material, each part under a plain heading. */

static const char RUBRIC_SYS[] =
    "You are a strict and impartial grader. You receive a response written by an AI system and a "
    "rubric. Decide whether the response satisfies the rubric, judging only what the rubric asks for.\n"
    "Reply with a JSON object and nothing else:\n"
    "{\"reason\": \"<one or two sentences explaining the verdict>\", \"pass\": <true if the rubric is "
    "satisfied, else false>, \"score\": <a number from 0.0 (not at all) to 1.0 (fully)>}";
static const char RUBRIC_HINT[] = "{\"reason\": string, \"pass\": boolean, \"score\": number from 0 to 1}";

static const char FACT_SYS[] =
    "You compare the factual content of a submitted answer with an expert answer to the same question. "
    "Ignore wording, style, grammar and punctuation; compare only the facts stated. Pick the one "
    "category that fits best:\n"
    "A - every fact in the submitted answer is in the expert answer and agrees with it, but the "
    "submitted answer leaves some of the expert's facts out.\n"
    "B - the submitted answer has all the expert answer's facts, agrees with them, and adds more.\n"
    "C - both answers state the same facts.\n"
    "D - the two answers contradict each other on some fact.\n"
    "E - the answers differ, but none of the differences matters to whether the facts are right.\n"
    "Reply with a JSON object and nothing else:\n"
    "{\"category\": \"<A, B, C, D or E>\", \"reason\": \"<a short justification>\"}";
static const char FACT_HINT[] = "{\"category\": \"A\" | \"B\" | \"C\" | \"D\" | \"E\", \"reason\": string}";

static const char CLOSEDQA_SYS[] =
    "You check whether a submission meets a given criterion. Read the task the AI was given, its "
    "submission and the criterion, reason briefly about whether the criterion holds, then give a "
    "verdict: \"Y\" when the submission meets the criterion, \"N\" when it does not.\n"
    "Reply with a JSON object and nothing else:\n"
    "{\"reason\": \"<your reasoning>\", \"verdict\": \"<Y or N>\"}";
static const char CLOSEDQA_HINT[] = "{\"reason\": string, \"verdict\": \"Y\" | \"N\"}";

static const char GEVAL_STEPS_SYS[] =
    "You design grading procedures. Given evaluation criteria, write between 3 and 6 short, concrete "
    "steps that a grader should follow to check a text against those criteria, in the order they "
    "should be done.\n"
    "Reply with a JSON object and nothing else:\n"
    "{\"steps\": [\"<step 1>\", \"<step 2>\", ...]}";
static const char GEVAL_STEPS_HINT[] = "{\"steps\": [string, ...]} with at least one step";

static const char GEVAL_SCORE_SYS[] =
    "You are an evaluator that follows a given procedure. Apply the evaluation steps to the reply, "
    "then score how well the reply meets the criteria on a scale from 0 (not at all) to 10 "
    "(completely).\n"
    "Reply with a JSON object and nothing else:\n"
    "{\"score\": <a number from 0 to 10>, \"reason\": \"<a short justification>\"}";
static const char GEVAL_SCORE_HINT[] = "{\"score\": number from 0 to 10, \"reason\": string}";

static const char ANSREL_SYS[] =
    "You are given an answer. Write the questions that this answer most plausibly responds to: "
    "exactly 3 different questions, each complete and understandable on its own, in the language of "
    "the answer.\n"
    "Reply with a JSON object and nothing else:\n"
    "{\"questions\": [\"<question 1>\", \"<question 2>\", \"<question 3>\"]}";
static const char ANSREL_HINT[] = "{\"questions\": [string, string, string]}";

static const char FAITH_STMT_SYS[] =
    "Break the answer to a question into its atomic factual claims. Each claim is one short sentence "
    "that can be checked on its own: replace pronouns with what they refer to and keep one fact per "
    "sentence. Leave out greetings, opinions about the conversation and text that states no fact.\n"
    "Reply with a JSON object and nothing else:\n"
    "{\"statements\": [\"<claim 1>\", \"<claim 2>\", ...]} (an empty list when the answer states no fact)";
static const char FAITH_STMT_HINT[] = "{\"statements\": [string, ...]}";

static const char FAITH_NLI_SYS[] =
    "You check numbered statements against a context. A statement is supported only when it can be "
    "inferred directly from the context alone; general knowledge does not count. Give exactly one "
    "verdict for every statement.\n"
    "Reply with a JSON object and nothing else:\n"
    "{\"verdicts\": [{\"id\": <statement number>, \"supported\": <true or false>, \"reason\": \"<why>\"}, ...]}";
static const char FAITH_NLI_HINT[] =
    "{\"verdicts\": [{\"id\": number, \"supported\": boolean, \"reason\": string}, ...]} with one entry per statement";

static const char RECALL_SYS[] =
    "You check a reference answer against a retrieved context. Split the reference answer into its "
    "individual factual statements (short, self-contained sentences). For each one decide whether it "
    "can be attributed to the context: the context states it or directly implies it.\n"
    "Reply with a JSON object and nothing else:\n"
    "{\"statements\": [{\"statement\": \"<statement>\", \"attributed\": <true or false>, \"reason\": \"<why>\"}, ...]}";
static const char RECALL_HINT[] =
    "{\"statements\": [{\"statement\": string, \"attributed\": boolean, \"reason\": string}, ...]} with at least one entry";

static const char CTXREL_SYS[] =
    "You judge the passages of a retrieved context against a query. A passage is relevant when it "
    "contains information needed or directly useful to answer the query; background that does not "
    "help answer it is not relevant. Give exactly one verdict for every numbered passage.\n"
    "Reply with a JSON object and nothing else:\n"
    "{\"verdicts\": [{\"id\": <passage number>, \"relevant\": <true or false>}, ...]}";
static const char CTXREL_HINT[] =
    "{\"verdicts\": [{\"id\": number, \"relevant\": boolean}, ...]} with one entry per passage";

/* Appends "Heading:\ntext\n\n" to b. */
static err_code section(buf *b, const char *heading, const char *text)
{
    return buf_printf(b, "%s:\n%s\n\n", heading, text && *text ? text : "(none)");
}

static buf user_buf(void)
{
    buf b;
    buf_init(&b, GR_TEXT_MAX);
    return b;
}

/* Appends the items as "1. item" lines. */
static err_code numbered(buf *b, const strv *v)
{
    err_code e = ERR_OK;
    for (size_t i = 0; i < v->n && !e; i++)
        e = buf_printf(b, "%zu. %s\n", i + 1, v->v[i]);
    return e;
}

static void ask_rubric(ev_grader *g)
{
    if (g->custom) {
        queue_custom(g, RUBRIC_HINT);
        return;
    }
    buf u = user_buf();
    if (section(&u, "Response", g->output) || section(&u, "Rubric", g->value))
        finish_error(g, "judge prompt too large");
    else
        queue_chat(g, RUBRIC_SYS, &u, RUBRIC_HINT);
    buf_free(&u);
}

static void ask_factuality(ev_grader *g)
{
    buf u = user_buf();
    if (section(&u, "Question", g->prompt) || section(&u, "Expert answer", g->value) ||
        section(&u, "Submitted answer", g->output))
        finish_error(g, "judge prompt too large");
    else
        queue_chat(g, FACT_SYS, &u, FACT_HINT);
    buf_free(&u);
}

static void ask_closedqa(ev_grader *g)
{
    buf u = user_buf();
    if (section(&u, "Task", g->prompt) || section(&u, "Submission", g->output) ||
        section(&u, "Criterion", g->value))
        finish_error(g, "judge prompt too large");
    else
        queue_chat(g, CLOSEDQA_SYS, &u, CLOSEDQA_HINT);
    buf_free(&u);
}

static void ask_geval_steps(ev_grader *g)
{
    buf u = user_buf();
    g->step = 0;
    if (section(&u, "Criteria", g->items.v[g->idx]))
        finish_error(g, "judge prompt too large");
    else
        queue_chat(g, GEVAL_STEPS_SYS, &u, GEVAL_STEPS_HINT);
    buf_free(&u);
}

static void ask_geval_score(ev_grader *g)
{
    buf u = user_buf();
    g->step = 1;
    if (section(&u, "Criteria", g->items.v[g->idx]) || section(&u, "Evaluation steps", g->steps) ||
        section(&u, "Input", g->prompt) || section(&u, "Reply to evaluate", g->output))
        finish_error(g, "judge prompt too large");
    else
        queue_chat(g, GEVAL_SCORE_SYS, &u, GEVAL_SCORE_HINT);
    buf_free(&u);
}

static void ask_questions(ev_grader *g)
{
    buf u = user_buf();
    g->step = 0;
    if (section(&u, "Answer", g->output))
        finish_error(g, "judge prompt too large");
    else
        queue_chat(g, ANSREL_SYS, &u, ANSREL_HINT);
    buf_free(&u);
}

static void ask_statements(ev_grader *g)
{
    buf u = user_buf();
    g->step = 0;
    if (section(&u, "Question", g->query) || section(&u, "Answer", g->output))
        finish_error(g, "judge prompt too large");
    else
        queue_chat(g, FAITH_STMT_SYS, &u, FAITH_STMT_HINT);
    buf_free(&u);
}

static void ask_support(ev_grader *g)
{
    buf u = user_buf();
    g->step = 1;
    if (section(&u, "Context", g->context) || buf_append_str(&u, "Statements:\n") || numbered(&u, &g->items))
        finish_error(g, "judge prompt too large");
    else
        queue_chat(g, FAITH_NLI_SYS, &u, FAITH_NLI_HINT);
    buf_free(&u);
}

static void ask_recall(ev_grader *g)
{
    buf u = user_buf();
    if (section(&u, "Context", g->context) || section(&u, "Reference answer", g->value))
        finish_error(g, "judge prompt too large");
    else
        queue_chat(g, RECALL_SYS, &u, RECALL_HINT);
    buf_free(&u);
}

static void ask_relevance(ev_grader *g)
{
    buf u = user_buf();
    if (section(&u, "Query", g->query) || buf_append_str(&u, "Context passages:\n") || numbered(&u, &g->items))
        finish_error(g, "judge prompt too large");
    else
        queue_chat(g, CTXREL_SYS, &u, CTXREL_HINT);
    buf_free(&u);
}

/* ---- checking judge replies -------------------------------------------------------- */

/* Each checker validates the object completely before acting; on failure
 * it writes why into err and changes nothing. */

#define BAD(...) (snprintf(err, en, __VA_ARGS__), false)

/* reason must be absent or a string. */
static bool opt_string(const json_t *o, const char *key, const char **out, char *err, size_t en)
{
    const json_t *v = json_object_get(o, key);
    *out = NULL;
    if (!v)
        return true;
    if (!json_is_string(v))
        return BAD("key '%s' is not a string", key);
    *out = json_string_value(v);
    return true;
}

/* The "verdicts" list of n numbered entries, each {"id": 1..n, flag: bool},
 * every id exactly once. *yes = entries whose flag is true. */
static bool check_verdicts(const json_t *o, const char *flag, size_t n, size_t *yes, char *err, size_t en)
{
    const json_t *list = json_object_get(o, "verdicts");
    if (!list)
        return BAD("missing key 'verdicts'");
    if (!json_is_array(list))
        return BAD("key 'verdicts' is not a list");
    if (json_array_size(list) != n)
        return BAD("'verdicts' has %zu entries for %zu items", json_array_size(list), n);
    unsigned char seen[GR_MAX_ITEMS] = { 0 };
    size_t count = 0, i;
    const json_t *it;
    json_array_foreach(list, i, it) {
        double id;
        const json_t *f = json_object_get(it, flag);
        if (!json_is_object(it))
            return BAD("verdict %zu is not an object", i + 1);
        if (!num_of(json_object_get(it, "id"), &id) || id != floor(id) || id < 1 || id > (double)n)
            return BAD("verdict %zu has no 'id' between 1 and %zu", i + 1, n);
        if (seen[(size_t)id - 1]++)
            return BAD("id %zu is judged twice", (size_t)id);
        if (!json_is_boolean(f))
            return BAD("verdict %zu has no boolean '%s'", i + 1, flag);
        count += json_is_true(f);
    }
    *yes = count;
    return true;
}

static bool on_rubric(ev_grader *g, const json_t *o, char *err, size_t en)
{
    const json_t *pv = json_object_get(o, "pass"), *scv = json_object_get(o, "score");
    const char *reason;
    double score = 0;
    if (pv && !json_is_boolean(pv))
        return BAD("key 'pass' is not a boolean");
    if (scv && !num_of(scv, &score))
        return BAD("key 'score' is not a number");
    if (!pv && !scv)
        return BAD("missing keys 'pass' and 'score'");
    if (!opt_string(o, "reason", &reason, err, en))
        return false;
    /* promptfoo: a missing pass is true; with a threshold, the score must reach it too */
    bool pass = pv ? json_is_true(pv) : true;
    score = scv ? clamp(score, 0, 1) : (pass ? 1 : 0);
    const char *why = reason && *reason ? reason : pass ? "the judge passed it" : "the judge failed it";
    if (!isnan(g->threshold)) {
        bool reached = ge_threshold(score, g->threshold);
        finish(g, pass && reached, score, "Score %.2f %s threshold %g: %s", score, reached ? ">=" : "<", g->threshold, why);
        return true;
    }
    finish(g, pass, score, "%s", why);
    return true;
}

static const char *const fact_desc[5] = {
    "the answer is a consistent subset of the reference",
    "the answer is a consistent superset of the reference",
    "the answer has the same details as the reference",
    "the answer disagrees with the reference",
    "the answers differ, but not in ways that matter for factuality",
};

static bool on_factuality(ev_grader *g, const json_t *o, char *err, size_t en)
{
    const json_t *cv = json_object_get(o, "category");
    const char *reason;
    if (!cv)
        return BAD("missing key 'category'");
    if (!json_is_string(cv))
        return BAD("key 'category' is not a string");
    sv c = ts_trim(sv_make(json_string_value(cv), json_string_length(cv)));
    if (c.len != 1 || ((c.p[0] | 0x20) < 'a' || (c.p[0] | 0x20) > 'e'))
        return BAD("category '%.*s' is not one of A, B, C, D, E", (int)MIN(c.len, 40), c.p);
    if (!opt_string(o, "reason", &reason, err, en))
        return false;
    int k = (c.p[0] | 0x20) - 'a';
    double score = g->fact_score[k];
    finish(g, score > 0, score, "Category %c: %s", 'A' + k, reason && *reason ? reason : fact_desc[k]);
    return true;
}

static bool on_closedqa(ev_grader *g, const json_t *o, char *err, size_t en)
{
    const json_t *vv = json_object_get(o, "verdict");
    const char *reason;
    if (!vv)
        return BAD("missing key 'verdict'");
    if (!json_is_string(vv))
        return BAD("key 'verdict' is not a string");
    sv v = ts_trim(sv_make(json_string_value(vv), json_string_length(vv)));
    if (!sv_ieq_cstr(v, "Y") && !sv_ieq_cstr(v, "N"))
        return BAD("verdict '%.*s' is not Y or N", (int)MIN(v.len, 40), v.p);
    if (!opt_string(o, "reason", &reason, err, en))
        return false;
    bool pass = sv_ieq_cstr(v, "Y");
    finish(g, pass, pass ? 1 : 0, "%s: %s", pass ? "The submission meets the criterion" : "The submission does not meet the criterion",
           reason && *reason ? reason : "(no reason given)");
    return true;
}

static bool on_geval(ev_grader *g, const json_t *o, char *err, size_t en)
{
    if (g->step == 0) {
        const json_t *list = json_object_get(o, "steps"), *it;
        size_t i;
        if (!list)
            return BAD("missing key 'steps'");
        if (!json_is_array(list) || json_array_size(list) == 0)
            return BAD("key 'steps' is not a non-empty list");
        if (json_array_size(list) > GR_MAX_ITEMS)
            return BAD("more than %d steps", GR_MAX_ITEMS);
        json_array_foreach(list, i, it)
            if (!json_is_string(it))
                return BAD("step %zu is not a string", i + 1);
        buf s;
        bool fits = true;
        buf_init(&s, GR_TEXT_MAX);
        json_array_foreach(list, i, it)
            if (fits && buf_printf(&s, "%s- %s", i ? "\n" : "", json_string_value(it)))
                fits = false;
        free(g->steps);
        g->steps = fits && !buf_append(&s, "", 0) ? buf_steal(&s, NULL) : NULL;
        buf_free(&s);
        if (!g->steps)
            finish_error(g, "g-eval steps too large");
        else
            ask_geval_score(g);
        return true;
    }
    double score;
    const char *reason;
    const json_t *scv = json_object_get(o, "score");
    if (!scv)
        return BAD("missing key 'score'");
    if (!num_of(scv, &score))
        return BAD("key 'score' is not a number");
    if (!opt_string(o, "reason", &reason, err, en))
        return false;
    score = clamp(score, 0, 10) / 10;
    g->acc += score;
    if (g->items.n > 1)
        (void)buf_printf(&g->reasons, "%s[%zu] %.2f: %s", g->reasons.len ? "; " : "", g->idx + 1, score,
                         reason ? reason : "");
    else
        (void)buf_printf(&g->reasons, "%s", reason ? reason : "");
    if (++g->idx < g->items.n) {
        ask_geval_steps(g);
        return true;
    }
    double mean = g->acc / (double)g->items.n;
    bool pass = ge_threshold(mean, g->threshold);
    finish(g, pass, mean, "G-Eval score %.2f %s threshold %g%s%s", mean, pass ? ">=" : "<", g->threshold,
           g->reasons.len ? ": " : "", g->reasons.len ? g->reasons.p : "");
    return true;
}

static bool on_questions(ev_grader *g, const json_t *o, char *err, size_t en)
{
    const json_t *list = json_object_get(o, "questions"), *it;
    size_t i, good = 0;
    if (!list)
        return BAD("missing key 'questions'");
    if (!json_is_array(list))
        return BAD("key 'questions' is not a list");
    json_array_foreach(list, i, it) {
        if (!json_is_string(it))
            return BAD("question %zu is not a string", i + 1);
        good += ts_trim(sv_make(json_string_value(it), json_string_length(it))).len > 0;
    }
    if (good < GR_QUESTIONS)
        return BAD("'questions' has %zu non-empty questions, %d wanted", good, GR_QUESTIONS);
    strv_free(&g->embed);
    if (!strv_push(&g->embed, g->query, strlen(g->query))) {
        finish_error(g, "out of memory");
        return true;
    }
    json_array_foreach(list, i, it) {
        sv q = ts_trim(sv_make(json_string_value(it), json_string_length(it)));
        if (q.len == 0)
            continue;
        if (g->embed.n > GR_QUESTIONS)
            break;
        if (!strv_push(&g->embed, q.p, q.len)) {
            finish_error(g, "out of memory");
            return true;
        }
    }
    g->step = 1;
    queue_embed(g);
    return true;
}

static bool on_statements(ev_grader *g, const json_t *o, char *err, size_t en)
{
    if (g->step == 1) {
        size_t yes;
        if (!check_verdicts(o, "supported", g->items.n, &yes, err, en))
            return false;
        double score = (double)yes / (double)g->items.n;
        bool pass = ge_threshold(score, g->threshold);
        finish(g, pass, score, "Faithfulness %.2f (%zu of %zu statements supported by the context) %s threshold %g",
               score, yes, g->items.n, pass ? ">=" : "<", g->threshold);
        return true;
    }
    const json_t *list = json_object_get(o, "statements"), *it;
    size_t i;
    if (!list)
        return BAD("missing key 'statements'");
    if (!json_is_array(list))
        return BAD("key 'statements' is not a list");
    if (json_array_size(list) > GR_MAX_ITEMS)
        return BAD("more than %d statements", GR_MAX_ITEMS);
    json_array_foreach(list, i, it)
        if (!json_is_string(it))
            return BAD("statement %zu is not a string", i + 1);
    strv_free(&g->items);
    json_array_foreach(list, i, it) {
        sv s = ts_trim(sv_make(json_string_value(it), json_string_length(it)));
        if (s.len && !strv_push(&g->items, s.p, s.len)) {
            finish_error(g, "out of memory");
            return true;
        }
    }
    if (g->items.n == 0) {
        /* promptfoo fails the check here too; an answer with nothing to
         * verify is not evidence either way, so it is an error, not a score */
        finish_error(g, "the judge found no factual statements in the answer to check against the context");
        return true;
    }
    ask_support(g);
    return true;
}

static bool on_recall(ev_grader *g, const json_t *o, char *err, size_t en)
{
    const json_t *list = json_object_get(o, "statements"), *it;
    size_t i, yes = 0;
    if (!list)
        return BAD("missing key 'statements'");
    if (!json_is_array(list) || json_array_size(list) == 0)
        return BAD("key 'statements' is not a non-empty list");
    if (json_array_size(list) > GR_MAX_ITEMS)
        return BAD("more than %d statements", GR_MAX_ITEMS);
    json_array_foreach(list, i, it) {
        const json_t *f = json_object_get(it, "attributed");
        if (!json_is_object(it))
            return BAD("statement %zu is not an object", i + 1);
        if (!json_is_string(json_object_get(it, "statement")))
            return BAD("statement %zu has no string 'statement'", i + 1);
        if (!json_is_boolean(f))
            return BAD("statement %zu has no boolean 'attributed'", i + 1);
        yes += json_is_true(f);
    }
    size_t n = json_array_size(list);
    double score = (double)yes / (double)n;
    bool pass = ge_threshold(score, g->threshold);
    finish(g, pass, score, "Context recall %.2f (%zu of %zu reference statements attributed to the context) %s threshold %g",
           score, yes, n, pass ? ">=" : "<", g->threshold);
    return true;
}

static bool on_relevance(ev_grader *g, const json_t *o, char *err, size_t en)
{
    size_t yes;
    if (!check_verdicts(o, "relevant", g->items.n, &yes, err, en))
        return false;
    double score = (double)yes / (double)g->items.n;
    bool pass = ge_threshold(score, g->threshold);
    finish(g, pass, score, "Context relevance %.2f (%zu of %zu context passages relevant to the query) %s threshold %g",
           score, yes, g->items.n, pass ? ">=" : "<", g->threshold);
    return true;
}

static bool on_json(ev_grader *g, const json_t *o, char *err, size_t en)
{
    switch (g->kind) {
    case G_RUBRIC: return on_rubric(g, o, err, en);
    case G_FACTUALITY: return on_factuality(g, o, err, en);
    case G_CLOSEDQA: return on_closedqa(g, o, err, en);
    case G_GEVAL: return on_geval(g, o, err, en);
    case G_ANSWER_REL: return on_questions(g, o, err, en);
    case G_FAITHFUL: return on_statements(g, o, err, en);
    case G_RECALL: return on_recall(g, o, err, en);
    case G_CTX_REL: return on_relevance(g, o, err, en);
    case G_SIMILAR: break;
    }
    return BAD("this check expects no chat reply");
}

#undef BAD

/* Finds the first JSON object in text that the current step accepts and
 * acts on it. false with err set when none does: the first object's
 * defect, or why nothing parsed. */
static bool parse_reply(ev_grader *g, const char *text, size_t len, char *err, size_t en)
{
    if (len > GR_REPLY_MAX) {
        snprintf(err, en, "reply longer than %zu bytes", GR_REPLY_MAX);
        return false;
    }
    bool parsed_any = false;
    char first_parse_error[160] = "";
    size_t tries = 0, at = 0;
    while (at < len && tries < GR_CANDIDATES) {
        const char *p = memchr(text + at, '{', len - at);
        if (!p)
            break;
        at = (size_t)(p - text);
        tries++;
        json_error_t je;
        json_t *o = json_loadb(p, len - at, JSON_DISABLE_EOF_CHECK | JSON_REJECT_DUPLICATES, &je);
        if (!o) {
            if (!*first_parse_error)
                snprintf(first_parse_error, sizeof first_parse_error, "%s", je.text);
            at++;
            continue;
        }
        char why[256];
        bool ok = on_json(g, o, why, sizeof why);
        json_decref(o);
        if (ok)
            return true;
        if (!parsed_any)
            snprintf(err, en, "%s", why);
        parsed_any = true;
        /* skip the object just read: its inner '{' are parts of it */
        at += je.position > 0 ? (size_t)je.position : 1;
    }
    if (parsed_any)
        return false;
    if (tries == 0)
        snprintf(err, en, "no JSON object in the reply");
    else
        snprintf(err, en, "no complete JSON object in the reply (%s)", first_parse_error);
    return false;
}

/* ---- embeddings ------------------------------------------------------------------ */

static void on_similar(ev_grader *g, const double *const *vecs, size_t dim)
{
    double best = -INFINITY, best_raw = 0;
    for (size_t i = 1; i < g->embed.n; i++) {
        double raw, score;
        bool ok, pass;
        switch (g->metric) {
        case SIM_DOT: ok = ts_dot(vecs[0], vecs[i], dim, &raw); break;
        case SIM_EUCLID: ok = ts_euclidean(vecs[0], vecs[i], dim, &raw); break;
        default: ok = ts_cosine(vecs[0], vecs[i], dim, &raw); break;
        }
        if (!ok) {
            finish_error(g, "embeddings unusable for similarity (zero norm or non-finite values)");
            return;
        }
        if (g->metric == SIM_EUCLID) {
            /* a distance: lower is better, the threshold is the maximum */
            pass = raw <= g->threshold + GR_EPS;
            score = 1 / (1 + raw);
        } else {
            pass = ge_threshold(raw, g->threshold);
            score = raw;
        }
        if (pass) {
            finish(g, true, score, "%s %.4f %s threshold %g%s", g->metric == SIM_EUCLID ? "Distance" : "Similarity", raw,
                   g->metric == SIM_EUCLID ? "<=" : ">=", g->threshold, g->embed.n > 2 ? " (for one of the values)" : "");
            return;
        }
        if (score > best) {
            best = score;
            best_raw = raw;
        }
    }
    finish(g, false, best, "%s %.4f %s threshold %g%s", g->metric == SIM_EUCLID ? "Distance" : "Similarity", best_raw,
           g->metric == SIM_EUCLID ? ">" : "<", g->threshold,
           g->embed.n > 2 ? " (the closest of the values; none reached the threshold)" : "");
}

static void on_question_vectors(ev_grader *g, const double *const *vecs, size_t dim)
{
    double sum = 0;
    size_t n = g->embed.n - 1;
    for (size_t i = 1; i <= n; i++) {
        double c;
        if (!ts_cosine(vecs[0], vecs[i], dim, &c)) {
            finish_error(g, "embeddings unusable for similarity (zero norm or non-finite values)");
            return;
        }
        sum += c;
    }
    double score = sum / (double)n;
    bool pass = ge_threshold(score, g->threshold);
    finish(g, pass, score, "Relevance %.2f %s threshold %g (mean similarity of %zu generated questions to the query)",
           score, pass ? ">=" : "<", g->threshold, n);
}

/* ---- starting ----------------------------------------------------------------------- */

/* Renders s as a template with the test's variables when it holds "{{"
 * (promptfoo renders assertion values with the vars); missing variables
 * render empty. A text that does not compile as a template is used as is.
 * Returns a malloc'd valid-UTF-8 string or NULL on out of memory. */
static char *render_value(const char *s, size_t n, const json_t *vars)
{
    if (!memmem(s, n, "{{", 2))
        return clean_dup(s, n);
    tpl *t;
    tpl_error te;
    if (tpl_compile(s, n, &t, &te) != ERR_OK)
        return clean_dup(s, n);
    buf out;
    buf_init(&out, GR_TEXT_MAX);
    tpl_opts opts = { .lenient = true };
    err_code e = tpl_render(t, json_is_object(vars) ? vars : NULL, &opts, &out, &te);
    tpl_free(t);
    char *r = e == ERR_OK ? clean_dup(out.p ? out.p : "", out.len) : clean_dup(s, n);
    buf_free(&out);
    return r;
}

/* The assertion's value as text: strings rendered, other JSON compact. */
static char *value_text(const json_t *v, const json_t *vars)
{
    if (json_is_string(v))
        return render_value(json_string_value(v), json_string_length(v), vars);
    char *d = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!d)
        return NULL;
    char *r = render_value(d, strlen(d), vars);
    free(d);
    return r;
}

/* A string or a list of strings into g->items (each rendered); 0 on
 * success, else writes why into err. */
static int value_list(ev_grader *g, const json_t *vars, char *err, size_t en)
{
    const json_t *v = g->a->value, *it;
    size_t i;
    if (json_is_string(v)) {
        char *s = value_text(v, vars);
        if (!s || !strv_push(&g->items, s, strlen(s))) {
            free(s);
            return snprintf(err, en, "out of memory"), -1;
        }
        free(s);
        return 0;
    }
    if (!json_is_array(v) || json_array_size(v) == 0)
        return snprintf(err, en, "value must be a string or a non-empty list of strings"), -1;
    if (json_array_size(v) > GR_MAX_ITEMS)
        return snprintf(err, en, "value has more than %d entries", GR_MAX_ITEMS), -1;
    json_array_foreach(v, i, it) {
        if (!json_is_string(it))
            return snprintf(err, en, "value entry %zu is not a string", i + 1), -1;
        char *s = value_text(it, vars);
        if (!s || !strv_push(&g->items, s, strlen(s))) {
            free(s);
            return snprintf(err, en, "out of memory"), -1;
        }
        free(s);
    }
    return 0;
}

/* vars.context as text (a list joined by blank lines) into g->context and,
 * when units is set, its units into g->items: a list's non-empty entries;
 * a string's lines when it has more than one non-empty line, else its
 * sentences. */
typedef struct unit_ctx {
    ev_grader *g;
    bool oom;
} unit_ctx;

static bool add_unit(void *ud, sv piece)
{
    unit_ctx *u = ud;
    if (!strv_push(&u->g->items, piece.p, piece.len)) {
        u->oom = true;
        return false;
    }
    return true;
}

static int load_context(ev_grader *g, const json_t *vars, bool units, char *err, size_t en)
{
    const json_t *c = json_object_get(vars, "context"), *it;
    size_t i;
    if (!c)
        return snprintf(err, en, "%s needs the variable 'context' (vars.context)", g->a->type), -1;
    if (json_is_string(c)) {
        sv s = sv_make(json_string_value(c), json_string_length(c));
        if (ts_trim(s).len == 0)
            return snprintf(err, en, "vars.context is empty"), -1;
        if (!(g->context = clean_dup(s.p, s.len)))
            return snprintf(err, en, "out of memory"), -1;
        if (units) {
            unit_ctx u = { g, false };
            size_t n = ts_lines(s, NULL, NULL) > 1 ? ts_lines(s, add_unit, &u) : ts_sentences(s, add_unit, &u);
            if (u.oom && n > GR_MAX_ITEMS)
                return snprintf(err, en, "vars.context has more than %d sentences", GR_MAX_ITEMS), -1;
            if (u.oom)
                return snprintf(err, en, "out of memory"), -1;
        }
        return 0;
    }
    if (!json_is_array(c))
        return snprintf(err, en, "vars.context must be a string or a list of strings"), -1;
    buf b;
    buf_init(&b, GR_TEXT_MAX);
    json_array_foreach(c, i, it) {
        if (!json_is_string(it)) {
            buf_free(&b);
            return snprintf(err, en, "vars.context entry %zu is not a string", i + 1), -1;
        }
        sv s = ts_trim(sv_make(json_string_value(it), json_string_length(it)));
        if (s.len == 0)
            continue;
        if ((b.len && buf_append_str(&b, "\n\n")) || buf_append(&b, s.p, s.len)) {
            buf_free(&b);
            return snprintf(err, en, "vars.context is too large"), -1;
        }
        if (units && !strv_push(&g->items, s.p, s.len)) {
            buf_free(&b);
            if (g->items.n >= GR_MAX_ITEMS)
                return snprintf(err, en, "vars.context has more than %d entries", GR_MAX_ITEMS), -1;
            return snprintf(err, en, "out of memory"), -1;
        }
    }
    if (b.len == 0) {
        buf_free(&b);
        return snprintf(err, en, "vars.context is empty"), -1;
    }
    g->context = buf_steal(&b, NULL);
    return g->context ? 0 : (snprintf(err, en, "out of memory"), -1);
}

static int load_query(ev_grader *g, const json_t *vars, char *err, size_t en)
{
    const json_t *q = json_object_get(vars, "query");
    if (!json_is_string(q))
        return snprintf(err, en, "%s needs the variable 'query' (vars.query, a string)", g->a->type), -1;
    g->query = clean_dup(json_string_value(q), json_string_length(q));
    return g->query ? 0 : (snprintf(err, en, "out of memory"), -1);
}

/* factuality's category scores: A subset, B superset, C agree, D disagree,
 * E differButFactual; promptfoo's defaults 1, 1, 1, 0, 1. */
static int load_factuality(ev_grader *g, char *err, size_t en)
{
    static const char *const keys[5] = { "subset", "superset", "agree", "disagree", "differButFactual" };
    static const double defaults[5] = { 1, 1, 1, 0, 1 };
    const json_t *f = cfg_get(g->a, "factuality");
    if (f && !json_is_object(f))
        return snprintf(err, en, "config.factuality must be an object"), -1;
    for (int k = 0; k < 5; k++) {
        const json_t *v = f ? json_object_get(f, keys[k]) : NULL;
        double d = defaults[k];
        if (v && (!num_of(v, &d) || d < 0 || d > 1))
            return snprintf(err, en, "config.factuality.%s must be a number from 0 to 1", keys[k]), -1;
        g->fact_score[k] = d;
    }
    return 0;
}

/* Renders one rubricPrompt message content with vars into a message. */
static json_t *render_message(const char *role, const char *content, const json_t *vars, bool *says_json, char *err,
                              size_t en)
{
    tpl *t;
    tpl_error te;
    if (tpl_compile(content, strlen(content), &t, &te) != ERR_OK) {
        snprintf(err, en, "rubricPrompt %d:%d: %s", te.line, te.col, te.message);
        return NULL;
    }
    buf out;
    buf_init(&out, GR_TEXT_MAX);
    err_code e = tpl_render(t, vars, NULL, &out, &te);
    tpl_free(t);
    json_t *m = NULL;
    if (e != ERR_OK)
        snprintf(err, en, "rubricPrompt: %s", e == ERR_INVAL ? te.message : err_message(e));
    else {
        char *clean = clean_dup(out.p ? out.p : "", out.len);
        if (clean && strcasestr(clean, "json"))
            *says_json = true;
        m = clean ? message(role, clean, strlen(clean)) : NULL;
        free(clean);
        if (!m)
            snprintf(err, en, "out of memory");
    }
    buf_free(&out);
    return m;
}

/* llm-rubric's rubricPrompt: a list of {role, content} messages (as JSON,
 * or as text holding that JSON), or a plain text that becomes one user
 * message. Contents are templates over the test's variables plus
 * {{output}} and {{rubric}}; a missing variable is an error naming it. */
static int load_rubric_prompt(ev_grader *g, const json_t *rp, const json_t *vars, char *err, size_t en)
{
    json_t *list = NULL, *tv = NULL;
    int rc = -1;
    if (json_is_string(rp)) {
        sv s = ts_trim(sv_make(json_string_value(rp), json_string_length(rp)));
        if (s.len && s.p[0] == '[')
            list = json_loadb(s.p, s.len, 0, NULL);
    } else if (json_is_array(rp)) {
        list = json_incref((json_t *)rp);
    } else {
        return snprintf(err, en, "config.rubricPrompt must be a string or a list of messages"), -1;
    }
    tv = json_is_object(vars) ? json_copy((json_t *)vars) : json_object();
    if (!tv || json_object_set_new(tv, "output", json_string(g->output)) ||
        json_object_set_new(tv, "rubric", json_string(g->value))) {
        snprintf(err, en, "out of memory");
        goto out;
    }
    g->custom = json_array();
    if (!g->custom) {
        snprintf(err, en, "out of memory");
        goto out;
    }
    if (!json_is_array(list)) {
        json_t *m = render_message("user", json_string_value(rp), tv, &g->custom_says_json, err, en);
        if (!m || json_array_append_new(g->custom, m))
            goto out;
    } else {
        size_t i;
        json_t *it;
        if (json_array_size(list) == 0) {
            snprintf(err, en, "config.rubricPrompt is an empty list");
            goto out;
        }
        json_array_foreach(list, i, it) {
            const json_t *role = json_object_get(it, "role"), *content = json_object_get(it, "content");
            if (!json_is_string(role) || !json_is_string(content)) {
                snprintf(err, en, "config.rubricPrompt message %zu needs string 'role' and 'content'", i + 1);
                goto out;
            }
            json_t *m = render_message(json_string_value(role), json_string_value(content), tv, &g->custom_says_json,
                                       err, en);
            if (!m || json_array_append_new(g->custom, m))
                goto out;
        }
    }
    rc = 0;
out:
    json_decref(list);
    json_decref(tv);
    return rc;
}

bool ev_grader_handles(const char *type)
{
    if (!type)
        return false;
    for (size_t i = 0; i < countof(graded_types); i++)
        if (strcmp(type, graded_types[i].name) == 0)
            return true;
    return false;
}

/* Prepares the check and queues its first call; a problem with the inputs
 * (or running out of memory) finishes it with an error instead. */
static void start(ev_grader *g, const ev_output *o)
{
    const ev_assert *a = g->a;
    const json_t *vars = json_is_object(o->vars) ? o->vars : NULL;
    json_t *empty = NULL;
    char err[512] = "";
    if (!vars)
        vars = empty = json_object();

    g->output = clean_dup(o->text, o->text ? (o->len ? o->len : strlen(o->text)) : 0);
    g->prompt = clean_dup(o->prompt, o->prompt ? strlen(o->prompt) : 0);
    if (!g->output || !g->prompt || !vars) {
        finish_error(g, "out of memory");
        goto out;
    }

    switch (g->kind) {
    case G_SIMILAR:
        g->threshold = isnan(a->threshold) ? 0.75 : a->threshold;
        if (value_list(g, vars, err, sizeof err))
            break;
        if (!strv_push(&g->embed, g->output, strlen(g->output))) {
            snprintf(err, sizeof err, "out of memory");
            break;
        }
        for (size_t i = 0; i < g->items.n; i++)
            if (!strv_push(&g->embed, g->items.v[i], strlen(g->items.v[i]))) {
                snprintf(err, sizeof err, "out of memory");
                break;
            }
        if (!*err)
            queue_embed(g);
        break;
    case G_RUBRIC: {
        const json_t *rp = cfg_get(a, "rubricPrompt");
        g->threshold = a->threshold;
        if (!a->value || json_is_null(a->value)) {
            snprintf(err, sizeof err, "llm-rubric needs a value (the rubric)");
            break;
        }
        if (!(g->value = value_text(a->value, vars))) {
            snprintf(err, sizeof err, "out of memory");
            break;
        }
        if (rp && load_rubric_prompt(g, rp, vars, err, sizeof err))
            break;
        ask_rubric(g);
        break;
    }
    case G_FACTUALITY:
    case G_CLOSEDQA:
        g->threshold = a->threshold;
        if (!a->value || json_is_null(a->value)) {
            snprintf(err, sizeof err, "%s needs a value (%s)", a->type,
                     g->kind == G_FACTUALITY ? "the reference answer" : "the criterion");
            break;
        }
        if (!(g->value = value_text(a->value, vars))) {
            snprintf(err, sizeof err, "out of memory");
            break;
        }
        if (g->kind == G_FACTUALITY) {
            if (load_factuality(g, err, sizeof err))
                break;
            ask_factuality(g);
        } else {
            ask_closedqa(g);
        }
        break;
    case G_GEVAL:
        g->threshold = isnan(a->threshold) ? 0.7 : a->threshold;
        if (value_list(g, vars, err, sizeof err))
            break;
        ask_geval_steps(g);
        break;
    case G_ANSWER_REL: {
        const json_t *q = json_object_get(vars, "query");
        g->threshold = isnan(a->threshold) ? 0.7 : a->threshold;
        if (json_is_string(q) && json_string_length(q))
            g->query = clean_dup(json_string_value(q), json_string_length(q));
        else if (*g->prompt)
            g->query = clean_dup(g->prompt, strlen(g->prompt));
        else {
            snprintf(err, sizeof err, "answer-relevance needs the variable 'query' (vars.query) or a prompt");
            break;
        }
        if (!g->query) {
            snprintf(err, sizeof err, "out of memory");
            break;
        }
        ask_questions(g);
        break;
    }
    case G_FAITHFUL:
        g->threshold = isnan(a->threshold) ? 0 : a->threshold;
        if (load_query(g, vars, err, sizeof err) || load_context(g, vars, false, err, sizeof err))
            break;
        ask_statements(g);
        break;
    case G_RECALL:
        g->threshold = isnan(a->threshold) ? 0 : a->threshold;
        if (!json_is_string(a->value)) {
            snprintf(err, sizeof err, "context-recall needs a value (the reference answer, a string)");
            break;
        }
        if (!(g->value = value_text(a->value, vars))) {
            snprintf(err, sizeof err, "out of memory");
            break;
        }
        if (load_context(g, vars, false, err, sizeof err))
            break;
        ask_recall(g);
        break;
    case G_CTX_REL:
        g->threshold = isnan(a->threshold) ? 0 : a->threshold;
        if (load_query(g, vars, err, sizeof err) || load_context(g, vars, true, err, sizeof err))
            break;
        if (g->items.n == 0) {
            snprintf(err, sizeof err, "vars.context is empty");
            break;
        }
        ask_relevance(g);
        break;
    }
    if (*err)
        finish_error(g, "%s: %s", a->type, err);
out:
    json_decref(empty);
}

err_code ev_grader_new(const ev_assert *a, const ev_output *o, ev_grader **out)
{
    *out = NULL;
    if (!a || !o || !a->type)
        return ERR_INVAL;
    size_t i;
    for (i = 0; i < countof(graded_types); i++)
        if (strcmp(a->type, graded_types[i].name) == 0)
            break;
    if (i == countof(graded_types))
        return ERR_INVAL;
    ev_grader *g = calloc(1, sizeof *g);
    if (!g)
        return ERR_NOMEM;
    g->a = a;
    g->kind = graded_types[i].kind;
    g->metric = graded_types[i].metric;
    g->threshold = NAN;
    buf_init(&g->reasons, GR_REASON_MAX);
    start(g, o);
    if (!g->pending && !g->done) /* cannot happen: every path queues or finishes */
        finish_error(g, "%s: nothing to do", a->type);
    if (g->done && g->verdict == EV_ERROR && !g->reason) {
        ev_grader_free(g);
        return ERR_NOMEM;
    }
    *out = g;
    return ERR_OK;
}

bool ev_grader_next(ev_grader *g, ev_call *call, ev_result *r)
{
    if (!g->done && g->pending) {
        memset(call, 0, sizeof *call);
        call->kind = g->call_kind;
        call->provider = g->a->provider;
        if (g->call_kind == EV_CALL_CHAT) {
            call->messages = g->messages;
            call->json_output = g->json_mode;
        } else {
            call->texts = g->texts;
            call->ntexts = g->embed.n;
        }
        return true;
    }
    if (!g->done)
        finish_error(g, "%s: no call pending and no result", g->a->type);
    r->verdict = g->verdict;
    r->score = g->score;
    r->reason = g->reason ? strdup(g->reason) : NULL;
    return false;
}

void ev_grader_reply_chat(ev_grader *g, err_code e, const char *text, const char *msg)
{
    if (g->done)
        return;
    if (!g->pending || g->call_kind != EV_CALL_CHAT) {
        finish_error(g, "%s: a chat reply came for an embeddings call", g->a->type);
        return;
    }
    if (e != ERR_OK) {
        finish_error(g, "judge call failed: %s", msg && *msg ? msg : err_message(e));
        return;
    }
    size_t len = text ? strlen(text) : 0;
    char err[320] = "";
    if (len == 0)
        snprintf(err, sizeof err, "empty reply");
    else if (parse_reply(g, text, len, err, sizeof err))
        return;
    if (!g->repaired) {
        queue_repair(g, text ? text : "", len, err);
        return;
    }
    finish_error(g, "judge reply not valid JSON: %s", err);
}

void ev_grader_reply_embed(ev_grader *g, err_code e, const double *const *vecs, size_t dim, const char *msg)
{
    if (g->done)
        return;
    if (!g->pending || g->call_kind != EV_CALL_EMBED) {
        finish_error(g, "%s: an embeddings reply came for a chat call", g->a->type);
        return;
    }
    if (e != ERR_OK) {
        finish_error(g, "embeddings call failed: %s", msg && *msg ? msg : err_message(e));
        return;
    }
    if (!vecs || dim == 0) {
        finish_error(g, "embeddings call returned no vectors");
        return;
    }
    for (size_t i = 0; i < g->embed.n; i++)
        if (!vecs[i]) {
            finish_error(g, "embeddings call returned no vector for text %zu", i + 1);
            return;
        }
    if (g->kind == G_SIMILAR)
        on_similar(g, vecs, dim);
    else if (g->kind == G_ANSWER_REL)
        on_question_vectors(g, vecs, dim);
    else
        finish_error(g, "%s: unexpected embeddings reply", g->a->type);
}

void ev_grader_free(ev_grader *g)
{
    if (!g)
        return;
    clear_call(g);
    free(g->reason);
    free(g->output);
    free(g->prompt);
    free(g->value);
    free(g->query);
    free(g->context);
    free(g->steps);
    json_decref(g->custom);
    strv_free(&g->items);
    buf_free(&g->reasons);
    free(g);
}

/* ---- external commands -------------------------------------------------------------- */

static void result_set(ev_result *r, ev_verdict v, double score, const char *fmt, ...) PRINTF_LIKE(4, 5);
static void result_set(ev_result *r, ev_verdict v, double score, const char *fmt, ...)
{
    char tmp[GR_REASON_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    r->verdict = v;
    r->score = isfinite(score) ? score : 0;
    r->reason = clean_dup(tmp, strlen(tmp));
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The last non-empty line of the stderr tail, trimmed, at most 300 bytes. */
static void last_line(const buf *b, char *out, size_t n)
{
    sv s = ts_trim(sv_make(b->p ? b->p : "", b->len));
    const char *nl = s.len ? memrchr(s.p, '\n', s.len) : NULL;
    if (nl) {
        s.len -= (size_t)(nl + 1 - s.p);
        s.p = nl + 1;
    }
    s = ts_trim(s);
    snprintf(out, n, "%.*s", (int)MIN(s.len, 300), s.p);
}

/* The JSON sent to the command on stdin. NULL on out of memory. */
static char *command_input(const ev_assert *a, const ev_output *o)
{
    json_t *in = json_object(), *as = json_object();
    char *text = NULL;
    if (!in || !as)
        goto out;
    char *answer = clean_dup(o->text, o->text ? (o->len ? o->len : strlen(o->text)) : 0);
    char *prompt = clean_dup(o->prompt, o->prompt ? strlen(o->prompt) : 0);
    bool ok = answer && prompt && json_object_set_new(in, "output", json_string(answer)) == 0 &&
              json_object_set_new(in, "prompt", json_string(prompt)) == 0 &&
              (json_is_object(o->vars) ? json_object_set(in, "vars", (json_t *)o->vars)
                                       : json_object_set_new(in, "vars", json_object())) == 0 &&
              json_object_set(as, "value", a->value ? a->value : json_null()) == 0 &&
              json_object_set_new(as, "threshold", isnan(a->threshold) ? json_null() : json_real(a->threshold)) == 0 &&
              json_object_set(as, "config", a->config ? a->config : json_null()) == 0 &&
              json_object_set(in, "assertion", as) == 0;
    free(answer);
    free(prompt);
    if (ok)
        text = json_dumps(in, JSON_COMPACT | JSON_REAL_PRECISION(15));
out:
    json_decref(as);
    json_decref(in);
    return text;
}

/* Parses the command's stdout into r (threshold th applied when the
 * command gives no pass). false with err set when it is not a result. */
static bool command_result(const buf *outb, double th, ev_result *r, char *err, size_t en)
{
    sv s = ts_trim(sv_make(outb->p ? outb->p : "", outb->len));
    json_t *j = NULL;
    if (s.len == 0)
        return snprintf(err, en, "no output on stdout"), false;
    j = json_loadb(s.p, s.len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL);
    if (!j) { /* a command may log before its result: try the last line alone */
        const char *nl = memrchr(s.p, '\n', s.len);
        if (nl)
            j = json_loadb(nl + 1, s.len - (size_t)(nl + 1 - s.p), JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL);
    }
    if (!j)
        return snprintf(err, en, "stdout is not JSON: %.*s", (int)MIN(s.len, 120), s.p), false;
    double score = 0;
    bool pass, ok = true;
    const char *reason = NULL;
    if (num_of(j, &score)) {
        pass = ge_threshold(score, th);
    } else if (json_is_boolean(j)) {
        pass = json_is_true(j);
        score = pass ? 1 : 0;
    } else if (json_is_object(j)) {
        const json_t *pv = json_object_get(j, "pass"), *sv_ = json_object_get(j, "score"),
                     *rv = json_object_get(j, "reason");
        if (pv && !json_is_boolean(pv))
            ok = (snprintf(err, en, "'pass' is not a boolean"), false);
        else if (sv_ && !num_of(sv_, &score))
            ok = (snprintf(err, en, "'score' is not a number"), false);
        else if (!pv && !sv_)
            ok = (snprintf(err, en, "the object has neither 'score' nor 'pass'"), false);
        else if (rv && !json_is_string(rv) && !json_is_null(rv))
            ok = (snprintf(err, en, "'reason' is not a string"), false);
        if (ok) {
            if (!sv_)
                score = json_is_true(pv) ? 1 : 0;
            pass = pv ? json_is_true(pv) : ge_threshold(score, th);
            reason = json_is_string(rv) ? json_string_value(rv) : NULL;
        }
    } else {
        ok = (snprintf(err, en, "stdout is neither a number nor an object"), false);
    }
    if (ok) {
        if (reason && *reason)
            result_set(r, pass ? EV_PASS : EV_FAIL, score, "%s", reason);
        else
            result_set(r, pass ? EV_PASS : EV_FAIL, score, "command score %g %s threshold %g", score,
                       pass ? ">=" : "<", th);
    }
    json_decref(j);
    return ok;
}

void ev_command_check(const ev_assert *a, const ev_output *o, ev_result *r)
{
    int in_sv[2] = { -1, -1 }, out_p[2] = { -1, -1 }, err_p[2] = { -1, -1 };
    char *input = NULL;
    pid_t pid = -1;
    buf outb, errb;
    buf_init(&outb, CMD_STDOUT_MAX);
    buf_init(&errb, CMD_STDERR_KEEP * 2);
    memset(r, 0, sizeof *r);

    if (!json_is_string(a->value) || json_string_length(a->value) == 0 ||
        strlen(json_string_value(a->value)) != json_string_length(a->value)) {
        result_set(r, EV_ERROR, 0, "%s: value must be a shell command line", a->type ? a->type : "command");
        goto out;
    }
    double th = isnan(a->threshold) ? 0.5 : a->threshold;
    long timeout_ms = CMD_TIMEOUT_MS;
    const json_t *tv = cfg_get(a, "timeout_ms");
    if (tv) {
        double d;
        if (!num_of(tv, &d) || d <= 0 || d > 86400000.0) {
            result_set(r, EV_ERROR, 0, "command: config.timeout_ms must be a positive number of milliseconds");
            goto out;
        }
        timeout_ms = (long)d;
    }
    if (!(input = command_input(a, o))) {
        result_set(r, EV_ERROR, 0, "command: out of memory");
        goto out;
    }
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in_sv) || pipe2(out_p, O_CLOEXEC) ||
        pipe2(err_p, O_CLOEXEC)) {
        result_set(r, EV_ERROR, 0, "command: cannot make pipes: %s", strerror(errno));
        goto out;
    }

    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    sigset_t none, dfl;
    sigemptyset(&none);
    sigemptyset(&dfl);
    sigaddset(&dfl, SIGPIPE);
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in_sv[1], 0);
    posix_spawn_file_actions_adddup2(&fa, out_p[1], 1);
    posix_spawn_file_actions_adddup2(&fa, err_p[1], 2);
    posix_spawnattr_init(&attr);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    posix_spawnattr_setpgroup(&attr, 0);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &dfl);
    char *argv[] = { "sh", "-c", (char *)json_string_value(a->value), NULL };
    int rc = posix_spawn(&pid, "/bin/sh", &fa, &attr, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    close(in_sv[1]);
    close(out_p[1]);
    close(err_p[1]);
    in_sv[1] = out_p[1] = err_p[1] = -1;
    if (rc != 0) {
        pid = -1;
        result_set(r, EV_ERROR, 0, "command: cannot run /bin/sh: %s", strerror(rc));
        goto out;
    }
    fcntl(in_sv[0], F_SETFL, fcntl(in_sv[0], F_GETFL) | O_NONBLOCK);
    fcntl(out_p[0], F_SETFL, fcntl(out_p[0], F_GETFL) | O_NONBLOCK);
    fcntl(err_p[0], F_SETFL, fcntl(err_p[0], F_GETFL) | O_NONBLOCK);

    size_t in_len = strlen(input), in_off = 0;
    bool out_big = false, timed_out = false;
    long long deadline = now_ms() + timeout_ms;
    if (in_len == 0) {
        close(in_sv[0]);
        in_sv[0] = -1;
    }
    while (out_p[0] >= 0 || err_p[0] >= 0) {
        struct pollfd pf[3];
        int np = 0, iw = -1, io = -1, ie = -1;
        if (in_sv[0] >= 0)
            iw = np, pf[np++] = (struct pollfd){ in_sv[0], POLLOUT, 0 };
        if (out_p[0] >= 0)
            io = np, pf[np++] = (struct pollfd){ out_p[0], POLLIN, 0 };
        if (err_p[0] >= 0)
            ie = np, pf[np++] = (struct pollfd){ err_p[0], POLLIN, 0 };
        long long left = deadline - now_ms();
        if (left <= 0) {
            timed_out = true;
            break;
        }
        int n = poll(pf, (nfds_t)np, (int)MIN(left, 1000));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            result_set(r, EV_ERROR, 0, "command: poll: %s", strerror(errno));
            goto out;
        }
        if (iw >= 0 && pf[iw].revents) {
            ssize_t w = send(in_sv[0], input + in_off, in_len - in_off, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (w > 0)
                in_off += (size_t)w;
            if ((w < 0 && errno != EAGAIN && errno != EINTR) || in_off == in_len || (pf[iw].revents & (POLLERR | POLLHUP))) {
                close(in_sv[0]); /* EOF for the child, or it stopped reading: either way we are done */
                in_sv[0] = -1;
            }
        }
        int idx[2] = { io, ie };
        int *fds[2] = { &out_p[0], &err_p[0] };
        for (int k = 0; k < 2; k++) {
            if (idx[k] < 0 || !pf[idx[k]].revents)
                continue;
            char chunk[16384];
            ssize_t got = read(*fds[k], chunk, sizeof chunk);
            if (got > 0) {
                if (k == 0) {
                    if (buf_append(&outb, chunk, (size_t)got))
                        out_big = true;
                } else { /* keep only the tail: at most 2 x CMD_STDERR_KEEP bytes */
                    const char *c = chunk;
                    size_t clen = (size_t)got;
                    if (clen > CMD_STDERR_KEEP) {
                        c += clen - CMD_STDERR_KEEP;
                        clen = CMD_STDERR_KEEP;
                    }
                    if (errb.len + clen > errb.max)
                        buf_consume(&errb, errb.len + clen - errb.max);
                    (void)buf_append(&errb, c, clen);
                }
            } else if (got == 0 || (errno != EAGAIN && errno != EINTR)) {
                close(*fds[k]);
                *fds[k] = -1;
            }
        }
    }

    int status = 0;
    if (!timed_out) {
        /* the pipes are closed; give the child until the deadline to exit */
        for (;;) {
            pid_t w = waitpid(pid, &status, WNOHANG);
            if (w == pid)
                break;
            if (w < 0 && errno != EINTR) {
                result_set(r, EV_ERROR, 0, "command: waitpid: %s", strerror(errno));
                pid = -1;
                goto out;
            }
            if (now_ms() >= deadline) {
                timed_out = true;
                break;
            }
            struct timespec ts = { 0, 2000000 };
            nanosleep(&ts, NULL);
        }
    }
    char tail[320];
    if (timed_out) {
        kill(-pid, SIGKILL);
        kill(pid, SIGKILL);
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
        pid = -1;
        last_line(&errb, tail, sizeof tail);
        result_set(r, EV_ERROR, 0, "command timed out after %ld ms%s%s", timeout_ms, *tail ? ": " : "", tail);
        goto out;
    }
    pid = -1;
    last_line(&errb, tail, sizeof tail);
    if (WIFSIGNALED(status)) {
        result_set(r, EV_ERROR, 0, "command killed by signal %d%s%s", WTERMSIG(status), *tail ? ": " : "", tail);
        goto out;
    }
    if (WEXITSTATUS(status) != 0) {
        result_set(r, EV_ERROR, 0, "command exited with status %d%s%s", WEXITSTATUS(status), *tail ? ": " : "", tail);
        goto out;
    }
    if (out_big) {
        result_set(r, EV_ERROR, 0, "command wrote more than %zu bytes to stdout", CMD_STDOUT_MAX);
        goto out;
    }
    char why[256];
    if (!command_result(&outb, th, r, why, sizeof why)) {
        result_set(r, EV_ERROR, 0, "command output not a result: %s%s%s", why, *tail ? "; stderr: " : "", tail);
        goto out;
    }
    if (a->negate && r->verdict != EV_ERROR) {
        r->verdict = r->verdict == EV_PASS ? EV_FAIL : EV_PASS;
        if (r->score >= 0 && r->score <= 1)
            r->score = 1 - r->score;
    }
out:
    if (pid > 0) {
        kill(-pid, SIGKILL);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
    }
    for (int k = 0; k < 2; k++) {
        if (in_sv[k] >= 0)
            close(in_sv[k]);
        if (out_p[k] >= 0)
            close(out_p[k]);
        if (err_p[k] >= 0)
            close(err_p[k]);
    }
    free(input);
    buf_free(&outb);
    buf_free(&errb);
}
