/* log_limit.c - the limit that applied to a model (see log_limit.h).
 * SPDX-License-Identifier: MIT
 */
#include "log_limit.h"

#include <stdio.h>
#include <string.h>

#include "limtab.h"

/* The tighter of a per-minute limit divided by 60 and a per-second one (0 = none). */
static double per_second(double per_min, double per_sec)
{
    double a = per_min > 0 ? per_min / 60.0 : 0;
    if (per_sec > 0 && (a == 0 || per_sec < a))
        return per_sec;
    return a;
}

void qs_log_limit_of(const struct qs_config *cfg, const char *model, const char *region,
                     struct qs_log_limit *out)
{
    memset(out, 0, sizeof *out);
    if (region[0] != '\0' && qs_limits_region_valid(region))
        snprintf(out->region, sizeof out->region, "%s", region);
    else
        snprintf(out->region, sizeof out->region, "%s",
                 strcmp(cfg->region, "auto") == 0 ? "cn-beijing" : cfg->region);
    qs_limits_lookup(cfg, out->region, model, &out->lim, out->source, sizeof out->source);
    out->retired = qs_limits_retired(&out->lim);
    out->rpm = out->lim.rpm > 0 ? out->lim.rpm : out->lim.rps * 60;
    out->tpm = out->lim.tpm > 0 ? out->lim.tpm : out->lim.tps * 60;
    out->rps = per_second(out->lim.rpm, out->lim.rps);
    out->tps = per_second(out->lim.tpm, out->lim.tps);
}
