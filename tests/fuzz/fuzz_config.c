/*
 * fuzz_config.c - libFuzzer driver for the YAML config loader
 * (src/core/config.c): config_load_string on arbitrary bytes.
 *
 * The input is copied to an exact-size heap buffer so ASan sees any read
 * past its end. Besides "no crash, no leak" the driver checks the loader's
 * contract and aborts (a crash for libFuzzer) when it is broken:
 *  - ERR_OK gives a config and no error diagnostic; ERR_CONFIG gives no
 *    config and at least one error; nothing else is returned;
 *  - every diagnostic has a path and a message;
 *  - a loaded config has at least one provider, every named entry has a
 *    name, every model's provider exists, and every string is readable.
 * Two variables are set so ${FZ_A} and ${FZ_EMPTY} expand.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/log.h"

static FILE *devnull;
static volatile size_t sink;

static void touch(const char *s)
{
    if (s)
        sink += strlen(s);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    setenv("FZ_A", "value", 1);
    setenv("FZ_EMPTY", "", 1);
    log_set_level(L_OFF);
    devnull = fopen("/dev/null", "w");
    return 0;
}

static void check_config(const config *c)
{
    if (c->nproviders == 0)
        abort();
    touch(c->server.listen);
    touch(c->server.admin_key);
    touch(c->store_url);
    touch(c->log.level);
    touch(c->log.format);
    if (config_parse_listen(c->server.listen, NULL, 0, NULL) != ERR_OK)
        abort();
    for (size_t i = 0; i < c->nproviders; i++) {
        const cfg_provider *p = &c->providers[i];
        if (!p->name || config_find_provider(c, sv_from(p->name)) == NULL)
            abort();
        touch(p->base_url);
        touch(p->api_key);
        touch(p->api_version);
        touch(p->sim.default_mode);
        for (size_t j = 0; j < p->nheaders; j++) {
            touch(p->headers[j].name);
            touch(p->headers[j].value);
        }
        for (size_t j = 0; j < p->sim.ncanned; j++)
            touch(p->sim.canned[j]);
    }
    for (size_t i = 0; i < c->nmodels; i++) {
        const cfg_model *m = &c->models[i];
        if (!m->name || !m->provider || !config_find_provider(c, sv_from(m->provider)))
            abort();
        touch(m->upstream_model);
        for (size_t j = 0; j < m->nfallbacks; j++)
            if (!m->fallbacks[j])
                abort();
    }
    for (size_t i = 0; i < c->ndeployments; i++)
        if (!c->deployments[i].name || !c->deployments[i].model)
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *copy = malloc(size ? size : 1);
    if (!copy)
        return 0;
    if (size)
        memcpy(copy, data, size);
    config *c = NULL;
    config_diags d = { 0 };
    err_code e = config_load_string("fuzz", copy, size, &c, &d);
    size_t errors = 0;
    for (size_t i = 0; i < d.n; i++) {
        if (!d.items[i].path || !d.items[i].message)
            abort();
        errors += !d.items[i].warning;
    }
    if (e == ERR_OK) {
        if (!c || errors)
            abort();
        check_config(c);
    } else if (e == ERR_CONFIG) {
        if (c || !errors)
            abort();
    } else if (e != ERR_NOMEM) {
        abort();
    }
    if (devnull)
        config_diags_print(&d, "fuzz", devnull);
    config_free(c);
    config_diags_free(&d);
    free(copy);
    return 0;
}
