/*
 * template_bench.c - renders per second of the prompt template engine
 * (src/prompt/template.c) on one core. Not a test: it prints a figure.
 *
 *   template_bench [--seconds S]      (default 2)
 *
 * The template is a ~1 KB chat-style system prompt: several paragraphs of
 * text and five variables - one dotted (customer.name), one a section over
 * a 3-element list of orders - rendered with a jansson object into one
 * reused buffer (buf_reset between renders), strict mode, no partials.
 * The target is at least 1,000,000 renders/s with -O2.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "prompt/template.h"

static const char template_src[] =
    "You are the customer support assistant of {{company}}, a company that sells {{product}} to small\n"
    "businesses and individuals. You answer questions about orders, shipping, returns, invoices and\n"
    "product usage. Be precise, friendly and brief. Never invent order numbers, prices, dates or\n"
    "policies: when you do not know something, say so and offer to connect the customer with a human\n"
    "agent. Do not discuss competitors, and do not give legal, medical or financial advice.\n"
    "\n"
    "The customer you are talking to is {{customer.name}}. Address them by name in your first reply\n"
    "only, and keep the tone warm but professional. If they are upset, acknowledge it in one sentence\n"
    "before you answer, and do not apologise more than once per conversation.\n"
    "\n"
    "Their recent orders:\n"
    "{{#orders}}\n"
    "- order {{id}}: {{status}}\n"
    "{{/orders}}\n"
    "\n"
    "When the customer asks about an order, find it in the list above by its number. If it is not\n"
    "there, ask for the number again and check for typing mistakes before saying it does not exist.\n"
    "Shipping takes three to five working days inside the country; returns are accepted within thirty\n"
    "days of delivery for unused items in their original packaging, and refunds reach the original\n"
    "payment method within ten working days of the return being received.\n"
    "\n"
    "Today's date is {{today}}. Answer in the language the customer writes in.\n";

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    double seconds = 2;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
            char *end;
            seconds = strtod(argv[++i], &end);
            if (*end || seconds <= 0) {
                fprintf(stderr, "template_bench: bad --seconds\n");
                return 2;
            }
        } else {
            fprintf(stderr, "usage: template_bench [--seconds S]\n");
            return 2;
        }
    }
    tpl *t;
    tpl_error e;
    if (tpl_compile(template_src, sizeof template_src - 1, &t, &e)) {
        fprintf(stderr, "compile: %d:%d %s\n", e.line, e.col, e.message);
        return 1;
    }
    json_t *vars = json_pack("{s:s, s:s, s:{s:s, s:s}, s:s, s:[{s:s,s:s},{s:s,s:s},{s:s,s:s}]}", "company",
                             "Acme Widgets", "product", "industrial widgets", "customer", "name", "Ada Lovelace",
                             "tier", "gold", "today", "2026-11-21", "orders", "id", "A-1001", "status",
                             "delivered on 2026-11-02", "id", "A-1002", "status", "shipped, arriving 2026-11-24",
                             "id", "A-1003", "status", "awaiting payment");
    if (!vars) {
        fprintf(stderr, "vars: out of memory\n");
        return 1;
    }
    buf b;
    buf_init(&b, 1 << 16);
    if (tpl_render(t, vars, NULL, &b, &e)) {
        fprintf(stderr, "render: %s\n", e.message);
        return 1;
    }
    size_t out_len = b.len;

    unsigned long n = 0;
    double t0 = now_s(), t1;
    do {
        for (int i = 0; i < 10000; i++) {
            buf_reset(&b);
            if (tpl_render(t, vars, NULL, &b, &e)) {
                fprintf(stderr, "render: %s\n", e.message);
                return 1;
            }
        }
        n += 10000;
        t1 = now_s();
    } while (t1 - t0 < seconds);
    double rate = (double)n / (t1 - t0);
    printf("template: %zu-byte template, %zu-byte output: %.0f renders/s (%.0f ns each, %lu renders)\n",
           sizeof template_src - 1, out_len, rate, 1e9 / rate, n);
    buf_free(&b);
    json_decref(vars);
    tpl_free(t);
    return 0;
}
