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

/* ==== A log with rotation (what the shim writes through) ==== */

/* An open log: its path, rotation settings and descriptor, behind a mutex (opaque). */
struct qs_audit;

/* Makes a log for <path> (its directories are made 0700 and the file 0600 when absent,
 * on the first record). <max_bytes> > 0 turns on rotation: a record that would take the
 * file past <max_bytes> first renames PATH to PATH.1 (PATH.1 to PATH.2 ... up to
 * PATH.<keep>, the oldest dropped; with <keep> 0 the full file is removed). Nothing is
 * opened yet. Returns NULL only when out of memory. */
struct qs_audit *qs_audit_new(const char *path, long max_bytes, int keep);

/* Appends one formatted line with a single write(2) on an O_APPEND descriptor, rotating
 * first if it is due. Any number of threads and processes may log to one path: rotation
 * is done by one process at a time (flock on PATH.lock), and every writer notices that the
 * file at PATH changed (rotated or removed) and reopens it before its next record, so a
 * record is never lost to rotation except by falling off the end of <keep>. Returns 0, or
 * -1 when the record was not written. The first failure of any kind (cannot open, write,
 * rotate) prints one line on stderr; later ones are silent. A log that cannot be opened is
 * not tried again. Never raises SIGPIPE, never blocks on a FIFO or pipe. */
int qs_audit_log(struct qs_audit *a, const char *line, size_t len);

/* In the child after fork(): makes the log usable even if another thread of the parent
 * was inside qs_audit_log at the fork (its mutex is initialised anew). */
void qs_audit_atfork_child(struct qs_audit *a);

/* Closes the descriptor and frees <a> (NULL is fine). */
void qs_audit_free(struct qs_audit *a);

#endif
