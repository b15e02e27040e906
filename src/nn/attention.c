/* Causal grouped-query attention over a key/value cache.
 *
 * The work is cut into items that each become two small matrix products (BLAS, single-
 * threaded inside the parallel loop): scores S = q K^T against the keys the rows may see, a
 * masked softmax along each row (vectorised exponential, the row maximum subtracted), then
 * O = P V with 1/sum applied to the output rows. Prefill items are (head, block of query
 * tokens): one head's query rows form a strided matrix, so a block shares every key load.
 * Decode items are (token, kv head): the query heads sharing a kv head sit next to each other
 * and read its keys together. Numerically this is the naive loop up to float32 rounding (sums
 * reordered, the exponential within about an ulp). */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>

#include "backend/cpu/kernels.h"
#include "backend/cpu/matmul.h"
#include "backend/cpu/pool.h"
#include "nn/nn.h"
#include "util/status.h"

#define BLOCK_Q 32    /* query tokens per prefill item (16 to 128 measured alike) */
#define MIN_BLOCKED 8 /* fewer query rows than this: decode-style items */

/* o (nr, hd, row stride ldo) = softmax(scale * q k^T, row i limited to len[i] keys) v for nr
 * query rows q (row stride ldq) against keys/values k, v (len_max, row stride kv_dim).
 * S: scratch (nr, len_max); inv: scratch (nr). */
static void attend(float *o, int ldo, const float *q, int ldq, int nr, const int *len, int len_max, const float *k,
                   const float *v, int kv_dim, int hd, float scale, float *S, float *inv) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nr, len_max, hd, scale, q, ldq, k, kv_dim, 0.0f, S, len_max);
    for (int i = 0; i < nr; i++) {
        float *row = S + (size_t)i * len_max;
        int L = len[i];
        float sum = pt_kern_exp_sum(row, L, pt_kern_max(row, L));
        inv[i] = 1.0f / sum;
        for (int s = L; s < len_max; s++) row[s] = 0.0f; /* causal mask */
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nr, hd, len_max, 1.0f, S, len_max, v, kv_dim, 0.0f, o, ldo);
    for (int i = 0; i < nr; i++)
        for (int d = 0; d < hd; d++) o[(size_t)i * ldo + d] *= inv[i];
}

typedef struct {
    float *out;
    const float *q, *k_cache, *v_cache;
    const int *pos;
    int n_q, n_heads, n_kv_heads, hd, n_blocks;
    float scale;
    size_t failed_bytes; /* a scratch allocation that failed (0: none); any thread may set it */
} attn_job;

/* Prefill item `it`: one head over one block of query tokens, latest blocks first (they see
 * the most keys). S: scratch (BLOCK_Q, max_len) + (BLOCK_Q); len: (BLOCK_Q). */
static void blocked_item(const attn_job *j, int it, float *S, int max_len, int *len) {
    const int group = j->n_heads / j->n_kv_heads, kv_dim = j->n_kv_heads * j->hd, qd = j->n_heads * j->hd;
    int blk = j->n_blocks - 1 - it / j->n_heads, h = it % j->n_heads, kvh = h / group;
    int t0 = blk * BLOCK_Q, nr = j->n_q - t0 < BLOCK_Q ? j->n_q - t0 : BLOCK_Q, lmax = 1;
    for (int i = 0; i < nr; i++) {
        len[i] = j->pos[t0 + i] + 1;
        lmax = len[i] > lmax ? len[i] : lmax;
    }
    size_t off = (size_t)t0 * qd + (size_t)h * j->hd;
    attend(j->out + off, qd, j->q + off, qd, nr, len, lmax, j->k_cache + (size_t)kvh * j->hd,
           j->v_cache + (size_t)kvh * j->hd, kv_dim, j->hd, j->scale, S, S + (size_t)BLOCK_Q * max_len);
}

/* Decode item `it`: the query heads of one token that share kv head it % KV. */
static void grouped_item(void *p, int it) {
    attn_job *j = p;
    const int group = j->n_heads / j->n_kv_heads, kv_dim = j->n_kv_heads * j->hd, qd = j->n_heads * j->hd;
    int t = it / j->n_kv_heads, kvh = it % j->n_kv_heads, L = j->pos[t] + 1;
    float *S = malloc(sizeof(float) * ((size_t)group * L + group)); /* (group, L) + (group) */
    int *len = malloc(sizeof(int) * group);
    if (!S || !len) {
        j->failed_bytes = sizeof(float) * ((size_t)group * L + group) + sizeof(int) * group;
        free(S);
        free(len);
        return;
    }
    for (int i = 0; i < group; i++) len[i] = L;
    size_t off = (size_t)t * qd + (size_t)kvh * group * j->hd;
    attend(j->out + off, j->hd, j->q + off, j->hd, group, len, L, j->k_cache + (size_t)kvh * j->hd,
           j->v_cache + (size_t)kvh * j->hd, kv_dim, j->hd, j->scale, S, S + (size_t)group * L);
    free(len);
    free(S);
}

static void blocked_all(attn_job *j, int max_len, double work);

/* Few query rows (decode) run on the helper pool, like the matrix-vector products around
 * them, so no OpenMP team is woken between them (its idle threads spin for milliseconds and
 * would take the core from the pool's); prefill-sized work is an OpenMP loop like the GEMMs. */
pt_status pt_attention_forward(float *out, const float *q, const float *k_cache, const float *v_cache, const int *pos,
                          int n_q, int n_heads, int n_kv_heads, int hd) {
    PT_ASSERT(n_kv_heads > 0 && n_heads % n_kv_heads == 0); /* the model's config was validated */
    pt_kern_blas_init();
    int max_len = 1;
    for (int t = 0; t < n_q; t++) max_len = pos[t] + 1 > max_len ? pos[t] + 1 : max_len;
    attn_job j = {out, q, k_cache, v_cache, pos, n_q, n_heads, n_kv_heads, hd, (n_q + BLOCK_Q - 1) / BLOCK_Q,
                  1.0f / sqrtf((float)hd), 0};
    /* thresholds as in matmul.c: the pool takes small jobs, an OpenMP team only ones long
     * enough to repay a barrier that may wait for a preempted thread */
    const double work = (double)n_q * n_heads * max_len * hd;
    if (n_q < MIN_BLOCKED) {
        pt_pool_run(n_q * n_kv_heads, grouped_item, &j, work < 1 << 15 ? 1 : pt_backend_threads());
    } else {
        blocked_all(&j, max_len, work);
    }
    if (j.failed_bytes) return pt_error(PT_ERR_OOM, "attention: out of memory (%zu bytes of scores)", j.failed_bytes);
    return PT_OK;
}

/* Prefill: blocks of query rows over an OpenMP team, one scratch per thread. */
static void blocked_all(attn_job *j, int max_len, double work) {
    const int threads = work < 1 << 22 || omp_in_parallel() ? 1 : pt_backend_threads();
    const int items = j->n_blocks * j->n_heads;
#pragma omp parallel num_threads(threads)
    {
        float *S = malloc(sizeof(float) * ((size_t)BLOCK_Q * max_len + BLOCK_Q));
        int *len = malloc(sizeof(int) * BLOCK_Q);
        const bool ok = S && len;
        if (!ok) j->failed_bytes = sizeof(float) * ((size_t)BLOCK_Q * max_len + BLOCK_Q) + sizeof(int) * BLOCK_Q;
        /* every thread reaches the loop's barrier; one without scratch takes no items */
#pragma omp for schedule(dynamic, 1)
        for (int it = 0; it < items; it++)
            if (ok) blocked_item(j, it, S, max_len, len);
        free(len);
        free(S);
    }
}
