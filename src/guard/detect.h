/*
 * detect.h - the guardrail detectors' common interface: a detector reads a
 * text and appends findings (what kind, where, how sure) to a bounded list.
 * Detectors never copy or keep the text; a finding is a type and a span,
 * so traces and error messages can say what was found and where without
 * repeating it. The policy engine (guard.c) decides what to do with them.
 *
 * All functions are pure and thread-safe (tables are static and const,
 * compiled regexes are compiled once and shared read-only), never allocate
 * per call beyond growing the findings list, and accept any bytes
 * (invalid UTF-8 included) without reading outside [text, text + len).
 */
#ifndef GENAIOPS_GUARD_DETECT_H
#define GENAIOPS_GUARD_DETECT_H

#include "core/common.h"
#include "core/err.h"

/* Finding types. The names (guard_type_name) are the placeholders'
 * stems: <EMAIL_1>, <CREDIT_CARD_2>. */
#define GUARD_TYPES(X)                                                                       \
    X(EMAIL, "EMAIL") X(PHONE, "PHONE") X(CREDIT_CARD, "CREDIT_CARD") X(IBAN, "IBAN")          \
    X(IPV4, "IPV4") X(IPV6, "IPV6") X(MAC, "MAC_ADDRESS") X(URL, "URL") X(US_SSN, "US_SSN")    \
    X(US_ITIN, "US_ITIN") X(UK_NINO, "UK_NINO") X(NHS, "NHS_NUMBER") X(CRYPTO, "CRYPTO_WALLET") \
    X(API_KEY, "API_KEY") X(PRIVATE_KEY, "PRIVATE_KEY") X(JWT, "JWT")                          \
    X(CONN_STRING, "CONNECTION_STRING") X(HIGH_ENTROPY, "SECRET")                              \
    X(INJECTION, "PROMPT_INJECTION") X(LEAKAGE, "SYSTEM_PROMPT_LEAK") X(DENIED, "DENIED_TERM") \
    X(TOPIC, "OFF_TOPIC") X(SIZE, "SIZE_LIMIT") X(SCHEMA, "SCHEMA") X(HARM, "HARM")            \
    X(WEBHOOK, "WEBHOOK")

typedef enum guard_type {
#define GUARD_TYPE_ENUM_(e, s) GT_##e,
    GUARD_TYPES(GUARD_TYPE_ENUM_)
#undef GUARD_TYPE_ENUM_
    GT__COUNT
} guard_type;

const char *guard_type_name(guard_type t);            /* "EMAIL" ...; "UNKNOWN" past the end */
bool guard_type_parse(const char *name, guard_type *out); /* case-insensitive; also "credit_card" */

typedef struct guard_finding {
    guard_type type;
    uint32_t start, len;     /* byte span in the scanned text */
    float score;             /* 0..1: 1 for checksum-verified or exact matches */
    const char *rule;        /* static: which rule matched ("luhn", "aws_access_key", "ignore_previous") */
} guard_finding;

/* A bounded, growable list; past max findings the rest are counted in
 * `dropped`, never stored. Zero-initialise, set max (0 = 4096), free with
 * guard_findings_free. */
typedef struct guard_findings {
    guard_finding *v;
    size_t n, cap, max;
    size_t dropped;
} guard_findings;

err_code guard_findings_add(guard_findings *f, guard_type t, size_t start, size_t len, float score,
                            const char *rule);
void guard_findings_sort(guard_findings *f);          /* by start, then longer first */
void guard_findings_free(guard_findings *f);

/* The detector sets a scan can run (bits of a mask). */
#define GUARD_PII_ALL ((uint64_t)0x1FFF)   /* EMAIL .. CRYPTO: bit (1 << GT_x) */
#define GUARD_SECRETS_ALL (((uint64_t)1 << GT_API_KEY) | ((uint64_t)1 << GT_PRIVATE_KEY) | \
                           ((uint64_t)1 << GT_JWT) | ((uint64_t)1 << GT_CONN_STRING) |       \
                           ((uint64_t)1 << GT_HIGH_ENTROPY))

/* PII (pii.c): the types in mask (bits 1 << GT_EMAIL ... 1 << GT_CRYPTO). */
err_code guard_scan_pii(const char *text, size_t len, uint64_t mask, guard_findings *out);
/* Secrets (secrets.c): API keys of the major providers and clouds, private key blocks, JWTs,
 * connection strings with credentials, high-entropy tokens. */
err_code guard_scan_secrets(const char *text, size_t len, uint64_t mask, guard_findings *out);

#endif
