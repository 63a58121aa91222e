/* diag.c - stderr diagnostics (see diag.h).
 * SPDX-License-Identifier: MIT
 */
#include "diag.h"

#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

int qs_diag_debug;

void qs_diag(const char *fmt, ...)
{
    char line[1024];
    int n = snprintf(line, sizeof line, "qshim[%d]: ", (int)getpid());
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (m < 0)
        return;
    size_t len = (size_t)n + ((size_t)m < sizeof line - (size_t)n - 1 ? (size_t)m : sizeof line - (size_t)n - 2);
    line[len++] = '\n';
    ssize_t w = write(2, line, len);
    (void)w; /* nothing sensible to do if stderr is gone */
}
