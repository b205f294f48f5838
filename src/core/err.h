/*
 * err.h - the one error enum of the program.
 *
 * ERR_MAP is an X-macro (libuv's UV_ERRNO_MAP): each entry yields the enum
 * value, its short name and its message, so the three never drift apart.
 * Functions return an err_code (0 on success) and hand results back through
 * out-parameters.
 */
#ifndef GENAIOPS_ERR_H
#define GENAIOPS_ERR_H

#define ERR_MAP(X)                                                      \
    X(OK,        "ok")                                                  \
    X(NOMEM,     "out of memory")                                       \
    X(TOOBIG,    "size limit exceeded")                                 \
    X(INVAL,     "invalid argument")                                    \
    X(PARSE,     "malformed input")                                     \
    X(AGAIN,     "more input needed")                                   \
    X(IO,        "input/output error")                                  \
    X(NOTFOUND,  "not found")                                           \
    X(EXISTS,    "already exists")                                      \
    X(TIMEOUT,   "timed out")                                           \
    X(CANCELED,  "canceled")                                            \
    X(UPSTREAM,  "upstream error")                                      \
    X(CONFIG,    "configuration error")                                 \
    X(UNSUPPORTED, "not supported")                                     \
    X(STORE,     "store error")                                         \
    X(DENIED,    "permission denied")

typedef enum err_code {
#define ERR_ENUM_(name, msg) ERR_##name,
    ERR_MAP(ERR_ENUM_)
#undef ERR_ENUM_
    ERR__COUNT
} err_code;

/* Both return static strings; unknown codes give "unknown error". */
const char *err_name(err_code e);
const char *err_message(err_code e);

#endif
