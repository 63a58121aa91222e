/* limtab.h - per-region model rate limits: the built-in tables and the effective lookup.
 *
 * The tables (config/limits/REGION.conf, transcribed from the DashScope rate-limit page)
 * are compiled into the library, so a process never reads a file to find its limits
 * (SPEC section 4). Not limits.h: with -Ishim that name would shadow the system <limits.h>.
 * SPDX-License-Identifier: MIT
 */
#ifndef QS_LIMTAB_H
#define QS_LIMTAB_H

#include <stddef.h>

#include "config.h"

/* One embedded table: config/limits/<region>.conf byte for byte, NUL-terminated. The array
 * is generated into build/gen/limits_data.c by the Makefile, sorted by region name. */
struct qs_limits_table {
    const char *region; /* the file name without .conf: "cn-beijing", "intl", ... */
    const char *text;
};
extern const struct qs_limits_table qs_limits_tables[];
extern const size_t qs_limits_ntables;

/* 1 if <region> names an embedded table, else 0. "auto" is not a table: the caller
 * resolves it to one first. */
int qs_limits_region_valid(const char *region);

/* Writes the table names as "cn-beijing, cn-hongkong, ..." into <out> (size <outlen>),
 * truncated if it does not fit; for error messages. */
void qs_limits_region_list(char *out, size_t outlen);

/* The parsed table of <region>: sets *<rows> to its entries and *<nrows> to their count.
 * The exact model names come first, sorted by name; glob entries (any of "*?[" in the
 * name) follow in file order. Each entry's line is its line in config/limits/<region>.conf.
 * The rows live as long as the process and must not be freed. The table is parsed on the
 * first call for that region (thread-safe; later calls take no lock).
 * Returns 0; or -1 when <region> names no table or its text does not parse, with a
 * one-line message in <err> (size <errlen>) and *<rows>, *<nrows> set to NULL, 0.
 * A process that may fork while another thread makes the first call for a region should
 * make that call before, as the child could inherit the lock held. */
int qs_limits_table(const char *region, const struct qs_limit **rows, size_t *nrows, char *err,
                    size_t errlen);

/* The effective limit of <model> in <region>, first match wins:
 *   1. the first of <cfg>'s `limits` entries whose glob matches <model> (fnmatch, no flags);
 *   2. the region table: the entry named exactly <model>, else the first glob entry matching;
 *   3. <cfg>'s default_limit (which holds the built-in default when the file has none).
 * Copies the matching entry into <out> (its model field is the entry's name or glob, "*"
 * for the default) and writes where it came from into <source> (size <srclen>):
 * "config FILE:LINE", "table REGION" or "default_limit" (+ " FILE:LINE" when the config
 * file sets it). <cfg> must not be NULL (qs_config_defaults gives the no-file case).
 * Returns 0. Returns -1 when <region> names no table or its table does not parse: the
 * table is then skipped, and <out> and <source> still hold the override or default_limit
 * that applies, so a caller can fail open with them. */
int qs_limits_lookup(const struct qs_config *cfg, const char *region, const char *model, struct qs_limit *out,
                     char *source, size_t srclen);

/* 1 if <l> marks a retired model (rpm, tpm and rps all 0: never granted), else 0. */
int qs_limits_retired(const struct qs_limit *l);

#endif
