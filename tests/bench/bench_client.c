/* bench_client.c - a minimal OpenSSL 3 HTTPS client for `make bench`.
 *
 * It talks to qshim-mock over one blocking keep-alive connection with plain SSL_write/SSL_read
 * calls, so an LD_PRELOADed libqshim sees exactly what it would see from a simple real client.
 * Modes: "bulk" times one GET /bulk?bytes=N (64 KiB reads); "requests" sends N small chat
 * completions one after another and reports per-request latency percentiles. Both end with
 * the process's CPU time for the work and its peak RSS (VmHWM). Output is key=value lines
 * for tests/bench/run.sh.
 * SPDX-License-Identifier: MIT
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#define READ_BUF (64 * 1024)
#define HEAD_MAX (16 * 1024)

static const char chat_body[] = "{\"model\":\"qwen-plus\",\"messages\":[{\"role\":\"user\",\"content\":"
                                "\"Say hello in one word.\"}],\"max_tokens\":16}";

static void usage(void)
{
    fputs("usage: bench_client [-c CAFILE] bulk HOST PORT BYTES\n"
          "       bench_client [-c CAFILE] requests HOST PORT N\n"
          "Without -c the default verify paths apply (SSL_CERT_FILE). A numeric HOST is\n"
          "verified as an IP address and sent without SNI.\n",
          stderr);
}

static void die_ssl(const char *what)
{
    fprintf(stderr, "bench_client: %s failed\n", what);
    ERR_print_errors_fp(stderr);
    exit(1);
}

static uint64_t clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t now_ns(void) { return clock_ns(CLOCK_MONOTONIC); }

/* CPU time of the whole process, user and system: on a busy machine it varies far less than
 * wall time, so it shows the shim's own cost when latencies are drowned in scheduling noise. */
static uint64_t cpu_ns(void) { return clock_ns(CLOCK_PROCESS_CPUTIME_ID); }

/* Returns a TCP socket connected to <host>:<port> with Nagle off (as curl and urllib3 do);
 * exits on failure. */
static int tcp_connect(const char *host, const char *port)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res, *ai;
    int fd = -1, one = 1, rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        fprintf(stderr, "bench_client: %s: %s\n", host, gai_strerror(rc));
        exit(1);
    }
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        if (fd >= 0)
            close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        fprintf(stderr, "bench_client: cannot connect to %s:%s: %s\n", host, port, strerror(errno));
        exit(1);
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

/* Returns an SSL* that has completed a verified handshake with <host>:<port>; exits on failure. */
static SSL *tls_open(const char *cafile, const char *host, const char *port)
{
    struct in6_addr ip;
    int numeric = inet_pton(AF_INET, host, &ip) == 1 || inet_pton(AF_INET6, host, &ip) == 1;
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    SSL *s;
    if (ctx == NULL)
        die_ssl("SSL_CTX_new");
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (cafile ? SSL_CTX_load_verify_locations(ctx, cafile, NULL) != 1
               : SSL_CTX_set_default_verify_paths(ctx) != 1)
        die_ssl("loading the CA");
    s = SSL_new(ctx);
    SSL_CTX_free(ctx); /* s holds its own reference */
    if (s == NULL)
        die_ssl("SSL_new");
    if (numeric ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(s), host) != 1
                : SSL_set_tlsext_host_name(s, host) != 1 || SSL_set1_host(s, host) != 1)
        die_ssl("setting the peer name");
    if (SSL_set_fd(s, tcp_connect(host, port)) != 1)
        die_ssl("SSL_set_fd");
    if (SSL_connect(s) != 1)
        die_ssl("SSL_connect");
    return s;
}

static void write_all(SSL *s, const char *p, size_t n)
{
    while (n > 0) {
        int w = SSL_write(s, p, n > INT32_MAX ? INT32_MAX : (int)n);
        if (w <= 0)
            die_ssl("SSL_write");
        p += w;
        n -= (size_t)w;
    }
}

/* Reads one response head into <buf> (READ_BUF bytes). Returns the Content-Length and sets
 * *<body_have> to the body bytes that came with the head (they stay in <buf> after it); exits
 * on anything but a 200 with a Content-Length. */
static uint64_t read_head(SSL *s, char *buf, size_t *body_have)
{
    size_t have = 0;
    char *end = NULL, *cl;
    unsigned long long clen;
    while (end == NULL) {
        int r;
        if (have >= HEAD_MAX) {
            fputs("bench_client: response head too large\n", stderr);
            exit(1);
        }
        r = SSL_read(s, buf + have, READ_BUF - 1 - (int)have);
        if (r <= 0)
            die_ssl("SSL_read (head)");
        have += (size_t)r;
        buf[have] = '\0';
        end = strstr(buf, "\r\n\r\n");
    }
    if (strncmp(buf, "HTTP/1.1 200 ", 13) != 0) {
        fprintf(stderr, "bench_client: unexpected answer: %.*s\n", (int)strcspn(buf, "\r\n"), buf);
        exit(1);
    }
    for (cl = strstr(buf, "\r\n"); cl != NULL && cl < end; cl = strstr(cl + 2, "\r\n")) {
        if (strncasecmp(cl + 2, "Content-Length:", 15) == 0)
            break;
    }
    if (cl == NULL || cl >= end || sscanf(cl + 17, "%llu", &clen) != 1) {
        fputs("bench_client: answer without Content-Length\n", stderr);
        exit(1);
    }
    *body_have = have - (size_t)(end + 4 - buf);
    return clen;
}

/* Reads the rest of a body of <clen> bytes of which <have> have arrived; exits on a short body
 * or on bytes past its end (nothing else is in flight on the connection). */
static void read_body(SSL *s, char *buf, uint64_t clen, uint64_t have)
{
    while (have < clen) {
        int r = SSL_read(s, buf, READ_BUF);
        if (r <= 0)
            die_ssl("SSL_read (body)");
        have += (uint64_t)r;
    }
    if (have != clen) {
        fputs("bench_client: bytes after the end of the answer\n", stderr);
        exit(1);
    }
}

static void bulk(SSL *s, const char *host, const char *port, uint64_t bytes, char *buf)
{
    char req[512];
    size_t have;
    uint64_t clen, t0 = now_ns(), c0 = cpu_ns(), dt;
    int n = snprintf(req, sizeof req, "GET /bulk?bytes=%llu HTTP/1.1\r\nHost: %s:%s\r\n\r\n",
                     (unsigned long long)bytes, host, port);
    write_all(s, req, (size_t)n);
    clen = read_head(s, buf, &have);
    if (clen != bytes) {
        fprintf(stderr, "bench_client: asked for %llu bytes, got %llu\n", (unsigned long long)bytes,
                (unsigned long long)clen);
        exit(1);
    }
    read_body(s, buf, clen, have);
    dt = now_ns() - t0;
    printf("bulk bytes=%llu secs=%.3f mb_s=%.1f cpu_s=%.3f\n", (unsigned long long)bytes, dt / 1e9,
           bytes / 1e6 / (dt / 1e9), (cpu_ns() - c0) / 1e9);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* The <p>th percentile (nearest rank) of <n> sorted values. */
static uint64_t pct(const uint64_t *v, size_t n, unsigned p)
{
    size_t rank = (n * p + 99) / 100;
    return v[rank > 0 ? rank - 1 : 0];
}

static void requests(SSL *s, const char *host, const char *port, size_t n, char *buf)
{
    char req[1024];
    uint64_t *lat = malloc(n * sizeof *lat), sum = 0, cpu = cpu_ns();
    int len = snprintf(req, sizeof req,
                       "POST /compatible-mode/v1/chat/completions HTTP/1.1\r\nHost: %s:%s\r\n"
                       "Authorization: Bearer sk-test-bench\r\nContent-Type: application/json\r\n"
                       "Accept: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                       host, port, sizeof chat_body - 1, chat_body);
    if (lat == NULL || len < 0 || (size_t)len >= sizeof req) {
        fputs("bench_client: out of memory\n", stderr);
        exit(1);
    }
    for (size_t i = 0; i < n; i++) {
        uint64_t t0 = now_ns(), clen;
        size_t have;
        write_all(s, req, (size_t)len);
        clen = read_head(s, buf, &have);
        read_body(s, buf, clen, have);
        lat[i] = now_ns() - t0;
        sum += lat[i];
    }
    cpu = cpu_ns() - cpu;
    qsort(lat, n, sizeof *lat, cmp_u64);
    printf("requests n=%zu p50_us=%.1f p90_us=%.1f p99_us=%.1f mean_us=%.1f cpu_us=%.2f\n", n,
           pct(lat, n, 50) / 1e3, pct(lat, n, 90) / 1e3, pct(lat, n, 99) / 1e3, sum / 1e3 / n, cpu / 1e3 / n);
    free(lat);
}

/* Prints this process's peak resident set size, in KiB, from /proc/self/status. */
static void print_vmhwm(void)
{
    char line[256];
    FILE *f = fopen("/proc/self/status", "r");
    while (f != NULL && fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, "VmHWM:", 6) == 0)
            printf("rss vmhwm_kb=%ld\n", strtol(line + 6, NULL, 10));
    }
    if (f != NULL)
        fclose(f);
}

int main(int argc, char **argv)
{
    const char *cafile = NULL;
    unsigned long long count;
    char *end, *buf;
    SSL *s;
    int opt;
    while ((opt = getopt(argc, argv, "c:")) != -1) {
        if (opt != 'c') {
            usage();
            return 2;
        }
        cafile = optarg;
    }
    argv += optind;
    argc -= optind;
    if (argc != 4 || (strcmp(argv[0], "bulk") != 0 && strcmp(argv[0], "requests") != 0)) {
        usage();
        return 2;
    }
    errno = 0;
    count = strtoull(argv[3], &end, 10);
    if (errno != 0 || *end != '\0' || count == 0) {
        usage();
        return 2;
    }
    buf = malloc(READ_BUF);
    if (buf == NULL)
        return 1;
    s = tls_open(cafile, argv[1], argv[2]);
    if (strcmp(argv[0], "bulk") == 0)
        bulk(s, argv[1], argv[2], count, buf);
    else
        requests(s, argv[1], argv[2], count, buf);
    SSL_shutdown(s);
    close(SSL_get_fd(s));
    SSL_free(s);
    free(buf);
    print_vmhwm();
    return 0;
}
