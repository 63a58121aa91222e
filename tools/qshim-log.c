/* qshim-log.c - reads the qshim audit log (SPEC section 7).
 *
 *   qshim-log [-f FILE]... [--rotated] [-c CONFIG] summary [--json]
 *   qshim-log [-f FILE]... [--rotated] [-c CONFIG] tail [-F] [-n N] [-s SECONDS]
 *   qshim-log [-f FILE]... [--rotated] [-c CONFIG] filter [--model M] [--status S] [--event E]
 *             [--prog P] [--since T] [--until T]
 *   qshim-log [-f FILE]... [--rotated] [-c CONFIG] plot [--model M] [--per second|minute]
 *             [--svg FILE] [--width N] [--height N]
 *   qshim-log help [COMMAND]
 *
 * The work is in log_*.c (reading, records, statistics, charts); this file holds the
 * options, the help texts, and tail's and filter's loops. Exit status 2 is a usage error.
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <fnmatch.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "config.h"
#include "log_collect.h"
#include "log_filter.h"
#include "log_limit.h"
#include "log_plot.h"
#include "log_read.h"
#include "log_series.h"
#include "log_summary.h"
#include "log_svg.h"
#include "log_time.h"
#include "log_vec.h"

#define EXIT_USAGE 2
#define MAX_FILES 64

struct cmd {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
    const char *usage;
};

static const struct cmd *lookup(const char *name);
static void usage(FILE *out);

/* ================================ Shared options ================================ */

#define GLOBAL_OPTIONS                                                                                       \
    "global options (before or after COMMAND):\n"                                                            \
    "  -f, --file FILE    read FILE; repeat for several; \"-\" is stdin. Default: the\n"                     \
    "                     log the shim writes: the config's log.path, or $QSHIM_LOG,\n"                      \
    "                     else $XDG_STATE_HOME/qshim/audit.jsonl (or\n"                                      \
    "                     ~/.local/state/qshim/audit.jsonl)\n"                                               \
    "  --rotated          read each FILE's rotated files FILE.N ... FILE.1 before it\n"                      \
    "  -c, --config FILE  the config for log.path and limits (default: the one the\n"                        \
    "                     shim finds: $QSHIM_CONFIG, ~/.config/qshim/qshim.conf,\n"                          \
    "                     /etc/qshim.conf)\n"                                                                \
    "  -h, --help         show this help\n"

struct opts {
    const char *files[MAX_FILES];
    size_t nfiles;
    int rotated;
    const char *config;
    const char *cmd; /* for messages */
    const char *usage;
};

/* One option of a command: a flag (sets *<flag>), or one with a value ("--name V",
 * "--name=V", "-alias V") stored in *<val>, or appended to the files with <file>. */
struct optdef {
    const char *name, *alias;
    const char **val;
    int *flag;
    int file;
};

/* The global options, first in every command's table. */
#define GLOBAL_DEFS(o)                                                                                       \
    {"--file", "-f", NULL, NULL, 1}, {"--config", "-c", &(o).config, NULL, 0},                               \
    {                                                                                                        \
        "--rotated", NULL, NULL, &(o).rotated, 0                                                             \
    }

static int is_help(const char *a) { return strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0; }

/* Parses argv[1..] by <defs> (ended by a NULL name) and -h/--help. Returns -1 when the
 * command goes on; else the status it returns: 0 after printing its help, EXIT_USAGE
 * after reporting a usage error. Values are checked by the command itself. */
static int parse_opts(struct opts *o, int argc, char **argv, const struct optdef *defs)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        const struct optdef *d;

        if (is_help(a)) {
            fputs(o->usage, stdout);
            return 0;
        }
        for (d = defs; d->name != NULL; d++) {
            size_t n = strlen(d->name);
            if (d->flag == NULL && strncmp(a, d->name, n) == 0 && a[n] == '=') {
                v = a + n + 1;
                break;
            }
            if (strcmp(a, d->name) == 0 || (d->alias != NULL && strcmp(a, d->alias) == 0))
                break;
        }
        if (d->name == NULL) {
            fprintf(stderr, "qshim-log %s: unknown %s '%s'\n\n%s", o->cmd,
                    a[0] == '-' ? "option" : "argument", a, o->usage);
            return EXIT_USAGE;
        }
        if (d->flag != NULL) {
            *d->flag = 1;
            continue;
        }
        if (v == NULL && i + 1 >= argc) {
            fprintf(stderr, "qshim-log %s: %s needs a value\n\n%s", o->cmd, a, o->usage);
            return EXIT_USAGE;
        }
        if (v == NULL)
            v = argv[++i];
        if (!d->file) {
            *d->val = v;
        } else if (o->nfiles == MAX_FILES) {
            fprintf(stderr, "qshim-log %s: at most %d files\n", o->cmd, MAX_FILES);
            return EXIT_USAGE;
        } else {
            o->files[o->nfiles++] = v;
        }
    }
    return -1;
}

/* A whole number in [lo, hi] from <s>; -1 when it is not one. */
static long number(const char *s, long lo, long hi)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
        return -1;
    return v;
}

/* The config: <o->config>, else the one the shim would find, else the defaults; with the
 * environment applied (QSHIM_LOG). Returns 0, or -1 when a config named with -c cannot be
 * read (reported). A config found by the search that is broken is reported and the
 * defaults are used, as the shim itself does. */
static int load_config(const struct opts *o, struct qs_config *cfg)
{
    char path[QS_CFG_PATH_MAX], err[QS_CFG_ERR_MAX];

    qs_config_defaults(cfg);
    if (o->config != NULL)
        snprintf(path, sizeof path, "%s", o->config);
    else if (qs_config_find(path, sizeof path) != 0)
        path[0] = '\0';
    if (path[0] != '\0' && qs_config_load_file(path, cfg, err, sizeof err) != 0) {
        fprintf(stderr, "qshim-log: %s\n", err);
        if (o->config != NULL)
            return -1;
        fprintf(stderr, "qshim-log: using the built-in defaults, as the shim does\n");
    }
    if (qs_config_apply_env(cfg, err, sizeof err) != 0)
        fprintf(stderr, "qshim-log: %s\n", err);
    return 0;
}

/* Sets up <rd> on the files of <o> (or the config's log). Returns 0, or 1 (reported). */
static int open_reader(struct opts *o, const struct qs_config *cfg, struct qs_log_reader *rd)
{
    if (o->nfiles == 0) {
        if (cfg->log.path[0] == '\0') {
            fprintf(stderr,
                    "qshim-log: no log path (HOME is not set and no config names one); use -f FILE\n");
            return 1;
        }
        o->files[o->nfiles++] = cfg->log.path;
    }
    if (qs_log_reader_init(rd, o->files, o->nfiles, o->rotated) != 0) {
        fprintf(stderr, "qshim-log: out of memory\n");
        qs_log_reader_free(rd);
        return 1;
    }
    return 0;
}

/* Everything a command needs before it reads: the config and the reader. */
static int setup(struct opts *o, struct qs_config **cfg, struct qs_log_reader *rd)
{
    memset(rd, 0, sizeof *rd);
    *cfg = malloc(sizeof **cfg);
    if (*cfg == NULL) {
        fprintf(stderr, "qshim-log: out of memory\n");
        return 1;
    }
    if (load_config(o, *cfg) != 0 || open_reader(o, *cfg, rd) != 0) {
        free(*cfg);
        *cfg = NULL;
        return 1;
    }
    return 0;
}

/* The exit status after reading: 1 when a file could not be opened. */
static int finish(struct qs_config *cfg, struct qs_log_reader *rd, int rc)
{
    if (rc == 0 && rd->nopen > 0)
        rc = 1;
    qs_log_reader_free(rd);
    free(cfg);
    return rc;
}

/* ================================ summary ================================ */

static const char summary_usage[] =
    "usage: qshim-log [GLOBAL OPTIONS] summary [--json]\n"
    "\n"
    "Sums the log up per model (in its region) and per program:\n"
    "  requests    logical requests (event \"request\", one per request: its outcome)\n"
    "  ok          of those, answered 2xx\n"
    "  429 hidden  throttles qshim retried without the program seeing them\n"
    "              (event \"throttled\")\n"
    "  429 passed  requests whose final answer was a throttle (a 429, or a 5xx\n"
    "              capacity error): throttles passed on to the program\n"
    "  fallbacks   requests moved to a fallback model (event \"fallback\")\n"
    "  wait ms     p50/p95/max of paced_ms + retry_ms of the requests\n"
    "  tokens      input and output tokens the answers reported\n"
    "  peak rpm    most requests that ended within any 60 s, and the model's limit\n"
    "  peak tpm    most tokens (input + output, or the shim's estimate without\n"
    "              usage) within any 60 s, and the model's limit\n"
    "The limit is the one the shim applied: the config's `limits` entries, else the\n"
    "compiled-in table of the records' region (see 'qshim limits'), else\n"
    "default_limit. Records may come in any order (processes share one log).\n"
    "\n"
    "  --json   print one JSON document instead of tables\n"
    "\n" GLOBAL_OPTIONS "\n"
    "Exit status: 0; 1 if a file cannot be read; 2 on a usage error.\n";

/* Reads every record of <rd> into <d>. Returns 0, or 1 when memory ran out (reported). */
static int collect(struct qs_log_reader *rd, struct qs_log_data *d)
{
    const char *line;
    size_t len;
    struct qs_log_rec r;

    while (qs_log_reader_next(rd, &line, &len, &r) == 1) {
        if (qs_log_data_add(d, &r) != 0) {
            fprintf(stderr, "qshim-log: out of memory after %lu records\n", d->records);
            return 1;
        }
    }
    qs_log_data_sort(d);
    return 0;
}

static int cmd_summary(int argc, char **argv)
{
    struct opts o = {.cmd = "summary", .usage = summary_usage};
    struct qs_config *cfg;
    struct qs_log_reader rd;
    struct qs_log_data d = {0};
    int json = 0, rc;

    const struct optdef defs[] = {
        GLOBAL_DEFS(o), {"--json", NULL, NULL, &json, 0}, {NULL, NULL, NULL, NULL, 0}};
    if ((rc = parse_opts(&o, argc, argv, defs)) >= 0)
        return rc;
    if (setup(&o, &cfg, &rd) != 0)
        return 1;
    rc = collect(&rd, &d);
    if (rc == 0 && d.records == 0 && rd.nopen > 0)
        rc = 1; /* nothing could be read: no empty summary */
    else if (rc == 0 && qs_log_summary_print(stdout, &d, cfg, json, rd.bad) != 0) {
        fprintf(stderr, "qshim-log: out of memory\n");
        rc = 1;
    }
    qs_log_data_free(&d);
    return finish(cfg, &rd, rc);
}

/* ================================ tail ================================ */

static const char tail_usage[] =
    "usage: qshim-log [GLOBAL OPTIONS] tail [-F] [-n N] [-s SECONDS]\n"
    "\n"
    "Shows the last records, one readable line each:\n"
    "  TIME (UTC) PROG[PID] EVENT MODEL STATUS xATTEMPTS wait PACED+RETRY ms\n"
    "  tok INPUT+OUTPUT (or ~ESTIMATE) LATENCY ms, then code=CODE and (REASON)\n"
    "\n"
    "  -n, --lines N   show the last N records (default 10)\n"
    "  -F, --follow    then keep reading the (last) file as it grows, like tail -F:\n"
    "                  a file rotated or replaced is followed to the new one, a\n"
    "                  truncated one is read again from its start; runs until\n"
    "                  interrupted\n"
    "  -s, --sleep-interval SECONDS\n"
    "                  how often -F looks for more (default 0.25)\n"
    "\n" GLOBAL_OPTIONS "\n"
    "Exit status: 0; 1 if a file cannot be read; 2 on a usage error.\n";

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static void print_rec(const struct qs_log_rec *r)
{
    char line[1024];
    qs_log_rec_describe(r, line, sizeof line);
    puts(line);
}

static int cmd_tail(int argc, char **argv)
{
    struct opts o = {.cmd = "tail", .usage = tail_usage};
    struct qs_config *cfg;
    struct qs_log_reader rd;
    struct qs_log_rec *ring = NULL, r;
    long n = 10;
    double interval = 0.25;
    int follow = 0, rc;
    size_t count = 0, cap = 0, len;
    const char *line, *lines = NULL, *sleep = NULL;
    const struct optdef defs[] = {GLOBAL_DEFS(o),
                                  {"--follow", "-F", NULL, &follow, 0},
                                  {"--lines", "-n", &lines, NULL, 0},
                                  {"--sleep-interval", "-s", &sleep, NULL, 0},
                                  {NULL, NULL, NULL, NULL, 0}};
    if ((rc = parse_opts(&o, argc, argv, defs)) >= 0)
        return rc;
    rc = 0;
    if (lines != NULL && (n = number(lines, 0, 10000000)) < 0) {
        fprintf(stderr, "qshim-log tail: -n needs a number of lines, not '%s'\n", lines);
        return EXIT_USAGE;
    }
    if (sleep != NULL) {
        char *end;
        interval = strtod(sleep, &end);
        if (*end != '\0' || !(interval >= 0.01 && interval <= 3600)) {
            fprintf(stderr, "qshim-log tail: -s needs seconds between 0.01 and 3600, not '%s'\n", sleep);
            return EXIT_USAGE;
        }
    }
    if (setup(&o, &cfg, &rd) != 0)
        return 1;
    rd.follow = follow;
    /* The last N records, kept in a ring (grown up to N) while the files stream past. */
    while (qs_log_reader_next(&rd, &line, &len, &r) == 1) {
        if (n == 0)
            continue;
        if (count < (size_t)n && qs_log_grow(&ring, &cap, count + 1, sizeof *ring) != 0) {
            fprintf(stderr, "qshim-log: out of memory\n");
            free(ring);
            return finish(cfg, &rd, 1);
        }
        ring[count++ % (size_t)n] = r;
    }
    for (size_t k = count > (size_t)n ? count - (size_t)n : 0; k < count; k++)
        print_rec(&ring[k % (size_t)n]);
    free(ring);
    fflush(stdout);
    if (follow) {
        struct sigaction sa = {.sa_handler = on_signal}; /* no SA_RESTART: the sleep ends */
        struct timespec ts = {(time_t)interval, (long)((interval - (double)(time_t)interval) * 1e9)};
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        while (!stop && !qs_log_reader_done(&rd)) {
            while (!stop && qs_log_reader_next(&rd, &line, &len, &r) == 1) {
                print_rec(&r);
                fflush(stdout);
            }
            if (stop || qs_log_reader_done(&rd))
                break;
            nanosleep(&ts, NULL);
            qs_log_reader_poll(&rd);
        }
    }
    return finish(cfg, &rd, rc);
}

/* ================================ filter ================================ */

static const char filter_usage[] =
    "usage: qshim-log [GLOBAL OPTIONS] filter [--model M] [--status S] [--event E]\n"
    "                 [--prog P] [--since T] [--until T]\n"
    "\n"
    "Prints the records that meet every condition given, as they are in the log\n"
    "(JSONL), in the order they were read. Malformed and truncated lines are never\n"
    "printed.\n"
    "\n"
    "  --model M   model matching the glob M (\"qwen-plus\", \"qwen3-*\")\n"
    "  --prog P    program (executable name) matching the glob P\n"
    "  --event E   event E, or any of a comma list: request, throttled, fallback,\n"
    "              passthrough, config, error\n"
    "  --status S  status S: a code (429), a class (5xx), \"-\" for none, or a comma\n"
    "              list of these\n"
    "  --since T   ts at or after T\n"
    "  --until T   ts before T\n"
    "T is a time as in the log (2026-11-23T18:04:05.123Z; shorter forms such as\n"
    "2026-11-23T18:04, \"2026-11-23 18:04:05\" or 2026-11-23 are UTC unless they end\n"
    "in +HH:MM), \"now\", or a span ago: 90s, 10m, 2h, 1d.\n"
    "\n" GLOBAL_OPTIONS "\n"
    "Exit status: 0 (also when nothing matched); 1 if a file cannot be read; 2 on\n"
    "a usage error.\n";

static int when(const struct opts *o, const char *opt, const char *v, int64_t *ms)
{
    if (qs_log_parse_when(v, (int64_t)qs_wall_ms(), ms) == 0)
        return 0;
    fprintf(stderr, "qshim-log %s: %s: '%s' is not a time (2026-11-23T18:04:05Z, now, 10m, 2h, 1d)\n", o->cmd,
            opt, v);
    return -1;
}

static int cmd_filter(int argc, char **argv)
{
    struct opts o = {.cmd = "filter", .usage = filter_usage};
    struct qs_log_filter f = {0};
    struct qs_config *cfg;
    struct qs_log_reader rd;
    struct qs_log_rec r;
    const char *line, *since = NULL, *until = NULL;
    size_t len;
    const struct optdef defs[] = {GLOBAL_DEFS(o),
                                  {"--model", NULL, &f.model, NULL, 0},
                                  {"--prog", NULL, &f.prog, NULL, 0},
                                  {"--event", NULL, &f.event, NULL, 0},
                                  {"--status", NULL, &f.status, NULL, 0},
                                  {"--since", NULL, &since, NULL, 0},
                                  {"--until", NULL, &until, NULL, 0},
                                  {NULL, NULL, NULL, NULL, 0}};
    int rc = parse_opts(&o, argc, argv, defs);
    if (rc >= 0)
        return rc;
    if (f.status != NULL && qs_log_filter_status_valid(f.status) != 0) {
        fprintf(stderr, "qshim-log filter: --status: '%s' is not a status (429, 5xx, -, or a list)\n",
                f.status);
        return EXIT_USAGE;
    }
    if ((f.has_since = since != NULL) && when(&o, "--since", since, &f.since_ms) != 0)
        return EXIT_USAGE;
    if ((f.has_until = until != NULL) && when(&o, "--until", until, &f.until_ms) != 0)
        return EXIT_USAGE;
    if (setup(&o, &cfg, &rd) != 0)
        return 1;
    while (qs_log_reader_next(&rd, &line, &len, &r) == 1) {
        if (!qs_log_filter_match(&f, &r))
            continue;
        fwrite(line, 1, len, stdout);
        putchar('\n');
    }
    if (fflush(stdout) != 0) {
        fprintf(stderr, "qshim-log filter: %s\n", strerror(errno));
        return finish(cfg, &rd, 1);
    }
    return finish(cfg, &rd, 0);
}

/* ================================ plot ================================ */

static const char plot_usage[] =
    "usage: qshim-log [GLOBAL OPTIONS] plot [--model M] [--per second|minute]\n"
    "                 [--svg FILE] [--width N] [--height N]\n"
    "\n"
    "Charts each model's requests and tokens per second (or per minute) against\n"
    "the limit that applied: per second, the tighter of RPM/60 and the model's own\n"
    "RPS limit, and TPM/60 for tokens. Requests count at the time they ended (ts).\n"
    "Throttles are marked: x (SVG: a ring) for one qshim retried unseen, X (SVG: a\n"
    "cross) for one passed on to the program. The charts share one time axis.\n"
    "\n"
    "  --model M            only models matching the glob M\n"
    "  --per second|minute  bin size (default: second when the log spans at most\n"
    "                       30 minutes, else minute)\n"
    "  --svg FILE           write the charts as a standalone SVG document to FILE\n"
    "                       instead of drawing them in the terminal (\"-\": stdout)\n"
    "  --width N            terminal columns to fit in (default 80, at least 40)\n"
    "  --height N           rows of bars of a terminal chart (default 10)\n"
    "\n"
    "The terminal charts are plain ASCII. When there are more seconds than\n"
    "columns, a column shows the busiest of the seconds it stands for. A limit\n"
    "more than 4 times the highest bar is named, not drawn.\n"
    "\n" GLOBAL_OPTIONS "\n"
    "Exit status: 0; 1 if a file cannot be read, the SVG cannot be written, or\n"
    "there is nothing to plot; 2 on a usage error.\n";

/* "table cn-beijing" as is; "config /a/b/x.conf:3" as "config x.conf:3". */
static void short_source(const char *src, char *out, size_t len)
{
    const char *slash = strrchr(src, '/');
    if (strncmp(src, "config ", 7) == 0 && slash != NULL)
        snprintf(out, len, "config %.*s", (int)len - 8, slash + 1);
    else
        snprintf(out, len, "%.*s", (int)len - 1, src);
}

/* What a chart needs beyond the series: its texts. */
struct chart_texts {
    char title[2][256], limit_note[2][320];
};

static void describe_limits(const struct qs_log_limit *l, int per_min, struct chart_texts *t)
{
    char src[256];

    short_source(l->source, src, sizeof src);
    if (per_min) {
        snprintf(t->limit_note[0], sizeof t->limit_note[0], "%s", src);
        snprintf(t->limit_note[1], sizeof t->limit_note[1], "%s", src);
    } else {
        if (l->lim.rps > 0 && l->rps == l->lim.rps)
            snprintf(t->limit_note[0], sizeof t->limit_note[0], "rps %.15g, %s", l->lim.rps, src);
        else
            snprintf(t->limit_note[0], sizeof t->limit_note[0], "%.15g rpm / 60, %s", l->lim.rpm, src);
        if (l->lim.tps > 0 && l->tps == l->lim.tps)
            snprintf(t->limit_note[1], sizeof t->limit_note[1], "tps %.15g, %s", l->lim.tps, src);
        else
            snprintf(t->limit_note[1], sizeof t->limit_note[1], "%.15g tpm / 60, %s", l->lim.tpm, src);
    }
}

static int cmd_plot(int argc, char **argv)
{
    struct opts o = {.cmd = "plot", .usage = plot_usage};
    struct qs_config *cfg;
    struct qs_log_reader rd;
    struct qs_log_data d = {0};
    struct qs_log_series *ser = NULL;
    struct qs_log_chart *charts = NULL;
    struct chart_texts *texts = NULL;
    const char *model = NULL, *svg = NULL, *per_s = NULL, *width_s = NULL, *height_s = NULL;
    long width = 80, height = 10;
    int per = 0, rc; /* per: 0 auto, 1 second, 60 minute */
    size_t nsel = 0;
    unsigned char *sel = NULL;

    const struct optdef defs[] = {GLOBAL_DEFS(o),
                                  {"--model", NULL, &model, NULL, 0},
                                  {"--svg", NULL, &svg, NULL, 0},
                                  {"--per", NULL, &per_s, NULL, 0},
                                  {"--width", NULL, &width_s, NULL, 0},
                                  {"--height", NULL, &height_s, NULL, 0},
                                  {NULL, NULL, NULL, NULL, 0}};
    if ((rc = parse_opts(&o, argc, argv, defs)) >= 0)
        return rc;
    rc = 1;
    if (per_s != NULL) {
        if (strcmp(per_s, "second") == 0 || strcmp(per_s, "s") == 0)
            per = 1;
        else if (strcmp(per_s, "minute") == 0 || strcmp(per_s, "m") == 0)
            per = 60;
        else {
            fprintf(stderr, "qshim-log plot: --per is second or minute, not '%s'\n", per_s);
            return EXIT_USAGE;
        }
    }
    if (width_s != NULL && (width = number(width_s, QS_PLOT_MIN_WIDTH, 1000)) < 0) {
        fprintf(stderr, "qshim-log plot: --width needs %d to 1000 columns, not '%s'\n", QS_PLOT_MIN_WIDTH,
                width_s);
        return EXIT_USAGE;
    }
    if (height_s != NULL && (height = number(height_s, 3, 100)) < 0) {
        fprintf(stderr, "qshim-log plot: --height needs 3 to 100 rows, not '%s'\n", height_s);
        return EXIT_USAGE;
    }
    if (setup(&o, &cfg, &rd) != 0)
        return 1;
    if (collect(&rd, &d) != 0)
        goto out;

    /* The models to draw, and the time range they share. */
    int64_t first = -1, last = -1;
    sel = calloc(d.nmodels ? d.nmodels : 1, 1);
    if (sel == NULL)
        goto oom;
    for (size_t m = 0; m < d.nmodels; m++)
        sel[m] = model == NULL || fnmatch(model, d.models[m].name, 0) == 0;
    for (size_t i = 0; i < d.npts; i++) {
        const struct qs_log_point *p = &d.pts[i];
        if (!sel[p->model] || p->ts_ms < 0)
            continue;
        if (first < 0 || p->ts_ms < first)
            first = p->ts_ms;
        if (p->ts_ms > last)
            last = p->ts_ms;
        if (sel[p->model] == 1) {
            sel[p->model] = 2; /* has something to draw */
            nsel++;
        }
    }
    if (nsel == 0) {
        fprintf(stderr, "qshim-log plot: no requests%s%s with a time to plot\n", model ? " of model " : "",
                model ? model : "");
        goto out;
    }
    if (per == 0)
        per = last - first <= 30 * 60000 ? 1 : 60;

    ser = calloc(nsel, sizeof *ser);
    charts = calloc(2 * nsel, sizeof *charts);
    texts = calloc(nsel, sizeof *texts);
    if (ser == NULL || charts == NULL || texts == NULL)
        goto oom;
    size_t k = 0;
    for (size_t m = 0; m < d.nmodels; m++) {
        struct qs_log_limit lim;
        if (sel[m] != 2)
            continue;
        if (qs_log_series_build(&ser[k], &d, (uint32_t)m, first, last, per * 1000, 2000000) != 0) {
            fprintf(stderr, "qshim-log plot: the log spans too long to plot per %s%s\n",
                    per == 1 ? "second" : "minute", per == 1 ? "; try --per minute" : "");
            goto out;
        }
        qs_log_limit_of(cfg, d.models[m].name, d.models[m].region, &lim);
        describe_limits(&lim, per == 60, &texts[k]);
        for (int c = 0; c < 2; c++) {
            struct qs_log_chart *ch = &charts[2 * k + (size_t)c];
            ch->what = c == 0 ? (per == 1 ? "requests per second" : "requests per minute")
                              : (per == 1 ? "tokens per second" : "tokens per minute");
            snprintf(texts[k].title[c], sizeof texts[k].title[c], "%s (%s): %s", d.models[m].name, lim.region,
                     ch->what);
            ch->title = texts[k].title[c];
            ch->unit = c == 0 ? (per == 1 ? "req/s" : "req/min") : (per == 1 ? "tok/s" : "tok/min");
            ch->limit_note = texts[k].limit_note[c];
            ch->v = c == 0 ? ser[k].req : ser[k].tok;
            ch->hidden = ser[k].hidden;
            ch->passed = ser[k].passed;
            ch->n = ser[k].nbins;
            ch->t0_ms = ser[k].t0_ms;
            ch->bin_ms = ser[k].bin_ms;
            ch->limit = c == 0 ? (per == 1 ? lim.rps : lim.rpm) : (per == 1 ? lim.tps : lim.tpm);
            if (lim.retired)
                ch->limit = 0;
        }
        k++;
    }

    if (svg != NULL) {
        char title[128], sub[512], t1[32], t2[32];
        FILE *out = strcmp(svg, "-") == 0 ? stdout : fopen(svg, "w");
        unsigned long reqs = 0, hid = 0, pas = 0;
        if (out == NULL) {
            fprintf(stderr, "qshim-log plot: cannot write %s: %s\n", svg, strerror(errno));
            goto out;
        }
        for (size_t m = 0; m < d.nmodels; m++)
            if (sel[m] == 2) {
                reqs += d.models[m].requests;
                hid += d.models[m].hidden;
                pas += d.models[m].passed;
            }
        qs_log_fmt_ts(first, QS_TS_HUMAN, t1, sizeof t1);
        qs_log_fmt_ts(last, QS_TS_HUMAN, t2, sizeof t2);
        t1[19] = t2[19] = '\0'; /* whole seconds */
        snprintf(title, sizeof title, "DashScope requests and tokens per %s against the rate limit",
                 per == 1 ? "second" : "minute");
        snprintf(sub, sizeof sub,
                 "qshim audit log, %s to %s UTC: %lu requests, %lu throttles retried, %lu passed on", t1,
                 strncmp(t1, t2, 10) == 0 ? t2 + 11 : t2, reqs, hid, pas);
        int w = qs_log_svg_write(out, charts, 2 * nsel, title, sub);
        if ((out != stdout ? fclose(out) : fflush(out)) != 0 || w != 0) {
            fprintf(stderr, "qshim-log plot: cannot write %s: %s\n", svg, strerror(errno));
            goto out;
        }
    } else {
        for (size_t c = 0; c < 2 * nsel; c++) {
            if (c > 0)
                putchar('\n');
            qs_log_plot_text(stdout, &charts[c], (int)width, (int)height);
        }
    }
    rc = 0;
    goto out;
oom:
    fprintf(stderr, "qshim-log: out of memory\n");
out:
    for (size_t i = 0; ser != NULL && i < nsel; i++)
        qs_log_series_free(&ser[i]);
    free(ser);
    free(charts);
    free(texts);
    free(sel);
    qs_log_data_free(&d);
    return finish(cfg, &rd, rc);
}

/* ================================ help ================================ */

static const char help_usage[] = "usage: qshim-log help [COMMAND]\n"
                                 "\n"
                                 "Shows the help of COMMAND, or the list of commands.\n";

static int cmd_help(int argc, char **argv)
{
    const struct cmd *c;

    if (argc < 2) {
        usage(stdout);
        return 0;
    }
    c = lookup(argv[1]);
    if (c == NULL) {
        fprintf(stderr, "qshim-log help: unknown command '%s'\n\n", argv[1]);
        usage(stderr);
        return EXIT_USAGE;
    }
    fputs(c->usage, stdout);
    return 0;
}

/* ================================ Dispatch ================================ */

static const struct cmd cmds[] = {
    {"summary", cmd_summary, "per model and program: requests, throttles, waits, tokens, peaks",
     summary_usage},
    {"tail", cmd_tail, "the last records, one line each; -F follows the log", tail_usage},
    {"filter", cmd_filter, "the records (JSONL) of a model, status, event, program, time", filter_usage},
    {"plot", cmd_plot, "requests and tokens per second against the limit; --svg FILE", plot_usage},
    {"help", cmd_help, "show the help of a command", help_usage},
};

static const struct cmd *lookup(const char *name)
{
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        if (strcmp(cmds[i].name, name) == 0)
            return &cmds[i];
    return NULL;
}

static void usage(FILE *out)
{
    fputs("usage: qshim-log [GLOBAL OPTIONS] COMMAND [ARG...]\n"
          "\n"
          "Reads the audit log that libqshim.so writes: one JSON record per line for\n"
          "every DashScope request, hidden throttle, fallback and pass-through, from any\n"
          "number of processes. Malformed or truncated lines are skipped with a warning\n"
          "naming FILE:LINE.\n"
          "\n"
          "commands:\n",
          out);
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        fprintf(out, "  %-8s %s\n", cmds[i].name, cmds[i].summary);
    fputs("\n" GLOBAL_OPTIONS "\nRun 'qshim-log help COMMAND' for the details of one.\n", out);
}

int main(int argc, char **argv)
{
    const struct cmd *c = NULL;
    int at;

    /* Global options may come before the command: find the command's name first. */
    for (at = 1; at < argc; at++) {
        const char *a = argv[at];
        if (strcmp(a, "-f") == 0 || strcmp(a, "--file") == 0 || strcmp(a, "-c") == 0 ||
            strcmp(a, "--config") == 0) {
            at++;
            continue;
        }
        if (a[0] == '-' && !is_help(a))
            continue;
        break;
    }
    if (at >= argc) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (is_help(argv[at])) {
        usage(stdout);
        return 0;
    }
    c = lookup(argv[at]);
    if (c == NULL) {
        fprintf(stderr, "qshim-log: unknown command '%s'\n\n", argv[at]);
        usage(stderr);
        return EXIT_USAGE;
    }
    /* The command sees its name first, then the global options given before it. */
    char *tmp = argv[at];
    memmove(argv + 2, argv + 1, (size_t)(at - 1) * sizeof *argv);
    argv[1] = tmp;
    return c->run(argc - 1, argv + 1);
}
