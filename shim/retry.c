/* retry.c - throttle classification and backoff (see retry.h).
 *
 * Codes from SPEC section 6 and research/dashscope-wire.md section 3.2. The trap:
 * DashScope's per-minute token throttle uses OpenAI's billing code
 * insufficient_quota, which here is transient; the one truly exhausted quota says
 * "Free allocated quota exceeded." under the same codes, and is never retried.
 * SPDX-License-Identifier: MIT
 */
#include "retry.h"

#include <string.h>

static const char *const throttle_codes[] = {
    "Throttling",         "Throttling.RateQuota", "Throttling.AllocationQuota", "Throttling.BurstRate",
    "LimitRequests",      "limit_requests",       "limit_burst_rate",           "insufficient_quota",
};

static const char *const capacity_codes[] = {"ModelServingError", "ModelUnavailable"};

static int in(const char *code, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(code, list[i]) == 0)
            return 1;
    return 0;
}

int qs_retry_may_throttle(int status)
{
    return status == 429 || status == 500 || status == 503;
}

int qs_retry_is_throttle(int status, const char *code, const char *message)
{
    code = code ? code : "";
    message = message ? message : "";
    if (strncmp(message, "Free allocated quota exceeded", 29) == 0)
        return 0;
    if (status == 429)
        /* no code at all: a gateway's bare "Too many requests" */
        return code[0] == '\0' || in(code, throttle_codes, sizeof throttle_codes / sizeof *throttle_codes);
    if (status == 500 || status == 503)
        return in(code, capacity_codes, sizeof capacity_codes / sizeof *capacity_codes);
    return 0;
}

uint64_t qs_retry_delay_ms(int attempt, int64_t retry_after_ms, long base_ms, long max_ms, double rnd)
{
    if (retry_after_ms >= 0)
        return (uint64_t)retry_after_ms;
    uint64_t cap = base_ms > 0 ? (uint64_t)base_ms : 0;
    for (int i = 1; i < attempt && cap < (uint64_t)max_ms; i++)
        cap *= 2;
    if (cap > (uint64_t)max_ms)
        cap = (uint64_t)max_ms;
    if (rnd < 0)
        rnd = 0;
    if (rnd >= 1)
        rnd = 0.999999;
    return (uint64_t)(rnd * (double)cap);
}
