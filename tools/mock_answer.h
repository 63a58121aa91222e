/* mock_answer.h - the deterministic answer bodies of qshim-mock.
 *
 * Pure functions from a request description to bytes: the OpenAI-compatible and native
 * DashScope success bodies, their SSE events, and the throttle, capacity and billing error
 * envelopes of SPEC §6 and dashscope-wire.md §3-4. No I/O, no clock: identical descriptions
 * give identical bytes.
 * SPDX-License-Identifier: MIT
 */
#ifndef QS_MOCK_ANSWER_H
#define QS_MOCK_ANSWER_H

#include <stdint.h>

#include "mock_util.h"

#define MOCK_CREATED 1700000000 /* the fixed "created" of compatible answers */
#define MOCK_MAX_PIECES 64      /* a streamed answer has at most this many text events */

enum mock_kind {
    MOCK_CHAT,        /* POST /compatible-mode/v1/chat/completions */
    MOCK_COMPLETIONS, /* POST /compatible-mode/v1/completions */
    MOCK_EMBEDDINGS,  /* POST /compatible-mode/v1/embeddings */
    MOCK_NATIVE_TEXT, /* POST /api/v1/services/aigc/text-generation/generation */
    MOCK_NATIVE_MM,   /* POST /api/v1/services/aigc/multimodal-generation/generation */
};

struct mock_answer {
    enum mock_kind kind;
    const char *model;       /* NUL-terminated, echoed JSON-escaped */
    char id[37];             /* request id; compatible ids are "chatcmpl-"/"cmpl-" + this */
    uint64_t seed;           /* picks the words of the text */
    uint64_t in_tok;         /* usage: input (prompt) tokens */
    uint64_t out_tok;        /* usage: output tokens = words of the text */
    int include_usage;       /* compatible stream: stream_options.include_usage */
    int incremental;         /* native stream: parameters.incremental_output */
    uint64_t dims, n_inputs; /* embeddings: vector size (0: 1024) and inputs (0: one) */
};

/* Appends the non-stream answer. */
void mock_answer_body(struct mock_buf *b, const struct mock_answer *a);
/* The number of SSE events of the streamed answer (compatible: text pieces, the stop chunk,
 * the usage chunk if asked for, [DONE]; native: text pieces, the last with "stop"). */
uint64_t mock_answer_events(const struct mock_answer *a);
/* Appends SSE event <k> (0-based, below mock_answer_events) with its closing blank line. */
void mock_answer_event(struct mock_buf *b, const struct mock_answer *a, uint64_t k);

/* The error answers of SPEC §6 and dashscope-wire.md §3.2-3.3. The first three are what the
 * limits and --free-quota-model produce; POST /mock/script can queue any of them. */
enum mock_err {
    MOCK_ERR_RPM = 1,        /* 429 Throttling.RateQuota / limit_requests */
    MOCK_ERR_TPM,            /* 429 Throttling.AllocationQuota / insufficient_quota */
    MOCK_ERR_FREE_QUOTA,     /* the same codes, "Free allocated quota exceeded." (not retryable) */
    MOCK_ERR_BURST,          /* 429 Throttling.BurstRate / limit_burst_rate */
    MOCK_ERR_GENERIC,        /* 429 Throttling */
    MOCK_ERR_CAPACITY,       /* 503 ModelServingError */
    MOCK_ERR_UNAVAILABLE,    /* 503 ModelUnavailable */
    MOCK_ERR_ARREARAGE,      /* 400 Arrearage */
    MOCK_ERR_COMMODITY,      /* 429 CommodityNotPurchased */
    MOCK_ERR_PREPAID,        /* 429 PrepaidBillOverdue */
    MOCK_ERR_POSTPAID,       /* 429 PostpaidBillOverdue */
    MOCK_ERR_FREE_TIER_ONLY, /* 403 AllocationQuota.FreeTierOnly */
    MOCK_ERR_END
};

/* The error whose script name ("rpm", "free_tier_only", ...) is <name>, or 0 if none is. */
enum mock_err mock_err_by_name(const char *name);
/* The HTTP status DashScope sends with <e>. */
int mock_err_status(enum mock_err e);
/* The wire code of <e> in the native or the compatible envelope. */
const char *mock_err_code(int native, enum mock_err e);
/* Appends the body of <e> in the native or the compatible envelope. */
void mock_err_body(struct mock_buf *b, int native, enum mock_err e, const char *id);
/* Appends the single SSE event that a native stream gets inside HTTP 200 instead of an HTTP
 * <status> answer: id:1, event:error, :HTTP_STATUS/<status>, the native body. */
void mock_err_event(struct mock_buf *b, enum mock_err e, int status, const char *id);
/* Appends a 400 InvalidParameter / invalid_request_error body with <msg> (no quotes in it). */
void mock_invalid_body(struct mock_buf *b, int native, const char *msg, const char *id);

#endif
