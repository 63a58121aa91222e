/* log_filter.c - record conditions for `qshim-log filter` (see log_filter.h).
 * SPDX-License-Identifier: MIT
 */
#include "log_filter.h"

#include <fnmatch.h>
#include <string.h>

/* 1 when the list item <item> (<n> bytes) matches <status> (0 = none). */
static int status_item(const char *item, size_t n, int status)
{
    if (n == 1 && item[0] == '-')
        return status == 0;
    if (n != 3 || item[0] < '1' || item[0] > '9')
        return -1;
    if ((item[1] == 'x' || item[1] == 'X') && (item[2] == 'x' || item[2] == 'X'))
        return status / 100 == item[0] - '0';
    if (item[1] < '0' || item[1] > '9' || item[2] < '0' || item[2] > '9')
        return -1;
    return status == (item[0] - '0') * 100 + (item[1] - '0') * 10 + (item[2] - '0');
}

/* 1 when one item of the comma list <list> matches <status>, 0 when none, -1 when an
 * item is not valid. */
static int any_status(const char *list, int status)
{
    int hit = 0;
    for (const char *p = list;; p++) {
        size_t n = strcspn(p, ",");
        int m = status_item(p, n, status);
        if (m < 0)
            return -1;
        hit |= m;
        p += n;
        if (*p == '\0')
            return hit;
    }
}

static int any_word(const char *list, const char *word)
{
    size_t wl = strlen(word);
    for (const char *p = list;; p++) {
        size_t n = strcspn(p, ",");
        if (n == wl && strncmp(p, word, n) == 0)
            return 1;
        p += n;
        if (*p == '\0')
            return 0;
    }
}

int qs_log_filter_status_valid(const char *status) { return any_status(status, 0) < 0 ? -1 : 0; }

int qs_log_filter_match(const struct qs_log_filter *f, const struct qs_log_rec *r)
{
    if (f->model && (r->model[0] == '\0' || fnmatch(f->model, r->model, 0) != 0))
        return 0;
    if (f->prog && (r->prog[0] == '\0' || fnmatch(f->prog, r->prog, 0) != 0))
        return 0;
    if (f->event && !any_word(f->event, r->event))
        return 0;
    if (f->status && any_status(f->status, r->status) != 1)
        return 0;
    if (f->has_since && (r->ts_ms < 0 || r->ts_ms < f->since_ms))
        return 0;
    if (f->has_until && (r->ts_ms < 0 || r->ts_ms >= f->until_ms))
        return 0;
    return 1;
}
