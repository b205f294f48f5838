/*
 * fuzz_suite.c - libFuzzer driver for eval/suite.c: load a promptfoo
 * suite and stream all of its tests.
 *
 * The input holds up to four files separated by lines "%%%": the suite
 * (suite.yaml), then t.csv, t.jsonl and t.yaml, written into a private
 * folder so the suite can name them (file://t.csv...). Inputs that reach
 * outside that folder (absolute paths, "..") are skipped. Besides "no
 * crash, no leak" the driver checks: a failed load gives a message and no
 * suite; a loaded suite has prompts and its test count equals the number
 * of tests streamed (when the stream does not fail), each test an object
 * with a vars mapping; a stream error has a message.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "eval/suite.h"

#define STREAM_MAX 20000

static char dir[64];
static const char *const names[] = { "suite.yaml", "t.csv", "t.jsonl", "t.yaml" };

static void cleanup(void)
{
    if (!dir[0])
        return;
    char p[128];
    for (size_t i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        unlink(p);
    }
    rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    snprintf(dir, sizeof dir, "/tmp/fuzz-suite-XXXXXX");
    if (!mkdtemp(dir))
        dir[0] = '\0';
    atexit(cleanup);
    return 0;
}

static void put(size_t i, const char *p, size_t n)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, names[i]);
    FILE *f = fopen(path, "wb");
    if (!f)
        return;
    if (n)
        fwrite(p, 1, n, f);
    fclose(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!dir[0])
        return 0;
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    /* stay inside the folder: no absolute or parent paths, no globs over the system */
    if (memmem(text, size, "file:///", 8) || memmem(text, size, "..", 2) || memmem(text, size, "://~", 4)) {
        free(text);
        return 0;
    }
    const char *p = text;
    size_t left = size;
    for (size_t i = 0; i < 4; i++) {
        const char *sep = memmem(p, left, "\n%%%\n", 5);
        size_t n = sep ? (size_t)(sep - p) : left;
        put(i, p, i == 3 || !sep ? left : n);
        if (!sep) {
            for (size_t k = i + 1; k < 4; k++)
                put(k, "", 0);
            break;
        }
        left -= n + 5;
        p = sep + 5;
    }
    char path[128], m[1024];
    snprintf(path, sizeof path, "%s/suite.yaml", dir);
    ev_suite *s = NULL;
    ev_diag d;
    err_code r = ev_suite_load(path, &s, &d);
    if (r != ERR_OK) {
        if (s || !d.msg[0] || !ev_diag_format(&d, m, sizeof m)[0])
            abort();
        free(text);
        return 0;
    }
    if (s->nprompts == 0 || !s->path || !s->dir)
        abort();
    for (size_t i = 0; i < s->nprompts; i++)
        if (!s->prompts[i].label || (!s->prompts[i].raw && !s->prompts[i].ref))
            abort();
    ev_tests *it = ev_tests_open(s, &d);
    if (!it) {
        if (!d.msg[0])
            abort();
    } else {
        size_t n = 0;
        json_t *t;
        ev_diag w;
        int rc;
        while (n < STREAM_MAX && (rc = ev_tests_next(it, &t, &w, &d)) == 1) {
            if (!json_is_object(t) || !json_is_object(json_object_get(t, "vars")))
                abort();
            const json_t *as = json_object_get(t, "assert");
            int line, col;
            if (json_array_size(as))
                (void)ev_tests_pos(it, json_array_get(as, 0), &line, &col);
            json_decref(t);
            n++;
        }
        if (n < STREAM_MAX) {
            if (rc < 0 && !d.msg[0])
                abort();
            if (rc == 0 && n != s->ntests)
                abort();
        }
        ev_tests_close(it);
    }
    ev_suite_free(s);
    free(text);
    return 0;
}
