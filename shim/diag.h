/* diag.h - one-line diagnostics on stderr ("qshim[pid]: ...").
 *
 * Errors are always printed (once per cause, the caller decides); debug lines only
 * with QSHIM_DEBUG=1. Each line is one write(2), so lines from several threads or
 * processes never interleave mid-line.
 * SPDX-License-Identifier: MIT
 */
#ifndef QS_DIAG_H
#define QS_DIAG_H

extern int qs_diag_debug; /* set once at init from QSHIM_DEBUG */

void qs_diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
#define qs_debug(...)                                                                                        \
    do {                                                                                                     \
        if (qs_diag_debug)                                                                                   \
            qs_diag(__VA_ARGS__);                                                                            \
    } while (0)

#endif
