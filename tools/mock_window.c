/* mock_window.c - sliding 1 s / 60 s windows and the mock's limiter.
 *
 * The windows are exact (every event is kept for 60 s), not bucketed: the mock is the
 * referee the shim's pacing is measured against, so it must not round in anyone's favour.
 * SPDX-License-Identifier: MIT
 */
#include "mock_window.h"

#include <stdlib.h>

#include "mock_util.h"

#define NS_1S 1000000000ull
#define NS_60S (60 * NS_1S)

void mock_win_expire(struct mock_window *w, uint64_t now_ns)
{
    /* "t + window <= now" rather than "t <= now - window": a monotonic clock may be
     * younger than 60 s. */
    while (w->n1 > 0) {
        const struct mock_event *e = &w->ev[(w->head + w->n - w->n1) % w->cap];
        if (e->t_ns + NS_1S > now_ns)
            break;
        w->tok1 -= e->tokens;
        w->n1--;
    }
    while (w->n > w->n1) {
        const struct mock_event *e = &w->ev[w->head];
        if (e->t_ns + NS_60S > now_ns)
            break;
        w->tok60 -= e->tokens;
        w->head = (w->head + 1) % w->cap;
        w->n--;
    }
}

void mock_win_push(struct mock_window *w, uint64_t now_ns, uint64_t tokens)
{
    mock_win_expire(w, now_ns);
    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 64;
        struct mock_event *ev = mock_realloc(NULL, cap * sizeof *ev);
        for (size_t i = 0; i < w->n; i++)
            ev[i] = w->ev[(w->head + i) % w->cap];
        free(w->ev);
        w->ev = ev;
        w->cap = cap;
        w->head = 0;
    }
    w->ev[(w->head + w->n) % w->cap] = (struct mock_event){now_ns, tokens};
    w->n++;
    w->n1++;
    w->tok1 += tokens;
    w->tok60 += tokens;
    /* The largest count over all windows is reached by a window that ends at an event,
     * so checking at each push finds the exact maximum. */
    if (w->n1 > w->max_req_1s)
        w->max_req_1s = w->n1;
    if (w->tok1 > w->max_tok_1s)
        w->max_tok_1s = w->tok1;
    if (w->n > w->max_req_60s)
        w->max_req_60s = w->n;
    if (w->tok60 > w->max_tok_60s)
        w->max_tok_60s = w->tok60;
}

void mock_win_free(struct mock_window *w)
{
    free(w->ev);
    *w = (struct mock_window){0};
}

/* Requests: fewer than max(1, RPM/60) in the last 1 s and fewer than RPM in the last 60 s.
 * Tokens: the window's tokens plus <cost> within TPM/60 (1 s) and TPM (60 s), except that a
 * request alone in a window always fits it, as DashScope lets one big prompt through an
 * otherwise idle budget (SPEC §5). */
enum mock_limit mock_limit_check(struct mock_window *w, uint64_t rpm, uint64_t tpm, uint64_t now_ns,
                                 uint64_t cost)
{
    uint64_t rps = rpm / 60 > 1 ? rpm / 60 : 1;
    mock_win_expire(w, now_ns);
    if (w->n1 >= rps || w->n >= rpm)
        return MOCK_OVER_RPM;
    /* (tok1 + cost) <= TPM / 60, compared exactly in integers */
    if (w->n1 > 0 && (w->tok1 + cost) * 60 > tpm)
        return MOCK_OVER_TPM;
    if (w->n > 0 && w->tok60 + cost > tpm)
        return MOCK_OVER_TPM;
    return MOCK_ADMIT;
}
