/* fuzz_grader.c - libFuzzer target for the graders (judge replies are model
 * output, i.e. untrusted input): drives every graded
 * type with replies taken from the input. Layout: byte 0 type, byte 1 flags,
 * then pieces separated by 0x01: vars JSON, value JSON, config JSON, replies... */
#include <math.h>
#include <stdlib.h>
#include "eval/grader.h"
#include "eval/textsim.h"

static const char *types[] = { "similar", "similar:dot", "similar:euclidean", "llm-rubric", "factuality",
    "model-graded-closedqa", "g-eval", "answer-relevance", "context-faithfulness", "context-recall",
    "context-relevance" };

static bool count(void *ud, sv s) { (*(size_t *)ud) += s.len; return true; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t junk = 0;
    ts_sentences(sv_make((const char *)data, size), count, &junk);
    ts_lines(sv_make((const char *)data, size), count, &junk);
    const char *piece[16];
    size_t plen[16], np = 0;
    size_t start = 2;
    for (size_t i = 2; i <= size && np < 16; i++) {
        if (i == size || data[i] == 1) {
            piece[np] = (const char *)data + start;
            plen[np++] = i - start;
            start = i + 1;
        }
    }
    char *str[16];
    for (size_t i = 0; i < np; i++) {
        str[i] = malloc(plen[i] + 1);
        memcpy(str[i], piece[i], plen[i]);
        str[i][plen[i]] = 0;
    }
    ev_assert a = { 0 };
    a.type = (char *)types[data[0] % (sizeof types / sizeof types[0])];
    a.negate = data[1] & 1;
    a.threshold = (data[1] & 2) ? (data[1] >> 2) / 32.0 : NAN;
    a.weight = 1;
    json_t *vars = np > 0 ? json_loadb(piece[0], plen[0], 0, NULL) : NULL;
    a.value = np > 1 ? json_loadb(piece[1], plen[1], JSON_DECODE_ANY, NULL) : NULL;
    a.config = np > 2 ? json_loadb(piece[2], plen[2], 0, NULL) : NULL;
    if (!vars)
        vars = json_object();
    ev_output o = { 0 };
    o.text = np > 3 ? str[3] : "answer";
    o.len = strlen(o.text);
    o.prompt = np > 4 ? str[4] : NULL;
    o.vars = vars;
    ev_grader *g;
    if (ev_grader_new(&a, &o, &g) == ERR_OK) {
        ev_call c;
        ev_result r = { 0 };
        size_t next = 5, guard = 0;
        while (ev_grader_next(g, &c, &r) && guard++ < 64) {
            if (c.kind == EV_CALL_CHAT) {
                char *d = json_dumps(c.messages, JSON_COMPACT);
                if (!d) __builtin_trap(); /* messages must always be valid JSON */
                free(d);
                if (next < np)
                    ev_grader_reply_chat(g, ERR_OK, str[next++], NULL);
                else
                    ev_grader_reply_chat(g, ERR_UPSTREAM, NULL, "no more");
            } else {
                size_t dim = 3;
                double *store = calloc(c.ntexts * dim + 1, sizeof(double));
                const double **v = calloc(c.ntexts + 1, sizeof *v);
                const char *src = next < np ? str[next] : "";
                size_t sl = strlen(src);
                for (size_t i = 0; i < c.ntexts * dim; i++)
                    store[i] = sl ? (double)(signed char)src[i % sl] : 0;
                for (size_t i = 0; i < c.ntexts; i++)
                    v[i] = store + i * dim;
                next++;
                ev_grader_reply_embed(g, ERR_OK, v, dim, NULL);
                free(store);
                free(v);
            }
        }
        if (isnan(r.score) || r.verdict > EV_ERROR) __builtin_trap();
        ev_result_clear(&r);
        ev_grader_free(g);
    }
    json_decref(vars);
    json_decref(a.value);
    json_decref(a.config);
    for (size_t i = 0; i < np; i++)
        free(str[i]);
    return 0;
}
