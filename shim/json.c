/* json.c - pure resumable streaming JSON scanner (RFC 8259); see json.h for the contract.
 *
 * Wire facts it is built for (research/dashscope-wire.md): "model" is a top-level key,
 * after megabytes of "messages" in openai-python (§1.4); separators are "," ":" or
 * ", " ": ", text raw UTF-8 or \uXXXX escapes; native bodies also carry "stream" inside
 * "parameters"; usage is "usage"/{input,output,prompt,completion,total}_tokens (§4);
 * errors are {"code","message",...} or {"error":{"code",...}} (§3).
 * SPDX-License-Identifier: MIT
 */
#include "json.h"

#include <stdarg.h>
#include <string.h>

/* Scanner states (j->_state). Zero must be the initial one: a zeroed struct is valid. */
enum {
    S_VALUE = 0,      /* a value must come: document start, after ':', after ',' in an array */
    S_VALUE_OR_CLOSE, /* after '[' */
    S_KEY,            /* after ',' in an object */
    S_KEY_OR_CLOSE,   /* after '{' */
    S_COLON,          /* after a key */
    S_AFTER,          /* after a value inside a container: ',' or the closing bracket */
    S_STRING,         /* inside a key (_in_key) or a string value */
    S_NUM_MINUS,      /* number states, RFC 8259 §6: -? (0 | [1-9][0-9]*) (.[0-9]+)? ([eE][+-]?[0-9]+)? */
    S_NUM_ZERO,
    S_NUM_INT,
    S_NUM_DOT,
    S_NUM_FRAC,
    S_NUM_E,
    S_NUM_ESIGN,
    S_NUM_EXP,
    S_TRUE, /* literals: _len letters matched so far; same order as lits[] */
    S_FALSE,
    S_NULL,
    S_TRAILING, /* done: whitespace after the document is consumed... */
    S_END,      /* ...up to the first other byte; nothing more after that */
    S_ERROR,
};

/* Nesting levels whose container kind fits in the _stack bitset. */
#define MAX_NEST ((int)(sizeof(((struct qs_json *)0)->_stack) * 8))

/* ==== Helpers ==== */

static const char *const lits[] = {"true", "false", "null"};

static int is_space(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

static int is_object(const struct qs_json *j, int level)
{
    return (j->_stack[level / 32] >> (level % 32)) & 1;
}

/* CJK as counted in cjk_chars: one token per character in Qwen's tokenizer
 * (dashscope-wire.md §7), against ~4 characters per token for other text. */
static int is_cjk(unsigned cp)
{
    return (cp >= 0x3000 && cp <= 0x30FF)     /* CJK symbols and punctuation, hiragana, katakana */
           || (cp >= 0x3400 && cp <= 0x4DBF)  /* CJK unified ideographs extension A */
           || (cp >= 0x4E00 && cp <= 0x9FFF)  /* CJK unified ideographs */
           || (cp >= 0xAC00 && cp <= 0xD7AF)  /* Hangul syllables */
           || (cp >= 0xFF00 && cp <= 0xFFEF); /* halfwidth and fullwidth forms */
}

static void emit(struct qs_json *j, enum qs_json_type type, const char *val, size_t len, qs_json_cb cb,
                 void *ctx)
{
    struct qs_json_value v = {
        .depth = j->_depth, .type = type, .val = val, .len = len, .truncated = j->_truncated};

    if (j->_depth > QS_JSON_MAX_DEPTH)
        return; /* too deep to have a path: not reported (json.h) */
    for (int i = 0; i < j->_depth; i++)
        v.path[i] = is_object(j, i) ? j->_keys[i] : "[]";
    cb(ctx, &v);
}

/* A value just ended: expect ',' or a closing bracket, or finish the document. */
static void value_done(struct qs_json *j)
{
    if (j->_depth > 0) {
        j->_state = S_AFTER;
    } else {
        j->_state = S_TRAILING;
        j->done = 1;
    }
}

/* ==== Strings ==== */

/* Appends <n> bytes of the current scalar to _buf, truncating at QS_JSON_STR_MAX. */
static void val_put(struct qs_json *j, const void *s, size_t n)
{
    size_t room = QS_JSON_STR_MAX - j->_len;

    if (n > room) {
        n = room;
        j->_truncated = 1;
    }
    memcpy(j->_buf + j->_len, s, n);
    j->_len += n;
}

/* Appends <n> bytes to the key of the innermost object, truncating at QS_JSON_KEY_MAX.
 * Keys of levels beyond QS_JSON_MAX_DEPTH are never part of a reported path: dropped. */
static void key_put(struct qs_json *j, const void *s, size_t n)
{
    size_t room = QS_JSON_KEY_MAX - j->_len;

    if (j->_depth > QS_JSON_MAX_DEPTH)
        return;
    if (n > room)
        n = room;
    memcpy(j->_keys[j->_depth - 1] + j->_len, s, n);
    j->_len += n;
}

/* Stores one decoded code point (from an escape) and counts it if in a value. */
static void put_cp(struct qs_json *j, unsigned cp)
{
    unsigned char u[4];
    size_t n;

    if (cp < 0x80) {
        u[0] = (unsigned char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (unsigned char)(0xC0 | cp >> 6);
        u[1] = (unsigned char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (unsigned char)(0xE0 | cp >> 12);
        u[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
        u[2] = (unsigned char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        u[0] = (unsigned char)(0xF0 | cp >> 18);
        u[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3F));
        u[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
        u[3] = (unsigned char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    if (j->_in_key) {
        key_put(j, u, n);
        return;
    }
    j->text_chars++;
    j->cjk_chars += (uint64_t)is_cjk(cp);
    val_put(j, u, n);
}

/* A \uXXXX escape is complete. UTF-16 surrogate pairs (\ud83d\ude00) make one code
 * point; a lone surrogate, which RFC 8259 §8.2 lets through, becomes U+FFFD. */
static void unicode_escape(struct qs_json *j, unsigned u)
{
    unsigned hi = j->_hi_surrogate;

    if (hi != 0) {
        j->_hi_surrogate = 0;
        if (u >= 0xDC00 && u <= 0xDFFF) {
            put_cp(j, 0x10000 + ((hi - 0xD800) << 10) + (u - 0xDC00));
            return;
        }
        put_cp(j, 0xFFFD);
    }
    if (u >= 0xD800 && u <= 0xDBFF)
        j->_hi_surrogate = u; /* wait for the low half */
    else
        put_cp(j, u >= 0xDC00 && u <= 0xDFFF ? 0xFFFD : u);
}

/* Returns the value of hex digit <c>, or -1. */
static int hex_digit(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* One byte after a backslash (_esc 1) or of the 4 hex digits of \u (_esc 2).
 * Returns 0, or -1 on an invalid escape. */
static int escape_byte(struct qs_json *j, unsigned char c)
{
    unsigned cp;

    if (j->_esc == 2) {
        int d = hex_digit(c);
        if (d < 0)
            return -1;
        j->_u = j->_u << 4 | (unsigned)d;
        if (++j->_udigits == 4) {
            j->_esc = 0;
            unicode_escape(j, j->_u);
        }
        return 0;
    }
    switch (c) {
    case '"':
    case '\\':
    case '/':
        cp = c;
        break;
    case 'b':
        cp = '\b';
        break;
    case 'f':
        cp = '\f';
        break;
    case 'n':
        cp = '\n';
        break;
    case 'r':
        cp = '\r';
        break;
    case 't':
        cp = '\t';
        break;
    case 'u':
        j->_esc = 2;
        j->_u = 0;
        j->_udigits = 0;
        return 0; /* a pending high surrogate stays pending: this may be its low half */
    default:
        return -1;
    }
    j->_esc = 0;
    if (j->_hi_surrogate != 0) {
        j->_hi_surrogate = 0;
        put_cp(j, 0xFFFD);
    }
    put_cp(j, cp);
    return 0;
}

/* True when the 8 bytes at <p> are all ASCII and none is '"', '\\' or a control
 * character: the usual SWAR "has byte less than n" test (Hacker's Delight 6-1), exact
 * here because bytes with the high bit set are ruled out first (w's own high bits). */
static int plain_ascii8(const unsigned char *p)
{
    const uint64_t ones = 0x0101010101010101u, high = 0x8080808080808080u;
    uint64_t w, q, b;

    memcpy(&w, p, 8);
    q = w ^ (ones * '"');
    b = w ^ (ones * '\\');
    return ((w | (q - ones) | (b - ones) | (w - ones * 0x20)) & high) == 0;
}

void qs_json_count_text(const char *s, size_t n, uint64_t *chars, uint64_t *cjk)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    for (; p < end; p++) {
        if ((*p & 0xC0) == 0x80)
            continue;
        (*chars)++;
        if ((*p & 0xF0) == 0xE0 && end - p >= 3)
            *cjk += (uint64_t)is_cjk((*p & 0x0Fu) << 12 | (p[1] & 0x3Fu) << 6 | (p[2] & 0x3Fu));
    }
}

/* The hot loop: scans plain bytes of a string value from <p> (which is plain) up to
 * the next '"', '\\', control character or <end>. Counts characters as UTF-8 lead and
 * ASCII bytes, assembles 3-byte sequences (where all the CJK ranges are) in _cp and
 * _utf8_left across calls, and keeps the first QS_JSON_STR_MAX bytes. Does not
 * validate UTF-8. Returns where it stopped. */
static const unsigned char *value_run(struct qs_json *j, const unsigned char *p, const unsigned char *end)
{
    const unsigned char *start = p, *stop;
    uint64_t chars = 0, cjk = 0;
    unsigned cp = j->_cp;
    int left = j->_utf8_left;

    while (p < end) {
        if (end - p >= 8 && plain_ascii8(p)) {
            p += 8;
            chars += 8;
            continue;
        }
        for (stop = end - p > 8 ? p + 8 : end; p < stop; p++) {
            unsigned c = *p;
            if (c < 0x80) {
                if (c == '"' || c == '\\' || c < 0x20)
                    goto out;
                chars++;
            } else if (c >= 0xC0) {
                chars++;
                left = (c & 0xF0) == 0xE0 ? 2 : 0; /* only 3-byte sequences can be CJK */
                cp = c & 0x0F;
                if (left && end - p >= 3 && (p[1] & 0xC0) == 0x80 && (p[2] & 0xC0) == 0x80) {
                    /* whole sequence here: decode it at once (same result as byte by byte) */
                    cjk += (uint64_t)is_cjk(cp << 12 | (p[1] & 0x3Fu) << 6 | (p[2] & 0x3Fu));
                    left = 0;
                    p += 2;
                }
            } else if (left > 0) {
                cp = cp << 6 | (c & 0x3F);
                if (--left == 0)
                    cjk += (uint64_t)is_cjk(cp);
            }
        }
    }
out:
    j->_cp = cp;
    j->_utf8_left = left;
    j->text_chars += chars;
    j->cjk_chars += cjk;
    val_put(j, start, (size_t)(p - start));
    return p;
}

/* Like value_run for a key: keys are short and not counted. */
static const unsigned char *key_run(struct qs_json *j, const unsigned char *p, const unsigned char *end)
{
    const unsigned char *start = p;

    while (p < end && *p != '"' && *p != '\\' && *p >= 0x20)
        p++;
    key_put(j, start, (size_t)(p - start));
    return p;
}

/* Scans string content from <p>. Returns the position after the last byte consumed
 * (after the closing quote if the string ended), or NULL on malformed input. */
static const unsigned char *scan_string(struct qs_json *j, const unsigned char *p, const unsigned char *end,
                                        qs_json_cb cb, void *ctx)
{
    while (p < end) {
        unsigned char c = *p;

        if (j->_esc != 0) {
            if (escape_byte(j, c) < 0)
                return NULL;
            p++;
            continue;
        }
        if (c == '\\') {
            /* Fast path for a whole \uXXXX in the buffer: older httpx sends all
             * non-ASCII text so (dashscope-wire.md §1.4). escape_byte does the rest. */
            int d0, d1, d2, d3;
            if (end - p >= 6 && p[1] == 'u' && (d0 = hex_digit(p[2])) >= 0 && (d1 = hex_digit(p[3])) >= 0 &&
                (d2 = hex_digit(p[4])) >= 0 && (d3 = hex_digit(p[5])) >= 0) {
                unicode_escape(j, (unsigned)(d0 << 12 | d1 << 8 | d2 << 4 | d3));
                p += 6;
                continue;
            }
            j->_esc = 1;
            p++;
            continue;
        }
        if (j->_hi_surrogate != 0) { /* not followed by an escape: it was lone */
            j->_hi_surrogate = 0;
            put_cp(j, 0xFFFD);
        }
        if (c == '"') {
            if (j->_in_key) {
                if (j->_depth <= QS_JSON_MAX_DEPTH)
                    j->_keys[j->_depth - 1][j->_len] = '\0';
                j->_state = S_COLON;
            } else {
                j->_buf[j->_len] = '\0';
                emit(j, QS_JSON_STRING, j->_buf, j->_len, cb, ctx);
                value_done(j);
            }
            return p + 1;
        }
        if (c < 0x20)
            return NULL; /* RFC 8259 §7: control characters must be escaped */
        p = j->_in_key ? key_run(j, p, end) : value_run(j, p, end);
    }
    return p;
}

/* ==== Structure, numbers, literals ==== */

static void start_string(struct qs_json *j, int in_key)
{
    j->_state = S_STRING;
    j->_in_key = in_key;
    j->_len = 0;
    j->_esc = 0;
    j->_hi_surrogate = 0;
    j->_utf8_left = 0;
}

/* Opens an object or array. Returns 1 (consumed), or -1 past MAX_NEST levels. */
static int push(struct qs_json *j, int object)
{
    int level = j->_depth;
    uint32_t bit = (uint32_t)1 << (level % 32);

    if (level >= MAX_NEST)
        return -1;
    if (object)
        j->_stack[level / 32] |= bit;
    else
        j->_stack[level / 32] &= ~bit;
    j->_depth++;
    j->_state = object ? S_KEY_OR_CLOSE : S_VALUE_OR_CLOSE;
    return 1;
}

/* <c> must close the innermost container. Returns 1, or -1 if it does not. */
static int close_container(struct qs_json *j, unsigned char c)
{
    if (c != (is_object(j, j->_depth - 1) ? '}' : ']'))
        return -1;
    j->_depth--;
    value_done(j);
    return 1;
}

/* The first byte of a value. Returns 1, or -1 if <c> cannot start one. */
static int start_value(struct qs_json *j, unsigned char c)
{
    j->_truncated = 0;
    switch (c) {
    case '"':
        start_string(j, 0);
        return 1;
    case '{':
        return push(j, 1);
    case '[':
        return push(j, 0);
    case 't':
        j->_state = S_TRUE;
        break;
    case 'f':
        j->_state = S_FALSE;
        break;
    case 'n':
        j->_state = S_NULL;
        break;
    case '-':
        j->_state = S_NUM_MINUS;
        break;
    case '0':
        j->_state = S_NUM_ZERO;
        break;
    default:
        if (c < '1' || c > '9')
            return -1;
        j->_state = S_NUM_INT;
    }
    j->_len = 0;
    if (j->_state < S_TRUE)
        val_put(j, &c, 1); /* number text */
    else
        j->_len = 1; /* first letter of the literal matched */
    return 1;
}

/* One byte in a number. Returns 1 (consumed), 0 when <c> ends the number (then it is
 * reported, and <c> must be scanned again as what follows the value), -1 on error.
 * A top-level number therefore completes only at the byte after it. */
static int number_byte(struct qs_json *j, unsigned char c, qs_json_cb cb, void *ctx)
{
    enum { BAD = -1, END = -2 };
    int digit = c >= '0' && c <= '9', e = (c | 0x20) == 'e', next;

    switch (j->_state) {
    case S_NUM_MINUS:
        next = c == '0' ? S_NUM_ZERO : digit ? S_NUM_INT : BAD;
        break;
    case S_NUM_ZERO:
        next = c == '.' ? S_NUM_DOT : e ? S_NUM_E : END;
        break;
    case S_NUM_INT:
        next = digit ? S_NUM_INT : c == '.' ? S_NUM_DOT : e ? S_NUM_E : END;
        break;
    case S_NUM_DOT:
        next = digit ? S_NUM_FRAC : BAD;
        break;
    case S_NUM_FRAC:
        next = digit ? S_NUM_FRAC : e ? S_NUM_E : END;
        break;
    case S_NUM_E:
        next = digit ? S_NUM_EXP : c == '+' || c == '-' ? S_NUM_ESIGN : BAD;
        break;
    case S_NUM_ESIGN:
        next = digit ? S_NUM_EXP : BAD;
        break;
    default: /* S_NUM_EXP */
        next = digit ? S_NUM_EXP : END;
    }
    if (next == BAD)
        return -1;
    if (next == END) {
        j->_buf[j->_len] = '\0';
        emit(j, QS_JSON_NUMBER, j->_buf, j->_len, cb, ctx);
        value_done(j);
        return 0;
    }
    j->_state = next;
    val_put(j, &c, 1);
    return 1;
}

/* One byte of a structural (non-string) state. Returns bytes consumed (0 or 1) or -1. */
static int step(struct qs_json *j, unsigned char c, qs_json_cb cb, void *ctx)
{
    int st = j->_state;

    if (st >= S_NUM_MINUS && st <= S_NUM_EXP)
        return number_byte(j, c, cb, ctx);
    if (st >= S_TRUE && st <= S_NULL) {
        const char *lit = lits[st - S_TRUE];
        if (c != (unsigned char)lit[j->_len])
            return -1;
        if (lit[++j->_len] == '\0') {
            emit(j, (enum qs_json_type)(QS_JSON_TRUE + (st - S_TRUE)), lit, j->_len, cb, ctx);
            value_done(j);
        }
        return 1;
    }
    if (is_space(c))
        return 1;
    switch (st) {
    case S_COLON:
        if (c != ':')
            return -1;
        j->_state = S_VALUE;
        return 1;
    case S_AFTER:
        if (c != ',')
            return close_container(j, c);
        j->_state = is_object(j, j->_depth - 1) ? S_KEY : S_VALUE;
        return 1;
    case S_KEY_OR_CLOSE:
    case S_KEY:
        if (c == '}' && st == S_KEY_OR_CLOSE)
            return close_container(j, c);
        if (c != '"')
            return -1;
        start_string(j, 1);
        return 1;
    case S_VALUE_OR_CLOSE:
        if (c == ']')
            return close_container(j, c);
        return start_value(j, c);
    default: /* S_VALUE */
        return start_value(j, c);
    }
}

/* ==== API ==== */

/* Runs the state machine over <buf>; string content goes through scan_string's runs,
 * everything else one byte at a time through step(). See json.h for the results. */
long qs_json_feed(struct qs_json *j, const char *buf, size_t len, qs_json_cb cb, void *ctx)
{
    const unsigned char *start = (const unsigned char *)buf, *p = start, *end = start + len;
    int r;

    if (j->_state == S_ERROR)
        return QS_JSON_EBAD;
    while (p < end && !j->done) {
        if (j->_state == S_STRING) {
            p = scan_string(j, p, end, cb, ctx);
            if (p == NULL)
                goto bad;
            continue;
        }
        r = step(j, *p, cb, ctx);
        if (r < 0)
            goto bad;
        p += r;
    }
    if (j->_state == S_TRAILING) {
        while (p < end && is_space(*p))
            p++;
        if (p < end)
            j->_state = S_END; /* bytes after the document: later whitespace is theirs */
    }
    return (long)(p - start);
bad:
    j->_state = S_ERROR;
    return QS_JSON_EBAD;
}

/* Compares v's path with the <depth> const char * arguments. Returns 1 or 0. */
int qs_json_path_is(const struct qs_json_value *v, int depth, ...)
{
    va_list ap;
    int ok = v->depth == depth;

    va_start(ap, depth);
    for (int i = 0; ok && i < depth; i++)
        ok = strcmp(v->path[i], va_arg(ap, const char *)) == 0;
    va_end(ap);
    return ok;
}
