/* test_retry.c - unit tests for shim/retry.c: which answers are throttles to hide (SPEC §6
 * table and its "never retried" list) and how long to wait before a replay.
 *
 * Codes and messages are the documented ones (research/dashscope-wire.md §3.2, §3.3), in
 * native and compatible form. Delays are checked exactly: the random draw is passed in.
 * SPDX-License-Identifier: MIT
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <limits.h>
#include <stdio.h>

#include "retry.h"

/* One answer and the verdict SPEC §6 gives it. */
struct verdict {
    int status;
    const char *code, *message;
    int throttle;
};

static void check_verdicts(const struct verdict *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int got = qs_retry_is_throttle(v[i].status, v[i].code, v[i].message);
        if (got != v[i].throttle)
            fail_msg("status %d code \"%s\" message \"%s\": throttle %d, want %d", v[i].status,
                     v[i].code ? v[i].code : "(null)", v[i].message ? v[i].message : "(null)", got,
                     v[i].throttle);
    }
}

#define CHECK_VERDICTS(table) check_verdicts(table, sizeof table / sizeof table[0])

static void test_retryable_rows(void **state)
{
    (void)state;
    /* Assumption: every 429 row of the SPEC §6 table is hidden and replayed, whether the
     * code is the native or the compatible one, with the documented messages. */
    static const struct verdict rows[] = {
        /* RPM/RPS */
        {429, "Throttling.RateQuota", "Requests rate limit exceeded, please try again later.", 1},
        {429, "limit_requests",
         "You have exceeded your current request limit. For details, see: "
         "https://help.aliyun.com/zh/model-studio/error-code#rate-limit",
         1},
        {429, "limit_requests", "You exceeded your current requests list.", 1},
        {429, "LimitRequests", "You have exceeded your request limit.", 1},
        /* TPM/TPS: insufficient_quota is transient here, although OpenAI uses it for billing */
        {429, "Throttling.AllocationQuota", "Allocated quota exceeded, please increase your quota limit.", 1},
        {429, "insufficient_quota",
         "You exceeded your current quota, please check your plan and billing details. For details, see: "
         "https://help.aliyun.com/zh/model-studio/error-code#token-limit",
         1},
        {429, "insufficient_quota", "Allocated quota exceeded, please increase your quota limit.", 1},
        /* burst protection */
        {429, "Throttling.BurstRate", "Request rate increased too quickly. To ensure system stability, ...",
         1},
        {429, "limit_burst_rate", "Request rate increased too quickly.", 1},
        /* generic */
        {429, "Throttling", "Requests throttling triggered.", 1},
        {429, "Throttling", "Too many requests in route. Please try again later.", 1},
        {429, "Throttling.AllocationQuota",
         "Too many requests. Batch requests are being throttled due to system capacity limits.", 1},
    };
    CHECK_VERDICTS(rows);
}

static void test_capacity_rows(void **state)
{
    (void)state;
    /* Assumption: 500 and 503 with ModelServingError or ModelUnavailable are capacity errors,
     * hidden and replayed like throttles. */
    static const struct verdict rows[] = {
        {500, "ModelServingError",
         "Too many requests. Your requests are being throttled due to system capacity limits.", 1},
        {503, "ModelServingError",
         "Too many requests. Your requests are being throttled due to system capacity limits.", 1},
        {503, "ModelUnavailable", "Model is unavailable, try again later.", 1},
        {500, "ModelUnavailable", "Model is unavailable, try again later.", 1},
        /* other 5xx codes are not in the table: the program sees them */
        {500, "InternalError", "An internal error has occured, try again later or contact service support.",
         0},
        {500, "internal_error", "An internal error has occured.", 0},
        {500, "", "", 0},
        {503, NULL, NULL, 0},
        {502, "ModelServingError", "Too many requests.", 0},
        {503, "Throttling", "Requests throttling triggered.", 0},
    };
    CHECK_VERDICTS(rows);
}

static void test_bare_429(void **state)
{
    (void)state;
    /* Assumption: a 429 without a code (a gateway's bare "Too many requests", or a body that
     * is not JSON) is a throttle, whether the code is "" or NULL, with or without message. */
    static const struct verdict rows[] = {
        {429, "", "", 1},
        {429, NULL, NULL, 1},
        {429, "", "Too many requests", 1},
        {429, NULL, "Too Many Requests", 1},
    };
    CHECK_VERDICTS(rows);
}

static void test_never_retried(void **state)
{
    (void)state;
    /* Assumption: the SPEC §6 "never retried" list reaches the program unchanged: the free
     * quota message under any code (even a throttling one, native or compatible, and with
     * the doc link after it), billing codes on a 429, 403 FreeTierOnly, 400 Arrearage, the
     * 400 voice-clone Throttling.AllocationQuota, and every other 4xx. */
    static const struct verdict rows[] = {
        {429, "Throttling.AllocationQuota", "Free allocated quota exceeded.", 0},
        {429, "insufficient_quota", "Free allocated quota exceeded.", 0},
        {429, "insufficient_quota",
         "Free allocated quota exceeded. For details, see: https://help.aliyun.com/", 0},
        {429, "Throttling", "Free allocated quota exceeded.", 0},
        {429, "", "Free allocated quota exceeded.", 0},
        {429, NULL, "Free allocated quota exceeded.", 0},
        {429, "CommodityNotPurchased", "Commodity has not purchased yet.", 0},
        {429, "PrepaidBillOverdue", "The prepaid bill is overdue.", 0},
        {429, "PostpaidBillOverdue", "The postpaid bill is overdue.", 0},
        {429, "QuotaExhausted", "Your token-plan 1-week quota has been exhausted.", 0},
        {429, "SomethingNew", "Too many requests", 0},
        {403, "AllocationQuota.FreeTierOnly",
         "The free tier of the model has been exhausted. If you wish to continue access the model on a paid "
         "basis, please disable the \"use free tier only\" mode in the management console.",
         0},
        {400, "Arrearage", "Access denied, please make sure your account is in good standing.", 0},
        {400, "Throttling.AllocationQuota", "Your current quota is 1000", 0},
        {400, "Throttling.AllocationQuota", "Free allocated quota exceeded.", 0},
        {400, "InvalidParameter", "Role must be user or assistant", 0},
        {401, "InvalidApiKey", "Invalid API-key provided.", 0},
        {403, "Throttling", "", 0},
        {404, "", "", 0},
        {408, NULL, NULL, 0},
        {413, "", "", 0},
        {400, "limit_requests", "You exceeded your current requests list.", 0},
    };
    CHECK_VERDICTS(rows);
}

static void test_success_never_throttle(void **state)
{
    (void)state;
    /* Assumption: a success is never a throttle, whatever a stray code says (the status of
     * a native stream's error event is what makes it one, see test_conn). */
    static const struct verdict rows[] = {
        {200, "", "", 0},
        {200, NULL, NULL, 0},
        {200, "Throttling.RateQuota", "Requests rate limit exceeded", 0},
        {204, "limit_requests", "", 0},
        {0, "Throttling", "", 0},
    };
    CHECK_VERDICTS(rows);
}

static void test_may_throttle(void **state)
{
    (void)state;
    /* Assumption: only 429, 500 and 503 can be throttles, so only their bodies must be read
     * before release; a 200 stream is decided by its first event elsewhere. */
    assert_true(qs_retry_may_throttle(429));
    assert_true(qs_retry_may_throttle(500));
    assert_true(qs_retry_may_throttle(503));
    static const int never[] = {0, 100, 200, 204, 301, 400, 401, 403, 404, 428, 430, 499, 501, 502, 504, 599};
    for (size_t i = 0; i < sizeof never / sizeof never[0]; i++)
        if (qs_retry_may_throttle(never[i]))
            fail_msg("status %d may be a throttle", never[i]);
    /* Assumption: whatever may_throttle rejects, is_throttle rejects too (no throttle is
     * ever released before it could be recognised). */
    static const char *const codes[] = {"", "Throttling", "ModelServingError", "limit_requests"};
    for (int st = 100; st < 600; st++)
        for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
            if (!qs_retry_may_throttle(st) && qs_retry_is_throttle(st, codes[i], ""))
                fail_msg("status %d code %s is a throttle that may_throttle misses", st, codes[i]);
}

static void test_delay_retry_after_wins(void **state)
{
    (void)state;
    /* Assumption: a server-given delay is used as is, whatever the attempt, the draw, and
     * even above max_ms (the server knows best); 0 means "now". */
    assert_int_equal(qs_retry_delay_ms(1, 1500, 1000, 30000, 0.5), 1500);
    assert_int_equal(qs_retry_delay_ms(7, 0, 1000, 30000, 0.999999), 0);
    assert_int_equal(qs_retry_delay_ms(1, 60000, 1000, 30000, 0.0), 60000);
    assert_int_equal(qs_retry_delay_ms(1000, 2, 0, 0, 0.3), 2);
    /* Assumption: -1 means "none given": backoff applies. */
    assert_int_equal(qs_retry_delay_ms(1, -1, 1000, 30000, 0.5), 500);
}

static void test_delay_full_jitter_bounds(void **state)
{
    (void)state;
    /* Assumption: retry n waits rnd * min(max_ms, base_ms * 2^(n-1)): with base 1000 and
     * max 30000 the caps are 1000, 2000, 4000, 8000, 16000, then 30000; rnd 0 gives 0 and
     * rnd 0.999999 gives the largest value below the cap (cap - 1 for these caps). */
    static const uint64_t cap[] = {1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000, 30000, 30000};
    for (int a = 1; a <= 10; a++) {
        uint64_t lo = qs_retry_delay_ms(a, -1, 1000, 30000, 0.0);
        uint64_t hi = qs_retry_delay_ms(a, -1, 1000, 30000, 0.999999);
        if (lo != 0 || hi != cap[a - 1] - 1)
            fail_msg("attempt %d: [%llu, %llu], want [0, %llu]", a, (unsigned long long)lo,
                     (unsigned long long)hi, (unsigned long long)cap[a - 1] - 1);
        /* the midpoint is half the cap */
        assert_int_equal(qs_retry_delay_ms(a, -1, 1000, 30000, 0.5), cap[a - 1] / 2);
    }
}

static void test_delay_cap(void **state)
{
    (void)state;
    /* Assumption: the cap is max_ms even when base_ms alone exceeds it, and a max that is
     * not base * 2^k is hit exactly. */
    assert_int_equal(qs_retry_delay_ms(1, -1, 5000, 3000, 0.5), 1500);
    assert_int_equal(qs_retry_delay_ms(3, -1, 1000, 3000, 0.5), 1500);
    assert_int_equal(qs_retry_delay_ms(2, -1, 1000, 3000, 0.5), 1000);
    assert_true(qs_retry_delay_ms(30, -1, 1000, 3000, 0.999999) < 3000);
    /* Assumption: a draw out of [0, 1) is clamped into it, never past the cap. */
    assert_int_equal(qs_retry_delay_ms(1, -1, 1000, 30000, -0.5), 0);
    assert_true(qs_retry_delay_ms(1, -1, 1000, 30000, 1.0) < 1000);
    assert_true(qs_retry_delay_ms(1, -1, 1000, 30000, 7.0) < 1000);
}

static void test_delay_no_overflow(void **state)
{
    (void)state;
    /* Assumption: attempt 1000 (2^999 times base) does not overflow: it is the cap, also
     * with the largest max_ms a long can hold. */
    assert_int_equal(qs_retry_delay_ms(1000, -1, 1000, 30000, 0.5), 15000);
    assert_int_equal(qs_retry_delay_ms(1000, -1, 1000, 30000, 0.999999), 29999);
    assert_true(qs_retry_delay_ms(1000, -1, 1000, 30000, 0.0) == 0);
    uint64_t big = qs_retry_delay_ms(1000, -1, 1000, LONG_MAX, 0.5);
    assert_true(big > 0 && big <= (uint64_t)LONG_MAX / 2 + 1);
    assert_true(qs_retry_delay_ms(1000, -1, 1000, LONG_MAX, 0.999999) <= (uint64_t)LONG_MAX);
    /* Assumption: attempt 0 or below is taken as the first retry. */
    assert_int_equal(qs_retry_delay_ms(0, -1, 1000, 30000, 0.5), 500);
    assert_int_equal(qs_retry_delay_ms(-5, -1, 1000, 30000, 0.5), 500);
}

static void test_delay_base_zero(void **state)
{
    (void)state;
    /* Assumption: base_ms 0 (or negative) means no backoff wait at all, at any attempt. */
    for (int a = 1; a <= 10; a++)
        assert_int_equal(qs_retry_delay_ms(a, -1, 0, 30000, 0.999999), 0);
    assert_int_equal(qs_retry_delay_ms(1000, -1, 0, 30000, 0.999999), 0);
    assert_int_equal(qs_retry_delay_ms(3, -1, -100, 30000, 0.999999), 0);
    /* Assumption: max_ms 0 also means no wait. */
    assert_int_equal(qs_retry_delay_ms(3, -1, 1000, 0, 0.999999), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_retryable_rows),
        cmocka_unit_test(test_capacity_rows),
        cmocka_unit_test(test_bare_429),
        cmocka_unit_test(test_never_retried),
        cmocka_unit_test(test_success_never_throttle),
        cmocka_unit_test(test_may_throttle),
        cmocka_unit_test(test_delay_retry_after_wins),
        cmocka_unit_test(test_delay_full_jitter_bounds),
        cmocka_unit_test(test_delay_cap),
        cmocka_unit_test(test_delay_no_overflow),
        cmocka_unit_test(test_delay_base_zero),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
