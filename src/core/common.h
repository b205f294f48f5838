/*
 * common.h - small definitions shared by every module: string views, array
 * counts, the defensive-branch markers, and attribute shorthands.
 *
 * A string view (sv) is a pointer and a length that does not own its bytes
 * and is not NUL-terminated; whoever made it says how long the bytes live.
 */
#ifndef GENAIOPS_COMMON_H
#define GENAIOPS_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#define GENAIOPS_VERSION "0.1.0"

#define countof(a) (sizeof(a) / sizeof((a)[0]))
#ifndef MIN
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#endif
#ifndef MAX
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#endif
#define UNUSED(x) (void)(x)

/* Defensive branches that tests are not expected to reach (SQLite's ALWAYS
 * and NEVER): they read as plain conditions but tell a reader, and a
 * coverage tool, that the other side is thought impossible. */
#define ALWAYS(x) (x)
#define NEVER(x) (x)

#define PRINTF_LIKE(f, a) __attribute__((format(printf, f, a)))
#define WARN_UNUSED __attribute__((warn_unused_result))

typedef struct sv {
    const char *p;
    size_t len;
} sv;

#define SV(lit) ((sv){ (lit), sizeof(lit) - 1 })
#define SV_NULL ((sv){ NULL, 0 })
#define SV_FMT(s) (int)(s).len, (s).p /* printf("%.*s", SV_FMT(s)) */

static inline sv sv_from(const char *s) { return (sv){ s, s ? strlen(s) : 0 }; }
static inline sv sv_make(const char *p, size_t n) { return (sv){ p, n }; }
static inline bool sv_eq(sv a, sv b) { return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0); }
static inline bool sv_ieq(sv a, sv b) { return a.len == b.len && (a.len == 0 || strncasecmp(a.p, b.p, a.len) == 0); }
static inline bool sv_eq_cstr(sv a, const char *s) { return sv_eq(a, sv_from(s)); }
static inline bool sv_ieq_cstr(sv a, const char *s) { return sv_ieq(a, sv_from(s)); }
static inline bool sv_starts(sv a, sv prefix) { return a.len >= prefix.len && memcmp(a.p, prefix.p, prefix.len) == 0; }

#endif
