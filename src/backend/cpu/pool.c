/* Helper-thread pool for short parallel loops (see pool.h).
 *
 * One job at a time: the caller writes the job's function and argument, then publishes it in
 * `state` (generation | item count | next unclaimed item, one 64-bit word). Helpers claim
 * items with a compare-and-swap on that whole word, so the bound they check and the job they
 * claim from always belong together, and a helper holding an old job's function can never
 * run it against a newer job: the caller writes the next job only after the `done` count
 * shows every claimed item of the last one finished.
 * Idle helpers spin briefly (decode issues a loop every few microseconds), then sleep on a
 * futex. */
#include "backend/cpu/pool.h"

#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "util/status.h"

#define MAX_HELPERS 63
#define NEXT_BITS 20
#define NEXT_MASK ((1ull << NEXT_BITS) - 1)
#define MAX_ITEMS ((int)NEXT_MASK) /* larger loops run serially */
#define SPIN_NS 200000 /* how long an idle helper keeps polling before it sleeps */

static struct {
    pthread_mutex_t lock; /* one caller at a time */
    int n_helpers;        /* started so far (under lock) */
    _Atomic uint64_t state;
    _Atomic uint32_t seq; /* the generation again, as a futex word */
    _Atomic int sleepers;
    _Atomic(pt_pool_fn) fn;
    _Atomic(void *) arg;
    _Atomic int want, done;
} P = {.lock = PTHREAD_MUTEX_INITIALIZER};

static _Thread_local int in_pool;

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Next unclaimed item of the job tagged `tag` (state without its next-item bits), or -1 when
 * it has none left or is no longer the current job. */
static int claim(uint64_t tag) {
    const uint64_t n = (tag >> NEXT_BITS) & NEXT_MASK;
    uint64_t s = atomic_load_explicit(&P.state, memory_order_acquire);
    for (;;) {
        if ((s & ~NEXT_MASK) != tag || (s & NEXT_MASK) >= n) return -1;
        if (atomic_compare_exchange_weak_explicit(&P.state, &s, s + 1, memory_order_acq_rel, memory_order_acquire))
            return (int)(s & NEXT_MASK);
    }
}

/* Waits for a generation other than `seen` and returns it. */
static uint32_t wait_job(uint32_t seen) {
    uint64_t start = now_ns();
    for (int i = 0;; i++) {
        uint32_t g = atomic_load_explicit(&P.seq, memory_order_acquire);
        if (g != seen) return g;
        cpu_relax();
        if ((i & 255) == 255 && now_ns() - start > SPIN_NS) break;
    }
    for (;;) {
        atomic_fetch_add(&P.sleepers, 1);
        if (atomic_load(&P.seq) == seen) syscall(SYS_futex, &P.seq, FUTEX_WAIT_PRIVATE, seen, NULL, NULL, 0);
        atomic_fetch_sub(&P.sleepers, 1);
        uint32_t g = atomic_load_explicit(&P.seq, memory_order_acquire);
        if (g != seen) return g;
    }
}

static void *helper_main(void *p) {
    const int index = (int)(intptr_t)p;
    in_pool = 1;
    uint32_t seen = atomic_load(&P.seq);
    for (;;) {
        seen = wait_job(seen);
        /* the job read here may already be a later one than `seen`: claim() only succeeds
         * while `tag` is current, and fn / arg are rewritten only once it is finished */
        uint64_t tag = atomic_load_explicit(&P.state, memory_order_acquire) & ~NEXT_MASK;
        if (index >= atomic_load_explicit(&P.want, memory_order_relaxed)) continue;
        pt_pool_fn fn = atomic_load_explicit(&P.fn, memory_order_relaxed);
        void *arg = atomic_load_explicit(&P.arg, memory_order_relaxed);
        for (int k; (k = claim(tag)) >= 0;) {
            fn(arg, k);
            atomic_fetch_add_explicit(&P.done, 1, memory_order_release);
        }
    }
    return NULL;
}

void pt_pool_run(int n, pt_pool_fn fn, void *arg, int threads) {
    if (n <= 0) return;
    if (threads > MAX_HELPERS + 1) threads = MAX_HELPERS + 1;
    if (threads <= 1 || n == 1 || n > MAX_ITEMS || in_pool || pthread_mutex_trylock(&P.lock) != 0) {
        for (int i = 0; i < n; i++) fn(arg, i);
        return;
    }
    while (P.n_helpers < threads - 1) {
        pthread_t t;
        pthread_attr_t at;
        pthread_attr_init(&at);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        int rc = pthread_create(&t, &at, helper_main, (void *)(intptr_t)P.n_helpers);
        pthread_attr_destroy(&at);
        if (rc != 0) break; /* fewer helpers: still correct */
        P.n_helpers++;
    }
    in_pool = 1;
    atomic_store_explicit(&P.fn, fn, memory_order_relaxed);
    atomic_store_explicit(&P.arg, arg, memory_order_relaxed);
    atomic_store_explicit(&P.want, threads - 1, memory_order_relaxed);
    atomic_store_explicit(&P.done, 0, memory_order_relaxed);
    uint64_t gen = (atomic_load_explicit(&P.state, memory_order_relaxed) >> (2 * NEXT_BITS)) + 1;
    uint64_t tag = gen << (2 * NEXT_BITS) | (uint64_t)n << NEXT_BITS;
    atomic_store_explicit(&P.state, tag, memory_order_release);
    atomic_store(&P.seq, (uint32_t)gen); /* seq_cst with the sleepers check below: no lost wake-up */
    if (atomic_load(&P.sleepers) > 0) syscall(SYS_futex, &P.seq, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
    int mine = 0;
    for (int k; (k = claim(tag)) >= 0; mine++) fn(arg, k);
    /* only items a helper has claimed are still running */
    for (int i = 0; atomic_load_explicit(&P.done, memory_order_acquire) + mine < n; i++) {
        cpu_relax();
        if (i > 4096) sched_yield();
    }
    in_pool = 0;
    pthread_mutex_unlock(&P.lock);
}
