/*
 * fuzz_prompt_file.c - libFuzzer driver for the prompt file parser
 * (src/prompt/files.c): the input is parsed as "x.yaml" and as "x.md".
 *
 * The input is copied to an exact-size heap buffer so ASan sees any read
 * past its end. Besides "no crash, no leak" the driver checks the
 * contract and aborts when it is broken:
 *  - ERR_OK gives a valid name, a config object, a template (text) or a
 *    non-empty messages array (chat); ERR_PARSE gives a cleared file, the
 *    path, a message, and a line/column inside the file (or 0 for "not
 *    about a position"); nothing else is returned;
 *  - a parsed prompt written back with prompt_file_write (to a private
 *    folder under /tmp) parses again to the same type, template or
 *    messages, and config.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "prompt/files.h"

static char outdir[64];

static void remove_outdir(void)
{
    if (outdir[0])
        rmdir(outdir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    snprintf(outdir, sizeof outdir, "/tmp/fuzz-prompt-file-XXXXXX");
    if (!mkdtemp(outdir))
        outdir[0] = '\0';
    atexit(remove_outdir);
    return 0;
}

static void check_error(const prompt_file *f, const prompt_file_error *e, const char *path, const char *text,
                        size_t len)
{
    if (f->name || f->path || f->config || f->template || f->messages || f->labels || f->message)
        abort();
    if (strcmp(e->path, path) != 0 || e->message[0] == '\0')
        abort();
    size_t lines = 1;
    for (size_t i = 0; i < len; i++)
        lines += text[i] == '\n';
    if (e->line < 0 || e->col < 0 || (size_t)e->line > lines + 1)
        abort();
    if ((e->line == 0) != (e->col == 0))
        abort();
}

/* Writes f back as a file and parses it again: the content must match. */
static void round_trip(const prompt_file *f)
{
    if (!outdir[0] || strchr(f->name, '/'))
        return;
    json_t *v = json_pack("{s:s, s:s, s:O}", "name", f->name, "type", f->type == PROMPT_CHAT ? "chat" : "text",
                          "config", f->config);
    if (!v)
        abort();
    if (f->type == PROMPT_CHAT)
        json_object_set(v, "messages", f->messages);
    else
        json_object_set_new(v, "template", json_string(f->template));
    char *rel = NULL;
    prompt_file_error e;
    if (prompt_file_write(outdir, v, &rel, &e) != ERR_OK)
        abort();
    char full[512];
    snprintf(full, sizeof full, "%s/%s", outdir, rel);
    FILE *fp = fopen(full, "rb");
    if (!fp)
        abort();
    static char buf[(1u << 20) + 1];
    size_t n = fread(buf, 1, sizeof buf, fp);
    fclose(fp);
    unlink(full);
    prompt_file back;
    if (prompt_file_parse(rel, buf, n, &back, &e) != ERR_OK) {
        fprintf(stderr, "written file does not parse: %s:%d:%d %s\n%.*s\n", e.path, e.line, e.col, e.message,
                (int)n, buf);
        abort();
    }
    bool same = back.type == f->type && strcmp(back.name, f->name) == 0 && json_equal(back.config, f->config) &&
                (f->type == PROMPT_CHAT ? json_equal(back.messages, f->messages)
                                        : strcmp(back.template, f->template) == 0);
    if (!same) {
        fprintf(stderr, "written file reads back different:\n%.*s\n", (int)n, buf);
        abort();
    }
    prompt_file_clear(&back);
    free(rel);
    json_decref(v);
}

static void one(const char *path, const char *text, size_t len)
{
    prompt_file f;
    prompt_file_error e;
    err_code r = prompt_file_parse(path, text, len, &f, &e);
    if (r == ERR_OK) {
        query_error qe;
        if (!f.name || !prompt_name_valid(f.name, &qe) || !json_is_object(f.config) || strcmp(f.path, path) != 0)
            abort();
        if (f.type == PROMPT_CHAT ? (!json_is_array(f.messages) || json_array_size(f.messages) == 0 || f.template)
                                  : (!f.template || f.messages))
            abort();
        for (size_t i = 0; i < f.nlabels; i++)
            if (!prompt_label_valid(f.labels[i], &qe))
                abort();
        round_trip(&f);
        prompt_file_clear(&f);
    } else if (r == ERR_PARSE) {
        check_error(&f, &e, path, text, len);
    } else {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size ? size : 1);
    if (!text)
        return 0;
    if (size)
        memcpy(text, data, size);
    one("x.yaml", text, size);
    one("x.md", text, size);
    free(text);
    return 0;
}
