/* Every training layer's backward against finite differences in double precision.
 *
 * For each layer the test has its own double-precision forward (written from the definitions,
 * independently of the float kernels) and a scalar L = sum(r * output) with random r. Central
 * differences of L in double (step 1e-5, error ~1e-10) give the exact gradient; the float
 * backward kernel, fed dL/doutput = r, must agree within 1e-4 x the largest gradient. The float
 * forward is checked against the double one too, so both implement the same function. The
 * DPO losses' derivatives are checked the same way. */
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "nn/fastexp.h"
#include "nn/linear.h"
#include "nn/nn.h"
#include "internal.h"
#include "test.h"
#include "train/loss.h"
#include "util/rng.h"

#define FD_H 1e-5
#define FD_TOL 1e-4 /* x max |gradient| */

static pt_rng rng;
static void fill(float *v, int64_t n, float lo, float hi) {
    for (int64_t i = 0; i < n; i++) v[i] = lo + (hi - lo) * pt_rng_float(&rng);
}
static double *to_d(const float *v, int64_t n) {
    double *d = malloc(sizeof(double) * n);
    for (int64_t i = 0; i < n; i++) d[i] = v[i];
    return d;
}

/* The gradient of L w.r.t. x (n) by central differences; f evaluates L from x. */
typedef double (*loss_fn)(const double *x, void *ctx);
static void fd_grad(double *g, double *x, int64_t n, loss_fn f, void *ctx) {
    for (int64_t i = 0; i < n; i++) {
        double x0 = x[i];
        x[i] = x0 + FD_H;
        double lp = f(x, ctx);
        x[i] = x0 - FD_H;
        double lm = f(x, ctx);
        x[i] = x0;
        g[i] = (lp - lm) / (2 * FD_H);
    }
}

static void compare(const char *what, const float *got, const double *want, int64_t n) {
    float *w = malloc(sizeof(float) * n);
    for (int64_t i = 0; i < n; i++) w[i] = (float)want[i];
    fx_close(what, got, w, n, FD_TOL);
    free(w);
}

/* A float forward against its double definition: the float kernels' rounding (and fast exp)
 * only, so within 1e-5 x the largest output. */
static void compare_forward(const char *what, const float *got, const double *want, int64_t n) {
    float *w = malloc(sizeof(float) * n);
    for (int64_t i = 0; i < n; i++) w[i] = (float)want[i];
    fx_close(what, got, w, n, 1e-5); /* reports the worst element itself */
    free(w);
}

/* ---- RMSNorm ------------------------------------------------------------------------------ */

typedef struct { int n, dim; double eps; const double *x, *w, *r; int wrt; } rms_ctx; /* wrt 0: x, 1: w */

static double rms_loss(const double *v, void *p) {
    rms_ctx *c = p;
    const double *x = c->wrt ? c->x : v, *w = c->wrt ? v : c->w;
    double L = 0;
    for (int t = 0; t < c->n; t++) {
        double ss = 0;
        for (int i = 0; i < c->dim; i++) ss += x[t * c->dim + i] * x[t * c->dim + i];
        double rs = 1 / sqrt(ss / c->dim + c->eps);
        for (int i = 0; i < c->dim; i++) L += c->r[t * c->dim + i] * x[t * c->dim + i] * rs * w[i];
    }
    return L;
}

PT_TEST(test_train_layer_rmsnorm) {
    pt_rng_seed(&rng, 1);
    const int n = 3, D = 24;
    float x[3 * 24], w[24], r[3 * 24], y[3 * 24], rstd[3], dx[3 * 24] = {0}, dw[24] = {0};
    fill(x, n * D, -2, 2), fill(w, D, 0.5f, 1.5f), fill(r, n * D, -1, 1);
    pt_rmsnorm_forward(y, rstd, x, w, n, D, 1e-5f);
    pt_rmsnorm_backward(dx, dw, r, x, w, rstd, n, D);
    double *xd = to_d(x, n * D), *wd = to_d(w, D), *rd = to_d(r, n * D), g[3 * 24];
    rms_ctx c = {n, D, 1e-5, xd, wd, rd, 0};
    fd_grad(g, xd, n * D, rms_loss, &c);
    compare("rmsnorm dx", dx, g, n * D);
    c.wrt = 1;
    fd_grad(g, wd, D, rms_loss, &c);
    compare("rmsnorm dweight", dw, g, D);
    /* din accumulates (residual stream) */
    pt_rmsnorm_backward(dx, NULL, r, x, w, rstd, n, D);
    c.wrt = 0;
    fd_grad(g, xd, n * D, rms_loss, &c);
    for (int i = 0; i < n * D; i++) g[i] *= 2;
    compare("rmsnorm dx accumulated", dx, g, n * D);
    /* forward: y = x * rsqrt(mean(x^2) + eps) * w, from the definition in double */
    double yd[3 * 24];
    for (int t = 0; t < n; t++) {
        double ss = 0;
        for (int i = 0; i < D; i++) ss += xd[t * D + i] * xd[t * D + i];
        const double rs = 1 / sqrt(ss / D + 1e-5);
        CHECK_NEAR(rstd[t], rs, 1e-5 * rs);
        for (int i = 0; i < D; i++) yd[t * D + i] = xd[t * D + i] * rs * wd[i];
    }
    compare_forward("rmsnorm forward", y, yd, n * D);
    free(xd), free(wd), free(rd);
}

/* ---- RoPE --------------------------------------------------------------------------------- */

typedef struct { int n, H, hd; const int *pos; const double *inv, *r; } rope_ctx;

static double rope_loss(const double *x, void *p) {
    rope_ctx *c = p;
    const int half = c->hd / 2;
    double L = 0;
    for (int t = 0; t < c->n; t++)
        for (int h = 0; h < c->H; h++)
            for (int i = 0; i < half; i++) {
                const double a = c->pos[t] * c->inv[i], co = cos(a), si = sin(a);
                const int64_t b = ((int64_t)t * c->H + h) * c->hd;
                const double x1 = x[b + i], x2 = x[b + i + half];
                L += c->r[b + i] * (x1 * co - x2 * si) + c->r[b + i + half] * (x2 * co + x1 * si);
            }
    return L;
}

PT_TEST(test_train_layer_rope) {
    pt_rng_seed(&rng, 2);
    const int n = 4, H = 3, hd = 8, half = 4, N = n * H * hd;
    int pos[4] = {0, 1, 5, 17};
    double inv[4];
    for (int i = 0; i < half; i++) inv[i] = pow(10000.0, -2.0 * i / hd);
    float x[4 * 3 * 8], r[4 * 3 * 8], cs[16], sn[16], dx[4 * 3 * 8];
    fill(x, N, -1, 1), fill(r, N, -1, 1);
    pt_rope_tables(cs, sn, pos, n, inv, half);
    memcpy(dx, r, sizeof dx);
    pt_rope_backward(dx, cs, sn, n, H, hd);
    double *xd = to_d(x, N), *rd = to_d(r, N), g[4 * 3 * 8];
    rope_ctx c = {n, H, hd, pos, inv, rd};
    fd_grad(g, xd, N, rope_loss, &c);
    compare("rope dx", dx, g, N);
    /* forward agrees with the double definition */
    float y[4 * 3 * 8];
    memcpy(y, x, sizeof y);
    pt_rope_forward(y, cs, sn, n, H, hd);
    double Lf = 0;
    for (int i = 0; i < N; i++) Lf += (double)r[i] * y[i];
    CHECK_NEAR(Lf, rope_loss(xd, &c), 1e-5);
    free(xd), free(rd);
}

/* ---- SwiGLU ------------------------------------------------------------------------------- */

typedef struct { int n; const double *g, *u, *r; int wrt; } swiglu_ctx;

static double swiglu_loss(const double *v, void *p) {
    swiglu_ctx *c = p;
    const double *g = c->wrt ? c->g : v, *u = c->wrt ? v : c->u;
    double L = 0;
    for (int i = 0; i < c->n; i++) L += c->r[i] * g[i] / (1 + exp(-g[i])) * u[i];
    return L;
}

PT_TEST(test_train_layer_swiglu) {
    pt_rng_seed(&rng, 3);
    const int n = 40;
    float g[40], u[40], r[40], dg[40], du[40];
    fill(g, n, -6, 6), fill(u, n, -2, 2), fill(r, n, -1, 1);
    pt_swiglu_backward(dg, du, r, g, u, n);
    double *gd = to_d(g, n), *ud = to_d(u, n), *rd = to_d(r, n), fd[40];
    swiglu_ctx c = {n, gd, ud, rd, 0};
    fd_grad(fd, gd, n, swiglu_loss, &c);
    compare("swiglu dgate", dg, fd, n);
    c.wrt = 1;
    fd_grad(fd, ud, n, swiglu_loss, &c);
    compare("swiglu dup", du, fd, n);
    /* in place: dgate may be the same buffer as dh */
    float d2[40];
    memcpy(d2, r, sizeof d2);
    pt_swiglu_backward(d2, du, d2, g, u, n);
    CHECK(memcmp(d2, dg, sizeof d2) == 0);
    /* forward: h = silu(gate) * up, from the definition in double */
    float h[40];
    double hd[40];
    pt_swiglu_forward(h, g, u, n);
    for (int i = 0; i < n; i++) hd[i] = gd[i] / (1 + exp(-gd[i])) * ud[i];
    compare_forward("swiglu forward", h, hd, n);
    free(gd), free(ud), free(rd);
}

/* ---- log-softmax / cross-entropy ---------------------------------------------------------- */

typedef struct { int m, V; const int32_t *tgt; const double *coef; } xent_ctx;

static double xent_loss(const double *x, void *p) {
    xent_ctx *c = p;
    double L = 0;
    for (int i = 0; i < c->m; i++) {
        const double *row = x + (int64_t)i * c->V;
        double mx = row[0], s = 0;
        for (int j = 1; j < c->V; j++) mx = fmax(mx, row[j]);
        for (int j = 0; j < c->V; j++) s += exp(row[j] - mx);
        L += c->coef[i] * (row[c->tgt[i]] - mx - log(s));
    }
    return L;
}

PT_TEST(test_train_layer_logsoftmax) {
    pt_rng_seed(&rng, 4);
    const int m = 3, V = 50;
    float x[150], rows[150];
    double coef[3] = {0.7, -1.3, 0.25};
    int32_t tgt[3] = {4, 49, 0};
    fill(x, m * V, -4, 4);
    memcpy(rows, x, sizeof rows);
    double logp[3];
    pt_logsoftmax_forward(logp, rows, tgt, m, V);
    pt_logsoftmax_backward(rows, tgt, coef, m, V);
    double *xd = to_d(x, m * V), *cd = coef, g[150];
    xent_ctx c = {m, V, tgt, cd};
    fd_grad(g, xd, m * V, xent_loss, &c);
    compare("log-softmax dlogits", rows, g, m * V);
    double L = 0;
    for (int i = 0; i < m; i++) L += cd[i] * logp[i];
    CHECK_NEAR(L, xent_loss(xd, &c), 1e-6);
    free(xd);
}

/* ---- attention ---------------------------------------------------------------------------- */

typedef struct { int n_seq, H, KV, hd; const int *start, *len; const double *q, *k, *v, *r; int wrt; } att_ctx;

static double att_loss(const double *x, void *p) {
    att_ctx *c = p;
    const double *q = c->wrt == 0 ? x : c->q, *k = c->wrt == 1 ? x : c->k, *v = c->wrt == 2 ? x : c->v;
    const int qd = c->H * c->hd, kd = c->KV * c->hd, grp = c->H / c->KV;
    double L = 0, sc[64];
    for (int s = 0; s < c->n_seq; s++)
        for (int h = 0; h < c->H; h++)
            for (int i = 0; i < c->len[s]; i++) {
                const int ti = c->start[s] + i, g = h / grp;
                double mx = -1e300, sum = 0;
                for (int j = 0; j <= i; j++) {
                    double d = 0;
                    for (int e = 0; e < c->hd; e++) d += q[ti * qd + h * c->hd + e] * k[(c->start[s] + j) * kd + g * c->hd + e];
                    sc[j] = d / sqrt((double)c->hd);
                    mx = fmax(mx, sc[j]);
                }
                for (int j = 0; j <= i; j++) sum += sc[j] = exp(sc[j] - mx);
                for (int e = 0; e < c->hd; e++) {
                    double o = 0;
                    for (int j = 0; j <= i; j++) o += sc[j] / sum * v[(c->start[s] + j) * kd + g * c->hd + e];
                    L += c->r[ti * qd + h * c->hd + e] * o;
                }
            }
    return L;
}

PT_TEST(test_train_layer_attention) {
    pt_rng_seed(&rng, 5);
    const int H = 4, KV = 2, hd = 8, n_seq = 2, start[2] = {0, 7}, len[2] = {7, 5}, N = 12, qd = H * hd, kd = KV * hd;
    float q[12 * 32], k[12 * 16], v[12 * 16], r[12 * 32], out[12 * 32], lse[12 * 4], dq[12 * 32], dk[12 * 16], dv[12 * 16];
    fill(q, N * qd, -1.5f, 1.5f), fill(k, N * kd, -1.5f, 1.5f), fill(v, N * kd, -1, 1), fill(r, N * qd, -1, 1);
    float *scratch = malloc(sizeof(float) * pt_attention_scratch_elems(7, H));
    pt_attention_train_forward(out, lse, q, k, v, start, len, n_seq, H, KV, hd, scratch);
    pt_attention_backward(dq, dk, dv, r, out, lse, q, k, v, start, len, n_seq, H, KV, hd, scratch);
    double *qd_ = to_d(q, N * qd), *kd_ = to_d(k, N * kd), *vd = to_d(v, N * kd), *rd = to_d(r, N * qd), g[12 * 32];
    att_ctx c = {n_seq, H, KV, hd, start, len, qd_, kd_, vd, rd, 0};
    double Lf = 0;
    for (int i = 0; i < N * qd; i++) Lf += (double)r[i] * out[i];
    CHECK_NEAR(Lf, att_loss(qd_, &c), 1e-5);
    fd_grad(g, qd_, N * qd, att_loss, &c);
    compare("attention dq", dq, g, N * qd);
    c.wrt = 1;
    fd_grad(g, kd_, N * kd, att_loss, &c);
    compare("attention dk", dk, g, N * kd);
    c.wrt = 2;
    fd_grad(g, vd, N * kd, att_loss, &c);
    compare("attention dv", dv, g, N * kd);
    /* the engine's cached attention computes the same outputs */
    float eng[12 * 32];
    int pos[12];
    for (int s = 0; s < n_seq; s++) {
        for (int i = 0; i < len[s]; i++) pos[start[s] + i] = i;
        pt_attention_forward(eng + start[s] * qd, q + start[s] * qd, k + start[s] * kd, v + start[s] * kd, pos + start[s], len[s], H, KV, hd);
    }
    fx_close("training attention vs engine attention", out, eng, N * qd, 1e-5);
    free(scratch), free(qd_), free(kd_), free(vd), free(rd);
}

/* ---- linear + LoRA ------------------------------------------------------------------------ */

typedef struct { int n, in, out, r; double scale; float p; uint64_t seed; const double *x, *W, *bias, *A, *B, *rr; int wrt; } lin_ctx;

static double lin_loss(const double *v, void *ctx) {
    lin_ctx *c = ctx;
    const double *x = c->wrt == 0 ? v : c->x, *A = c->wrt == 1 ? v : c->A, *B = c->wrt == 2 ? v : c->B;
    double L = 0, u[8];
    for (int t = 0; t < c->n; t++) {
        for (int j = 0; j < c->r; j++) {
            u[j] = 0;
            for (int i = 0; i < c->in; i++)
                u[j] += A[j * c->in + i] * x[t * c->in + i] * (c->p > 0 ? pt_lora_dropout_scale(c->seed, (int64_t)t * c->in + i, c->p) : 1.0);
        }
        for (int o = 0; o < c->out; o++) {
            double y = c->bias ? c->bias[o] : 0;
            for (int i = 0; i < c->in; i++) y += c->W[o * c->in + i] * x[t * c->in + i];
            for (int j = 0; j < c->r; j++) y += c->scale * B[o * c->r + j] * u[j];
            L += c->rr[t * c->out + o] * y;
        }
    }
    return L;
}

static void check_linear(pt_dtype wtype, float p, const char *label) {
    pt_rng_seed(&rng, 6 + wtype);
    enum { n = 5, in = 64, out = 96, r = 4 };
    float x[n * in], W[out * in], bias[out], A[r * in], B[out * r], rr[n * out];
    fill(x, n * in, -1, 1), fill(W, out * in, -0.2f, 0.2f), fill(bias, out, -0.5f, 0.5f);
    fill(A, r * in, -0.2f, 0.2f), fill(B, out * r, -0.2f, 0.2f), fill(rr, n * out, -1, 1);
    /* a quantised weight is compared with its own dequantised values */
    uint8_t *wq = malloc(pt_dtype_nbytes(wtype, out * in));
    if (wtype == PT_Q8_0) pt_quantize_q8_0(wq, W, out * in);
    else if (wtype == PT_Q4_0) pt_quantize_q4_0(wq, W, out * in);
    else memcpy(wq, W, sizeof W);
    pt_dtype_to_f32(W, wq, wtype, out * in);
    pt_weight Wt = {wtype, out, in, wq};
    float dA[r * in] = {0}, dB[out * r] = {0}, y[n * out], u[n * r], xd[n * in], du[n * r], dx[n * in];
    float *tile = malloc(sizeof(float) * PT_LINEAR_TILE * in);
    pt_lora_call call = {A, B, dA, dB, r, 2.0f, p, 12345};
    pt_linear_forward(y, u, xd, tile, x, &Wt, bias, &call, n, 0);
    pt_linear_backward(dx, du, xd, tile, rr, x, u, &Wt, &call, n, 0);
    double *xD = to_d(x, n * in), *WD = to_d(W, out * in), *bD = to_d(bias, out), *AD = to_d(A, r * in), *BD = to_d(B, out * r),
           *rD = to_d(rr, n * out), *g = malloc(sizeof(double) * out * in);
    lin_ctx c = {n, in, out, r, 2.0, p, 12345, xD, WD, bD, AD, BD, rD, 0};
    double Lf = 0;
    for (int i = 0; i < n * out; i++) Lf += (double)rr[i] * y[i];
    CHECK_MSG(fabs(Lf - lin_loss(xD, &c)) < 1e-4, "%s: forward %.9g vs %.9g", label, Lf, lin_loss(xD, &c));
    char what[128];
    fd_grad(g, xD, n * in, lin_loss, &c);
    snprintf(what, sizeof what, "%s dx", label);
    compare(what, dx, g, n * in);
    c.wrt = 1;
    fd_grad(g, AD, r * in, lin_loss, &c);
    snprintf(what, sizeof what, "%s dA", label);
    compare(what, dA, g, r * in);
    c.wrt = 2;
    fd_grad(g, BD, out * r, lin_loss, &c);
    snprintf(what, sizeof what, "%s dB", label);
    compare(what, dB, g, out * r);
    free(wq), free(tile), free(xD), free(WD), free(bD), free(AD), free(BD), free(rD), free(g);
}

PT_TEST(test_train_layer_linear_lora) {
    check_linear(PT_F32, 0, "linear+lora f32");
    check_linear(PT_F32, 0.3f, "linear+lora f32 dropout 0.3");
    check_linear(PT_Q8_0, 0, "linear+lora q8_0");
    check_linear(PT_Q4_0, 0.1f, "linear+lora q4_0 dropout 0.1");
}

/* The dropout mask keeps about 1 - p of the elements and scales them by 1 / (1 - p). */
PT_TEST(test_train_dropout_mask) {
    int kept = 0;
    for (int i = 0; i < 100000; i++) {
        float s = pt_lora_dropout_scale(7, i, 0.25f);
        CHECK(s == 0.0f || fabsf(s - 1.0f / 0.75f) < 1e-6f);
        kept += s > 0;
    }
    CHECK_NEAR(kept / 100000.0, 0.75, 0.01);
    CHECK(pt_lora_dropout_scale(7, 5, 0.25f) == pt_lora_dropout_scale(7, 5, 0.25f));
}

/* ---- DPO losses --------------------------------------------------------------------------- */

typedef struct { pt_dpo_loss_type t; double beta, ls, other[3]; int wrt; } dpo_ctx;

static double dpo_l(const double *x, void *p) {
    dpo_ctx *c = p;
    double pc = c->wrt == 0 ? x[0] : c->other[0], pr = c->wrt == 1 ? x[0] : c->other[1], d1, d2;
    return pt_dpo_loss(c->t, c->beta, c->ls, pc, pr, c->other[2], -40.0, &d1, &d2);
}

/* The losses by their definitions (TRL) and their derivatives by central differences. */
PT_TEST(test_train_dpo_losses) {
    const double pc = -30.0, pr = -41.5, rc = -31.0, rr = -40.0, beta = 0.1;
    double d1, d2, z = beta * ((pc - rc) - (pr - rr));
    CHECK_NEAR(pt_dpo_loss(PT_DPO_SIGMOID, beta, 0, pc, pr, rc, rr, &d1, &d2), -pt_logsigmoid(z), 1e-12);
    CHECK_NEAR(pt_dpo_loss(PT_DPO_SIGMOID, beta, 0.1, pc, pr, rc, rr, &d1, &d2), -0.9 * pt_logsigmoid(z) - 0.1 * pt_logsigmoid(-z), 1e-12);
    CHECK_NEAR(pt_dpo_loss(PT_DPO_HINGE, beta, 0, pc, pr, rc, rr, &d1, &d2), fmax(0, 1 - z), 1e-12);
    CHECK_NEAR(pt_dpo_loss(PT_DPO_IPO, beta, 0, pc, pr, rc, rr, &d1, &d2), pow(z / beta - 1 / (2 * beta), 2), 1e-9);
    CHECK_NEAR(pt_logsigmoid(-800), -800, 1e-9);
    CHECK_NEAR(pt_logsigmoid(800), 0, 1e-12);
    pt_dpo_loss_type types[] = {PT_DPO_SIGMOID, PT_DPO_SIGMOID, PT_DPO_IPO, PT_DPO_HINGE};
    double lss[] = {0, 0.2, 0, 0};
    for (int k = 0; k < 4; k++)
        for (int w = 0; w < 2; w++) {
            dpo_ctx c = {types[k], beta, lss[k], {pc, pr, rc}, w};
            double x = w ? pr : pc, g;
            fd_grad(&g, &x, 1, dpo_l, &c);
            pt_dpo_loss(types[k], beta, lss[k], pc, pr, rc, -40.0, &d1, &d2);
            CHECK_MSG(fabs((w ? d2 : d1) - g) < 1e-7, "%s ls %.1f d/d%s = %.9g, finite differences %.9g", pt_dpo_loss_name(types[k]), lss[k],
                      w ? "pr" : "pc", w ? d2 : d1, g);
        }
}

/* The vectorisable exp of the softmax kernels against exp in double. */
PT_TEST(test_train_fast_exp) {
    double worst = 0;
    for (int i = 0; i <= 200000; i++) {
        float x = -87.0f + 175.0f * i / 200000.0f;
        double e = exp((double)x), rel = fabs(pt_fast_expf(x) - e) / e;
        if (rel > worst) worst = rel;
    }
    CHECK_MSG(worst < 3e-7, "fast exp relative error %.3g", worst);
    CHECK(pt_fast_expf(0.0f) == 1.0f);
    CHECK(pt_fast_expf(-1000.0f) < 1e-37f && pt_fast_expf(-1000.0f) >= 0.0f);
}
