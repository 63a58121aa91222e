/* http.h - pure incremental HTTP/1.1 message parsing for the shim and the mock.
 *
 * Three pieces, none of which does I/O, allocates, or keeps globals:
 *   - message heads (request line or status line plus headers), parsed once the
 *     whole head is buffered, picohttpparser style;
 *   - body framing (Content-Length, chunked, until-close), a resumable decoder
 *     that hands out spans of payload pointing into the caller's buffer;
 *   - the framing facts the shim needs (length, chunked, Expect, Connection,
 *     Retry-After), derived once from the headers.
 * SPDX-License-Identifier: MIT
 */
#ifndef QS_HTTP_H
#define QS_HTTP_H

#include <stddef.h>
#include <stdint.h>

/* Return codes shared by the incremental parsers. */
enum qs_rc {
    QS_EBAD = -1,     /* malformed input: the caller falls back to pass-through */
    QS_PARTIAL = -2,  /* not enough bytes yet: call again with more */
};

#define QS_HTTP_MAX_HEADERS 100

struct qs_http_header {
    const char *name;
    size_t name_len;
    const char *value;  /* leading and trailing blanks stripped */
    size_t value_len;
};

/* How a message body is delimited. */
enum qs_body_mode {
    QS_BODY_NONE = 0,    /* no body (no length, GET, 1xx/204/304, HEAD answer) */
    QS_BODY_LENGTH = 1,  /* Content-Length bytes */
    QS_BODY_CHUNKED = 2, /* Transfer-Encoding: chunked */
    QS_BODY_CLOSE = 3,   /* response read until the connection closes */
};

struct qs_http_request {
    const char *method;
    size_t method_len;
    const char *path;
    size_t path_len;
    int minor_version;            /* 0 or 1 */
    const char *host;             /* Host header value, NULL if absent */
    size_t host_len;
    enum qs_body_mode body_mode;  /* NONE, LENGTH or CHUNKED */
    uint64_t content_length;      /* valid when body_mode == QS_BODY_LENGTH */
    int expect_continue;          /* Expect: 100-continue present */
    int connection_close;         /* Connection: close (or HTTP/1.0 without keep-alive) */
    int sse;                      /* X-DashScope-SSE: enable */
    size_t num_headers;
    struct qs_http_header headers[QS_HTTP_MAX_HEADERS];
};

struct qs_http_response {
    int status;
    int minor_version;
    const char *reason;
    size_t reason_len;
    enum qs_body_mode body_mode;  /* any; NONE for 1xx, 204, 304 */
    uint64_t content_length;      /* valid when body_mode == QS_BODY_LENGTH */
    int connection_close;         /* Connection: close, or HTTP/1.0 without keep-alive */
    int event_stream;             /* Content-Type: text/event-stream */
    int64_t retry_after_ms;       /* retry-after-ms, else Retry-After seconds * 1000; -1 if absent */
    size_t num_headers;
    struct qs_http_header headers[QS_HTTP_MAX_HEADERS];
};

/* Parses a request head from <buf>/<len>. Every output field is reset first.
 * Returns the length of the head including the final CRLF CRLF (bytes consumed),
 * QS_PARTIAL if the head is not complete yet, QS_EBAD if malformed (bad request
 * line, more than QS_HTTP_MAX_HEADERS headers, both chunked and Content-Length,
 * an unparsable Content-Length, a transfer coding other than chunked). */
int qs_http_parse_request(const char *buf, size_t len, struct qs_http_request *req);

/* Parses a response head; same return convention. <req_method>/<len> is the
 * method of the request it answers ("HEAD" means no body); may be NULL/0. */
int qs_http_parse_response(const char *buf, size_t len, const char *req_method, size_t req_method_len,
                           struct qs_http_response *resp);

/* Case-insensitive header lookup; returns the first match or NULL. */
const struct qs_http_header *qs_http_find_header(const struct qs_http_header *h, size_t n, const char *name);

/* Resumable body decoder. Valid when zeroed (then it is an empty QS_BODY_NONE body). */
struct qs_http_body {
    enum qs_body_mode mode;
    uint64_t left;       /* bytes left in the current Content-Length body or chunk */
    int _state;          /* chunked sub-state, private */
    int _hexdigits;      /* private */
    uint64_t total;      /* decoded payload bytes so far */
};

void qs_http_body_init(struct qs_http_body *b, enum qs_body_mode mode, uint64_t content_length);

/* Feeds framed body bytes. On return, *consumed bytes of <buf> have been used and
 * [*data, *data + *data_len) is a span of decoded payload inside <buf> (possibly
 * empty). Call repeatedly with buf + *consumed until it returns non-zero or the input
 * is used up.
 * Returns 1 when the body is complete (bytes after *consumed belong to the next
 * message), 0 when more input is needed or more spans remain, QS_EBAD on malformed
 * chunk framing. A QS_BODY_CLOSE body never completes here: the caller ends it at EOF.
 * Chunk extensions and trailers are accepted and skipped. */
int qs_http_body_feed(struct qs_http_body *b, const char *buf, size_t len, size_t *consumed,
                      const char **data, size_t *data_len);

#endif
