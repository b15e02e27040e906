/* A pool of helper threads for short parallel loops (decode-time matrix-vector products and
 * attention), private to the CPU backend and src/nn.
 *
 * An OpenMP parallel-for ends at a barrier that every thread of the team must reach, so on a
 * machine where another process holds a core, each of the ~100 small loops of a decode step
 * waits up to a scheduler time slice for a descheduled helper. Here items are claimed one at
 * a time from a shared counter and the call returns as soon as every claimed item is done: a
 * helper that has not started costs nothing, and the loop degrades to the caller's speed
 * instead of stalling. Long loops (prefill GEMMs) stay on OpenMP, whose barrier cost is
 * small next to their length. */
#ifndef PT_BACKEND_CPU_POOL_H
#define PT_BACKEND_CPU_POOL_H

typedef void (*pt_pool_fn)(void *arg, int item);

/* Runs fn(arg, i) for every i in [0, n) on up to `threads` threads, the caller included, and
 * returns when all are finished. Calls from inside an item, or while another thread is
 * using the pool, run serially on the calling thread. */
void pt_pool_run(int n, pt_pool_fn fn, void *arg, int threads);

#endif
