/*
 * tokens.c - the deterministic token rule of tokens.h.
 *
 * One iterator (piece_next) walks the text and yields piece boundaries; the
 * estimate counts them, the splitter records them, and the prefix helper
 * stops after n of them, so the three can never disagree. The walk is one
 * pass over the bytes with O(1) state, so hostile input (megabytes of
 * spaces, one endless word, invalid UTF-8) costs linear time and no memory.
 */
#include "providers/tokens.h"

#define WS_GLUE_MAX 8   /* whitespace bytes glued to the following piece */
#define WORD_PIECE 4    /* bytes per word piece, before UTF-8 rounding */

typedef struct piece_iter {
    const char *s;
    size_t len;
    size_t pos;
    size_t word_end;    /* end of the word being cut, when word_left > 0 */
    size_t word_left;   /* pieces still to cut from that word */
} piece_iter;

static bool is_ws(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static bool is_word(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80;
}

/* Cuts the next piece of the current word, starting at it->pos. */
static size_t word_piece(piece_iter *it)
{
    size_t rest = it->word_end - it->pos;
    size_t size = (rest + it->word_left - 1) / it->word_left;
    size_t end = it->pos + size;
    for (int k = 0; k < 3 && end < it->word_end && ((unsigned char)it->s[end] & 0xC0) == 0x80; k++)
        end++; /* finish a UTF-8 sequence (at most 3 more bytes, so pieces stay short) */
    it->word_left--;
    if (end >= it->word_end) {
        end = it->word_end;
        it->word_left = 0;
    }
    return end;
}

/* Yields the next piece as [*start, *end); false when the text is done. */
static bool piece_next(piece_iter *it, size_t *start, size_t *end)
{
    if (it->pos >= it->len)
        return false;
    *start = it->pos;
    if (it->word_left > 0) {
        it->pos = word_piece(it);
        *end = it->pos;
        return true;
    }
    size_t ws = 0;
    while (it->pos + ws < it->len && is_ws((unsigned char)it->s[it->pos + ws]))
        ws++;
    if (ws > WS_GLUE_MAX) {
        it->pos += WS_GLUE_MAX;
        *end = it->pos;
        return true;
    }
    it->pos += ws;
    if (it->pos >= it->len) {
        *end = it->pos;
        return true;
    }
    if (is_word((unsigned char)it->s[it->pos])) {
        size_t e = it->pos;
        while (e < it->len && is_word((unsigned char)it->s[e]))
            e++;
        it->word_end = e;
        it->word_left = (e - it->pos + WORD_PIECE - 1) / WORD_PIECE;
        it->pos = word_piece(it);
    } else {
        it->pos++;
    }
    *end = it->pos;
    return true;
}

long tokens_estimate(const char *text, size_t len)
{
    piece_iter it = { text, text ? len : 0, 0, 0, 0 };
    size_t a, b;
    long n = 0;
    while (piece_next(&it, &a, &b))
        n++;
    return n;
}

size_t tokens_split(const char *text, size_t len, sv *out, size_t max)
{
    if (max == 0 || !text)
        return 0;
    piece_iter it = { text, len, 0, 0, 0 };
    size_t a, b, n = 0;
    while (n < max && piece_next(&it, &a, &b))
        out[n++] = sv_make(text + a, b - a);
    if (n == max && n > 0)
        out[n - 1].len = len - (size_t)(out[n - 1].p - text);
    return n;
}

size_t tokens_prefix_len(const char *text, size_t len, long n)
{
    if (!text || n <= 0)
        return 0;
    piece_iter it = { text, len, 0, 0, 0 };
    size_t a, b = 0;
    for (long i = 0; i < n; i++)
        if (!piece_next(&it, &a, &b))
            return len;
    return b;
}
