/* qshim_cmd.h - what the qshim subcommands in separate files share with tools/qshim.c.
 *
 * Each subcommand is a function taking (argc, argv) with argv[0] its own name, and a
 * man-style usage text that `qshim help CMD` and `CMD --help` print.
 * SPDX-License-Identifier: MIT
 */
#ifndef QS_CMD_H
#define QS_CMD_H

/* Like env(1) and nice(1): the launcher's own failure, as apart from the command's status. */
#define QS_EXIT_LAUNCHER 125
#define QS_EXIT_CANNOT_RUN 126
#define QS_EXIT_NOT_FOUND 127
#define QS_EXIT_USAGE 2

/* Finds libqshim.so ($QSHIM_LIB, else beside the qshim binary, else ../lib/qshim/ from it)
 * and writes its absolute, symlink-free path into out[PATH_MAX]. 0, or -1 after a message
 * on stderr prefixed with <who>. */
int qs_find_lib(const char *who, char *out);

/* The directory of the running qshim binary (from /proc/self/exe) into out[PATH_MAX]. */
int qs_self_dir(char *out);

extern const char qs_doctor_usage[];
int qs_cmd_doctor(int argc, char **argv);

extern const char qs_status_usage[];
int qs_cmd_status(int argc, char **argv);

#endif
