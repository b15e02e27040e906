/* Elapsed time for progress lines, rates and timeouts: seconds on the monotonic clock (not
 * the wall clock, which can jump). */
#ifndef PT_UTIL_CLOCK_H
#define PT_UTIL_CLOCK_H

#include <time.h>

static inline double pt_now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

#endif
