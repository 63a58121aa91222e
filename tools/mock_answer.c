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

/* One error answer. The native body is {"code","message","request_id"}; the compatible one
 * is a whole format in which "%1$s" is the request id, because the captured bodies differ in
 * key order and extras (wire §3.3: the TPM fixture puts "code" first, the free-tier capture
 * has an "id"). Where no compatible capture exists the body takes the arrearage capture's
 * shape with the native code as "type" and "code". Messages are JSON-escaped already. */
struct err_def {
    const char *name; /* the "kind" of POST /mock/script */
    int status;
    const char *code, *message, *compat_code, *compat;
};

#define COMPAT(msg, code)                                                                                    \
    "{\"error\":{\"message\":\"" msg "\",\"type\":\"" code "\",\"param\":null,\"code\":\"" code              \
    "\"},\"request_id\":\"%1$s\"}"
#define BURST_MSG                                                                                            \
    "Request rate increased too quickly. To ensure system stability, please adjust your client logic to "    \
    "scale requests more smoothly over time."
#define CAPACITY_MSG                                                                                         \
    "Too many requests. Your requests are being throttled due to system capacity limits. Please try again "  \
    "later."
#define ARREARAGE_MSG "Access denied, please make sure your account is in good standing."
#define FREE_TIER_MSG                                                                                        \
    "The free tier of the model has been exhausted. If you wish to continue access the model on a paid "     \
    "basis, please disable the \\\"use free tier only\\\" mode in the management console."

static const struct err_def errs[MOCK_ERR_END] = {
    [MOCK_ERR_RPM] =
        {"rpm", 429, "Throttling.RateQuota", "Requests rate limit exceeded, please try again later.",
         "limit_requests",
         "{\"error\":{\"message\":\"You have exceeded your current request limit. For details, see: "
         "https://help.aliyun.com/zh/model-studio/error-code#rate-limit\",\"type\":\"limit_requests\","
         "\"param\":null,\"code\":\"limit_requests\"},\"request_id\":\"%1$s\"}"},
    [MOCK_ERR_TPM] =
        {"tpm", 429, "Throttling.AllocationQuota",
         "Allocated quota exceeded, please increase your quota limit.", "insufficient_quota",
         "{\"error\":{\"code\":\"insufficient_quota\",\"message\":\"You exceeded your current quota, "
         "please check your plan and billing details. For details, see: "
         "https://help.aliyun.com/zh/model-studio/error-code#token-limit\",\"param\":null,"
         "\"type\":\"insufficient_quota\"},\"request_id\":\"%1$s\"}"},
    [MOCK_ERR_FREE_QUOTA] =
        {"free_quota", 429, "Throttling.AllocationQuota", "Free allocated quota exceeded.",
         "insufficient_quota",
         "{\"error\":{\"code\":\"insufficient_quota\",\"message\":\"Free allocated quota "
         "exceeded.\",\"param\":null,\"type\":\"insufficient_quota\"},\"request_id\":\"%1$s\"}"},
    [MOCK_ERR_BURST] = {"burst", 429, "Throttling.BurstRate", BURST_MSG, "limit_burst_rate",
                        COMPAT(BURST_MSG, "limit_burst_rate")},
    [MOCK_ERR_GENERIC] = {"generic", 429, "Throttling", "Requests throttling triggered.", "Throttling",
                          COMPAT("Requests throttling triggered.", "Throttling")},
    [MOCK_ERR_CAPACITY] = {"capacity", 503, "ModelServingError", CAPACITY_MSG, "ModelServingError",
                           COMPAT(CAPACITY_MSG, "ModelServingError")},
    [MOCK_ERR_UNAVAILABLE] = {"unavailable", 503, "ModelUnavailable",
                              "Model is unavailable, try again later.", "ModelUnavailable",
                              COMPAT("Model is unavailable, try again later.", "ModelUnavailable")},
    [MOCK_ERR_ARREARAGE] = {"arrearage", 400, "Arrearage", ARREARAGE_MSG, "Arrearage",
                            COMPAT(ARREARAGE_MSG
                                   " For details, see: "
                                   "https://help.aliyun.com/zh/model-studio/error-code#overdue-payment",
                                   "Arrearage")},
    [MOCK_ERR_COMMODITY] = {"commodity", 429, "CommodityNotPurchased", "Commodity has not purchased yet.",
                            "CommodityNotPurchased",
                            COMPAT("Commodity has not purchased yet.", "CommodityNotPurchased")},
    [MOCK_ERR_PREPAID] = {"prepaid", 429, "PrepaidBillOverdue", "The prepaid bill is overdue.",
                          "PrepaidBillOverdue", COMPAT("The prepaid bill is overdue.", "PrepaidBillOverdue")},
    [MOCK_ERR_POSTPAID] = {"postpaid", 429, "PostpaidBillOverdue", "The postpaid bill is overdue.",
                           "PostpaidBillOverdue",
                           COMPAT("The postpaid bill is overdue.", "PostpaidBillOverdue")},
    [MOCK_ERR_FREE_TIER_ONLY] = {"free_tier_only", 403, "AllocationQuota.FreeTierOnly", FREE_TIER_MSG,
                                 "AllocationQuota.FreeTierOnly",
                                 "{\"error\":{\"message\":\"" FREE_TIER_MSG "\",\"type\":\"AllocationQuota."
                                 "FreeTierOnly\",\"param\":null,\"code\":\"AllocationQuota.FreeTierOnly\"},"
                                 "\"id\":\"chatcmpl-%1$s\",\"request_id\":\"%1$s\"}"},
};

enum mock_err mock_err_by_name(const char *name)
{
    for (int e = 1; e < MOCK_ERR_END; e++)
        if (strcmp(errs[e].name, name) == 0)
            return (enum mock_err)e;
    return 0;
}

int mock_err_status(enum mock_err e) { return errs[e].status; }

const char *mock_err_code(int native, enum mock_err e) { return native ? errs[e].code : errs[e].compat_code; }

void mock_err_body(struct mock_buf *b, int native, enum mock_err e, const char *id)
{
    if (native)
        mock_buf_printf(b, "{\"code\":\"%s\",\"message\":\"%s\",\"request_id\":\"%s\"}", errs[e].code,
                        errs[e].message, id);
    else
        mock_buf_printf(b, errs[e].compat, id);
}

void mock_err_event(struct mock_buf *b, enum mock_err e, int status, const char *id)
{
    mock_buf_printf(b, "id:1\nevent:error\n:HTTP_STATUS/%d\ndata:", status);
    mock_err_body(b, 1, e, id);
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
