/* mock_out.c - gzip and chunked framing for qshim-mock's response bodies.
 *
 * Real DashScope answers gzip when the client accepts it, with chunked framing and a
 * flush per SSE event (dashscope-wire.md §4.2); the shim must see the same shapes.
 * SPDX-License-Identifier: MIT
 */
#include "mock_out.h"

#include <string.h>

static void gz_init(z_stream *z)
{
    memset(z, 0, sizeof *z);
    /* windowBits 15 + 16 selects the gzip wrapper. */
    if (deflateInit2(z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        mock_die_oom(); /* the only possible failure with these constant parameters */
}

/* Compresses <p>/<n> with <flush> (Z_NO_FLUSH, Z_SYNC_FLUSH, Z_FINISH), appending to <out>. */
static void gz_add(z_stream *z, const char *p, size_t n, int flush, struct mock_buf *out)
{
    z->next_in = (Bytef *)p;
    z->avail_in = (uInt)n;
    for (;;) {
        size_t room;
        int rc;
        mock_buf_grow(out, 65536);
        room = out->cap - out->len;
        z->next_out = (Bytef *)out->p + out->len;
        z->avail_out = (uInt)room;
        rc = deflate(z, flush);
        out->len += room - z->avail_out;
        /* Room left over means deflate took all input and flushed what <flush> asked for. */
        if (rc == Z_STREAM_END || (flush != Z_FINISH && z->avail_out != 0))
            break;
    }
}

void mock_gzip(struct mock_buf *out, const char *p, size_t n)
{
    z_stream z;
    gz_init(&z);
    gz_add(&z, p, n, Z_FINISH, out);
    deflateEnd(&z);
}

void mock_out_open(struct mock_out *o, mock_send_fn send, void *ctx, int gzip, int chunked)
{
    memset(o, 0, sizeof *o);
    o->send = send;
    o->ctx = ctx;
    o->gzip = gzip;
    o->chunked = chunked;
    if (gzip)
        gz_init(&o->z);
}

/* Sends encoded bytes; when chunked, as one chunk in one send (so one TLS record). */
static int emit(struct mock_out *o, const char *p, size_t n)
{
    if (n == 0)
        return 0;
    if (!o->chunked)
        return o->send(o->ctx, p, n);
    o->frame.len = 0;
    mock_buf_printf(&o->frame, "%zx\r\n", n);
    mock_buf_add(&o->frame, p, n);
    mock_buf_add(&o->frame, "\r\n", 2);
    return o->send(o->ctx, o->frame.p, o->frame.len);
}

int mock_out_write(struct mock_out *o, const char *p, size_t n, int flush)
{
    int rc;
    if (!o->gzip)
        return emit(o, p, n);
    gz_add(&o->z, p, n, flush ? Z_SYNC_FLUSH : Z_NO_FLUSH, &o->zb);
    rc = emit(o, o->zb.p, o->zb.len);
    o->zb.len = 0;
    return rc;
}

int mock_out_finish(struct mock_out *o)
{
    int rc = 0;
    if (o->gzip) {
        gz_add(&o->z, "", 0, Z_FINISH, &o->zb);
        rc = emit(o, o->zb.p, o->zb.len);
    }
    if (rc == 0 && o->chunked)
        rc = o->send(o->ctx, "0\r\n\r\n", 5);
    return rc;
}

void mock_out_close(struct mock_out *o)
{
    if (o->gzip)
        deflateEnd(&o->z);
    mock_buf_free(&o->zb);
    mock_buf_free(&o->frame);
}
