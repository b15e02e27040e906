/* CPU matrix products: BLAS for batches, SIMD row-dot kernels for single rows.
 *
 * Threading: batches run as OpenMP loops with BLAS single-threaded inside, each call on a
 * disjoint block of output columns. Letting OpenBLAS keep its own thread pool next to
 * OpenMP's made the two fight over the cores (idle threads of each spin, and the engine
 * alternates BLAS calls with OpenMP loops): about half the sgemm throughput on two cores.
 * Single rows (decode) run on the helper pool of pool.h instead, whose loops do not wait for
 * a helper that another process has preempted. Work goes out in a few blocks per thread,
 * dynamically, so a busy core slows a product down rather than stalling it on a fixed half. */
#include "backend/cpu/matmul.h"

#include <cblas.h>
#include <omp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/kernels.h"
#include "backend/cpu/pool.h"

static int n_threads = 0;

void pt_backend_set_threads(int n) {
    if (n <= 0) n = omp_get_num_procs();
    n_threads = n;
    omp_set_num_threads(n);
    pt_kern_blas_init();
}

int pt_backend_threads(void) { return n_threads > 0 ? n_threads : omp_get_max_threads(); }

/* Threads for `work` multiply-adds: one when nested in a parallel region or when the work is
 * below `min_work`. OpenMP loops end at a barrier that waits for every thread, which on a
 * loaded machine can take a scheduler time slice, so they get a high bar (about a millisecond
 * of work); the helper pool never waits for a late helper and takes small jobs. */
#define OMP_MIN_WORK (1 << 22)
#define POOL_MIN_WORK (1 << 16)
static int threads_for(double work, double min_work) {
    if (omp_in_parallel() || work < min_work) return 1;
    return pt_backend_threads();
}

/* Number of blocks of `align`-multiple size splitting `n` for `nt` threads: about `per`
 * blocks each, none smaller than `min_block`. Returns the block size. */
static int block_size(int n, int nt, int per, int align, int min_block) {
    int b = (n + nt * per - 1) / (nt * per);
    b = (b + align - 1) / align * align;
    return b < min_block ? min_block : b;
}

void pt_sgemm_nt(float *C, const float *A, const float *B, int m, int n, int k, int accumulate) {
    pt_kern_blas_init();
    const float beta = accumulate ? 1.0f : 0.0f;
    int nt = threads_for((double)m * n * k, OMP_MIN_WORK);
    if (nt == 1) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1.0f, A, k, B, k, beta, C, n);
        return;
    }
    if (n >= m) { /* split the columns of C (rows of B) */
        int bs = block_size(n, nt, 3, 16, 32), nb = (n + bs - 1) / bs;
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt)
        for (int b = 0; b < nb; b++) {
            int c0 = b * bs, nc = n - c0 < bs ? n - c0 : bs;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, nc, k, 1.0f, A, k, B + (size_t)c0 * k, k, beta, C + c0, n);
        }
    } else { /* split the rows of C (rows of A) */
        int bs = block_size(m, nt, 3, 16, 32), nb = (m + bs - 1) / bs;
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt)
        for (int b = 0; b < nb; b++) {
            int r0 = b * bs, nr = m - r0 < bs ? m - r0 : bs;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nr, n, k, 1.0f, A + (size_t)r0 * k, k, B, k, beta,
                        C + (size_t)r0 * n, n);
        }
    }
}

/* Rows of W handled per kernel call in matvec; with several input rows each such band is
 * re-read from cache rather than memory. */
#define SUB_ROWS 32

typedef struct {
    float *out;
    const float *in;
    const pt_weight *W;
    const float *bias;
    int n, accumulate, block;
    size_t rb;
} matvec_job;

/* One block of weight rows against every input row; the block is read from memory once and
 * from cache for the inputs after the first. */
static void matvec_block(void *p, int b) {
    const matvec_job *j = p;
    const int rows = j->W->rows, cols = j->W->cols;
    const uint8_t *base = j->W->data;
    int r1 = (b + 1) * j->block < rows ? (b + 1) * j->block : rows;
    for (int r0 = b * j->block; r0 < r1; r0 += SUB_ROWS) {
        int nr = r1 - r0 < SUB_ROWS ? r1 - r0 : SUB_ROWS;
        for (int i = 0; i < j->n; i++) {
            float v[SUB_ROWS];
            pt_kern_dot_rows(v, base + (size_t)r0 * j->rb, j->rb, j->W->dtype, j->in + (size_t)i * cols, nr, cols);
            float *o = j->out + (size_t)i * rows + r0;
            for (int r = 0; r < nr; r++) {
                float y = j->bias ? v[r] + j->bias[r0 + r] : v[r];
                o[r] = j->accumulate ? o[r] + y : y;
            }
        }
    }
}

/* Single-row (or few-row) product, on the helper pool: each block of weight rows goes to
 * whichever thread is free. */
static void matvec(float *out, const float *in, const pt_weight *W, const float *bias, int n, int accumulate) {
    const int rows = W->rows;
    const size_t rb = pt_dtype_nbytes(W->dtype, W->cols);
    int nt = threads_for((double)rows * W->cols * n, POOL_MIN_WORK);
    /* blocks of about 256 KiB: short enough that a helper preempted mid-block delays the
     * caller little, long enough to stream; at least two per thread */
    int bs = (int)(((size_t)256 << 10) / rb), most = (rows + 2 * nt - 1) / (2 * nt);
    bs = bs < most ? bs : most;
    bs = bs < 1 ? 1 : bs;
    bs = (bs + SUB_ROWS - 1) / SUB_ROWS * SUB_ROWS;
    matvec_job j = {out, in, W, bias, n, accumulate, bs, rb};
    pt_pool_run((rows + bs - 1) / bs, matvec_block, &j, nt);
}

/* Per-thread dequantisation buffers, kept between calls (freed when their thread ends): the
 * tile a thread of a product dequantises into, and the whole W the calling thread's product
 * may dequantise first (whole_weight). */
enum { BUF_TILE, BUF_WHOLE, N_BUFS };
static pthread_key_t buf_key[N_BUFS];
static pthread_once_t buf_once = PTHREAD_ONCE_INIT;
typedef struct { float *p; size_t cap; } tile_buf;
static void tile_free(void *t) {
    if (t) free(((tile_buf *)t)->p);
    free(t);
}
static void buf_keys_init(void) {
    for (int k = 0; k < N_BUFS; k++) PT_ASSERT(pthread_key_create(&buf_key[k], tile_free) == 0);
}
static float *thread_buf(int which, size_t n) {
    pthread_once(&buf_once, buf_keys_init);
    tile_buf *t = pthread_getspecific(buf_key[which]);
    if (!t) {
        t = calloc(1, sizeof *t);
        PT_ASSERT(t && pthread_setspecific(buf_key[which], t) == 0);
    }
    if (t->cap < n) {
        free(t->p);
        t->p = malloc(sizeof(float) * n);
        PT_ASSERT(t->p);
        t->cap = n;
    }
    return t->p;
}
static float *thread_tile(size_t n) { return thread_buf(BUF_TILE, n); }

/* A quantised W of at most this many elements (16 MiB as float32) may be dequantised whole
 * for one product: every layer of a ~100M model, not an 8B model's MLP nor a vocabulary-sized
 * head, which take tiles. */
#define WHOLE_ELEMS ((size_t)1 << 22)

/* W dequantised whole into the calling thread's buffer (rows split over the threads), or
 * NULL when it is larger than WHOLE_ELEMS. The products then run exactly as on a float32 W,
 * with the same sums: batches with more rows of activations than W has rows split the
 * activations, and sgemm packs each weight block once per activation block rather than the
 * activations once per weight tile. */
static const float *whole_weight(const pt_weight *W, int nt) {
    const size_t n = (size_t)W->rows * W->cols;
    if (n > WHOLE_ELEMS || omp_in_parallel()) return NULL;
    float *w = thread_buf(BUF_WHOLE, n); /* (rows, cols) */
    const size_t rb = pt_dtype_nbytes(W->dtype, W->cols);
    const int bs = 64, nb = (W->rows + bs - 1) / bs;
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt)
    for (int b = 0; b < nb; b++) {
        const int r0 = b * bs, nr = W->rows - r0 < bs ? W->rows - r0 : bs;
        pt_kern_dequant_rows(w + (size_t)r0 * W->cols, (const uint8_t *)W->data + (size_t)r0 * rb, rb, W->dtype, nr, W->cols);
    }
    return w;
}

/* Float32 elements of a thread's dequantisation tile at most (1 MiB). */
#define TILE_ELEMS (1 << 18)
/* Batches of fewer rows keep 64-row tiles (at most ~400 KiB for a 1536-wide W), which stay
 * in a 512 KiB L2 cache between being written and being packed: there the activations are
 * few and cheap to re-pack, and the tile's round trip is what costs (batched decode). */
#define SMALL_TILE_BATCH 64
#define SMALL_TILE_ROWS 64

/* Quantised weights in a batch: each block of rows is dequantised into the thread's tile and
 * multiplied into the matching output columns. For batches of SMALL_TILE_BATCH rows or more
 * the blocks are as large as pt_sgemm_nt's on a float32 W (about three per thread), within
 * TILE_ELEMS: sgemm packs the activations once per call and reuses each packed element once
 * per weight row of the block, and 64-row tiles re-packed and re-streamed a training batch's
 * activations four to eight times as often as the float32 path (1.3x its time in a DPO step).
 * The sums over `cols` are those of one sgemm whatever the block, as on a float32 W. */
static void matmul_quant(float *out, const float *in, const pt_weight *W, int n, int accumulate) {
    pt_kern_blas_init();
    const int rows = W->rows, cols = W->cols;
    const size_t rb = pt_dtype_nbytes(W->dtype, cols);
    int nt = threads_for((double)rows * cols * n, OMP_MIN_WORK);
    const float *whole = n > rows ? whole_weight(W, nt) : NULL;
    if (whole) {
        pt_sgemm_nt(out, in, whole, n, rows, cols, accumulate);
        return;
    }
    int tile_rows = SMALL_TILE_ROWS;
    if (n >= SMALL_TILE_BATCH) {
        const int most = TILE_ELEMS / cols / 16 * 16;
        tile_rows = block_size(rows, nt, 3, 16, 32);
        tile_rows = tile_rows < most ? tile_rows : most > 16 ? most : 16;
    }
    const int nb = (rows + tile_rows - 1) / tile_rows;
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt)
    for (int b = 0; b < nb; b++) {
        int r0 = b * tile_rows, nr = rows - r0 < tile_rows ? rows - r0 : tile_rows;
        float *tile = thread_tile((size_t)tile_rows * cols); /* (nr, cols) */
        pt_kern_dequant_rows(tile, (const uint8_t *)W->data + (size_t)r0 * rb, rb, W->dtype, nr, cols);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, nr, cols, 1.0f, in, cols, tile, cols,
                    accumulate ? 1.0f : 0.0f, out + r0, rows);
    }
}

const float *pt_matmul_weight_f32(const pt_weight *W) {
    if (W->dtype == PT_F32) return W->data;
    return whole_weight(W, threads_for((double)W->rows * W->cols * 64, OMP_MIN_WORK));
}

void pt_matmul_input_grad(float *dx, const float *dy, const pt_weight *W, int n, int accumulate) {
    pt_kern_blas_init();
    const int rows = W->rows, cols = W->cols;
    const size_t rb = pt_dtype_nbytes(W->dtype, cols), block_bytes = pt_dtype_block_bytes(W->dtype);
    const int blk = pt_dtype_block(W->dtype);
    int nt = threads_for((double)rows * cols * n, OMP_MIN_WORK);
    /* slabs of whole quantisation blocks, two per thread; then as many weight rows per tile
     * as TILE_ELEMS holds (all of them but for a vocabulary-sized W) */
    int slab = block_size(cols, nt, 2, blk, blk);
    int chunk = TILE_ELEMS / slab;
    chunk = chunk < rows ? chunk : rows;
    chunk = chunk < 16 ? 16 : chunk;
    const int ns = (cols + slab - 1) / slab;
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt)
    for (int s = 0; s < ns; s++) {
        const int c0 = s * slab, w = cols - c0 < slab ? cols - c0 : slab;
        if (W->dtype == PT_F32) {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, w, rows, 1.0f, dy, rows, (const float *)W->data + c0, cols,
                        accumulate ? 1.0f : 0.0f, dx + c0, cols);
            continue;
        }
        float *tile = thread_tile((size_t)chunk * slab); /* (kr, w): W[k0 .. k0 + kr, c0 .. c0 + w] */
        for (int k0 = 0; k0 < rows; k0 += chunk) {
            const int kr = rows - k0 < chunk ? rows - k0 : chunk;
            pt_kern_dequant_rows(tile, (const uint8_t *)W->data + (size_t)k0 * rb + (size_t)(c0 / blk) * block_bytes, rb, W->dtype, kr, w);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, w, kr, 1.0f, dy + k0, rows, tile, w,
                        accumulate || k0 > 0 ? 1.0f : 0.0f, dx + c0, cols);
        }
    }
}

#define SMALL_BATCH 4

/* Decode kernels that quantise the activations (kernels.c: rows_blocks_i8). */
static int int8_activations(pt_dtype t) { return pt_dtype_is_quant(t) && t != PT_Q8_0 && t != PT_Q4_0; }

static void matmul(float *out, const float *in, const pt_weight *W, const float *bias, int n, int accumulate, int float_only) {
    const int rows = W->rows, cols = W->cols;
    if (n <= SMALL_BATCH && !(float_only && int8_activations(W->dtype))) {
        matvec(out, in, W, bias, n, accumulate);
        return;
    }
    if (W->dtype == PT_F32) pt_sgemm_nt(out, in, W->data, n, rows, cols, accumulate);
    else matmul_quant(out, in, W, n, accumulate);
    if (bias) {
#pragma omp parallel for schedule(static) num_threads(threads_for((double)n * rows * 16, OMP_MIN_WORK))
        for (int i = 0; i < n; i++)
            for (int r = 0; r < rows; r++) out[(size_t)i * rows + r] += bias[r];
    }
}

void pt_matmul(float *out, const float *in, const pt_weight *W, const float *bias, int n, int accumulate) {
    matmul(out, in, W, bias, n, accumulate, 0);
}

void pt_matmul_float(float *out, const float *in, const pt_weight *W, const float *bias, int n, int accumulate) {
    matmul(out, in, W, bias, n, accumulate, 1);
}
