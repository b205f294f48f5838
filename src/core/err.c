/* err.c - names and messages of err_code, generated from ERR_MAP. */
#include "err.h"

static const char *const names[] = {
#define X(name, msg) #name,
    ERR_MAP(X)
#undef X
};
static const char *const messages[] = {
#define X(name, msg) msg,
    ERR_MAP(X)
#undef X
};

const char *err_name(err_code e)
{
    return (unsigned)e < ERR__COUNT ? names[e] : "UNKNOWN";
}

const char *err_message(err_code e)
{
    return (unsigned)e < ERR__COUNT ? messages[e] : "unknown error";
}
