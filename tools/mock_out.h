/* mock_out.h - writes a response body in pieces: optionally gzip-encoded (Content-Encoding),
 * optionally in chunked framing (Transfer-Encoding), through a caller-supplied send function.
 * SPDX-License-Identifier: MIT
 */
#ifndef QS_MOCK_OUT_H
#define QS_MOCK_OUT_H

#include <stddef.h>
#include <zlib.h>

#include "mock_util.h"

/* Sends all <n> bytes. Returns 0, or -1 when the connection failed. */
typedef int (*mock_send_fn)(void *ctx, const void *p, size_t n);

struct mock_out {
    mock_send_fn send;
    void *ctx;
    int gzip, chunked;
    z_stream z;
    struct mock_buf zb, frame; /* scratch: compressed bytes, chunk framing */
};

void mock_out_open(struct mock_out *o, mock_send_fn send, void *ctx, int gzip, int chunked);
/* Sends <p>/<n>. With <flush> (end of an SSE event) a gzip body is sync-flushed, so the
 * client can decode the event at once; otherwise zlib may hold bytes back. Returns 0 or -1. */
int mock_out_write(struct mock_out *o, const char *p, size_t n, int flush);
/* Ends the body: the gzip trailer, then the last chunk. Returns 0 or -1. */
int mock_out_finish(struct mock_out *o);
/* Frees the state; call once after open, finished or not. */
void mock_out_close(struct mock_out *o);

/* Appends the gzip encoding of <p>/<n> to <out>. Deterministic: zlib writes mtime 0. */
void mock_gzip(struct mock_buf *out, const char *p, size_t n);

#endif
