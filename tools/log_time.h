/* log_time.h - the times of qshim-log: the audit log's ISO-8601 stamps, and the
 * --since/--until forms a person types ("2026-11-23T18:04", "10m" ago).
 * Pure: the current time is an argument. All times are UTC, ms since the epoch.
 * SPDX-License-Identifier: MIT
 */
#ifndef QS_LOG_TIME_H
#define QS_LOG_TIME_H

#include <stddef.h>
#include <stdint.h>

/* Parses <s> as YYYY-MM-DD[(T|space)HH:MM[:SS[.fraction]]][Z|(+|-)HH[:MM]] (the log's
 * "2026-11-23T18:04:05.123Z" and its shorter forms; no zone means UTC) into *<ms>.
 * Fractions beyond milliseconds are cut. Returns 0, or -1 (and *<ms> untouched) when <s>
 * is anything else, including a date or time out of range. */
int qs_log_parse_iso(const char *s, int64_t *ms);

/* Parses a --since/--until argument: an ISO time as above, "now", or a span ago from
 * <now_ms>: a whole number followed by s, m, h or d ("90s", "10m", "2h", "1d").
 * Returns 0, or -1 when <s> is none of these. */
int qs_log_parse_when(const char *s, int64_t now_ms, int64_t *ms);

enum qs_log_ts_style {
    QS_TS_ISO,   /* 2026-11-23T18:04:05.123Z, as in the log */
    QS_TS_HUMAN, /* 2026-11-23 18:04:05.123 */
    QS_TS_HMS,   /* 18:04:05 */
    QS_TS_HM,    /* 18:04 */
};

/* Writes <ms> in <style> into <out> (size <len>, 32 is always enough). */
void qs_log_fmt_ts(int64_t ms, enum qs_log_ts_style style, char *out, size_t len);

#endif
