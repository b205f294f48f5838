/*
 * log.h - leveled logging to stderr, as text or one JSON object a line.
 *
 * The macros check the level before any formatting is done (redis's
 * serverLog). log_req() tags a line with a request id. Thread-safe: each
 * line is written with a single write(2).
 */
#ifndef GENAIOPS_LOG_H
#define GENAIOPS_LOG_H

#include "common.h"

typedef enum log_level { L_DEBUG = 0, L_INFO, L_WARN, L_ERROR, L_OFF } log_level;

extern log_level log_threshold;

/* "debug", "info", "warn", "error", "off"; returns -1 for an unknown name. */
int log_level_parse(const char *name);
void log_set_level(log_level lv);
void log_set_json(bool json);
void log_write(log_level lv, const char *request_id, const char *fmt, ...) PRINTF_LIKE(3, 4);
/* Appends ": <strerror(errnum)>" to the message (nginx's ngx_log_error). */
void log_errno(log_level lv, int errnum, const char *fmt, ...) PRINTF_LIKE(3, 4);

#define LOG_AT(lv, rid, ...) do { if ((lv) >= log_threshold) log_write((lv), (rid), __VA_ARGS__); } while (0)
#define log_debug(...) LOG_AT(L_DEBUG, NULL, __VA_ARGS__)
#define log_info(...)  LOG_AT(L_INFO, NULL, __VA_ARGS__)
#define log_warn(...)  LOG_AT(L_WARN, NULL, __VA_ARGS__)
#define log_error(...) LOG_AT(L_ERROR, NULL, __VA_ARGS__)
#define log_req(lv, rid, ...) LOG_AT((lv), (rid), __VA_ARGS__)

#endif
