/* sse.h - pure resumable Server-Sent Events framer (text/event-stream).
 *
 * DashScope speaks two dialects over the same framing:
 *   native:      "id:1\nevent:result\n:HTTP_STATUS/200\ndata:{...}\n\n"
 *                (throttles arrive as event:error with ":HTTP_STATUS/429")
 *   compatible:  "data: {...}\n\n" ... "data: [DONE]\n\n"
 * The framer never buffers a whole line: it reports field names (short, kept in
 * the state) and hands out value spans that point into the caller's buffer, so a
 * data line of any size streams through. Lines end in LF, CR LF or CR.
 * SPDX-License-Identifier: MIT
 */
#ifndef QS_SSE_H
#define QS_SSE_H

#include <stddef.h>

#define QS_SSE_NAME_MAX 15

enum qs_sse_kind {
    QS_SSE_NONE = 0,    /* nothing to report yet; more input needed */
    QS_SSE_FIELD = 1,   /* a field line starts: name in sse->name ("" for a comment line) */
    QS_SSE_VALUE = 2,   /* a span of the current line's value (after "name:" and one optional space) */
    QS_SSE_LINE_END = 3,/* the current field line ended */
    QS_SSE_EVENT_END = 4/* a blank line: the event is complete */
};

/* Valid when zeroed. */
struct qs_sse {
    char name[QS_SSE_NAME_MAX + 1]; /* current field name, NUL-terminated; truncated if longer */
    int is_comment;                 /* current line started with ':' (name is "") */
    int _state;                     /* private */
    int _cr;                        /* private: last byte was CR */
    size_t _name_len;               /* private */
};

/* Feeds <len> bytes. On return *consumed bytes were used; the return value says what
 * happened at that point, and for QS_SSE_VALUE [*val, *val + *val_len) is the span.
 * Call again with buf + *consumed until it returns QS_SSE_NONE with all input consumed.
 * A comment line (":HTTP_STATUS/429") is reported as QS_SSE_FIELD with is_comment = 1,
 * then its text (after the colon) as QS_SSE_VALUE spans. */
enum qs_sse_kind qs_sse_feed(struct qs_sse *sse, const char *buf, size_t len, size_t *consumed,
                             const char **val, size_t *val_len);

#endif
