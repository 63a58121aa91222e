/* conn.h - the state of one DashScope TLS connection and what happens to its bytes.
 *
 * Write side: the program's bytes are assembled into whole HTTP requests (head and
 * body), recognised (path family, model, stream), rewritten where needed
 * (Accept-Encoding: identity, Expect dropped) and only then sent with the real
 * SSL_write, so that later layers can delay or replay a whole request.
 * Read side: the answer is observed as it passes to the program (status, usage,
 * error code) and one audit record is emitted per request.
 * Anything conn.c cannot handle (malformed HTTP, h2, out of memory, a body over the
 * buffer limit) turns that connection or request into plain pass-through, with one
 * diagnostic; the byte stream is never altered beyond the documented rewrites.
 * SPDX-License-Identifier: MIT
 */
#ifndef QS_CONN_H
#define QS_CONN_H

#include <stddef.h>
#include <stdint.h>

#include "audit.h"
#include "budget.h"
#include "config.h"
#include "resolve.h"

/* What conn.c needs from the process; hook.c owns and fills it. */
struct qs_conn_env {
    const struct qs_real *real;
    const char *prog;
    int pid;
    const char *region;     /* configured region, "auto" = from the host */
    size_t max_buffer;      /* largest request body held whole (bytes) */
    int hold_answers;       /* enforce mode: hold answers back to hide throttles */
    int retry_max_attempts; /* SPEC section 4 "retry" */
    long retry_base_ms, retry_max_ms, retry_max_total_ms;
    /* Sleeps <ms> milliseconds; returns 0, or -1 when a signal interrupted the wait (see
     * may_yield for what happens then). */
    int (*sleep_ms)(uint64_t ms);
    /* Whether the program behind <ssl> may be handed WANT_WRITE when a signal interrupts a
     * pacing wait, and will call again unless it wants to stop (conn.c wait_for_slot).
     * NULL = never. */
    int (*may_yield)(SSL *ssl);
    double (*rand01)(void); /* uniform in [0, 1), for backoff jitter */
    /* Pacing (SPEC section 5): NULL = none. pace_wait 1 sleeps until the granted slot
     * (enforce); 0 only logs the wait it would have had (observe). */
    struct qs_budget *budget;
    int pace_wait;
    uint64_t default_out_tokens;        /* output tokens reserved when a request names no maximum */
    const struct qs_fallback *fallback; /* SPEC section 4 "fallback" chains */
    int nfallback;
    /* Receives every audit record (hook.c formats and writes it). */
    void (*emit)(const struct qs_audit_rec *rec);
};

struct qs_conn;

/* New state for <ssl> to DashScope host <host> (SNI or Host header, may carry a
 * port). Returns NULL when out of memory (the caller then passes through). */
struct qs_conn *qs_conn_new(SSL *ssl, const char *host, size_t host_len);

/* Emits a record for every request still waiting for its answer, then frees. */
void qs_conn_free(struct qs_conn *c, const struct qs_conn_env *env);

/* Before the real handshake: offer only http/1.1 in ALPN (once per connection). */
void qs_conn_before_handshake(struct qs_conn *c, const struct qs_conn_env *env);
/* After a real handshake call that returned <rc>: an h2 connection passes through. */
void qs_conn_after_handshake(struct qs_conn *c, const struct qs_conn_env *env, int rc);
/* Whether the handshake of this state was seen to finish (for stale-entry checks). */
int qs_conn_established(const struct qs_conn *c);

/* The program's SSL_write (<ex> = 0) or SSL_write_ex (<ex> = 1) of <num> bytes.
 * Returns 1 with *written = num when the bytes were accepted (buffered or sent),
 * otherwise the value the real call returned (<= 0), with OpenSSL's error state
 * untouched so SSL_get_error answers as it would without us, or -1 (0 for _ex) when a
 * signal interrupted the pacing wait of a program that may be asked (qs_conn_error). After a failure the
 * program repeats the call with the same arguments, as OpenSSL requires, and the
 * bytes already accepted are not taken twice. */
int qs_conn_write(struct qs_conn *c, const struct qs_conn_env *env, int ex, const void *buf, size_t num,
                  size_t *written);

/* The SSL_get_error answer for the program's last call on <c> that returned <ret>, when
 * the shim made that failure (SSL_ERROR_WANT_WRITE after an interrupted wait); -1 when
 * it is the real call's failure, for the real SSL_get_error to answer. */
int qs_conn_error(struct qs_conn *c, int ret);
/* Forgets that failure: the program made another call on the connection (hook.c calls it
 * from every hook that does not go through qs_conn_read/qs_conn_write). */
void qs_conn_clear_error(struct qs_conn *c);

/* The program's SSL_read (<ex> = 0) or SSL_read_ex (<ex> = 1). Held bytes (a
 * synthesised "100 Continue") are delivered first; otherwise the real call's bytes
 * are observed on their way. Returns 1 with *readbytes set, or the real call's
 * return value (<= 0), or -1 (0 for _ex) when a signal cut a replay's wait short in a
 * program that may be asked (qs_conn_error). */
int qs_conn_read(struct qs_conn *c, const struct qs_conn_env *env, int ex, void *buf, size_t num,
                 size_t *readbytes);

/* Bytes held for the program that the real SSL_pending cannot know about. */
size_t qs_conn_pending(const struct qs_conn *c);

#endif
