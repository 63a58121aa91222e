/* pacer.h - when may the next request of one budget key (region/model) go out?
 *
 * Pure: time comes in as an argument (monotonic ns shared by the machine's processes), the
 * state is a caller-owned struct of fixed-width integers that is valid when zeroed and can
 * live in shared memory (shm.c keeps one per key). No clock, no I/O, no lock, no global, no
 * float after qs_pace_rate_init.
 *
 * Model (SPEC section 5): DashScope counts requests and tokens per model over every 1 s and
 * every 60 s window. Here every window of that length plus QS_PACE_GUARD_NS (1 s + guard,
 * 60 s + guard: the spans below) holds at most floor(limit) requests (at least 1) at an
 * average of headroom x limit, and floor(headroom x limit) tokens, of the slots (RPS
 * defaulting to RPM/60 and TPS to TPM/60), so that every 1 s and 60 s window of arrivals at
 * the server does too when requests leave up to the guard after their slots; a request whose
 * tokens alone exceed a window's budget is let through when nothing else is in that window.
 * Two mechanisms, both needed:
 *   - GCRA (virtual scheduling, no burst tolerance) spaces the slots evenly: one request per
 *     <req_ns> = max over both windows of span / floor(limit) and span / (headroom x limit), and
 *     <tokens> x (W1 span / 1 s budget), or x (W60 span / 60 s budget) if more, of time per
 *     request on the token side, which the requests after a big one pay back. No burst at
 *     start-up or after idle.
 *   - GCRA alone lets a window hold its budget plus the request at its edge (a big request
 *     right after a run of small ones), so the tokens also go through an exact window check:
 *     cumulative token counts per 4 ms (1 s window) and 125 ms (60 s window) step, oldest
 *     step counted whole, i.e. conservative by at most one step.
 * A slot, once granted, is recorded: concurrent callers get successive slots and need not
 * check again; the caller sleeps until now + wait and sends.
 * SPDX-License-Identifier: MIT
 */
#ifndef QS_PACER_H
#define QS_PACER_H

#include <stdint.h>

#define QS_PACE_NS_1S 1000000000ull
#define QS_PACE_NS_60S (60 * QS_PACE_NS_1S)
/* The queue is at most this deep: a slot is never granted further ahead of now than this,
 * and a state holding a time further ahead than this plus three minutes is not believed (a
 * corrupt state or another clock) and is started afresh. */
#define QS_PACE_HORIZON_NS (2 * QS_PACE_NS_60S)
#define QS_PACE_SLOW_ONE 1024u /* slow == this: the configured spacing */
#define QS_PACE_SLOW_MAX 16u   /* at most 16 times the configured spacing */
#define QS_PACE_RECENT 256     /* the latest slots remembered, to read a throttle's window */

/* Token costs above this are counted as this (sums stay far from overflow). */
#define QS_PACE_MAX_TOKENS (1ull << 40)

/* Send jitter allowed for: a request leaves up to this long after its slot (thread wake-up,
 * the TLS write, loopback or network queueing), so a window counted at the server can hold
 * requests from slots that were up to this much further apart. Every window is therefore
 * kept over its length plus this guard: 1.024 s and 60.024 s, i.e. 97.7% of a 1 s limit. */
#define QS_PACE_GUARD_NS 24000000ull
#define QS_PACE_W1_SPAN_NS (QS_PACE_NS_1S + QS_PACE_GUARD_NS)
#define QS_PACE_W60_SPAN_NS (QS_PACE_NS_60S + QS_PACE_GUARD_NS)

#define QS_PACE_W1_STEP_NS 4000000ull    /* 1 s + guard: 256 steps of 4 ms */
#define QS_PACE_W1_SLOTS 264             /* >= 256 + 3 (see pacer.c win_earliest) */
#define QS_PACE_W60_STEP_NS 125000000ull /* 60 s + guard: 481 steps of 125 ms */
#define QS_PACE_W60_SLOTS 512            /* >= 481 + 3 */

/* Derived once from a limit; integers only. 0 in a field = not limited by it. The token
 * side tolerates one request interval (pacer.c, earliest). */
struct qs_pace_rate {
    uint64_t retired; /* 1: rpm, tpm and rps all 0, never paced (QS_PACE_NEVER) */
    uint64_t req_ns;  /* GCRA spacing of requests (see above) */
    uint64_t tok_1s;  /* tokens allowed in any window of QS_PACE_W1_SPAN_NS (1 s + guard) */
    uint64_t tok_60s; /* tokens allowed in any window of QS_PACE_W60_SPAN_NS (60 s + guard) */
};

/* Tokens recorded per step: cum[step % SLOTS] = tokens of all slots before the end of that
 * step. Valid when zeroed. */
struct qs_pace_win1 {
    uint64_t total;  /* tokens recorded so far */
    uint64_t newest; /* step of the latest recorded slot */
    uint64_t cum[QS_PACE_W1_SLOTS];
};
struct qs_pace_win60 {
    uint64_t total, newest;
    uint64_t cum[QS_PACE_W60_SLOTS];
};

/* One budget key. Fixed-width fields only, valid when zeroed (shared memory). */
struct qs_pace_state {
    uint64_t last_ns;     /* latest 'now' a decision saw (time never runs backwards here) */
    uint64_t last_slot;   /* latest slot granted; slots are granted in order */
    uint64_t req_tat;     /* request GCRA: earliest slot for the next request */
    uint64_t tok_tat;     /* token GCRA: end of the time the granted tokens occupy */
    uint64_t cooldown_ns; /* no slot before this: a 429 was seen */
    uint64_t slow;        /* request spacing x slow / QS_PACE_SLOW_ONE (0 = one): see qs_pace_throttled */
    uint64_t slowed_slot; /* last_slot when it was last widened */
    uint64_t nrecent;     /* slots granted so far; the latest QS_PACE_RECENT are in recent[] */
    uint64_t recent[QS_PACE_RECENT]; /* recent[i % QS_PACE_RECENT] = the i-th slot granted */
    struct qs_pace_win1 w1;
    struct qs_pace_win60 w60;
    /* the same rings counting granted requests (1 each) rather than tokens: never read by a
     * decision (the spacing bounds requests), kept so that `qshim status` can show them */
    struct qs_pace_win1 q1;
    struct qs_pace_win60 q60;
};

enum { QS_PACE_GO = 0, QS_PACE_NEVER = 1 };

/* Derives <r> from a limit: <rpm>/<tpm> per minute, <rps>/<tps> per second, 0 (or negative,
 * NaN) = not limited by that; <rps> defaults to <rpm>/60 and <tps> to <tpm>/60. <headroom>
 * in (0, 1] is the fraction of every limit used (anything else counts as 1). rpm, tpm and
 * rps all 0 make a retired model. */
void qs_pace_rate_init(struct qs_pace_rate *r, double rpm, double tpm, double rps, double tps,
                       double headroom);

/* Reserves the earliest slot t >= <now_ns> at which a request of <tokens> fits every window
 * and the evenly spaced schedule, records it, and sets *<wait_ns> = t - now_ns. Returns
 * QS_PACE_GO, or QS_PACE_NEVER (and *wait_ns = 0, nothing recorded) for a retired model. A
 * queue deeper than QS_PACE_HORIZON_NS is overload: that request gets the slot at the
 * horizon, and the windows are not guaranteed for it. */
int qs_pace_reserve(struct qs_pace_state *s, const struct qs_pace_rate *r, uint64_t now_ns, uint64_t tokens,
                    uint64_t *wait_ns);

/* Once usage is known: <token_delta> = actual - reserved tokens of the request granted
 * <slot_ns> (now + wait of its reserve). A refund gives the time back to the token GCRA, but
 * never before <now_ns> (so it cannot make a burst), and takes the tokens out of the windows
 * that held them; a charge adds both. */
void qs_pace_settle(struct qs_pace_state *s, const struct qs_pace_rate *r, uint64_t now_ns, uint64_t slot_ns,
                    int64_t token_delta);

/* A 429 was seen: no slot before <until_ns>. */
void qs_pace_cooldown(struct qs_pace_state *s, uint64_t until_ns);

/* The server throttled the paced request granted <slot_ns>. The configured limit can be
 * above the real one (another client of the account, a table out of date), so the request
 * spacing widens, in every process sharing the state, to what the throttle shows: the
 * server's 1 s window at that slot was full, and it held the k slots granted in the second
 * (plus the guard) before it, so k evenly spaced requests per window are what fits; the
 * spacing becomes span / k, and at least 1/8 wider than it was (the window may have held
 * other clients' requests too), or half as wide again when the window held none of ours or
 * is no longer remembered. A throttle of a slot granted before the last widening is the same
 * crossing (the requests already queued are throttled together) and counts once. At most
 * QS_PACE_SLOW_MAX times the configured spacing. The widening is held, not narrowed request
 * by request: a 1 s window is a cliff (at a spacing 2 % too narrow every third request of a
 * 2-per-second limit is throttled), so probing back down costs more than it gains. It is
 * forgotten a minute after the slot it was made at (the limit is counted per minute; a
 * process starting later must not inherit it), and the next throttle, if any, measures the
 * window again. No-op for a rate without request spacing. */
void qs_pace_throttled(struct qs_pace_state *s, const struct qs_pace_rate *r, uint64_t slot_ns);

/* The request spacing a reservation at <now_ns> would use (0 for a retired model): the
 * configured one, or as widened by throttles; *<until_ns> = when that widening is forgotten,
 * 0 if there is none (for `qshim status`). */
uint64_t qs_pace_spacing(const struct qs_pace_state *s, const struct qs_pace_rate *r, uint64_t now_ns,
                         uint64_t *until_ns);

/* The slot a 1-token request would get at <now_ns>, without reserving it (for retry backoff);
 * <now_ns> for a retired model. */
uint64_t qs_pace_next_free(const struct qs_pace_state *s, const struct qs_pace_rate *r, uint64_t now_ns);

#endif
