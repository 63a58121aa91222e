/* test_log_time.c - unit tests for tools/log_time.c: the audit log's timestamps read and
 * written back, the shorter forms and relative spans --since/--until accept, and the
 * calendar arithmetic around leap days and before 1970.
 * SPDX-License-Identifier: MIT
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "log_time.h"

#define WALL_MS 1795457045123LL /* 2026-11-23T18:04:05.123Z, as test_audit.c has it */

static int64_t iso(const char *s)
{
    int64_t ms = 42;
    assert_int_equal(qs_log_parse_iso(s, &ms), 0);
    return ms;
}

static void bad_iso(const char *s)
{
    int64_t ms = 42;
    if (qs_log_parse_iso(s, &ms) != -1)
        fail_msg("'%s' was accepted as %lld", s, (long long)ms);
    assert_int_equal(ms, 42); /* untouched */
}

/* The log's own form, as shim/audit.c writes it, and the forms a person types. */
static void test_iso_forms(void **state)
{
    (void)state;
    assert_int_equal(iso("2026-11-23T18:04:05.123Z"), WALL_MS);
    assert_int_equal(iso("2026-11-23t18:04:05.123z"), WALL_MS);
    assert_int_equal(iso("2026-11-23T18:04:05.123"), WALL_MS);     /* no zone: UTC */
    assert_int_equal(iso("2026-11-23 18:04:05.123"), WALL_MS);     /* tail's form */
    assert_int_equal(iso("2026-11-23T18:04:05.123456Z"), WALL_MS); /* beyond ms: cut */
    assert_int_equal(iso("2026-11-23T18:04:05.1Z"), WALL_MS - 23);
    assert_int_equal(iso("2026-11-23T18:04:05Z"), WALL_MS - 123);
    assert_int_equal(iso("2026-11-23T18:04"), WALL_MS - 5123);
    assert_int_equal(iso("2026-11-23"), WALL_MS - (18 * 3600 + 4 * 60 + 5) * 1000LL - 123);
    /* zones: 02:04:05+08:00 is 18:04:05 the day before in UTC */
    assert_int_equal(iso("2026-11-24T02:04:05.123+08:00"), WALL_MS);
    assert_int_equal(iso("2026-11-24T02:04:05.123+0800"), WALL_MS);
    assert_int_equal(iso("2026-11-23T16:34:05.123-01:30"), WALL_MS);
    assert_int_equal(iso("2026-11-24T02:04:05.123+08"), WALL_MS);
}

static void test_iso_calendar(void **state)
{
    (void)state;
    assert_int_equal(iso("1970-01-01T00:00:00.000Z"), 0);
    assert_int_equal(iso("1969-12-31T23:59:59.999Z"), -1);
    assert_int_equal(iso("2000-03-01T00:00:00Z") - iso("2000-02-28T00:00:00Z"),
                     2 * 86400000LL);                                                        /* 2000 leap */
    assert_int_equal(iso("2100-03-01T00:00:00Z") - iso("2100-02-28T00:00:00Z"), 86400000LL); /* 2100 not */
    assert_int_equal(iso("2024-02-29"), 1709164800000LL);
    assert_int_equal(iso("2016-12-31T23:59:60Z"), iso("2017-01-01T00:00:00Z")); /* a leap second */
}

static void test_iso_rejects(void **state)
{
    (void)state;
    bad_iso("");
    bad_iso("garbage");
    bad_iso("2026-11-2");
    bad_iso("26-11-23");
    bad_iso("2026/11/23");
    bad_iso("2026-13-01");
    bad_iso("2026-00-10");
    bad_iso("2026-02-29"); /* 2026 is not a leap year */
    bad_iso("2026-04-31");
    bad_iso("2026-11-23T24:00");
    bad_iso("2026-11-23T18:60");
    bad_iso("2026-11-23T18");
    bad_iso("2026-11-23T18:04:05.Z");
    bad_iso("2026-11-23T18:04:05Zjunk");
    bad_iso("2026-11-23T18:04:05+25:00");
    bad_iso("2026-11-23 ");
}

static void test_when(void **state)
{
    int64_t ms;
    (void)state;
    assert_int_equal(qs_log_parse_when("now", WALL_MS, &ms), 0);
    assert_int_equal(ms, WALL_MS);
    assert_int_equal(qs_log_parse_when("90s", WALL_MS, &ms), 0);
    assert_int_equal(ms, WALL_MS - 90000);
    assert_int_equal(qs_log_parse_when("10m", WALL_MS, &ms), 0);
    assert_int_equal(ms, WALL_MS - 600000);
    assert_int_equal(qs_log_parse_when("2h", WALL_MS, &ms), 0);
    assert_int_equal(ms, WALL_MS - 7200000);
    assert_int_equal(qs_log_parse_when("1d", WALL_MS, &ms), 0);
    assert_int_equal(ms, WALL_MS - 86400000);
    assert_int_equal(qs_log_parse_when("0m", WALL_MS, &ms), 0);
    assert_int_equal(ms, WALL_MS);
    assert_int_equal(qs_log_parse_when("2026-11-23T18:04:05.123Z", 0, &ms), 0); /* absolute: now unused */
    assert_int_equal(ms, WALL_MS);
    assert_int_equal(qs_log_parse_when("10x", WALL_MS, &ms), -1);
    assert_int_equal(qs_log_parse_when("m", WALL_MS, &ms), -1);
    assert_int_equal(qs_log_parse_when("-5m", WALL_MS, &ms), -1);
    assert_int_equal(qs_log_parse_when("10m5", WALL_MS, &ms), -1);
    assert_int_equal(qs_log_parse_when("", WALL_MS, &ms), -1);
    assert_int_equal(qs_log_parse_when("99999999999s", WALL_MS, &ms), -1); /* would overflow into nonsense */
}

static void test_format(void **state)
{
    char out[32];
    (void)state;
    qs_log_fmt_ts(WALL_MS, QS_TS_ISO, out, sizeof out);
    assert_string_equal(out, "2026-11-23T18:04:05.123Z");
    qs_log_fmt_ts(WALL_MS, QS_TS_HUMAN, out, sizeof out);
    assert_string_equal(out, "2026-11-23 18:04:05.123");
    qs_log_fmt_ts(WALL_MS, QS_TS_HMS, out, sizeof out);
    assert_string_equal(out, "18:04:05");
    qs_log_fmt_ts(WALL_MS, QS_TS_HM, out, sizeof out);
    assert_string_equal(out, "18:04");
    qs_log_fmt_ts(-1, QS_TS_ISO, out, sizeof out);
    assert_string_equal(out, "1969-12-31T23:59:59.999Z");
    qs_log_fmt_ts(1709208000000LL, QS_TS_ISO, out, sizeof out);
    assert_string_equal(out, "2024-02-29T12:00:00.000Z");
    qs_log_fmt_ts(WALL_MS, QS_TS_ISO, out, 11); /* cut, still terminated */
    assert_string_equal(out, "2026-11-23");
}

/* Written and read back, every 37th day over three centuries lands where it started. */
static void test_round_trip(void **state)
{
    char out[32];
    (void)state;
    for (int64_t day = -36500; day < 73000; day += 37) {
        int64_t ms = day * 86400000LL + (day * 7919 % 86400000 + 86400000) % 86400000, back = 0;
        qs_log_fmt_ts(ms, QS_TS_ISO, out, sizeof out);
        assert_int_equal(qs_log_parse_iso(out, &back), 0);
        assert_int_equal(back, ms);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_iso_forms),   cmocka_unit_test(test_iso_calendar),
        cmocka_unit_test(test_iso_rejects), cmocka_unit_test(test_when),
        cmocka_unit_test(test_format),      cmocka_unit_test(test_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
