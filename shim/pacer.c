/* pacer.c - GCRA spacing plus exact token windows for one budget key (see pacer.h).
 *
 * Why both: GCRA (the slot is the theoretical arrival time, TAT += cost x interval) keeps the
 * long-run rate and spaces slots evenly, but with varying costs a window can hold its budget
 * plus the request at its edge: 999 one-token requests spread over one window and then 500
 * tokens make 1,499 tokens in a window against a budget of 1,000. DashScope (and qshim-mock)
 * count exact sliding windows, so each token window is also checked against what it actually
 * holds.
 * SPDX-License-Identifier: MIT
 */
#include "pacer.h"

#include <string.h>

/* A process can be killed (SIGKILL, OOM) while it holds the lock around a decision in shared
 * memory (shm.c); the next process then continues from whatever stores were made. The stores
 * below are ordered so that every prefix of them leaves a state that over-counts, never one
 * that under-counts; this compiler barrier keeps them in that order (a killed process's
 * executed stores all reach memory, so the CPU's ordering does not matter). */
#define ORDERED() __asm__ __volatile__("" ::: "memory")

static uint64_t max_u64(uint64_t a, uint64_t b) { return a > b ? a : b; }
static uint64_t min_u64(uint64_t a, uint64_t b) { return a < b ? a : b; }
static uint64_t add_sat(uint64_t a, uint64_t b) { return a + b < a ? UINT64_MAX : a + b; }
static uint64_t sub_sat(uint64_t a, uint64_t b) { return a > b ? a - b : 0; }

/* ceil(a x b / d), saturating */
static uint64_t mul_div_ceil(uint64_t a, uint64_t b, uint64_t d)
{
    unsigned __int128 q = ((unsigned __int128)a * b + d - 1) / d;
    return q > UINT64_MAX ? UINT64_MAX : (uint64_t)q;
}

/* ===================== Rate ===================== */

static double positive(double x) { return x > 0 ? (x < 1e15 ? x : 1e15) : 0; } /* NaN -> 0 */

/* Units a window may hold: floor(x), at least 1. The epsilon keeps 0.95 x 600 = 569.99999...
 * from losing a unit. */
static uint64_t budget(double x)
{
    x += 1e-6;
    return x >= 1 ? (uint64_t)x : 1;
}

/* Requests at least this far apart keep every (t - span, t] window (span: the window's length
 * plus the guard) at floor(limit) (at least 1) and the average at headroom x limit:
 * max(span / floor(limit), span / (headroom x limit)). A window only holds whole requests, so
 * flooring headroom x limit instead would halve a 2-per-second budget at headroom 0.95
 * (1.9 -> 1) for nothing. */
static uint64_t req_spacing(uint64_t span, double limit, double headroom)
{
    uint64_t n = budget(limit), whole = (span + n - 1) / n;
    if (headroom >= 1)
        return whole; /* (and no float rounding to add a nanosecond to it) */
    double avg = (double)span / (headroom * limit);
    uint64_t a = avg < 1e18 ? (uint64_t)avg : UINT64_MAX;
    return max_u64(whole, a < avg ? a + 1 : a);
}

void qs_pace_rate_init(struct qs_pace_rate *r, double rpm, double tpm, double rps, double tps,
                       double headroom)
{
    *r = (struct qs_pace_rate){0};
    rpm = positive(rpm);
    tpm = positive(tpm);
    rps = positive(rps);
    tps = positive(tps);
    if (!(headroom > 0 && headroom <= 1))
        headroom = 1;
    if (rpm == 0 && tpm == 0 && rps == 0) {
        r->retired = 1;
        return;
    }
    double rps_eff = rps > 0 ? rps : rpm / 60;
    double tps_eff = tps > 0 ? tps : tpm / 60;
    if (rps_eff > 0)
        r->req_ns = req_spacing(QS_PACE_W1_SPAN_NS, rps_eff, headroom);
    if (rpm > 0)
        r->req_ns = max_u64(r->req_ns, req_spacing(QS_PACE_W60_SPAN_NS, rpm, headroom));
    if (tps_eff > 0)
        r->tok_1s = budget(headroom * tps_eff);
    if (tpm > 0)
        r->tok_60s = budget(headroom * tpm);
}

/* Time <tokens> occupy on the token GCRA: at the 1 s budget's pace over the W1 span or the
 * 60 s budget's over the W60 span, whichever is slower, and never more than a minute (a
 * request bigger than a minute's budget delays the ones after it by a minute, not by hours;
 * the 60 s window still counts all of it over its W60 span). */
static uint64_t tok_charge(const struct qs_pace_rate *r, uint64_t tokens)
{
    uint64_t d = 0;
    if (r->tok_1s)
        d = mul_div_ceil(tokens, QS_PACE_W1_SPAN_NS, r->tok_1s);
    if (r->tok_60s)
        d = max_u64(d, mul_div_ceil(tokens, QS_PACE_W60_SPAN_NS, r->tok_60s));
    return min_u64(d, QS_PACE_NS_60S);
}

/* ===================== Token windows ===================== */

/* A window's ring: cum[j % slots] = tokens of the slots recorded before the end of step j
 * (step j = [j x step, (j + 1) x step)), for the <slots> steps up to <newest>. */
struct win {
    uint64_t *total, *newest, *cum;
    uint64_t slots, step, span;
};

static struct win win1(const struct qs_pace_state *s)
{
    struct qs_pace_win1 *w = (struct qs_pace_win1 *)&s->w1; /* written only through reserve/settle */
    return (struct win){&w->total,        &w->newest,         w->cum,
                        QS_PACE_W1_SLOTS, QS_PACE_W1_STEP_NS, QS_PACE_W1_SPAN_NS};
}

static struct win win60(const struct qs_pace_state *s)
{
    struct qs_pace_win60 *w = (struct qs_pace_win60 *)&s->w60;
    return (struct win){&w->total,         &w->newest,          w->cum,
                        QS_PACE_W60_SLOTS, QS_PACE_W60_STEP_NS, QS_PACE_W60_SPAN_NS};
}

static uint64_t win_oldest(const struct win *w)
{
    return *w->newest + 1 > w->slots ? *w->newest + 1 - w->slots : 0;
}

/* Tokens recorded before the end of step <j>. Steps older than the ring are never asked for
 * in a consistent state (see win_earliest); 0 for them counts everything, the safe side. */
static uint64_t win_before(const struct win *w, uint64_t j)
{
    if (j >= *w->newest)
        return *w->total;
    if (j < win_oldest(w))
        return 0;
    return w->cum[j % w->slots];
}

/* The earliest t >= <t> (and at most <limit>) at which the window (t - span, t] holds at most
 * <budget> - <tokens>, or nothing at all when <tokens> alone exceed <budget>.
 *
 * The window's content at t is counted as total - before(j) with j = (t - span) / step - 1,
 * the last step that ends at or before t - span: exact except that the step holding t - span
 * counts whole. Slots are granted in order, so every recorded slot is at or before t and
 * total counts nothing after the window. j only grows with t, so the first t of each next
 * step is the next candidate; once j reaches the newest step the window is empty, so this
 * ends within <slots> rounds. t >= last slot keeps j within the ring: slots >= span / step
 * + 3. */
static uint64_t win_earliest(const struct win *w, uint64_t t, uint64_t tokens, uint64_t budget,
                             uint64_t limit)
{
    uint64_t room = tokens > budget ? 0 : budget - tokens;
    while (t < limit) {
        uint64_t in, next;
        if (t < w->span + w->step) { /* the window reaches back to time 0 */
            in = *w->total;
            next = 0;
        } else {
            uint64_t j = (t - w->span) / w->step - 1;
            in = sub_sat(*w->total, win_before(w, j));
            next = max_u64(j + 1, win_oldest(w));
        }
        if (in <= room)
            return t;
        t = w->span + (next + 1) * w->step; /* the first t whose j is <next> */
    }
    return limit;
}

/* Records <delta> tokens at slot <t> (t's step is at most the newest one unless it is a new
 * slot). A slot older than the ring changes no window that will be looked at again. */
static void win_add(const struct win *w, uint64_t t, int64_t delta)
{
    uint64_t b = t / w->step;
    if (b > *w->newest) {
        uint64_t k = b - *w->newest > w->slots ? b - w->slots + 1 : *w->newest + 1;
        for (; k <= b; k++)
            w->cum[k % w->slots] = *w->total;
        ORDERED();
        *w->newest = b;
        ORDERED();
    }
    if (b < win_oldest(w) || delta == 0)
        return;
    uint64_t d = delta < 0 ? (uint64_t)0 - (uint64_t)delta : (uint64_t)delta;
    /* total - cum[j] is what a window starting after step j holds: raise total first and
     * lower it last, so that a half-done update over-counts. */
    if (delta > 0) {
        *w->total += d;
        ORDERED();
        for (uint64_t k = b; k <= *w->newest; k++)
            w->cum[k % w->slots] += d;
    } else {
        for (uint64_t k = b; k <= *w->newest; k++)
            w->cum[k % w->slots] = sub_sat(w->cum[k % w->slots], d);
        ORDERED();
        *w->total = sub_sat(*w->total, d);
    }
}

/* ===================== Decisions ===================== */

/* Can this state have come from decisions on this clock (at rate <r>)? Everything it holds
 * is at most the horizon plus the slack below ahead of the latest decision (a slot at the
 * horizon, then a request interval, widened or not (spacing), the token tolerance of one
 * configured interval, and a token charge of at most a minute), and that decision was not
 * ahead of now by more either. A zeroed state qualifies. The interval is the rate's own: a
 * limit under 1 RPM spaces requests more than a minute apart. */
static int believable(const struct qs_pace_state *s, const struct qs_pace_rate *r, uint64_t now)
{
    uint64_t interval = max_u64(r->req_ns, QS_PACE_W60_SPAN_NS);
    uint64_t slack = add_sat(add_sat(QS_PACE_HORIZON_NS, QS_PACE_NS_60S), add_sat(interval, interval));
    uint64_t lim = add_sat(now, slack);
    if (s->last_ns > lim)
        return 0;
    lim = add_sat(max_u64(now, s->last_ns), slack);
    return s->last_slot <= lim && s->req_tat <= lim && s->tok_tat <= lim &&
           s->w1.newest <= lim / QS_PACE_W1_STEP_NS && s->w60.newest <= lim / QS_PACE_W60_STEP_NS;
}

/* The time a decision uses: <now>, or the latest time a decision saw if that is later (the
 * clock is shared, but another process may have read it after us and decided first, or this
 * caller stalled between reading it and getting here). A state that cannot have come from
 * this clock (corrupt, or written under another clock) starts afresh: slots are then evenly
 * spaced from now again, which is all that can be done without knowing what it meant. */
static uint64_t begin(struct qs_pace_state *s, const struct qs_pace_rate *r, uint64_t now)
{
    if (!believable(s, r, now))
        memset(s, 0, sizeof *s);
    uint64_t t0 = max_u64(now, s->last_ns);
    s->cooldown_ns = min_u64(s->cooldown_ns, add_sat(t0, QS_PACE_HORIZON_NS));
    return t0;
}

/* A widening is forgotten a minute after the slot it was made at: the server's windows have
 * turned over since, and a process starting later must not inherit a slowdown learnt long ago. */
static uint64_t widened_until(const struct qs_pace_state *s)
{
    return add_sat(s->slowed_slot, QS_PACE_NS_60S);
}

/* The request spacing now: the configured one, widened after throttles (qs_pace_throttled),
 * but not past one request per minute and the guard (nor the configured spacing, if that is
 * longer): a widening is held only a minute anyway, and a model of 2 RPM widened 16 times
 * would otherwise space its requests eight minutes apart. */
static uint64_t spacing(const struct qs_pace_state *s, const struct qs_pace_rate *r)
{
    if (s->slow <= QS_PACE_SLOW_ONE)
        return r->req_ns;
    uint64_t w = mul_div_ceil(r->req_ns, min_u64(s->slow, (uint64_t)QS_PACE_SLOW_MAX * QS_PACE_SLOW_ONE),
                              QS_PACE_SLOW_ONE);
    return max_u64(r->req_ns, min_u64(w, QS_PACE_W60_SPAN_NS));
}

/* The earliest slot for <tokens> at <t0> (a believable state, t0 >= last_ns).
 *
 * The token GCRA tolerates one request slot (req_ns): when requests and tokens both bind, a
 * request cheaper than the average leaves token time unused that the next, dearer one may
 * take, instead of both limits idling each other (random costs around the average: 80 % of
 * either limit without it, 90 % with it). Requests themselves stay evenly spaced, and the
 * windows bound what any second or minute (plus the guard) holds either way. */
static uint64_t earliest(const struct qs_pace_state *s, const struct qs_pace_rate *r, uint64_t t0,
                         uint64_t tokens)
{
    uint64_t limit = add_sat(t0, QS_PACE_HORIZON_NS);
    uint64_t t = max_u64(max_u64(t0, s->last_slot), s->cooldown_ns);
    if (r->req_ns)
        t = max_u64(t, s->req_tat);
    if (r->tok_1s || r->tok_60s)
        t = max_u64(t, sub_sat(s->tok_tat, r->req_ns));
    t = min_u64(t, limit);
    if (r->tok_1s) {
        struct win w = win1(s);
        t = win_earliest(&w, t, tokens, r->tok_1s, limit);
    }
    /* Window contents only shrink as t grows, so the 1 s window still fits at this later t. */
    if (r->tok_60s) {
        struct win w = win60(s);
        t = win_earliest(&w, t, tokens, r->tok_60s, limit);
    }
    return t;
}

int qs_pace_reserve(struct qs_pace_state *s, const struct qs_pace_rate *r, uint64_t now_ns, uint64_t tokens,
                    uint64_t *wait_ns)
{
    *wait_ns = 0;
    if (r->retired)
        return QS_PACE_NEVER;
    tokens = min_u64(tokens, QS_PACE_MAX_TOKENS);
    uint64_t t0 = begin(s, r, now_ns);
    if (s->slow > QS_PACE_SLOW_ONE && t0 > widened_until(s))
        s->slow = QS_PACE_SLOW_ONE;
    uint64_t t = earliest(s, r, t0, tokens);
    /* The slot is taken before the tokens are recorded: a process killed in between never
     * sent anything, so a slot taken for nothing is the harmless half. The windows record
     * tokens even when this rate has no token limit, so that processes with different limits
     * for one key still see each other's tokens. */
    s->last_ns = t0;
    s->last_slot = t;
    /* t is at or past this rate's TATs (less the token tolerance) unless the horizon capped
     * it; then the queue restarts from t, so that the state stays within the horizon */
    s->req_tat = r->req_ns ? t + spacing(s, r) : max_u64(s->req_tat, t);
    s->tok_tat = r->tok_1s || r->tok_60s
                     ? max_u64(min_u64(s->tok_tat, t + r->req_ns), t) + tok_charge(r, tokens)
                     : max_u64(s->tok_tat, t);
    ORDERED();
    struct win w = win1(s);
    win_add(&w, t, (int64_t)tokens);
    w = win60(s);
    win_add(&w, t, (int64_t)tokens);
    struct win q = {&s->q1.total,     &s->q1.newest,      s->q1.cum,
                    QS_PACE_W1_SLOTS, QS_PACE_W1_STEP_NS, QS_PACE_W1_SPAN_NS};
    win_add(&q, t, 1);
    q = (struct win){&s->q60.total,     &s->q60.newest,      s->q60.cum,
                     QS_PACE_W60_SLOTS, QS_PACE_W60_STEP_NS, QS_PACE_W60_SPAN_NS};
    win_add(&q, t, 1);
    s->recent[s->nrecent % QS_PACE_RECENT] = t;
    s->nrecent++;
    *wait_ns = t - now_ns;
    return QS_PACE_GO;
}

void qs_pace_settle(struct qs_pace_state *s, const struct qs_pace_rate *r, uint64_t now_ns, uint64_t slot_ns,
                    int64_t token_delta)
{
    if (r->retired || token_delta == 0)
        return;
    uint64_t t0 = begin(s, r, now_ns);
    uint64_t d = min_u64(token_delta < 0 ? (uint64_t)0 - (uint64_t)token_delta : (uint64_t)token_delta,
                         QS_PACE_MAX_TOKENS);
    uint64_t charge = tok_charge(r, d);
    int64_t delta = token_delta < 0 ? -(int64_t)d : (int64_t)d;
    s->last_ns = t0;
    if (token_delta > 0)
        s->tok_tat = min_u64(add_sat(s->tok_tat, charge), add_sat(t0, QS_PACE_HORIZON_NS));
    else if (s->tok_tat > t0)
        s->tok_tat = max_u64(t0, s->tok_tat - min_u64(charge, s->tok_tat));
    slot_ns = min_u64(slot_ns, s->last_slot); /* a slot never granted: count it at the latest */
    struct win w = win1(s);
    win_add(&w, slot_ns, delta);
    w = win60(s);
    win_add(&w, slot_ns, delta);
}

void qs_pace_cooldown(struct qs_pace_state *s, uint64_t until_ns)
{
    if (until_ns > s->cooldown_ns)
        s->cooldown_ns = until_ns;
}

/* How many slots were granted in [t - span, t), or -1 if the ring no longer reaches back to
 * t - span. The ring holds slots in the order granted, which is time order. */
static int64_t recent_in(const struct qs_pace_state *s, uint64_t t, uint64_t span)
{
    uint64_t n = s->nrecent < QS_PACE_RECENT ? s->nrecent : QS_PACE_RECENT, k = 0, i;
    for (i = 0; i < n; i++) {
        uint64_t slot = s->recent[(s->nrecent - 1 - i) % QS_PACE_RECENT];
        if (slot + span < t) /* before t - span (no underflow) */
            return (int64_t)k;
        if (slot < t)
            k++;
    }
    return n == s->nrecent ? (int64_t)k : -1; /* the ring holds every slot: nothing older */
}

void qs_pace_throttled(struct qs_pace_state *s, const struct qs_pace_rate *r, uint64_t slot_ns)
{
    if (r->retired || r->req_ns == 0 || slot_ns <= s->slowed_slot)
        return;
    uint64_t cur = spacing(s, r), want = cur + cur / 8;
    int64_t k = recent_in(s, slot_ns, QS_PACE_W1_SPAN_NS); /* k <= the slots remembered */
    if (k > 0) {
        want = max_u64(want, (QS_PACE_W1_SPAN_NS + (uint64_t)k - 1) / (uint64_t)k);
        /* the slots already granted are closer together: the next one must also leave the
         * k-th latest out of its window, or it lands in a window that is already full */
        uint64_t kth = s->recent[(s->nrecent - (uint64_t)k) % QS_PACE_RECENT];
        s->req_tat = max_u64(s->req_tat, kth + QS_PACE_W1_SPAN_NS);
    } else {
        want = cur + cur / 2;
    }
    uint64_t slow = min_u64(mul_div_ceil(want, QS_PACE_SLOW_ONE, r->req_ns),
                            (uint64_t)QS_PACE_SLOW_MAX * QS_PACE_SLOW_ONE);
    s->slow = max_u64(slow, s->slow);
    s->slowed_slot = s->last_slot;
}

uint64_t qs_pace_spacing(const struct qs_pace_state *s, const struct qs_pace_rate *r, uint64_t now_ns,
                         uint64_t *until_ns)
{
    *until_ns = 0;
    if (r->retired || s->slow <= QS_PACE_SLOW_ONE || now_ns > widened_until(s))
        return r->retired ? 0 : r->req_ns;
    *until_ns = widened_until(s);
    return spacing(s, r);
}

uint64_t qs_pace_next_free(const struct qs_pace_state *s, const struct qs_pace_rate *r, uint64_t now_ns)
{
    if (r->retired || !believable(s, r, now_ns))
        return now_ns;
    return earliest(s, r, max_u64(now_ns, s->last_ns), 1);
}
