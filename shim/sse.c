/* sse.c - resumable text/event-stream framer (WHATWG HTML §9.2.6), with no I/O,
 * allocation or globals.
 *
 * It reports the structure of the stream and nothing else: a field name (kept in
 * the state, at most QS_SSE_NAME_MAX bytes), its value as spans pointing into the
 * caller's buffer, the end of each line, and each blank line that ends an event.
 * Interpreting "data", "event", "id" and the DashScope ":HTTP_STATUS/NNN" comment is
 * the caller's business. Values are never copied, so a data line of any length
 * streams through in as many spans as it arrives in.
 *
 * DashScope writes "field:value" with no space in native streams ("event:error",
 * ":HTTP_STATUS/429") and "data: {...}" with one in compatible ones
 * (research/dashscope-wire.md §4.2, §4.3); one optional space after the colon is
 * dropped, as the SSE spec says. A CR ending one feed and the LF starting the next
 * make one line end, not two.
 * SPDX-License-Identifier: MIT
 */
#include "sse.h"

/* Framer states (struct qs_sse._state). Zero is the start of a line. */
enum {
    QS_SSE_ST_LINE = 0, /* at the start of a line */
    QS_SSE_ST_NAME,     /* inside a field name */
    QS_SSE_ST_SPACE,    /* just after "name:", where one space is dropped */
    QS_SSE_ST_VALUE,    /* inside a value (or a line whose FIELD was reported at its end) */
};

enum qs_sse_kind qs_sse_feed(struct qs_sse *sse, const char *buf, size_t len, size_t *consumed,
                             const char **val, size_t *val_len)
{
    size_t i = 0;
    *val = buf;
    *val_len = 0;
    while (i < len) {
        char c = buf[i];
        switch (sse->_state) {
        case QS_SSE_ST_LINE:
            if (sse->_cr) {
                /* The LF of a CR LF whose CR ended the previous line, maybe in an earlier feed. */
                sse->_cr = 0;
                if (c == '\n') {
                    i++;
                    continue;
                }
            }
            sse->name[0] = '\0';
            sse->_name_len = 0;
            sse->is_comment = 0;
            if (c == '\r' || c == '\n') {
                sse->_cr = c == '\r';
                *consumed = i + 1;
                return QS_SSE_EVENT_END;
            }
            if (c == ':') {
                /* A comment: its whole text is the value, leading space included. */
                sse->is_comment = 1;
                sse->_state = QS_SSE_ST_VALUE;
                *consumed = i + 1;
                return QS_SSE_FIELD;
            }
            sse->_state = QS_SSE_ST_NAME;
            continue;
        case QS_SSE_ST_NAME:
            if (c == ':') {
                sse->_state = QS_SSE_ST_SPACE;
                *consumed = i + 1;
                return QS_SSE_FIELD;
            }
            if (c == '\r' || c == '\n') {
                /* No colon: the line is all name with an empty value. The line end is
                 * left unconsumed so that the next call reports QS_SSE_LINE_END. */
                sse->_state = QS_SSE_ST_VALUE;
                *consumed = i;
                return QS_SSE_FIELD;
            }
            if (sse->_name_len < QS_SSE_NAME_MAX) {
                sse->name[sse->_name_len++] = c;
                sse->name[sse->_name_len] = '\0';
            }
            i++;
            continue;
        case QS_SSE_ST_SPACE:
            sse->_state = QS_SSE_ST_VALUE;
            if (c == ' ')
                i++;
            continue;
        default: { /* QS_SSE_ST_VALUE */
            size_t j = i;
            while (j < len && buf[j] != '\r' && buf[j] != '\n')
                j++;
            if (j > i) {
                *val = buf + i;
                *val_len = j - i;
                *consumed = j;
                return QS_SSE_VALUE;
            }
            sse->_state = QS_SSE_ST_LINE;
            sse->_cr = c == '\r';
            *consumed = i + 1;
            return QS_SSE_LINE_END;
        }
        }
    }
    *consumed = len;
    return QS_SSE_NONE;
}
