/* dashscope.h - what the shim knows about DashScope traffic (SPEC section 3, 6, 7).
 *
 * Pure functions over bytes already parsed by http.c and json.c: which paths are
 * model calls, which region a host names, the facts of a request body (model,
 * stream, max_tokens, prompt size) and of an answer body (usage, error code).
 * SPDX-License-Identifier: MIT
 */
#ifndef QS_DASHSCOPE_H
#define QS_DASHSCOPE_H

#include <stddef.h>
#include <stdint.h>

#include "json.h"

enum qs_ds_family {
    QS_DS_NONE = 0,   /* not a model call: passes through, logged */
    QS_DS_COMPAT,     /* /compatible-mode/v1/... */
    QS_DS_NATIVE,     /* /api/v1/services/... */
    QS_DS_TASKS,      /* /api/v1/tasks/... */
    QS_DS_ANTHROPIC,  /* /apps/anthropic/... */
};

/* Classifies a request path (query string ignored). */
enum qs_ds_family qs_ds_path_family(const char *path, size_t len);

/* Writes the region a host names into <out> ("cn-beijing", "intl", "us",
 * "cn-hongkong", "eu", ...) and returns 1, or returns 0 when the host names none
 * (a test host such as localhost). <host> may carry a ":port", which is ignored. */
int qs_ds_region_from_host(const char *host, size_t len, char *out, size_t outlen);

#define QS_DS_MODEL_MAX 128

/* Facts of a request body, collected by qs_ds_req_cb from the JSON scanner. */
struct qs_ds_req {
    char model[QS_DS_MODEL_MAX]; /* "" when absent */
    int stream;                  /* "stream": true at top level or in "parameters" */
    int include_usage;           /* "stream_options": {"include_usage": true} */
    int64_t max_tokens;          /* max_tokens / max_output_tokens / max_completion_tokens, -1 if absent */
};

/* qs_json_cb for request bodies; <ctx> is a struct qs_ds_req (zero it, then set
 * max_tokens = -1 before the first call, or use qs_ds_req_init). */
void qs_ds_req_init(struct qs_ds_req *r);
void qs_ds_req_cb(void *ctx, const struct qs_json_value *v);

/* Token estimate for a request: about one token per CJK character and four
 * characters per token otherwise (the scanner counted both), plus max_tokens or
 * <default_out> when the request names none. */
uint64_t qs_ds_estimate_tokens(const struct qs_json *scan, const struct qs_ds_req *r, uint64_t default_out);

#define QS_DS_CODE_MAX 64
#define QS_DS_MSG_MAX 96

/* Facts of an answer body or SSE data payload. */
struct qs_ds_resp {
    int64_t input_tokens;        /* usage.input_tokens or usage.prompt_tokens, -1 if absent */
    int64_t output_tokens;       /* usage.output_tokens or usage.completion_tokens, -1 if absent */
    int64_t total_tokens;        /* usage.total_tokens, -1 if absent */
    char code[QS_DS_CODE_MAX];   /* native "code" or compatible error.code, "" if absent */
    char message[QS_DS_MSG_MAX]; /* native "message" or compatible error.message (its start) */
    uint64_t out_chars, out_cjk; /* streamed text (choices[].delta.content): characters, CJK ones */
};

void qs_ds_resp_init(struct qs_ds_resp *r);
void qs_ds_resp_cb(void *ctx, const struct qs_json_value *v);

/* Finds the top-level "model": "<from>" of a request body: the one place where the
 * key "model" is followed by the string <from> (any blanks around the colon). Sets
 * at and len to the span of the string value including its quotes and returns 0, or
 * returns -1 when there is no such place, more than one, or the one place is not a key
 * of the top-level object (then nothing may be rewritten safely). */
int qs_ds_find_model(const char *body, size_t body_len, const char *from, size_t *at, size_t *len);

/* Writes an 8-hex-digit fingerprint of an Authorization header value ("Bearer sk-...")
 * into <out> (9 bytes). Only the fingerprint is ever logged, never the key. */
void qs_ds_key_fingerprint(const char *auth, size_t len, char out[9]);

#endif
