/* log_plot.h - `qshim-log plot` in the terminal: a bar chart in plain ASCII that fits the
 * given width, the limit drawn as a line of '-', throttles marked under the time axis.
 * SPDX-License-Identifier: MIT
 */
#ifndef QS_LOG_PLOT_H
#define QS_LOG_PLOT_H

#include <stdio.h>

#include "log_series.h"

#define QS_PLOT_MIN_WIDTH 40

/* Draws <c> on <out>: no line longer than <width> (>= QS_PLOT_MIN_WIDTH) columns,
 * <height> rows of bars. When there are more bins than columns, a column shows the
 * highest bin of the few it stands for (the legend says how many). */
void qs_log_plot_text(FILE *out, const struct qs_log_chart *c, int width, int height);

#endif
