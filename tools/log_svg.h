/* log_svg.h - `qshim-log plot --svg FILE`: the charts as one standalone SVG document for
 * a report: title, per chart axes with ticks and labels, the series as bars, the limit as
 * a dashed line, throttle (429) markers, and a legend.
 * SPDX-License-Identifier: MIT
 */
#ifndef QS_LOG_SVG_H
#define QS_LOG_SVG_H

#include <stdio.h>

#include "log_series.h"

/* Writes the SVG document of <charts> (<n>, stacked top to bottom) to <out>, headed by
 * <title> and <subtitle>. Elements carry classes a test or stylesheet can find: "bar",
 * "limit" (the dashed line), "throttle hidden" and "throttle passed" (the markers),
 * "legend". Returns 0, or -1 when writing failed. */
int qs_log_svg_write(FILE *out, const struct qs_log_chart *charts, size_t n, const char *title,
                     const char *subtitle);

#endif
