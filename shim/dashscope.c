/* dashscope.c - DashScope paths, regions, request and answer facts (see dashscope.h).
 *
 * Wire facts relied on (research/dashscope-wire.md): model calls live under
 * /compatible-mode/v1/, /api/v1/services/, /api/v1/tasks and /apps/anthropic/;
 * "model" is a top-level key; the native SDK also puts "stream" inside
 * "parameters"; usage is input_tokens/output_tokens (native) or
 * prompt_tokens/completion_tokens (compatible); errors carry "code" (native) or
 * "error":{"code"} (compatible).
 * SPDX-License-Identifier: MIT
 */
#include "dashscope.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int has_prefix(const char *s, size_t len, const char *prefix)
{
    size_t n = strlen(prefix);
    return len >= n && memcmp(s, prefix, n) == 0;
}

enum qs_ds_family qs_ds_path_family(const char *path, size_t len)
{
    const char *q = memchr(path, '?', len);
    if (q != NULL)
        len = (size_t)(q - path);
    if (has_prefix(path, len, "/compatible-mode/v1/"))
        return QS_DS_COMPAT;
    if (has_prefix(path, len, "/api/v1/services/"))
        return QS_DS_NATIVE;
    if (has_prefix(path, len, "/api/v1/tasks") &&
        (len == strlen("/api/v1/tasks") || path[strlen("/api/v1/tasks")] == '/'))
        return QS_DS_TASKS;
    if (has_prefix(path, len, "/apps/anthropic/"))
        return QS_DS_ANTHROPIC;
    return QS_DS_NONE;
}

/* Region ids of workspace hosts ({ws}.{region}.maas.aliyuncs.com) mapped to the
 * names of our limit tables (config/limits/<name>.conf). */
static const struct {
    const char *id, *table;
} maas_regions[] = {
    {"cn-beijing", "cn-beijing"}, {"ap-southeast-1", "intl"}, {"ap-northeast-1", "intl"},
    {"us-east-1", "us"},          {"eu-central-1", "eu"},     {"cn-hongkong", "cn-hongkong"},
};

/* <s> is <suffix> or ends in "." <suffix>: a whole-label match, so that
 * "xdashscope-intl.aliyuncs.com" is not taken for "dashscope-intl.aliyuncs.com". */
static int ends_with_ci(const char *s, size_t len, const char *suffix)
{
    size_t n = strlen(suffix);
    return len >= n && strncasecmp(s + len - n, suffix, n) == 0 && (len == n || s[len - n - 1] == '.');
}

static int set_region(const char *name, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s", name);
    return 1;
}

int qs_ds_region_from_host(const char *host, size_t len, char *out, size_t outlen)
{
    const char *colon = memchr(host, ':', len);
    if (colon != NULL)
        len = (size_t)(colon - host);
    if (len > 0 && host[len - 1] == '.') /* absolute name */
        len--;

    if (ends_with_ci(host, len, "maas.aliyuncs.com") && len > strlen(".maas.aliyuncs.com")) {
        /* the label just before ".maas" is the region id */
        size_t end = len - strlen(".maas.aliyuncs.com");
        size_t start = end;
        while (start > 0 && host[start - 1] != '.')
            start--;
        for (size_t i = 0; i < sizeof maas_regions / sizeof maas_regions[0]; i++) {
            if (strlen(maas_regions[i].id) == end - start &&
                strncasecmp(host + start, maas_regions[i].id, end - start) == 0)
                return set_region(maas_regions[i].table, out, outlen);
        }
        return 0;
    }
    if (ends_with_ci(host, len, "cn-hongkong.dashscope.aliyuncs.com"))
        return set_region("cn-hongkong", out, outlen);
    if (ends_with_ci(host, len, "coding-intl.dashscope.aliyuncs.com")) /* Coding Plan, Singapore */
        return set_region("intl", out, outlen);
    if (ends_with_ci(host, len, "dashscope-intl.aliyuncs.com"))
        return set_region("intl", out, outlen);
    if (ends_with_ci(host, len, "dashscope-us.aliyuncs.com"))
        return set_region("us", out, outlen);
    if (ends_with_ci(host, len, "dashscope.aliyuncs.com"))
        return set_region("cn-beijing", out, outlen);
    return 0;
}

void qs_ds_req_init(struct qs_ds_req *r)
{
    memset(r, 0, sizeof *r);
    r->max_tokens = -1;
}

static void copy_str(char *dst, size_t dstlen, const struct qs_json_value *v)
{
    size_t n = v->len < dstlen - 1 ? v->len : dstlen - 1;
    memcpy(dst, v->val, n);
    dst[n] = '\0';
}

static int64_t number(const struct qs_json_value *v)
{
    char tmp[32];
    if (v->type != QS_JSON_NUMBER || v->len >= sizeof tmp)
        return -1;
    memcpy(tmp, v->val, v->len);
    tmp[v->len] = '\0';
    double d = strtod(tmp, NULL);
    if (!(d >= 0)) /* negative or NaN */
        return -1;
    return d < 1e15 ? (int64_t)d : (int64_t)1e15; /* no absurd count overflows a sum */
}

static int is_max_tokens_key(const char *k)
{
    return strcmp(k, "max_tokens") == 0 || strcmp(k, "max_output_tokens") == 0 ||
           strcmp(k, "max_completion_tokens") == 0;
}

void qs_ds_req_cb(void *ctx, const struct qs_json_value *v)
{
    struct qs_ds_req *r = ctx;
    if (v->depth == 1 && strcmp(v->path[0], "model") == 0 && v->type == QS_JSON_STRING) {
        copy_str(r->model, sizeof r->model, v);
    } else if ((qs_json_path_is(v, 1, "stream") || qs_json_path_is(v, 2, "parameters", "stream")) &&
               (v->type == QS_JSON_TRUE || v->type == QS_JSON_FALSE)) {
        r->stream = v->type == QS_JSON_TRUE;
    } else if (qs_json_path_is(v, 2, "stream_options", "include_usage")) {
        r->include_usage = v->type == QS_JSON_TRUE;
    } else if ((v->depth == 1 && is_max_tokens_key(v->path[0])) ||
               (v->depth == 2 && strcmp(v->path[0], "parameters") == 0 && is_max_tokens_key(v->path[1]))) {
        r->max_tokens = number(v);
    }
}

uint64_t qs_ds_estimate_tokens(const struct qs_json *scan, const struct qs_ds_req *r, uint64_t default_out)
{
    uint64_t other = scan->text_chars - scan->cjk_chars;
    uint64_t prompt = scan->cjk_chars + (other + 3) / 4;
    return prompt + (r->max_tokens >= 0 ? (uint64_t)r->max_tokens : default_out);
}

void qs_ds_resp_init(struct qs_ds_resp *r)
{
    memset(r, 0, sizeof *r);
    r->input_tokens = r->output_tokens = r->total_tokens = -1;
}

void qs_ds_resp_cb(void *ctx, const struct qs_json_value *v)
{
    struct qs_ds_resp *r = ctx;
    if (v->depth == 2 && strcmp(v->path[0], "usage") == 0) {
        const char *k = v->path[1];
        if (strcmp(k, "input_tokens") == 0 || strcmp(k, "prompt_tokens") == 0)
            r->input_tokens = number(v);
        else if (strcmp(k, "output_tokens") == 0 || strcmp(k, "completion_tokens") == 0)
            r->output_tokens = number(v);
        else if (strcmp(k, "total_tokens") == 0)
            r->total_tokens = number(v);
    } else if (v->type == QS_JSON_STRING && qs_json_path_is(v, 4, "choices", "[]", "delta", "content")) {
        qs_json_count_text(v->val, v->len, &r->out_chars, &r->out_cjk); /* for streams without usage */
    } else if ((qs_json_path_is(v, 1, "code") || qs_json_path_is(v, 2, "error", "code")) &&
               v->type == QS_JSON_STRING) {
        copy_str(r->code, sizeof r->code, v);
    } else if ((qs_json_path_is(v, 1, "message") || qs_json_path_is(v, 2, "error", "message")) &&
               v->type == QS_JSON_STRING) {
        copy_str(r->message, sizeof r->message, v);
    }
}

/* True when the byte at <off> of <body> lies outside any string, directly inside the
 * top-level object: a structural walk that only tracks strings and nesting. */
static int at_top_level(const char *body, size_t off)
{
    int depth = 0, in_str = 0, esc = 0;
    size_t i = 0;
    while (i < off && (body[i] == ' ' || body[i] == '\t' || body[i] == '\r' || body[i] == '\n'))
        i++;
    if (i == off || body[i] != '{')
        return 0;
    for (; i < off; i++) {
        char c = body[i];
        if (in_str) {
            if (esc)
                esc = 0;
            else if (c == '\\')
                esc = 1;
            else if (c == '"')
                in_str = 0;
        } else if (c == '"') {
            in_str = 1;
        } else if (c == '{' || c == '[') {
            depth++;
        } else if (c == '}' || c == ']') {
            depth--;
        }
    }
    return !in_str && depth == 1;
}

int qs_ds_find_model(const char *body, size_t body_len, const char *from, size_t *at, size_t *len)
{
    static const char key[] = "\"model\"";
    size_t flen = strlen(from);
    int found = 0;
    size_t key_at = 0;
    const char *end = body + body_len;
    for (const char *p = body; (p = memmem(p, (size_t)(end - p), key, sizeof key - 1)) != NULL;) {
        const char *q = p + sizeof key - 1;
        p = q;
        while (q < end && (*q == ' ' || *q == '\t' || *q == '\r' || *q == '\n'))
            q++;
        if (q == end || *q++ != ':')
            continue;
        while (q < end && (*q == ' ' || *q == '\t' || *q == '\r' || *q == '\n'))
            q++;
        if ((size_t)(end - q) < flen + 2 || q[0] != '"' || memcmp(q + 1, from, flen) != 0 ||
            q[flen + 1] != '"')
            continue;
        if (found++)
            return -1;
        *at = (size_t)(q - body);
        *len = flen + 2;
        key_at = (size_t)(p - (sizeof key - 1) - body);
    }
    /* The one textual match must also be the top-level key: a nested "model" next to
     * an escaped top-level spelling would otherwise be rewritten instead. */
    return found == 1 && at_top_level(body, key_at) ? 0 : -1;
}

void qs_ds_key_fingerprint(const char *auth, size_t len, char out[9])
{
    /* FNV-1a over the credential (after "Bearer "): a stable tag to tell keys
     * apart in the log; 32 bits reveal nothing usable about the key. */
    if (len >= 7 && strncasecmp(auth, "Bearer ", 7) == 0) {
        auth += 7;
        len -= 7;
    }
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)auth[i];
        h *= 1099511628211ull;
    }
    snprintf(out, 9, "%08x", (unsigned)(h >> 32));
}
