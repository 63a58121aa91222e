/* log_read.h - reading audit logs line by line: several files (and stdin) in turn,
 * rotated files oldest first, and following a live file as `tail -F` does.
 *
 * Nothing is kept but the line being read, so a log of any size streams through. A line
 * that is not a record (malformed, or truncated: a writer died mid-line) is skipped with
 * one warning "qshim-log: FILE:LINE: ..." and reading goes on; it is never fatal.
 * SPDX-License-Identifier: MIT
 */
#ifndef QS_LOG_READ_H
#define QS_LOG_READ_H

#include <stdio.h>
#include <sys/types.h>

#include "log_rec.h"

#define QS_LOG_LINE_MAX (1024 * 1024) /* a longer line is skipped as malformed */

/* Zero it, then qs_log_reader_init. Fields starting with '_' are private. */
struct qs_log_reader {
    const char *name;    /* the file being read, as given ("-" is stdin) */
    long lineno;         /* of the line last returned or skipped */
    unsigned long bad;   /* lines skipped with a warning, over all files */
    unsigned long nopen; /* files that could not be opened (each was reported) */
    FILE *warn;          /* where warnings go (stderr after init; NULL: nowhere) */
    int follow;          /* set by the caller: wait at the end of the last file */
    char **_paths;
    size_t _npaths, _next;
    int _fd;
    dev_t _dev;
    ino_t _ino;
    off_t _off; /* bytes of the file read into _buf so far */
    char *_buf;
    size_t _cap, _start, _end;
    int _skipping, _rotated, _missing;
};

/* Sets up <rd> to read <files> (<n> names; "-" is stdin) in order. With <rotated>, each
 * FILE other than "-" is preceded by its rotated files FILE.N ... FILE.1 (oldest first;
 * N is the last of FILE.1, FILE.2, ... that exists). Returns 0, or -1 when memory runs
 * out. */
int qs_log_reader_init(struct qs_log_reader *rd, const char *const *files, size_t n, int rotated);

/* The next record: sets *<line> and *<len> to its text (without the '\n', valid until the
 * next call) and *<r> to it parsed, and returns 1. Returns 0 at the end of the last file;
 * with <follow>, 0 means "nothing more yet": call qs_log_reader_poll after a pause and
 * then this again. A file that cannot be opened is reported, counted and passed over. */
int qs_log_reader_next(struct qs_log_reader *rd, const char **line, size_t *len, struct qs_log_rec *r);

/* With <follow>, at the end of the last file: notices that the file was truncated (reads
 * it again from the start), or rotated or replaced (reads what the old one still holds,
 * then the new file from its start), or has appeared at last. */
void qs_log_reader_poll(struct qs_log_reader *rd);

/* 1 when every file has been read to its end (never, while following a file that can
 * still grow). */
int qs_log_reader_done(const struct qs_log_reader *rd);

/* Closes the file and frees everything; <rd> may then be initialised again. */
void qs_log_reader_free(struct qs_log_reader *rd);

#endif
