/* The training backward pass: from per-row coefficients of the log-probabilities back
 * through the head, the final norm and every decoder layer in reverse, sending activation
 * gradients through the frozen weights and accumulating LoRA gradients. Shapes as in
 * tmodel_impl.h; dx (N, D) carries the gradient of the residual stream. Compiled for
 * float32 and float64 (nn/real.h). */
#include <string.h>

#include "nn/nn.h"
#include "train/tmodel_impl.h"

static void layer_backward(tmodel *t, const pt_tbatch *b, int l, const layer_acts *a) {
    const pt_layer *L = &t->m->layers[l];
    const int N = b->n_tok, D = t->D, F = t->F;
    lora_call c[PT_N_LINEAR];
    for (int k = 0; k < PT_N_LINEAR; k++) c[k] = PT_RN(pt_tmodel_lora_call)(t, l, k, true, true, 0);
    pt_real *dx = t->dx, *dxn = t->dxn;

    /* MLP: x_out = x_mid + down(silu(gate(xn2)) * up(xn2)) */
    t->ops->linear_backward(t->df1, t->du, t->xd, t->wtile, dx, a->h, a->lu[PT_LT_DOWN], &L->w_down, &c[PT_LT_DOWN], N, 0);
    t->ops->swiglu_backward(t->df1, t->df2, t->df1, a->gate, a->up, (int64_t)N * F); /* df1: dgate, df2: dup */
    t->ops->linear_backward(dxn, t->du, t->xd, t->wtile, t->df1, a->xn2, a->lu[PT_LT_GATE], &L->w_gate, &c[PT_LT_GATE], N, 0);
    t->ops->linear_backward(dxn, t->du, t->xd, t->wtile, t->df2, a->xn2, a->lu[PT_LT_UP], &L->w_up, &c[PT_LT_UP], N, 1);
    t->ops->rmsnorm_backward(dx, NULL, dxn, a->x_mid, L->ffn_norm, a->rstd2, N, D); /* dx: d x_mid */

    /* attention: x_mid = x_in + o(attention(rope(q(xn1)), rope(k(xn1)), v(xn1))) */
    t->ops->linear_backward(t->datt, t->du, t->xd, t->wtile, dx, a->att, a->lu[PT_LT_O], &L->wo, &c[PT_LT_O], N, 0);
    t->ops->attention_backward(t->dq, t->dk, t->dv, t->datt, a->att, a->lse, a->q, a->k, a->v, b->seq_start, b->seq_len, b->n_seq,
                          t->H, t->KVH, t->hd, t->att_scratch);
    t->ops->rope_backward(t->dq, t->cos_t, t->sin_t, N, t->H, t->hd);
    t->ops->rope_backward(t->dk, t->cos_t, t->sin_t, N, t->KVH, t->hd);
    /* the first layer's input is the embedding, which needs no gradient */
    pt_real *dxin = l > 0 ? dxn : NULL;
    t->ops->linear_backward(dxin, t->du, t->xd, t->wtile, t->dq, a->xn1, a->lu[PT_LT_Q], &L->wq, &c[PT_LT_Q], N, 0);
    t->ops->linear_backward(dxin, t->du, t->xd, t->wtile, t->dk, a->xn1, a->lu[PT_LT_K], &L->wk, &c[PT_LT_K], N, 1);
    t->ops->linear_backward(dxin, t->du, t->xd, t->wtile, t->dv, a->xn1, a->lu[PT_LT_V], &L->wv, &c[PT_LT_V], N, 1);
    if (l > 0) t->ops->rmsnorm_backward(dx, NULL, dxn, t->xs[l], L->attn_norm, a->rstd1, N, D); /* dx: d x_in */
}

#ifdef PT_F64
/* Adds the float64 gradients of this pass into the float32 ones (or the caller's float64
 * accumulator) and clears them. */
static void flush_grads(tmodel *t) {
    for (int slot = 0; slot < t->n_slots; slot++) {
        if (!t->dA[slot]) continue;
        const pt_lora_pair *p = pt_tmodel_slot_pair(t, slot);
        const int64_t na = (int64_t)t->r * p->in, nb = (int64_t)t->r * p->out;
        if (t->shape.grad64) {
            double *ga = t->shape.grad64 + (t->ps->dA[slot] - t->ps->grad), *gb = t->shape.grad64 + (t->ps->dB[slot] - t->ps->grad);
            for (int64_t i = 0; i < na; i++) ga[i] += t->dA[slot][i], t->dA[slot][i] = 0;
            for (int64_t i = 0; i < nb; i++) gb[i] += t->dB[slot][i], t->dB[slot][i] = 0;
            continue;
        }
        for (int64_t i = 0; i < na; i++) t->ps->dA[slot][i] += (float)t->dA[slot][i], t->dA[slot][i] = 0;
        for (int64_t i = 0; i < nb; i++) t->ps->dB[slot][i] += (float)t->dB[slot][i], t->dB[slot][i] = 0;
    }
}
#endif

pt_status PT_RN(pt_tmodel_impl_backward)(void *handle, const pt_tbatch *b, const double *coef) {
    tmodel *t = handle;
    const int N = b->n_tok, D = t->D, M = b->n_loss, r1 = t->r ? t->r : 1;
    /* head: logits = W_out xg (+ LoRA); dxn collects the final norm's output gradient */
    memset(t->dxn, 0, sizeof(pt_real) * N * D);
    for (int c0 = 0; c0 < M; c0 += t->chunk) {
        const int n = M - c0 < t->chunk ? M - c0 : t->chunk;
        if (!t->logits_kept) PT_RN(pt_tmodel_head_chunk)(t, b, c0, n, true, true, t->chunk_logp);
        t->ops->logsoftmax_backward(t->logits, b->loss_tgt + c0, coef + c0, n, t->V);
        lora_call c = PT_RN(pt_tmodel_lora_call)(t, t->L, PT_LT_HEAD, true, true, (uint64_t)c0);
        t->ops->linear_backward(t->dxg, t->du, t->xd, t->wtile, t->logits, t->xg + (size_t)c0 * D, t->uh + (size_t)c0 * r1,
                           &t->m->output, &c, n, 0);
        for (int i = 0; i < n; i++) {
            pt_real *dst = t->dxn + (size_t)b->loss_row[c0 + i] * D;
            const pt_real *src = t->dxg + (size_t)i * D;
            for (int j = 0; j < D; j++) dst[j] += src[j];
        }
    }
    t->logits_kept = false; /* the probabilities became gradients */
    memset(t->dx, 0, sizeof(pt_real) * N * D);
    t->ops->rmsnorm_backward(t->dx, NULL, t->dxn, t->xs[t->L], t->m->out_norm, t->rstdf, N, D);
    for (int l = t->L - 1; l >= 0; l--) {
        layer_acts *a = &t->acts[t->shape.recompute ? 0 : l];
        if (t->shape.recompute) PT_RN(pt_tmodel_layer_forward)(t, b, l, a, t->xs[l], t->xs[l + 1], true, true);
        layer_backward(t, b, l, a);
    }
#ifdef PT_F64
    if (t->ps) flush_grads(t);
#endif
    return t->be->take_error ? t->be->take_error() : PT_OK;
}
