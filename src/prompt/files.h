/*
 * files.h - prompts as code: a folder of prompt files under version
 * control, read for `genaiops prompt push DIR` and written by `pull`.
 *
 * A prompt's name is its path under the folder without the extension
 * (prompts/support/answer.yaml -> support/answer) unless the file says
 * `name:`. Two formats:
 *
 *   *.yaml / *.yml:
 *     type: chat                      # text (default when `template:` is set) or chat
 *     messages:                       # chat
 *       - { role: system, content: "You answer for {{company}}." }
 *       - role: user
 *         content: |
 *           {{question}}
 *     template: "..."                 # text
 *     config: { model: gpt-4o-mini, temperature: 0.2 }
 *     labels: [staging]               # optional: pointed at the pushed version
 *     message: "shorter answers"      # optional commit message
 *
 *   *.md: YAML front matter between `---` lines (the same keys but
 *     template/messages), then the body, which is the template of a text
 *     prompt (the body's first line is the one after the closing `---`).
 *
 * Every *.yaml, *.yml and *.md file is a prompt (a .md file without front
 * matter is a text prompt whose whole text is the template), except
 * README.md (any case); dot files and dot directories are skipped, other
 * extensions ignored. Unknown keys are an error naming file, line and key,
 * so a typo is never silently dropped.
 */
#ifndef GENAIOPS_FILES_H
#define GENAIOPS_FILES_H

#include <jansson.h>
#include "core/common.h"
#include "core/err.h"
#include "prompt/registry.h"

/* A parsed prompt file. Strings and JSON are owned by the file set. */
typedef struct prompt_file {
    char *path;                   /* relative to the folder, '/'-separated */
    char *name;
    prompt_type type;
    char *template;               /* text */
    json_t *messages;             /* chat */
    json_t *config;               /* never NULL ({} when absent) */
    char **labels;
    size_t nlabels;
    char *message;                /* NULL when absent */
} prompt_file;

typedef struct prompt_fileset {
    prompt_file *files;
    size_t n;
} prompt_fileset;

typedef struct prompt_file_error {
    char path[512];               /* the file (relative to the folder) */
    int line, col;                /* 1-based; 0 when not about a position */
    char message[512];
} prompt_file_error;

/* Parses one file's text (path decides the format and, without `name:`,
 * the name). ERR_PARSE with e (path, line, column, message) on bad YAML,
 * bad front matter, unknown or ill-typed keys, an invalid name, or a
 * template that does not compile (the template's line/col translated to
 * the file's). */
err_code prompt_file_parse(const char *path, const char *text, size_t len, prompt_file *out, prompt_file_error *e);
void prompt_file_clear(prompt_file *f);

/* Reads every prompt file under dir (recursively, sorted by path). All or
 * nothing: the first bad file fails the whole read with e. Two files with
 * the same prompt name are an error naming both. */
err_code prompt_dir_read(const char *dir, prompt_fileset *out, prompt_file_error *e);
void prompt_fileset_free(prompt_fileset *s);

/* The registry inputs for a fileset (pointers into s; valid while s lives);
 * `author`, `message` (used when a file has none) and extra labels apply to
 * every input. Caller frees *out (one allocation, labels included). */
err_code prompt_fileset_inputs(const prompt_fileset *s, const char *author, const char *message,
                               const char *const *labels, size_t nlabels, prompt_input **out);

/* Writes one version (the JSON of registry.h) as a file under dir:
 * text prompts as NAME.md (front matter + body), chat prompts as NAME.yaml,
 * creating directories; *written gets the relative path (caller frees).
 * Reading the file back yields the same content hash. */
err_code prompt_file_write(const char *dir, const json_t *version, char **written, prompt_file_error *e);

#endif
