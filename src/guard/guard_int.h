/*
 * guard_int.h - the policy engine's internals, shared by guard.c (policies,
 * requests, scans, redaction, remote checks) and guard_stream.c (streams).
 * Nothing outside src/guard/guard*.c includes this; the contract is
 * guard.h.
 */
#ifndef GENAIOPS_GUARD_GUARD_INT_H
#define GENAIOPS_GUARD_GUARD_INT_H

#include "guard/content.h"
#include "guard/guard.h"
#include "guard/injection.h"

#define GUARD_MAX_HITS 4096          /* hits kept per request; the rest are counted */
#define GUARD_MAX_CAND 16384         /* findings of one scan handed to policies */
#define GUARD_MAX_PH 4096            /* placeholders whose originals are kept */
#define GUARD_MAX_PH_BYTES (8u << 20) /* bytes of originals kept */
#define GUARD_PH_MAX_NAME 40         /* "<" NAME ">": the longest NAME restored */
#define GUARD_BLOCK_LIST 8           /* findings named in a block message */
#define GUARD_DEFAULT_HOLDBACK 64
#define GUARD_MAX_HOLDBACK (1u << 20)

struct jschema;

typedef struct policy {
    guard_policy_info info;
    char label[GUARD_POLICY_LABEL_WIDTH]; /* info.name, cut and NUL-padded (guard_policy_label) */
    const cfg_guard_policy *cfg; /* borrowed: lists of models, deployments, keys */
    uint64_t pii_mask;           /* 0 without the pii detector */
    float inj_threshold;
    uint32_t leak_min_run;
    float leak_min_cov;
    guard_list *list;            /* deny and allow entries (deny detector) */
    guard_topics *topics;
    guard_size_limits size;
    guard_harm_policy harm;
    bool global;                 /* no models, deployments or keys listed */
} policy;

struct guard_engine {
    policy *v;
    size_t n;
    guard_set stage_set[GS__COUNT]; /* policies with that stage */
    guard_set det_set[GD__COUNT];   /* policies with that detector */
    guard_set monitor_set, restore_set, redact_set; /* redact_set: enforced redact policies */
    uint32_t serial;                /* unique in the process (guard_check_key) */
};

/* A placeholder: <TYPE_n> and the original bytes it stands for. */
typedef struct guard_ph {
    char *orig;
    size_t len;
    uint32_t hash;
    uint16_t n;
    uint8_t type;
    bool restorable; /* made by a policy with restore: true */
} guard_ph;

/* A finding of the current scan, for one policy and detector. */
typedef struct guard_cand {
    guard_finding f;
    uint16_t policy;
    uint8_t det;
} guard_cand;

/* A span to replace by a placeholder (redaction); hit = index into the
 * request's hits, UINT32_MAX for none. */
typedef struct guard_span {
    size_t s, e;
    guard_type t;
    bool restorable;
    uint32_t hit;
} guard_span;

struct guard_req {
    const guard_engine *g;
    guard_set set[GS__COUNT];
    guard_hit *hits;
    size_t nhits, caphits, dropped;
    guard_check *checks;
    size_t nchecks, capchecks;
    uint16_t *cidx;                  /* (stage, policy, detector) -> check index + 1 */
    size_t cidx_n;                   /* its entries */
    uint64_t tchain;                 /* the clock at the end of the last scan (GUARD_PART_CHAIN) */
    guard_action verdict[GS__COUNT];
    bool any[GS__COUNT];
    uint16_t blocker[GS__COUNT];     /* policy + 1 of the first enforced block */
    bool overflow[GS__COUNT];        /* blocked because redactions were lost */
    guard_set size_hit[GS__COUNT];   /* policies whose size hit is recorded */
    size_t chars[GS__COUNT];
    long tokens[GS__COUNT];
    uint64_t size_start[GS__COUNT], size_ns[GS__COUNT];
    char *system;
    size_t system_len;
    guard_leak_index *leak;          /* built on first use */
    struct jschema *schema;
    char *out_text;                  /* the answer, for schema */
    size_t out_len;
    uint16_t out_part;
    int32_t out_where;
    bool has_out, out_lost, schema_done;
    guard_ph *ph;
    size_t nph, capph, phbytes;
    uint32_t *phix;                  /* open addressing: ph index + 1 */
    size_t phixcap;
    uint16_t next_n[GT__COUNT];
    uint32_t *byn[GT__COUNT];        /* n - 1 -> ph index (UINT32_MAX: not kept) */
    size_t nbyn[GT__COUNT], capbyn[GT__COUNT];
    bool restorable_any;
    guard_findings tmp;              /* scratch for one detector run */
    guard_cand *cand;
    size_t ncand, capcand;
    guard_set cand_lost;           /* policies for which this scan lost findings */
    struct guard_req *next_free;     /* the thread's cache of finished requests */
};

uint64_t guard_now_ns(void);
/* Adds ns (and the error flag) to the (p, d, st) check. ERR_OK, ERR_NOMEM. */
err_code guard_check_run(guard_req *q, int p, guard_detector d, guard_stage st, uint64_t start_ns, uint64_t ns,
                         bool error);
/* Records a hit (or counts it when the list is full) and updates the
 * check, verdict and blocker. A redact hit that cannot be kept blocks the
 * stage unless the caller replaces it right away (redacted_now: streams).
 * Returns the hit's index or -1. */
int guard_hit_add(guard_req *q, guard_stage st, uint16_t part, int32_t where, int p, guard_detector d,
                  const guard_finding *f, guard_action action, bool redacted_now);
/* Runs the local detectors of the stage's selected policies over text:
 * q->cand[0..ncand) gets the findings per policy, the checks get the
 * times. ERR_OK, ERR_NOMEM, ERR_TOOBIG (text over 4 GiB). */
err_code guard_run_local(guard_req *q, guard_stage st, guard_role role, unsigned flags, const char *text, size_t len);
/* After a scan: lost findings of enforced redact policies block st. */
void guard_cand_lost_apply(guard_req *q, guard_stage st);
void guard_count_size(guard_req *q, guard_stage st, const char *text, size_t len);
err_code guard_keep_output(guard_req *q, uint16_t part, int32_t where, const char *text, size_t len, bool lost);
/* The placeholder number for (t, original), assigned on first use. */
uint16_t guard_ph_assign(guard_req *q, guard_type t, const char *orig, size_t n, bool restorable);
err_code guard_ph_write(buf *out, guard_type t, uint16_t n);
/* Appends base[from, to) to out with the spans sorted, merged (the first
 * one's type wins) and replaced by placeholders; the rest restored when
 * restore is set. Sets the hits' placeholder numbers; *count += spans. */
err_code guard_emit(guard_req *q, const char *base, size_t from, size_t to, guard_span *sp, size_t nsp, bool restore,
                    buf *out, size_t *count);

#endif
