/* clock.h - the shim's only clock readers, behind replaceable pointers so that tests
 * can drive time exactly (redis monotonic.h style).
 * SPDX-License-Identifier: MIT
 */
#ifndef QS_CLOCK_H
#define QS_CLOCK_H

#include <stdint.h>

/* Monotonic nanoseconds: for durations and pacing. */
extern uint64_t (*qs_now_ns)(void);
/* Wall-clock milliseconds since the epoch: for log timestamps only. */
extern uint64_t (*qs_wall_ms)(void);

#endif
