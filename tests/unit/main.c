/* main.c - runs the registered unit tests and prints the summary line. */
#include <stdarg.h>
#include <stdlib.h>
#include "test.h"

typedef struct test_case {
    const char *name, *file;
    test_fn fn;
} test_case;

static test_case tests[2048];
static size_t ntests;
static int current_failed;

void test_register(const char *name, const char *file, test_fn fn)
{
    if (ntests < sizeof tests / sizeof tests[0])
        tests[ntests++] = (test_case){ name, file, fn };
}

void test_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "    %s:%d: ", file, line);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    current_failed++;
}

const char *test_data_dir(void)
{
    const char *d = getenv("GENAIOPS_TEST_DATA");
    return d ? d : TEST_DATA_DIR;
}

char *test_read_data(const char *rel, size_t *len)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", test_data_dir(), rel);
    FILE *f = fopen(path, "rb");
    if (!f) {
        test_fail(__FILE__, __LINE__, "cannot open %s", path);
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *p = malloc((size_t)n + 1);
    size_t got = fread(p, 1, (size_t)n, f);
    fclose(f);
    p[got] = '\0';
    if (len)
        *len = got;
    return p;
}

int main(int argc, char **argv)
{
    const char *filter = argc > 1 ? argv[1] : NULL;
    int passed = 0, failed = 0;
    for (size_t i = 0; i < ntests; i++) {
        if (filter && !strstr(tests[i].name, filter) && !strstr(tests[i].file, filter))
            continue;
        current_failed = 0;
        tests[i].fn();
        if (current_failed) {
            failed++;
            printf("FAIL %s (%s)\n", tests[i].name, tests[i].file);
        } else {
            passed++;
            if (getenv("TEST_VERBOSE"))
                printf("ok   %s\n", tests[i].name);
        }
    }
    printf("unit: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
