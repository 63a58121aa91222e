/* qshim_doctor.c - `qshim doctor CMD`: can the shim act in this program, and does it?
 *
 * A preload shim reaches only programs that the dynamic loader starts, that honour
 * LD_PRELOAD (not setuid, setgid or with file capabilities), and that call OpenSSL 3's
 * SSL_* through the loader (research/peers.md A.2: not Go, Node's bundled OpenSSL, GnuTLS,
 * NSS, static binaries). This reads the program's ELF headers and those of the libraries it
 * loads (never running it, except to ask Python where its _ssl module is), says plainly
 * what it found, and for curl and Python runs one request through the shim against a
 * qshim-mock started for the purpose, checking that the audit log got its record.
 * SPDX-License-Identifier: MIT
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "qshim_cmd.h"
#include "qshim_elf.h"

#if defined(__x86_64__)
#define HOST_MACHINE EM_X86_64
#elif defined(__aarch64__)
#define HOST_MACHINE EM_AARCH64
#elif defined(__i386__)
#define HOST_MACHINE EM_386
#else
#define HOST_MACHINE EM_NONE
#endif

#define V_CAN 0
#define V_CANNOT 1
#define V_ERROR 2
#define MAX_SCRIPT_DEPTH 4 /* the kernel follows at most 4 interpreters (binfmt_script) */

const char qs_doctor_usage[] =
    "usage: qshim doctor [--no-self-test] [--] COMMAND [ARG...]\n"
    "\n"
    "Tells whether qshim can act in COMMAND, and why. COMMAND is found in PATH as the\n"
    "shell would; a #! script is followed to its interpreter (through /usr/bin/env too).\n"
    "Its ELF headers, and those of every library it loads at start-up, are read without\n"
    "running it; the report says, in plain words:\n"
    "\n"
    "  - dynamically or statically linked (a static program never reads LD_PRELOAD);\n"
    "  - setuid, setgid or with file capabilities (the loader then ignores LD_PRELOAD);\n"
    "  - which TLS library it links: OpenSSL 3's libssl.so.3 (qshim acts), OpenSSL 1.1\n"
    "    (other symbol versions: not supported), GnuTLS, NSS, wolfSSL, mbed TLS (qshim\n"
    "    cannot act), or OpenSSL built into the program itself;\n"
    "  - a Go program (Go's own crypto/tls), Node.js (bundles its own OpenSSL) or Java;\n"
    "  - Python: asks it where its _ssl module is (COMMAND -c 'import _ssl; ...') and reads\n"
    "    that: libssl.so.3 loaded at run time (dlopen) is handled by qshim.\n"
    "\n"
    "When qshim can act and COMMAND is curl or Python, a self-test follows: qshim-mock (a\n"
    "local DashScope simulator, found beside qshim) is started on 127.0.0.1 with a fresh\n"
    "certificate (openssl req), COMMAND makes one chat request to it under the shim, and\n"
    "the audit log must show that request. Other programs: the self-test is skipped, with\n"
    "a message. ARGs are accepted, so a command line can be pasted, but not run.\n"
    "\n"
    "  --no-self-test  only read the files\n"
    "  -h, --help      show this help\n"
    "\n"
    "Exit status: 0 qshim can act (and the self-test, if run, passed); 1 it cannot (or the\n"
    "self-test failed); 2 COMMAND was not found or could not be read, or a usage error.\n";

struct verdict {
    int code;              /* V_CAN, V_CANNOT, V_ERROR */
    char why[512];         /* the verdict's reason, one line */
    char client[PATH_MAX]; /* curl or python to self-test with, "" for none */
    int python;            /* client is python (else curl) */
};

static void say(const char *key, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(const char *key, const char *fmt, ...)
{
    va_list ap;
    printf("  %-12s ", key);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
}

static void set_verdict(struct verdict *v, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_verdict(struct verdict *v, int code, const char *fmt, ...)
{
    va_list ap;
    v->code = code;
    va_start(ap, fmt);
    vsnprintf(v->why, sizeof v->why, fmt, ap);
    va_end(ap);
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s != NULL ? s + 1 : path;
}

/* ==================== Finding the command ==================== */

/* <name> as the shell finds it: a path if it has a '/', else the first executable regular
 * file of that name in PATH. 0 with the path in out[PATH_MAX], or -1. */
static int find_command(const char *name, char *out)
{
    struct stat st;
    const char *path = getenv("PATH");

    if (strchr(name, '/') != NULL) {
        snprintf(out, PATH_MAX, "%s", name);
        return stat(out, &st) == 0 ? 0 : -1;
    }
    if (path == NULL)
        path = "/usr/local/bin:/usr/bin:/bin";
    while (1) {
        size_t n = strcspn(path, ":");
        if (snprintf(out, PATH_MAX, "%.*s/%s", (int)(n ? n : 1), n ? path : ".", name) < PATH_MAX &&
            stat(out, &st) == 0 && S_ISREG(st.st_mode) && access(out, X_OK) == 0)
            return 0;
        if (path[n] == '\0')
            return -1;
        path += n + 1;
    }
}

/* ==================== Running something ==================== */

/* Runs <argv> with the environment changes <env> ("NAME=VALUE" sets, "NAME" unsets; NULL
 * ends), stdin from /dev/null, stdout into out[outlen] (NUL-terminated, cut if longer) and
 * stderr into the file <errfile> (NULL: /dev/null). Killed after <timeout_ms>. Returns the
 * exit status, 128 + signal, or -1 if it could not be started or timed out. */
static int run_capture(char *const argv[], const char *const env[], char *out, size_t outlen,
                       const char *errfile, int timeout_ms)
{
    int p[2], status, got = 0, rc = -1;
    struct timespec t0, t1;

    if (pipe2(p, O_CLOEXEC) != 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0) {
        close(p[0]);
        close(p[1]);
        return -1;
    }
    if (pid == 0) {
        int in = open("/dev/null", O_RDONLY),
            err = open(errfile ? errfile : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(in, 0);
        dup2(p[1], 1);
        if (err >= 0)
            dup2(err, 2);
        for (int i = 0; env != NULL && env[i] != NULL; i++) {
            const char *eq = strchr(env[i], '=');
            if (eq == NULL) {
                unsetenv(env[i]);
            } else {
                char name[64];
                snprintf(name, sizeof name, "%.*s", (int)(eq - env[i]), env[i]);
                setenv(name, eq + 1, 1);
            }
        }
        execv(argv[0], argv);
        _exit(127);
    }
    close(p[1]);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    out[0] = '\0';
    for (;;) {
        struct pollfd pf = {p[0], POLLIN, 0};
        clock_gettime(CLOCK_MONOTONIC, &t1);
        long left = timeout_ms - ((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000);
        if (left <= 0) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            close(p[0]);
            return -1;
        }
        if (poll(&pf, 1, (int)left) <= 0)
            continue;
        char buf[512];
        ssize_t n = read(p[0], buf, sizeof buf);
        if (n <= 0)
            break;
        size_t take = (size_t)n < outlen - 1 - (size_t)got ? (size_t)n : outlen - 1 - (size_t)got;
        memcpy(out + got, buf, take);
        got += (int)take;
        out[got] = '\0';
    }
    close(p[0]);
    if (waitpid(pid, &status, 0) == pid)
        rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return rc;
}

/* ==================== TLS libraries ==================== */

enum tls_kind { T_NONE, T_OSSL3, T_OSSL11, T_OSSL_OTHER, T_OTHER, T_NODE, T_JAVA };

static enum tls_kind tls_kind(const char *soname, const char **what)
{
    static const struct {
        const char *prefix;
        int exact;
        enum tls_kind kind;
        const char *what;
    } known[] = {
        {"libssl.so.3", 1, T_OSSL3, "OpenSSL 3"},
        {"libssl.so.1.1", 1, T_OSSL11, "OpenSSL 1.1"},
        {"libssl.so", 0, T_OSSL_OTHER, "an OpenSSL or LibreSSL other than 3"},
        {"libgnutls.so", 0, T_OTHER, "GnuTLS"},
        {"libnss3.so", 0, T_OTHER, "NSS"},
        {"libssl3.so", 0, T_OTHER, "NSS"},
        {"libwolfssl.so", 0, T_OTHER, "wolfSSL"},
        {"libmbedtls.so", 0, T_OTHER, "mbed TLS"},
        {"libbearssl.so", 0, T_OTHER, "BearSSL"},
        {"libs2n.so", 0, T_OTHER, "s2n-tls"},
        {"libtls.so", 0, T_OTHER, "LibreSSL's libtls"},
        {"libnode.so", 0, T_NODE, "Node.js, with its own OpenSSL inside"},
        {"libjvm.so", 0, T_JAVA, "the Java VM"},
        {"libjli.so", 0, T_JAVA, "the Java launcher"},
    };
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        size_t n = strlen(known[i].prefix);
        if (strncmp(soname, known[i].prefix, n) == 0 && (!known[i].exact || soname[n] == '\0')) {
            *what = known[i].what;
            return known[i].kind;
        }
    }
    *what = NULL;
    return T_NONE;
}

/* What a program's closure holds: one entry per kind, the first library of that kind. */
struct tls_found {
    int idx[T_JAVA + 1]; /* index into libs, -1 for none */
    int missing;         /* libraries not found */
};

/* Lists the TLS libraries of <libs>, and the ones not found, as report lines. */
static void scan_libs(const struct qs_elf_lib *libs, int n, const char *prog, struct tls_found *f)
{
    for (int k = 0; k <= T_JAVA; k++)
        f->idx[k] = -1;
    f->missing = 0;
    for (int i = 0; i < n; i++) {
        const char *what, *by = libs[i].parent < 0 ? prog : libs[libs[i].parent].name;
        enum tls_kind k = tls_kind(libs[i].name, &what);
        if (libs[i].path[0] == '\0') {
            say("missing", "%s, needed by %s: not found (the program would not start as it is)", libs[i].name,
                by);
            f->missing++;
            continue;
        }
        if (k == T_NONE)
            continue;
        say("TLS library", "%s (%s) => %s, needed by %s", libs[i].name, what, libs[i].path, by);
        if (f->idx[k] < 0)
            f->idx[k] = i;
    }
}

/* ==================== Python ==================== */

/* Asks <python> where its _ssl module is and judges by that file. */
static void judge_python(const char *python, struct verdict *v)
{
    char out[PATH_MAX + 64], err[256];
    char *argv[] = {
        (char *)python, "-c",
        "import _ssl\ntry:\n    print(_ssl.__file__)\nexcept AttributeError:\n    print('(built-in)')", NULL};
    const char *const env[] = {"LD_PRELOAD", "PYTHONPATH", "PYTHONHOME", NULL};
    int rc = run_capture(argv, env, out, sizeof out, NULL, 10000);
    out[strcspn(out, "\n")] = '\0';
    if (rc != 0) {
        say("_ssl", "%s -c 'import _ssl' %s", base_name(python),
            rc < 0 ? "did not answer within 10 s" : "failed: this Python has no ssl module");
        if (rc < 0)
            set_verdict(v, V_CAN,
                        "Python loads libssl at run time (dlopen) with its _ssl module, which qshim "
                        "handles (the module could not be located to confirm it is OpenSSL 3)");
        else
            set_verdict(v, V_CANNOT,
                        "this Python has no _ssl module, so it makes no TLS connections with OpenSSL");
        return;
    }
    if (strcmp(out, "(built-in)") == 0) {
        say("_ssl", "built into the interpreter (no separate file), and it links no libssl.so.3");
        set_verdict(v, V_CANNOT, "its _ssl is built in and the interpreter links no OpenSSL 3 libssl.so.3");
        return;
    }
    say("_ssl", "%s (loaded at run time with dlopen)", out);
    struct qs_elf *m = malloc(sizeof *m);
    struct qs_elf_lib *libs = malloc(sizeof *libs * QS_ELF_LIBS_MAX);
    struct tls_found f;
    if (m == NULL || libs == NULL || qs_elf_read(out, m, err, sizeof err) != 0) {
        set_verdict(v, V_CAN,
                    "Python loads libssl at run time (dlopen), which qshim handles (its _ssl module %s "
                    "could not be read to confirm OpenSSL 3)",
                    out);
        goto done;
    }
    scan_libs(libs, qs_elf_closure(out, m, libs), base_name(out), &f);
    if (f.idx[T_OSSL3] >= 0)
        set_verdict(v, V_CAN,
                    "Python loads OpenSSL 3 (libssl.so.3) at run time with its _ssl module; qshim "
                    "finds that libssl when the first TLS call comes, and takes it over");
    else if (f.idx[T_OSSL11] >= 0)
        set_verdict(v, V_CANNOT,
                    "its _ssl module links OpenSSL 1.1 (libssl.so.1.1), whose symbols carry version "
                    "OPENSSL_1_1_0; qshim is built for OpenSSL 3 only");
    else
        set_verdict(v, V_CANNOT, "its _ssl module links no OpenSSL 3 libssl.so.3");
done:
    free(m);
    free(libs);
}

/* ==================== Judging one file ==================== */

static int match_prefix(const char *name, const char *const *list)
{
    for (; *list != NULL; list++)
        if (strncmp(name, *list, strlen(*list)) == 0)
            return 1;
    return 0;
}

static const char *const shells[] = {"sh", "bash", "dash", "zsh", "ksh", "mksh", "fish", "busybox", NULL};
static const char *const dlopeners[] = {"ruby", "perl", "php", "lua", "tclsh", NULL};

static int is_one_of(const char *name, const char *const *list)
{
    for (; *list != NULL; list++)
        if (strcmp(name, *list) == 0)
            return 1;
    return 0;
}

/* A program's ELF facts, then the verdict. <real> is the resolved file. */
static void judge_elf(const char *real, const struct qs_elf *e, struct verdict *v)
{
    const char *name = base_name(real);
    struct qs_elf_lib *libs = NULL;
    struct tls_found f;
    const char *what;

    if (e->type != ET_EXEC && e->type != ET_DYN) {
        say("format", "ELF of type %d: not a program", e->type);
        set_verdict(v, V_ERROR, "%s is not a program (an object file or core dump?)", real);
        return;
    }
    if (e->type == ET_DYN && !e->dynamic && !e->pie) {
        say("format", "ELF %d-bit shared library, not a program", e->cls);
        set_verdict(v, V_ERROR, "%s is a shared library: name the program that loads it", real);
        return;
    }
    say("format", "ELF %d-bit %s, %s%s%s", e->cls,
        e->machine == HOST_MACHINE ? "for this machine" : "for another machine",
        e->dynamic ? "dynamically linked (loader " : "statically linked", e->dynamic ? e->interp : "",
        e->dynamic ? ")" : "");
    if (e->go)
        say("Go", "yes: built by the Go toolchain (.go.buildinfo / Go build id note)");
    if (e->machine != HOST_MACHINE) {
        set_verdict(v, V_CANNOT,
                    "it is built for another machine (ELF e_machine %d), and libqshim.so for this "
                    "one: the loader would refuse to preload it",
                    e->machine);
        return;
    }
    if (!e->dynamic) {
        set_verdict(v, V_CANNOT, "statically linked%s: no dynamic loader runs, so LD_PRELOAD is never read%s",
                    e->go ? " (a Go program)" : "",
                    e->defines_ssl ? "; it carries its own copy of OpenSSL" : "");
        return;
    }
    if (e->go) {
        set_verdict(v, V_CANNOT,
                    "a Go program: Go does TLS in Go (crypto/tls), not through OpenSSL's SSL_* functions");
        return;
    }
    libs = malloc(sizeof *libs * QS_ELF_LIBS_MAX);
    if (libs == NULL) {
        set_verdict(v, V_ERROR, "out of memory");
        return;
    }
    int n = qs_elf_closure(real, e, libs);
    say("libraries", "%d loaded at start-up (DT_NEEDED, followed through each library)", n);
    scan_libs(libs, n, name, &f);
    if (e->defines_ssl)
        say("OpenSSL", "built into %s itself (it defines SSL_write)", name);
    else if (e->imports_ssl)
        say("OpenSSL", "%s calls SSL_write itself, through the dynamic linker", name);

    if (strcmp(name, "node") == 0 || strcmp(name, "nodejs") == 0 || f.idx[T_NODE] >= 0) {
        set_verdict(v, V_CANNOT,
                    "Node.js bundles its own OpenSSL, linked in statically: its TLS calls never go "
                    "through the dynamic linker, where qshim sits");
    } else if (e->defines_ssl) {
        set_verdict(v, V_CANNOT,
                    "it has OpenSSL built in (it defines SSL_write itself): calls inside one file do "
                    "not go through the dynamic linker, where qshim sits");
    } else if (strcmp(name, "java") == 0 || f.idx[T_JAVA] >= 0) {
        set_verdict(v, V_CANNOT, "Java does TLS in Java (JSSE), not through OpenSSL");
    } else if (f.idx[T_OSSL3] >= 0) {
        const struct qs_elf_lib *l = &libs[f.idx[T_OSSL3]];
        set_verdict(v, V_CAN,
                    "%s calls OpenSSL 3 (%s) through the dynamic linker, where qshim's SSL_* come first",
                    name, l->name);
        for (int k = T_OSSL11; k <= T_OTHER; k++)
            if (f.idx[k] >= 0) {
                tls_kind(libs[f.idx[k]].name, &what);
                say("note", "it also loads %s (%s): connections made through that are not seen by qshim",
                    what, libs[f.idx[k]].name);
            }
    } else if (f.idx[T_OSSL11] >= 0) {
        set_verdict(v, V_CANNOT,
                    "it links OpenSSL 1.1 (libssl.so.1.1), whose symbols carry version OPENSSL_1_1_0 "
                    "(OpenSSL 3's are OPENSSL_3.0.0); qshim is built for OpenSSL 3 only");
    } else if (f.idx[T_OSSL_OTHER] >= 0 || f.idx[T_OTHER] >= 0) {
        int k = f.idx[T_OTHER] >= 0 ? T_OTHER : T_OSSL_OTHER;
        tls_kind(libs[f.idx[k]].name, &what);
        set_verdict(v, V_CANNOT, "its TLS library is %s (%s), not OpenSSL 3: qshim only interposes OpenSSL 3",
                    what, libs[f.idx[k]].name);
    } else if (strncmp(name, "python", 6) == 0) {
        judge_python(real, v);
    } else if (is_one_of(name, shells)) {
        set_verdict(v, V_CAN,
                    "%s makes no TLS connections itself; the programs it runs inherit LD_PRELOAD, and "
                    "qshim acts in those that qualify (ask qshim doctor about them)",
                    name);
    } else if (match_prefix(name, dlopeners)) {
        set_verdict(v, V_CAN,
                    "%s loads libssl at run time (dlopen) with its openssl extension, when it makes "
                    "HTTPS requests: qshim handles this if that is OpenSSL 3's libssl.so.3",
                    name);
    } else {
        set_verdict(v, V_CANNOT,
                    "it links no TLS library; if it loads one at run time (dlopen), qshim acts only "
                    "when that is OpenSSL 3's libssl.so.3");
    }
    if (v->code == V_CAN && (strcmp(name, "curl") == 0 || strncmp(name, "python", 6) == 0)) {
        snprintf(v->client, sizeof v->client, "%s", real);
        v->python = name[0] == 'p';
    }
    free(libs);
}

/* The interpreter line of a #! script: "#!INTERP [ARG]". 1 if <head> is one, with the
 * interpreter in <interp> and the rest (one argument, as the kernel passes it) in <arg>. */
static int shebang(const char *head, size_t n, char *interp, size_t ilen, char *arg, size_t alen)
{
    if (n < 3 || head[0] != '#' || head[1] != '!')
        return 0;
    const char *s = head + 2, *end = memchr(head, '\n', n);
    if (end == NULL)
        end = head + n;
    while (s < end && (*s == ' ' || *s == '\t'))
        s++;
    const char *e = s;
    while (e < end && *e != ' ' && *e != '\t')
        e++;
    snprintf(interp, ilen, "%.*s", (int)(e - s), s);
    while (e < end && (*e == ' ' || *e == '\t'))
        e++;
    const char *t = end;
    while (t > e && (t[-1] == ' ' || t[-1] == '\t' || t[-1] == '\r'))
        t--;
    snprintf(arg, alen, "%.*s", (int)(t - e), e);
    return interp[0] != '\0';
}

/* "/usr/bin/env [-S] [-opts] [NAME=VALUE...] PROG ...": PROG, or "" if none. */
static void env_program(const char *arg, char *prog, size_t len)
{
    char buf[256], *save = NULL;
    snprintf(buf, sizeof buf, "%s", arg);
    prog[0] = '\0';
    for (char *w = strtok_r(buf, " \t", &save); w != NULL; w = strtok_r(NULL, " \t", &save)) {
        if (w[0] == '-' || strchr(w, '=') != NULL)
            continue;
        snprintf(prog, len, "%s", w);
        return;
    }
}

/* Judges <path> (as named: <shown>), following #! scripts. */
static void judge(const char *shown, const char *path, int depth, struct verdict *v)
{
    char real[PATH_MAX], head[512], interp[256], arg[256], err[256], next[PATH_MAX];
    struct stat st;
    struct qs_elf *e;

    if (realpath(path, real) == NULL) {
        set_verdict(v, V_ERROR, "%s: %s", path, strerror(errno));
        return;
    }
    if (strcmp(real, path) == 0)
        say("file", "%s", real);
    else
        say("file", "%s -> %s", path, real);
    if (stat(real, &st) != 0 || !S_ISREG(st.st_mode)) {
        set_verdict(v, V_ERROR, "%s is not a regular file", real);
        return;
    }
    int fd = open(real, O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, head, sizeof head) : -1;
    if (fd >= 0)
        close(fd);
    if (n < 0) {
        set_verdict(v, V_ERROR, "cannot read %s: %s", real, strerror(errno));
        return;
    }
    /* A script's own set-id bits are ignored by Linux; its interpreter's are what count. */
    if (shebang(head, (size_t)n, interp, sizeof interp, arg, sizeof arg)) {
        say("script", "run by %s%s%s", interp, arg[0] ? " " : "", arg);
        if (depth >= MAX_SCRIPT_DEPTH) {
            set_verdict(v, V_ERROR, "more than %d levels of #! interpreters: the kernel would refuse it",
                        MAX_SCRIPT_DEPTH);
            return;
        }
        if (strcmp(base_name(interp), "env") == 0) {
            char prog[256];
            env_program(arg, prog, sizeof prog);
            if (prog[0] == '\0' || find_command(prog, next) != 0) {
                set_verdict(v, V_ERROR, "%s's interpreter '%s' is not found in PATH", shown, prog);
                return;
            }
            say("interpreter", "%s (found in PATH by env)", next);
        } else {
            snprintf(next, sizeof next, "%s", interp);
            if (access(next, F_OK) != 0) {
                set_verdict(v, V_ERROR, "%s's interpreter %s: %s", shown, next, strerror(errno));
                return;
            }
        }
        printf("%s is a script; its interpreter:\n", shown);
        judge(base_name(next), next, depth + 1, v);
        return;
    }
    /* Set-id first: it decides whatever the ELF says, but the facts are still worth a look. */
    const char *setid = NULL;
    if (st.st_mode & S_ISUID) {
        say("setuid", "yes (owner uid %u)", (unsigned)st.st_uid);
        setid =
            "setuid: the loader runs it in secure-execution mode and ignores LD_PRELOAD (whenever it runs "
            "as another user than the caller)";
    }
    if ((st.st_mode & S_ISGID) && (st.st_mode & S_IXGRP)) {
        say("setgid", "yes (group gid %u)", (unsigned)st.st_gid);
        if (setid == NULL)
            setid = "setgid: the loader runs it in secure-execution mode and ignores LD_PRELOAD";
    }
    if (getxattr(real, "security.capability", NULL, 0) > 0) {
        say("capabilities", "yes (security.capability is set)");
        if (setid == NULL)
            setid = "it has file capabilities: the loader runs it in secure-execution mode and ignores "
                    "LD_PRELOAD";
    }
    if (setid == NULL)
        say("set-id", "no (neither setuid nor setgid, no file capabilities)");
    e = malloc(sizeof *e);
    if (e == NULL) {
        set_verdict(v, V_ERROR, "out of memory");
        return;
    }
    if (qs_elf_read(real, e, err, sizeof err) != 0) {
        if (strcmp(err, "not ELF") == 0)
            set_verdict(v, V_ERROR, "%s is neither an ELF program nor a #! script", real);
        else
            set_verdict(v, V_ERROR, "%s: %s", real, err);
    } else {
        judge_elf(real, e, v);
    }
    free(e);
    if (setid != NULL && v->code != V_ERROR) {
        set_verdict(v, V_CANNOT, "%s", setid);
        v->client[0] = '\0';
    }
}

/* ==================== Self-test ==================== */

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(p);
}

/* Starts qshim-mock <mock> with <dir>/cert.pem and key.pem on a free loopback port;
 * returns its pid and the port in *port, or -1 with a reason in <why>. */
static pid_t start_mock(const char *mock, const char *dir, int *port, char *why, size_t wlen)
{
    char cert[PATH_MAX], key[PATH_MAX], errf[PATH_MAX], buf[256];
    int p[2], got = 0;

    snprintf(cert, sizeof cert, "%s/cert.pem", dir);
    snprintf(key, sizeof key, "%s/key.pem", dir);
    snprintf(errf, sizeof errf, "%s/mock.err", dir);
    if (pipe2(p, O_CLOEXEC) != 0) {
        snprintf(why, wlen, "pipe: %s", strerror(errno));
        return -1;
    }
    pid_t pid = fork();
    if (pid == 0) {
        int err = open(errf, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(p[1], 1);
        if (err >= 0)
            dup2(err, 2);
        execl(mock, mock, "--cert", cert, "--key", key, "--port", "0", "--addr", "127.0.0.1", (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    if (pid < 0) {
        close(p[0]);
        snprintf(why, wlen, "fork: %s", strerror(errno));
        return -1;
    }
    /* It prints PORT=<n> once listening. */
    *port = 0;
    for (int waited = 0; *port == 0 && waited < 100; waited++) {
        struct pollfd pf = {p[0], POLLIN, 0};
        if (poll(&pf, 1, 100) <= 0)
            continue;
        ssize_t n = read(p[0], buf + got, sizeof buf - 1 - (size_t)got);
        if (n <= 0)
            break;
        got += (int)n;
        buf[got] = '\0';
        char *s = strstr(buf, "PORT=");
        if (s != NULL && strchr(s, '\n') != NULL)
            *port = atoi(s + 5);
    }
    close(p[0]); /* the mock writes nothing more to stdout */
    if (*port <= 0) {
        kill(pid, SIGTERM);
        waitpid(pid, NULL, 0);
        snprintf(why, wlen, "qshim-mock did not start (see its errors: %s)", errf);
        return -1;
    }
    return pid;
}

/* Does the audit log <log> hold the self-test's request? 1 yes, 0 no; <seen> says what it holds. */
static int log_has_request(const char *log, char *seen, size_t slen)
{
    FILE *fp = fopen(log, "r");
    char line[4096];
    int lines = 0, found = 0, leaked = 0;
    if (fp == NULL) {
        snprintf(seen, slen, "no audit log was written");
        return 0;
    }
    while (fgets(line, sizeof line, fp) != NULL) {
        lines++;
        leaked |= strstr(line, "sk-test-qshim-doctor") != NULL;
        found |= strstr(line, "\"event\":\"request\"") != NULL &&
                 strstr(line, "\"model\":\"qwen-plus\"") != NULL && strstr(line, "\"status\":200") != NULL;
    }
    fclose(fp);
    if (leaked) {
        snprintf(seen, slen, "the audit log holds the API key in clear text");
        return 0;
    }
    snprintf(seen, slen, "%d record%s in the audit log%s", lines, lines == 1 ? "" : "s",
             found ? ": event request, model qwen-plus, status 200"
                   : ", none a successful request for qwen-plus");
    return found;
}

/* One request from <client> through the shim to a qshim-mock started here. 0 if the audit log
 * shows it, 1 if not, -1 if the test could not be set up (reason printed). */
static int self_test(const struct verdict *v)
{
    char lib[PATH_MAX], self[PATH_MAX], mock[PATH_MAX], openssl[PATH_MAX], dir[] = "/tmp/qshim-doctor.XXXXXX";
    char cert[PATH_MAX + 16], key[PATH_MAX + 16], conf[PATH_MAX + 16], log[PATH_MAX + 16], url[128],
        out[4096], why[PATH_MAX + 64], errf[PATH_MAX + 16], preload[2 * PATH_MAX + 16], seen[256];
    const char *body =
        "{\"model\":\"qwen-plus\",\"messages\":[{\"role\":\"user\",\"content\":\"qshim doctor\"}]}";
    int port, rc = -1;

    if (qs_find_lib("qshim doctor", lib) != 0 || qs_self_dir(self) != 0) {
        printf("self-test: skipped (libqshim.so not found)\n");
        return -1;
    }
    snprintf(mock, sizeof mock, "%.*s/qshim-mock", PATH_MAX - 16, self);
    if (access(mock, X_OK) != 0 && find_command("qshim-mock", mock) != 0) {
        printf("self-test: skipped (qshim-mock is neither beside qshim nor in PATH)\n");
        return -1;
    }
    if (find_command("openssl", openssl) != 0) {
        printf(
            "self-test: skipped (the openssl command, which makes the mock's certificate, is not in PATH)\n");
        return -1;
    }
    if (mkdtemp(dir) == NULL) {
        printf("self-test: skipped (mkdtemp: %s)\n", strerror(errno));
        return -1;
    }
    snprintf(cert, sizeof cert, "%s/cert.pem", dir);
    snprintf(key, sizeof key, "%s/key.pem", dir);
    snprintf(conf, sizeof conf, "%s/qshim.conf", dir);
    snprintf(log, sizeof log, "%s/audit.jsonl", dir);
    snprintf(errf, sizeof errf, "%s/client.err", dir);
    char *req[] = {openssl,
                   "req",
                   "-x509",
                   "-newkey",
                   "ec",
                   "-pkeyopt",
                   "ec_paramgen_curve:prime256v1",
                   "-nodes",
                   "-keyout",
                   key,
                   "-out",
                   cert,
                   "-days",
                   "1",
                   "-subj",
                   "/CN=localhost",
                   "-addext",
                   "subjectAltName=DNS:localhost,IP:127.0.0.1",
                   NULL};
    if (run_capture(req, NULL, out, sizeof out, NULL, 20000) != 0) {
        printf("self-test: skipped (openssl req could not make a certificate)\n");
        goto out;
    }
    FILE *fp = fopen(conf, "w");
    if (fp == NULL || fputs("# qshim doctor's self-test: the mock is reached as localhost\n"
                            "hosts = [ \"localhost\" ];\n",
                            fp) < 0) {
        printf("self-test: skipped (cannot write %s)\n", conf);
        if (fp != NULL)
            fclose(fp);
        goto out;
    }
    fclose(fp);
    pid_t mpid = start_mock(mock, dir, &port, why, sizeof why);
    if (mpid < 0) {
        printf("self-test: skipped (%s)\n", why);
        goto out;
    }
    snprintf(url, sizeof url, "https://localhost:%d/compatible-mode/v1/chat/completions", port);
    const char *old = getenv("LD_PRELOAD");
    snprintf(preload, sizeof preload, "LD_PRELOAD=%s%s%s", lib, old && old[0] ? ":" : "", old ? old : "");
    char env_conf[PATH_MAX + 32], env_log[PATH_MAX + 32], env_ca[PATH_MAX + 32];
    snprintf(env_conf, sizeof env_conf, "QSHIM_CONFIG=%s", conf);
    snprintf(env_log, sizeof env_log, "QSHIM_LOG=%s", log);
    snprintf(env_ca, sizeof env_ca, "SSL_CERT_FILE=%s", cert);
    const char *const env[] = {preload, env_conf, env_log, env_ca, "QSHIM_DISABLE", "QSHIM_MODE", NULL};
    char client_path[PATH_MAX];
    snprintf(client_path, sizeof client_path, "%s", v->client);
    int crc;
    if (v->python) {
        char *argv[] = {client_path,
                        "-c",
                        "import sys, ssl, urllib.request as u\n"
                        "ctx = ssl.create_default_context(cafile=sys.argv[1])\n"
                        "rq = u.Request(sys.argv[2], data=sys.argv[3].encode(), headers={'Content-Type': "
                        "'application/json', 'Authorization': 'Bearer sk-test-qshim-doctor'})\n"
                        "print(u.urlopen(rq, context=ctx, timeout=20).status)\n",
                        cert,
                        url,
                        (char *)body,
                        NULL};
        crc = run_capture(argv, env, out, sizeof out, errf, 30000);
    } else {
        char *argv[] = {client_path, "-sS",
                        "-o",        "/dev/null",
                        "-w",        "%{http_code}\\n",
                        "--cacert",  cert,
                        "-H",        "Content-Type: application/json",
                        "-H",        "Authorization: Bearer sk-test-qshim-doctor",
                        "-d",        (char *)body,
                        url,         NULL};
        crc = run_capture(argv, env, out, sizeof out, errf, 30000);
    }
    kill(mpid, SIGTERM);
    waitpid(mpid, NULL, 0);
    out[strcspn(out, "\n")] = '\0';
    if (crc != 0 || strcmp(out, "200") != 0) {
        printf("self-test: FAILED: %s exited with %d (HTTP status '%s'); its errors are in %s\n",
               base_name(v->client), crc, out, errf);
        rc = 1;
        return rc; /* keep the directory for the errors */
    }
    rc = log_has_request(log, seen, sizeof seen) ? 0 : 1;
    if (rc == 0)
        printf("self-test: passed: %s made a chat request under the shim to qshim-mock on 127.0.0.1:%d "
               "(HTTP 200); %s\n",
               base_name(v->client), port, seen);
    else
        printf("self-test: FAILED: %s's chat request to qshim-mock on 127.0.0.1:%d succeeded (HTTP 200), but "
               "qshim did not record it: %s\n",
               base_name(v->client), port, seen);
out:
    nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
    return rc;
}

/* ==================== The command ==================== */

int qs_cmd_doctor(int argc, char **argv)
{
    struct verdict v = {.code = V_CAN};
    char path[PATH_MAX];
    int self_test_on = 1, i;

    for (i = 1; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--") == 0) {
            i++;
            break;
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            fputs(qs_doctor_usage, stdout);
            return 0;
        } else if (strcmp(argv[i], "--no-self-test") == 0) {
            self_test_on = 0;
        } else {
            fprintf(stderr, "qshim doctor: unknown option '%s'\n\n%s", argv[i], qs_doctor_usage);
            return QS_EXIT_USAGE;
        }
    }
    if (i >= argc) {
        fprintf(stderr, "qshim doctor: no command given\n\n%s", qs_doctor_usage);
        return QS_EXIT_USAGE;
    }
    if (find_command(argv[i], path) != 0) {
        fprintf(stderr, "qshim doctor: %s: %s\n", argv[i],
                strchr(argv[i], '/') != NULL ? strerror(errno) : "command not found in PATH");
        return V_ERROR;
    }
    printf("qshim doctor: %s\n", argv[i]);
    judge(argv[i], path, 0, &v);
    fflush(stdout);
    if (v.code == V_ERROR) {
        fprintf(stderr, "qshim doctor: %s\n", v.why);
        return V_ERROR;
    }
    printf("verdict: %s: %s\n", v.code == V_CAN ? "can act" : "cannot act", v.why);
    if (v.code != V_CAN)
        return V_CANNOT;
    if (!self_test_on)
        printf("self-test: not run (--no-self-test)\n");
    else if (v.client[0] == '\0')
        printf("self-test: skipped (it is implemented for curl and python only)\n");
    else {
        fflush(stdout);
        if (self_test(&v) > 0)
            return V_CANNOT;
    }
    return V_CAN;
}
