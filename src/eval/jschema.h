/*
 * jschema.h - JSON Schema validation on jansson values, for the is-json,
 * contains-json and is-valid-openai-tools-call assertions.
 *
 * A subset of JSON Schema (draft-07, with the draft 2019/2020 spellings of
 * the same ideas): type, enum, const, properties, required,
 * additionalProperties, patternProperties, propertyNames, minProperties,
 * maxProperties, dependentRequired (and dependencies with lists), items
 * (one schema or a tuple), prefixItems, additionalItems, minItems,
 * maxItems, uniqueItems, contains, minLength, maxLength, pattern, format
 * (date, time, date-time, email, uri, uuid, ipv4, ipv6, hostname),
 * minimum, maximum, exclusiveMinimum, exclusiveMaximum (number or draft-4
 * boolean), multipleOf, allOf, anyOf, oneOf, not, if/then/else, and $ref
 * to a place in the same document ("#", "#/definitions/x", "#/$defs/x",
 * recursion included). Annotations (title, description, default,
 * examples, $schema, $id, $comment, readOnly, writeOnly, deprecated,
 * contentMediaType, contentEncoding) are ignored; any other keyword is
 * refused when the schema is compiled, so nothing is skipped silently.
 * docs/internals/assertions.md lists the subset and the error messages.
 *
 * Compile once, validate many times: jschema_compile checks every keyword,
 * compiles the patterns and resolves the references; jschema_validate
 * walks the compiled nodes and allocates nothing but for propertyNames
 * (the name as a value) and uniqueItems on arrays of over 64 items.
 *
 * Ownership: a jschema keeps a reference to the schema value it was
 * compiled from (json_incref) and frees everything with jschema_free. A
 * compiled schema is read-only, so threads may validate with it at once.
 */
#ifndef GENAIOPS_EVAL_JSCHEMA_H
#define GENAIOPS_EVAL_JSCHEMA_H

#include <jansson.h>
#include "core/common.h"
#include "core/err.h"

typedef struct jschema jschema;

/* Compiles schema (an object, or true/false). ERR_OK with *out set;
 * ERR_UNSUPPORTED (a keyword or format outside the subset, a reference
 * outside the document: "unsupported JSON Schema keyword 'foo' at
 * #/properties/a"), ERR_PARSE (a keyword with the wrong kind of value, a
 * pattern that does not compile, a reference that does not resolve), or
 * ERR_NOMEM, with msg (NUL-terminated, truncated to cap) saying what and
 * where. */
err_code jschema_compile(const json_t *schema, jschema **out, char *msg, size_t cap);
void jschema_free(jschema *s);

/* True when inst is valid. False with msg set to the first error found, in
 * ajv's style: "data/latitude must be <= 90", "data must have required
 * property 'id'" (msg may be NULL). Nesting deeper than 256 levels of
 * schema is an error, not a crash. */
bool jschema_validate(const jschema *s, const json_t *inst, char *msg, size_t cap);

/* JSON equality as JavaScript's deep-equal sees it: numbers by value (1
 * equals 1.0), strings by bytes, arrays in order, objects by key set. */
bool jschema_equal(const json_t *a, const json_t *b);

#endif
