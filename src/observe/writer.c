/*
 * writer.c - the trace writer thread and its per-worker rings.
 *
 * Rings: one single-producer single-consumer ring per gateway worker. The
 * producer (the worker) owns `tail`, the consumer (the writer thread) owns
 * `head`; both are C11 atomics, published with release stores and read with
 * acquire loads, so a slot's pointer is visible before the index that
 * covers it. The producer keeps a private copy of head and reloads it only
 * when the ring looks full, so the common push touches no shared cache line
 * but its own ring. A full ring frees the record and bumps a counter; the
 * producer never takes a lock, never logs, never waits.
 *
 * Wake-ups: the writer sleeps in poll(2) on an eventfd for at most 20 ms.
 * A producer writes the eventfd only when the writer is asleep and its ring
 * has just gained another batch-worth of records, so a busy gateway makes
 * a system call once per batch, not per trace; a quiet one is picked up by
 * the 20 ms poll.
 *
 * Two threads, a pipeline: the encoder drains up to WRITER_BATCH records
 * across the rings (round robin) and renders their JSON (span attributes,
 * params: the costly part after SQLite itself) into a batch; it hands the
 * batch over through a one-slot mailbox (mutex + condition variables, never
 * touched by producers) and sleeps when the rings are empty. The store
 * thread writes each batch in one transaction, hands each record to the
 * exporter or frees it, and runs retention chunks when a purge is due. At
 * most one batch waits in the mailbox and one is being written, so memory
 * stays bounded; while the store thread is slow the rings fill and drop.
 * A store error drops that batch (counted, logged once per failure streak)
 * and the pipeline goes on. Queue drops are logged by the encoder at most
 * every 10 s. Stop sets a flag and wakes the encoder, which drains every
 * ring to empty, hands the last batch over and says it is done; the store
 * thread writes what is left and exits.
 *
 * The busy governor: SCHED_IDLE alone does not make the writer free. On a
 * saturated machine its "idle" time is the gaps between the data plane's
 * wake-ups, and filling them costs the data plane preemptions and cold
 * caches (measured: a writer storing 15,000 traces/s took a quarter of a
 * 2-core gateway's throughput). So every 100 ms the store thread reads
 * /proc/stat: when the CPU left over for it (idle time plus its own) is
 * under 30% of the machine, the machine is busy and the writer's two
 * threads may use only telemetry.busy_cpu of it (a token bucket of CPU
 * time; the store thread sleeps before a batch it has no tokens for, the
 * encoder waits at the mailbox, the rings fill and drop, counted). It
 * lets go when more than 40% is left over. The first batch after an idle
 * second starts limited, until a window has seen the machine: a load that
 * saturates it would otherwise meet a writer at full speed for a window or
 * two. At stop it never waits.
 */
#include <errno.h>
#include <poll.h>
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>
#include "core/log.h"
#include "observe/writer.h"

#define WRITER_BATCH 4096              /* traces per transaction at most */
#define WRITER_POLL_MS 20
#define WRITER_PURGE_CHUNK 5000        /* traces per retention transaction */
#define WRITER_PURGE_EVERY_NS (3600ull * 1000000000ull)
#define WRITER_LOG_EVERY_NS (10ull * 1000000000ull)
#define WRITER_FAIL_LOG_EVERY_NS (60ull * 1000000000ull)
#define GOV_WINDOW_NS 100000000ull          /* the governor looks at the machine this often */
#define GOV_BUSY_BELOW 0.30                 /* spare CPU share under which the machine is busy */
#define GOV_FREE_ABOVE 0.40                 /* ... and over which it is not any more */
#define GOV_IDLE_NS 1000000000ull           /* a batch after this long without one starts limited */
#define GOV_BURST_NS 100000000ull           /* tokens saved up at most: 100 ms of the budget */

typedef struct ring {
    _Alignas(64) _Atomic uint64_t tail; /* next slot the producer fills */
    uint64_t head_cache;                /* producer's last view of head */
    _Alignas(64) _Atomic uint64_t head; /* next slot the consumer takes */
    _Alignas(64) trace_rec **slots;
    size_t cap;
    size_t wake_every;                  /* wake a sleeping writer every this many pushes */
} ring;

/* Rendered records on their way from the encoder to the store thread. */
typedef struct wbatch {
    size_t n;
    trace_rec *recs[WRITER_BATCH];
    store_doc docs[WRITER_BATCH];       /* docs[i].json NULL: could not render */
} wbatch;

struct trace_writer {
    uint64_t last_trim_ns;           /* store thread only */
    bool busy_since_trim;
    ring *rings;
    int nrings;
    store *st;
    int efd;                            /* eventfd, -1: poll by sleeping */
    pthread_t enc_thread, store_thread;
    _Atomic bool stopping;
    _Atomic bool sleeping;              /* the encoder waits in poll */
    _Atomic uint64_t dropped_queue;     /* full ring, bad index, stopping */
    _Atomic uint64_t dropped_store;     /* not stored: store errors, unrenderable */
    _Atomic uint64_t written;
    _Atomic uint64_t purged;
    long retention_days;
    pthread_mutex_t exp_lock;           /* guards exp_submit/exp_ud (never taken by producers) */
    bool (*exp_submit)(void *ud, trace_rec *r);
    void *exp_ud;
    /* the mailbox between the two threads */
    pthread_mutex_t mb_lock;
    pthread_cond_t mb_full, mb_empty;
    wbatch *slot;                       /* handed over, not yet taken */
    wbatch *spare;                      /* a written batch for reuse */
    bool enc_done;                      /* the encoder has handed over its last */
    /* encoder state */
    uint64_t logged_drops;              /* dropped_queue when last logged */
    uint64_t logged_store_drops;        /* dropped_store when last logged */
    uint64_t last_log_ns;
    unsigned rr;                        /* round-robin start ring */
    trace_rec *drained[WRITER_BATCH];
    /* store-thread state */
    bool failing;                       /* the last batch failed */
    bool fail_logged;                   /* ... and that streak was logged */
    uint64_t last_fail_log_ns;
    uint64_t fail_drops;                /* traces dropped in this failure streak */
    uint64_t next_purge_ns;             /* 0: none scheduled */
    /* the busy governor (store thread) */
    double busy_cpu;                    /* CPU share of the machine while busy; 0: off */
    int ncpu;
    bool gov_ok;                        /* /proc/stat and thread clocks readable */
    bool gov_started;
    clockid_t enc_clock;                /* the encoder's CPU clock (set under mb_lock) */
    bool enc_clock_ok;
    _Atomic bool limited;               /* busy: the budget applies */
    uint64_t gov_win_ns;                /* current window's start (monotonic) */
    unsigned long long gov_total, gov_idle; /* /proc/stat jiffies at its start */
    uint64_t gov_cpu_ns;                /* the writer threads' CPU time at its start */
    uint64_t gov_last_ns;               /* last token refill */
    uint64_t gov_mark_ns;               /* the writer threads' CPU time when last charged */
    double gov_tokens_ns;               /* CPU time the writer may still use */
    uint64_t gov_logged_ns;
    uint64_t gov_batch_ns;              /* when the last batch came (0: none yet) */
    bool gov_waking;                    /* limited by gov_wake, not yet by a window */
};

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void wake(trace_writer *w)
{
    if (w->efd >= 0) {
        uint64_t one = 1;
        ssize_t n = write(w->efd, &one, sizeof one);
        UNUSED(n); /* EAGAIN means a wake-up is already pending */
    }
}

bool trace_writer_submit(trace_writer *w, int worker, trace_rec *rec)
{
    if (!rec)
        return false;
    if (!w || worker < 0 || worker >= w->nrings || atomic_load_explicit(&w->stopping, memory_order_acquire)) {
        trace_free(rec);
        if (w)
            atomic_fetch_add_explicit(&w->dropped_queue, 1, memory_order_relaxed);
        return false;
    }
    ring *r = &w->rings[worker];
    uint64_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);
    if (t - r->head_cache >= r->cap) {
        r->head_cache = atomic_load_explicit(&r->head, memory_order_acquire);
        if (t - r->head_cache >= r->cap) {
            trace_free(rec);
            atomic_fetch_add_explicit(&w->dropped_queue, 1, memory_order_relaxed);
            return false;
        }
    }
    r->slots[t % r->cap] = rec;
    atomic_store_explicit(&r->tail, t + 1, memory_order_release);
    if ((t + 1) % r->wake_every == 0 && atomic_load_explicit(&w->sleeping, memory_order_seq_cst))
        wake(w);
    return true;
}

/* Takes up to max records from the rings into w->drained, starting at a
 * rotating ring so no worker is favoured. */
static size_t drain(trace_writer *w, size_t max)
{
    size_t n = 0;
    for (int k = 0; k < w->nrings && n < max; k++) {
        ring *r = &w->rings[(w->rr + (unsigned)k) % (unsigned)w->nrings];
        uint64_t h = atomic_load_explicit(&r->head, memory_order_relaxed);
        uint64_t t = atomic_load_explicit(&r->tail, memory_order_acquire);
        while (h < t && n < max) {
            w->drained[n++] = r->slots[h % r->cap];
            h++;
        }
        atomic_store_explicit(&r->head, h, memory_order_release);
    }
    w->rr++;
    return n;
}

/* Store thread: writes one batch and passes the records on (exporter or
 * free). */
static void write_batch(trace_writer *w, wbatch *b)
{
    char msg[512];
    size_t bad = 0;
    for (size_t i = 0; i < b->n; i++)
        bad += b->docs[i].json == NULL;
    err_code e = store_put_docs(w->st, b->docs, b->n, msg, sizeof msg);
    if (e == ERR_OK) {
        atomic_fetch_add_explicit(&w->written, b->n - bad, memory_order_relaxed);
        atomic_fetch_add_explicit(&w->dropped_store, bad, memory_order_relaxed);
        if (w->failing && w->fail_logged)
            log_info("trace store writes recovered; %llu traces were dropped while it failed",
                     (unsigned long long)w->fail_drops);
        w->failing = false;
        w->fail_logged = false;
        w->fail_drops = 0;
    } else {
        atomic_fetch_add_explicit(&w->dropped_store, b->n, memory_order_relaxed);
        uint64_t now = mono_ns();
        /* Once per failure streak, and a flapping store at most once a minute. */
        if (!w->failing && (!w->last_fail_log_ns || now - w->last_fail_log_ns >= WRITER_FAIL_LOG_EVERY_NS)) {
            log_error("trace writer: %s; dropping traces until the store accepts writes again", msg);
            w->last_fail_log_ns = now;
            w->fail_logged = true;
        }
        w->failing = true;
        w->fail_drops += b->n;
    }
    pthread_mutex_lock(&w->exp_lock);
    bool (*submit)(void *, trace_rec *) = w->exp_submit;
    void *ud = w->exp_ud;
    pthread_mutex_unlock(&w->exp_lock);
    for (size_t i = 0; i < b->n; i++) {
        store_doc_clear(&b->docs[i]);
        if (submit)
            submit(ud, b->recs[i]);
        else
            trace_free(b->recs[i]);
        b->recs[i] = NULL;
    }
    b->n = 0;
}

/* One retention chunk if a purge is due; returns true while more remain. */
static bool purge_step(trace_writer *w)
{
    if (w->retention_days <= 0 || !w->next_purge_ns || mono_ns() < w->next_purge_ns)
        return false;
    uint64_t age = (uint64_t)w->retention_days * 86400ull * 1000000000ull;
    uint64_t now = trace_now_ns();
    uint64_t cutoff = now > age ? now - age : 0;
    size_t deleted = 0;
    char msg[512];
    if (store_purge(w->st, cutoff, WRITER_PURGE_CHUNK, &deleted, msg, sizeof msg) != ERR_OK) {
        log_warn("trace retention: %s; retrying in an hour", msg);
        w->next_purge_ns = mono_ns() + WRITER_PURGE_EVERY_NS;
        return false;
    }
    atomic_fetch_add_explicit(&w->purged, deleted, memory_order_relaxed);
    if (deleted < WRITER_PURGE_CHUNK) {
        w->next_purge_ns = mono_ns() + WRITER_PURGE_EVERY_NS;
        return false;
    }
    return true;
}

/* At most every 10 s (or when forced, at stop): how many traces were
 * dropped since the last such line, by cause. */
static void log_drops(trace_writer *w, bool force)
{
    uint64_t dq = atomic_load_explicit(&w->dropped_queue, memory_order_relaxed);
    uint64_t ds = atomic_load_explicit(&w->dropped_store, memory_order_relaxed);
    uint64_t now = mono_ns();
    if ((dq == w->logged_drops && ds == w->logged_store_drops) ||
        (!force && now - w->last_log_ns < WRITER_LOG_EVERY_NS))
        return;
    if (dq != w->logged_drops)
        log_warn("trace queue full: %llu traces dropped (%llu in all); raise telemetry.queue_size or check the store",
                 (unsigned long long)(dq - w->logged_drops), (unsigned long long)dq);
    if (ds != w->logged_store_drops)
        log_warn("trace store failing: %llu traces not stored (%llu in all)",
                 (unsigned long long)(ds - w->logged_store_drops), (unsigned long long)ds);
    w->logged_drops = dq;
    w->logged_store_drops = ds;
    w->last_log_ns = now;
}

static size_t depth(const trace_writer *w)
{
    size_t n = 0;
    for (int i = 0; i < w->nrings; i++) {
        const ring *r = &w->rings[i];
        uint64_t t = atomic_load_explicit(&r->tail, memory_order_acquire);
        uint64_t h = atomic_load_explicit(&r->head, memory_order_acquire);
        n += (size_t)(t - h);
    }
    return n;
}

/* Encoder: renders n drained records into a batch and hands it over,
 * waiting while the mailbox is full. */
static void hand_over(trace_writer *w, size_t n)
{
    pthread_mutex_lock(&w->mb_lock);
    wbatch *b = w->spare;
    w->spare = NULL;
    pthread_mutex_unlock(&w->mb_lock);
    if (!b)
        b = malloc(sizeof *b);
    if (!b) {
        for (size_t i = 0; i < n; i++)
            trace_free(w->drained[i]);
        atomic_fetch_add_explicit(&w->dropped_store, n, memory_order_relaxed);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        b->recs[i] = w->drained[i];
        if (store_doc_render(b->recs[i], &b->docs[i]) != ERR_OK)
            store_doc_clear(&b->docs[i]); /* json NULL: counted as not stored */
    }
    b->n = n;
    pthread_mutex_lock(&w->mb_lock);
    while (w->slot)
        pthread_cond_wait(&w->mb_empty, &w->mb_lock);
    w->slot = b;
    pthread_cond_signal(&w->mb_full);
    pthread_mutex_unlock(&w->mb_lock);
}

/* The writer's threads yield the CPU to the data plane: when the machine is
 * saturated the gateway's workers win, and the writer uses what is left (its
 * queue absorbs bursts; when even that is not enough, traces are dropped and
 * counted, never the requests slowed). */
static void lower_priority(void)
{
    struct sched_param sp = { .sched_priority = 0 };
    if (sched_setscheduler((pid_t)syscall(SYS_gettid), SCHED_IDLE, &sp) != 0 &&
        setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 19) != 0)
        log_debug("trace writer: cannot lower its priority");
}

static void *encoder_main(void *arg)
{
    lower_priority();
    trace_writer *w = arg;
    pthread_mutex_lock(&w->mb_lock);
    w->enc_clock_ok = pthread_getcpuclockid(pthread_self(), &w->enc_clock) == 0;
    pthread_mutex_unlock(&w->mb_lock);
    for (;;) {
        bool stop = atomic_load_explicit(&w->stopping, memory_order_acquire);
        size_t n = drain(w, WRITER_BATCH);
        if (n)
            hand_over(w, n);
        log_drops(w, false);
        if (n == WRITER_BATCH)
            continue;
        if (stop) {
            if (n == 0 && depth(w) == 0)
                break;
            continue;
        }
        atomic_store_explicit(&w->sleeping, true, memory_order_seq_cst);
        if (depth(w) == 0 && !atomic_load_explicit(&w->stopping, memory_order_seq_cst)) {
            if (w->efd >= 0) {
                struct pollfd p = { .fd = w->efd, .events = POLLIN };
                if (poll(&p, 1, WRITER_POLL_MS) > 0) {
                    uint64_t v;
                    ssize_t r = read(w->efd, &v, sizeof v);
                    UNUSED(r);
                }
            } else
                poll(NULL, 0, WRITER_POLL_MS);
        }
        atomic_store_explicit(&w->sleeping, false, memory_order_relaxed);
    }
    pthread_mutex_lock(&w->mb_lock);
    w->enc_done = true;
    pthread_cond_signal(&w->mb_full);
    pthread_mutex_unlock(&w->mb_lock);
    log_drops(w, true);
    return NULL;
}

static bool purge_due(const trace_writer *w)
{
    return w->retention_days > 0 && w->next_purge_ns && mono_ns() >= w->next_purge_ns;
}

/* The machine's CPU jiffies since boot: all, and idle (idle + iowait). */
static bool proc_stat(unsigned long long *total, unsigned long long *idle)
{
    FILE *f = fopen("/proc/stat", "re");
    if (!f)
        return false;
    unsigned long long v[10] = { 0 };
    int n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4],
                   &v[5], &v[6], &v[7], &v[8], &v[9]);
    fclose(f);
    if (n < 4)
        return false;
    *total = 0;
    for (int i = 0; i < 8; i++) /* guest time (8, 9) is already in user */
        *total += v[i];
    *idle = v[3] + v[4];
    return true;
}

/* CPU time of the writer's two threads, in ns. */
static bool writer_cpu_ns(trace_writer *w, uint64_t *ns)
{
    struct timespec a, b;
    if (!w->enc_clock_ok || clock_gettime(w->enc_clock, &a) != 0 ||
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &b) != 0)
        return false;
    *ns = (uint64_t)a.tv_sec * 1000000000ull + (uint64_t)a.tv_nsec + (uint64_t)b.tv_sec * 1000000000ull +
          (uint64_t)b.tv_nsec;
    return true;
}

static void gov_start(trace_writer *w)
{
    pthread_mutex_lock(&w->mb_lock); /* the encoder publishes its clock under it */
    bool enc = w->enc_clock_ok;
    pthread_mutex_unlock(&w->mb_lock);
    if (!enc)
        return; /* not running yet: the next call looks again */
    w->gov_started = true;
    w->gov_ok = w->busy_cpu > 0 && w->ncpu > 0 && proc_stat(&w->gov_total, &w->gov_idle) &&
                writer_cpu_ns(w, &w->gov_cpu_ns);
    w->gov_win_ns = w->gov_last_ns = mono_ns();
}

/* Charges the bucket with what the two threads used since the last mark
 * (while limited; otherwise only moves the mark). */
static void gov_charge(trace_writer *w)
{
    uint64_t cpu;
    if (!w->gov_ok || !writer_cpu_ns(w, &cpu))
        return;
    if (atomic_load_explicit(&w->limited, memory_order_relaxed))
        w->gov_tokens_ns -= (double)(cpu - w->gov_mark_ns);
    w->gov_mark_ns = cpu;
}

/* Looks at the machine once a window: the spare CPU share since the
 * window began (idle time plus the writer's own) decides busy or not.
 * False when the governor cannot work (it then lets go for good). */
static bool gov_window(trace_writer *w, uint64_t now)
{
    if (now - w->gov_win_ns < GOV_WINDOW_NS)
        return true;
    unsigned long long total, idle;
    uint64_t cpu;
    if (!proc_stat(&total, &idle) || !writer_cpu_ns(w, &cpu)) {
        w->gov_ok = false;
        atomic_store_explicit(&w->limited, false, memory_order_relaxed);
        return false;
    }
    double hz = (double)sysconf(_SC_CLK_TCK);
    double dt = (double)(total - w->gov_total);
    double spare = dt > 0 ? ((double)(idle - w->gov_idle) + (double)(cpu - w->gov_cpu_ns) * hz / 1e9) / dt : 1;
    bool was = atomic_load_explicit(&w->limited, memory_order_relaxed);
    bool busy = was ? spare < GOV_FREE_ABOVE : spare < GOV_BUSY_BELOW;
    if (busy && !was) {
        w->gov_tokens_ns = 0;
        w->gov_mark_ns = cpu;
    }
    if (busy && (!was || w->gov_waking) &&
        (!w->gov_logged_ns || now - w->gov_logged_ns >= WRITER_FAIL_LOG_EVERY_NS)) {
        log_info("the machine is busy (%.0f%% CPU to spare): the trace writer limits itself to %.0f%% of it "
                 "until that passes; traces beyond that are dropped and counted",
                 spare * 100, w->busy_cpu * 100);
        w->gov_logged_ns = now;
    }
    w->gov_waking = false;
    atomic_store_explicit(&w->limited, busy, memory_order_relaxed);
    w->gov_total = total, w->gov_idle = idle, w->gov_cpu_ns = cpu, w->gov_win_ns = now;
    return true;
}

/* A batch after an idle spell (GOV_IDLE_NS without one, or the first): the
 * load that brought it may be saturating the machine, and only a window
 * can tell. Unlimited, the writer spent that window storing at full speed
 * (6,000 traces in the first 350 ms of a saturated run, taken from the
 * data plane); so it starts limited, with a fresh window, and the first
 * window lets it go if the machine has CPU to spare. */
static void gov_wake(trace_writer *w, uint64_t now)
{
    bool idle_spell = !w->gov_batch_ns || now - w->gov_batch_ns >= GOV_IDLE_NS;
    w->gov_batch_ns = now;
    unsigned long long total, idle;
    uint64_t cpu;
    if (!idle_spell || atomic_load_explicit(&w->limited, memory_order_relaxed) || !proc_stat(&total, &idle) ||
        !writer_cpu_ns(w, &cpu))
        return;
    atomic_store_explicit(&w->limited, true, memory_order_relaxed);
    w->gov_waking = true;
    w->gov_tokens_ns = 0;
    w->gov_mark_ns = cpu;
    w->gov_total = total, w->gov_idle = idle, w->gov_cpu_ns = cpu, w->gov_win_ns = now;
}

/* Store thread, before each batch (batch true) and at least once a second:
 * refreshes the busy verdict once a window, then, while limited, charges
 * the bucket and sleeps until it is no longer empty, looking at the
 * machine again each window meanwhile. */
static void gov_wait(trace_writer *w, bool batch)
{
    if (!w->gov_started)
        gov_start(w);
    if (!w->gov_ok)
        return;
    uint64_t now = mono_ns();
    if (batch)
        gov_wake(w, now);
    if (!gov_window(w, now))
        return;
    double rate = w->busy_cpu * w->ncpu; /* CPU ns per wall ns */
    w->gov_tokens_ns += (double)(now - w->gov_last_ns) * rate;
    if (w->gov_tokens_ns > (double)GOV_BURST_NS * rate)
        w->gov_tokens_ns = (double)GOV_BURST_NS * rate;
    w->gov_last_ns = now;
    gov_charge(w);
    /* in steps of at most a window, so that stop never waits long and a
     * machine that is no longer busy is seen */
    while (atomic_load_explicit(&w->limited, memory_order_relaxed) && w->gov_tokens_ns < 0 &&
           !atomic_load_explicit(&w->stopping, memory_order_acquire)) {
        double wait_ns = MIN(-w->gov_tokens_ns / rate, (double)GOV_WINDOW_NS);
        struct timespec ts = { (time_t)(wait_ns / 1e9), (long)((uint64_t)wait_ns % 1000000000ull) };
        nanosleep(&ts, NULL);
        now = mono_ns();
        w->gov_tokens_ns += (double)(now - w->gov_last_ns) * rate;
        w->gov_last_ns = now;
        if (!gov_window(w, now))
            return;
    }
}

static void *store_main(void *arg)
{
    lower_priority();
    trace_writer *w = arg;
    for (;;) {
        pthread_mutex_lock(&w->mb_lock);
        if (!w->slot && !w->enc_done && !purge_due(w)) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            ts.tv_sec += 1; /* re-check the purge schedule and the governor every second */
            pthread_cond_timedwait(&w->mb_full, &w->mb_lock, &ts);
        }
        wbatch *b = w->slot;
        w->slot = NULL;
        bool done = w->enc_done;
        pthread_cond_signal(&w->mb_empty);
        pthread_mutex_unlock(&w->mb_lock);
        if (b) {
            gov_wait(w, true);
            write_batch(w, b);
            gov_charge(w);
            w->busy_since_trim = true;
            pthread_mutex_lock(&w->mb_lock);
            if (!w->spare) {
                w->spare = b;
                b = NULL;
            }
            pthread_mutex_unlock(&w->mb_lock);
            free(b);
        } else if (done) {
            break;
        } else {
            gov_wait(w, false); /* keeps the busy verdict fresh while there is nothing to write */
            /* idle (a second with no batch) after a busy spell: give the
             * freed records' memory back - glibc keeps it otherwise, and a
             * burst that filled the queue would leave the process large.
             * Here, not in the encoder: the records are freed by this
             * thread, after the encoder has gone idle. At most every 5 s. */
            uint64_t now = mono_ns();
            if (w->busy_since_trim && now - w->last_trim_ns > 5000000000ull) {
                malloc_trim(0);
                w->last_trim_ns = now;
                w->busy_since_trim = false;
            }
        }
        if (!done)
            purge_step(w);
    }
    return NULL;
}

static void destroy_sync(trace_writer *w)
{
    pthread_mutex_destroy(&w->exp_lock);
    pthread_mutex_destroy(&w->mb_lock);
    pthread_cond_destroy(&w->mb_full);
    pthread_cond_destroy(&w->mb_empty);
}

trace_writer *trace_writer_start(const char *store_url, const cfg_telemetry *t, int nworkers, char *err, size_t errcap)
{
    return trace_writer_start_opts(store_url, NULL, t, nworkers, err, errcap);
}

trace_writer *trace_writer_start_opts(const char *store_url, const store_opts *so, const cfg_telemetry *t,
                                      int nworkers, char *err, size_t errcap)
{
    if (nworkers < 1 || nworkers > 4096) {
        snprintf(err, errcap, "trace writer: %d workers is out of range (1..4096)", nworkers);
        return NULL;
    }
    size_t qsize = t && t->queue_size ? t->queue_size : 10000;
    size_t cap = qsize / (size_t)nworkers;
    if (cap < 1)
        cap = 1;
    if (cap > ((size_t)1 << 26)) {
        snprintf(err, errcap, "trace writer: telemetry.queue_size %zu is too large", qsize);
        return NULL;
    }
    trace_writer *w = calloc(1, sizeof *w);
    if (!w) {
        snprintf(err, errcap, "trace writer: out of memory");
        return NULL;
    }
    w->efd = -1;
    pthread_mutex_init(&w->exp_lock, NULL);
    pthread_mutex_init(&w->mb_lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->mb_full, &ca);
    pthread_condattr_destroy(&ca);
    pthread_cond_init(&w->mb_empty, NULL);
    w->retention_days = t ? t->retention_days : 0;
    w->busy_cpu = t ? t->busy_cpu : 0;
    long nc = sysconf(_SC_NPROCESSORS_ONLN);
    w->ncpu = nc > 0 ? (int)nc : 1;
    /* aligned: each ring's indices sit on their own cache lines */
    size_t rbytes = ((size_t)nworkers * sizeof *w->rings + 63) / 64 * 64;
    w->rings = aligned_alloc(64, rbytes);
    if (!w->rings)
        goto nomem;
    memset(w->rings, 0, rbytes);
    w->nrings = nworkers;
    for (int i = 0; i < nworkers; i++) {
        ring *r = &w->rings[i];
        r->cap = cap;
        r->wake_every = MAX((size_t)1, MIN(cap / 2, (size_t)WRITER_BATCH / 4));
        r->slots = calloc(cap, sizeof *r->slots);
        if (!r->slots)
            goto nomem;
    }
    if (store_open_opts(store_url, so, &w->st, err, errcap) != ERR_OK)
        goto fail;
    if (store_version(w->st) < 2) {
        snprintf(err, errcap, "the store %s is at schema version %d, too old for traces: run genaiops migrate",
                 store_path(w->st), store_version(w->st));
        goto fail;
    }
    w->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->retention_days > 0)
        w->next_purge_ns = mono_ns();
    if (pthread_create(&w->store_thread, NULL, store_main, w) != 0) {
        snprintf(err, errcap, "trace writer: cannot start its thread");
        goto fail;
    }
    if (pthread_create(&w->enc_thread, NULL, encoder_main, w) != 0) {
        snprintf(err, errcap, "trace writer: cannot start its thread");
        pthread_mutex_lock(&w->mb_lock);
        w->enc_done = true;
        pthread_cond_signal(&w->mb_full);
        pthread_mutex_unlock(&w->mb_lock);
        pthread_join(w->store_thread, NULL);
        goto fail;
    }
    pthread_setname_np(w->store_thread, "trace-store");
    pthread_setname_np(w->enc_thread, "trace-encode");
    return w;
nomem:
    snprintf(err, errcap, "trace writer: out of memory for %d rings of %zu", nworkers, cap);
fail:
    if (w->efd >= 0)
        close(w->efd);
    store_close(w->st);
    for (int i = 0; w->rings && i < w->nrings; i++)
        free(w->rings[i].slots);
    free(w->rings);
    destroy_sync(w);
    free(w);
    return NULL;
}

void trace_writer_set_exporter(trace_writer *w, bool (*submit)(void *ud, trace_rec *r), void *ud)
{
    pthread_mutex_lock(&w->exp_lock);
    w->exp_submit = submit;
    w->exp_ud = ud;
    pthread_mutex_unlock(&w->exp_lock);
}

void trace_writer_stop(trace_writer *w)
{
    if (!w)
        return;
    atomic_store_explicit(&w->stopping, true, memory_order_seq_cst);
    wake(w);
    pthread_join(w->enc_thread, NULL);
    pthread_join(w->store_thread, NULL);
    free(w->spare);
    /* Anything a late producer pushed after the final drain. */
    for (int i = 0; i < w->nrings; i++) {
        ring *r = &w->rings[i];
        uint64_t h = atomic_load_explicit(&r->head, memory_order_relaxed);
        uint64_t t = atomic_load_explicit(&r->tail, memory_order_acquire);
        for (; h < t; h++) {
            trace_free(r->slots[h % r->cap]);
            atomic_fetch_add_explicit(&w->dropped_queue, 1, memory_order_relaxed);
        }
        free(r->slots);
    }
    if (w->efd >= 0)
        close(w->efd);
    store_close(w->st);
    free(w->rings);
    destroy_sync(w);
    free(w);
}

uint64_t trace_writer_dropped(const trace_writer *w)
{
    return atomic_load_explicit(&w->dropped_queue, memory_order_relaxed) +
           atomic_load_explicit(&w->dropped_store, memory_order_relaxed);
}

uint64_t trace_writer_written(const trace_writer *w) { return atomic_load_explicit(&w->written, memory_order_relaxed); }
uint64_t trace_writer_purged(const trace_writer *w) { return atomic_load_explicit(&w->purged, memory_order_relaxed); }
size_t trace_writer_depth(const trace_writer *w) { return depth(w); }
bool trace_writer_limited(const trace_writer *w) { return atomic_load_explicit(&w->limited, memory_order_relaxed); }
