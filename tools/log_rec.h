/* log_rec.h - one audit record (SPEC section 7) as qshim-log reads it back.
 *
 * A line is scanned with the shim's own streaming JSON scanner (shim/json.h), so the
 * tool reads exactly what shim/audit.c writes. Any field may be absent or null; the
 * record then says "unknown" in that field (see struct qs_log_rec). Pure: no I/O.
 * SPDX-License-Identifier: MIT
 */
#ifndef QS_LOG_REC_H
#define QS_LOG_REC_H

#include <stddef.h>
#include <stdint.h>

/* qs_log_rec_parse results */
#define QS_LOG_OK 0
#define QS_LOG_BLANK 1       /* only whitespace: not a record, not an error */
#define QS_LOG_EBAD (-1)     /* not JSON, or not one JSON object */
#define QS_LOG_EPARTIAL (-2) /* the object does not end: a truncated line */

/* Strings are "" and numbers -1 when the field is absent or null (a record never holds
 * a negative count); status is 0 then (no answer). Longer strings are cut. */
struct qs_log_rec {
    int64_t ts_ms; /* -1 also when "ts" is not a time qs_log_parse_iso reads */
    long pid;
    char prog[64];
    char event[16];
    char host[128];
    char region[32];
    char method[16];
    char path[128];
    char model[128];
    int stream; /* 1, 0, or -1 */
    int status;
    long attempts;
    int64_t paced_ms, retry_ms, latency_ms;
    int64_t est_tokens, input_tokens, output_tokens;
    char code[64];
    char key[16];
    char reason[200];
};

/* Parses the line <line> (<len> bytes, without its '\n'; a trailing '\r' is allowed)
 * into *<r>. Returns QS_LOG_OK, QS_LOG_BLANK, QS_LOG_EBAD or QS_LOG_EPARTIAL; *<r> is
 * meaningful only with QS_LOG_OK. Keys the format does not have are ignored. */
int qs_log_rec_parse(const char *line, size_t len, struct qs_log_rec *r);

/* The tokens a request counted against the TPM limit: input + output when the answer
 * carried usage, else the shim's estimate, else 0. */
int64_t qs_log_rec_tokens(const struct qs_log_rec *r);

/* The time it waited before its answer: paced_ms + retry_ms (unknown counts 0). */
int64_t qs_log_rec_wait_ms(const struct qs_log_rec *r);

/* 1 when status is 2xx. */
int qs_log_rec_ok(const struct qs_log_rec *r);

/* 1 when the record is a request whose final answer, as the program saw it, was a
 * throttle: status 429, or a 5xx capacity error the shim's retry policy would hide
 * (qs_retry_is_throttle). These are the throttles passed on to the program. */
int qs_log_rec_throttle_passed(const struct qs_log_rec *r);

/* One readable line (no '\n') for `qshim-log tail` into <out> (size <len>):
 *   2026-11-23 18:04:05.123 python3[4242] request  qwen-plus 200 x2 wait 120+1400ms tok 640+151 2310ms
 * Unknown fields are left out or shown as "-"; code and reason follow at the end. */
void qs_log_rec_describe(const struct qs_log_rec *r, char *out, size_t len);

#endif
