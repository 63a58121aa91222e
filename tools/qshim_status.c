/* qshim_status.c - `qshim status`: the shared pacing budget, as every process sees it.
 *
 * Reads the user's shared memory table (shm.h) without creating it, takes a copy of each
 * key's pacer state (pacer.h) under its lock, and shows per key (region/model) the tokens in
 * the current 1 s and 60 s windows against the limit the pacer applies (the same lookup as
 * the shim: config, region table, default_limit, times headroom), the cooldown left after a
 * 429, when the next request could go, the request spacing (widened after a hidden 429), and
 * how far ahead slots are already granted. The
 * requests granted per window come from the state's request rings; the requests waiting
 * for a slot are bounded from the spacing.
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "config.h"
#include "limtab.h"
#include "pacer.h"
#include "qshim_cmd.h"
#include "shm.h"
#include "shm_layout.h"

const char qs_status_usage[] =
    "usage: qshim status [--json] [-w SEC [-n COUNT]] [-c FILE] [--shm NAME]\n"
    "\n"
    "Shows the pacing budget that every process of this user on this machine shares, from\n"
    "the shared memory table (/dev/shm/qshim-UID-vN) the shim keeps it in. One row per\n"
    "key (REGION/MODEL):\n"
    "\n"
    "  TOK/S, TOK/MIN  tokens in the last 1 s and 60 s windows / what the pacer allows in\n"
    "                  one (the limit that applies, times headroom)\n"
    "  REQ/S, REQ/MIN  requests granted in the last 1 s and 60 s windows / their allowance\n"
    "  COOLDOWN        time left in which no request is sent after a 429\n"
    "  NEXT            how long a new 1-token request would wait for its slot now\n"
    "  SPACING         the interval between requests the pacer keeps; after a hidden 429\n"
    "                  it is widened to what the server's window showed (xFACTOR over the\n"
    "                  configured one) for the time shown, then forgotten\n"
    "  AHEAD           slots already granted into the future, and at most how many\n"
    "                  requests are waiting for them\n"
    "\n"
    "Limits come from the config (as in 'qshim limits'); a key whose model the config and\n"
    "tables do not know shows default_limit. No table at all (no process has paced a\n"
    "request since boot) is said so, with exit status 0.\n"
    "\n"
    "  --json          one JSON object (per refresh) instead of the table\n"
    "  -w, --watch SEC refresh every SEC seconds (fractions allowed) until interrupted\n"
    "  -n, --count N   with -w: stop after N refreshes\n"
    "  -c, --config F  the config to take limits and headroom from (default: the one\n"
    "                  qshim would use)\n"
    "  --shm NAME      the shared memory object (default: $QSHIM_SHM if set, else the\n"
    "                  per-user /qshim-UID-vN, the names the shim uses)\n"
    "  -h, --help      show this help\n"
    "\n"
    "Exit status: 0; 1 if the table or the config cannot be read; 2 on a usage error.\n";

struct row {
    char key[QS_SHM_KEY_MAX];
    char source[QS_CFG_PATH_MAX + 64];
    uint64_t tok_1s, tok_60s;                                  /* tokens in (now - window, now] */
    uint64_t req_1s, req_60s;                                  /* requests granted in them */
    uint64_t tok_ahead;                                        /* tokens of slots granted after now */
    uint64_t lim_tok_1s, lim_tok_60s, lim_req_1s, lim_req_60s; /* 0 = not limited */
    int retired;
    uint64_t cooldown_ns, next_ns, ahead_ns, req_ns;
    uint64_t spacing_ns, widened_ns; /* spacing now; how long its widening still holds (0: none) */
    uint64_t waiting_max;            /* requests with a slot after now, at most */
};

struct view {
    const struct qs_config *cfg;
    uint64_t now;
    struct row *rows;
    int n, cap;
};

/* Tokens recorded before the end of step <j> of a window ring (pacer.c win_before): steps
 * older than the ring count as 0, which counts everything it holds (the safe side). */
static uint64_t ring_before(const uint64_t *cum, uint64_t slots, uint64_t newest, uint64_t total, uint64_t j)
{
    if (j >= newest)
        return total;
    if (newest + 1 > slots && j < newest + 1 - slots)
        return 0;
    return cum[j % slots];
}

/* Tokens of the slots in (now - span, now] and after now, from one ring. */
static void ring_tokens(const uint64_t *cum, uint64_t slots, uint64_t newest, uint64_t total, uint64_t step,
                        uint64_t span, uint64_t now, uint64_t *in, uint64_t *ahead)
{
    uint64_t upto = ring_before(cum, slots, newest, total, now / step);
    uint64_t from = now < span + step ? 0 : ring_before(cum, slots, newest, total, (now - span) / step - 1);
    *in = upto > from ? upto - from : 0;
    *ahead = total > upto ? total - upto : 0;
}

static uint64_t allowance(double limit, double headroom)
{
    if (!(limit > 0))
        return 0;
    double x = headroom * limit + 1e-6; /* pacer.c budget(): floor, at least 1 */
    return x >= 1 ? (uint64_t)x : 1;
}

static void add_row(void *ctx, const char *key, const struct qs_pace_state *s)
{
    struct view *v = ctx;
    const struct qs_config *cfg = v->cfg;
    char region[64], model[QS_SHM_KEY_MAX];
    const char *slash = strchr(key, '/');
    struct qs_limit l;
    struct qs_pace_rate r;
    uint64_t ahead;

    if (v->n == v->cap) {
        int cap = v->cap ? 2 * v->cap : 32;
        struct row *rows = realloc(v->rows, sizeof *rows * (size_t)cap);
        if (rows == NULL)
            return;
        v->rows = rows;
        v->cap = cap;
    }
    struct row *w = &v->rows[v->n++];
    memset(w, 0, sizeof *w);
    snprintf(w->key, sizeof w->key, "%s", key);
    if (slash != NULL) {
        snprintf(region, sizeof region, "%.*s", (int)(slash - key), key);
        snprintf(model, sizeof model, "%s", slash + 1);
    } else {
        snprintf(region, sizeof region, "%s", strcmp(cfg->region, "auto") == 0 ? "cn-beijing" : cfg->region);
        snprintf(model, sizeof model, "%s", key);
    }
    qs_limits_lookup(cfg, region, model, &l, w->source, sizeof w->source);
    qs_pace_rate_init(&r, l.rpm, l.tpm, l.rps, l.tps, cfg->headroom);
    w->retired = (int)r.retired;
    w->lim_tok_1s = r.tok_1s;
    w->lim_tok_60s = r.tok_60s;
    w->lim_req_1s = allowance(l.rps > 0 ? l.rps : l.rpm / 60, cfg->headroom);
    w->lim_req_60s = allowance(l.rpm, cfg->headroom);
    w->req_ns = r.req_ns;
    ring_tokens(s->w1.cum, QS_PACE_W1_SLOTS, s->w1.newest, s->w1.total, QS_PACE_W1_STEP_NS, QS_PACE_NS_1S,
                v->now, &w->tok_1s, &w->tok_ahead);
    ring_tokens(s->w60.cum, QS_PACE_W60_SLOTS, s->w60.newest, s->w60.total, QS_PACE_W60_STEP_NS,
                QS_PACE_NS_60S, v->now, &w->tok_60s, &ahead);
    ring_tokens(s->q1.cum, QS_PACE_W1_SLOTS, s->q1.newest, s->q1.total, QS_PACE_W1_STEP_NS, QS_PACE_NS_1S,
                v->now, &w->req_1s, &ahead);
    ring_tokens(s->q60.cum, QS_PACE_W60_SLOTS, s->q60.newest, s->q60.total, QS_PACE_W60_STEP_NS,
                QS_PACE_NS_60S, v->now, &w->req_60s, &ahead);
    w->cooldown_ns = s->cooldown_ns > v->now ? s->cooldown_ns - v->now : 0;
    uint64_t next = qs_pace_next_free(s, &r, v->now);
    w->next_ns = next > v->now ? next - v->now : 0;
    w->ahead_ns = s->last_slot > v->now ? s->last_slot - v->now : 0;
    uint64_t until;
    w->spacing_ns = qs_pace_spacing(s, &r, v->now, &until);
    w->widened_ns = until > v->now ? until - v->now : 0;
    /* Granted slots are at least req_ns apart (each grant moves the request TAT one
     * interval past its slot), so (now, last_slot] holds at most ahead / req_ns + 1. */
    if (w->ahead_ns > 0)
        w->waiting_max = r.req_ns > 0 ? w->ahead_ns / r.req_ns + 1 : 1;
}

/* ==================== Output ==================== */

static void fmt_ms(char *out, size_t len, uint64_t ns)
{
    if (ns == 0)
        snprintf(out, len, "-");
    else if (ns < 10 * 1000000ull)
        snprintf(out, len, "%.1f ms", (double)ns / 1e6);
    else if (ns < 10 * QS_PACE_NS_1S)
        snprintf(out, len, "%" PRIu64 " ms", ns / 1000000);
    else
        snprintf(out, len, "%.1f s", (double)ns / 1e9);
}

/* "used/limit", "-" for no limit */
static void fmt_frac(char *out, size_t len, const char *used, uint64_t limit)
{
    if (limit == 0)
        snprintf(out, len, "%s/-", used);
    else
        snprintf(out, len, "%s/%" PRIu64, used, limit);
}

/* <src> with control characters shown as '?': a model name is the program's text, and a
 * newline in it would break the table. */
static void printable(char *dst, size_t len, const char *src)
{
    size_t i = 0;
    for (; src[i] && i + 1 < len; i++)
        dst[i] = (unsigned char)src[i] < 0x20 || src[i] == 0x7f ? '?' : src[i];
    dst[i] = '\0';
}

static void print_table(const char *name, const struct view *v)
{
    size_t wk = 3;
    for (int i = 0; i < v->n; i++)
        if (strlen(v->rows[i].key) > wk)
            wk = strlen(v->rows[i].key);
    printf("# pacing table %s: %d key%s; limits from %s, headroom %g\n", name, v->n, v->n == 1 ? "" : "s",
           v->cfg->source[0] ? v->cfg->source : "built-in defaults", v->cfg->headroom);
    if (v->n == 0) {
        printf("no keys yet: no request has been paced through it\n");
        return;
    }
    printf("%-*s %15s %17s %10s %12s %9s %9s %-22s %s\n", (int)wk, "KEY", "TOK/S", "TOK/MIN", "REQ/S",
           "REQ/MIN", "COOLDOWN", "NEXT", "SPACING", "AHEAD");
    for (int i = 0; i < v->n; i++) {
        const struct row *r = &v->rows[i];
        char used[32], t1[64], t60[64], q1[64], q60[64], cd[24], nx[24], ah[24], ahead[64], sp[24], wl[24],
            spacing[64], key[QS_SHM_KEY_MAX];
        printable(key, sizeof key, r->key);
        snprintf(used, sizeof used, "%" PRIu64, r->tok_1s);
        fmt_frac(t1, sizeof t1, used, r->lim_tok_1s);
        snprintf(used, sizeof used, "%" PRIu64, r->tok_60s);
        fmt_frac(t60, sizeof t60, used, r->lim_tok_60s);
        snprintf(used, sizeof used, "%" PRIu64, r->req_1s);
        fmt_frac(q1, sizeof q1, used, r->lim_req_1s);
        snprintf(used, sizeof used, "%" PRIu64, r->req_60s);
        fmt_frac(q60, sizeof q60, used, r->lim_req_60s);
        fmt_ms(cd, sizeof cd, r->cooldown_ns);
        fmt_ms(nx, sizeof nx, r->next_ns);
        fmt_ms(ah, sizeof ah, r->ahead_ns);
        fmt_ms(sp, sizeof sp, r->spacing_ns);
        fmt_ms(wl, sizeof wl, r->widened_ns);
        if (r->widened_ns > 0 && r->req_ns > 0)
            snprintf(spacing, sizeof spacing, "%s x%.2f, %s", sp, (double)r->spacing_ns / (double)r->req_ns,
                     wl);
        else
            snprintf(spacing, sizeof spacing, "%s", sp);
        if (r->ahead_ns > 0)
            snprintf(ahead, sizeof ahead, "%s, <=%" PRIu64 " waiting", ah, r->waiting_max);
        else
            snprintf(ahead, sizeof ahead, "- (0 waiting)");
        if (r->retired)
            printf("%-*s retired model (limits 0/0): never paced; %s\n", (int)wk, key, r->source);
        else
            printf("%-*s %15s %17s %10s %12s %9s %9s %-22s %s\n", (int)wk, key, t1, t60, q1, q60, cd, nx,
                   spacing, ahead);
    }
}

static void json_str(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20)
            printf("\\u%04x", c);
        else
            putchar(c);
    }
    putchar('"');
}

static void json_lim(const char *key, const char *used, uint64_t limit)
{
    printf(",\"%s\":{\"used\":%s,\"limit\":", key, used);
    if (limit == 0)
        printf("null}");
    else
        printf("%" PRIu64 "}", limit);
}

static void print_json(const char *name, int exists, const struct view *v)
{
    printf("{\"shm\":");
    json_str(name);
    printf(",\"exists\":%s,\"config\":", exists ? "true" : "false");
    if (v->cfg->source[0])
        json_str(v->cfg->source);
    else
        printf("null");
    printf(",\"headroom\":%g,\"keys\":[", v->cfg->headroom);
    for (int i = 0; i < v->n; i++) {
        const struct row *r = &v->rows[i];
        char used[32];
        printf("%s{\"key\":", i ? "," : "");
        json_str(r->key);
        printf(",\"limit_source\":");
        json_str(r->source);
        printf(",\"retired\":%s", r->retired ? "true" : "false");
        snprintf(used, sizeof used, "%" PRIu64, r->tok_1s);
        json_lim("tokens_1s", used, r->lim_tok_1s);
        snprintf(used, sizeof used, "%" PRIu64, r->tok_60s);
        json_lim("tokens_60s", used, r->lim_tok_60s);
        snprintf(used, sizeof used, "%" PRIu64, r->req_1s);
        json_lim("requests_1s", used, r->lim_req_1s);
        snprintf(used, sizeof used, "%" PRIu64, r->req_60s);
        json_lim("requests_60s", used, r->lim_req_60s);
        printf(",\"tokens_ahead\":%" PRIu64 ",\"request_interval_ms\":%.3f,\"configured_interval_ms\":%.3f,"
               "\"widened_for_ms\":%.3f,\"cooldown_ms\":%.3f,\"next_free_ms\":%.3f,\"ahead_ms\":%.3f,"
               "\"waiting_max\":%" PRIu64 "}",
               r->tok_ahead, (double)r->spacing_ns / 1e6, (double)r->req_ns / 1e6,
               (double)r->widened_ns / 1e6, (double)r->cooldown_ns / 1e6, (double)r->next_ns / 1e6,
               (double)r->ahead_ns / 1e6, r->waiting_max);
    }
    printf("]}\n");
}

/* ==================== The command ==================== */

/* One look: 0, or 1 when the table exists but cannot be mapped. */
static int show(const char *name, const struct qs_config *cfg, int json)
{
    struct view v = {.cfg = cfg};
    char err[256];
    int fd = shm_open(name, O_RDONLY | O_CLOEXEC, 0);

    /* Looked for first, because qs_shm_open would create it. */
    if (fd < 0 && errno == ENOENT) {
        if (json)
            print_json(name, 0, &v);
        else
            printf("no shared pacing table %s: no process has paced a request through it since boot "
                   "(or it was removed)\n",
                   name);
        return 0;
    }
    if (fd < 0) {
        fprintf(stderr, "qshim status: %s: %s\n", name, strerror(errno));
        return 1;
    }
    close(fd);
    struct qs_shm *m = qs_shm_open(name, err, sizeof err);
    if (m == NULL) {
        fprintf(stderr, "qshim status: %s\n", err);
        return 1;
    }
    v.now = qs_now_ns();
    qs_shm_foreach(m, add_row, &v);
    qs_shm_close(m);
    if (json)
        print_json(name, 1, &v);
    else
        print_table(name, &v);
    free(v.rows);
    return 0;
}

int qs_cmd_status(int argc, char **argv)
{
    const char *cfile = NULL, *shm = NULL;
    double watch = 0;
    long count = 0;
    int json = 0, rc = 1;
    char name[QS_SHM_KEY_MAX + 8], path[QS_CFG_PATH_MAX], err[QS_CFG_ERR_MAX];

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has_value = strcmp(a, "-w") == 0 || strcmp(a, "--watch") == 0 || strcmp(a, "-n") == 0 ||
                        strcmp(a, "--count") == 0 || strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0 ||
                        strcmp(a, "--shm") == 0;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(qs_status_usage, stdout);
            return 0;
        } else if (strcmp(a, "--json") == 0) {
            json = 1;
        } else if (has_value && i + 1 == argc) {
            fprintf(stderr, "qshim status: %s needs a value\n\n%s", a, qs_status_usage);
            return QS_EXIT_USAGE;
        } else if (has_value) {
            const char *val = argv[++i];
            char *end;
            if (a[1] == 'w' || strcmp(a, "--watch") == 0) {
                watch = strtod(val, &end);
                if (*end != '\0' || !(watch > 0) || watch > 86400) {
                    fprintf(stderr, "qshim status: %s wants seconds (> 0), not '%s'\n", a, val);
                    return QS_EXIT_USAGE;
                }
            } else if (a[1] == 'n' || strcmp(a, "--count") == 0) {
                count = strtol(val, &end, 10);
                if (*end != '\0' || count < 1) {
                    fprintf(stderr, "qshim status: %s wants a count (>= 1), not '%s'\n", a, val);
                    return QS_EXIT_USAGE;
                }
            } else if (a[1] == 'c' || strcmp(a, "--config") == 0) {
                cfile = val;
            } else {
                shm = val;
            }
        } else {
            fprintf(stderr, "qshim status: unknown argument '%s'\n\n%s", a, qs_status_usage);
            return QS_EXIT_USAGE;
        }
    }
    /* The name the shim uses (hook.c: $QSHIM_SHM when it starts with '/', else shm.c's
     * per-user default). */
    if (shm == NULL) {
        const char *env = getenv("QSHIM_SHM");
        shm = env != NULL && env[0] == '/' ? env : NULL;
    }
    if (shm != NULL)
        snprintf(name, sizeof name, "%s%s", shm[0] == '/' ? "" : "/", shm);
    else
        snprintf(name, sizeof name, "/qshim-%u-v%d", (unsigned)geteuid(), QS_SHM_VERSION);

    struct qs_config *cfg = malloc(sizeof *cfg);
    if (cfg == NULL) {
        fprintf(stderr, "qshim status: out of memory\n");
        return 1;
    }
    qs_config_defaults(cfg);
    if (cfile != NULL)
        snprintf(path, sizeof path, "%s", cfile);
    else if (qs_config_find(path, sizeof path) < 0)
        path[0] = '\0';
    if (path[0] != '\0' && qs_config_load_file(path, cfg, err, sizeof err) < 0) {
        fprintf(stderr, "qshim status: %s\n", err);
        goto out;
    }
    for (long k = 0;; k++) {
        if (watch > 0 && !json && isatty(1))
            fputs("\033[H\033[2J", stdout);
        if (show(name, cfg, json) != 0)
            goto out;
        fflush(stdout);
        if (watch == 0 || (count > 0 && k + 1 >= count))
            break;
        struct timespec ts = {(time_t)watch, (long)((watch - (double)(time_t)watch) * 1e9)};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
            ;
        if (!json && !isatty(1))
            putchar('\n');
    }
    rc = 0;
out:
    free(cfg);
    return rc;
}
