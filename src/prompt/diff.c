/*
 * diff.c - a unified line diff (diff -u) for prompt versions.
 *
 * How it works:
 *  1. Both texts are split into lines (each keeps its '\n'; a last line
 *     without one is a line too) and every distinct line gets a small
 *     integer id from one hash table, so the diff compares integers.
 *  2. Myers' O(ND) algorithm in its linear-space form: find the "middle
 *     snake" of the edit graph by searching from both corners at once,
 *     split there, and solve both halves (an explicit work stack instead of
 *     recursion, so a long diff cannot overflow a thread's stack). Each
 *     solved piece marks lines of a as deleted and lines of b as inserted.
 *     Common prefixes and suffixes are trimmed off every piece first. Runs
 *     of changes then slide down where the text allows, as diff(1)'s do.
 *  3. The marks become changes (runs of deleted and inserted lines between
 *     equal ones); changes closer than 2 * context lines share a hunk;
 *     hunks print as "@@ -l,n +l,n @@" with ' ', '-' and '+' lines.
 *
 * Bounds: more than DIFF_MAX_LINES lines on a side, or an edit distance
 * above DIFF_MAX_EDITS (noticed while searching, so the search stops
 * there), and the diff is "every line of a deleted, every line of b
 * inserted": correct, not minimal.
 */
#include <stdlib.h>
#include "prompt/diff.h"

typedef struct line {
    const char *p;
    size_t len;     /* with its '\n' if it has one */
} line;

typedef struct side {
    line *lines;
    int *id;
    bool *changed;
    int n;
} side;

static void side_free(side *s)
{
    free(s->lines);
    free(s->id);
    free(s->changed);
    memset(s, 0, sizeof *s);
}

static size_t count_lines(const char *t, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        if (t[i] == '\n')
            c++;
    return c + (n > 0 && t[n - 1] != '\n');
}

/* Splits t into lines; ERR_TOOBIG past DIFF_MAX_LINES. */
static err_code split(const char *t, size_t n, side *s)
{
    size_t c = count_lines(t, n);
    if (c > DIFF_MAX_LINES)
        return ERR_TOOBIG;
    s->n = (int)c;
    s->lines = calloc(c ? c : 1, sizeof *s->lines);
    s->id = calloc(c ? c : 1, sizeof *s->id);
    s->changed = calloc(c ? c : 1, sizeof *s->changed);
    if (!s->lines || !s->id || !s->changed)
        return ERR_NOMEM;
    size_t k = 0, start = 0;
    for (size_t i = 0; i < n; i++)
        if (t[i] == '\n') {
            s->lines[k++] = (line){ t + start, i + 1 - start };
            start = i + 1;
        }
    if (start < n)
        s->lines[k++] = (line){ t + start, n - start };
    return ERR_OK;
}

static uint64_t hash_line(const line *l)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < l->len; i++) {
        h ^= (unsigned char)l->p[i];
        h *= 1099511628211ull;
    }
    return h;
}

/* Gives equal lines of a and b the same id. */
static err_code intern(side *a, side *b)
{
    size_t total = (size_t)a->n + (size_t)b->n, cap = 16;
    while (cap < total * 2)
        cap <<= 1;
    typedef struct slot {
        const line *l;
        uint64_t h;
        int id;
    } slot;
    slot *tab = calloc(cap, sizeof *tab);
    if (!tab)
        return ERR_NOMEM;
    int next = 0;
    side *sides[2] = { a, b };
    for (int s = 0; s < 2; s++)
        for (int i = 0; i < sides[s]->n; i++) {
            const line *l = &sides[s]->lines[i];
            uint64_t h = hash_line(l);
            size_t k = (size_t)h & (cap - 1);
            while (tab[k].l && !(tab[k].h == h && tab[k].l->len == l->len && memcmp(tab[k].l->p, l->p, l->len) == 0))
                k = (k + 1) & (cap - 1);
            if (!tab[k].l)
                tab[k] = (slot){ l, h, next++ };
            sides[s]->id[i] = tab[k].id;
        }
    free(tab);
    return ERR_OK;
}

/* ---- Myers, linear space ---- */

typedef struct ctx {
    const int *a, *b;
    int *fd, *bd;       /* furthest x per diagonal, forward and backward; indexed by k + off */
    int off;
    int max_cost;       /* give up when a piece needs more rounds than this */
} ctx;

/* Finds a point (xmid, ymid) on an optimal path through the box
 * [xoff,xlim) x [yoff,ylim) (both sides nonempty, no common prefix or
 * suffix). false when the search passes max_cost rounds. */
static bool middle_snake(ctx *c, int xoff, int xlim, int yoff, int ylim, int *xmid, int *ymid)
{
    int *fd = c->fd + c->off, *bd = c->bd + c->off;
    const int *a = c->a, *b = c->b;
    const int dmin = xoff - ylim, dmax = xlim - yoff;
    const int fmid = xoff - yoff, bmid = xlim - ylim;
    const bool odd = ((fmid - bmid) & 1) != 0;
    int fmin = fmid, fmax = fmid, bmin = bmid, bmax = bmid;
    fd[fmid] = xoff;
    bd[bmid] = xlim;
    for (int cost = 1;; cost++) {
        if (cost > c->max_cost)
            return false;
        /* One more round forward: diagonals fmin..fmax. */
        if (fmin > dmin)
            fd[--fmin - 1] = -1;
        else
            ++fmin;
        if (fmax < dmax)
            fd[++fmax + 1] = -1;
        else
            --fmax;
        for (int d = fmax; d >= fmin; d -= 2) {
            int lo = fd[d - 1], hi = fd[d + 1];
            int x = lo >= hi ? lo + 1 : hi;
            int y = x - d;
            while (x < xlim && y < ylim && a[x] == b[y])
                x++, y++;
            fd[d] = x;
            if (odd && bmin <= d && d <= bmax && bd[d] <= x) {
                *xmid = x;
                *ymid = y;
                return true;
            }
        }
        /* And backward: diagonals bmin..bmax. */
        if (bmin > dmin)
            bd[--bmin - 1] = INT32_MAX;
        else
            ++bmin;
        if (bmax < dmax)
            bd[++bmax + 1] = INT32_MAX;
        else
            --bmax;
        for (int d = bmax; d >= bmin; d -= 2) {
            int lo = bd[d - 1], hi = bd[d + 1];
            int x = lo < hi ? lo : hi - 1;
            int y = x - d;
            while (xoff < x && yoff < y && a[x - 1] == b[y - 1])
                x--, y--;
            bd[d] = x;
            if (!odd && fmin <= d && d <= fmax && x <= fd[d]) {
                *xmid = x;
                *ymid = y;
                return true;
            }
        }
    }
}

typedef struct piece {
    int xoff, xlim, yoff, ylim;
} piece;

/* Marks the changed lines of a and b. ERR_TOOBIG when the edit distance
 * passes the bound, ERR_NOMEM. */
static err_code myers(side *sa, side *sb)
{
    err_code r = ERR_OK;
    int n = sa->n, m = sb->n;
    ctx c = { .a = sa->id, .b = sb->id, .off = m + 1, .max_cost = DIFF_MAX_EDITS / 2 + 1 };
    size_t diags = (size_t)n + (size_t)m + 3;
    c.fd = malloc(diags * sizeof *c.fd);
    c.bd = malloc(diags * sizeof *c.bd);
    size_t cap = 64, top = 0;
    piece *stack = malloc(cap * sizeof *stack);
    if (!c.fd || !c.bd || !stack) {
        r = ERR_NOMEM;
        goto out;
    }
    stack[top++] = (piece){ 0, n, 0, m };
    while (top > 0) {
        piece p = stack[--top];
        while (p.xoff < p.xlim && p.yoff < p.ylim && c.a[p.xoff] == c.b[p.yoff])
            p.xoff++, p.yoff++;
        while (p.xoff < p.xlim && p.yoff < p.ylim && c.a[p.xlim - 1] == c.b[p.ylim - 1])
            p.xlim--, p.ylim--;
        if (p.xoff == p.xlim) {
            for (int j = p.yoff; j < p.ylim; j++)
                sb->changed[j] = true;
            continue;
        }
        if (p.yoff == p.ylim) {
            for (int i = p.xoff; i < p.xlim; i++)
                sa->changed[i] = true;
            continue;
        }
        int xmid, ymid;
        if (!middle_snake(&c, p.xoff, p.xlim, p.yoff, p.ylim, &xmid, &ymid)) {
            r = ERR_TOOBIG;
            goto out;
        }
        if (top + 2 > cap) {
            piece *ns = realloc(stack, cap * 2 * sizeof *stack);
            if (!ns) {
                r = ERR_NOMEM;
                goto out;
            }
            stack = ns;
            cap *= 2;
        }
        stack[top++] = (piece){ xmid, p.xlim, ymid, p.ylim };
        stack[top++] = (piece){ p.xoff, xmid, p.yoff, ymid };
    }
out:
    free(c.fd);
    free(c.bd);
    free(stack);
    return r;
}

/* Slides every run of changed lines down as far as it goes (while the
 * line after the run equals its first line), merging runs that meet, as
 * diff(1) does: an added block then ends at a blank line or closing line
 * rather than starting with one. The unchanged lines keep the same text in
 * the same order, so the result is still a minimal diff. */
static void slide_down(side *s)
{
    int n = s->n;
    for (int i = 0; i < n;) {
        if (!s->changed[i]) {
            i++;
            continue;
        }
        int start = i, end = i;
        while (end < n && s->changed[end])
            end++;
        while (end < n && s->id[start] == s->id[end]) {
            s->changed[start++] = false;
            s->changed[end++] = true;
            while (end < n && s->changed[end])
                end++;
        }
        i = end;
    }
}

/* ---- output ---- */

typedef struct change {
    int a, na, b, nb;   /* a[a..a+na) replaced by b[b..b+nb) */
} change;

static err_code put_line(buf *out, char mark, const line *l)
{
    err_code r = buf_append(out, &mark, 1);
    if (!r)
        r = buf_append(out, l->p, l->len);
    if (!r && (l->len == 0 || l->p[l->len - 1] != '\n'))
        r = buf_append_str(out, "\n\\ No newline at end of file\n");
    return r;
}

static err_code put_range(buf *out, char sign, int start, int count)
{
    /* diff(1): an empty range names the line before it; ",1" is left out. */
    if (count == 1)
        return buf_printf(out, "%c%d", sign, start + 1);
    return buf_printf(out, "%c%d,%d", sign, count == 0 ? start : start + 1, count);
}

static err_code print_hunks(const side *sa, const side *sb, const change *ch, size_t nch, int context, buf *out)
{
    err_code r = ERR_OK;
    for (size_t h = 0; h < nch && !r;) {
        size_t last = h;
        while (last + 1 < nch && ch[last + 1].a - (ch[last].a + ch[last].na) <= 2 * context)
            last++;
        int a0 = ch[h].a - context < 0 ? 0 : ch[h].a - context;
        int b0 = ch[h].b - (ch[h].a - a0);
        int aend = ch[last].a + ch[last].na + context;
        if (aend > sa->n)
            aend = sa->n;
        int bend = ch[last].b + ch[last].nb + (aend - (ch[last].a + ch[last].na));
        r = buf_append_str(out, "@@ ");
        r = r ? r : put_range(out, '-', a0, aend - a0);
        r = r ? r : buf_append_str(out, " ");
        r = r ? r : put_range(out, '+', b0, bend - b0);
        r = r ? r : buf_append_str(out, " @@\n");
        int i = a0;
        for (size_t k = h; k <= last && !r; k++) {
            for (; i < ch[k].a && !r; i++)
                r = put_line(out, ' ', &sa->lines[i]);
            for (int x = 0; x < ch[k].na && !r; x++)
                r = put_line(out, '-', &sa->lines[ch[k].a + x]);
            for (int y = 0; y < ch[k].nb && !r; y++)
                r = put_line(out, '+', &sb->lines[ch[k].b + y]);
            i = ch[k].a + ch[k].na;
        }
        for (; i < aend && !r; i++)
            r = put_line(out, ' ', &sa->lines[i]);
        h = last + 1;
    }
    return r;
}

err_code diff_unified(const char *a, size_t alen, const char *b, size_t blen, const char *a_name,
                      const char *b_name, int context, buf *out, bool *changed)
{
    if (changed)
        *changed = false;
    if (alen == blen && (alen == 0 || memcmp(a, b, alen) == 0))
        return ERR_OK;
    if (changed)
        *changed = true;
    if (context < 0)
        context = 0;
    if (context > DIFF_MAX_LINES)
        context = DIFF_MAX_LINES;
    side sa = { 0 }, sb = { 0 };
    change *ch = NULL;
    err_code r;
    err_code ra = split(a, alen, &sa), rb = split(b, blen, &sb);
    if (ra == ERR_NOMEM || rb == ERR_NOMEM) {
        r = ERR_NOMEM;
        goto out;
    }
    bool everything = ra == ERR_TOOBIG || rb == ERR_TOOBIG;
    if (everything) {
        /* Too long to diff line by line: still list the lines. */
        side_free(&sa);
        side_free(&sb);
        size_t ca = count_lines(a, alen), cb = count_lines(b, blen);
        if (ca > (size_t)INT32_MAX / 2 || cb > (size_t)INT32_MAX / 2) {
            r = ERR_TOOBIG;
            goto out;
        }
        sa.n = sb.n = 0;
        sa.lines = calloc(ca ? ca : 1, sizeof *sa.lines);
        sb.lines = calloc(cb ? cb : 1, sizeof *sb.lines);
        if (!sa.lines || !sb.lines) {
            r = ERR_NOMEM;
            goto out;
        }
        size_t st = 0;
        for (size_t i = 0; i < alen; i++)
            if (a[i] == '\n') {
                sa.lines[sa.n++] = (line){ a + st, i + 1 - st };
                st = i + 1;
            }
        if (st < alen)
            sa.lines[sa.n++] = (line){ a + st, alen - st };
        st = 0;
        for (size_t i = 0; i < blen; i++)
            if (b[i] == '\n') {
                sb.lines[sb.n++] = (line){ b + st, i + 1 - st };
                st = i + 1;
            }
        if (st < blen)
            sb.lines[sb.n++] = (line){ b + st, blen - st };
    } else {
        if ((r = intern(&sa, &sb)))
            goto out;
        r = myers(&sa, &sb);
        if (r == ERR_NOMEM)
            goto out;
        everything = r == ERR_TOOBIG;
        if (!everything) {
            slide_down(&sa);
            slide_down(&sb);
        }
    }
    size_t nch = 0;
    if (everything) {
        ch = malloc(sizeof *ch);
        if (!ch) {
            r = ERR_NOMEM;
            goto out;
        }
        ch[nch++] = (change){ 0, sa.n, 0, sb.n };
    } else {
        ch = malloc(((size_t)sa.n + (size_t)sb.n + 1) * sizeof *ch);
        if (!ch) {
            r = ERR_NOMEM;
            goto out;
        }
        int i = 0, j = 0;
        while (i < sa.n || j < sb.n) {
            if (i < sa.n && j < sb.n && !sa.changed[i] && !sb.changed[j]) {
                i++, j++;
                continue;
            }
            change c = { i, 0, j, 0 };
            while (i < sa.n && sa.changed[i])
                i++;
            while (j < sb.n && sb.changed[j])
                j++;
            c.na = i - c.a;
            c.nb = j - c.b;
            if (c.na == 0 && c.nb == 0) {
                /* Unreachable when the marks are consistent; never loop. */
                i++, j++;
                continue;
            }
            ch[nch++] = c;
        }
    }
    size_t mark = out->len;
    r = buf_printf(out, "--- %s\n+++ %s\n", a_name ? a_name : "a", b_name ? b_name : "b");
    if (!r)
        r = print_hunks(&sa, &sb, ch, nch, context, out);
    if (r) {
        out->len = mark; /* no half diff */
        if (out->p)
            out->p[mark] = '\0';
    }
out:
    side_free(&sa);
    side_free(&sb);
    free(ch);
    return r;
}
