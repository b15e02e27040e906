/* Token sampling: greedy, or temperature -> top-k -> top-p (nucleus) -> a seeded draw, in
 * the order Hugging Face's logits processors apply them. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/generate.h"

pt_sampling pt_sampling_default(void) { return (pt_sampling){.temperature = 0, .top_k = 0, .top_p = 1.0f, .seed = 0}; }

typedef struct { float v; int i; } cand;

static int cand_desc(const void *a, const void *b) {
    const cand *x = a, *y = b;
    if (x->v != y->v) return x->v < y->v ? 1 : -1;
    return x->i - y->i;
}

/* Keeps the k largest in c[0..k) (unordered) with a min-heap: O(V log k). */
static void heap_sift(cand *h, int k, int i) {
    for (;;) {
        int l = 2 * i + 1, r = l + 1, s = i;
        if (l < k && cand_desc(&h[l], &h[s]) > 0) s = l;
        if (r < k && cand_desc(&h[r], &h[s]) > 0) s = r;
        if (s == i) return;
        cand t = h[i]; h[i] = h[s]; h[s] = t;
        i = s;
    }
}

int32_t pt_sample(const float *logits, int vocab, const pt_sampling *p, pt_rng *rng, float *work) {
    if (p->temperature <= 0) {
        int best = 0;
        for (int i = 1; i < vocab; i++)
            if (logits[i] > logits[best]) best = i;
        return best;
    }
    cand *c = work ? (cand *)work : malloc(sizeof(cand) * vocab);
    if (!c) {
        pt_error(PT_ERR_OOM, "sampling: out of memory (%zu bytes of candidates)", sizeof(cand) * (size_t)vocab);
        return -1;
    }
    int n = vocab;
    if (p->top_k > 0 && p->top_k < vocab) {
        n = p->top_k;
        for (int i = 0; i < n; i++) c[i] = (cand){logits[i], i};
        for (int i = n / 2 - 1; i >= 0; i--) heap_sift(c, n, i);
        for (int i = n; i < vocab; i++) {
            cand x = {logits[i], i};
            if (cand_desc(&x, &c[0]) < 0) { c[0] = x; heap_sift(c, n, 0); }
        }
    } else
        for (int i = 0; i < vocab; i++) c[i] = (cand){logits[i], i};
    qsort(c, n, sizeof *c, cand_desc);
    /* softmax of the survivors at the given temperature */
    double mx = c[0].v / p->temperature, sum = 0;
    for (int i = 0; i < n; i++) { c[i].v = (float)exp(c[i].v / p->temperature - mx); sum += c[i].v; }
    int keep = n;
    if (p->top_p < 1.0f) {
        double cum = 0;
        for (int i = 0; i < n; i++) {
            cum += c[i].v / sum;
            if (cum >= p->top_p) { keep = i + 1; break; }
        }
    }
    double total = 0;
    for (int i = 0; i < keep; i++) total += c[i].v;
    double u = pt_rng_double(rng) * total, acc = 0;
    int32_t pick = c[keep - 1].i;
    for (int i = 0; i < keep; i++) {
        acc += c[i].v;
        if (u < acc) { pick = c[i].i; break; }
    }
    if (!work) free(c);
    return pick;
}
