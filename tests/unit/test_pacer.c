/* test_pacer.c - unit tests for shim/pacer.c with a fake clock (time is an argument; nothing
 * sleeps): callers hammering reserve at random times, every window of 1 s + guard and 60 s +
 * guard measured by an exact sliding-window checker over the slots, and every 1 s and 60 s
 * window over the arrivals when each request leaves up to the guard after its slot; goodput
 * over five simulated minutes, window boundaries, settle, cooldown, clocks going backwards,
 * retired models, huge requests, headroom, RPS and TPS given on their own, the queue horizon.
 *
 * The contract (pacer.h): every window is kept over its length plus QS_PACE_GUARD_NS, i.e.
 * over W1 = QS_PACE_W1_SPAN_NS and W60 = QS_PACE_W60_SPAN_NS; requests are spaced
 * max(ceil(W1 / n1), ceil(W60 / n60)) apart, n1 and n60 the 1 s and 60 s budgets, and a token
 * costs W1 / tok_1s or W60 / tok_60s of token time, whichever is more. Expected values below
 * are computed from those constants.
 * SPDX-License-Identifier: MIT
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "pacer.h"

#define MS 1000000ull
#define S QS_PACE_NS_1S
#define MIN QS_PACE_NS_60S
#define GUARD QS_PACE_GUARD_NS
#define W1 QS_PACE_W1_SPAN_NS   /* 1 s + guard */
#define W60 QS_PACE_W60_SPAN_NS /* 60 s + guard */
#define STEP1 QS_PACE_W1_STEP_NS
#define STEP60 QS_PACE_W60_STEP_NS

/* How late a request may leave after its slot (thread wake-up, write, loopback): up to 20 ms
 * in the integration runs. The guard must cover it. */
#define JITTER (20 * MS)

_Static_assert(W1 == S + GUARD && W60 == MIN + GUARD, "windows are kept over length + guard");
_Static_assert(GUARD >= JITTER, "the guard covers the send jitter");
_Static_assert(W1 % STEP1 == 0 && QS_PACE_W1_SLOTS >= W1 / STEP1 + 3, "1 s ring covers its span");
_Static_assert(QS_PACE_W60_SLOTS >= W60 / STEP60 + 4, "60 s ring covers its span");

static uint64_t ceil_div(uint64_t a, uint64_t b) { return (a + b - 1) / b; }

/* The request spacing of the contract: <n1> requests per W1 and <n60> per W60 (0: no such
 * limit), i.e. max(ceil(W1 / n1), ceil(W60 / n60)). */
static uint64_t spacing(uint64_t n1, uint64_t n60)
{
    uint64_t a = n1 ? ceil_div(W1, n1) : 0, b = n60 ? ceil_div(W60, n60) : 0;
    return a > b ? a : b;
}

/* Under headroom < 1 the average slows to headroom x limit while a window may still hold
 * floor(limit) whole requests: the spacing of one window is max(ceil(span / floor(limit)),
 * ceil(span / (headroom x limit))). */
static uint64_t spacing_h(uint64_t span, double limit, double headroom)
{
    uint64_t n = (uint64_t)(limit + 1e-6);
    uint64_t whole = ceil_div(span, n ? n : 1);
    if (headroom >= 1)
        return whole;
    double avg = (double)span / (headroom * limit);
    uint64_t a = (uint64_t)avg;
    a += (double)a < avg;
    return a > whole ? a : whole;
}

/* The token time of <tokens> for budgets <b1> per W1 and <b60> per W60 (0: none):
 * max(ceil(tokens x W1 / b1), ceil(tokens x W60 / b60)), at most a minute. */
static uint64_t tok_time(uint64_t tokens, uint64_t b1, uint64_t b60)
{
    uint64_t a = b1 ? (uint64_t)(((unsigned __int128)tokens * W1 + b1 - 1) / b1) : 0;
    uint64_t b = b60 ? (uint64_t)(((unsigned __int128)tokens * W60 + b60 - 1) / b60) : 0;
    uint64_t d = a > b ? a : b;
    return d < MIN ? d : MIN;
}

static struct qs_pace_state *new_state(void)
{
    struct qs_pace_state *s = calloc(1, sizeof *s);
    assert_non_null(s);
    return s;
}

static uint64_t rnd(uint64_t *x) /* xorshift64 */
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

/* ===================== Exact window checker ===================== */

struct ev {
    uint64_t t, tok;
};

struct sched {
    struct ev *ev;
    size_t n, cap;
};

static void sched_push(struct sched *s, uint64_t t, uint64_t tok)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 1024;
        s->ev = realloc(s->ev, s->cap * sizeof *s->ev);
        assert_non_null(s->ev);
    }
    s->ev[s->n++] = (struct ev){t, tok};
}

/* The most requests and tokens any window (x - span, x] holds (the window qshim-mock and
 * DashScope count: an event at exactly x - span has left). The maximum is reached by a
 * window ending at an event, so one pass over the events finds it exactly. Tokens of a window
 * that holds one event only are not counted: a request alone in a window always fits it. */
struct peak {
    uint64_t req, tok;
};

static struct peak window_peak(const struct sched *s, uint64_t span)
{
    struct peak p = {0, 0};
    size_t i = 0;
    uint64_t sum = 0;
    for (size_t k = 0; k < s->n; k++) {
        if (k > 0)
            assert_true(s->ev[k].t >= s->ev[k - 1].t); /* slots are granted in order */
        sum += s->ev[k].tok;
        while (s->ev[i].t + span <= s->ev[k].t)
            sum -= s->ev[i++].tok;
        if (k - i + 1 > p.req)
            p.req = k - i + 1;
        if (k > i && sum > p.tok)
            p.tok = sum;
    }
    return p;
}

/* floor(headroom x limit), at least 1: what the spec lets a window hold */
static uint64_t allowed(double limit, double headroom)
{
    uint64_t n = (uint64_t)(headroom * limit + 1e-6);
    return n ? n : 1;
}

/* ===================== Simulation ===================== */

enum cost_kind { COST_NONE, COST_FIXED, COST_UNIFORM, COST_MIXED };

struct scenario {
    double rpm, tpm, rps, tps, headroom;
    int callers;
    uint64_t think_ns; /* a caller calls again 0..think_ns after its slot */
    enum cost_kind cost;
    uint64_t cost_a, cost_b; /* FIXED: a; UNIFORM: a..b; MIXED: a..b, 1 in 50 is 1.5 x tps */
    uint64_t duration_ns;    /* calls are made until then */
};

static uint64_t draw_cost(const struct scenario *sc, uint64_t *x)
{
    switch (sc->cost) {
    case COST_NONE:
        return 0;
    case COST_FIXED:
        return sc->cost_a;
    case COST_UNIFORM:
        return sc->cost_a + rnd(x) % (sc->cost_b - sc->cost_a + 1);
    case COST_MIXED:
        if (rnd(x) % 50 == 0)
            return (uint64_t)(1.5 * (sc->tps > 0 ? sc->tps : sc->tpm / 60));
        return sc->cost_a + rnd(x) % (sc->cost_b - sc->cost_a + 1);
    }
    return 0;
}

/* <callers> callers, each calling reserve again a random while after its slot, with a clock
 * that is sometimes read a little late (another process decided in between). Returns the
 * granted schedule. */
static struct sched simulate(const struct scenario *sc, uint64_t seed)
{
    struct qs_pace_rate r;
    qs_pace_rate_init(&r, sc->rpm, sc->tpm, sc->rps, sc->tps, sc->headroom);
    struct qs_pace_state *s = new_state();
    struct sched out = {0};
    uint64_t next[64];
    uint64_t x = seed;
    assert_true(sc->callers <= 64);
    for (int i = 0; i < sc->callers; i++)
        next[i] = rnd(&x) % (10 * MS);
    for (;;) {
        int c = 0;
        for (int i = 1; i < sc->callers; i++)
            if (next[i] < next[c])
                c = i;
        if (next[c] >= sc->duration_ns)
            break;
        uint64_t now = next[c];
        if (rnd(&x) % 4 == 0 && now > 2 * MS) /* a stale clock read */
            now -= rnd(&x) % (2 * MS);
        uint64_t tok = draw_cost(sc, &x), wait = 0;
        assert_int_equal(qs_pace_reserve(s, &r, now, tok, &wait), QS_PACE_GO);
        assert_true(wait <= QS_PACE_HORIZON_NS);
        sched_push(&out, now + wait, tok);
        next[c] = now + wait + (sc->think_ns ? rnd(&x) % sc->think_ns : 0);
    }
    free(s);
    return out;
}

/* The first t at which the pacer's window (t - span, t] no longer counts a slot at <slot>:
 * the step holding the window's start counts whole, so that is the end of the slot's step
 * plus the span, never earlier than slot + span (exact) and at most one step later. */
static uint64_t leaves_at(uint64_t slot, uint64_t span, uint64_t step)
{
    return (slot / step + 1) * step + span;
}

static int ev_cmp(const void *a, const void *b)
{
    const struct ev *x = a, *y = b;
    return x->t < y->t ? -1 : x->t > y->t;
}

/* The arrivals at the server when each request leaves 0..JITTER after its slot (drawn from
 * <seed>; every tenth exactly on its slot or exactly JITTER late, the extremes), in order. */
static struct sched jittered(const struct sched *sd, uint64_t seed)
{
    struct sched a = {0};
    uint64_t x = seed | 1;
    for (size_t i = 0; i < sd->n; i++) {
        uint64_t d = rnd(&x) % (JITTER + 1);
        if (i % 10 == 0)
            d = rnd(&x) % 2 ? JITTER : 0;
        sched_push(&a, sd->ev[i].t + d, sd->ev[i].tok);
    }
    qsort(a.ev, a.n, sizeof *a.ev, ev_cmp);
    return a;
}

/* The pacer's contract on a schedule: every window of W1 and of W60 within the scenario's
 * budgets; and so, with each request leaving up to JITTER (at most the guard) after its slot,
 * every 1 s and 60 s window the server counts over the arrivals. */
static void assert_windows(const struct scenario *sc, const struct sched *sd)
{
    double rps = sc->rps > 0 ? sc->rps : sc->rpm / 60, tps = sc->tps > 0 ? sc->tps : sc->tpm / 60;
    struct sched arr = jittered(sd, sd->n * 0x2545f4914f6cdd1dull);
    const struct {
        const struct sched *sd;
        uint64_t w1, w60;
    } views[] = {{sd, W1, W60}, {&arr, S, MIN}};
    for (size_t v = 0; v < 2; v++) {
        struct peak p1 = window_peak(views[v].sd, views[v].w1), p60 = window_peak(views[v].sd, views[v].w60);
        /* whole requests: floor(limit) per window; headroom slows the average (sc_spacing) */
        if (rps > 0)
            assert_true(p1.req <= allowed(rps, 1.0));
        if (sc->rpm > 0)
            assert_true(p60.req <= allowed(sc->rpm, 1.0));
        if (tps > 0)
            assert_true(p1.tok <= allowed(tps, sc->headroom));
        if (sc->tpm > 0)
            assert_true(p60.tok <= allowed(sc->tpm, sc->headroom));
    }
    free(arr.ev);
}

/* The request spacing and token budgets a scenario's limits make under the contract. */
static uint64_t sc_spacing(const struct scenario *sc)
{
    double rps = sc->rps > 0 ? sc->rps : sc->rpm / 60;
    uint64_t a = rps > 0 ? spacing_h(W1, rps, sc->headroom) : 0;
    uint64_t b = sc->rpm > 0 ? spacing_h(W60, sc->rpm, sc->headroom) : 0;
    return a > b ? a : b;
}

static uint64_t sc_tok1(const struct scenario *sc)
{
    double tps = sc->tps > 0 ? sc->tps : sc->tpm / 60;
    return tps > 0 ? allowed(tps, sc->headroom) : 0;
}

/* Requests and tokens of the slots before <until_ns>. */
static struct peak granted_before(const struct sched *sd, uint64_t until_ns)
{
    struct peak g = {0, 0};
    for (size_t i = 0; i < sd->n && sd->ev[i].t < until_ns; i++) {
        g.req++;
        g.tok += sd->ev[i].tok;
    }
    return g;
}

/* Assumption: with demand well above the limit (16 callers calling again within 50 ms of
 * their slot), five minutes of slots at headroom 1 are spaced exactly as the contract says
 * (ceil(W1 / 100) = 10.2 ms: the 1 s budget over 1 s + guard binds), so they carry all the
 * guarded schedule allows and at least 97 % of what the requests-per-minute limit allows (the
 * guard costs 2 %), and every window of W1 holds the budget, no more and no less. */
static void test_goodput_requests(void **state)
{
    (void)state;
    struct scenario sc = {.rpm = 6000,
                          .tpm = 1e9,
                          .headroom = 1.0,
                          .callers = 16,
                          .think_ns = 50 * MS,
                          .cost = COST_UNIFORM,
                          .cost_a = 10,
                          .cost_b = 2000,
                          .duration_ns = 5 * MIN};
    uint64_t gap = sc_spacing(&sc);
    assert_int_equal(gap, ceil_div(W1, 100));
    for (uint64_t seed = 1; seed <= 3; seed++) {
        struct sched sd = simulate(&sc, seed * 0x9e3779b97f4a7c15ull);
        assert_windows(&sc, &sd);
        for (size_t i = 1; i < sd.n; i++) /* never closer than the spacing */
            assert_true(sd.ev[i].t - sd.ev[i - 1].t >= gap);
        assert_int_equal(sd.ev[sd.n - 1].t - sd.ev[0].t, (sd.n - 1) * gap); /* and exactly it */
        assert_int_equal(window_peak(&sd, W1).req, 100);
        struct peak g = granted_before(&sd, 5 * MIN);
        assert_true(g.req >= 5 * MIN / gap);
        assert_true(g.req <= 5 * MIN / gap + 1);
        assert_true(g.req >= (uint64_t)(0.97 * 5 * 6000));
        free(sd.ev);
    }
}

/* Assumption: token-bound (no request limit), costs up to 0.5 % of a window's budget: at least
 * 99 % of the guarded budget (tok_1s per W1) and 97 % of the TPM over five minutes, every
 * window within it; five minutes hold at most ceil(5 min / W1) windows' worth. */
static void test_goodput_tokens(void **state)
{
    (void)state;
    struct scenario sc = {.tpm = 6000000,
                          .headroom = 1.0,
                          .callers = 16,
                          .think_ns = 20 * MS,
                          .cost = COST_UNIFORM,
                          .cost_a = 1,
                          .cost_b = 500,
                          .duration_ns = 5 * MIN};
    struct sched sd = simulate(&sc, 42);
    assert_windows(&sc, &sd);
    struct peak g = granted_before(&sd, 5 * MIN);
    uint64_t ideal = 5 * MIN / tok_time(1, sc_tok1(&sc), 6000000); /* tokens at the guarded pace */
    assert_true(g.tok >= (uint64_t)(0.99 * (double)ideal));
    /* the guard alone costs GUARD / W1 (2.3 % at 24 ms); the rest stays within 1 % */
    assert_true(g.tok >= (uint64_t)((0.99 * (double)S / (double)W1) * 5 * 6000000));
    assert_true(g.tok <= ceil_div(5 * MIN, W1) * sc_tok1(&sc));
    free(sd.ev);

    /* equal costs, 100 tokens of a 1,000 per W1 budget: within 1 % of one request per
     * tok_time(100) = W1 / 10 (the step counted whole at the window's start costs the rest) */
    struct scenario fixed = sc;
    fixed.tpm = 60000;
    fixed.cost = COST_FIXED;
    fixed.cost_a = 100;
    sd = simulate(&fixed, 7);
    assert_windows(&fixed, &sd);
    g = granted_before(&sd, 5 * MIN);
    uint64_t per = tok_time(100, sc_tok1(&fixed), 60000);
    assert_int_equal(per, W1 / 10);
    assert_true(g.req >= (uint64_t)(0.99 * (double)(5 * MIN / per)));
    assert_true(g.tok >= (uint64_t)(0.97 * 5 * 60000));
    assert_true(g.tok <= ceil_div(5 * MIN, W1) * 1000);
    free(sd.ev);
}

/* Assumption: requests of very different sizes, some bigger than a second's budget (1,500
 * tokens against 1,000 TPS), both limits binding in turn, at headroom 0.95: no window holds
 * more than floor(0.95 x limit) unless it holds a single request, and the big ones do not
 * starve the rest. (First-come-first-served under exact windows cannot reach 99 % with such
 * costs: tokens freed one window after they were used sit idle until they add up to the next
 * request's cost.) */
static void test_windows_mixed_costs(void **state)
{
    (void)state;
    struct scenario sc = {.rpm = 300,
                          .tpm = 60000,
                          .headroom = 0.95,
                          .callers = 8,
                          .think_ns = 300 * MS,
                          .cost = COST_MIXED,
                          .cost_a = 1,
                          .cost_b = 400,
                          .duration_ns = 5 * MIN};
    for (uint64_t seed = 1; seed <= 4; seed++) {
        struct sched sd = simulate(&sc, seed * 1234567);
        assert_windows(&sc, &sd);
        struct peak g = granted_before(&sd, 5 * MIN);
        assert_true(g.tok >= (uint64_t)(0.6 * 0.95 * 5 * 60000));
        free(sd.ev);
    }

    /* Requests and tokens both binding (800 per second, costs 1..150 around the 75 the TPS
     * allows on average): the token side's one-slot tolerance lets dear requests use what
     * cheap ones left, so both run near their guarded limits (budget per W1), the windows
     * still exact. */
    struct scenario both = {.rpm = 48000,
                            .tpm = 3600000,
                            .headroom = 1.0,
                            .callers = 8,
                            .think_ns = 200000,
                            .cost = COST_UNIFORM,
                            .cost_a = 1,
                            .cost_b = 150,
                            .duration_ns = 2 * MIN};
    struct sched sd = simulate(&both, 3);
    assert_windows(&both, &sd);
    struct peak g = granted_before(&sd, 2 * MIN);
    assert_true(g.req >= (uint64_t)(0.88 * (double)(2 * MIN / sc_spacing(&both))));
    assert_true(g.tok >= (uint64_t)(0.88 * (double)(2 * MIN / tok_time(1, sc_tok1(&both), 3600000))));
    free(sd.ev);
}

/* Assumption: after start-up and after idle the slots are evenly spaced, no burst: 1,200 RPM
 * gives one request per ceil(W1 / 20) = 51 ms (20 per 1 s + guard; the minute's 1,200 per
 * W60 would allow 50.02 ms) from the first one on, whoever asks. */
static void test_no_burst(void **state)
{
    (void)state;
    struct qs_pace_rate r;
    qs_pace_rate_init(&r, 1200, 0, 0, 0, 1.0);
    uint64_t gap = spacing(20, 1200);
    assert_int_equal(gap, ceil_div(W1, 20));
    assert_int_equal(r.req_ns, gap);
    struct qs_pace_state *s = new_state();
    struct sched sd = {0};
    uint64_t wait;
    for (uint64_t i = 0; i < 40; i++) { /* 40 callers at once */
        assert_int_equal(qs_pace_reserve(s, &r, 1000 * S, 0, &wait), QS_PACE_GO);
        assert_int_equal(wait, i * gap);
        sched_push(&sd, 1000 * S + wait, 0);
    }
    /* idle for a minute: the next 5 again one per gap, starting now */
    for (uint64_t i = 0; i < 5; i++) {
        assert_int_equal(qs_pace_reserve(s, &r, 1062 * S, 0, &wait), QS_PACE_GO);
        assert_int_equal(wait, i * gap);
        sched_push(&sd, 1062 * S + wait, 0);
    }
    /* no window of W1 holds more than 20, however the slots are late up to the guard */
    assert_int_equal(window_peak(&sd, W1).req, 20);
    for (uint64_t seed = 1; seed <= 20; seed++) {
        struct sched arr = jittered(&sd, seed);
        assert_true(window_peak(&arr, S).req <= 20);
        free(arr.ev);
    }
    free(sd.ev);
    free(s);
}

/* Assumption: a window is (x - span, x] with span = length + guard: at 60 RPM (one per 1 s
 * window) the slots are exactly W1 apart, so a request that leaves up to the guard late still
 * never shares a server second with the one before, and the guard is exactly what that needs
 * (a nanosecond more jitter would put two in one second). The token window lets the next
 * request in once the earlier tokens are W1 (plus at most one 4 ms step) old. 999 one-token
 * requests then 500 tokens: GCRA alone would put the 500 right after the 999th (1,499 tokens
 * in one window); the window check holds it until only 500 remain in it. */
static void test_window_boundaries(void **state)
{
    (void)state;
    struct qs_pace_rate r;
    struct qs_pace_state *s = new_state();
    uint64_t wait;
    qs_pace_rate_init(&r, 60, 0, 0, 0, 1.0);
    assert_int_equal(r.req_ns, spacing(1, 60));
    assert_int_equal(r.req_ns, W1); /* the 1 s window binds: W1 / 1 > W60 / 60 */
    for (uint64_t i = 0; i < 3; i++) {
        qs_pace_reserve(s, &r, 5 * S, 0, &wait);
        assert_int_equal(wait, i * W1);
    }
    /* the first late by the whole guard, the second on time: exactly 1 s apart at the server,
     * so (x - 1 s, x] holds one of them; one nanosecond more and it would hold both */
    struct sched arr = {0};
    sched_push(&arr, 5 * S + GUARD, 0);
    sched_push(&arr, 5 * S + W1, 0);
    assert_int_equal(window_peak(&arr, S).req, 1);
    arr.ev[0].t++;
    assert_int_equal(window_peak(&arr, S).req, 2);
    free(arr.ev);

    memset(s, 0, sizeof *s);
    qs_pace_rate_init(&r, 0, 60000, 0, 0, 1.0);
    assert_int_equal(r.tok_1s, 1000);
    assert_int_equal(r.tok_60s, 60000);
    uint64_t tok1 = tok_time(1, 1000, 60000); /* one token = W1 / 1,000 = 1.02 ms */
    assert_int_equal(tok1, W1 / 1000);
    uint64_t t0 = 100 * S, slot = 0;
    struct sched sd = {0};
    for (uint64_t i = 0; i < 999; i++) {
        qs_pace_reserve(s, &r, t0, 1, &wait);
        assert_int_equal(wait, i * tok1);
        sched_push(&sd, t0 + wait, 1);
    }
    qs_pace_reserve(s, &r, t0, 500, &wait);
    slot = t0 + wait;
    sched_push(&sd, slot, 500);
    /* the window ending at the slot may hold 500 more: the slots from the 499th on, so the
     * 498th (at 498 x tok1) must have left it; the step holding the window's start counts
     * whole, which costs at most one step */
    assert_true(slot >= t0 + 498 * tok1 + W1);
    assert_true(slot <= t0 + 498 * tok1 + W1 + STEP1);
    assert_int_equal(slot, leaves_at(t0 + 498 * tok1, W1, STEP1));
    /* and the one after it pays for the 500 tokens */
    qs_pace_reserve(s, &r, t0, 1, &wait);
    assert_true(t0 + wait >= slot + tok_time(500, 1000, 60000));
    sched_push(&sd, t0 + wait, 1);
    assert_true(window_peak(&sd, W1).tok <= 1000);
    for (uint64_t seed = 1; seed <= 20; seed++) {
        struct sched a = jittered(&sd, seed);
        assert_true(window_peak(&a, S).tok <= 1000);
        free(a.ev);
    }
    free(sd.ev);

    /* the same over a minute + guard (the TPS as big as the TPM, so only the 60 s window
     * binds): 599 requests of 100 tokens, then 30,000, which must wait until the 299th
     * (at 298 x tok100) has left the window: W60 after it, to the step */
    memset(s, 0, sizeof *s);
    qs_pace_rate_init(&r, 0, 60000, 0, 60000, 1.0);
    uint64_t tok100 = tok_time(100, 60000, 60000);
    assert_int_equal(tok100, ceil_div(100 * W60, 60000));
    sd = (struct sched){0};
    for (uint64_t i = 0; i < 599; i++) {
        qs_pace_reserve(s, &r, t0, 100, &wait);
        assert_int_equal(wait, i * tok100);
        sched_push(&sd, t0 + wait, 100);
    }
    qs_pace_reserve(s, &r, t0, 30000, &wait);
    slot = t0 + wait;
    sched_push(&sd, slot, 30000);
    assert_true(slot >= t0 + 298 * tok100 + W60);
    assert_true(slot <= t0 + 298 * tok100 + W60 + STEP60);
    assert_int_equal(slot, leaves_at(t0 + 298 * tok100, W60, STEP60));
    assert_true(window_peak(&sd, W60).tok <= 60000);
    for (uint64_t seed = 1; seed <= 5; seed++) {
        struct sched a = jittered(&sd, seed);
        assert_true(window_peak(&a, MIN).tok <= 60000);
        free(a.ev);
    }
    free(sd.ev);
    free(s);
}

/* Assumption: a refund gives the token time back, but never before now, and takes the tokens
 * out of the windows; a charge adds both. */
static void test_settle(void **state)
{
    (void)state;
    struct qs_pace_rate r;
    qs_pace_rate_init(&r, 0, 60000, 0, 0, 1.0); /* 1,000 tokens per W1 */
    struct qs_pace_state *s = new_state();
    uint64_t wait, t0 = 50 * S;
#define TOK(n) tok_time((n), 1000, 60000)

    /* estimated 5,000 (5 windows of budget), used 1,000: the next one goes once the 1,000
     * have left the window, W1 after the first, not 5 x W1 */
    qs_pace_reserve(s, &r, t0, 5000, &wait);
    assert_int_equal(wait, 0);
    assert_int_equal(qs_pace_next_free(s, &r, t0 + 300 * MS), t0 + TOK(5000));
    qs_pace_settle(s, &r, t0 + 300 * MS, t0, -4000);
    uint64_t nf = qs_pace_next_free(s, &r, t0 + 300 * MS);
    assert_true(nf >= t0 + TOK(1000) && nf >= t0 + W1 && nf <= t0 + W1 + STEP1);
    assert_int_equal(nf, leaves_at(t0, W1, STEP1));

    /* a refund of everything, later: not before now */
    qs_pace_settle(s, &r, t0 + 400 * MS, t0, -1000);
    assert_int_equal(qs_pace_next_free(s, &r, t0 + 400 * MS), t0 + 400 * MS);
    qs_pace_reserve(s, &r, t0 + 400 * MS, 1, &wait);
    assert_int_equal(wait, 0);

    /* used 2,000 more than reserved: their token time more for the next, and the window
     * holds them */
    memset(s, 0, sizeof *s);
    qs_pace_reserve(s, &r, t0, 100, &wait);
    qs_pace_settle(s, &r, t0 + 50 * MS, t0, 2000);
    nf = qs_pace_next_free(s, &r, t0 + 50 * MS);
    assert_int_equal(nf, t0 + TOK(100) + TOK(2000));

    /* the charge is in the windows too: 100 at t0, 100 right after it, then the first one
     * turns out to be 800. The GCRA time ends at t0 + TOK(900), 0.918 s, but (t - W1, t] only
     * has room for 300 more once those 800 are out of it, W1 after t0. */
    memset(s, 0, sizeof *s);
    qs_pace_reserve(s, &r, t0, 100, &wait);
    qs_pace_reserve(s, &r, t0, 100, &wait);
    assert_int_equal(wait, TOK(100));
    qs_pace_settle(s, &r, t0 + 150 * MS, t0, 700);
    assert_int_equal(qs_pace_next_free(s, &r, t0 + 150 * MS), t0 + 2 * TOK(100) + TOK(700));
    assert_true(t0 + 2 * TOK(100) + TOK(700) < t0 + W1);
    qs_pace_reserve(s, &r, t0 + 150 * MS, 300, &wait);
    assert_true(t0 + 150 * MS + wait >= t0 + W1);
    assert_true(t0 + 150 * MS + wait <= t0 + W1 + STEP1);
    assert_int_equal(t0 + 150 * MS + wait, leaves_at(t0, W1, STEP1));
#undef TOK

    /* a settle for a retired model or of 0 changes nothing */
    struct qs_pace_rate retired;
    qs_pace_rate_init(&retired, 0, 0, 0, 0, 1.0);
    struct qs_pace_state before = *s;
    qs_pace_settle(s, &retired, t0 + 3 * S, t0, -50);
    qs_pace_settle(s, &r, t0 + 3 * S, t0, 0);
    assert_memory_equal(&before, s, sizeof before);
    free(s);
}

/* Assumption: after a 429, no slot before the cooldown's end; the callers waiting for it then
 * go evenly spaced (one per ceil(W1 / 10) at 600 RPM), not all at once; a shorter cooldown
 * does not shorten a longer one. */
static void test_cooldown(void **state)
{
    (void)state;
    struct qs_pace_rate r;
    qs_pace_rate_init(&r, 600, 0, 0, 0, 1.0);
    uint64_t gap = spacing(10, 600);
    assert_int_equal(r.req_ns, gap);
    struct qs_pace_state *s = new_state();
    uint64_t wait, t0 = 10 * S;
    qs_pace_reserve(s, &r, t0, 0, &wait);
    qs_pace_cooldown(s, t0 + 5 * S);
    qs_pace_cooldown(s, t0 + 2 * S);
    assert_int_equal(qs_pace_next_free(s, &r, t0 + S), t0 + 5 * S);
    for (uint64_t i = 0; i < 4; i++) {
        qs_pace_reserve(s, &r, t0 + S, 0, &wait);
        assert_int_equal(t0 + S + wait, t0 + 5 * S + i * gap);
    }
    /* an absurd cooldown is held to the horizon */
    qs_pace_cooldown(s, UINT64_MAX);
    qs_pace_reserve(s, &r, t0 + 2 * S, 0, &wait);
    assert_int_equal(wait, QS_PACE_HORIZON_NS);
    free(s);
}

/* Assumption (pacer.h qs_pace_throttled): a throttle widens the spacing to what the server's
 * 1 s window showed (k slots in the span before the throttled one: span / k), at least by
 * 1/8, by half when the window held none of ours or is no longer remembered; once per
 * crossing; held (no narrowing) until a minute after the slot it was made at. */
static void test_throttled(void **state)
{
    (void)state;
    struct qs_pace_rate r;
    qs_pace_rate_init(&r, 600, 0, 0, 0, 1.0);
    uint64_t gap = spacing(10, 600);
    struct qs_pace_state *s = new_state();
    uint64_t t = 10 * S;
    /* the spacing now: two slots reserved back to back, then their distance */
#define NEXT_GAP()                                                                                             \
    ({                                                                                                         \
        uint64_t w1, w2;                                                                                       \
        qs_pace_reserve(s, &r, t, 0, &w1);                                                                     \
        qs_pace_reserve(s, &r, t, 0, &w2);                                                                     \
        w2 - w1;                                                                                               \
    })
/* the spacing <want> rounded as the pacer keeps it: a multiple of 1/1024 of the configured one */
#define KEPT(want) ceil_div(r.req_ns * ceil_div((want) * QS_PACE_SLOW_ONE, r.req_ns), QS_PACE_SLOW_ONE)
    assert_int_equal(NEXT_GAP(), gap);
    uint64_t w;
    qs_pace_reserve(s, &r, t, 0, &w);
    qs_pace_reserve(s, &r, t, 0, &w);
    /* four slots back to back, gap apart; the server throttled the fourth: the three before
     * it filled its window, so three per window is what fits */
    uint64_t queued = s->last_slot - gap; /* granted before the throttle below */
    qs_pace_throttled(s, &r, s->last_slot);
    assert_int_equal(NEXT_GAP(), KEPT(ceil_div(W1, 3)));
    assert_true(KEPT(ceil_div(W1, 3)) - ceil_div(W1, 3) < r.req_ns / QS_PACE_SLOW_ONE + 1);
    uint64_t until;
    assert_int_equal(qs_pace_spacing(s, &r, t, &until), KEPT(ceil_div(W1, 3))); /* what status shows */
    assert_int_equal(until, s->slowed_slot + MIN);
    /* a throttle of a slot granted before that widening is the same crossing: no change */
    uint64_t slow = s->slow;
    qs_pace_throttled(s, &r, queued);
    assert_int_equal(s->slow, slow);
    /* held: a hundred more slots within the minute keep that spacing */
    for (int i = 0; i < 100; i++)
        qs_pace_reserve(s, &r, t, 0, &w);
    assert_int_equal(NEXT_GAP(), KEPT(ceil_div(W1, 3)));
    /* a throttle at the widened spacing: the window held the two slots before it (another
     * client shares it, or the limit is lower still), so two per window */
    qs_pace_throttled(s, &r, s->last_slot);
    assert_int_equal(NEXT_GAP(), KEPT(ceil_div(W1, 2)));
    uint64_t now = KEPT(ceil_div(W1, 2));
    /* a lone request throttled (nothing of ours in its window): half as wide again */
    t = s->last_slot + 5 * S;
    qs_pace_reserve(s, &r, t, 0, &w);
    assert_int_equal(w, 0);
    qs_pace_throttled(s, &r, t);
    assert_int_equal(NEXT_GAP(), KEPT(now + now / 2));
    /* at most QS_PACE_SLOW_MAX times */
    for (int i = 0; i < 40; i++) {
        qs_pace_reserve(s, &r, t, 0, &w);
        qs_pace_throttled(s, &r, t + w);
    }
    assert_int_equal(s->slow, QS_PACE_SLOW_MAX * QS_PACE_SLOW_ONE);
    assert_int_equal(NEXT_GAP(), QS_PACE_SLOW_MAX * gap);
    /* forgotten a minute after its slot */
    t = s->slowed_slot + MIN; /* not yet: exactly a minute */
    assert_int_equal(NEXT_GAP(), QS_PACE_SLOW_MAX * gap);
    t = s->last_slot + MIN + 1;
    assert_int_equal(qs_pace_spacing(s, &r, t, &until), gap);
    assert_int_equal(until, 0);
    assert_int_equal(NEXT_GAP(), gap);
#undef NEXT_GAP
#undef KEPT
    free(s);
}

/* Assumption: a throttle whose window is older than the slots remembered (more than
 * QS_PACE_RECENT in a second) cannot be read: half as wide again. A rate without request
 * spacing (tokens only) is not widened. */
static void test_throttled_unread(void **state)
{
    (void)state;
    struct qs_pace_rate r;
    qs_pace_rate_init(&r, 60000, 0, 0, 0, 1.0); /* 1,000 a second */
    struct qs_pace_state *s = new_state();
    uint64_t t = 10 * S, w;
    for (int i = 0; i < QS_PACE_RECENT + 10; i++)
        qs_pace_reserve(s, &r, t, 0, &w);
    qs_pace_throttled(s, &r, s->last_slot);
    assert_int_equal(s->slow, QS_PACE_SLOW_ONE * 3 / 2);
    /* with the whole history remembered the window is read: ten per second fit, a hundred
     * times the configured spacing, held to the cap */
    struct qs_pace_state *u = new_state();
    for (int i = 0; i < 11; i++)
        qs_pace_reserve(u, &r, t, 0, &w);
    qs_pace_throttled(u, &r, u->last_slot);
    assert_int_equal(u->slow, QS_PACE_SLOW_MAX * QS_PACE_SLOW_ONE);
    /* at the configured spacing a full window shows the configured limit: at least 1/8 wider */
    struct qs_pace_rate ten;
    qs_pace_rate_init(&ten, 600, 0, 0, 0, 1.0);
    struct qs_pace_state *e = new_state();
    for (int i = 0; i < 12; i++)
        qs_pace_reserve(e, &ten, t, 0, &w);
    qs_pace_throttled(e, &ten, e->last_slot);
    assert_int_equal(e->slow, QS_PACE_SLOW_ONE + QS_PACE_SLOW_ONE / 8);
    free(e);
    /* slots granted closer together than the new spacing: the next slot leaves the k-th
     * latest out of its window (k = 2 here: 2 per window) */
    struct qs_pace_state *q = new_state();
    for (int i = 0; i < 4; i++)
        qs_pace_reserve(q, &ten, t, 0, &w);
    uint64_t third = q->last_slot - ten.req_ns;
    qs_pace_throttled(q, &ten, third); /* two slots before it in its window */
    qs_pace_reserve(q, &ten, t, 0, &w);
    assert_int_equal(t + w, third + W1); /* the second latest: the third */
    free(q);
    struct qs_pace_rate tok;
    qs_pace_rate_init(&tok, 0, 60000, 0, 0, 1.0);
    struct qs_pace_state *v = new_state();
    qs_pace_reserve(v, &tok, t, 10, &w);
    qs_pace_throttled(v, &tok, t);
    assert_int_equal(v->slow, 0);
    free(s);
    free(u);
    free(v);
}

/* Assumption: a widened spacing never exceeds a minute and the guard (the longest a limit
 * can configure): a 2 RPM model (30 s apart) throttled to the cap keeps its state and spaces
 * requests 60.024 s apart, rather than holding a time the state check cannot believe, which
 * would wipe the state and let the next request go at once. */
static void test_throttled_low_rpm(void **state)
{
    (void)state;
    struct qs_pace_rate r;
    qs_pace_rate_init(&r, 2, 0, 0, 0, 1.0);
    struct qs_pace_state *s = new_state();
    uint64_t t = 10 * S, w;
    for (int i = 0; i < 12; i++) { /* each request sent at its slot and throttled */
        qs_pace_reserve(s, &r, t, 0, &w);
        t += w;
        qs_pace_throttled(s, &r, t);
    }
    assert_true(s->slow > 2 * QS_PACE_SLOW_ONE); /* asked for more than a minute */
    qs_pace_reserve(s, &r, t, 0, &w);
    assert_int_equal(w, W60);
    assert_int_equal(s->nrecent, 13); /* never started afresh */
    free(s);
}

/* Assumption: a limit under one request a minute (0.2 RPM at headroom 0.95: one request per
 * 316 s) is believed: the second request waits (to the horizon, the most a queue holds),
 * rather than the state being taken for corrupt and started afresh. */
static void test_below_one_rpm(void **state)
{
    (void)state;
    struct qs_pace_rate r;
    qs_pace_rate_init(&r, 0.2, 0, 0, 0, 0.95);
    struct qs_pace_state *s = new_state();
    uint64_t w;
    qs_pace_reserve(s, &r, 10 * S, 0, &w);
    assert_int_equal(w, 0);
    qs_pace_reserve(s, &r, 11 * S, 0, &w);
    assert_int_equal(w, QS_PACE_HORIZON_NS);
    assert_int_equal(s->nrecent, 2);
    free(s);
}

/* Assumption: a 'now' older than the last decision (a stale read, another process decided
 * first) is taken as the last decision's time: slots stay in order and spaced. A state from
 * far in the future (another clock, corruption) starts afresh instead of blocking. */
static void test_clock_backwards(void **state)
{
    (void)state;
    struct qs_pace_rate r;
    qs_pace_rate_init(&r, 600, 60000, 0, 0, 1.0);
    uint64_t gap = spacing(10, 600);
    assert_int_equal(r.req_ns, gap);
    struct qs_pace_state *s = new_state();
    uint64_t wait;
    qs_pace_reserve(s, &r, 1000 * S, 10, &wait);
    assert_int_equal(wait, 0);
    qs_pace_reserve(s, &r, 999 * S, 10, &wait); /* one second back */
    assert_int_equal(999 * S + wait, 1000 * S + gap);
    assert_int_equal(qs_pace_next_free(s, &r, 990 * S), 1000 * S + 2 * gap);

    /* a minute back: still sane */
    qs_pace_reserve(s, &r, 940 * S, 10, &wait);
    assert_int_equal(940 * S + wait, 1000 * S + 2 * gap);

    /* the machine's clock is an hour behind the state: forget it, pace from now */
    qs_pace_reserve(s, &r, 100 * S, 10, &wait);
    assert_int_equal(wait, 0);
    qs_pace_reserve(s, &r, 100 * S, 10, &wait);
    assert_int_equal(wait, gap);

    /* a corrupt TAT far ahead: not believed */
    s->req_tat = UINT64_MAX / 2;
    assert_int_equal(qs_pace_next_free(s, &r, 200 * S), 200 * S);
    qs_pace_reserve(s, &r, 200 * S, 10, &wait);
    assert_int_equal(wait, 0);
    /* a TAT within horizon + one minute is believed (a legitimately queued state) */
    s->req_tat = 200 * S + QS_PACE_HORIZON_NS;
    qs_pace_reserve(s, &r, 200 * S, 10, &wait);
    assert_int_equal(wait, QS_PACE_HORIZON_NS);
    free(s);
}

/* Assumption: rpm, tpm and rps all 0 is a retired model: never granted, nothing recorded. */
static void test_retired(void **state)
{
    (void)state;
    struct qs_pace_rate r;
    qs_pace_rate_init(&r, 0, 0, 0, 0, 0.95);
    assert_int_equal(r.retired, 1);
    qs_pace_rate_init(&r, 0, 0, 0, 500, 0.95); /* a TPS alone does not revive it */
    assert_int_equal(r.retired, 1);
    struct qs_pace_state *s = new_state();
    uint64_t wait = 123;
    assert_int_equal(qs_pace_reserve(s, &r, 7 * S, 100, &wait), QS_PACE_NEVER);
    assert_int_equal(wait, 0);
    assert_int_equal(qs_pace_next_free(s, &r, 7 * S), 7 * S);
    struct qs_pace_state zero;
    memset(&zero, 0, sizeof zero);
    assert_memory_equal(&zero, s, sizeof zero);
    free(s);
}

/* Assumption: a request bigger than a window's budget goes when the budget is idle and the
 * ones after it pay the time back (1,600 tokens at 1,000 per W1: 1.632 s); one bigger than a
 * whole minute's goes alone, and what it costs the others is about a minute (W60), not its
 * size. */
static void test_huge_requests(void **state)
{
    (void)state;
    struct qs_pace_rate r;
    qs_pace_rate_init(&r, 600, 60000, 0, 0, 1.0);
    assert_int_equal(r.req_ns, spacing(10, 600));
    struct qs_pace_state *s = new_state();
    uint64_t wait, t0 = 300 * S;
    qs_pace_reserve(s, &r, t0, 1600, &wait);
    assert_int_equal(wait, 0);
    qs_pace_reserve(s, &r, t0, 10, &wait);
    /* less the one request slot tolerated */
    assert_int_equal(wait, tok_time(1600, 1000, 60000) - r.req_ns);

    /* busy budget: the big one waits until nothing else is in its window */
    memset(s, 0, sizeof *s);
    qs_pace_reserve(s, &r, t0, 200, &wait);
    qs_pace_reserve(s, &r, t0, 1600, &wait);
    assert_true(wait >= W1 && wait <= W1 + STEP1);
    assert_int_equal(t0 + wait, leaves_at(t0, W1, STEP1));

    /* 10 x a minute's budget */
    memset(s, 0, sizeof *s);
    struct sched sd = {0};
    qs_pace_reserve(s, &r, t0, 600000, &wait);
    assert_int_equal(wait, 0);
    sched_push(&sd, t0, 600000);
    qs_pace_reserve(s, &r, t0 + S, 10, &wait);
    assert_true(t0 + S + wait >= t0 + W60);
    assert_true(t0 + S + wait <= t0 + W60 + STEP60);
    assert_int_equal(t0 + S + wait, leaves_at(t0, W60, STEP60));
    sched_push(&sd, t0 + S + wait, 10);
    for (int i = 0; i < 20; i++) {
        qs_pace_reserve(s, &r, t0 + S, 10, &wait);
        sched_push(&sd, t0 + S + wait, 10);
    }
    struct peak p = window_peak(&sd, W60);
    assert_true(p.tok <= 60000); /* the giant shares no minute + guard */
    free(sd.ev);
    free(s);
}

/* Assumption: headroom scales every budget: at 0.5, five minutes carry about half (less the
 * guard's 2 %). 0.95 x 600 RPM: an average of 9.5 per W1 (not floor(9.5) = 9: a window holds
 * whole requests, so 10 fit in one as long as the average is 9.5), 570 per W60; the 9.5 per
 * W1 bind. Tokens are floored: 1583 per W1. */
static void test_headroom(void **state)
{
    (void)state;
    struct qs_pace_rate r;
    qs_pace_rate_init(&r, 600, 100000, 0, 0, 0.95);
    assert_int_equal(r.req_ns, spacing_h(W1, 10, 0.95));
    assert_true(r.req_ns >= spacing_h(W60, 600, 0.95));
    assert_true(r.req_ns > ceil_div(W1 * 100, 950) - 1 && r.req_ns <= ceil_div(W1 * 100, 950) + 1);
    assert_int_equal(r.tok_1s, 1583);
    assert_int_equal(r.tok_60s, 95000);
    qs_pace_rate_init(&r, 600, 100000, 0, 0, 0); /* out of range: 1 */
    assert_int_equal(r.req_ns, spacing(10, 600));
    qs_pace_rate_init(&r, 600, 100000, 0, 0, 1.5);
    assert_int_equal(r.req_ns, spacing(10, 600));
    /* 2 RPM at 0.95: 1.9 per minute on average, i.e. about 31.6 s apart (32.3 s from the
     * derived 1 s rate over its longer span), not floor(1.9) = 1 a minute */
    qs_pace_rate_init(&r, 2, 0, 0, 0, 0.95);
    assert_int_equal(r.req_ns, spacing_h(W1, 2.0 / 60, 0.95));
    assert_true(r.req_ns >= spacing_h(W60, 2, 0.95) && r.req_ns < W60);

    struct scenario sc = {.rpm = 1200,
                          .tpm = 120000,
                          .headroom = 0.5,
                          .callers = 8,
                          .think_ns = 10 * MS,
                          .cost = COST_UNIFORM,
                          .cost_a = 1,
                          .cost_b = 50,
                          .duration_ns = 5 * MIN};
    struct sched sd = simulate(&sc, 99);
    assert_windows(&sc, &sd);
    struct peak g = granted_before(&sd, 5 * MIN);
    uint64_t gap = sc_spacing(&sc);
    assert_true(gap >= 2 * spacing(20, 1200) - 2 && gap <= 2 * spacing(20, 1200) + 2); /* half the rate */
    assert_true(g.req >= 5 * MIN / gap && g.req >= (uint64_t)(0.97 * 5 * 600));
    assert_true(g.req <= 5 * MIN / gap + 1 && g.tok <= ceil_div(5 * MIN, W1) * 1000);
    free(sd.ev);
}

/* Assumption: an RPS of its own is a 1 s limit next to the RPM (the tighter one paces), a
 * model limited by RPS alone (image submission) is paced by it, and a TPS of its own caps the
 * tokens of each W1 while the TPM caps each W60. */
static void test_rps_tps_given(void **state)
{
    (void)state;
    struct qs_pace_rate r;
    qs_pace_rate_init(&r, 600, 0, 2, 0, 1.0);
    assert_int_equal(r.req_ns, spacing(2, 600));
    assert_int_equal(r.req_ns, W1 / 2);
    qs_pace_rate_init(&r, 60, 0, 5, 0, 1.0); /* the RPM is the tighter */
    assert_int_equal(r.req_ns, spacing(5, 60));
    assert_int_equal(r.req_ns, ceil_div(W60, 60));
    qs_pace_rate_init(&r, 0, 0, 3, 0, 1.0);
    assert_int_equal(r.req_ns, spacing(3, 0));
    assert_int_equal(r.req_ns, ceil_div(W1, 3));
    assert_int_equal(r.tok_1s, 0);
    qs_pace_rate_init(&r, 0, 60000, 0, 5000, 1.0);
    assert_int_equal(r.tok_1s, 5000);
    assert_int_equal(r.tok_60s, 60000);
    /* the minute binds the token time here: 100 tokens cost 100 x W60 / 60,000 */
    struct qs_pace_state *s = new_state();
    uint64_t wait, t0 = 80 * S;
    qs_pace_reserve(s, &r, t0, 100, &wait);
    assert_int_equal(qs_pace_next_free(s, &r, t0), t0 + tok_time(100, 5000, 60000));
    assert_int_equal(tok_time(100, 5000, 60000), ceil_div(100 * W60, 60000));
    free(s);

    struct scenario sc = {
        .rps = 4, .headroom = 1.0, .callers = 6, .think_ns = 0, .cost = COST_NONE, .duration_ns = 2 * MIN};
    struct sched sd = simulate(&sc, 5);
    assert_windows(&sc, &sd);
    uint64_t gap = sc_spacing(&sc);
    assert_int_equal(gap, ceil_div(W1, 4));
    /* back to back from the first caller (within 10 ms of 0) on */
    assert_true(granted_before(&sd, 2 * MIN).req >= (2 * MIN - 10 * MS) / gap);
    assert_true(granted_before(&sd, 2 * MIN).req >= (uint64_t)(0.97 * 4 * 120));
    free(sd.ev);

    /* TPS above TPM/60: bursts up to 5,000 in a W1, 60,000 per W60 */
    struct scenario st = {.tpm = 60000,
                          .tps = 5000,
                          .headroom = 1.0,
                          .callers = 8,
                          .think_ns = 100 * MS,
                          .cost = COST_UNIFORM,
                          .cost_a = 1,
                          .cost_b = 100,
                          .duration_ns = 3 * MIN};
    sd = simulate(&st, 11);
    assert_windows(&st, &sd);
    struct peak p1 = window_peak(&sd, W1);
    assert_true(p1.tok > 1000); /* the TPS, not TPM/60, bounds a second */
    assert_true(granted_before(&sd, 3 * MIN).tok >= (uint64_t)(0.97 * 3 * 60000));
    free(sd.ev);
}

/* Assumption: a queue deeper than the horizon is overload; the pacer stops stretching it
 * there instead of making a caller sleep for many minutes. */
static void test_horizon(void **state)
{
    (void)state;
    struct qs_pace_rate r;
    qs_pace_rate_init(&r, 60, 0, 0, 0, 1.0);
    assert_int_equal(r.req_ns, W1);
    struct qs_pace_state *s = new_state();
    uint64_t wait = 0, t0 = 500 * S;
    for (uint64_t i = 0; i < 300; i++) {
        qs_pace_reserve(s, &r, t0, 0, &wait);
        assert_true(wait <= QS_PACE_HORIZON_NS);
        if (i * W1 <= QS_PACE_HORIZON_NS) /* within the horizon: the even schedule */
            assert_int_equal(wait, i * W1);
    }
    assert_int_equal(wait, QS_PACE_HORIZON_NS);
    /* and the state stays believable: a little later, still one per W1 after the queue */
    qs_pace_reserve(s, &r, t0 + 10 * S, 0, &wait);
    assert_int_equal(t0 + 10 * S + wait, t0 + QS_PACE_HORIZON_NS + W1);
    free(s);
}

/* Assumption: next_free only looks, and what it sees is what reserve then grants. */
static void test_next_free(void **state)
{
    (void)state;
    struct qs_pace_rate r;
    qs_pace_rate_init(&r, 120, 6000, 0, 0, 1.0);
    struct qs_pace_state *s = new_state();
    uint64_t wait, t0 = 70 * S;
    assert_int_equal(qs_pace_next_free(s, &r, t0), t0);
    qs_pace_reserve(s, &r, t0, 100, &wait);
    struct qs_pace_state before = *s;
    uint64_t nf = qs_pace_next_free(s, &r, t0);
    assert_int_equal(qs_pace_next_free(s, &r, t0), nf);
    assert_memory_equal(&before, s, sizeof before);
    /* 100 tokens at 100 per W1 fill the window until W1 after t0; the window's oldest step
     * counts whole */
    assert_true(nf >= t0 + W1 && nf <= t0 + W1 + STEP1);
    assert_int_equal(nf, leaves_at(t0, W1, STEP1));
    qs_pace_reserve(s, &r, t0, 1, &wait);
    assert_int_equal(t0 + wait, nf);
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_goodput_requests),
        cmocka_unit_test(test_goodput_tokens),
        cmocka_unit_test(test_windows_mixed_costs),
        cmocka_unit_test(test_no_burst),
        cmocka_unit_test(test_window_boundaries),
        cmocka_unit_test(test_settle),
        cmocka_unit_test(test_cooldown),
        cmocka_unit_test(test_throttled),
        cmocka_unit_test(test_throttled_unread),
        cmocka_unit_test(test_throttled_low_rpm),
        cmocka_unit_test(test_below_one_rpm),
        cmocka_unit_test(test_clock_backwards),
        cmocka_unit_test(test_retired),
        cmocka_unit_test(test_huge_requests),
        cmocka_unit_test(test_headroom),
        cmocka_unit_test(test_rps_tps_given),
        cmocka_unit_test(test_horizon),
        cmocka_unit_test(test_next_free),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
