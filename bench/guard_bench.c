/*
 * guard_bench.c - throughput of the built-in PII and secrets detectors
 * (src/guard/pii.c, src/guard/secrets.c) on one core. Not a test: it
 * prints figures.
 *
 *   guard_bench [--mib N] [--rounds R] [--chunk BYTES]
 *
 * It generates N MiB (default 64) of chat-like prose from a fixed seed:
 * sentences of common English words with commas, some capitalised, with
 * numbers (years, counts, prices, times, versions, percentages), now and
 * then an identifier, a file path, a markdown line or a JSON fragment,
 * and every 2-6 KiB one "hit" (an email, a phone number, a card number,
 * an IBAN, an IP address, a URL, an API key, a JWT, a connection string).
 * Then it scans the corpus with guard_scan_pii(GUARD_PII_ALL),
 * guard_scan_secrets(GUARD_SECRETS_ALL) and both, in messages of
 * --chunk bytes (default 4096, as a gateway sees them; 0 = the whole
 * corpus in one call), R rounds (default 5), and prints the best round
 * in MB/s (10^6 bytes) with the number of findings. The target
 * is at least 200 MB/s per core for each set with -O2.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "guard/detect.h"

static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;

/* xorshift64*: deterministic across runs and platforms. */
static uint64_t rng(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1DULL;
}

static unsigned pick(unsigned n) { return (unsigned)(rng() % n); }

static const char *const words[] = {
    "the", "of", "and", "to", "a", "in", "is", "it", "you", "that", "he", "was", "for", "on", "are", "with",
    "as", "I", "his", "they", "be", "at", "one", "have", "this", "from", "or", "had", "by", "hot", "word",
    "but", "what", "some", "we", "can", "out", "other", "were", "all", "there", "when", "up", "use", "your",
    "how", "said", "an", "each", "she", "which", "do", "their", "time", "if", "will", "way", "about", "many",
    "then", "them", "write", "would", "like", "so", "these", "her", "long", "make", "thing", "see", "him",
    "two", "has", "look", "more", "day", "could", "go", "come", "did", "number", "sound", "no", "most",
    "people", "my", "over", "know", "water", "than", "call", "first", "who", "may", "down", "side", "been",
    "now", "find", "model", "answer", "request", "customer", "order", "please", "thanks", "question",
    "account", "service", "problem", "update", "deployment", "latency", "prompt", "response", "context",
    "summary", "document", "meeting", "project", "report", "team", "release", "feature", "function",
    "example", "database", "configuration", "important", "different", "following", "information",
    "available", "understand", "everything", "application", "performance", "environment", "recommend",
};

static const char *const hits[] = {
    "jane.doe@example.com", "+44 20 7946 0958", "(415) 555-0132", "4111 1111 1111 1111",
    "GB82 WEST 1234 5698 7654 32", "192.168.10.24", "2001:db8::8a2e:370:7334", "https://example.com/a/b?c=d",
    "AKIAIOSFODNN7EXAMPLE", "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4zAb7cDe0fGh3iJk6",
    "ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789",
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
    "postgres://app:Zx9pQ2wE7rT@db.internal:5432/prod", "SSN 536-22-8716", "NHS number 943 476 5919",
    "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa", "00:1A:2B:3C:4D:5E", "token: q8Zr2LmX7vB4nK9sT1wE6yU3",
};

static const char *const extras[] = {
    "`user_account_settings`", "/usr/local/lib/libfoo.so.3", "\n\n## Next steps\n\n- ", "{\"ok\": true, \"n\": 3}",
    "(see above)", "e.g.", "i.e.", "v2.4.1", "10:30", "3.5%", "$1,299.00", "2024-05-06", "x86_64", "C++",
};

/* Appends a generated corpus of n bytes to out; the number of hits. */
static size_t generate(char *out, size_t n)
{
    size_t len = 0, nhits = 0, next_hit = 2048 + pick(4096);
    char tmp[256];
    while (len < n) {
        /* one sentence */
        unsigned nw = 6 + pick(20);
        for (unsigned w = 0; w < nw && len < n; w++) {
            const char *word = words[pick(countof(words))];
            int k;
            unsigned r = pick(100);
            if (r < 4)
                k = snprintf(tmp, sizeof tmp, "%u", pick(r < 2 ? 100 : 3000));
            else if (r < 5)
                k = snprintf(tmp, sizeof tmp, "%s", extras[pick(countof(extras))]);
            else if (w == 0)
                k = snprintf(tmp, sizeof tmp, "%c%s", word[0] >= 'a' ? word[0] - 'a' + 'A' : word[0], word + 1);
            else
                k = snprintf(tmp, sizeof tmp, "%s", word);
            const char *sep = w + 1 == nw ? (pick(8) == 0 ? "? " : ". ") : (pick(10) == 0 ? ", " : " ");
            size_t need = (size_t)k + strlen(sep);
            if (len + need > n)
                break;
            memcpy(out + len, tmp, (size_t)k);
            len += (size_t)k;
            memcpy(out + len, sep, strlen(sep));
            len += strlen(sep);
        }
        if (len >= next_hit) {
            int k = snprintf(tmp, sizeof tmp, "Here it is: %s. ", hits[pick(countof(hits))]);
            if (len + (size_t)k <= n) {
                memcpy(out + len, tmp, (size_t)k);
                len += (size_t)k;
                nhits++;
            }
            next_hit = len + 2048 + pick(4096);
        }
        if (pick(6) == 0 && len < n)
            out[len++] = '\n';
        if (n - len < 64) {
            memset(out + len, ' ', n - len);
            len = n;
        }
    }
    return nhits;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Scans the corpus in chunks with the sets in `which` (1 PII, 2 secrets);
 * the seconds taken, and the findings through *found. */
static double run(const char *text, size_t n, size_t chunk, int which, size_t *found)
{
    guard_findings f = { .max = 1 << 20 };
    size_t total = 0;
    double t0 = now_s();
    for (size_t off = 0; off < n;) {
        size_t m = chunk && n - off > chunk ? chunk : n - off;
        f.n = f.dropped = 0;
        if ((which & 1) && guard_scan_pii(text + off, m, GUARD_PII_ALL, &f) != ERR_OK)
            abort();
        if ((which & 2) && guard_scan_secrets(text + off, m, GUARD_SECRETS_ALL, &f) != ERR_OK)
            abort();
        total += f.n + f.dropped;
        off += m;
    }
    double dt = now_s() - t0;
    guard_findings_free(&f);
    *found = total;
    return dt;
}

static bool arg_size(const char *s, size_t *out)
{
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (!*s || *end || v > (1ULL << 40))
        return false;
    *out = (size_t)v;
    return true;
}

int main(int argc, char **argv)
{
    size_t mib = 64, rounds = 5, chunk = 4096;
    for (int i = 1; i < argc; i++) {
        bool ok = i + 1 < argc;
        if (ok && strcmp(argv[i], "--mib") == 0)
            ok = arg_size(argv[++i], &mib) && mib > 0 && mib <= 4096;
        else if (ok && strcmp(argv[i], "--rounds") == 0)
            ok = arg_size(argv[++i], &rounds) && rounds > 0;
        else if (ok && strcmp(argv[i], "--chunk") == 0)
            ok = arg_size(argv[++i], &chunk);
        else
            ok = false;
        if (!ok) {
            fprintf(stderr, "usage: guard_bench [--mib N] [--rounds R] [--chunk BYTES]\n");
            return 2;
        }
    }
    size_t n = mib << 20;
    char *text = malloc(n);
    if (!text) {
        fprintf(stderr, "guard_bench: out of memory\n");
        return 1;
    }
    size_t nhits = generate(text, n);
    printf("corpus: %zu MiB of prose, %zu hits (one per %zu bytes), chunks of %zu bytes\n", mib, nhits,
           nhits ? n / nhits : 0, chunk ? chunk : n);
    static const char *const names[] = { "", "pii (GUARD_PII_ALL)", "secrets (GUARD_SECRETS_ALL)", "pii + secrets" };
    for (int which = 1; which <= 3; which++) {
        double best = 1e30;
        size_t found = 0;
        for (size_t r = 0; r < rounds; r++) {
            double dt = run(text, n, chunk, which, &found);
            if (dt < best)
                best = dt;
        }
        printf("%-28s %8.1f MB/s  %7zu findings\n", names[which], (double)n / best / 1e6, found);
    }
    free(text);
    return 0;
}
