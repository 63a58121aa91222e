/* mock_window.h - sliding 1 s / 60 s request and token windows, and the mock's limiter.
 *
 * Pure: time comes in as an argument (nanoseconds on any monotonic clock), nothing here
 * reads a clock or takes a lock.
 * SPDX-License-Identifier: MIT
 */
#ifndef QS_MOCK_WINDOW_H
#define QS_MOCK_WINDOW_H

#include <stddef.h>
#include <stdint.h>

struct mock_event {
    uint64_t t_ns, tokens;
};

/* Events of the last 60 s in a ring, oldest first; the newest n1 of them are also in the
 * last 1 s. Running sums for both windows, and the largest values they ever reached. Valid
 * when zeroed. */
struct mock_window {
    struct mock_event *ev;
    size_t cap, head, n, n1;
    uint64_t tok1, tok60;
    uint64_t max_req_1s, max_tok_1s, max_req_60s, max_tok_60s;
};

/* Drops events that left the windows at <now_ns>. */
void mock_win_expire(struct mock_window *w, uint64_t now_ns);
/* Records an event of <tokens> at <now_ns> (not earlier than any recorded one). */
void mock_win_push(struct mock_window *w, uint64_t now_ns, uint64_t tokens);
/* Frees the ring and zeroes <w>. */
void mock_win_free(struct mock_window *w);

enum mock_limit {
    MOCK_ADMIT = 0,    /* fits */
    MOCK_OVER_RPM = 1, /* too many requests in the last 1 s or 60 s */
    MOCK_OVER_TPM = 2, /* too many tokens in the last 1 s or 60 s */
};

/* Would a request costing <cost> tokens at <now_ns> fit limits <rpm>/<tpm>, given the admitted
 * requests in <w>? See mock_window.c for the exact rule. Expires old events; records nothing. */
enum mock_limit mock_limit_check(struct mock_window *w, uint64_t rpm, uint64_t tpm, uint64_t now_ns,
                                 uint64_t cost);

#endif
