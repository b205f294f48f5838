/*
 * pii.c - the built-in PII detectors: email, phone, credit card, IBAN,
 * IPv4, IPv6, MAC, URL, US SSN and ITIN, UK NINO and NHS number, crypto
 * wallet addresses (Bitcoin base58check and bech32, Ethereum).
 *
 * How it works. One forward pass over the text; a 256-entry byte-class
 * table (built at compile time) lets the inner loop skip everything that
 * cannot start or end a candidate. Only these "trigger" bytes stop it:
 * digits, '@', ':', '.', '-', '+' and '('. At a trigger the scanner works
 * out where a candidate would start (the beginning of the alphanumeric run
 * around a digit, the run before ':', '.' or '-', the '+' or '(' itself)
 * and tries every recognizer that can start there, in priority order
 * (try_at). Recognizers are hand-written parsers with the structural rules
 * and checksums of their format (Luhn, mod 97, mod 11, base58check with
 * double SHA-256, bech32/bech32m, EIP-55 with Keccak-256); none uses a
 * regex engine. Email is driven by '@' and looks back for the local part.
 *
 * Two watermarks keep the pass linear and the findings disjoint: `done`
 * (every candidate start below it has been tried) and `mend` (the end of
 * the last match). A failed attempt moves `done` past its run, so a token
 * is examined once; a match moves both past itself, and nothing may start
 * before `mend`. Every parser looks at most a bounded distance ahead, so
 * hostile input costs O(n) with a small constant.
 *
 * Classification does not depend on the mask: a match of a type that is
 * not wanted still consumes its bytes and is then not reported. So the
 * findings for a mask are exactly the findings for GUARD_PII_ALL filtered
 * by that mask (the fuzz target checks this), and a card number never
 * turns into a phone number because cards were switched off.
 *
 * Context: numbers without a checksum (phone, SSN, the NHS/phone overlap)
 * look at the nearest keyword in the 48 bytes before them ("phone",
 * "call", "SSN", "NHS", "order", "#", "version" ...); docs/internals/
 * guard-detectors.md lists the rules, what each detector misses and the
 * rule names reported in guard_finding.rule.
 */
#include <openssl/sha.h>
#include "guard/detect.h"

/* ---- byte classes ------------------------------------------------------- */

enum {
    C_DIGIT = 1 << 0,
    C_UPPER = 1 << 1,
    C_LOWER = 1 << 2,
    C_HEX = 1 << 3,
    C_TRIG = 1 << 4,  /* stops the fast loop */
    C_LOCAL = 1 << 5, /* ASCII byte of an email local part */
    C_URL = 1 << 6,   /* ASCII byte that may appear in a URL */
    C_HIGH = 1 << 7,  /* >= 0x80 */
};

#define IS_D_(c) ((c) >= '0' && (c) <= '9')
#define IS_U_(c) ((c) >= 'A' && (c) <= 'Z')
#define IS_L_(c) ((c) >= 'a' && (c) <= 'z')
#define IS_AN_(c) (IS_D_(c) || IS_U_(c) || IS_L_(c))
#define CLS_(c)                                                                                    \
    ((IS_D_(c) ? C_DIGIT : 0) | (IS_U_(c) ? C_UPPER : 0) | (IS_L_(c) ? C_LOWER : 0) |              \
     ((IS_D_(c) || ((c) >= 'a' && (c) <= 'f') || ((c) >= 'A' && (c) <= 'F')) ? C_HEX : 0) |       \
     ((IS_D_(c) || (c) == '@' || (c) == ':' || (c) == '.' || (c) == '-' || (c) == '+' ||           \
       (c) == '(')                                                                                 \
          ? C_TRIG                                                                                 \
          : 0) |                                                                                   \
     ((IS_AN_(c) || (c) == '.' || (c) == '_' || (c) == '%' || (c) == '+' || (c) == '-' ||          \
       (c) == '\'')                                                                                \
          ? C_LOCAL                                                                                \
          : 0) |                                                                                   \
     ((IS_AN_(c) || URL_PUNCT_(c)) ? C_URL : 0) |                                                   \
     ((c) >= 0x80 ? C_HIGH : 0))
/* RFC 3986's reserved and unreserved punctuation, plus '%'. */
#define URL_PUNCT_(c)                                                                            \
    ((c) == '-' || (c) == '.' || (c) == '_' || (c) == '~' || (c) == ':' || (c) == '/' ||           \
     (c) == '?' || (c) == '#' || (c) == '[' || (c) == ']' || (c) == '@' || (c) == '!' ||           \
     (c) == '$' || (c) == '&' || (c) == '\'' || (c) == '(' || (c) == ')' || (c) == '*' ||          \
     (c) == '+' || (c) == ',' || (c) == ';' || (c) == '=' || (c) == '%')
#define R4_(c) CLS_(c), CLS_((c) + 1), CLS_((c) + 2), CLS_((c) + 3)
#define R16_(c) R4_(c), R4_((c) + 4), R4_((c) + 8), R4_((c) + 12)
#define R64_(c) R16_(c), R16_((c) + 16), R16_((c) + 32), R16_((c) + 48)

static const uint8_t cls[256] = { R64_(0), R64_(64), R64_(128), R64_(192) };

static inline unsigned cl(char c) { return cls[(unsigned char)c]; }
static inline bool is_digit(char c) { return cl(c) & C_DIGIT; }
static inline bool is_upper(char c) { return cl(c) & C_UPPER; }
static inline bool is_alpha(char c) { return cl(c) & (C_UPPER | C_LOWER); }
static inline bool is_alnum(char c) { return cl(c) & (C_DIGIT | C_UPPER | C_LOWER); }
static inline bool is_hex(char c) { return cl(c) & C_HEX; }
static inline char lower(char c) { return is_upper(c) ? (char)(c - 'A' + 'a') : c; }

/* p[j] is the letter of a \n, \t or \r escape (JSON-escaped text). */
static inline bool esc_at(const char *p, size_t j)
{
    return j > 0 && p[j - 1] == '\\' && (p[j] == 'n' || p[j] == 't' || p[j] == 'r');
}

/* Is the byte before s a letter or digit of a word (not an escape)? */
static inline bool word_before(const char *p, size_t s)
{
    return s > 0 && is_alnum(p[s - 1]) && !esc_at(p, s - 1);
}

/* A 2-byte UTF-8 sequence (U+0080..U+07FF: Latin, Greek, Cyrillic,
 * Hebrew, Arabic ...) at p[i]. Scripts written without spaces (CJK) use
 * 3-byte sequences; they end addresses instead of joining them. */
static inline bool utf8_2(const char *p, size_t len, size_t i)
{
    unsigned char a = (unsigned char)p[i];
    return a >= 0xC2 && a <= 0xDF && i + 1 < len && ((unsigned char)p[i + 1] & 0xC0) == 0x80;
}

/* The length of the valid UTF-8 sequence of 2-4 bytes at p[i], or 0. */
static size_t utf8_seq(const char *p, size_t len, size_t i)
{
    const unsigned char *u = (const unsigned char *)p + i;
    size_t avail = len - i;
    if (avail >= 2 && u[0] >= 0xC2 && u[0] <= 0xDF && (u[1] & 0xC0) == 0x80)
        return 2;
    if (avail >= 3 && u[0] >= 0xE0 && u[0] <= 0xEF && (u[1] & 0xC0) == 0x80 && (u[2] & 0xC0) == 0x80 &&
        !(u[0] == 0xE0 && u[1] < 0xA0) && !(u[0] == 0xED && u[1] > 0x9F))
        return 3;
    if (avail >= 4 && u[0] >= 0xF0 && u[0] <= 0xF4 && (u[1] & 0xC0) == 0x80 && (u[2] & 0xC0) == 0x80 &&
        (u[3] & 0xC0) == 0x80 && !(u[0] == 0xF0 && u[1] < 0x90) && !(u[0] == 0xF4 && u[1] > 0x8F))
        return 4;
    return 0;
}

/* Case-insensitive "does p[i..] start with lit" (lit is lowercase). */
static bool at_ci(const char *p, size_t len, size_t i, const char *lit)
{
    for (; *lit; lit++, i++)
        if (i >= len || lower(p[i]) != *lit)
            return false;
    return true;
}

typedef struct match {
    guard_type type;
    size_t start, end;
    float score;
    const char *rule;
} match;

typedef struct scan {
    const char *p;
    size_t len;
    uint64_t mask;
    guard_findings *out;
    size_t done; /* candidate starts below this have been tried */
    size_t mend; /* end of the last match, reported or masked out */
    err_code err;
} scan;

/* Records a match: moves both watermarks past it and reports it when its
 * type is in the mask. */
static void hit(scan *sc, const match *m)
{
    sc->mend = m->end;
    if (sc->done < m->end)
        sc->done = m->end;
    if (sc->err || !(sc->mask & ((uint64_t)1 << m->type)))
        return;
    sc->err = guard_findings_add(sc->out, m->type, m->start, m->end - m->start, m->score, m->rule);
}

static bool set(match *m, guard_type t, size_t start, size_t end, float score, const char *rule)
{
    *m = (match){ t, start, end, score, rule };
    return true;
}

/* ---- context words ------------------------------------------------------ */

enum { CTX_NONE, CTX_PHONE, CTX_NEG, CTX_SSN, CTX_ITIN, CTX_NHS, CTX_VERSION };

static const struct {
    const char *w;
    uint8_t n;   /* strlen(w) */
    uint8_t ctx;
} ctx_words[] = {
    { "phone", 5, CTX_PHONE },     { "phones", 6, CTX_PHONE },       { "telephone", 9, CTX_PHONE },
    { "tel", 3, CTX_PHONE },       { "call", 4, CTX_PHONE },         { "called", 6, CTX_PHONE },
    { "calling", 7, CTX_PHONE },   { "mobile", 6, CTX_PHONE },       { "mob", 3, CTX_PHONE },
    { "cell", 4, CTX_PHONE },      { "cellphone", 9, CTX_PHONE },    { "fax", 3, CTX_PHONE },
    { "whatsapp", 8, CTX_PHONE },  { "sms", 3, CTX_PHONE },          { "text", 4, CTX_PHONE },
    { "ring", 4, CTX_PHONE },      { "dial", 4, CTX_PHONE },         { "contact", 7, CTX_PHONE },
    { "reach", 5, CTX_PHONE },     { "landline", 8, CTX_PHONE },     { "hotline", 7, CTX_PHONE },
    { "helpline", 8, CTX_PHONE },  { "ph", 2, CTX_PHONE },           { "tlf", 3, CTX_PHONE },
    { "order", 5, CTX_NEG },       { "orders", 6, CTX_NEG },         { "invoice", 7, CTX_NEG },
    { "account", 7, CTX_NEG },     { "acct", 4, CTX_NEG },           { "ref", 3, CTX_NEG },
    { "reference", 9, CTX_NEG },   { "tracking", 8, CTX_NEG },       { "id", 2, CTX_NEG },
    { "serial", 6, CTX_NEG },      { "isbn", 4, CTX_NEG },           { "sku", 3, CTX_NEG },
    { "ticket", 6, CTX_NEG },      { "case", 4, CTX_NEG },           { "transaction", 11, CTX_NEG },
    { "txn", 3, CTX_NEG },         { "receipt", 7, CTX_NEG },        { "confirmation", 12, CTX_NEG },
    { "booking", 7, CTX_NEG },     { "policy", 6, CTX_NEG },         { "member", 6, CTX_NEG },
    { "membership", 10, CTX_NEG },  { "customer", 8, CTX_NEG },       { "po", 2, CTX_NEG },
    { "batch", 5, CTX_NEG },       { "lot", 3, CTX_NEG },            { "part", 4, CTX_NEG },
    { "model", 5, CTX_NEG },       { "code", 4, CTX_NEG },           { "pin", 3, CTX_NEG },
    { "zip", 3, CTX_NEG },         { "routing", 7, CTX_NEG },        { "iban", 4, CTX_NEG },
    { "card", 4, CTX_NEG },        { "amount", 6, CTX_NEG },         { "total", 5, CTX_NEG },
    { "price", 5, CTX_NEG },       { "usd", 3, CTX_NEG },            { "eur", 3, CTX_NEG },
    { "gbp", 3, CTX_NEG },         { "isin", 4, CTX_NEG },           { "patent", 6, CTX_NEG },
    { "ssn", 3, CTX_SSN },         { "social", 6, CTX_SSN },         { "security", 8, CTX_SSN },
    { "ss", 2, CTX_SSN },          { "itin", 4, CTX_ITIN },          { "taxpayer", 8, CTX_ITIN },
    { "tin", 3, CTX_ITIN },        { "nhs", 3, CTX_NHS },            { "version", 7, CTX_VERSION },
    { "ver", 3, CTX_VERSION },     { "v", 1, CTX_VERSION },          { "release", 7, CTX_VERSION },
    { "build", 5, CTX_VERSION },   { "section", 7, CTX_VERSION },    { "chapter", 7, CTX_VERSION },
    { "step", 4, CTX_VERSION },    { "figure", 6, CTX_VERSION },     { "fig", 3, CTX_VERSION },
    { "table", 5, CTX_VERSION },   { "clause", 6, CTX_VERSION },     { "article", 7, CTX_VERSION },
    { "rule", 4, CTX_VERSION },    { "paragraph", 9, CTX_VERSION },  { "appendix", 8, CTX_VERSION },
    { "page", 4, CTX_VERSION },    { "oid", 3, CTX_VERSION },        { "snmp", 4, CTX_VERSION },
};

/* The category of the nearest keyword (a whole ASCII word, any case) or
 * '#' in the 48 bytes before s; CTX_NONE when there is none. */
static int context_before(const char *p, size_t s)
{
    size_t lo = s > 48 ? s - 48 : 0, j = s;
    while (j > lo) {
        char c = p[j - 1];
        if (c == '#')
            return CTX_NEG;
        if (!is_alpha(c)) {
            j--;
            continue;
        }
        size_t we = j;
        while (j > lo && is_alpha(p[j - 1]))
            j--;
        if (j == lo && lo > 0 && is_alpha(p[lo - 1]))
            break; /* the window cut a word */
        size_t n = we - j;
        if (n > 12)
            continue;
        char w[13];
        for (size_t k = 0; k < n; k++)
            w[k] = lower(p[j + k]);
        for (size_t k = 0; k < countof(ctx_words); k++)
            if (ctx_words[k].n == n && ctx_words[k].w[0] == w[0] && memcmp(ctx_words[k].w, w, n) == 0)
                return ctx_words[k].ctx;
    }
    return CTX_NONE;
}

/* ---- email -------------------------------------------------------------- */

/* Extensions that look like a TLD after '@' in file names ("icon@2x.png",
 * "pkg@1.0.js") but are not top-level domains people have mail on. */
static const char *const file_exts[] = { "png",  "jpg",  "jpeg", "gif", "svg", "webp", "ico", "bmp",
                                         "css",  "js",   "mjs",  "ts",  "tsx", "jsx",  "json", "yaml",
                                         "yml",  "toml", "html", "htm", "txt", "pdf",  "gz",  "tgz",
                                         "exe",  "dll",  "lock", "wasm", "map", "log",  "ini", "cfg",
                                         "bak",  "tmp" };

/* A top-level label: 2-24 ASCII letters (not a file extension), "xn--"
 * punycode, or only 2-byte UTF-8 letters (an IDN TLD such as "рф"). */
static bool tld_ok(const char *p, size_t a, size_t b)
{
    size_t n = b - a;
    if (n >= 5 && at_ci(p, b, a, "xn--"))
        return true;
    bool ascii = true, high = true;
    for (size_t i = a; i < b; i++) {
        if (!is_alpha(p[i]))
            ascii = false;
        if (!(cl(p[i]) & C_HIGH))
            high = false;
    }
    if (high)
        return n >= 4;
    if (!ascii || n < 2 || n > 24)
        return false;
    for (size_t k = 0; k < countof(file_exts); k++)
        if (strlen(file_exts[k]) == n && at_ci(p, b, a, file_exts[k]))
            return false;
    return true;
}

/* Is the byte before `at` the end of a "scheme://user" prefix? Then the
 * '@' is a URI's userinfo, not an address. */
static bool after_scheme(const char *p, size_t at)
{
    size_t lo = at > 96 ? at - 96 : 0;
    for (size_t j = at; j > lo + 2; j--) {
        char c = p[j - 1];
        if (c == ' ' || c == '\n' || c == '\t' || c == '"' || c == '<')
            return false;
        if (c == '/' && p[j - 2] == '/' && p[j - 3] == ':')
            return true;
    }
    return false;
}

/*
 * The address around the '@' at `at`: the local part back to `mend` (at
 * most 64 bytes: ASCII letters, digits, ._%+-' and 2-byte UTF-8; no leading
 * or trailing dot, no ".."), then a domain of at least two labels (letters,
 * digits, '-', 2-byte UTF-8; 1-63 bytes, no '-' at either end; 253 bytes in
 * all) whose last label passes tld_ok. A trailing label that fails it is
 * dropped while two remain ("a@b.com.2023" gives "a@b.com").
 */
static bool email_at(const scan *sc, size_t at, match *m)
{
    const char *p = sc->p;
    size_t len = sc->len, ls = at;
    while (ls > sc->mend && at - ls <= 64) {
        if ((cl(p[ls - 1]) & C_LOCAL) && !esc_at(p, ls - 1))
            ls--;
        else if (ls >= sc->mend + 2 && ((unsigned char)p[ls - 1] & 0xC0) == 0x80 && utf8_2(p, len, ls - 2))
            ls -= 2;
        else
            break;
    }
    if (at - ls > 64)
        return false;
    if (ls == sc->mend && ls > 0 && (cl(p[ls - 1]) & C_LOCAL) && !esc_at(p, ls - 1))
        return false; /* cut short by mend: part of something already matched */
    while (ls < at && !(is_alnum(p[ls]) || p[ls] == '_' || (cl(p[ls]) & C_HIGH)))
        ls++; /* an address starts with a letter, digit, '_' or UTF-8 */
    if (ls == at || p[at - 1] == '.' || p[at - 1] == '\'')
        return false;
    for (size_t i = ls; i + 1 < at; i++)
        if (p[i] == '.' && p[i + 1] == '.')
            return false;
    if (ls > 0 && (p[ls - 1] == ':' || p[ls - 1] == '/') && after_scheme(p, ls))
        return false;

    size_t lab[128], nlab = 0, e = at + 1, dom_end = 0;
    for (;;) {
        size_t a = e;
        while (e < len && e - at <= 254) {
            if (is_alnum(p[e]) || p[e] == '-')
                e++;
            else if (utf8_2(p, len, e))
                e += 2;
            else
                break;
        }
        if (e == a || e - a > 63 || p[a] == '-' || p[e - 1] == '-' || e - at > 254)
            break;
        lab[nlab++] = a;
        dom_end = e;
        if (nlab == countof(lab) || e + 1 >= len || p[e] != '.' ||
            !(is_alnum(p[e + 1]) || utf8_2(p, len, e + 1)))
            break;
        e++;
    }
    while (nlab >= 2 && !tld_ok(p, lab[nlab - 1], dom_end)) {
        nlab--;
        dom_end = lab[nlab] - 1;
    }
    if (nlab < 2)
        return false;
    return set(m, GT_EMAIL, ls, dom_end, 1.0f, "email");
}

/* ---- URL ---------------------------------------------------------------- */

#define URL_MAX 8192

/*
 * http://, https://, ftp:// (any case) or "www." at s, after a byte that
 * is not a letter or digit. The URL runs over RFC 3986 characters and
 * 2-byte UTF-8 and ends at anything else (space, quotes, <>, CJK - except
 * a CJK host label followed by '.'); then
 * trailing . , ; : ! ? ' * and unbalanced ) or ] are given back to the
 * sentence. The host must hold a letter or digit; a www. URL needs a dot
 * and a TLD after "www.".
 */
static bool url_at(const scan *sc, size_t s, match *m)
{
    const char *p = sc->p;
    size_t len = sc->len, b;
    bool www = false;
    if (word_before(p, s) || (s > 0 && (p[s - 1] == '_' || p[s - 1] == '@')))
        return false;
    if (at_ci(p, len, s, "https://"))
        b = s + 8;
    else if (at_ci(p, len, s, "http://"))
        b = s + 7;
    else if (at_ci(p, len, s, "ftp://"))
        b = s + 6;
    else if (at_ci(p, len, s, "www.")) {
        b = s;
        www = true;
    } else
        return false;

    size_t e = b, open_p = 0, close_p = 0, open_b = 0, close_b = 0;
    bool authority = true;
    while (e < len && e - s < URL_MAX) {
        char c = p[e];
        if (cl(c) & C_URL) {
            open_p += c == '(';
            close_p += c == ')';
            open_b += c == '[';
            close_b += c == ']';
            authority &= c != '/' && c != '?' && c != '#';
            e++;
        } else if (utf8_2(p, len, e))
            e += 2;
        else if (authority && utf8_seq(p, len, e)) {
            /* A CJK (3-4 byte) label is part of an IDN host only when a
             * '.' follows it: "https://例子.com", not "example.com是". */
            size_t r = e, k;
            while (r < len && (k = utf8_seq(p, len, r)) != 0)
                r += k;
            if (r >= len || p[r] != '.')
                break;
            e = r;
        } else
            break;
    }
    while (e > b) {
        char c = p[e - 1];
        if (c == '.' || c == ',' || c == ';' || c == ':' || c == '!' || c == '?' || c == '\'' || c == '*')
            e--;
        else if (c == ')' && close_p > open_p) {
            close_p--;
            e--;
        } else if (c == ']' && close_b > open_b) {
            close_b--;
            e--;
        } else
            break;
    }
    /* The authority: after any userinfo, up to / ? # or the port. */
    size_t hs = b, he = b;
    while (he < e && p[he] != '/' && p[he] != '?' && p[he] != '#')
        he++;
    for (size_t i = b; i < he; i++)
        if (p[i] == '@')
            hs = i + 1;
    size_t hend = hs;
    if (hs < he && p[hs] == '[') {
        while (hend < he && p[hend] != ']')
            hend++;
        if (hend == he)
            return false;
        hend++;
    } else {
        while (hend < he && p[hend] != ':')
            hend++;
    }
    bool alnum = false;
    size_t dots = 0, last_dot = 0;
    for (size_t i = hs; i < hend; i++) {
        if (is_alnum(p[i]))
            alnum = true;
        else if (p[i] == '.') {
            dots++;
            last_dot = i;
        } else if (!(p[i] == '-' || p[i] == '_' || p[i] == '[' || p[i] == ']' || p[i] == ':' ||
                     (cl(p[i]) & C_HIGH)))
            return false;
    }
    if (!alnum)
        return false;
    if (www && (dots < 2 || !tld_ok(p, last_dot + 1, hend)))
        return false;
    return set(m, GT_URL, s, e, www ? 0.9f : 1.0f, www ? "url_www" : "url");
}

/* ---- IPv4, IPv6, MAC ---------------------------------------------------- */

/* Four dotted decimal octets 0-255 without leading zeros at s; the end,
 * or 0. No boundary checks (IPv6 uses it for an embedded IPv4). */
static size_t ipv4_parse(const char *p, size_t len, size_t s, bool *small)
{
    size_t i = s;
    bool all_small = true;
    for (int k = 0; k < 4; k++) {
        if (k) {
            if (i + 1 >= len || p[i] != '.' || !is_digit(p[i + 1]))
                return 0;
            i++;
        }
        size_t a = i;
        unsigned v = 0;
        while (i < len && i - a < 4 && is_digit(p[i]))
            v = v * 10 + (unsigned)(p[i++] - '0');
        size_t n = i - a;
        if (n == 0 || n > 3 || v > 255 || (n > 1 && p[a] == '0'))
            return 0;
        if (n > 1)
            all_small = false;
    }
    if (small)
        *small = all_small;
    return i;
}

/* Not inside a longer dotted/colon/word token on the left. */
static bool net_left_ok(const char *p, size_t s)
{
    if (s == 0)
        return true;
    char c = p[s - 1];
    return !(word_before(p, s) || c == '_' || c == '.' || c == ':' || c == '@' || c == '$');
}

/* ... nor on the right: no letter, digit, '_', and no '.'/':' that goes on
 * with a digit or hex digit ("1.2.3.4.5", a ninth IPv6 group). */
static bool net_right_ok(const char *p, size_t len, size_t e)
{
    if (e >= len)
        return true;
    char c = p[e];
    if (is_alnum(c) || c == '_' || c == '@')
        return false;
    if ((c == '.' || c == ':') && e + 1 < len && is_hex(p[e + 1]))
        return false;
    return true;
}

/* IPv4 at s with boundaries (a "user@" before it is fine), except
 * loopback 127/8 and 0.0.0.0 (as ::1 and :: for IPv6); rejected after a version-like keyword
 * ("version 1.2.3.4", "section 10.2.1.4") or as the version of a
 * "Product/1.2.3.4" token. Four one-digit octets score lower: they are as
 * often a version as an address. */
static bool ipv4_at(const scan *sc, size_t s, match *m)
{
    const char *p = sc->p;
    bool small = false;
    size_t e = ipv4_parse(p, sc->len, s, &small);
    if (!e || !(net_left_ok(p, s) || p[s - 1] == '@')) /* "root@203.0.113.9" */
        return false;
    if ((p[s] == '1' && p[s + 1] == '2' && p[s + 2] == '7' && p[s + 3] == '.') || memcmp(p + s, "0.0.0.0", 7) == 0)
        return false; /* loopback and "any" are nobody's address */
    if (e < sc->len && (is_alnum(p[e]) || p[e] == '_' || p[e] == '@' ||
                        (p[e] == '.' && e + 1 < sc->len && is_digit(p[e + 1]))))
        return false; /* ":port" and "/prefix" may follow */
    if (s >= 2 && p[s - 1] == '/' && is_alpha(p[s - 2]))
        return false; /* product/version: "Chrome/120.0.0.0" */
    if (context_before(sc->p, s) == CTX_VERSION)
        return false;
    return set(m, GT_IPV4, s, e, small ? 0.6f : 0.9f, "ipv4");
}

/*
 * IPv6 at s: up to eight groups of 1-4 hex digits, at most one "::", an
 * optional embedded IPv4 at the end, an optional %zone. Accepted: the full
 * eight-group form, or a "::" form with at least two explicit groups, a
 * decimal digit and a group of 3-4 hex digits - which keeps C++ "a::b",
 * Python slices "1::2" and "::1" out (loopback is not personal).
 */
static bool ipv6_at(const scan *sc, size_t s, match *m)
{
    const char *p = sc->p;
    size_t len = sc->len, i = s;
    int groups = 0, dc = -1, maxg = 0;
    bool digit = false;
    if (!net_left_ok(p, s))
        return false;
    if (i + 1 < len && p[i] == ':' && p[i + 1] == ':') {
        dc = 0;
        i += 2;
    }
    for (;;) {
        size_t g = i;
        while (i < len && i - g < 5 && is_hex(p[i]))
            i++;
        size_t h = i - g;
        if (h == 0)
            break; /* only after "::": the address ends there */
        if (h > 4)
            return false;
        if (i + 1 < len && p[i] == '.' && is_digit(p[i + 1]) && h <= 3) {
            size_t e4 = groups <= 6 ? ipv4_parse(p, len, g, NULL) : 0;
            if (!e4)
                return false;
            groups += 2;
            i = e4;
            digit = true;
            maxg = 4;
            break;
        }
        for (size_t k = g; k < i; k++)
            digit |= is_digit(p[k]);
        if ((int)h > maxg)
            maxg = (int)h;
        groups++;
        if (groups > 8)
            return false;
        if (i + 1 < len && p[i] == ':' && p[i + 1] == ':') {
            if (dc >= 0)
                return false;
            dc = groups;
            i += 2;
            continue;
        }
        if (i + 1 < len && p[i] == ':' && is_hex(p[i + 1])) {
            i++;
            continue;
        }
        break;
    }
    bool full = dc < 0 && groups == 8;
    bool compressed = dc >= 0 && groups <= 7 && groups >= 2 && digit && maxg >= 3;
    if (!(full || compressed))
        return false;
    if (i < len && p[i] == '%') { /* zone id: fe80::1%eth0 */
        size_t z = i + 1;
        while (z < len && z - i <= 16 && (is_alnum(p[z]) || p[z] == '_'))
            z++;
        if (z > i + 1 && z - i <= 16)
            i = z;
    }
    if (!net_right_ok(p, len, i))
        return false;
    return set(m, GT_IPV6, s, i, full ? 1.0f : 0.9f, "ipv6");
}

/* Two hex digits at p[i]. */
static bool hex2(const char *p, size_t len, size_t i)
{
    return i + 1 < len && is_hex(p[i]) && is_hex(p[i + 1]);
}

/* MAC-48 at s: six hex pairs joined by one consistent ':' or '-', or
 * Cisco's three dot-separated groups of four; EUI-64 (eight pairs, which
 * would otherwise read as a full IPv6 address) is reported as a MAC too. */
static bool mac_at(const scan *sc, size_t s, match *m)
{
    const char *p = sc->p, *rule = "mac";
    size_t len = sc->len, e = 0;
    if (!net_left_ok(p, s) || (s > 0 && p[s - 1] == '-'))
        return false;
    if (hex2(p, len, s) && s + 17 <= len && (p[s + 2] == ':' || p[s + 2] == '-')) {
        char sep = p[s + 2];
        for (int k = 1; k < 6; k++) {
            size_t g = s + 3 * (size_t)k;
            if (p[g - 1] != sep || !hex2(p, len, g))
                return false;
        }
        e = s + 17;
        if (e + 6 <= len && p[e] == sep && hex2(p, len, e + 1) && p[e + 3] == sep && hex2(p, len, e + 4)) {
            e += 6; /* EUI-64: eight pairs */
            rule = "eui64";
        }
        if (e < len && (p[e] == sep || p[e] == '-' || p[e] == ':') && e + 1 < len && is_hex(p[e + 1]))
            return false;
    } else if (s + 14 <= len) {
        for (int k = 0; k < 3; k++) {
            size_t g = s + 5 * (size_t)k;
            if (!hex2(p, len, g) || !hex2(p, len, g + 2) || (k < 2 && p[g + 4] != '.'))
                return false;
        }
        e = s + 14;
    } else
        return false;
    if (!net_right_ok(p, len, e) || (e < len && p[e] == '-'))
        return false;
    return set(m, GT_MAC, s, e, 0.95f, rule);
}

/* ---- numbers: card, SSN, ITIN, NHS, phone ------------------------------- */

#define NUM_MAXG 12
#define NUM_MAXD 24

/* A number as written: digit groups with their separators. gsep[k] is the
 * byte before group k (0 for the first, ' ', '-', '.', or ')' after a
 * parenthesised group); gparen[k] marks "(123)". `next` is the separator
 * after the last group when the number went on past the limits. */
typedef struct numseq {
    size_t start;
    int ng, nd;
    uint8_t glen[NUM_MAXG];
    char gsep[NUM_MAXG];
    bool gparen[NUM_MAXG];
    size_t gend[NUM_MAXG];
    char d[NUM_MAXD];
    char next;
    bool plus, paren;
} numseq;

/*
 * Reads the number at s ('+', '(' or a digit): groups of digits joined by
 * one ' ', '-' or '.', at most one "(digits)" group among the first three.
 * Stops after NUM_MAXG groups or NUM_MAXD digits (recording `next`).
 * False when the very first group is too long to be anything here.
 */
static bool num_parse(const char *p, size_t len, size_t s, numseq *q)
{
    memset(q, 0, sizeof *q);
    q->start = s;
    size_t i = s;
    if (p[i] == '+') {
        q->plus = true;
        i++;
    }
    char sep = 0;
    for (;;) {
        bool paren = false;
        if (i < len && p[i] == '(') {
            paren = true;
            i++;
        }
        size_t a = i;
        while (i < len && is_digit(p[i]) && i - a <= NUM_MAXD)
            i++;
        size_t n = i - a;
        if (n == 0 || (paren && (n > 5 || i >= len || p[i] != ')')))
            break;
        if (q->nd + (int)n > NUM_MAXD) {
            if (q->ng == 0)
                return false;
            q->next = sep;
            break;
        }
        if (paren)
            i++;
        memcpy(q->d + q->nd, p + a, n);
        q->nd += (int)n;
        q->glen[q->ng] = (uint8_t)n;
        q->gsep[q->ng] = sep;
        q->gparen[q->ng] = paren;
        q->gend[q->ng] = i;
        q->ng++;
        q->paren |= paren;
        if (i >= len)
            break;
        char c = p[i];
        bool more_paren = !q->paren && q->ng < 3;
        if ((c == ' ' || c == '-' || c == '.') && i + 1 < len &&
            (is_digit(p[i + 1]) || (more_paren && p[i + 1] == '(' && i + 2 < len && is_digit(p[i + 2])))) {
            sep = c;
            i++;
        } else if (paren && is_digit(c)) {
            sep = ')';
        } else if (more_paren && c == '(' && i + 1 < len && is_digit(p[i + 1]) && q->ng > 0) {
            sep = 0;
        } else
            break;
        if (q->ng == NUM_MAXG) {
            q->next = sep;
            break;
        }
    }
    return q->ng > 0;
}

/* Number of digits in groups [0, k). */
static int digits_in(const numseq *q, int k)
{
    int n = 0;
    for (int g = 0; g < k; g++)
        n += q->glen[g];
    return n;
}

/* The separators inside groups [0, k) are all the same one (a bracketed
 * group and what follows it count as matching anything). */
static bool seps_uniform(const numseq *q, int k, char *which)
{
    char s = 0;
    for (int g = 1; g < k; g++) {
        char c = q->gsep[g];
        if (c == ')' || c == 0 || q->gparen[g] || q->gparen[g - 1])
            continue;
        if (s && c != s)
            return false;
        s = c;
    }
    if (which)
        *which = s;
    return true;
}

static bool luhn_ok(const char *d, int n)
{
    int sum = 0;
    for (int i = 0; i < n; i++) {
        int v = d[n - 1 - i] - '0';
        if (i & 1) {
            v *= 2;
            if (v > 9)
                v -= 9;
        }
        sum += v;
    }
    return sum % 10 == 0;
}

static int prefix_num(const char *d, int k)
{
    int v = 0;
    for (int i = 0; i < k; i++)
        v = v * 10 + (d[i] - '0');
    return v;
}

/* Issuer identification ranges and lengths of the major networks. */
static const char *card_iin(const char *d, int n)
{
    int p1 = d[0] - '0', p2 = prefix_num(d, 2), p3 = prefix_num(d, 3), p4 = prefix_num(d, 4);
    int p6 = prefix_num(d, 6);
    if (p1 == 4 && (n == 13 || n == 16 || n == 19))
        return "visa";
    if (((p2 >= 51 && p2 <= 55) || (p4 >= 2221 && p4 <= 2720)) && n == 16)
        return "mastercard";
    if ((p2 == 34 || p2 == 37) && n == 15)
        return "amex";
    if (((p3 >= 300 && p3 <= 305) || p2 == 36 || p2 == 38 || p2 == 39) && n >= 14 && n <= 19)
        return "diners";
    if ((p4 == 6011 || (p3 >= 644 && p3 <= 649) || p2 == 65 || (p6 >= 622126 && p6 <= 622925)) &&
        n >= 16 && n <= 19)
        return "discover";
    if (p4 >= 3528 && p4 <= 3589 && n >= 16 && n <= 19)
        return "jcb";
    if (p2 == 62 && n >= 16 && n <= 19)
        return "unionpay";
    if ((p4 == 5018 || p4 == 5020 || p4 == 5038 || p4 == 5893 || p4 == 6304 || p4 == 6759 ||
         p4 == 6761 || p4 == 6762 || p4 == 6763) &&
        n >= 13 && n <= 19)
        return "maestro";
    if (p4 >= 2200 && p4 <= 2204 && n >= 16 && n <= 19)
        return "mir";
    if ((p2 == 60 || p3 == 508 || p4 == 9792 || (p3 >= 637 && p3 <= 639)) && n == 16)
        return "other";
    return NULL;
}

/* 13-19 digits in one run or in groups of four (the last 1-4), 4-6-5 or
 * 4-6-4, one separator throughout, a known IIN and the Luhn check. */
static bool card_ok(const numseq *q, int k)
{
    int n = digits_in(q, k);
    if (n < 13 || n > 19 || q->plus || q->paren)
        return false;
    char sep = 0;
    if (!seps_uniform(q, k, &sep) || sep == '.')
        return false;
    bool shape = k == 1;
    if (!shape && k >= 4) {
        shape = true;
        for (int g = 0; g < k - 1; g++)
            shape &= q->glen[g] == 4;
    }
    if (!shape && k == 3 && q->glen[0] == 4 && q->glen[1] == 6 && (q->glen[2] == 5 || q->glen[2] == 4))
        shape = true;
    if (!shape)
        return false;
    bool same = true;
    for (int i = 1; i < n; i++)
        same &= q->d[i] == q->d[0];
    return !same && card_iin(q->d, n) && luhn_ok(q->d, n);
}

/* Groups 3-2-4 (or 3-3-4) joined by one ' ' or '-'. */
static bool shape_334(const numseq *q, int k, int g2, char *sep)
{
    return k == 3 && q->glen[0] == 3 && q->glen[1] == g2 && q->glen[2] == 4 && seps_uniform(q, k, sep) &&
           (*sep == ' ' || *sep == '-') && !q->plus && !q->paren;
}

/* SSN: area not 000, 666 or 9xx, group not 00, serial not 0000, and not
 * one of the numbers made public in advertising. ITIN: area 9xx with a
 * group in 50-65, 70-88, 90-92 or 94-99. Written 3-2-4 with '-'; with
 * spaces or as nine plain digits only after "SSN"/"ITIN"-like words. */
static bool ssn_ok(const numseq *q, int k, int ctx, match *m, size_t end)
{
    char sep = 0;
    bool ctxed = ctx == CTX_SSN || ctx == CTX_ITIN;
    bool shaped = shape_334(q, k, 2, &sep) && (sep == '-' || ctxed);
    bool plain = k == 1 && q->glen[0] == 9 && !q->plus && !q->paren && ctxed;
    if (!(shaped || plain) || digits_in(q, k) != 9)
        return false;
    if (ctx == CTX_NEG || ctx == CTX_NHS || ctx == CTX_PHONE || ctx == CTX_VERSION)
        return false;
    const char *d = q->d;
    int area = prefix_num(d, 3), group = prefix_num(d + 3, 2), serial = prefix_num(d + 5, 4);
    if (group == 0 || serial == 0)
        return false;
    if (area >= 900) {
        if (!((group >= 50 && group <= 65) || (group >= 70 && group <= 88) || (group >= 90 && group <= 92) ||
              group >= 94))
            return false;
        return set(m, GT_US_ITIN, q->start, end, ctxed ? 1.0f : 0.9f, "itin");
    }
    if (area == 0 || area == 666)
        return false;
    if (memcmp(d, "078051120", 9) == 0 || memcmp(d, "219099999", 9) == 0 || memcmp(d, "123456789", 9) == 0)
        return false;
    return set(m, GT_US_SSN, q->start, end, ctxed ? 1.0f : 0.85f, "ssn");
}

/* NHS number: 10 digits, weights 10..2 on the first nine, 11 - sum mod 11
 * is the tenth (11 means 0, 10 is never issued). The 3-3-4 shape is also
 * a North American phone number, so: after "NHS" any shape (3-3-4 with
 * ' ' or '-', or ten plain digits); otherwise only 3-3-4 with spaces,
 * the NHS's own style, with a first digit 3, 4, 6 or 7 (England, Wales,
 * Northern Ireland ranges), and not after a phone, SSN or version word
 * (after "ref", "id" ... it scores 0.7); anything else is left to phone. */
static bool nhs_ok(const numseq *q, int k, int ctx, match *m, size_t end)
{
    if (digits_in(q, k) != 10 || q->plus || q->paren)
        return false;
    char sep = 0;
    bool shaped = shape_334(q, k, 3, &sep), plain = k == 1;
    if (!shaped && !plain)
        return false;
    int sum = 0;
    for (int i = 0; i < 9; i++)
        sum += (q->d[i] - '0') * (10 - i);
    int check = 11 - sum % 11;
    if (check == 11)
        check = 0;
    if (check == 10 || check != q->d[9] - '0')
        return false;
    if (ctx == CTX_NHS)
        return set(m, GT_NHS, q->start, end, 1.0f, "nhs_mod11");
    if ((ctx != CTX_NONE && ctx != CTX_NEG) || !shaped || sep != ' ' || !strchr("3467", q->d[0]))
        return false;
    return set(m, GT_NHS, q->start, end, ctx == CTX_NEG ? 0.7f : 0.85f, "nhs_mod11");
}

/* NANP: [2-9]XX [2-9]XX XXXX from digit offset `o`. */
static bool nanp(const char *d, int o) { return d[o] >= '2' && d[o + 3] >= '2'; }

/*
 * Phone numbers. International: '+', a country code not starting with 0,
 * 8-15 digits in all (E.164), in groups or as one run of 10+. National:
 * North American 3-3-4 (optionally 1- first, or "(415) 555-0132"), or a
 * trunk-prefix number starting 0 (9-11 digits, groups of 2-5, one
 * separator: "020 7946 0958", "06 12 34 56 78"), or 00 + country code.
 * Only after a phone word: a plain run of 10-11 digits, a 7-digit
 * "555-0132" (with '-' or '.'), or 9-13 digits in groups of 2+ with one
 * separator - not a date ("call on 2024-05-06") or two numbers side by
 * side. The nearest keyword decides: a phone word raises the score, an
 * order/invoice/id/version word or '#' rejects.
 */
static bool phone_ok(const numseq *q, int k, int ctx, match *m, size_t end)
{
    int n = digits_in(q, k);
    const char *d = q->d;
    bool pos = ctx == CTX_PHONE;
    if (ctx != CTX_NONE && !pos)
        return false;
    if (n >= 8) { /* "+1000000" and the like are counts, not phones */
        int z = 0;
        while (z < n && d[n - 1 - z] == '0')
            z++;
        if (z >= 5)
            return false;
    }
    if (q->plus) {
        if (n < 8 || n > 15 || d[0] == '0' || (k == 1 && n < 10) || (d[0] == '1' && n != 11))
            return false;
        return set(m, GT_PHONE, q->start, end, pos ? 1.0f : 0.95f, "phone_e164");
    }
    char sep = 0;
    if (shape_334(q, k, 2, &sep))
        return false; /* 3-2-4 is the SSN's layout, not a phone's */
    bool uniform = seps_uniform(q, k, &sep);
    bool dotmix = false;
    for (int g = 1; g < k; g++)
        dotmix |= q->gsep[g] == '.' && sep != '.';
    if (q->paren && !q->gparen[0] && !(k >= 2 && q->gparen[1] && q->glen[1] == 1))
        return false; /* "(0)" after a leading group is the only other bracket */
    if (!dotmix) {
        int o = -1;
        if (k == 3 && q->glen[0] == 3 && q->glen[1] == 3 && q->glen[2] == 4)
            o = 0;
        else if (k == 4 && q->glen[0] == 1 && d[0] == '1' && q->glen[1] == 3 && q->glen[2] == 3 && q->glen[3] == 4)
            o = 1;
        if (o >= 0 && nanp(d, o))
            return set(m, GT_PHONE, q->start, end, pos ? 0.95f : q->paren ? 0.9f : 0.85f, "phone_nanp");
    }
    if (uniform && k >= 2 && d[0] == '0') {
        bool groups_ok = true;
        for (int g = 0; g < k; g++)
            groups_ok &= (q->glen[g] >= 2 || q->gparen[g]) && q->glen[g] <= 8;
        if (groups_ok && d[1] != '0' && n >= 9 && n <= 11 && q->glen[0] <= 5)
            return set(m, GT_PHONE, q->start, end, pos ? 0.95f : 0.8f, "phone_national");
        if (groups_ok && d[1] == '0' && d[2] != '0' && n >= 11 && n <= 15)
            return set(m, GT_PHONE, q->start, end, pos ? 0.95f : 0.8f, "phone_intl_00");
    }
    if (!pos)
        return false;
    if (k == 1 && ((n == 10 && nanp(d, 0)) || (n == 11 && d[0] == '1' && nanp(d, 1)) ||
                   (d[0] == '0' && d[1] != '0' && (n == 10 || n == 11))))
        return set(m, GT_PHONE, q->start, end, 0.7f, "phone_context");
    if (k == 2 && q->glen[0] == 3 && q->glen[1] == 4 && d[0] >= '2' && !q->paren &&
        (q->gsep[1] == '-' || q->gsep[1] == '.'))
        return set(m, GT_PHONE, q->start, end, 0.6f, "phone_context");
    bool groups2 = true; /* no one-digit groups: "call 2 3 4 ..." is a list */
    for (int g = 0; g < k; g++)
        groups2 &= q->glen[g] >= 2;
    if (k >= 2 && uniform && groups2 && n >= 9 && n <= 13)
        return set(m, GT_PHONE, q->start, end, 0.6f, "phone_context");
    return false;
}

/* The byte at e does not continue the number: no letter, digit, '_' or
 * '@', and no ',', '/', ':', '.' or '-' followed by a digit. */
static bool num_right_ok(const char *p, size_t len, size_t e)
{
    if (e >= len)
        return true;
    char c = p[e];
    if (is_alnum(c) || c == '_' || c == '@')
        return false;
    if ((c == ',' || c == '/' || c == ':' || c == '.' || c == '-') && e + 1 < len && is_digit(p[e + 1]))
        return false;
    return true;
}

static bool num_left_ok(const char *p, size_t s)
{
    if (s == 0)
        return true;
    char c = p[s - 1];
    if (word_before(p, s) || c == '_' || c == '@' || c == '$' || c == '/' || c == '\\' || c == '=')
        return false;
    if ((c == '.' || c == ',' || c == '-' || c == ':') && s >= 2 && is_digit(p[s - 2]))
        return false;
    if (s >= 2 && (unsigned char)p[s - 2] == 0xC2 && ((unsigned char)c == 0xA3 || (unsigned char)c == 0xA5))
        return false; /* £, ¥ */
    if (s >= 3 && (unsigned char)p[s - 3] == 0xE2 && (unsigned char)p[s - 2] == 0x82 && (unsigned char)c == 0xAC)
        return false; /* € */
    return true;
}

/*
 * The number at s, longest reading first: the whole sequence, then
 * shorter prefixes when the next separator is a space ("call 020-7946-0958
 * 2 times"). A prefix whose own groups are space-separated is only taken
 * as a card, and only when the next group is not four digits more, so
 * "1234 5678 9012 3456 7890" is not cut into a 16-digit card while
 * "4111 1111 1111 1111 12/28" is one. Order: card, SSN/ITIN, NHS, phone.
 */
static bool number_at(const scan *sc, size_t s, match *m)
{
    const char *p = sc->p;
    numseq q;
    if (!num_left_ok(p, s) || !num_parse(p, sc->len, s, &q))
        return false;
    int total = digits_in(&q, q.ng);
    if (total < 7 && !q.next)
        return false;
    int ctx = -1;
    for (int k = q.ng; k >= 1; k--) {
        char follow = k < q.ng ? q.gsep[k] : q.next;
        size_t end = q.gend[k - 1];
        if (follow && follow != ' ')
            continue;
        if (!follow && !num_right_ok(p, sc->len, end))
            continue;
        if (digits_in(&q, k) < 7)
            break;
        char sep = 0;
        bool spaced = follow == ' ' && k > 1 && seps_uniform(&q, k, &sep) && sep == ' ';
        bool more4 = k == q.ng || q.glen[k] == 4; /* the next group could be more of the same */
        if (!(spaced && more4) && card_ok(&q, k))
            return set(m, GT_CREDIT_CARD, s, end, 1.0f, "luhn");
        if (spaced)
            continue;
        if (ctx < 0)
            ctx = context_before(p, s);
        if (ssn_ok(&q, k, ctx, m, end) || nhs_ok(&q, k, ctx, m, end) || phone_ok(&q, k, ctx, m, end))
            return true;
    }
    return false;
}

/* ---- UK NINO, IBAN ------------------------------------------------------ */

/*
 * UK National Insurance number at s: two prefix letters (the first not D,
 * F, I, Q, U or V; the second not D, F, I, O, Q, U or V; not BG, GB, KN,
 * NK, NT, TN or ZZ), six digits (together or as 2-2-2 after a space), and
 * the suffix A-D, optionally after a space. Upper case only.
 */
static bool nino_at(const scan *sc, size_t s, match *m)
{
    const char *p = sc->p;
    size_t len = sc->len, i = s + 2;
    if (s + 9 > len || !is_upper(p[s]) || !is_upper(p[s + 1]))
        return false;
    if (word_before(p, s) || (s > 0 && p[s - 1] == '_'))
        return false;
    char a = p[s], b = p[s + 1];
    if (strchr("DFIQUV", a) || strchr("DFIOQUV", b))
        return false;
    static const char bad[][3] = { "BG", "GB", "KN", "NK", "NT", "TN", "ZZ" };
    for (size_t k = 0; k < countof(bad); k++)
        if (a == bad[k][0] && b == bad[k][1])
            return false;
    bool spaced = p[i] == ' ';
    if (spaced)
        i++;
    int nd = 0;
    while (nd < 6 && i < len) {
        if (is_digit(p[i])) {
            nd++;
            i++;
        } else if (spaced && p[i] == ' ' && (nd == 2 || nd == 4) && i + 1 < len && is_digit(p[i + 1]))
            i++;
        else
            break;
    }
    if (nd != 6 || i >= len)
        return false;
    if (p[i] == ' ')
        i++;
    if (i >= len || p[i] < 'A' || p[i] > 'D')
        return false;
    i++;
    if (i < len && (is_alnum(p[i]) || p[i] == '_'))
        return false;
    return set(m, GT_UK_NINO, s, i, 0.95f, "nino");
}

/* IBAN lengths by country (SWIFT's IBAN registry). */
static const struct {
    char cc[3];
    uint8_t len;
} iban_lens[] = {
    { "AD", 24 }, { "AE", 23 }, { "AL", 28 }, { "AT", 20 }, { "AZ", 28 }, { "BA", 20 }, { "BE", 16 },
    { "BG", 22 }, { "BH", 22 }, { "BI", 27 }, { "BR", 29 }, { "BY", 28 }, { "CH", 21 }, { "CR", 22 },
    { "CY", 28 }, { "CZ", 24 }, { "DE", 22 }, { "DJ", 27 }, { "DK", 18 }, { "DO", 28 }, { "EE", 20 },
    { "EG", 29 }, { "ES", 24 }, { "FI", 18 }, { "FK", 18 }, { "FO", 18 }, { "FR", 27 }, { "GB", 22 },
    { "GE", 22 }, { "GI", 23 }, { "GL", 18 }, { "GR", 27 }, { "GT", 28 }, { "HR", 21 }, { "HU", 28 },
    { "IE", 22 }, { "IL", 23 }, { "IQ", 23 }, { "IS", 26 }, { "IT", 27 }, { "JO", 30 }, { "KW", 30 },
    { "KZ", 20 }, { "LB", 28 }, { "LC", 32 }, { "LI", 21 }, { "LT", 20 }, { "LU", 20 }, { "LV", 21 },
    { "LY", 25 }, { "MC", 27 }, { "MD", 24 }, { "ME", 22 }, { "MK", 19 }, { "MN", 20 }, { "MR", 27 },
    { "MT", 31 }, { "MU", 30 }, { "NI", 28 }, { "NL", 18 }, { "NO", 15 }, { "OM", 23 }, { "PK", 24 },
    { "PL", 28 }, { "PS", 29 }, { "PT", 25 }, { "QA", 29 }, { "RO", 24 }, { "RS", 22 }, { "RU", 33 },
    { "SA", 24 }, { "SC", 31 }, { "SD", 18 }, { "SE", 24 }, { "SI", 19 }, { "SK", 24 }, { "SM", 27 },
    { "SO", 23 }, { "ST", 25 }, { "SV", 28 }, { "TL", 23 }, { "TN", 24 }, { "TR", 26 }, { "UA", 29 },
    { "VA", 22 }, { "VG", 24 }, { "XK", 20 }, { "YE", 30 },
};

/*
 * IBAN at s: a country code from the table, two check digits, and exactly
 * the country's length in upper-case letters and digits, either in one
 * run or in space-separated groups of four (the last shorter); then the
 * ISO 7064 mod 97-10 check (move the first four to the end, letters to
 * 10..35, remainder 1).
 */
static bool iban_at(const scan *sc, size_t s, match *m)
{
    const char *p = sc->p;
    size_t len = sc->len;
    if (s + 15 > len || !is_upper(p[s]) || !is_upper(p[s + 1]) || !is_digit(p[s + 2]) || !is_digit(p[s + 3]))
        return false;
    if (word_before(p, s) || (s > 0 && p[s - 1] == '_'))
        return false;
    size_t want = 0;
    for (size_t k = 0; k < countof(iban_lens); k++)
        if (iban_lens[k].cc[0] == p[s] && iban_lens[k].cc[1] == p[s + 1])
            want = iban_lens[k].len;
    if (!want)
        return false;
    char v[34];
    size_t n = 0, i = s;
    bool spaced = s + 4 < len && p[s + 4] == ' ';
    while (n < want && i < len) {
        if (spaced && n > 0 && n % 4 == 0) {
            if (p[i] != ' ')
                return false;
            i++;
            if (i >= len)
                return false;
        }
        char c = p[i];
        if (!(is_digit(c) || is_upper(c)))
            return false;
        v[n++] = c;
        i++;
    }
    if (n != want || (i < len && (is_alnum(p[i]) || p[i] == '_')))
        return false;
    if (spaced && i + 1 < len && p[i] == ' ' && is_alnum(p[i + 1]) && want % 4 == 0)
        return false; /* another group follows: part of a longer number */
    unsigned rem = 0;
    for (size_t k = 0; k < n; k++) {
        char c = v[(k + 4) % n];
        unsigned d = is_digit(c) ? (unsigned)(c - '0') : (unsigned)(c - 'A' + 10);
        rem = d >= 10 ? (rem * 100 + d) % 97 : (rem * 10 + d) % 97;
    }
    if (rem != 1)
        return false;
    return set(m, GT_IBAN, s, i, 1.0f, "iban_mod97");
}

/* ---- crypto wallets ----------------------------------------------------- */

static const char b58_alphabet[] = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

/*
 * Bitcoin base58check at s: '1' (P2PKH, version 0x00) or '3' (P2SH, 0x05),
 * 26-35 base58 characters decoding to 25 bytes whose last four are the
 * first four of SHA-256(SHA-256(first 21)).
 */
static bool base58_at(const scan *sc, size_t s, size_t e, match *m)
{
    const char *p = sc->p;
    size_t n = e - s;
    if (n < 26 || n > 35 || (p[s] != '1' && p[s] != '3'))
        return false;
    uint8_t b[25] = { 0 };
    size_t ones = 0;
    while (ones < n && p[s + ones] == '1')
        ones++;
    for (size_t i = s; i < e; i++) {
        const char *hit_ = memchr(b58_alphabet, p[i], 58);
        if (!hit_ || !p[i])
            return false;
        unsigned carry = (unsigned)(hit_ - b58_alphabet);
        for (int k = 24; k >= 0; k--) {
            carry += 58u * b[k];
            b[k] = (uint8_t)carry;
            carry >>= 8;
        }
        if (carry)
            return false;
    }
    size_t zeros = 0;
    while (zeros < 25 && b[zeros] == 0)
        zeros++;
    if (zeros != ones || b[0] != (p[s] == '1' ? 0x00 : 0x05))
        return false;
    unsigned char h1[SHA256_DIGEST_LENGTH], h2[SHA256_DIGEST_LENGTH];
    SHA256(b, 21, h1);
    SHA256(h1, sizeof h1, h2);
    if (memcmp(h2, b + 21, 4) != 0)
        return false;
    return set(m, GT_CRYPTO, s, e, 1.0f, "bitcoin_base58check");
}

static const char bech32_charset[] = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";

static uint32_t bech32_polymod_step(uint32_t chk, unsigned v)
{
    static const uint32_t gen[5] = { 0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3 };
    uint32_t top = chk >> 25;
    chk = ((chk & 0x1ffffff) << 5) ^ v;
    for (int i = 0; i < 5; i++)
        if ((top >> i) & 1)
            chk ^= gen[i];
    return chk;
}

/*
 * Segwit address at s ("bc1", one case throughout): data characters from
 * the bech32 set, the checksum over hrp "bc" (bech32 for witness version
 * 0, bech32m for 1-16), and a witness program of 20 or 32 bytes (v0) or
 * 2-40 bytes (v1+), with zero padding bits.
 */
static bool bech32_at(const scan *sc, size_t s, size_t e, match *m)
{
    const char *p = sc->p;
    size_t n = e - s;
    if (n < 14 || n > 90 || !at_ci(p, sc->len, s, "bc1"))
        return false;
    bool up = false, low = false;
    unsigned vals[90];
    size_t nd = 0;
    for (size_t i = s; i < e; i++) {
        up |= is_upper(p[i]);
        low |= (cl(p[i]) & C_LOWER) != 0;
    }
    if (up && low)
        return false;
    uint32_t chk = 1;
    chk = bech32_polymod_step(chk, 'b' >> 5);
    chk = bech32_polymod_step(chk, 'c' >> 5);
    chk = bech32_polymod_step(chk, 0);
    chk = bech32_polymod_step(chk, 'b' & 31);
    chk = bech32_polymod_step(chk, 'c' & 31);
    for (size_t i = s + 3; i < e; i++) {
        const char *hit_ = memchr(bech32_charset, lower(p[i]), 32);
        if (!hit_ || !p[i])
            return false;
        vals[nd] = (unsigned)(hit_ - bech32_charset);
        chk = bech32_polymod_step(chk, vals[nd]);
        nd++;
    }
    if (nd < 7)
        return false;
    unsigned ver = vals[0];
    if (ver > 16 || chk != (ver == 0 ? 1u : 0x2bc830a3u))
        return false;
    /* 5-bit groups to bytes, no padding allowed beyond 4 zero bits. */
    unsigned acc = 0, bits = 0;
    size_t plen = 0;
    for (size_t i = 1; i + 6 < nd; i++) {
        acc = (acc << 5) | vals[i];
        bits += 5;
        if (bits >= 8) {
            bits -= 8;
            plen++;
        }
    }
    if (bits >= 5 || (acc & ((1u << bits) - 1)) != 0)
        return false;
    if (ver == 0 ? (plen != 20 && plen != 32) : (plen < 2 || plen > 40))
        return false;
    return set(m, GT_CRYPTO, s, e, 1.0f, "bitcoin_bech32");
}

/* Keccak-256 as Ethereum uses it (the original padding 0x01, not SHA-3's
 * 0x06): rate 136 bytes, 24 rounds of Keccak-f[1600]. Messages here are
 * 40 bytes, so one block. */
static uint64_t rol64(uint64_t x, unsigned n) { return n ? (x << n) | (x >> (64 - n)) : x; }

static void keccak_f1600(uint64_t st[25])
{
    static const uint64_t rc[24] = {
        0x0000000000000001ULL, 0x0000000000008082ULL, 0x800000000000808AULL, 0x8000000080008000ULL,
        0x000000000000808BULL, 0x0000000080000001ULL, 0x8000000080008081ULL, 0x8000000000008009ULL,
        0x000000000000008AULL, 0x0000000000000088ULL, 0x0000000080008009ULL, 0x000000008000000AULL,
        0x000000008000808BULL, 0x800000000000008BULL, 0x8000000000008089ULL, 0x8000000000008003ULL,
        0x8000000000008002ULL, 0x8000000000000080ULL, 0x000000000000800AULL, 0x800000008000000AULL,
        0x8000000080008081ULL, 0x8000000000008080ULL, 0x0000000080000001ULL, 0x8000000080008008ULL,
    };
    for (int r = 0; r < 24; r++) {
        uint64_t c[5], d[5], b[25];
        for (int x = 0; x < 5; x++)
            c[x] = st[x] ^ st[x + 5] ^ st[x + 10] ^ st[x + 15] ^ st[x + 20];
        for (int x = 0; x < 5; x++)
            d[x] = c[(x + 4) % 5] ^ rol64(c[(x + 1) % 5], 1);
        for (int i = 0; i < 25; i++)
            st[i] ^= d[i % 5];
        /* rho and pi: walk (x, y) -> (y, 2x + 3y) from (1, 0), the t-th
         * lane rotated by (t + 1)(t + 2) / 2. */
        b[0] = st[0];
        int x = 1, y = 0;
        for (int t = 0; t < 24; t++) {
            int nx = y, ny = (2 * x + 3 * y) % 5;
            b[nx + 5 * ny] = rol64(st[x + 5 * y], (unsigned)(((t + 1) * (t + 2) / 2) % 64));
            x = nx;
            y = ny;
        }
        for (int yy = 0; yy < 5; yy++)
            for (int xx = 0; xx < 5; xx++)
                st[xx + 5 * yy] = b[xx + 5 * yy] ^ (~b[(xx + 1) % 5 + 5 * yy] & b[(xx + 2) % 5 + 5 * yy]);
        st[0] ^= rc[r];
    }
}

/* Keccak-256 of msg (n < 136). Exposed to the unit tests through the
 * include-the-.c pattern only. */
static void keccak256(const uint8_t *msg, size_t n, uint8_t out[32])
{
    uint64_t st[25] = { 0 };
    uint8_t block[136] = { 0 };
    memcpy(block, msg, n);
    block[n] ^= 0x01;
    block[135] ^= 0x80;
    for (int i = 0; i < 17; i++) {
        uint64_t lane = 0;
        for (int k = 7; k >= 0; k--)
            lane = (lane << 8) | block[8 * i + k];
        st[i] ^= lane;
    }
    keccak_f1600(st);
    for (int i = 0; i < 32; i++)
        out[i] = (uint8_t)(st[i / 8] >> (8 * (i % 8)));
}

/*
 * Ethereum address at s: "0x" and exactly 40 hex digits. One case
 * throughout is accepted as is; mixed case must carry the EIP-55
 * checksum (a letter is upper case when the matching nibble of
 * Keccak-256 of the lower-case hex is 8 or more).
 */
static bool eth_at(const scan *sc, size_t s, match *m)
{
    const char *p = sc->p;
    size_t len = sc->len;
    if (s + 42 > len || p[s] != '0' || (p[s + 1] != 'x' && p[s + 1] != 'X'))
        return false;
    if (word_before(p, s) || (s > 0 && p[s - 1] == '_'))
        return false;
    bool up = false, low = false;
    uint8_t hexl[40];
    for (size_t i = 0; i < 40; i++) {
        char c = p[s + 2 + i];
        if (!is_hex(c))
            return false;
        up |= c >= 'A' && c <= 'F';
        low |= c >= 'a' && c <= 'f';
        hexl[i] = (uint8_t)lower(c);
    }
    size_t e = s + 42;
    if (e < len && (is_alnum(p[e]) || p[e] == '_'))
        return false;
    if (up && low) {
        uint8_t h[32];
        keccak256(hexl, 40, h);
        for (size_t i = 0; i < 40; i++) {
            char c = p[s + 2 + i];
            unsigned nib = (i % 2 == 0) ? h[i / 2] >> 4 : h[i / 2] & 15;
            if (is_alpha(c) && (nib >= 8) != is_upper(c))
                return false;
        }
        return set(m, GT_CRYPTO, s, e, 1.0f, "ethereum_eip55");
    }
    return set(m, GT_CRYPTO, s, e, 0.9f, "ethereum");
}

/* ---- the pass ----------------------------------------------------------- */

/* The candidate start before a NINO written "AB 12 34 56 C": the run at s
 * is digits, preceded by a space and two capitals. */
static bool nino_spaced_at(const scan *sc, size_t s, match *m)
{
    const char *p = sc->p;
    if (s < sc->done + 3 || s < 3 || p[s - 1] != ' ' || !is_upper(p[s - 2]) || !is_upper(p[s - 3]))
        return false;
    return nino_at(sc, s - 3, m);
}

/* Is [s, e) all hex digits? */
static bool all_hex(const char *p, size_t s, size_t e)
{
    for (size_t i = s; i < e; i++)
        if (!is_hex(p[i]))
            return false;
    return true;
}

/*
 * Tries every recognizer that can start at s, in priority order, and
 * records the first match. Then `done` is moved past the match, or past
 * the alphanumeric run at s, so the run is never examined again.
 */
static void try_at(scan *sc, size_t s)
{
    const char *p = sc->p;
    size_t len = sc->len, e = s;
    match m;
    bool ok = false;
    char c = p[s];
    if (c == '+' || c == '(') {
        ok = number_at(sc, s, &m);
        e = s + 1;
    } else if (c == ':') {
        ok = ipv6_at(sc, s, &m);
        e = s + 1;
    } else {
        while (e < len && e - s <= 100 && is_alnum(p[e]))
            e++;
        size_t n = e - s;
        char after = e < len ? p[e] : 0;
        bool hexrun = n <= 4 && all_hex(p, s, e);
        if (is_alpha(c)) {
            ok = ((after == ':' || after == '.') && url_at(sc, s, &m)) ||
                 ((c == 'b' || c == 'B') && bech32_at(sc, s, e, &m)) || iban_at(sc, s, &m) || nino_at(sc, s, &m);
        } else {
            ok = (c == '0' && eth_at(sc, s, &m)) || base58_at(sc, s, e, &m) ||
                 (after == '.' && n <= 3 && ipv4_at(sc, s, &m));
        }
        if (!ok && hexrun && (after == ':' || after == '-' || after == '.'))
            ok = mac_at(sc, s, &m) || (after == ':' && ipv6_at(sc, s, &m));
        if (!ok && is_digit(c))
            ok = nino_spaced_at(sc, s, &m) || number_at(sc, s, &m);
    }
    if (ok)
        hit(sc, &m);
    else if (sc->done < e)
        sc->done = e;
}

/* The start of the alphanumeric run that ends at (or contains) i, looking
 * back no further than 16 bytes or `done`; SIZE_MAX when the run began
 * before that (it was tried already, or is too long to matter). */
static size_t run_start(const scan *sc, size_t i)
{
    size_t s = i;
    while (s > sc->done && i - s < 16 && word_before(sc->p, s))
        s--;
    if (word_before(sc->p, s))
        return SIZE_MAX;
    return s;
}

/* Can the '.', '-' or ':' at i be part of what run_start/try_at look
 * for? "www." and "abcd.ef01" need a letter or digit after the '.', a MAC
 * "aa-bb" hex on both sides of '-', "http://" a '/' after ':', an IPv6 or
 * MAC group hex after ':' (or "::"). Sentence ends, hyphenated words and
 * "Note: " are dropped here without looking back. */
static bool punct_worth(const char *p, size_t len, size_t i)
{
    if (i + 1 >= len)
        return false;
    char a = i ? p[i - 1] : ' ', b = p[i + 1];
    switch (p[i]) {
    case '.': return (is_hex(a) || a == 'w' || a == 'W') && (is_alnum(b) || (cl(b) & C_HIGH));
    case '-': return is_hex(a) && is_hex(b);
    default: return b == '/' || b == ':' || is_hex(b);
    }
}

err_code guard_scan_pii(const char *text, size_t len, uint64_t mask, guard_findings *out)
{
    if (!out || (!text && len))
        return ERR_INVAL;
    if (len > UINT32_MAX)
        return ERR_TOOBIG;
    if (!(mask & GUARD_PII_ALL))
        return ERR_OK;
    scan sc = { .p = text, .len = len, .mask = mask, .out = out };
    const char *p = text;
    const unsigned char *u = (const unsigned char *)text;
    size_t i = 0;
    while (i < len) {
        while (i + 8 <= len && !((cls[u[i]] | cls[u[i + 1]] | cls[u[i + 2]] | cls[u[i + 3]] | cls[u[i + 4]] |
                                  cls[u[i + 5]] | cls[u[i + 6]] | cls[u[i + 7]]) &
                                 C_TRIG))
            i += 8;
        while (i < len && !(cls[u[i]] & C_TRIG))
            i++;
        if (i >= len)
            break;
        char c = p[i];
        size_t s = SIZE_MAX;
        if ((c == '.' || c == '-' || c == ':') && !punct_worth(p, len, i)) {
            i++;
            continue;
        }
        if (c == '@') {
            match m;
            if (email_at(&sc, i, &m))
                hit(&sc, &m);
        } else if (is_digit(c)) {
            s = run_start(&sc, i);
            if (s == SIZE_MAX) { /* inside a run tried before: skip it */
                while (i < len && is_alnum(p[i]))
                    i++;
                if (sc.done < i)
                    sc.done = i;
                continue;
            }
        } else if (c == '+' || c == '(') {
            if (i + 1 < len && is_digit(p[i + 1]) && !word_before(p, i))
                s = i;
        } else { /* ':', '.', '-': the run before, or "::" */
            size_t r = run_start(&sc, i);
            if (r != SIZE_MAX && r < i) {
                size_t n = i - r;
                /* Only what can start a URL, MAC or IPv6 here. */
                if ((c == ':' && n <= 5) || (c == '.' && (n == 3 || n == 4)) || (c == '-' && n == 2))
                    s = r;
            } else if (r == i && c == ':' && i + 1 < len && p[i + 1] == ':')
                s = i;
        }
        if (s != SIZE_MAX && s >= sc.done)
            try_at(&sc, s);
        if (sc.err)
            return sc.err;
        i = sc.done > i + 1 ? sc.done : i + 1;
    }
    return ERR_OK;
}
