/* mock_answer.c - the deterministic answer bodies of qshim-mock.
 *
 * The text is O words of 4-6 letters (one word = one token, so max_tokens 600000 gives a
 * multi-megabyte answer). Word k depends only on the seed and k, so a streamed piece is
 * exactly that stretch of the whole answer, and pieces concatenate to the full text.
 * SPDX-License-Identifier: MIT
 */
#include "mock_answer.h"

#include <inttypes.h>
#include <string.h>

static const char *const vocab[64] = {
    "qwen",   "model",  "token",  "answer", "stream", "limit",  "paced",  "retry",  "quota",  "window",
    "minute", "second", "shim",   "cloud",  "reply",  "words",  "delta",  "usage",  "input",  "output",
    "choice", "stop",   "chunk",  "event",  "local",  "mock",   "bytes",  "plain",  "great",  "small",
    "large",  "quick",  "slow",   "light",  "north",  "south",  "river",  "stone",  "green",  "amber",
    "pixel",  "vector", "signal", "socket", "thread", "kernel", "buffer", "cipher", "random", "stable",
    "spring", "autumn", "winter", "summer", "ocean",  "forest", "meadow", "harbor", "bridge", "castle",
    "garden", "silver", "golden", "copper"};

/* Appends words [<from>, <to>) as a JSON string; every word but the first has a leading space. */
static void put_text(struct mock_buf *b, uint64_t seed, uint64_t from, uint64_t to)
{
    mock_buf_add(b, "\"", 1);
    for (uint64_t k = from; k < to; k++) {
        const char *w = vocab[mock_mix64(seed + k) >> 58];
        if (k > 0)
            mock_buf_add(b, " ", 1);
        mock_buf_add(b, w, strlen(w));
    }
    mock_buf_add(b, "\"", 1);
}

static uint64_t pieces(const struct mock_answer *a)
{
    return a->out_tok == 0 ? 1 : a->out_tok < MOCK_MAX_PIECES ? a->out_tok : MOCK_MAX_PIECES;
}

static void put_usage_compat(struct mock_buf *b, const struct mock_answer *a)
{
    mock_buf_printf(b,
                    "\"usage\":{\"prompt_tokens\":%" PRIu64 ",\"completion_tokens\":%" PRIu64
                    ",\"total_tokens\":%" PRIu64 "}",
                    a->in_tok, a->out_tok, a->in_tok + a->out_tok);
}

/* The id, object, created and model fields that open every compatible answer. */
static void put_compat_open(struct mock_buf *b, const struct mock_answer *a, const char *object)
{
    mock_buf_printf(b, "{\"id\":\"%s-%s\",\"object\":\"%s\",\"created\":%d,\"model\":",
                    a->kind == MOCK_CHAT ? "chatcmpl" : "cmpl", a->id, object, MOCK_CREATED);
    mock_buf_jstr(b, a->model, strlen(a->model));
}

/* A native answer or stream event: words [from, to), <out> output tokens so far. Multimodal
 * answers carry the text as [{"text":...}], as the real endpoint does. */
static void put_native(struct mock_buf *b, const struct mock_answer *a, const char *finish, uint64_t from,
                       uint64_t to, uint64_t out)
{
    int mm = a->kind == MOCK_NATIVE_MM;
    mock_buf_printf(b,
                    "{\"output\":{\"choices\":[{\"finish_reason\":\"%s\",\"message\":{\"role\":\"assistant\","
                    "\"content\":%s",
                    finish, mm ? "[{\"text\":" : "");
    put_text(b, a->seed, from, to);
    mock_buf_printf(b,
                    "%s}}]},\"usage\":{\"input_tokens\":%" PRIu64 ",\"output_tokens\":%" PRIu64
                    ",\"total_tokens\":%" PRIu64 "},\"request_id\":\"%s\"}",
                    mm ? "}]" : "", a->in_tok, out, a->in_tok + out, a->id);
}

static void put_embeddings(struct mock_buf *b, const struct mock_answer *a)
{
    uint64_t n = a->n_inputs ? (a->n_inputs < 2048 ? a->n_inputs : 2048) : 1, dims = a->dims ? a->dims : 1024;
    mock_buf_str(b, "{\"object\":\"list\",\"data\":[");
    for (uint64_t i = 0; i < n; i++) {
        mock_buf_printf(b, "%s{\"object\":\"embedding\",\"index\":%" PRIu64 ",\"embedding\":[", i ? "," : "",
                        i);
        for (uint64_t d = 0; d < dims; d++)
            mock_buf_printf(b, "%s%.6f", d ? "," : "",
                            (double)(mock_mix64(a->seed + i * dims + d) >> 11) / 0x1p52 - 1.0);
        mock_buf_str(b, "]}");
    }
    mock_buf_str(b, "],\"model\":");
    mock_buf_jstr(b, a->model, strlen(a->model));
    mock_buf_printf(b,
                    ",\"usage\":{\"prompt_tokens\":%" PRIu64 ",\"total_tokens\":%" PRIu64 "},\"id\":\"%s\"}",
                    a->in_tok, a->in_tok, a->id);
}

void mock_answer_body(struct mock_buf *b, const struct mock_answer *a)
{
    int chat = a->kind == MOCK_CHAT;
    if (a->kind >= MOCK_NATIVE_TEXT) {
        put_native(b, a, "stop", 0, a->out_tok, a->out_tok);
        return;
    }
    if (a->kind == MOCK_EMBEDDINGS) {
        put_embeddings(b, a);
        return;
    }
    put_compat_open(b, a, chat ? "chat.completion" : "text_completion");
    mock_buf_str(b, chat ? ",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":"
                         : ",\"choices\":[{\"index\":0,\"text\":");
    put_text(b, a->seed, 0, a->out_tok);
    mock_buf_str(b, chat ? "},\"finish_reason\":\"stop\"}],"
                         : ",\"logprobs\":null,\"finish_reason\":\"stop\"}],");
    put_usage_compat(b, a);
    mock_buf_str(b, "}");
}

uint64_t mock_answer_events(const struct mock_answer *a)
{
    if (a->kind >= MOCK_NATIVE_TEXT)
        return pieces(a);
    return pieces(a) + 2 + (a->include_usage != 0);
}

enum { EV_PIECE, EV_STOP, EV_USAGE };

/* One compatible SSE event (wire §4.3): a delta of words [from, to), the stop chunk, or the
 * include_usage chunk with "choices":[]. With include_usage every other chunk says
 * "usage":null, as DashScope's do. */
static void put_compat_event(struct mock_buf *b, const struct mock_answer *a, int ev, uint64_t from,
                             uint64_t to)
{
    int chat = a->kind == MOCK_CHAT;
    mock_buf_str(b, "data: ");
    put_compat_open(b, a, chat ? "chat.completion.chunk" : "text_completion");
    mock_buf_str(b, ",\"choices\":[");
    if (ev != EV_USAGE) {
        mock_buf_str(b, chat ? "{\"index\":0,\"delta\":{" : "{\"index\":0,\"text\":");
        if (chat)
            mock_buf_str(b, ev == EV_PIECE && from == 0 ? "\"role\":\"assistant\",\"content\":"
                                                        : "\"content\":");
        put_text(b, a->seed, from, to);
        mock_buf_str(b, chat ? "}," : ",\"logprobs\":null,");
        mock_buf_str(b, ev == EV_STOP ? "\"finish_reason\":\"stop\"}" : "\"finish_reason\":null}");
    }
    mock_buf_str(b, "]");
    if (ev == EV_USAGE) {
        mock_buf_str(b, ",");
        put_usage_compat(b, a);
    } else if (a->include_usage) {
        mock_buf_str(b, ",\"usage\":null");
    }
    mock_buf_str(b, "}\n\n");
}

/* Native events carry cumulative usage, and cumulative text unless incremental_output is
 * set, with finish_reason the string "null" until the last (wire §4.2). */
void mock_answer_event(struct mock_buf *b, const struct mock_answer *a, uint64_t k)
{
    uint64_t o = a->out_tok, np = pieces(a);
    if (a->kind >= MOCK_NATIVE_TEXT) {
        mock_buf_printf(b, "id:%" PRIu64 "\nevent:result\n:HTTP_STATUS/200\ndata:", k + 1);
        put_native(b, a, k + 1 == np ? "stop" : "null", a->incremental ? k * o / np : 0, (k + 1) * o / np,
                   (k + 1) * o / np);
        mock_buf_str(b, "\n\n");
    } else if (k < np) {
        put_compat_event(b, a, EV_PIECE, k * o / np, (k + 1) * o / np);
    } else if (k == np) {
        put_compat_event(b, a, EV_STOP, o, o);
    } else if (k == np + 1 && a->include_usage) {
        put_compat_event(b, a, EV_USAGE, 0, 0);
    } else {
        mock_buf_str(b, "data: [DONE]\n\n");
    }
}

/* [native][t - 1]; "%s" is the request id (SPEC §6, wire §3.3). */
static const char *const throttle_fmt[2][3] = {
    {"{\"error\":{\"message\":\"You have exceeded your current request limit. For details, see: "
     "https://help.aliyun.com/zh/model-studio/error-code#rate-limit\",\"type\":\"limit_requests\","
     "\"param\":null,\"code\":\"limit_requests\"},\"request_id\":\"%s\"}",
     "{\"error\":{\"code\":\"insufficient_quota\",\"message\":\"You exceeded your current quota, please "
     "check "
     "your plan and billing details. For details, see: https://help.aliyun.com/zh/model-studio/"
     "error-code#token-limit\",\"param\":null,\"type\":\"insufficient_quota\"},\"request_id\":\"%s\"}",
     "{\"error\":{\"code\":\"insufficient_quota\",\"message\":\"Free allocated quota exceeded.\","
     "\"param\":null,\"type\":\"insufficient_quota\"},\"request_id\":\"%s\"}"},
    {"{\"code\":\"Throttling.RateQuota\",\"message\":\"Requests rate limit exceeded, please try again "
     "later.\",\"request_id\":\"%s\"}",
     "{\"code\":\"Throttling.AllocationQuota\",\"message\":\"Allocated quota exceeded, please increase your "
     "quota limit.\",\"request_id\":\"%s\"}",
     "{\"code\":\"Throttling.AllocationQuota\",\"message\":\"Free allocated quota exceeded.\","
     "\"request_id\":\"%s\"}"},
};

void mock_throttle_body(struct mock_buf *b, int native, enum mock_throttle t, const char *id)
{
    mock_buf_printf(b, throttle_fmt[native != 0][t - 1], id);
}

void mock_throttle_event(struct mock_buf *b, enum mock_throttle t, const char *id)
{
    mock_buf_str(b, "id:1\nevent:error\n:HTTP_STATUS/429\ndata:");
    mock_throttle_body(b, 1, t, id);
    mock_buf_str(b, "\n\n");
}

void mock_invalid_body(struct mock_buf *b, int native, const char *msg, const char *id)
{
    if (native)
        mock_buf_printf(b, "{\"code\":\"InvalidParameter\",\"message\":\"%s\",\"request_id\":\"%s\"}", msg,
                        id);
    else
        mock_buf_printf(b,
                        "{\"error\":{\"message\":\"%s\",\"type\":\"invalid_request_error\",\"param\":null,"
                        "\"code\":\"invalid_parameter_error\"},\"request_id\":\"%s\"}",
                        msg, id);
}
