/* log_time.c - audit log timestamps and --since/--until arguments (see log_time.h).
 *
 * Civil dates are converted by arithmetic (days_from_civil and its inverse, H. Hinnant's
 * public-domain algorithms), not timegm/gmtime_r, so that the result never depends on
 * the process's TZ and a year like 1969 or 2100 behaves like any other.
 * SPDX-License-Identifier: MIT
 */
#include "log_time.h"

#include <stdio.h>
#include <string.h>

#define DAY_MS 86400000LL

/* Days since 1970-01-01 of the proleptic Gregorian y-m-d. */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int)(yoe + era * 400 + (*m <= 2));
}

/* Exactly <n> digits at *<p> into *<v>; advances *<p>. */
static int digits(const char **p, int n, int *v)
{
    *v = 0;
    for (int i = 0; i < n; i++) {
        if ((*p)[i] < '0' || (*p)[i] > '9')
            return -1;
        *v = *v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    return 0;
}

static int days_in_month(int y, int m)
{
    static const int dm[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : dm[m - 1];
}

int qs_log_parse_iso(const char *s, int64_t *ms)
{
    const char *p = s;
    int y, mo, d, h = 0, mi = 0, sec = 0, frac = 0, oh = 0, om = 0, sign = 0;

    if (digits(&p, 4, &y) || *p++ != '-' || digits(&p, 2, &mo) || *p++ != '-' || digits(&p, 2, &d))
        return -1;
    if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo))
        return -1;
    if (*p == 'T' || *p == 't' || *p == ' ') {
        p++;
        if (digits(&p, 2, &h) || *p++ != ':' || digits(&p, 2, &mi))
            return -1;
        if (*p == ':') {
            p++;
            if (digits(&p, 2, &sec))
                return -1;
            if (*p == '.' || *p == ',') {
                int scale = 100, n = 0;
                for (p++; *p >= '0' && *p <= '9'; p++, n++) {
                    frac += (*p - '0') * scale;
                    scale /= 10;
                }
                if (n == 0)
                    return -1;
            }
        }
        if (h > 23 || mi > 59 || sec > 60) /* 60: a leap second, counted as the next one */
            return -1;
    }
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        sign = *p++ == '-' ? -1 : 1;
        if (digits(&p, 2, &oh))
            return -1;
        if (*p == ':')
            p++;
        if (*p != '\0' && digits(&p, 2, &om))
            return -1;
        if (oh > 23 || om > 59)
            return -1;
    }
    if (*p != '\0')
        return -1;
    *ms = days_from_civil(y, (unsigned)mo, (unsigned)d) * DAY_MS +
          ((int64_t)h * 3600 + mi * 60 + sec) * 1000 + frac -
          (int64_t)sign * ((int64_t)oh * 3600 + om * 60) * 1000;
    return 0;
}

int qs_log_parse_when(const char *s, int64_t now_ms, int64_t *ms)
{
    int64_t n = 0, unit;
    const char *p = s;

    if (strcmp(s, "now") == 0) {
        *ms = now_ms;
        return 0;
    }
    if (qs_log_parse_iso(s, ms) == 0)
        return 0;
    if (*p < '0' || *p > '9')
        return -1;
    for (; *p >= '0' && *p <= '9'; p++) {
        n = n * 10 + (*p - '0');
        if (n > 100000000) /* over 3 years in seconds: surely a typo */
            return -1;
    }
    switch (*p) {
    case 's':
        unit = 1000;
        break;
    case 'm':
        unit = 60000;
        break;
    case 'h':
        unit = 3600000;
        break;
    case 'd':
        unit = DAY_MS;
        break;
    default:
        return -1;
    }
    if (p[1] != '\0')
        return -1;
    *ms = now_ms - n * unit;
    return 0;
}

void qs_log_fmt_ts(int64_t ms, enum qs_log_ts_style style, char *out, size_t len)
{
    int64_t day = ms >= 0 ? ms / DAY_MS : -((-ms + DAY_MS - 1) / DAY_MS);
    int64_t in = ms - day * DAY_MS;
    int y;
    unsigned m, d;
    int hh = (int)(in / 3600000), mm = (int)(in / 60000 % 60), ss = (int)(in / 1000 % 60);
    int frac = (int)(in % 1000);

    civil_from_days(day, &y, &m, &d);
    switch (style) {
    case QS_TS_ISO:
        snprintf(out, len, "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ", y, m, d, hh, mm, ss, frac);
        break;
    case QS_TS_HUMAN:
        snprintf(out, len, "%04d-%02u-%02u %02d:%02d:%02d.%03d", y, m, d, hh, mm, ss, frac);
        break;
    case QS_TS_HMS:
        snprintf(out, len, "%02d:%02d:%02d", hh, mm, ss);
        break;
    case QS_TS_HM:
        snprintf(out, len, "%02d:%02d", hh, mm);
        break;
    }
}
