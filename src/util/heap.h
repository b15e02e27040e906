/* A binary min-heap over a caller's array, generated per element type so the hot loops
 * (BPE merges, SentencePiece merges) keep direct comparisons instead of calls through a
 * function pointer. PT_HEAP_DEFINE(prefix, type, before) defines
 *   static void prefix_push(type *h, size_t *n, type x);  // h has room for *n + 1
 *   static type prefix_pop(type *h, size_t *n);           // *n > 0; removes the first by `before`
 * where before(const type *a, const type *b) says a comes out ahead of b. */
#ifndef PT_UTIL_HEAP_H
#define PT_UTIL_HEAP_H

#include <stddef.h>

#define PT_HEAP_DEFINE(prefix, type, before)                                   \
    static void prefix##_push(type *h, size_t *n, type x) {                    \
        size_t i = (*n)++;                                                     \
        while (i > 0) {                                                        \
            size_t p = (i - 1) / 2;                                            \
            if (!before(&x, &h[p])) break;                                     \
            h[i] = h[p];                                                       \
            i = p;                                                             \
        }                                                                      \
        h[i] = x;                                                              \
    }                                                                          \
    static type prefix##_pop(type *h, size_t *n) {                             \
        type top = h[0], last = h[--(*n)];                                     \
        size_t i = 0;                                                          \
        for (;;) {                                                             \
            size_t l = 2 * i + 1, r = l + 1, m = i;                            \
            const type *best = &last;                                          \
            if (l < *n && before(&h[l], best)) { m = l; best = &h[l]; }       \
            if (r < *n && before(&h[r], best)) m = r;                          \
            if (m == i) break;                                                 \
            h[i] = h[m];                                                       \
            i = m;                                                             \
        }                                                                      \
        if (*n) h[i] = last;                                                   \
        return top;                                                            \
    }

#endif
