/* qshim.c - the qshim command: runs programs under the shim and checks config files.
 *
 *   qshim run [-c FILE] [--observe] [--] COMMAND [ARG...]
 *   qshim config check [FILE]
 *   qshim limits [-c FILE] [-r REGION] [MODEL...]
 *   qshim doctor [--no-self-test] COMMAND [ARG...]   (qshim_doctor.c)
 *   qshim status [--json] [-w SEC] [--shm NAME]      (qshim_status.c)
 *   qshim help [COMMAND]
 *
 * Each subcommand is one row of qs_cmds and one function; the larger ones live in
 * tools/qshim_*.c (qshim_cmd.h). Exit status 2 means a usage error.
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "limtab.h"
#include "qshim_cmd.h"

struct qs_cmd {
    const char *name;
    int (*run)(int argc, char **argv); /* argv[0] is the subcommand's name */
    const char *summary;
    const char *usage;
};

static const struct qs_cmd *qs_lookup(const char *name);
static void qs_usage(FILE *out);

/* ================================ qshim run ================================ */

static const char qs_run_usage[] =
    "usage: qshim run [-c FILE] [--observe] [--] COMMAND [ARG...]\n"
    "\n"
    "Runs COMMAND with libqshim.so preloaded, so that its requests to DashScope are\n"
    "paced under the rate limits and throttled (429) requests are retried unseen.\n"
    "The config file is checked first; a broken one stops here instead of leaving the\n"
    "shim to pass everything through.\n"
    "\n"
    "  -c, --config FILE  use FILE as the config (sets QSHIM_CONFIG to its absolute path)\n"
    "  --observe          only log and count, never delay or retry (sets QSHIM_MODE=observe)\n"
    "  -h, --help         show this help\n"
    "\n"
    "libqshim.so is taken from $QSHIM_LIB if set, else from the directory of the qshim\n"
    "binary, else from ../lib/qshim/ relative to it, and put first in LD_PRELOAD (an\n"
    "existing value is kept after it).\n"
    "\n"
    "Exit status: that of COMMAND; 125 if qshim fails before starting it, 126 if COMMAND\n"
    "cannot be executed, 127 if it is not found.\n";

int qs_self_dir(char *out)
{
    /* /proc/self/exe rather than argv[0], which a PATH lookup leaves without a directory. */
    ssize_t n = readlink("/proc/self/exe", out, PATH_MAX - 1);
    char *slash;

    if (n < 0)
        return -1;
    out[n] = '\0';
    slash = strrchr(out, '/');
    if (slash != NULL)
        *slash = '\0';
    return 0;
}

int qs_find_lib(const char *who, char *out)
{
    static const char *const rel[] = {"libqshim.so", "../lib/qshim/libqshim.so"};
    const char *env = getenv("QSHIM_LIB");
    char self[PATH_MAX], cand[PATH_MAX + 32];
    size_t i;

    if (env != NULL && env[0] != '\0') {
        if (realpath(env, out) == NULL) {
            fprintf(stderr, "%s: QSHIM_LIB=%s: %s\n", who, env, strerror(errno));
            return -1;
        }
        return 0;
    }
    if (qs_self_dir(self) != 0) {
        fprintf(stderr, "%s: cannot locate the qshim binary: %s\n", who, strerror(errno));
        return -1;
    }
    for (i = 0; i < sizeof(rel) / sizeof(rel[0]); i++) {
        snprintf(cand, sizeof(cand), "%s/%s", self, rel[i]);
        if (access(cand, R_OK) == 0 && realpath(cand, out) != NULL)
            return 0;
    }
    fprintf(stderr,
            "%s: cannot find libqshim.so (looked for %s/libqshim.so and %s/../lib/qshim/libqshim.so);\n"
            "%s: build it with 'make' or set QSHIM_LIB to its path\n",
            who, self, self, who);
    return -1;
}

/* Loads <path> to catch errors before the command starts; 0 if it is fine. */
static int qs_check_before_run(const char *path)
{
    struct qs_config *cfg = malloc(sizeof(*cfg));
    char err[QS_CFG_ERR_MAX];
    int rc;

    if (cfg == NULL) {
        fprintf(stderr, "qshim run: out of memory\n");
        return -1;
    }
    rc = qs_config_load_file(path, cfg, err, sizeof(err));
    if (rc < 0)
        fprintf(stderr, "qshim run: %s\nqshim run: not starting the command; see 'qshim config check %s'\n",
                err, path);
    free(cfg);
    return rc;
}

static int qs_cmd_run(int argc, char **argv)
{
    const char *cfile = NULL, *old;
    char lib[PATH_MAX], conf[PATH_MAX], found[QS_CFG_PATH_MAX];
    char *preload;
    int observe = 0, i;

    for (i = 1; i < argc; i++) {
        const char *a = argv[i];

        if (strcmp(a, "--") == 0) {
            i++;
            break;
        } else if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) {
            if (++i == argc) {
                fprintf(stderr, "qshim run: %s needs a FILE\n\n%s", a, qs_run_usage);
                return QS_EXIT_USAGE;
            }
            cfile = argv[i];
        } else if (strncmp(a, "--config=", 9) == 0) {
            cfile = a + 9;
        } else if (strcmp(a, "--observe") == 0) {
            observe = 1;
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(qs_run_usage, stdout);
            return 0;
        } else if (a[0] == '-') {
            fprintf(stderr, "qshim run: unknown option '%s'\n\n%s", a, qs_run_usage);
            return QS_EXIT_USAGE;
        } else {
            break;
        }
    }
    if (i >= argc) {
        fprintf(stderr, "qshim run: no command given\n\n%s", qs_run_usage);
        return QS_EXIT_USAGE;
    }

    if (qs_find_lib("qshim run", lib) < 0)
        return QS_EXIT_LAUNCHER;
    /* LD_PRELOAD splits on ':' and blanks and has no quoting. */
    if (strpbrk(lib, ": \t") != NULL) {
        fprintf(stderr, "qshim run: cannot preload %s: LD_PRELOAD cannot hold a path with ':' or blanks\n",
                lib);
        return QS_EXIT_LAUNCHER;
    }
    if (cfile != NULL) {
        /* Absolute, because the command may change directory before the shim reads it. */
        if (realpath(cfile, conf) == NULL) {
            fprintf(stderr, "qshim run: %s: %s\n", cfile, strerror(errno));
            return QS_EXIT_LAUNCHER;
        }
        if (qs_check_before_run(conf) < 0)
            return QS_EXIT_LAUNCHER;
        setenv("QSHIM_CONFIG", conf, 1);
    } else if (qs_config_find(found, sizeof(found)) == 0 && qs_check_before_run(found) < 0) {
        return QS_EXIT_LAUNCHER;
    }
    if (observe)
        setenv("QSHIM_MODE", "observe", 1);

    old = getenv("LD_PRELOAD");
    if (old != NULL && old[0] != '\0') {
        if (asprintf(&preload, "%s:%s", lib, old) < 0) {
            fprintf(stderr, "qshim run: out of memory\n");
            return QS_EXIT_LAUNCHER;
        }
        setenv("LD_PRELOAD", preload, 1);
        free(preload);
    } else {
        setenv("LD_PRELOAD", lib, 1);
    }

    execvp(argv[i], &argv[i]);
    if (errno == ENOENT) {
        fprintf(stderr, "qshim run: %s: command not found\n", argv[i]);
        return QS_EXIT_NOT_FOUND;
    }
    fprintf(stderr, "qshim run: %s: %s\n", argv[i], strerror(errno));
    return QS_EXIT_CANNOT_RUN;
}

/* =============================== qshim config =============================== */

static const char qs_config_usage[] =
    "usage: qshim config check [FILE]\n"
    "\n"
    "Validates FILE (default: the config qshim would use: $QSHIM_CONFIG, else\n"
    "$XDG_CONFIG_HOME/qshim/qshim.conf or ~/.config/qshim/qshim.conf, else\n"
    "/etc/qshim.conf) without running anything. Prints \"FILE: ok\" and the effective\n"
    "settings (QSHIM_DISABLE, QSHIM_MODE and QSHIM_LOG applied), or the error as\n"
    "FILE:LINE: message.\n"
    "\n"
    "  -h, --help  show this help\n"
    "\n"
    "Exit status: 0 if the file is valid (or there is none: built-in defaults); 1 if it\n"
    "is not, or an environment variable holds a bad value; 2 on a usage error.\n";

static void qs_print_globs(const char *key, const char (*globs)[QS_CFG_NAME_MAX], int n, const char *none)
{
    int i;

    printf("  %-15s", key);
    if (n == 0)
        printf("%s", none);
    for (i = 0; i < n; i++)
        printf("%s%s", i > 0 ? ", " : "", globs[i]);
    printf("\n");
}

/* "rpm 600, tpm 1e+06, ..." for the dimensions that are set. */
static void qs_print_limit(const struct qs_limit *l)
{
    const char *sep = "";

    if (l->rpm == 0 && l->tpm == 0 && l->rps == 0) {
        printf("retired (never granted)");
        sep = ", ";
    }
    if (l->rpm > 0) {
        printf("%srpm %.15g", sep, l->rpm);
        sep = ", ";
    }
    if (l->tpm > 0) {
        printf("%stpm %.15g", sep, l->tpm);
        sep = ", ";
    }
    if (l->rps > 0) {
        printf("%srps %.15g", sep, l->rps);
        sep = ", ";
    }
    if (l->tps > 0) {
        printf("%stps %.15g", sep, l->tps);
        sep = ", ";
    }
    if (l->concurrency > 0)
        printf("%sconcurrency %d", sep, l->concurrency);
}

static void qs_print_config(const struct qs_config *cfg)
{
    static const char *const envs[] = {"QSHIM_DISABLE", "QSHIM_MODE", "QSHIM_LOG"};
    size_t e;
    int i, j;

    for (e = 0; e < sizeof(envs) / sizeof(envs[0]); e++)
        if (getenv(envs[e]) != NULL && getenv(envs[e])[0] != '\0')
            printf("  %-15s%s=%s (applied below)\n", "environment", envs[e], getenv(envs[e]));
    printf("  %-15s%s\n", "enabled", cfg->enabled ? "true" : "false");
    printf("  %-15s%s\n", "mode", cfg->mode == QS_MODE_OBSERVE ? "observe" : "enforce");
    qs_print_globs("programs", cfg->programs, cfg->nprograms, "all");
    qs_print_globs("exclude", cfg->exclude, cfg->nexclude, "none");
    qs_print_globs("hosts", cfg->hosts, cfg->nhosts, "none (nothing is paced)");
    printf("  %-15s%s\n", "region", cfg->region);
    printf("  %-15s%g\n", "headroom", cfg->headroom);
    if (cfg->nlimits == 0)
        printf("  %-15snone (the region's table only)\n", "limits");
    for (i = 0; i < cfg->nlimits; i++) {
        printf("  %-15s%s: ", i == 0 ? "limits" : "", cfg->limits[i].model);
        qs_print_limit(&cfg->limits[i]);
        printf(" (line %d)\n", cfg->limits[i].line);
    }
    printf("  %-15s", "default_limit");
    qs_print_limit(&cfg->default_limit);
    printf("\n  %-15smax_attempts %d, base_ms %ld, max_ms %ld, max_total_ms %ld\n", "retry",
           cfg->retry.max_attempts, cfg->retry.base_ms, cfg->retry.max_ms, cfg->retry.max_total_ms);
    if (cfg->nfallback == 0)
        printf("  %-15snone\n", "fallback");
    for (i = 0; i < cfg->nfallback; i++) {
        printf("  %-15s%s -> ", i == 0 ? "fallback" : "", cfg->fallback[i].model);
        for (j = 0; j < cfg->fallback[i].nto; j++)
            printf("%s%s", j > 0 ? ", " : "", cfg->fallback[i].to[j]);
        printf(" after %ld ms\n", cfg->fallback[i].after_ms);
    }
    printf("  %-15sbackend %s", "share", cfg->share.backend);
    if (strcmp(cfg->share.backend, "redis") == 0)
        printf(" at %s, on_error %s", cfg->share.redis, cfg->share.on_error);
    printf("\n  %-15s%s, level %s", "log", cfg->log.path[0] != '\0' ? cfg->log.path : "(no path: HOME unset)",
           cfg->log.level);
    if (cfg->log.max_bytes > 0)
        printf(", rotate at %ld bytes keeping %d", cfg->log.max_bytes, cfg->log.keep);
    else
        printf(", no rotation");
    printf("\n");
}

static int qs_config_check(int argc, char **argv)
{
    struct qs_config *cfg;
    char path[QS_CFG_PATH_MAX], err[QS_CFG_ERR_MAX];
    int rc = 0;

    if (argc > 2) {
        fprintf(stderr, "qshim config check: too many arguments\n\n%s", qs_config_usage);
        return QS_EXIT_USAGE;
    }
    cfg = malloc(sizeof(*cfg));
    if (cfg == NULL) {
        fprintf(stderr, "qshim config check: out of memory\n");
        return 1;
    }
    if (argc == 2) {
        snprintf(path, sizeof(path), "%s", argv[1]);
    } else if (qs_config_find(path, sizeof(path)) < 0) {
        printf("no config file (looked for $QSHIM_CONFIG, $XDG_CONFIG_HOME/qshim/qshim.conf or "
               "~/.config/qshim/qshim.conf, /etc/qshim.conf): built-in defaults\n");
        qs_config_defaults(cfg);
        path[0] = '\0';
    }
    if (path[0] != '\0') {
        if (qs_config_load_file(path, cfg, err, sizeof(err)) < 0) {
            fprintf(stderr, "%s\n", err);
            free(cfg);
            return 1;
        }
        printf("%s: ok\n", path);
    }
    if (qs_config_apply_env(cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "qshim config check: %s\n", err);
        rc = 1;
    }
    qs_print_config(cfg);
    free(cfg);
    return rc;
}

static int qs_cmd_config(int argc, char **argv)
{
    if (argc < 2) {
        fputs(qs_config_usage, stderr);
        return QS_EXIT_USAGE;
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        fputs(qs_config_usage, stdout);
        return 0;
    }
    if (strcmp(argv[1], "check") == 0) {
        if (argc > 2 && (strcmp(argv[2], "-h") == 0 || strcmp(argv[2], "--help") == 0)) {
            fputs(qs_config_usage, stdout);
            return 0;
        }
        return qs_config_check(argc - 1, argv + 1);
    }
    fprintf(stderr, "qshim config: unknown subcommand '%s'\n\n%s", argv[1], qs_config_usage);
    return QS_EXIT_USAGE;
}

/* =============================== qshim limits =============================== */

static const char qs_limits_usage[] =
    "usage: qshim limits [-c FILE] [-r REGION] [MODEL...]\n"
    "\n"
    "Prints the effective rate limits: the config's `limits` entries first (first glob\n"
    "that matches), then the region's built-in table (transcribed from the DashScope\n"
    "rate-limit page), then default_limit. With MODEL, that model's limit and where it\n"
    "comes from; without, every model of the region's table (overrides applied and shown\n"
    "as the source), then the config's entries that name no table model, then the default.\n"
    "\n"
    "  -c, --config FILE    use FILE (default: the config qshim would use, or none)\n"
    "  -r, --region REGION  the table to use (default: the config's region; \"auto\",\n"
    "                       which the shim resolves from the host name, means cn-beijing)\n"
    "  -h, --help           show this help\n"
    "\n"
    "rpm and tpm are per minute, rps and tps per second, concurrency is requests in\n"
    "flight; \"-\" means not limited. A retired model shows rpm 0 and tpm 0. The config's\n"
    "headroom is applied by the pacer on top of these numbers.\n"
    "\n"
    "Exit status: 0; 1 if the config or a table cannot be read; 2 on a usage error\n"
    "(unknown option or region).\n";

static int qs_cmd_limits(int argc, char **argv)
{
    struct qs_row {
        const char *name;
        struct qs_limit lim;
        char src[QS_CFG_PATH_MAX + 64];
    } *rows = NULL;
    const char *cfile = NULL, *region = NULL;
    const struct qs_limit *tab;
    struct qs_config *cfg;
    char path[QS_CFG_PATH_MAX], err[QS_CFG_ERR_MAX], list[256];
    size_t ntab = 0, nrows = 0, r, k, wname = 5;
    int i, j, rc = 1;

    for (i = 1; i < argc && argv[i][0] == '-'; i++) {
        const char *a = argv[i];

        if (strcmp(a, "--") == 0) {
            i++;
            break;
        } else if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0 || strcmp(a, "-r") == 0 ||
                   strcmp(a, "--region") == 0) {
            if (i + 1 == argc) {
                fprintf(stderr, "qshim limits: %s needs a value\n\n%s", a, qs_limits_usage);
                return QS_EXIT_USAGE;
            }
            if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0)
                cfile = argv[++i];
            else
                region = argv[++i];
        } else if (strncmp(a, "--config=", 9) == 0) {
            cfile = a + 9;
        } else if (strncmp(a, "--region=", 9) == 0) {
            region = a + 9;
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(qs_limits_usage, stdout);
            return 0;
        } else {
            fprintf(stderr, "qshim limits: unknown option '%s'\n\n%s", a, qs_limits_usage);
            return QS_EXIT_USAGE;
        }
    }
    cfg = malloc(sizeof(*cfg));
    if (cfg == NULL) {
        fprintf(stderr, "qshim limits: out of memory\n");
        return 1;
    }
    qs_config_defaults(cfg);
    if (cfile != NULL)
        snprintf(path, sizeof(path), "%s", cfile);
    else if (qs_config_find(path, sizeof(path)) < 0)
        path[0] = '\0';
    if (path[0] != '\0' && qs_config_load_file(path, cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "qshim limits: %s\n", err);
        goto out;
    }
    if (region == NULL)
        region = strcmp(cfg->region, "auto") == 0 ? "cn-beijing" : cfg->region;
    if (!qs_limits_region_valid(region)) {
        qs_limits_region_list(list, sizeof(list));
        fprintf(stderr, "qshim limits: unknown region '%s' (valid: %s)\n", region, list);
        rc = QS_EXIT_USAGE;
        goto out;
    }
    if (qs_limits_table(region, &tab, &ntab, err, sizeof(err)) < 0) {
        fprintf(stderr, "qshim limits: %s\n", err);
        goto out;
    }
    /* At most: the table, every config entry and the default; or the models asked for. */
    rows = calloc(i < argc ? (size_t)(argc - i) : ntab + (size_t)cfg->nlimits + 1, sizeof(*rows));
    if (rows == NULL) {
        fprintf(stderr, "qshim limits: out of memory\n");
        goto out;
    }
    if (i < argc) {
        for (; i < argc; i++, nrows++) {
            rows[nrows].name = argv[i];
            qs_limits_lookup(cfg, region, argv[i], &rows[nrows].lim, rows[nrows].src,
                             sizeof(rows[nrows].src));
            /* Say which glob matched when it is not the name itself. */
            if (strcmp(rows[nrows].lim.model, argv[i]) != 0 && strncmp(rows[nrows].src, "config ", 7) == 0)
                snprintf(rows[nrows].src + strlen(rows[nrows].src),
                         sizeof(rows[nrows].src) - strlen(rows[nrows].src), " (%s)", rows[nrows].lim.model);
        }
    } else {
        for (r = 0; r < ntab; r++, nrows++) {
            rows[nrows].name = tab[r].model;
            qs_limits_lookup(cfg, region, tab[r].model, &rows[nrows].lim, rows[nrows].src,
                             sizeof(rows[nrows].src));
            if (strncmp(rows[nrows].src, "config ", 7) == 0)
                snprintf(rows[nrows].src + strlen(rows[nrows].src),
                         sizeof(rows[nrows].src) - strlen(rows[nrows].src), ", over the table");
        }
        /* Config entries that are globs or models the table lacks: shown as they are. */
        for (j = 0; j < cfg->nlimits; j++) {
            for (r = 0; r < ntab && strcmp(tab[r].model, cfg->limits[j].model) != 0; r++)
                ;
            if (r < ntab)
                continue;
            rows[nrows].name = cfg->limits[j].model;
            rows[nrows].lim = cfg->limits[j];
            snprintf(rows[nrows].src, sizeof(rows[nrows].src), "config %s:%d", cfg->source,
                     cfg->limits[j].line);
            nrows++;
        }
        rows[nrows].name = "(any other)";
        rows[nrows].lim = cfg->default_limit;
        /* Worded as qs_limits_lookup words it. */
        if (cfg->has_default_limit)
            snprintf(rows[nrows].src, sizeof(rows[nrows].src), "default_limit %s:%d", cfg->source,
                     cfg->default_limit.line);
        else
            snprintf(rows[nrows].src, sizeof(rows[nrows].src), "default_limit");
        nrows++;
    }
    for (r = 0; r < nrows; r++)
        if (strlen(rows[r].name) > wname)
            wname = strlen(rows[r].name);
    printf("# region %s, config %s\n", region,
           cfg->source[0] != '\0' ? cfg->source : "(none: built-in defaults)");
    printf("%-*s %10s %12s %6s %8s %11s  %s\n", (int)wname, "MODEL", "RPM", "TPM", "RPS", "TPS",
           "CONCURRENCY", "SOURCE");
    for (r = 0; r < nrows; r++) {
        const struct qs_limit *l = &rows[r].lim;
        double v[5] = {l->rpm, l->tpm, l->rps, l->tps, l->concurrency};
        char cell[5][32];

        /* 0 is "not limited", except rpm and tpm of a retired model, which are the point. */
        for (k = 0; k < 5; k++) {
            if (v[k] > 0 || (k < 2 && qs_limits_retired(l)))
                snprintf(cell[k], sizeof(cell[k]), "%.15g", v[k]);
            else
                snprintf(cell[k], sizeof(cell[k]), "-");
        }
        printf("%-*s %10s %12s %6s %8s %11s  %s%s\n", (int)wname, rows[r].name, cell[0], cell[1], cell[2],
               cell[3], cell[4], rows[r].src, qs_limits_retired(l) ? " (retired)" : "");
    }
    rc = 0;
out:
    free(rows);
    free(cfg);
    return rc;
}

/* ================================ qshim help ================================ */

static const char qs_help_usage[] = "usage: qshim help [COMMAND]\n"
                                    "\n"
                                    "Shows the help of COMMAND (the same as 'qshim COMMAND --help'),\n"
                                    "or the list of commands.\n"
                                    "\n"
                                    "Exit status: 0; 2 if COMMAND is not a qshim command.\n";

static int qs_cmd_help(int argc, char **argv)
{
    const struct qs_cmd *cmd;

    if (argc < 2) {
        qs_usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        fputs(qs_help_usage, stdout);
        return 0;
    }
    cmd = qs_lookup(argv[1]);
    if (cmd == NULL) {
        fprintf(stderr, "qshim help: unknown command '%s'\n\n", argv[1]);
        qs_usage(stderr);
        return QS_EXIT_USAGE;
    }
    fputs(cmd->usage, stdout);
    return 0;
}

/* ================================ Dispatch ================================ */

static const struct qs_cmd qs_cmds[] = {
    {"run", qs_cmd_run, "run a command under the shim", qs_run_usage},
    {"config", qs_cmd_config, "check a config file and show the effective settings", qs_config_usage},
    {"limits", qs_cmd_limits, "show the effective rate limits of a region or of models", qs_limits_usage},
    {"doctor", qs_cmd_doctor, "tell whether qshim can act in a program, and test it", qs_doctor_usage},
    {"status", qs_cmd_status, "show the shared pacing budget, live", qs_status_usage},
    {"help", qs_cmd_help, "show the help of a command", qs_help_usage},
};

static const struct qs_cmd *qs_lookup(const char *name)
{
    size_t i;

    for (i = 0; i < sizeof(qs_cmds) / sizeof(qs_cmds[0]); i++)
        if (strcmp(qs_cmds[i].name, name) == 0)
            return &qs_cmds[i];
    return NULL;
}

static void qs_usage(FILE *out)
{
    size_t i;

    fputs("usage: qshim COMMAND [ARG...]\n"
          "\n"
          "Keeps unmodified programs under the Alibaba Cloud Model Studio (DashScope) rate\n"
          "limits by preloading libqshim.so into them.\n"
          "\n"
          "commands:\n",
          out);
    for (i = 0; i < sizeof(qs_cmds) / sizeof(qs_cmds[0]); i++)
        fprintf(out, "  %-8s %s\n", qs_cmds[i].name, qs_cmds[i].summary);
    fputs("\nRun 'qshim help COMMAND' for the details of one.\n", out);
}

int main(int argc, char **argv)
{
    const struct qs_cmd *cmd;

    if (argc < 2) {
        qs_usage(stderr);
        return QS_EXIT_USAGE;
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        qs_usage(stdout);
        return 0;
    }
    cmd = qs_lookup(argv[1]);
    if (cmd == NULL) {
        fprintf(stderr, "qshim: unknown command '%s'\n\n", argv[1]);
        qs_usage(stderr);
        return QS_EXIT_USAGE;
    }
    return cmd->run(argc - 1, argv + 1);
}
