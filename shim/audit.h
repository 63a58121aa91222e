/* audit.h - the JSONL audit log (SPEC section 7).
 *
 * Formatting is pure (into a caller buffer); writing is one write(2) on an O_APPEND
 * descriptor, so that any number of processes can share one file without torn lines.
 * Never an Authorization header, key or body text: a key only as its fingerprint.
 * SPDX-License-Identifier: MIT
 */
#ifndef QS_AUDIT_H
#define QS_AUDIT_H

#include <stddef.h>
#include <stdint.h>

/* One record. NULL strings and negative numbers are written as null (or left out,
 * for the optional "reason"). */
struct qs_audit_rec {
    uint64_t ts_ms;           /* wall clock, ms since the epoch */
    int pid;
    const char *prog;
    const char *event;        /* request, throttled, fallback, passthrough, config, error */
    const char *host;
    const char *region;
    const char *method;
    const char *path;         /* the query string is never logged */
    const char *model;
    int stream;
    int status;               /* 0 = no answer (null) */
    int attempts;
    int64_t paced_ms, retry_ms, latency_ms;
    int64_t est_tokens, input_tokens, output_tokens;
    const char *code;
    const char *key;          /* 8-hex fingerprint */
    const char *reason;       /* optional free text (why passthrough, what error) */
};

/* Formats <r> as one JSON line ending in '\n' into <buf>/<len>. Returns the line's
 * length, or 0 if it does not fit (nothing useful is left in <buf>). */
size_t qs_audit_format(const struct qs_audit_rec *r, char *buf, size_t len);

/* Opens (creating it and its directories, 0700/0600) the log for appending.
 * Returns a descriptor, or -1 with errno set. */
int qs_audit_open(const char *path);

/* Writes one formatted line with a single write(2). Returns 0, or -1 on a failed
 * or short write. */
int qs_audit_write(int fd, const char *line, size_t len);

#endif
