/*
 * log.c - formats one line into a stack buffer and writes it at once.
 * JSON lines escape the message; text lines are "TIME LEVEL [rid] msg".
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "log.h"

log_level log_threshold = L_INFO;
static bool use_json;
static const char *const level_names[] = { "debug", "info", "warn", "error", "off" };

int log_level_parse(const char *name)
{
    for (size_t i = 0; i < countof(level_names); i++)
        if (strcasecmp(name, level_names[i]) == 0)
            return (int)i;
    return -1;
}

void log_set_level(log_level lv) { log_threshold = lv; }
void log_set_json(bool json) { use_json = json; }

static size_t json_escape(char *dst, size_t cap, const char *s)
{
    size_t o = 0;
    for (; *s && o + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            dst[o++] = '\\';
            dst[o++] = (char)c;
        } else if (c < 0x20) {
            o += (size_t)snprintf(dst + o, cap - o, "\\u%04x", c);
        } else {
            dst[o++] = (char)c;
        }
    }
    dst[o] = '\0';
    return o;
}

static void vwrite_line(log_level lv, const char *rid, const char *fmt, va_list ap, int errnum)
{
    char msg[2048];
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    if (n < 0)
        return;
    if (errnum) {
        size_t m = strlen(msg);
        snprintf(msg + m, sizeof msg - m, ": %s", strerror(errnum));
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[64];
    snprintf(when, sizeof when, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
    char line[4600];
    int len;
    if (use_json) {
        char esc[4400];
        json_escape(esc, sizeof esc, msg);
        if (rid)
            len = snprintf(line, sizeof line, "{\"time\":\"%s\",\"level\":\"%s\",\"request_id\":\"%s\",\"msg\":\"%s\"}\n",
                           when, level_names[lv], rid, esc);
        else
            len = snprintf(line, sizeof line, "{\"time\":\"%s\",\"level\":\"%s\",\"msg\":\"%s\"}\n", when,
                           level_names[lv], esc);
    } else if (rid) {
        len = snprintf(line, sizeof line, "%s %-5s [%s] %s\n", when, level_names[lv], rid, msg);
    } else {
        len = snprintf(line, sizeof line, "%s %-5s %s\n", when, level_names[lv], msg);
    }
    if (len < 0)
        return;
    if ((size_t)len >= sizeof line)
        len = sizeof line - 1, line[len - 1] = '\n';
    ssize_t w = write(STDERR_FILENO, line, (size_t)len);
    (void)w;
}

void log_write(log_level lv, const char *rid, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vwrite_line(lv, rid, fmt, ap, 0);
    va_end(ap);
}

void log_errno(log_level lv, int errnum, const char *fmt, ...)
{
    if (lv < log_threshold)
        return;
    va_list ap;
    va_start(ap, fmt);
    vwrite_line(lv, NULL, fmt, ap, errnum);
    va_end(ap);
}
