/* retry.h - which DashScope answers are throttles to hide, and how long to wait.
 *
 * Pure policy (SPEC section 6): the answer's status, error code and message in,
 * a verdict out; the wait from Retry-After or exponential backoff with full jitter,
 * the random draw passed in so tests are exact.
 * SPDX-License-Identifier: MIT
 */
#ifndef QS_RETRY_H
#define QS_RETRY_H

#include <stdint.h>

/* 1 when an answer with HTTP <status> (or a native stream's ":HTTP_STATUS/<status>")
 * and error <code>/<message> (either may be "" or NULL) is a transient throttle or
 * capacity error to hide and replay; 0 when the program must see it unchanged
 * (success, billing and free-quota errors, any other 4xx). */
int qs_retry_is_throttle(int status, const char *code, const char *message);

/* 1 when an answer with this status might be a throttle, so that its body (or first
 * SSE event) must be read before it can be released. */
int qs_retry_may_throttle(int status);

/* Milliseconds to wait before retry number <attempt> (1 = the first retry):
 * <retry_after_ms> when the server gave one (>= 0); otherwise a full-jitter draw
 * <rnd> in [0, 1) times min(<max_ms>, <base_ms> * 2^(attempt - 1)). */
uint64_t qs_retry_delay_ms(int attempt, int64_t retry_after_ms, long base_ms, long max_ms, double rnd);

#endif
