/*
 * test_web.c - the console's embedded asset table: sorted and complete
 * (every file below src/web/ui/ is in it, byte for byte), web_find's
 * binary search (hits, misses, prefixes), and content types.
 */
#include <stdlib.h>
#include <string.h>
#include "test.h"
#include "web/web.h"

static char *read_ui(const char *rel, size_t *len)
{
    char path[512];
    snprintf(path, sizeof path, "%s/../../src/web/ui/%s", test_data_dir(), rel);
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *p = malloc((size_t)n + 1);
    if (p && fread(p, 1, (size_t)n, f) != (size_t)n) {
        free(p);
        p = NULL;
    }
    fclose(f);
    if (p)
        *len = (size_t)n;
    return p;
}

TEST(web_assets_sorted_and_match_sources)
{
    CHECK(web_nassets >= 5);
    for (size_t i = 0; i < web_nassets; i++) {
        if (i > 0)
            CHECK(strcmp(web_assets[i - 1].path, web_assets[i].path) < 0);
        size_t len = 0;
        char *src = read_ui(web_assets[i].path, &len);
        CHECK(src != NULL);
        if (src) {
            CHECK_INT(web_assets[i].len, len);
            CHECK(memcmp(src, web_assets[i].data, len) == 0);
            CHECK_INT(web_assets[i].data[len], 0); /* a NUL follows the bytes */
        }
        free(src);
    }
}

TEST(web_find_hits_and_misses)
{
    for (size_t i = 0; i < web_nassets; i++) {
        const web_asset *a = web_find(web_assets[i].path, strlen(web_assets[i].path));
        CHECK(a == &web_assets[i]);
    }
    CHECK(web_find("index.html", 10) != NULL);
    CHECK(web_find("js/app.js", 9) != NULL);
    CHECK(web_find("index.htm", 9) == NULL);   /* a prefix of a name */
    CHECK(web_find("index.html2", 11) == NULL); /* a name as prefix */
    CHECK(web_find("", 0) == NULL);
    CHECK(web_find("zzz", 3) == NULL);
    CHECK(web_find("js", 2) == NULL);          /* a directory */
    CHECK(web_find("js/app.jsX", 9) != NULL);   /* the length counts, not the NUL */
}

TEST(web_content_types)
{
    static const struct { const char *path, *type; } cases[] = {
        { "index.html", "text/html; charset=utf-8" },
        { "js/app.js", "text/javascript; charset=utf-8" },
        { "app.css", "text/css; charset=utf-8" },
        { "favicon.svg", "image/svg+xml" },
        { "X.PNG", "image/png" },
        { "data.json", "application/json" },
        { "README", "application/octet-stream" },
        { "js", "application/octet-stream" },
        { ".js", "text/javascript; charset=utf-8" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        CHECK_STR(web_content_type(cases[i].path, strlen(cases[i].path)), cases[i].type);
}
