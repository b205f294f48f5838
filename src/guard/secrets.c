/*
 * secrets.c - the built-in secret detectors: API keys of the major
 * providers and clouds (by prefix and shape), private key blocks, JWTs,
 * connection strings with credentials, and high-entropy tokens.
 *
 * How it works. One forward pass splits the text into runs of token bytes
 * [A-Za-z0-9_+/-] (a '=' joins a run only as base64 padding at its end),
 * OR-ing each byte's class bits together as it goes, so a run arrives
 * with its length and "has digit / upper / lower / symbol" for free. Prose
 * words are short runs of letters and cost one table lookup per byte.
 * What a run can be is decided by cheap tests on it:
 *  - followed by "://": a URL with user:password@ (postgres, mysql,
 *    mongodb(+srv), redis, amqp, mssql, http(s), ftp, smtp, ldap);
 *  - followed by '=': a key of a "k=v;k=v" connection string (Password,
 *    Pwd, AccountKey, SharedAccessKey) - the finding spans the chain;
 *  - "SG" followed by '.': a SendGrid key;
 *  - 10 bytes or more: the prefix table (sk-ant-, AKIA, ghp_ ...), a JWT
 *    ("eyJ" then '.'), a private key block ("-----BEGIN ... PRIVATE KEY");
 *  - 20 bytes or more and nothing else: an AWS secret key next to AWS
 *    words, or the entropy rule (entropy_ok).
 * A match moves the pass past its end, so findings never overlap and the
 * work is linear: the private-key END search remembers how far it looked.
 * Text escaped for JSON ("\n-----BEGIN", "\nsk-...") is handled by not
 * counting the letter of a \n, \t or \r escape as part of the run.
 *
 * As in pii.c, the mask only filters what is reported: classification is
 * the same for every mask. docs/internals/guard-detectors.md has the
 * rules, the rule names and what each detector misses.
 */
#include <math.h>
#include "guard/detect.h"

/* ---- byte classes ------------------------------------------------------- */

enum {
    T_TOK = 1 << 0,   /* [A-Za-z0-9_+/-]: part of a run */
    T_DIGIT = 1 << 1,
    T_UPPER = 1 << 2,
    T_LOWER = 1 << 3,
    T_SYM = 1 << 4,   /* _ + / - */
    T_HEX = 1 << 5,
    T_B64URL = 1 << 6, /* [A-Za-z0-9_-] */
    T_B64 = 1 << 7,    /* [A-Za-z0-9+/] */
    T_STOP = 1 << 8,   /* '=' and ':': what a short run must be followed by to matter */
};

#define SD_(c) ((c) >= '0' && (c) <= '9')
#define SU_(c) ((c) >= 'A' && (c) <= 'Z')
#define SL_(c) ((c) >= 'a' && (c) <= 'z')
#define SAN_(c) (SD_(c) || SU_(c) || SL_(c))
#define SCLS_(c)                                                                                   \
    ((SAN_(c) || (c) == '_' || (c) == '+' || (c) == '/' || (c) == '-' ? T_TOK : 0) |                \
     (SD_(c) ? T_DIGIT : 0) | (SU_(c) ? T_UPPER : 0) | (SL_(c) ? T_LOWER : 0) |                    \
     ((c) == '_' || (c) == '+' || (c) == '/' || (c) == '-' ? T_SYM : 0) |                          \
     ((SD_(c) || ((c) >= 'a' && (c) <= 'f') || ((c) >= 'A' && (c) <= 'F')) ? T_HEX : 0) |         \
     ((SAN_(c) || (c) == '_' || (c) == '-') ? T_B64URL : 0) |                                      \
     ((SAN_(c) || (c) == '+' || (c) == '/') ? T_B64 : 0) | ((c) == '=' || (c) == ':' ? T_STOP : 0))
#define SR4_(c) SCLS_(c), SCLS_((c) + 1), SCLS_((c) + 2), SCLS_((c) + 3)
#define SR16_(c) SR4_(c), SR4_((c) + 4), SR4_((c) + 8), SR4_((c) + 12)
#define SR64_(c) SR16_(c), SR16_((c) + 16), SR16_((c) + 32), SR16_((c) + 48)

static const uint16_t tcls[256] = { SR64_(0), SR64_(64), SR64_(128), SR64_(192) };

static inline unsigned tc(char c) { return tcls[(unsigned char)c]; }

#if defined(__SSE2__)
#include <emmintrin.h>
/* The token bytes (T_TOK) and the stop bytes (T_STOP) of p[0, 16) as bit
 * masks, bit i for byte i: the byte classes above, sixteen at a time. */
static inline void masks16(const unsigned char *p, unsigned *tb, unsigned *sb)
{
    __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p), zero = _mm_setzero_si128();
    __m128i l = _mm_sub_epi8(_mm_or_si128(v, _mm_set1_epi8(0x20)), _mm_set1_epi8('a')); /* letters: 0-25 */
    __m128i d = _mm_sub_epi8(v, _mm_set1_epi8('0'));                                   /* digits: 0-9 */
    __m128i an = _mm_or_si128(_mm_cmpeq_epi8(_mm_subs_epu8(l, _mm_set1_epi8(25)), zero),
                              _mm_cmpeq_epi8(_mm_subs_epu8(d, _mm_set1_epi8(9)), zero));
    __m128i sym = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('_')), _mm_cmpeq_epi8(v, _mm_set1_epi8('+'))),
                               _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('/')), _mm_cmpeq_epi8(v, _mm_set1_epi8('-'))));
    __m128i stop = _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('=')), _mm_cmpeq_epi8(v, _mm_set1_epi8(':')));
    *tb = (unsigned)_mm_movemask_epi8(_mm_or_si128(an, sym));
    *sb = (unsigned)_mm_movemask_epi8(stop);
}
#endif
static inline bool is_alnum(char c) { return tc(c) & (T_DIGIT | T_UPPER | T_LOWER); }
static inline bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
static inline char lower(char c) { return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c; }

/* p[j] is the letter of a \n, \t or \r escape (JSON-escaped text). */
static inline bool esc_at(const char *p, size_t j)
{
    return j > 0 && p[j - 1] == '\\' && (p[j] == 'n' || p[j] == 't' || p[j] == 'r');
}

static bool at_ci(const char *p, size_t len, size_t i, const char *lit)
{
    for (; *lit; lit++, i++)
        if (i >= len || lower(p[i]) != *lit)
            return false;
    return true;
}

static bool at_cs(const char *p, size_t len, size_t i, const char *lit)
{
    size_t n = strlen(lit);
    return i + n <= len && memcmp(p + i, lit, n) == 0;
}

typedef struct match {
    guard_type type;
    size_t start, end;
    float score;
    const char *rule;
} match;

typedef struct sscan {
    const char *p;
    size_t len;
    uint64_t mask;
    guard_findings *out;
    size_t mend;      /* end of the last match */
    size_t aws_end;   /* end of the last AWS access key id (+1), 0 if none */
    size_t end_from;  /* the "-----END" search cache: searched [end_from, end_at) */
    size_t end_at;    /* position of the next "-----END" at or after end_from, or len */
    err_code err;
} sscan;

static void hit(sscan *sc, const match *m)
{
    sc->mend = m->end;
    if (sc->err || !(sc->mask & ((uint64_t)1 << m->type)))
        return;
    sc->err = guard_findings_add(sc->out, m->type, m->start, m->end - m->start, m->score, m->rule);
}

static bool set(match *m, guard_type t, size_t start, size_t end, float score, const char *rule)
{
    *m = (match){ t, start, end, score, rule };
    return true;
}

/* Bytes in [a, b) with a class bit; the OR of their classes. */
static unsigned bits_of(const char *p, size_t a, size_t b)
{
    unsigned bits = 0;
    for (size_t i = a; i < b; i++)
        bits |= tc(p[i]);
    return bits;
}

/* ---- API keys by prefix ------------------------------------------------- */

enum { K_ALNUM, K_B64URL, K_UPALNUM, K_HEXL, K_ALNUM_US, K_ALNUM_DASH };
enum { NEED_DIGIT = 1, NEED_MIXED = 2 };

static bool in_set(char c, int set)
{
    switch (set) {
    case K_ALNUM: return is_alnum(c);
    case K_B64URL: return tc(c) & T_B64URL;
    case K_UPALNUM: return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    case K_HEXL: return (c >= 'a' && c <= 'f') || (c >= '0' && c <= '9');
    case K_ALNUM_US: return is_alnum(c) || c == '_';
    default: return is_alnum(c) || c == '-';
    }
}

/* Prefix, body character set and length, extra needs, rule name, score.
 * A longer prefix comes before a shorter one it extends (sk-ant- before
 * sk-). The body is the longest run of its set after the prefix, and must
 * not be followed by a letter, digit, '_' or '-'. */
static const struct key_rule {
    const char *prefix;
    uint8_t plen;
    uint8_t set;
    uint16_t min, max;
    uint8_t need;
    const char *rule;
    float score;
} key_rules[] = {
    { "sk-ant-", 7, K_B64URL, 32, 300, NEED_DIGIT, "anthropic_api_key", 1.0f },
    { "sk-proj-", 8, K_B64URL, 32, 300, NEED_DIGIT, "openai_project_key", 1.0f },
    { "sk-svcacct-", 11, K_B64URL, 32, 300, NEED_DIGIT, "openai_service_account_key", 1.0f },
    { "sk-admin-", 9, K_B64URL, 32, 300, NEED_DIGIT, "openai_admin_key", 1.0f },
    { "sk-", 3, K_ALNUM, 20, 200, NEED_DIGIT | NEED_MIXED, "openai_api_key", 0.9f },
    { "sk_live_", 8, K_ALNUM, 20, 255, 0, "stripe_secret_key", 1.0f },
    { "rk_live_", 8, K_ALNUM, 20, 255, 0, "stripe_restricted_key", 1.0f },
    { "sk_test_", 8, K_ALNUM, 20, 255, 0, "stripe_test_key", 0.8f },
    { "rk_test_", 8, K_ALNUM, 20, 255, 0, "stripe_test_key", 0.8f },
    { "AKIA", 4, K_UPALNUM, 16, 16, 0, "aws_access_key_id", 1.0f },
    { "ASIA", 4, K_UPALNUM, 16, 16, 0, "aws_session_key_id", 1.0f },
    { "AIza", 4, K_B64URL, 35, 35, 0, "google_api_key", 1.0f },
    { "ghp_", 4, K_ALNUM, 36, 255, 0, "github_pat", 1.0f },
    { "gho_", 4, K_ALNUM, 36, 255, 0, "github_oauth_token", 1.0f },
    { "ghu_", 4, K_ALNUM, 36, 255, 0, "github_user_token", 1.0f },
    { "ghs_", 4, K_ALNUM, 36, 255, 0, "github_app_token", 1.0f },
    { "ghr_", 4, K_ALNUM, 36, 255, 0, "github_refresh_token", 1.0f },
    { "github_pat_", 11, K_ALNUM_US, 70, 255, 0, "github_fine_grained_pat", 1.0f },
    { "glpat-", 6, K_B64URL, 20, 255, 0, "gitlab_pat", 1.0f },
    { "xoxb-", 5, K_ALNUM_DASH, 20, 255, NEED_DIGIT, "slack_bot_token", 1.0f },
    { "xoxp-", 5, K_ALNUM_DASH, 20, 255, NEED_DIGIT, "slack_user_token", 1.0f },
    { "xoxa-", 5, K_ALNUM_DASH, 20, 255, NEED_DIGIT, "slack_workspace_token", 1.0f },
    { "xoxr-", 5, K_ALNUM_DASH, 20, 255, NEED_DIGIT, "slack_refresh_token", 1.0f },
    { "xoxs-", 5, K_ALNUM_DASH, 20, 255, NEED_DIGIT, "slack_session_token", 1.0f },
    { "xapp-", 5, K_ALNUM_DASH, 20, 255, NEED_DIGIT, "slack_app_token", 1.0f },
    { "GOCSPX-", 7, K_B64URL, 24, 40, 0, "google_oauth_client_secret", 1.0f },
    { "SK", 2, K_HEXL, 32, 32, 0, "twilio_api_key", 0.95f },
    { "npm_", 4, K_ALNUM, 36, 36, 0, "npm_token", 1.0f },
    { "hf_", 3, K_ALNUM, 30, 40, 0, "huggingface_token", 1.0f },
    { "pypi-", 5, K_B64URL, 50, 300, 0, "pypi_token", 1.0f },
};

/* Is one byte more than half of [a, b)? Placeholders ("AKIAXXXXXXXX...",
 * "sk-000000...") are; random key bodies never are. */
static bool dominated(const char *p, size_t a, size_t b)
{
    unsigned counts[128] = { 0 }, top = 0;
    for (size_t i = a; i < b; i++) {
        unsigned c = ++counts[(unsigned char)p[i] & 0x7f];
        if (c > top)
            top = c;
    }
    return 2 * top > b - a;
}

/* The first rule whose prefix and body match at s; false when none. */
static bool key_at(const sscan *sc, size_t s, match *m)
{
    const char *p = sc->p;
    size_t len = sc->len;
    for (size_t r = 0; r < countof(key_rules); r++) {
        const struct key_rule *k = &key_rules[r];
        if (p[s] != k->prefix[0] || s + k->plen > len || p[s + 1] != k->prefix[1] ||
            memcmp(p + s, k->prefix, k->plen) != 0)
            continue;
        size_t b = s + k->plen, e = b;
        while (e < len && e - b <= k->max && in_set(p[e], k->set))
            e++;
        size_t n = e - b;
        if (n < k->min || n > k->max)
            continue;
        if ((e < len && (is_alnum(p[e]) || p[e] == '_' || p[e] == '-')) || dominated(p, b, e))
            continue;
        unsigned bits = bits_of(p, b, e);
        if ((k->need & NEED_DIGIT) && !(bits & T_DIGIT))
            continue;
        if (k->need & NEED_MIXED) { /* upper and lower case, or 32+ lower-case hex (DeepSeek style) */
            bool mixed = (bits & T_UPPER) && (bits & T_LOWER), hexl = n >= 32;
            for (size_t i = b; hexl && i < e; i++)
                hexl = in_set(p[i], K_HEXL);
            if (!mixed && !hexl)
                continue;
        }
        return set(m, GT_API_KEY, s, e, k->score, k->rule);
    }
    return false;
}

/* ---- JWT, SendGrid ------------------------------------------------------ */

static int b64url_val(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-' || c == '+')
        return 62;
    if (c == '_' || c == '/')
        return 63;
    return -1;
}

/* Decodes base64url [a, b) into out (at most cap bytes); the count. */
static size_t b64url_decode(const char *p, size_t a, size_t b, uint8_t *out, size_t cap)
{
    uint32_t acc = 0;
    int bits = 0;
    size_t n = 0;
    for (size_t i = a; i < b && n < cap; i++) {
        int v = b64url_val(p[i]);
        if (v < 0)
            break;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[n++] = (uint8_t)(acc >> bits);
        }
    }
    return n;
}

static size_t b64url_run(const char *p, size_t len, size_t i)
{
    while (i < len && (tc(p[i]) & T_B64URL))
        i++;
    return i;
}

/* Does the decoded text start (after blanks) with '{'? */
static bool json_open(const uint8_t *d, size_t n)
{
    size_t i = 0;
    while (i < n && (d[i] == ' ' || d[i] == '\n' || d[i] == '\r' || d[i] == '\t'))
        i++;
    return i < n && d[i] == '{';
}

/*
 * JWT at s: header.payload.signature in base64url. The header (10+
 * characters) must decode to a JSON object with an "alg" member; a JWS
 * payload must decode to a JSON object; the signature may be empty
 * ("alg":"none"). A header with "enc" is a JWE: five parts, no payload
 * check. The finding covers all the parts.
 */
static bool jwt_at(const sscan *sc, size_t s, match *m)
{
    const char *p = sc->p;
    size_t len = sc->len;
    if (!at_cs(p, len, s, "eyJ"))
        return false;
    size_t h1 = b64url_run(p, len, s);
    if (h1 - s < 10 || h1 >= len || p[h1] != '.')
        return false;
    uint8_t hdr[1536];
    size_t hn = b64url_decode(p, s, h1, hdr, sizeof hdr);
    if (!json_open(hdr, hn) || !memmem(hdr, hn, "\"alg\"", 5))
        return false;
    bool jwe = memmem(hdr, hn, "\"enc\"", 5) != NULL;
    size_t parts = 1, e = h1;
    while (parts < (jwe ? 5u : 3u) && e < len && p[e] == '.') {
        size_t a = e + 1, b = b64url_run(p, len, a);
        if (parts == 1 && !jwe) {
            uint8_t pl[8];
            if (b - a < 2 || !json_open(pl, b64url_decode(p, a, b, pl, sizeof pl)))
                return false;
        }
        if (b == a && parts + 1 < (jwe ? 5u : 3u) && !(jwe && parts == 1))
            return false; /* only the signature (or a JWE's key) may be empty */
        e = b;
        parts++;
    }
    if (parts != (jwe ? 5u : 3u))
        return false;
    return set(m, GT_JWT, s, e, 1.0f, jwe ? "jwe" : "jwt");
}

/* SendGrid: "SG." + 16-32 + "." + 32-64 base64url characters. */
static bool sendgrid_at(const sscan *sc, size_t s, match *m)
{
    const char *p = sc->p;
    size_t len = sc->len, a = s + 3, b = b64url_run(p, len, a);
    if (b - a < 16 || b - a > 32 || b >= len || p[b] != '.')
        return false;
    size_t c = b + 1, d = b64url_run(p, len, c);
    if (d - c < 32 || d - c > 64)
        return false;
    return set(m, GT_API_KEY, s, d, 1.0f, "sendgrid_api_key");
}

/* ---- private key blocks ------------------------------------------------- */

#define PKEY_MAX (64 * 1024)

/* The next "-----END" at or after `from` (len when none). Remembers the
 * last answer so repeated BEGINs do not search the same bytes again. */
static size_t find_end(sscan *sc, size_t from)
{
    if (sc->end_from != SIZE_MAX && from >= sc->end_from && from <= sc->end_at)
        return sc->end_at;
    const char *q = from < sc->len ? memmem(sc->p + from, sc->len - from, "-----END", 8) : NULL;
    sc->end_from = from;
    sc->end_at = q ? (size_t)(q - sc->p) : sc->len;
    return sc->end_at;
}

/* A line break at i: "\n", "\r", or the JSON escapes "\\n", "\\r"; its
 * length, 0 if none. */
static size_t line_break(const char *p, size_t len, size_t i)
{
    if (i < len && (p[i] == '\n' || p[i] == '\r'))
        return 1;
    if (i + 1 < len && p[i] == '\\' && (p[i + 1] == 'n' || p[i + 1] == 'r'))
        return 2;
    return 0;
}

/*
 * "-----BEGIN <label>-----" where the label ends in PRIVATE KEY (RSA, EC,
 * DSA, OPENSSH, ENCRYPTED, PGP ... BLOCK) through the next "-----END
 * ...-----" within 64 KiB. Without an END (a truncated paste) the block
 * runs over the following lines made only of base64 characters (or
 * "Name: value" headers), and needs 16 bytes of them. Other complete PEM
 * blocks (CERTIFICATE, PUBLIC KEY ...) are not findings; *skip is set to
 * their end so their base64 lines are not taken for tokens.
 */
static bool pkey_at(sscan *sc, size_t s, match *m, size_t *skip)
{
    const char *p = sc->p;
    size_t len = sc->len;
    if (!at_cs(p, len, s, "-----BEGIN "))
        return false;
    size_t l = s + 11, i = l;
    while (i < len && i - l < 48 && ((p[i] >= 'A' && p[i] <= 'Z') || (p[i] >= '0' && p[i] <= '9') || p[i] == ' '))
        i++;
    size_t ll = i - l;
    bool label = (ll >= 11 && memcmp(p + i - 11, "PRIVATE KEY", 11) == 0) ||
                 (ll >= 17 && memcmp(p + i - 17, "PRIVATE KEY BLOCK", 17) == 0);
    if (!at_cs(p, len, i, "-----"))
        return false;
    size_t body = i + 5, end = find_end(sc, body);
    if (end < len && end - body <= PKEY_MAX) {
        size_t material = 0;
        for (size_t k = body; k < end; k++)
            material += (tc(p[k]) & T_B64) != 0;
        size_t j = end + 8;
        while (j < len && j - end < 80 && p[j] != '\n' && !at_cs(p, len, j, "-----"))
            j++;
        j = at_cs(p, len, j, "-----") ? j + 5 : end + 8;
        if (material < 16)
            return false; /* "BEGIN ... KEY----- and -----END ..." in prose */
        if (!label) { /* a certificate or public key: not a secret, and its
                       * base64 lines are not high-entropy tokens either */
            *skip = j;
            return false;
        }
        return set(m, GT_PRIVATE_KEY, s, j, 1.0f, "private_key_block");
    }
    if (!label)
        return false;
    size_t j = body, last = body, material = 0;
    while (j < len && j - body <= PKEY_MAX) {
        size_t br = line_break(p, len, j);
        if (!br)
            break;
        j += br;
        size_t a = j;
        while (j < len && j - a <= 256 && !line_break(p, len, j))
            j++;
        if (j == a)
            continue; /* blank line */
        bool b64 = true, colon = false;
        for (size_t k = a; k < j; k++) {
            b64 &= (tc(p[k]) & T_B64) || p[k] == '=';
            colon |= p[k] == ':';
        }
        if (b64)
            material += j - a;
        else if (!(colon && material == 0 && j - a <= 128)) /* "Proc-Type: 4,ENCRYPTED" */
            break;
        last = j;
    }
    if (material < 16)
        return false;
    return set(m, GT_PRIVATE_KEY, s, last, 0.9f, "private_key_truncated");
}

/* ---- connection strings ------------------------------------------------- */

/* Values that stand for a password in documentation, not a password:
 * empty, ${VAR}, <password>, {{x}}, %s, [x], all '*', 'x' or '.', and a
 * few words. */
static bool placeholder(const char *p, size_t a, size_t b)
{
    size_t n = b - a;
    if (n == 0)
        return true;
    char c = p[a];
    if (c == '$' || c == '<' || c == '{' || c == '%' || c == '[')
        return true;
    bool stars = true;
    for (size_t i = a; i < b; i++)
        stars &= p[i] == '*' || p[i] == 'x' || p[i] == 'X' || p[i] == '.';
    if (stars)
        return true;
    static const char *const words[] = { "password", "pass", "passwd", "pwd", "secret", "changeme",
                                         "your_password", "yourpassword", "mypassword", "example",
                                         "redacted", "hidden", "placeholder", "pw" };
    for (size_t k = 0; k < countof(words); k++)
        if (strlen(words[k]) == n && at_ci(p, b, a, words[k]))
            return true;
    return false;
}

static const struct {
    const char *scheme, *rule;
} url_schemes[] = {
    { "postgres", "postgres_url" },     { "postgresql", "postgres_url" }, { "mysql", "mysql_url" },
    { "mariadb", "mysql_url" },         { "mongodb", "mongodb_url" },     { "mongodb+srv", "mongodb_url" },
    { "redis", "redis_url" },           { "rediss", "redis_url" },        { "amqp", "amqp_url" },
    { "amqps", "amqp_url" },            { "mssql", "mssql_url" },         { "sqlserver", "mssql_url" },
    { "http", "url_credentials" },      { "https", "url_credentials" },   { "ftp", "url_credentials" },
    { "ftps", "url_credentials" },      { "sftp", "url_credentials" },    { "smtp", "url_credentials" },
    { "smtps", "url_credentials" },     { "ldap", "url_credentials" },    { "ldaps", "url_credentials" },
};

static bool url_stop(char c)
{
    return (unsigned char)c <= ' ' || c == '"' || c == '\'' || c == '`' || c == '<' || c == '>' ||
           c == '\\' || c == 0x7f;
}

/*
 * scheme://user:password@host... where the run [s, e) is one of the
 * schemes above and e starts "://". The userinfo ends at the last '@'
 * of the authority; the password must be non-empty and not a
 * placeholder. The finding runs from the scheme (or a "jdbc:" before it)
 * to the end of the URL, trailing punctuation given back.
 */
static bool url_cred_at(const sscan *sc, size_t s, size_t e, match *m)
{
    const char *p = sc->p;
    size_t len = sc->len;
    const char *rule = NULL;
    for (size_t k = 0; k < countof(url_schemes); k++)
        if (strlen(url_schemes[k].scheme) == e - s && at_ci(p, e, s, url_schemes[k].scheme))
            rule = url_schemes[k].rule;
    if (!rule)
        return false;
    size_t a = e + 3, ae = a, at = 0, colon = 0;
    while (ae < len && ae - a < 512 && !url_stop(p[ae]) && p[ae] != '/' && p[ae] != '?' && p[ae] != '#')
        ae++;
    for (size_t i = a; i < ae; i++)
        if (p[i] == '@')
            at = i;
    if (!at)
        return false;
    for (size_t i = a; i < at; i++)
        if (p[i] == ':') {
            colon = i;
            break;
        }
    if (!colon || colon + 1 >= at || at + 1 >= ae || placeholder(p, colon + 1, at))
        return false;
    size_t end = ae;
    while (end < len && end - s < 2048 && !url_stop(p[end]))
        end++;
    while (end > ae && strchr(".,;:!?)]}", p[end - 1]))
        end--;
    size_t start = s;
    if (s >= sc->mend + 5 && at_ci(p, len, s - 5, "jdbc:"))
        start = s - 5;
    return set(m, GT_CONN_STRING, start, end, 1.0f, rule);
}

/* A byte of a "k=v" value in a connection string. */
static bool kv_val(char c)
{
    return (unsigned char)c > ' ' && c != ';' && c != '=' && c != '"' && c != '\'' && c != '`' && c != '<' &&
           c != '>' && c != 0x7f;
}

static bool kv_key(char c) { return is_alnum(c) || c == ' ' || c == '_' || c == '.'; }

/* The value after '=' at v: plain (up to ';', a blank or a quote), 'quoted'
 * or {braced} (ODBC). Sets [*va, *vb) and returns the end of the value
 * text, or 0 when it is malformed. */
static size_t kv_value(const char *p, size_t len, size_t v, size_t *va, size_t *vb)
{
    if (v < len && (p[v] == '\'' || p[v] == '{')) {
        char close = p[v] == '{' ? '}' : '\'';
        size_t i = v + 1;
        while (i < len && i - v < 256 && p[i] != close && p[i] != '\n')
            i++;
        if (i >= len || p[i] != close)
            return 0;
        *va = v + 1;
        *vb = i;
        return i + 1;
    }
    size_t i = v;
    while (i < len && i - v < 256 && (kv_val(p[i]) || (p[i] == '=' && i > v)))
        i++;
    *va = v;
    *vb = i;
    return i;
}

/* A byte of one "k=v" segment read backwards: anything but the ';' that
 * separates segments, quotes, tabs, line breaks and control bytes. */
static bool kv_seg(char c)
{
    return (unsigned char)c >= ' ' && c != ';' && c != '"' && c != '\'' && c != '`' && c != '<' && c != '>' &&
           c != 0x7f;
}

/* The start of the key of the "k=v" segment that ends at the ';' at j, or
 * SIZE_MAX. The key is what comes before the segment's first '='. A
 * segment after another ';' must have a clean key ("Initial Catalog"); the
 * leftmost one keeps only the last word before its last '=' (with up to
 * two Capitalised words before it), so "my string is Server=x;...",
 * "CONN=Server=x;..." and "is Data Source=x;..." start at the key. */
static size_t kv_prev(const sscan *sc, size_t j)
{
    const char *p = sc->p;
    size_t g = j;
    while (g > sc->mend && j - g < 256 && kv_seg(p[g - 1]))
        g--;
    if (g > sc->mend && kv_seg(p[g - 1]))
        return SIZE_MAX; /* longer than a segment */
    bool inner = g > sc->mend && p[g - 1] == ';';
    size_t eq = g;
    while (eq < j && p[eq] != '=')
        eq++;
    if (eq == j)
        return SIZE_MAX;
    if (!inner) /* "ENV_NAME=Key=value": the key is before the last '=' */
        for (size_t k = eq + 1; k + 1 < j; k++)
            if (p[k] == '=' && p[k + 1] != '=' && p[k - 1] != '=')
                eq = k;
    size_t k = g, ke = eq;
    while (ke > k && p[ke - 1] == ' ')
        ke--;
    while (k < ke && p[k] == ' ')
        k++;
    if (k == ke)
        return SIZE_MAX;
    if (inner) {
        if (ke - k > 40)
            return SIZE_MAX;
        for (size_t i = k; i < ke; i++)
            if (!kv_key(p[i]))
                return SIZE_MAX;
    } else {
        size_t w = ke;
        while (w > k && kv_key(p[w - 1]) && p[w - 1] != ' ' && ke - w < 40)
            w--;
        /* Up to two more Capitalised words: "Data Source", "User Id". */
        for (int words = 1; words < 3 && w >= k + 2 && p[w - 1] == ' ' && w - 1 > k; words++) {
            size_t v = w - 1;
            while (v > k && kv_key(p[v - 1]) && p[v - 1] != ' ')
                v--;
            if (v == w - 1 || !(p[v] >= 'A' && p[v] <= 'Z'))
                break;
            w = v;
        }
        k = w;
    }
    return k < ke && is_alnum(p[k]) ? k : SIZE_MAX;
}

/*
 * A connection string around the key [s, e) followed by '=': Password or
 * Pwd (SQL Server, ODBC, Npgsql ...), AccountKey (Azure Storage),
 * SharedAccessKey (Service Bus, Event Hubs). The finding spans the whole
 * "k=v;k=v" chain it is part of; a Password needs at least one other
 * segment, the Azure keys a base64 value of 20+ characters.
 */
static bool kv_at(const sscan *sc, size_t s, size_t e, match *m)
{
    const char *p = sc->p;
    size_t len = sc->len, n = e - s;
    const char *rule = NULL;
    bool azure = false;
    if ((n == 8 && at_ci(p, len, s, "password")) || (n == 3 && at_ci(p, len, s, "pwd")))
        rule = "conn_string_password";
    else if (n == 10 && at_ci(p, len, s, "accountkey")) {
        rule = "azure_storage_key";
        azure = true;
    } else if (n == 15 && at_ci(p, len, s, "sharedaccesskey")) {
        rule = "azure_shared_access_key";
        azure = true;
    } else
        return false;
    size_t va, vb, end = kv_value(p, len, e + 1, &va, &vb);
    if (!end || placeholder(p, va, vb))
        return false;
    if (azure) {
        size_t b64 = 0;
        for (size_t i = va; i < vb; i++)
            b64 += (tc(p[i]) & T_B64) || p[i] == '=';
        if (b64 != vb - va || b64 < 20)
            return false;
    }
    int segs = 1;
    size_t start = s;
    while (segs < 32) {
        size_t j = start;
        while (j > sc->mend && p[j - 1] == ' ')
            j--;
        if (j <= sc->mend || p[j - 1] != ';')
            break;
        size_t k = kv_prev(sc, j - 1);
        if (k == SIZE_MAX)
            break;
        start = k;
        segs++;
    }
    while (segs < 64 && end < len && p[end] == ';') { /* the chain goes on */
        size_t k = end + 1;
        while (k < len && p[k] == ' ')
            k++;
        size_t ke = k;
        while (ke < len && ke - k < 40 && kv_key(p[ke]))
            ke++;
        if (ke == k || ke >= len || p[ke] != '=' || !is_alnum(p[k]))
            break;
        size_t a2, b2, e2 = kv_value(p, len, ke + 1, &a2, &b2);
        if (!e2)
            break;
        end = e2;
        segs++;
    }
    if (!azure && segs < 2)
        return false;
    return set(m, GT_CONN_STRING, start, end, 1.0f, rule);
}

/* ---- high entropy ------------------------------------------------------- */

/* Does the lower-cased window of up to 40 bytes before s contain one of
 * words? (Substrings: "apiKey", "x-api-key", "client_secret" all count.) */
static bool window_has(const char *p, size_t s, const char *const *words, size_t nw)
{
    char w[40];
    size_t lo = s > sizeof w ? s - sizeof w : 0, n = s - lo;
    for (size_t i = 0; i < n; i++)
        w[i] = lower(p[lo + i]);
    for (size_t k = 0; k < nw; k++)
        if (memmem(w, n, words[k], strlen(words[k])))
            return true;
    return false;
}

static const char *const secret_words[] = { "key", "token", "secret", "passw", "pwd", "auth", "bearer",
                                            "credential", "private", "session", "signature", "sig=" };
static const char *const hash_words[] = { "sha", "md5", "hash", "commit", "digest", "checksum", "etag",
                                          "fingerprint", "git", "integrity", "uuid", "guid", "trace",
                                          "request", "build", "blob", "tree" };
static const char *const aws_words[] = { "aws", "secret_access", "secretaccess", "secret access" };

/* Character classes for the segment count. */
static int seg_class(char c)
{
    unsigned t = tc(c);
    return (t & T_LOWER) ? 0 : (t & T_UPPER) ? 1 : (t & T_DIGIT) ? 2 : 3;
}

/*
 * The entropy rule for a run [s, e) of 20-256 token bytes that nothing
 * else claimed, or up to 1024 after a secret word (AWS session tokens);
 * docs/internals/guard-detectors.md shows the numbers behind it:
 *  - it has a digit and a letter;
 *  - it is not a path or a word list: two or more of / - _ with no piece
 *    of 16+ bytes between them ("usr/local/lib", "kube-dns-7d9f-x2k9p")
 *    is out;
 *  - not after a hash or id word ("sha", "commit", "uuid", "request" ...)
 *    unless a secret word ("token", "key" ...) is there too, and not a
 *    subresource-integrity "sha512-..." value;
 *  - hex (with dashes: UUIDs) only counts after a secret word, and from
 *    32 digits;
 *  - Shannon entropy >= min(4.7, 0.7 + 0.625 log2 n) bits per byte (near
 *    the 1st percentile of random base36 strings of that length), and at
 *    least 0.3 "segments" per byte, where a segment is a run of one class
 *    (lower, Upper-then-lower, digits): identifiers made of words have
 *    long segments, random strings short ones.
 * After a secret word both thresholds are relaxed (entropy - 0.3,
 * segments 0.2). Score 0.7, or 0.85 after a secret word.
 */
static bool entropy_at(const sscan *sc, size_t s, size_t e, match *m)
{
    const char *p = sc->p;
    size_t n = e - s;
    if (n < 20 || n > 1024)
        return false;
    unsigned bits = bits_of(p, s, e);
    if (!(bits & T_DIGIT) || !(bits & (T_UPPER | T_LOWER)))
        return false;
    if (at_ci(p, e, s, "sha1-") || at_ci(p, e, s, "sha256-") || at_ci(p, e, s, "sha384-") ||
        at_ci(p, e, s, "sha512-"))
        return false; /* subresource integrity */
    bool ctx = window_has(p, s, secret_words, countof(secret_words));
    if ((!ctx && window_has(p, s, hash_words, countof(hash_words))) || (n > 256 && !ctx))
        return false; /* long blobs (images, files) only after a secret word */
    bool hexish = true;
    size_t seps = 0, piece = 0, longest = 0;
    for (size_t i = s; i < e; i++) {
        char c = p[i];
        hexish &= (tc(c) & T_HEX) || c == '-';
        if (c == '/' || c == '-' || c == '_') {
            seps++;
            piece = 0;
        } else if (c != '=' && ++piece > longest)
            longest = piece;
    }
    if (hexish) {
        if (!ctx || n < 32)
            return false;
        return set(m, GT_HIGH_ENTROPY, s, e, 0.85f, "entropy_hex_context");
    }
    if (seps >= 2 && longest < 16)
        return false;
    unsigned counts[128] = { 0 };
    for (size_t i = s; i < e; i++)
        counts[(unsigned char)p[i] & 0x7f]++;
    double h = 0;
    for (int c = 0; c < 128; c++)
        if (counts[c])
            h -= (double)counts[c] / (double)n * log2((double)counts[c] / (double)n);
    double thr = 0.7 + 0.625 * log2((double)n);
    if (thr > 4.7)
        thr = 4.7;
    size_t segs = 0;
    int prev = 3;
    for (size_t i = s; i < e; i++) {
        int k = seg_class(p[i]);
        if (k != 3 && (prev == 3 || (k == 2) != (prev == 2) || (prev == 0 && k == 1)))
            segs++;
        prev = k;
    }
    double dens = (double)segs / (double)n;
    if (h < thr - (ctx ? 0.3 : 0.0) || dens < (ctx ? 0.2 : 0.3))
        return false;
    return set(m, GT_HIGH_ENTROPY, s, e, ctx ? 0.85f : 0.7f, ctx ? "entropy_context" : "entropy");
}

/* AWS secret access key: exactly 40 base64 characters with a digit and
 * both cases, within 512 bytes after an AWS key id or after an AWS word. */
static bool aws_secret_at(const sscan *sc, size_t s, size_t e, match *m)
{
    const char *p = sc->p;
    if (e - s != 40)
        return false;
    unsigned bits = 0;
    for (size_t i = s; i < e; i++) {
        if (!(tc(p[i]) & T_B64))
            return false;
        bits |= tc(p[i]);
    }
    if (!(bits & T_DIGIT) || !(bits & T_UPPER) || !(bits & T_LOWER))
        return false;
    bool near = sc->aws_end && s + 1 - sc->aws_end <= 512;
    if (!near && !window_has(p, s, aws_words, countof(aws_words)))
        return false;
    return set(m, GT_API_KEY, s, e, 0.95f, "aws_secret_access_key");
}

/* ---- the pass ----------------------------------------------------------- */

/* Everything a run [s, e) of token bytes can start. `assign` says the run
 * is followed by '=' and a value. *skip (0 on entry) is set past bytes to
 * ignore without a finding. */
static bool run_at(sscan *sc, size_t s, size_t e, bool assign, match *m, size_t *skip)
{
    const char *p = sc->p;
    size_t len = sc->len, n = e - s;
    if (assign && n >= 3 && n <= 15 && kv_at(sc, s, e, m))
        return true;
    if (e + 2 < len && p[e] == ':' && p[e + 1] == '/' && p[e + 2] == '/')
        return url_cred_at(sc, s, e, m);
    if (n < 10)
        return false;
    if (s >= sc->mend + 3 && p[s - 1] == '.' && p[s - 2] == 'G' && p[s - 3] == 'S' && sendgrid_at(sc, s - 3, m))
        return true; /* SG.<22>.<43>: found from its first long part */
    if (key_at(sc, s, m) || (p[s] == 'e' && jwt_at(sc, s, m)) || (p[s] == '-' && pkey_at(sc, s, m, skip)))
        return true;
    if (*skip || (p[s] == 'e' && p[s + 1] == 'y' && p[s + 2] == 'J'))
        return false; /* a PEM block to pass over; base64 JSON that is not a JWT */
    /* A key can also start after a '/' inside a run (a URL path). */
    for (size_t i = s + 1; i + 10 <= e; i++)
        if (p[i - 1] == '/' && key_at(sc, i, m))
            return true;
    if (n < 20)
        return false;
    return aws_secret_at(sc, s, e, m) || entropy_at(sc, s, e, m);
}

/* Examines the run [s, e) of token bytes (e is where the token bytes
 * stop) and reports what it is; the position to go on from. */
static size_t do_run(sscan *sc, size_t s, size_t e)
{
    const char *p = sc->p;
    size_t len = sc->len, resume = e;
    if (esc_at(p, s) && s + 1 < e)
        s++;
    bool assign = false;
    if (e < len && p[e] == '=') { /* "key=value", or base64 padding */
        size_t q = e;
        while (q < len && q - e < 2 && p[q] == '=')
            q++;
        bool more = q < len && ((tcls[(unsigned char)p[q]] & T_TOK) || p[q] == '=');
        if (q == e + 1 && q < len && p[q] != '=' && !is_space(p[q]))
            assign = true;
        else if (!more)
            e = resume = q;
    }
    match m;
    size_t skip = 0;
    if (!assign && e - s >= 10 && (e >= len || p[e] != ':') && !(s >= 3 && p[s - 1] == '.') &&
        !(bits_of(p, s, e) & ~(unsigned)(T_TOK | T_LOWER | T_HEX | T_B64URL | T_B64)))
        return resume; /* lower-case letters only: a word, whatever its length */
    bool found = run_at(sc, s, e, assign, &m, &skip);
    if (skip > resume)
        resume = sc->mend = skip;
    if (found) {
        if (strcmp(m.rule, "aws_access_key_id") == 0 || strcmp(m.rule, "aws_session_key_id") == 0)
            sc->aws_end = m.end + 1;
        hit(sc, &m);
        resume = m.end; /* past the match, or the rest of the run after a key that ended inside it */
    }
    return resume;
}

/*
 * The pass. Prose is mostly short words, so the loop keeps only the length
 * of the current token run, without a branch per word: it stops when a run
 * reaches 10 bytes (everything but a kv key or a URL scheme is at least
 * that long) or when a run is followed by '=' or ':' (kv keys such as
 * "Pwd", schemes such as "redis"). Then do_run looks at the whole run.
 * Eight bytes are classified per step with bit masks; only the steps where
 * one of those two things can happen go through the byte loop.
 */
err_code guard_scan_secrets(const char *text, size_t len, uint64_t mask, guard_findings *out)
{
    if (!out || (!text && len))
        return ERR_INVAL;
    if (len > UINT32_MAX)
        return ERR_TOOBIG;
    if (!(mask & GUARD_SECRETS_ALL))
        return ERR_OK;
    sscan sc = { .p = text, .len = len, .mask = mask, .out = out, .end_from = SIZE_MAX };
    const unsigned char *p = (const unsigned char *)text;
    size_t i = 0, run = 0;
    while (i < len) {
        /* Sixteen (or eight) bytes at a time: masks of token and '='/':'
         * bytes. Nothing happens in them unless a run reaches 10 or a
         * '='/':' follows a token byte; then the byte loop below takes
         * eight bytes. */
#if defined(__SSE2__)
        if (i + 16 <= len) {
            unsigned tb, sb;
            masks16(p + i, &tb, &sb);
            unsigned lead = (unsigned)__builtin_ctz(~tb);   /* token bytes at the start, 0-16 */
            unsigned r2 = tb & tb >> 1, r4 = r2 & r2 >> 2; /* bit j: bytes j.. j+1 (j+3) are tokens */
            unsigned r10 = r4 & r4 >> 4 & r2 >> 8;          /* ... j.. j+9: a run of 10 inside */
            if (run + lead < 10 && !r10 && !(sb & ((tb << 1) | (run != 0)))) {
                run = tb == 0xFFFF ? run + 16 : 15 - (31 - (unsigned)__builtin_clz(~tb & 0xFFFF));
                i += 16;
                continue;
            }
        }
#endif
        if (i + 8 <= len) {
            unsigned c0 = tcls[p[i]], c1 = tcls[p[i + 1]], c2 = tcls[p[i + 2]], c3 = tcls[p[i + 3]];
            unsigned c4 = tcls[p[i + 4]], c5 = tcls[p[i + 5]], c6 = tcls[p[i + 6]], c7 = tcls[p[i + 7]];
            unsigned tb = (c0 & 1) | (c1 & 1) << 1 | (c2 & 1) << 2 | (c3 & 1) << 3 | (c4 & 1) << 4 |
                          (c5 & 1) << 5 | (c6 & 1) << 6 | (c7 & 1) << 7;
            unsigned sb = ((c0 | c1 | c2 | c3 | c4 | c5 | c6 | c7) & T_STOP)
                              ? (c0 >> 8 & 1) | (c1 >> 8 & 1) << 1 | (c2 >> 8 & 1) << 2 | (c3 >> 8 & 1) << 3 |
                                    (c4 >> 8 & 1) << 4 | (c5 >> 8 & 1) << 5 | (c6 >> 8 & 1) << 6 | (c7 >> 8 & 1) << 7
                              : 0;
            unsigned lead = (unsigned)__builtin_ctz(~tb); /* token bytes at the start, 0-8 */
            if (run + lead < 10 && !(sb & ((tb << 1) | (run != 0)))) {
                run = tb == 0xFF ? run + 8 : 7 - (31 - (unsigned)__builtin_clz(~tb & 0xFF));
                i += 8;
                continue;
            }
        }
        size_t stop = i + 8 < len ? i + 8 : len;
        while (i < stop) {
            unsigned c = tcls[p[i]];
            size_t tok = c & T_TOK;
            if ((run >= 9 && tok) || (run && (c & T_STOP))) {
                size_t s = i - run, e = i;
                if (tok)
                    while (e < len && (tcls[p[e]] & T_TOK))
                        e++;
                size_t next = do_run(&sc, s, e);
                if (sc.err)
                    return sc.err;
                i = next > i ? next : i + 1;
                run = 0;
                break;
            }
            run = tok ? run + 1 : 0;
            i++;
        }
    }
    return ERR_OK;
}
