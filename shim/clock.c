/* clock.c - monotonic and wall clocks (see clock.h).
 * SPDX-License-Identifier: MIT
 */
#include "clock.h"

#include <time.h>

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t real_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t (*qs_now_ns)(void) = mono_ns;
uint64_t (*qs_wall_ms)(void) = real_ms;
