/* json.h - pure resumable streaming JSON scanner.
 *
 * The shim must find a few values in bodies it cannot afford to parse into a tree:
 * the top-level "model" of a request (openai-python writes it after megabytes of
 * "messages"), "stream", "max_tokens", and in answers "usage" and error "code"/
 * "message". The scanner is fed bytes in any split, keeps only a small path stack,
 * and calls back once per scalar with the key path leading to it. It also counts
 * the characters of every string value (CJK and other) for token estimates.
 * No I/O, no allocation, no globals.
 * SPDX-License-Identifier: MIT
 */
#ifndef QS_JSON_H
#define QS_JSON_H

#include <stddef.h>
#include <stdint.h>

#define QS_JSON_MAX_DEPTH 8 /* deeper nesting is scanned, but values deeper than this are not reported */
#define QS_JSON_KEY_MAX 31  /* longer keys are truncated (and can never match a short key) */
#define QS_JSON_STR_MAX 255 /* longer string values are reported truncated */
#define QS_JSON_EBAD (-1)   /* qs_json_feed: malformed JSON */

enum qs_json_type {
    QS_JSON_STRING = 1, /* val is the unescaped string (UTF-8), truncated to QS_JSON_STR_MAX */
    QS_JSON_NUMBER = 2, /* val is the literal text of the number */
    QS_JSON_TRUE = 3,
    QS_JSON_FALSE = 4,
    QS_JSON_NULL = 5,
};

/* One scalar value. path[0..depth-1] are the keys from the top-level object down;
 * an array element's path entry is "[]" (so "choices"/"[]"/"delta"/"content").
 * depth 0 means the document itself is a scalar. truncated is 1 when a string value
 * (or number text) was longer than QS_JSON_STR_MAX. val is NUL-terminated. */
struct qs_json_value {
    int depth;
    const char *path[QS_JSON_MAX_DEPTH];
    enum qs_json_type type;
    const char *val;
    size_t len;
    int truncated;
};

typedef void (*qs_json_cb)(void *ctx, const struct qs_json_value *v);

/* Valid when zeroed. Fields starting with '_' are private. */
struct qs_json {
    uint64_t text_chars; /* characters inside all string values (keys excluded) */
    uint64_t cjk_chars;  /* of those, CJK ideographs, kana, hangul and fullwidth forms */
    int done;            /* the top-level value is complete */
    int _state;
    int _depth;
    uint32_t _stack[QS_JSON_MAX_DEPTH + 1]; /* container kinds, one bit per level (1 = object) */
    char _keys[QS_JSON_MAX_DEPTH][QS_JSON_KEY_MAX + 1];
    char _buf[QS_JSON_STR_MAX + 1]; /* current scalar text (keys go straight to _keys) */
    size_t _len;
    int _in_key;
    int _esc;    /* escape state inside a string */
    unsigned _u; /* \uXXXX accumulator */
    int _udigits;
    unsigned _hi_surrogate;
    int _utf8_left; /* continuation bytes left of the current UTF-8 char */
    unsigned _cp;   /* code point being assembled (for the CJK count) */
    int _truncated;
};

/* Feeds <len> bytes of a JSON document. Calls <cb>(ctx, value) for every scalar.
 * Returns the number of bytes consumed (== len, or less when the top-level value
 * completed before the end: trailing bytes are not JSON of this document),
 * QS_JSON_EBAD (-1) on malformed JSON (the scanner then stays in error).
 * Nesting deeper than 32 * (QS_JSON_MAX_DEPTH + 1) = 288 levels also counts as malformed.
 * Leading and trailing whitespace is allowed; trailing whitespace is consumed, in this
 * or later feeds, up to the first byte that is not.
 * A top-level number completes only at the byte after it. v and its strings are valid
 * only during the callback. */
long qs_json_feed(struct qs_json *j, const char *buf, size_t len, qs_json_cb cb, void *ctx);

/* Counts the characters of UTF-8 text <s> (lead and ASCII bytes) into *<chars> and, of those,
 * the CJK ones (as in cjk_chars) into *<cjk>. */
void qs_json_count_text(const char *s, size_t n, uint64_t *chars, uint64_t *cjk);

/* True when v's path equals the given keys, e.g. qs_json_path_is(v, 2, "usage", "input_tokens"). */
int qs_json_path_is(const struct qs_json_value *v, int depth, ...);

#endif
