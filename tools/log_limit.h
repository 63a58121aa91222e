/* log_limit.h - the rate limit that applied to a model in the log, for summary and plot:
 * the same lookup the shim makes (config overrides, the compiled-in region table, then
 * default_limit; shim/limtab.h), turned into per-minute and per-second numbers.
 * SPDX-License-Identifier: MIT
 */
#ifndef QS_LOG_LIMIT_H
#define QS_LOG_LIMIT_H

#include "config.h"

struct qs_log_limit {
    struct qs_limit lim;               /* the entry that matched */
    char region[32];                   /* the table looked in */
    char source[QS_CFG_PATH_MAX + 32]; /* "table cn-beijing", "config FILE:LINE", "default_limit" */
    int retired;                       /* rpm, tpm and rps all 0: never granted */
    /* Requests and tokens per minute and per second; 0 = not limited. Per minute is rpm
     * (or rps x 60 when only rps is given); per second the tighter of rpm / 60 and rps
     * (SPEC section 4: rps is a limit of its own). Tokens likewise with tpm and tps. */
    double rpm, tpm, rps, tps;
};

/* The limit of <model> as the records of <region> (the log's "region" field) met it.
 * A region that names no table ("" or unknown) means the config's region, or
 * cn-beijing when that is "auto", as the shim does. Never fails: a table that cannot be
 * read leaves the config's override or default_limit. */
void qs_log_limit_of(const struct qs_config *cfg, const char *model, const char *region,
                     struct qs_log_limit *out);

#endif
