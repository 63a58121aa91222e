/* http.c - HTTP/1.1 message heads and body framing, with no I/O, allocation or globals.
 *
 * Heads are parsed whole, picohttpparser style: the caller re-parses its growing
 * buffer until the answer is not QS_PARTIAL, and every output points into that
 * buffer. Parsing is line by line, so a line is judged only once its LF is buffered,
 * and a malformed line makes every longer prefix QS_EBAD too. Lines may end in CR LF
 * or a bare LF (as picohttpparser accepts); any other control byte is rejected.
 * Bodies go through a resumable decoder that hands out payload spans inside the
 * caller's buffer and never writes to it: in the shim that buffer is the program's
 * own data on its way to or from OpenSSL.
 *
 * Wire facts this relies on (research/dashscope-wire.md §3.4, §4.2, §6): DashScope
 * answers with lower-case header names, "transfer-encoding: chunked" (often with
 * "content-encoding: gzip", which is not framing and is left to the caller) and
 * "content-type: text/event-stream;charset=UTF-8" for streams; no Retry-After has
 * been captured on its 429s, but retry-after-ms / Retry-After are honoured as the
 * OpenAI SDK does. The SDKs send Content-Length bodies and, for native streams,
 * "X-DashScope-SSE: enable".
 * SPDX-License-Identifier: MIT
 */
#include "http.h"

#include <limits.h>
#include <string.h>

/* ---- characters and comma lists ---- */

/* tchar of RFC 9110 §5.6.2: what method and header names are made of. */
static int qs_is_tchar(unsigned char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return 1;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Control bytes other than HTAB; obs-text (0x80-0xff) is allowed, as in picohttpparser. */
static int qs_is_ctl(unsigned char c) { return (c < 0x20 && c != '\t') || c == 0x7f; }

static int qs_is_blank(char c) { return c == ' ' || c == '\t'; }

/* ASCII only: tolower() would follow the host program's locale (Turkish 'I'). */
static unsigned char qs_lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c - 'A' + 'a') : c;
}

/* Case-insensitive comparison of the first <n> bytes of <a> with the first <n> of <b>. */
static int qs_ieq_n(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (qs_lower((unsigned char)a[i]) != qs_lower((unsigned char)b[i]))
            return 0;
    return 1;
}

/* Whether [s, s + n) equals the NUL-terminated <word>, ignoring ASCII case. */
static int qs_ieq(const char *s, size_t n, const char *word)
{
    return strlen(word) == n && qs_ieq_n(s, word, n);
}

/* Takes the next element of the comma-separated list in [*p, end): on success
 * [*elem, *elem + *elem_len) is the element without surrounding blanks, *p moves past
 * it and its comma, and 1 is returned. Empty elements ("a, ,b") are skipped, as RFC
 * 9110 §5.6.1 asks of recipients. Returns 0 when the list is used up. */
static int qs_next_elem(const char **p, const char *end, const char **elem, size_t *elem_len)
{
    while (*p < end) {
        const char *s = *p;
        const char *comma = memchr(s, ',', (size_t)(end - s));
        const char *e = comma != NULL ? comma : end;
        *p = comma != NULL ? comma + 1 : end;
        while (s < e && qs_is_blank(*s))
            s++;
        while (e > s && qs_is_blank(e[-1]))
            e--;
        if (e > s) {
            *elem = s;
            *elem_len = (size_t)(e - s);
            return 1;
        }
    }
    return 0;
}

/* Whether any header named <name> lists <token> (case-insensitive). */
static int qs_has_token(const struct qs_http_header *h, size_t n, const char *name, const char *token)
{
    for (size_t i = 0; i < n; i++) {
        if (!qs_ieq(h[i].name, h[i].name_len, name))
            continue;
        const char *p = h[i].value, *end = h[i].value + h[i].value_len, *e;
        size_t elen;
        while (qs_next_elem(&p, end, &e, &elen))
            if (qs_ieq(e, elen, token))
                return 1;
    }
    return 0;
}

const struct qs_http_header *qs_http_find_header(const struct qs_http_header *h, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (qs_ieq(h[i].name, h[i].name_len, name))
            return &h[i];
    return NULL;
}

/* ---- lines of a head ---- */

/* Takes the line that starts at *p: on success [*line, *line + *line_len) is its text
 * without the LF or CR LF, *p moves past the LF and 0 is returned. Returns QS_PARTIAL
 * while no LF is buffered. A CR anywhere else stays in the line, where the callers
 * reject it as a control byte. */
static int qs_next_line(const char **p, const char *end, const char **line, size_t *line_len)
{
    const char *lf = memchr(*p, '\n', (size_t)(end - *p));
    if (lf == NULL)
        return QS_PARTIAL;
    size_t n = (size_t)(lf - *p);
    if (n > 0 && (*p)[n - 1] == '\r')
        n--;
    *line = *p;
    *line_len = n;
    *p = lf + 1;
    return 0;
}

/* "HTTP/1.0" or "HTTP/1.1", exactly <n> bytes; *minor gets the minor version. */
static int qs_parse_version(const char *s, size_t n, int *minor)
{
    if (n != 8 || memcmp(s, "HTTP/1.", 7) != 0 || (s[7] != '0' && s[7] != '1'))
        return QS_EBAD;
    *minor = s[7] - '0';
    return 0;
}

/* method SP request-target SP HTTP-version. Runs of SP are tolerated between the
 * parts, as picohttpparser does; the target may be origin- or absolute-form. */
static int qs_parse_request_line(const char *s, size_t n, struct qs_http_request *req)
{
    size_t i = 0;
    while (i < n && qs_is_tchar((unsigned char)s[i]))
        i++;
    if (i == 0 || i == n || s[i] != ' ')
        return QS_EBAD;
    req->method = s;
    req->method_len = i;
    while (i < n && s[i] == ' ')
        i++;
    size_t start = i;
    while (i < n && s[i] != ' ') {
        unsigned char c = (unsigned char)s[i++];
        if (c < 0x20 || c == 0x7f)
            return QS_EBAD;
    }
    if (i == start || i == n)
        return QS_EBAD;
    req->path = s + start;
    req->path_len = i - start;
    while (i < n && s[i] == ' ')
        i++;
    return qs_parse_version(s + i, n - i, &req->minor_version);
}

/* HTTP-version SP 3DIGIT [SP reason-phrase]; "HTTP/1.1 200" alone is accepted. */
static int qs_parse_status_line(const char *s, size_t n, struct qs_http_response *resp)
{
    if (n < 12 || qs_parse_version(s, 8, &resp->minor_version) != 0 || s[8] != ' ')
        return QS_EBAD;
    size_t i = 8;
    while (i < n && s[i] == ' ')
        i++;
    int status = 0;
    for (int k = 0; k < 3; k++, i++) {
        if (i == n || s[i] < '0' || s[i] > '9')
            return QS_EBAD;
        status = status * 10 + (s[i] - '0');
    }
    if (status < 100 || (i < n && s[i] != ' '))
        return QS_EBAD;
    while (i < n && s[i] == ' ')
        i++;
    for (size_t k = i; k < n; k++)
        if (qs_is_ctl((unsigned char)s[k]))
            return QS_EBAD;
    resp->status = status;
    resp->reason = s + i;
    resp->reason_len = n - i;
    return 0;
}

/* field-name ":" OWS field-value OWS. A blank before the colon and obs-fold
 * continuation lines (leading blank) are rejected, as RFC 9112 §5.1/§5.2 allow. */
static int qs_parse_header(const char *s, size_t n, struct qs_http_header *h)
{
    size_t i = 0;
    while (i < n && qs_is_tchar((unsigned char)s[i]))
        i++;
    if (i == 0 || i == n || s[i] != ':')
        return QS_EBAD;
    h->name = s;
    h->name_len = i++;
    while (i < n && qs_is_blank(s[i]))
        i++;
    size_t end = n;
    while (end > i && qs_is_blank(s[end - 1]))
        end--;
    for (size_t k = i; k < end; k++)
        if (qs_is_ctl((unsigned char)s[k]))
            return QS_EBAD;
    h->value = s + i;
    h->value_len = end - i;
    return 0;
}

/* Parses header lines from *p up to and including the blank line that ends the head.
 * Returns 0 with *p just past the head, QS_PARTIAL, or QS_EBAD (bad line, or more
 * than QS_HTTP_MAX_HEADERS headers). */
static int qs_parse_headers(const char **p, const char *end, struct qs_http_header *h, size_t *num)
{
    for (;;) {
        const char *line;
        size_t n;
        int rc = qs_next_line(p, end, &line, &n);
        if (rc != 0)
            return rc;
        if (n == 0)
            return 0;
        if (*num == QS_HTTP_MAX_HEADERS || qs_parse_header(line, n, &h[*num]) != 0)
            return QS_EBAD;
        (*num)++;
    }
}

/* ---- framing facts ---- */

/* What the Transfer-Encoding and Content-Length headers say. */
struct qs_framing {
    int te;          /* a Transfer-Encoding header is present */
    int te_chunked;  /* ... and chunked is its last coding, applied once */
    int has_length;  /* a Content-Length header is present */
    uint64_t length; /* ... and its value */
};

/* Parses 1*DIGIT into *v; 0 on success, QS_EBAD on anything else or overflow. */
static int qs_parse_u64(const char *s, size_t n, uint64_t *v)
{
    uint64_t x = 0;
    if (n == 0)
        return QS_EBAD;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return QS_EBAD;
        unsigned d = (unsigned)(s[i] - '0');
        if (x > (UINT64_MAX - d) / 10)
            return QS_EBAD;
        x = x * 10 + d;
    }
    *v = x;
    return 0;
}

/* Collects the framing headers. Transfer-Encoding may be split over several header
 * lines, which form one list; chunked counts only as the last coding and only once.
 * Content-Length may repeat (also as "5, 5") if every value is the same (RFC 9110
 * §8.6); differing or unparsable values are QS_EBAD. A message with both is QS_EBAD,
 * for requests and responses alike: RFC 9112 §6.3 calls it a smuggling signal that
 * "ought to be handled as an error", and the shim then passes the connection through. */
static int qs_framing(const struct qs_http_header *h, size_t n, struct qs_framing *f)
{
    int chunked_seen = 0;
    memset(f, 0, sizeof(*f));
    for (size_t i = 0; i < n; i++) {
        const char *p = h[i].value, *end = h[i].value + h[i].value_len, *e;
        size_t elen;
        int any = 0;
        if (qs_ieq(h[i].name, h[i].name_len, "transfer-encoding")) {
            f->te = 1;
            while (qs_next_elem(&p, end, &e, &elen)) {
                int is_chunked = qs_ieq(e, elen, "chunked");
                f->te_chunked = is_chunked && !chunked_seen;
                chunked_seen |= is_chunked;
                any = 1;
            }
        } else if (qs_ieq(h[i].name, h[i].name_len, "content-length")) {
            while (qs_next_elem(&p, end, &e, &elen)) {
                uint64_t v;
                if (qs_parse_u64(e, elen, &v) != 0 || (f->has_length && v != f->length))
                    return QS_EBAD;
                f->has_length = 1;
                f->length = v;
                any = 1;
            }
        } else {
            continue;
        }
        if (!any)
            return QS_EBAD; /* an empty Transfer-Encoding or Content-Length */
    }
    return f->te && f->has_length ? QS_EBAD : 0;
}

/* Connection: close, or HTTP/1.0 without keep-alive (RFC 9112 §9.3). */
static int qs_conn_close(const struct qs_http_header *h, size_t n, int minor_version)
{
    if (qs_has_token(h, n, "connection", "close"))
        return 1;
    return minor_version == 0 && !qs_has_token(h, n, "connection", "keep-alive");
}

/* ---- Retry-After ---- */

/* Parses a non-negative decimal "1*DIGIT [. *DIGIT]" or ". 1*DIGIT" (the forms
 * Python's float() gives the OpenAI SDK for these headers) and returns it times
 * <scale> (1 or 1000), rounded up and saturated at INT64_MAX; -1 if [s, s + n) is not
 * such a number. Integer arithmetic: strtod wants a NUL and follows the locale. */
static int64_t qs_parse_decimal(const char *s, size_t n, int64_t scale)
{
    int64_t whole = 0, frac = 0, unit = scale;
    int digits = 0, sat = 0, round_up = 0;
    size_t i = 0;
    for (; i < n && s[i] >= '0' && s[i] <= '9'; i++, digits++) {
        int d = s[i] - '0';
        if (whole > (INT64_MAX - d) / 10)
            sat = 1;
        else
            whole = whole * 10 + d;
    }
    if (i < n && s[i] == '.') {
        /* The first digits fill the fraction of <scale>; any non-zero digit past them rounds up. */
        for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++, digits++) {
            int d = s[i] - '0';
            if (unit > 1) {
                unit /= 10;
                frac += d * unit;
            } else if (d != 0) {
                round_up = 1;
            }
        }
    }
    if (digits == 0 || i != n)
        return -1;
    if (sat || whole > (INT64_MAX - frac - round_up) / scale)
        return INT64_MAX;
    return whole * scale + frac + round_up;
}

/* A cursor over a header value, for the date parser. */
struct qs_cur {
    const char *p, *end;
};

static int qs_take(struct qs_cur *c, char ch)
{
    if (c->p == c->end || *c->p != ch)
        return 0;
    c->p++;
    return 1;
}

/* Exactly <n> digits into *v. */
static int qs_take_digits(struct qs_cur *c, int n, int *v)
{
    *v = 0;
    for (int i = 0; i < n; i++, c->p++) {
        if (c->p == c->end || *c->p < '0' || *c->p > '9')
            return 0;
        *v = *v * 10 + (*c->p - '0');
    }
    return 1;
}

/* "Jan".."Dec" into 1..12. RFC 9110 makes the names case-sensitive; accepting any case costs nothing. */
static int qs_take_month(struct qs_cur *c, int *mon)
{
    static const char names[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    if (c->end - c->p < 3)
        return 0;
    for (int m = 0; m < 12; m++) {
        if (qs_ieq_n(c->p, names + 3 * m, 3)) {
            c->p += 3;
            *mon = m + 1;
            return 1;
        }
    }
    return 0;
}

/* "HH:MM:SS" (ranges checked by the caller). */
static int qs_take_time(struct qs_cur *c, int *hh, int *mm, int *ss)
{
    return qs_take_digits(c, 2, hh) && qs_take(c, ':') && qs_take_digits(c, 2, mm) && qs_take(c, ':') &&
           qs_take_digits(c, 2, ss);
}

/* Days from 1970-01-01 to the given proleptic Gregorian date (H. Hinnant's
 * days_from_civil), so that no libc time function (timegm, TZ) is involved. */
static int64_t qs_days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int qs_days_in_month(int year, int mon)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    return days[mon - 1] + (mon == 2 && leap);
}

/* Parses an HTTP-date (RFC 9110 §5.6.7) into seconds since the epoch: IMF-fixdate
 * "Sun, 06 Nov 1994 08:49:37 GMT", and the obsolete forms recipients must also accept,
 * RFC 850 "Sunday, 06-Nov-94 08:49:37 GMT" and asctime "Sun Nov  6 08:49:37 1994".
 * The day name is not checked against the date. Returns 0, or -1 if malformed. */
static int qs_parse_http_date(const char *s, size_t n, int64_t *secs)
{
    struct qs_cur c = {s, s + n};
    int day, mon, year, hh, mm, ss;
    const char *name = c.p;
    while (c.p < c.end && qs_lower((unsigned char)*c.p) >= 'a' && qs_lower((unsigned char)*c.p) <= 'z')
        c.p++;
    if (c.p - name < 3)
        return -1;
    if (qs_take(&c, ',')) {
        if (!qs_take(&c, ' ') || !qs_take_digits(&c, 2, &day))
            return -1;
        if (qs_take(&c, ' ')) {
            if (!qs_take_month(&c, &mon) || !qs_take(&c, ' ') || !qs_take_digits(&c, 4, &year))
                return -1;
        } else {
            /* RFC 850's two-digit year: 70-99 is 19xx, the rest 20xx (the dates that matter are recent). */
            if (!qs_take(&c, '-') || !qs_take_month(&c, &mon) || !qs_take(&c, '-') ||
                !qs_take_digits(&c, 2, &year))
                return -1;
            year += year >= 70 ? 1900 : 2000;
        }
        if (!qs_take(&c, ' ') || !qs_take_time(&c, &hh, &mm, &ss) || !qs_take(&c, ' ') || !qs_take(&c, 'G') ||
            !qs_take(&c, 'M') || !qs_take(&c, 'T'))
            return -1;
    } else {
        /* asctime: the day of the month is padded with a space ("Nov  6"). */
        if (!qs_take(&c, ' ') || !qs_take_month(&c, &mon) || !qs_take(&c, ' '))
            return -1;
        if (qs_take(&c, ' ') ? !qs_take_digits(&c, 1, &day) : !qs_take_digits(&c, 2, &day))
            return -1;
        if (!qs_take(&c, ' ') || !qs_take_time(&c, &hh, &mm, &ss) || !qs_take(&c, ' ') ||
            !qs_take_digits(&c, 4, &year))
            return -1;
    }
    /* ss may be 60: a leap second is a valid time-of-day (RFC 9110 §5.6.7). */
    if (c.p != c.end || day < 1 || day > qs_days_in_month(year, mon) || hh > 23 || mm > 59 || ss > 60)
        return -1;
    *secs = qs_days_from_civil(year, mon, day) * 86400 + hh * 3600 + mm * 60 + ss;
    return 0;
}

/* The server's requested delay in ms: retry-after-ms (float ms), else Retry-After as
 * float seconds or as an HTTP-date taken relative to the response's own Date header
 * (our clock is not the server's, and this module reads none). A date in the past is
 * 0. Returns -1 when absent, unparsable, or a date without a usable Date header. */
static int64_t qs_retry_after_ms(const struct qs_http_header *h, size_t n)
{
    const struct qs_http_header *ms = qs_http_find_header(h, n, "retry-after-ms");
    const struct qs_http_header *ra = qs_http_find_header(h, n, "retry-after");
    const struct qs_http_header *date = qs_http_find_header(h, n, "date");
    int64_t v = -1, when, now;
    if (ms != NULL)
        v = qs_parse_decimal(ms->value, ms->value_len, 1);
    if (v < 0 && ra != NULL) {
        v = qs_parse_decimal(ra->value, ra->value_len, 1000);
        if (v < 0 && date != NULL && qs_parse_http_date(ra->value, ra->value_len, &when) == 0 &&
            qs_parse_http_date(date->value, date->value_len, &now) == 0)
            v = when > now ? (when - now) * 1000 : 0;
    }
    return v;
}

/* ---- heads ---- */

/* Bytes consumed as an int, or QS_EBAD for a head too long to say so. */
static int qs_head_len(const char *buf, const char *p)
{
    return p - buf > INT_MAX ? QS_EBAD : (int)(p - buf);
}

int qs_http_parse_request(const char *buf, size_t len, struct qs_http_request *req)
{
    const char *line;
    size_t n;
    struct qs_framing f;
    int rc;

    req->method = req->path = req->host = NULL;
    req->method_len = req->path_len = req->host_len = 0;
    req->minor_version = -1;
    req->body_mode = QS_BODY_NONE;
    req->content_length = 0;
    req->expect_continue = req->connection_close = req->sse = 0;
    req->num_headers = 0;
    if (len == 0)
        return QS_PARTIAL;

    const char *p = buf, *end = buf + len;
    /* One empty line before the request line is skipped, as picohttpparser does and
     * RFC 9112 §2.2 recommends: some clients send CR LF after a POST body. */
    if (*p == '\r' || *p == '\n') {
        if ((rc = qs_next_line(&p, end, &line, &n)) != 0)
            return rc;
        if (n != 0)
            return QS_EBAD;
    }
    if ((rc = qs_next_line(&p, end, &line, &n)) != 0)
        return rc;
    if (qs_parse_request_line(line, n, req) != 0)
        return QS_EBAD;
    if ((rc = qs_parse_headers(&p, end, req->headers, &req->num_headers)) != 0)
        return rc;

    const struct qs_http_header *h = req->headers;
    size_t nh = req->num_headers;
    /* A request that is not chunked-last has no knowable length: RFC 9112 §6.3 says 400. */
    if (qs_framing(h, nh, &f) != 0 || (f.te && !f.te_chunked))
        return QS_EBAD;
    if (f.te) {
        req->body_mode = QS_BODY_CHUNKED;
    } else if (f.has_length) {
        req->body_mode = QS_BODY_LENGTH;
        req->content_length = f.length;
    }
    const struct qs_http_header *host = qs_http_find_header(h, nh, "host");
    if (host != NULL) {
        req->host = host->value;
        req->host_len = host->value_len;
    }
    req->expect_continue = qs_has_token(h, nh, "expect", "100-continue");
    req->connection_close = qs_conn_close(h, nh, req->minor_version);
    req->sse = qs_has_token(h, nh, "x-dashscope-sse", "enable");
    return qs_head_len(buf, p);
}

int qs_http_parse_response(const char *buf, size_t len, const char *req_method, size_t req_method_len,
                           struct qs_http_response *resp)
{
    const char *line;
    size_t n;
    struct qs_framing f;
    int rc;

    resp->status = 0;
    resp->minor_version = -1;
    resp->reason = NULL;
    resp->reason_len = 0;
    resp->body_mode = QS_BODY_NONE;
    resp->content_length = 0;
    resp->connection_close = resp->event_stream = 0;
    resp->retry_after_ms = -1;
    resp->num_headers = 0;
    if (len == 0)
        return QS_PARTIAL;

    const char *p = buf, *end = buf + len;
    if ((rc = qs_next_line(&p, end, &line, &n)) != 0)
        return rc;
    if (qs_parse_status_line(line, n, resp) != 0)
        return QS_EBAD;
    if ((rc = qs_parse_headers(&p, end, resp->headers, &resp->num_headers)) != 0)
        return rc;

    const struct qs_http_header *h = resp->headers;
    size_t nh = resp->num_headers;
    if (qs_framing(h, nh, &f) != 0)
        return QS_EBAD;
    /* RFC 9112 §6.3, in its order. Method names are case-sensitive, so only "HEAD". */
    int head = req_method != NULL && req_method_len == 4 && memcmp(req_method, "HEAD", 4) == 0;
    if (head || resp->status < 200 || resp->status == 204 || resp->status == 304) {
        resp->body_mode = QS_BODY_NONE;
    } else if (f.te) {
        /* A coding other than chunked last: only the close of the connection ends the body. */
        resp->body_mode = f.te_chunked ? QS_BODY_CHUNKED : QS_BODY_CLOSE;
    } else if (f.has_length) {
        resp->body_mode = QS_BODY_LENGTH;
        resp->content_length = f.length;
    } else {
        resp->body_mode = QS_BODY_CLOSE;
    }
    resp->connection_close = qs_conn_close(h, nh, resp->minor_version);
    const struct qs_http_header *ct = qs_http_find_header(h, nh, "content-type");
    static const char sse_type[] = "text/event-stream";
    size_t tl = sizeof(sse_type) - 1;
    /* The media type must end there: ";charset=UTF-8" may follow, "text/event-streamx" is another type. */
    resp->event_stream = ct != NULL && ct->value_len >= tl && qs_ieq_n(ct->value, sse_type, tl) &&
                         (ct->value_len == tl || ct->value[tl] == ';' || qs_is_blank(ct->value[tl]));
    resp->retry_after_ms = qs_retry_after_ms(h, nh);
    return qs_head_len(buf, p);
}

/* ---- bodies ---- */

/* Chunked decoder states (struct qs_http_body._state). */
enum {
    QS_CH_SIZE = 0,      /* chunk-size hex digits; _hexdigits is 1 once one was seen */
    QS_CH_SIZE_WS,       /* blanks after the size, before ";" or the line end */
    QS_CH_EXT,           /* a chunk extension, skipped up to the line end */
    QS_CH_SIZE_LF,       /* CR seen at the end of the size line */
    QS_CH_DATA,          /* <left> payload bytes to go in this chunk */
    QS_CH_DATA_CR,       /* the CR LF after the chunk data */
    QS_CH_DATA_LF,       /* ... its LF */
    QS_CH_TRAILER_START, /* at the start of a trailer line or of the final blank line */
    QS_CH_TRAILER,       /* inside a trailer line, skipped up to its LF */
    QS_CH_END_LF,        /* CR of the final blank line seen */
    QS_CH_DONE,
};

void qs_http_body_init(struct qs_http_body *b, enum qs_body_mode mode, uint64_t content_length)
{
    b->mode = mode;
    b->left = mode == QS_BODY_LENGTH ? content_length : 0;
    b->_state = QS_CH_SIZE;
    b->_hexdigits = 0;
    b->total = 0;
}

static int qs_hex(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = qs_lower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* The end of a chunk-size line: returns the next state, data or (after a "0" chunk)
 * the trailer section, and readies the digit count for the next size line. */
static int qs_size_line_done(struct qs_http_body *b)
{
    b->_hexdigits = 0;
    return b->left > 0 ? QS_CH_DATA : QS_CH_TRAILER_START;
}

/* Moves one framing byte <c> through the chunked state machine; QS_EBAD if it does not fit. */
static int qs_chunked_byte(struct qs_http_body *b, unsigned char c)
{
    int hex;
    switch (b->_state) {
    case QS_CH_SIZE:
        if ((hex = qs_hex(c)) >= 0) {
            if (b->left > (UINT64_MAX >> 4))
                return QS_EBAD;
            b->left = (b->left << 4) | (uint64_t)hex;
            b->_hexdigits = 1; /* a flag, not a count: leading zeros are unlimited */
            return 0;
        }
        if (b->_hexdigits == 0)
            return QS_EBAD;
        /* The size ended: <c> is what follows it, handled as in QS_CH_SIZE_WS. */
        /* fall through */
    case QS_CH_SIZE_WS:
        /* Blanks before ";" are RFC 9112's BWS; some servers also pad the size itself. */
        if (qs_is_blank((char)c))
            b->_state = QS_CH_SIZE_WS;
        else if (c == ';')
            b->_state = QS_CH_EXT;
        else if (c == '\r')
            b->_state = QS_CH_SIZE_LF;
        else if (c == '\n')
            b->_state = qs_size_line_done(b);
        else
            return QS_EBAD;
        return 0;
    case QS_CH_EXT:
        if (c == '\r')
            b->_state = QS_CH_SIZE_LF;
        else if (c == '\n')
            b->_state = qs_size_line_done(b);
        else if (qs_is_ctl(c))
            return QS_EBAD;
        return 0;
    case QS_CH_SIZE_LF:
        if (c != '\n')
            return QS_EBAD;
        b->_state = qs_size_line_done(b);
        return 0;
    case QS_CH_DATA_CR:
        /* A bare LF is accepted here too, like everywhere else in the framing. */
        if (c == '\r')
            b->_state = QS_CH_DATA_LF;
        else if (c == '\n')
            b->_state = QS_CH_SIZE;
        else
            return QS_EBAD;
        return 0;
    case QS_CH_DATA_LF:
        if (c != '\n')
            return QS_EBAD;
        b->_state = QS_CH_SIZE;
        return 0;
    case QS_CH_TRAILER_START:
        if (c == '\r')
            b->_state = QS_CH_END_LF;
        else if (c == '\n')
            b->_state = QS_CH_DONE;
        else
            b->_state = QS_CH_TRAILER;
        return 0;
    case QS_CH_TRAILER:
        if (c == '\n')
            b->_state = QS_CH_TRAILER_START;
        return 0;
    case QS_CH_END_LF:
        if (c != '\n')
            return QS_EBAD;
        b->_state = QS_CH_DONE;
        return 0;
    default:
        return QS_EBAD; /* QS_CH_DATA and QS_CH_DONE never get here; a corrupt state does */
    }
}

/* Chunked bodies. Framing bytes are consumed greedily around at most one data span,
 * so a call that hands out a chunk's last bytes also eats the CR LF after it and, if
 * buffered, the whole "0" chunk and trailers, and can report completion at once. */
static int qs_chunked_feed(struct qs_http_body *b, const char *buf, size_t len, size_t *consumed,
                           const char **data, size_t *data_len)
{
    size_t i = 0;
    int rc = 0;
    while (b->_state != QS_CH_DONE) {
        if (b->_state == QS_CH_DATA) {
            if (*data_len > 0 || i == len)
                break;
            size_t n = (uint64_t)(len - i) < b->left ? len - i : (size_t)b->left;
            *data = buf + i;
            *data_len = n;
            i += n;
            b->left -= n;
            b->total += n;
            if (b->left == 0)
                b->_state = QS_CH_DATA_CR;
            continue;
        }
        if (i == len)
            break;
        if ((rc = qs_chunked_byte(b, (unsigned char)buf[i])) != 0)
            break;
        i++;
    }
    *consumed = i;
    return rc != 0 ? rc : b->_state == QS_CH_DONE;
}

int qs_http_body_feed(struct qs_http_body *b, const char *buf, size_t len, size_t *consumed,
                      const char **data, size_t *data_len)
{
    size_t n;
    *consumed = 0;
    *data = buf;
    *data_len = 0;
    switch (b->mode) {
    case QS_BODY_NONE:
        return 1;
    case QS_BODY_LENGTH:
        n = (uint64_t)len < b->left ? len : (size_t)b->left;
        *consumed = *data_len = n;
        b->left -= n;
        b->total += n;
        return b->left == 0;
    case QS_BODY_CHUNKED:
        return qs_chunked_feed(b, buf, len, consumed, data, data_len);
    case QS_BODY_CLOSE:
        *consumed = *data_len = len;
        b->total += len;
        return 0;
    }
    return QS_EBAD;
}
