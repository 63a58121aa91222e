/* log_read.c - streaming audit log reader (see log_read.h).
 *
 * read(2) into one growing buffer, split at '\n'. Rotation is noticed the way tail -F
 * notices it: the path's inode differs from the open file's, or the path is shorter than
 * what was read (truncated in place).
 * SPDX-License-Identifier: MIT
 */
#include "log_read.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log_vec.h"

#define CHUNK 65536

static void warn_line(struct qs_log_reader *rd, const char *what)
{
    rd->bad++;
    if (rd->warn != NULL)
        fprintf(rd->warn, "qshim-log: %s:%ld: %s, skipped\n", strcmp(rd->name, "-") == 0 ? "stdin" : rd->name,
                rd->lineno, what);
}

static int add_path(struct qs_log_reader *rd, size_t *cap, const char *p)
{
    char *copy = strdup(p);
    if (copy == NULL || qs_log_grow(&rd->_paths, cap, rd->_npaths + 1, sizeof *rd->_paths) != 0) {
        free(copy);
        return -1;
    }
    rd->_paths[rd->_npaths++] = copy;
    return 0;
}

int qs_log_reader_init(struct qs_log_reader *rd, const char *const *files, size_t n, int rotated)
{
    size_t cap = 0;

    memset(rd, 0, sizeof *rd);
    rd->warn = stderr;
    rd->_fd = -1;
    rd->name = "-";
    for (size_t i = 0; i < n; i++) {
        if (rotated && strcmp(files[i], "-") != 0) {
            char rot[4096];
            struct stat st;
            int last = 0;
            while (snprintf(rot, sizeof rot, "%s.%d", files[i], last + 1) < (int)sizeof rot &&
                   stat(rot, &st) == 0)
                last++;
            for (int k = last; k >= 1; k--) {
                snprintf(rot, sizeof rot, "%s.%d", files[i], k);
                if (add_path(rd, &cap, rot) != 0)
                    return -1;
            }
        }
        if (add_path(rd, &cap, files[i]) != 0)
            return -1;
    }
    return 0;
}

static void close_file(struct qs_log_reader *rd)
{
    if (rd->_fd > 0)
        close(rd->_fd);
    rd->_fd = -1;
    rd->_start = rd->_end = 0;
    rd->_skipping = rd->_rotated = 0;
}

/* Opens path number <rd->_next>; 0, or -1 when it cannot be: reported and counted, or
 * with <wait> (a followed file that may yet appear) reported once and not counted. */
static int open_next(struct qs_log_reader *rd, int wait)
{
    const char *p = rd->_paths[rd->_next];
    struct stat st;

    rd->name = p;
    rd->lineno = 0;
    rd->_off = 0;
    if (strcmp(p, "-") == 0) {
        rd->_fd = 0;
    } else {
        rd->_fd = open(p, O_RDONLY | O_CLOEXEC);
        if (rd->_fd < 0) {
            if (!wait)
                rd->nopen++;
            if (rd->warn != NULL && !rd->_missing)
                fprintf(rd->warn, "qshim-log: cannot open %s: %s%s\n", p, strerror(errno),
                        wait ? "; waiting for it" : "");
            return -1;
        }
    }
    if (fstat(rd->_fd, &st) == 0) {
        rd->_dev = st.st_dev;
        rd->_ino = st.st_ino;
    }
    return 0;
}

/* Reads more into the buffer. Returns bytes read, 0 at end of file, -1 on error. */
static ssize_t fill(struct qs_log_reader *rd)
{
    ssize_t n;

    if (rd->_start > 0 && (rd->_start == rd->_end || rd->_end + CHUNK > rd->_cap)) {
        memmove(rd->_buf, rd->_buf + rd->_start, rd->_end - rd->_start);
        rd->_end -= rd->_start;
        rd->_start = 0;
    }
    if (qs_log_grow(&rd->_buf, &rd->_cap, rd->_end + CHUNK, 1) != 0)
        return -1;
    do
        n = read(rd->_fd, rd->_buf + rd->_end, rd->_cap - rd->_end);
    while (n < 0 && errno == EINTR);
    if (n > 0) {
        rd->_end += (size_t)n;
        rd->_off += n;
    }
    return n;
}

/* Parses one complete line; 1 when it is a record, 0 when it was skipped. */
static int take(struct qs_log_reader *rd, char *s, size_t n, int at_eof, const char **line, size_t *len,
                struct qs_log_rec *r)
{
    rd->lineno++;
    switch (qs_log_rec_parse(s, n, r)) {
    case QS_LOG_OK:
        *line = s;
        *len = n;
        return 1;
    case QS_LOG_BLANK:
        return 0;
    case QS_LOG_EPARTIAL:
        warn_line(rd, at_eof ? "truncated record (the file ends inside it)" : "truncated record");
        return 0;
    default:
        warn_line(rd, "malformed record");
        return 0;
    }
}

int qs_log_reader_next(struct qs_log_reader *rd, const char **line, size_t *len, struct qs_log_rec *r)
{
    for (;;) {
        int last = rd->_next + 1 >= rd->_npaths;

        if (rd->_fd < 0) {
            if (rd->_next >= rd->_npaths)
                return 0;
            if (open_next(rd, last && rd->follow) != 0) {
                if (last && rd->follow) { /* tail -F: wait for it to appear, said once */
                    rd->_missing = 1;
                    return 0;
                }
                rd->_next++;
                continue;
            }
            rd->_missing = 0;
        }
        char *s = rd->_buf + rd->_start;
        char *nl = rd->_end > rd->_start ? memchr(s, '\n', rd->_end - rd->_start) : NULL;
        if (nl != NULL) {
            size_t n = (size_t)(nl - s);
            rd->_start += n + 1;
            if (rd->_skipping) {
                rd->_skipping = 0;
                continue;
            }
            if (n > QS_LOG_LINE_MAX) { /* read whole in one go: the same rule */
                rd->lineno++;
                warn_line(rd, "line too long");
                continue;
            }
            if (take(rd, s, n, 0, line, len, r))
                return 1;
            continue;
        }
        if (rd->_end - rd->_start > QS_LOG_LINE_MAX) {
            if (!rd->_skipping) {
                rd->lineno++;
                warn_line(rd, "line too long");
            }
            rd->_skipping = 1;
            rd->_start = rd->_end;
        }
        ssize_t got = fill(rd);
        if (got > 0)
            continue;
        if (got < 0 && rd->warn != NULL)
            fprintf(rd->warn, "qshim-log: %s: %s\n", rd->name, strerror(errno));
        /* The end of a live file: its last line may yet be completed. */
        if (got == 0 && last && rd->follow && !rd->_rotated && rd->_fd != 0)
            return 0;
        /* The end of this file: what is left is a line without its '\n'. It stays in _buf
         * (close_file only resets the indexes) until the next call. */
        int have = rd->_end > rd->_start && !rd->_skipping;
        char *rest = rd->_buf + rd->_start;
        size_t rn = rd->_end - rd->_start;
        int reopen = rd->_rotated && got == 0;
        close_file(rd);
        if (!reopen)
            rd->_next++;
        if (have && take(rd, rest, rn, 1, line, len, r))
            return 1;
    }
}

void qs_log_reader_poll(struct qs_log_reader *rd)
{
    struct stat st, cur;

    if (!rd->follow || rd->_next >= rd->_npaths || strcmp(rd->_paths[rd->_next], "-") == 0)
        return;
    if (rd->_fd < 0)
        return; /* not there yet: qs_log_reader_next tries to open it again */
    if (stat(rd->_paths[rd->_next], &st) != 0)
        return; /* moved away, the new one not yet made: keep the old one */
    if (st.st_dev != rd->_dev || st.st_ino != rd->_ino) {
        rd->_rotated = 1; /* drain the old file, then reopen the path */
        return;
    }
    if (fstat(rd->_fd, &cur) == 0 && cur.st_size < rd->_off) {
        if (rd->warn != NULL)
            fprintf(rd->warn, "qshim-log: %s: file truncated, reading it from the start\n", rd->name);
        lseek(rd->_fd, 0, SEEK_SET);
        rd->_off = 0;
        rd->_start = rd->_end = 0;
        rd->_skipping = 0;
        rd->lineno = 0;
    }
}

int qs_log_reader_done(const struct qs_log_reader *rd) { return rd->_fd < 0 && rd->_next >= rd->_npaths; }

void qs_log_reader_free(struct qs_log_reader *rd)
{
    close_file(rd);
    for (size_t i = 0; i < rd->_npaths; i++)
        free(rd->_paths[i]);
    free(rd->_paths);
    free(rd->_buf);
    memset(rd, 0, sizeof *rd);
    rd->_fd = -1;
}
