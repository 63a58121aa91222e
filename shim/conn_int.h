/* conn_int.h - what conn.c (requests) and answer.c (answers) share about a connection.
 * Private to those two files; everyone else sees only conn.h.
 * SPDX-License-Identifier: MIT
 */
#ifndef QS_CONN_INT_H
#define QS_CONN_INT_H

#include <stdint.h>

#include "buf.h"
#include "conn.h"
#include "dashscope.h"
#include "http.h"
#include "json.h"
#include "sse.h"

#define HEAD_MAX (64 * 1024) /* a longer request or answer head is not HTTP we handle */
#define INFLIGHT_MAX 16      /* pipelined requests awaiting answers */
#define SSL_ERROR_SSL_ 1     /* OpenSSL's SSL_get_error values we act on */
#define SSL_ERROR_WANT_WRITE_ 3
#define SSL_ERROR_SYSCALL_ 5
#define SSL_ERROR_ZERO_RETURN_ 6

/* A request sent (or being assembled) and the facts logged when its answer ends. */
struct exchange {
    char method[16];
    char path[256];
    char model[QS_DS_MODEL_MAX];
    char key[9];
    int stream;
    int passthrough;
    const char *reason;
    uint64_t t_start_ns;
    int64_t est_tokens;
    int status;
    struct qs_ds_resp resp;
    int attempts;                      /* sends of this request so far */
    int fallback_step;                 /* models of the fallback chain used so far */
    char first_model[QS_DS_MODEL_MAX]; /* the model the program asked for */
    int64_t retry_ms;                  /* time waited before replays */
    int paced;                         /* a slot was reserved for the last send (settle it at the end) */
    int64_t paced_ms;                  /* time waited (or, observing, that would have been) for slots */
    uint64_t slot_ns;                  /* the slot of the last send */
    int64_t est_prompt;                /* the prompt's share of est_tokens */
    struct qs_buf sent;                /* the bytes sent, kept for a replay until the answer is known */
};

enum wstate { W_HEAD, W_BODY, W_PASS_BODY };
enum rstate { R_HEAD, R_BODY, R_OFF };

struct qs_conn {
    SSL *ssl;
    char host[256];
    int passthrough; /* the whole connection is plain pass-through */
    int alpn_done, established;

    /* write side */
    struct qs_buf in;   /* program bytes of the request being assembled */
    struct qs_buf head; /* its rewritten head, built when the head is complete */
    enum wstate wstate;
    size_t head_len; /* length of the original head inside <in> */
    size_t scanned;  /* bytes of <in> already given to the body decoder */
    struct qs_http_body body;
    struct qs_json json;
    struct qs_ds_req req;
    int json_bad;
    struct exchange cur;
    struct qs_buf wire;  /* bytes ready for the server, sent from wire.off */
    int flushing;        /* a program call is waiting for <wire> to drain */
    int again;           /* the program's last call was handed WANT_WRITE by the shim (a wait cut short) */
    uint64_t send_at_ns; /* <wire> may not go out before this (the pacer's slot) */
    size_t flush_num;

    /* answers, in request order */
    struct exchange q[INFLIGHT_MAX];
    int qhead, qlen;

    /* read side */
    enum rstate rstate;
    struct qs_buf rhead;
    struct qs_http_body rbody;
    int event_stream;
    struct qs_sse sse;
    int sse_in_data, sse_in_comment;
    char comment[24]; /* start of the current SSE comment line (":HTTP_STATUS/429") */
    size_t comment_len;
    struct qs_json rjson;
    int rjson_bad;

    /* Bytes for the program that it has not read yet: [hold.off, release_end) may be
     * delivered; [release_end, hold.len) is an answer held back until it is known not
     * to be a throttle. A synthesised "100 Continue" goes here too. */
    struct qs_buf hold;
    size_t release_end;
    int holding;                                        /* answer bytes go to <hold>, not to the program */
    enum { AWAIT_NONE, AWAIT_BODY, AWAIT_EVENT } await; /* what the verdict waits for */
    int retry_ready;  /* a throttle's answer is complete: replay it or give up */
    int answer_close; /* that answer said Connection: close */
    int64_t retry_after_ms;
    /* A replay under way (answer.c advance_replay): waiting out the backoff, then the pacer's
     * slot, each until <replay_at_ns>; kept across the program's calls, so that a wait a
     * signal cut short resumes where it was. */
    enum { REPLAY_NONE, REPLAY_BACKOFF, REPLAY_SLOT } replay_phase;
    uint64_t replay_at_ns;
    uint64_t replay_delay_ms;     /* the backoff, for retry_ms */
    uint64_t replay_throttled_ms; /* throttled so far, when the backoff ends (for the fallback) */
    int fell_back;                /* this replay's model was rewritten; the original is in orig_sent */
    struct qs_buf orig_sent;
    /* A replayed throttle, kept until the replay's answer begins: if the connection fails
     * first, the program gets this throttle after all (SPEC section 6), not a broken
     * connection. <kept_x> is its exchange as it was (its record, and the fallback's, are
     * written once the replay is answered); its <sent> is not owned. */
    int replay_pending; /* a replay was sent and its answer has not begun */
    struct qs_buf kept;
    struct exchange kept_x;
    char kept_step[2 * QS_DS_MODEL_MAX + 8]; /* "from -> to" when the replay fell back, else "" */
};

/* Emits one audit record about <x> (may be NULL) on connection <c>. */
void qs_conn_emit(const struct qs_conn_env *env, const struct qs_conn *c, const struct exchange *x,
                  const char *event, const char *reason);
/* Gives the program the held throttle as it came (a replay under way undone) and ends its
 * exchange with <why> (answer.c). */
void qs_conn_give_up(struct qs_conn *c, const struct qs_conn_env *env, const char *why);
/* Undoes a replay under way (answer.c): its unused slot settled, a fallback rewrite put back,
 * so that the front exchange is again the throttled request. No-op without one. */
void qs_conn_abandon_replay(struct qs_conn *c, const struct qs_conn_env *env);
/* Settles the pacer's slot of <x>'s last send (if any) with the tokens it used: from its
 * answer when <sent>, none when it never went out. */
void qs_conn_settle(struct qs_conn *c, const struct qs_conn_env *env, struct exchange *x, int sent);
/* Emits the final record of <x>: "request", or "passthrough" for requests not ours. */
void qs_conn_finish(struct qs_conn *c, const struct qs_conn_env *env, struct exchange *x, const char *reason);
/* Sends the unsent part of <b> with the real write the program used (<ex>).
 * Returns 1 when all is sent, or the real failure value. */
int qs_conn_drain(const struct qs_conn_env *env, SSL *s, int ex, struct qs_buf *b);
/* Writes the head to send for <req> into <out> (see conn.c). Returns 0 or -1. */
int qs_conn_build_head(struct qs_buf *out, const struct qs_http_request *req, int64_t content_length);
/* The region of <c>'s requests: the configured one, else from the host, else cn-beijing. */
void qs_conn_region(const struct qs_conn_env *env, const struct qs_conn *c, char *out, size_t outlen);
/* Reserves the pacer's slot for sending <x> now (or after a throttle). Returns the wait in
 * ns (0 when unpaced); records the slot in <x> for the settling at its end. */
uint64_t qs_conn_pace(struct qs_conn *c, const struct qs_conn_env *env, struct exchange *x);
/* Copies <n> bytes at <s> into <dst> as a C string, truncated to <dstlen> - 1. */
void qs_conn_copy_span(char *dst, size_t dstlen, const char *s, size_t n);

#endif
