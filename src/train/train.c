/* The training loop (see train.h): set-up (data, adapter, optimiser state, buffers sized once
 * from the data), the per-step plan over the shuffled examples, the DPO / SFT micro-batch,
 * the optimiser step, metrics, checkpoints, and when evaluations (held-out pairs, compass)
 * run. */
#include "train/train.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dist/dist.h"
#include "format/safetensors.h"
#include "model/adapter.h"
#include "train/batch.h"
#include "train/checkpoint.h"
#include "train/data.h"
#include "train/heldout.h"
#include "train/params.h"
#include "train/refcache.h"
#include "train/tmodel.h"
#include "util/clock.h"
#include "util/file.h"
#include "util/rng.h"

typedef struct {
    const pt_train_config *cfg;
    const pt_model *m;
    const pt_train_hooks *hooks;
    pt_train_result *res;
    bool dpo;
    int per_ex;               /* sequences per example: 2 (chosen, rejected) or 1 */
    pt_dataset data;
    pt_adapter *a;
    pt_lora_params ps;
    pt_tmodel *tm;
    pt_tbatch b;
    pt_metrics_log log;
    bool log_open;
    int *perm;                /* (n) this epoch's example order */
    pt_rng rng;               /* the shuffle generator */
    pt_train_state st;
    double *ref_all;          /* (n, 2) precomputed reference log-probs, or NULL */
    double *logp_pol, *logp_ref; /* (max tokens) per loss row */
    double *coef;             /* (max tokens) */
    bool f64;                 /* float64 arithmetic */
    double *seq_pol, *seq_ref, *seq_coef; /* (max sequences) */
    long *mb_start, *mb_count; /* (grad_accum) the step's micro-batches */
    long total;
    char *ckpt;               /* the checkpoint resumed from, or NULL */
    pt_heldout ho;            /* eval_data's pairs */
    bool ho_on;
    pt_metrics_eval_log elog;
    bool elog_open;
    /* data parallelism (dist/dist.h): this rank takes a contiguous share of every step's
     * examples; the gradients and the per-example figures below are summed over ranks */
    int rank, size;
    bool root;                /* rank 0: the rank that writes files and reports */
    double *pe;               /* (batch_size * grad_accum, PE_N) + 1: each example's figures, the step's tokens last */
    double *grad64;           /* (ps.total) float64: the step's gradient before its one rounding to float32 */
} trainer;

/* the per-example figures of a step, in pe's rows: summed over ranks (each row comes from one
 * rank, zeros elsewhere, so the sum is exact), then over examples in order, as one process */
enum { PE_LOSS, PE_RC, PE_RR, PE_ACC, PE_MARGIN, PE_LC, PE_LR, PE_N };

static void note(trainer *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(trainer *t, const char *fmt, ...) {
    if (!t->hooks || !t->hooks->on_note || !t->root) return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    t->hooks->on_note(t->hooks->user, msg);
}

static uint64_t mix(uint64_t a, uint64_t b) {
    uint64_t z = a ^ (b * 0x9e3779b97f4a7c15ull + 0x632be59bd9b4e019ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void shuffle(trainer *t) {
    const int n = t->data.n;
    for (int i = 0; i < n; i++) t->perm[i] = i;
    if (!t->cfg->shuffle) return;
    for (int i = n - 1; i > 0; i--) {
        int j = (int)(pt_rng_next(&t->rng) % (uint64_t)(i + 1));
        int x = t->perm[i];
        t->perm[i] = t->perm[j];
        t->perm[j] = x;
    }
}

static pt_status template_of(const pt_train_config *c, const pt_model *m, pt_chat_template *out) {
    const char *name = c->template_name ? c->template_name : "alpaca";
    if (!strcmp(name, "none")) { *out = PT_CHAT_NONE; return PT_OK; }
    if (!strcmp(name, "chat")) {
        if (m->chat == PT_CHAT_NONE)
            return pt_error(PT_ERR_ARG, "template chat: the model has no recognised chat template (name one: llama3, mistral, chatml, alpaca, ...)");
        *out = m->chat;
        return PT_OK;
    }
    return pt_chat_template_from_name(name, out);
}

/* ---- set-up -------------------------------------------------------------------------------- */

/* How data files are read: the training data and the held-out pairs alike. */
static pt_status data_opts(const trainer *t, pt_data_opts *o) {
    const pt_train_config *c = t->cfg;
    *o = (pt_data_opts){.pairs = t->dpo, .tok = t->m->tok, .vocab = t->m->cfg.vocab_size, .max_seq_len = c->max_seq_len,
                        .skip_bad = c->skip_bad};
    PT_TRY(template_of(c, t->m, &o->tmpl));
    o->eos = t->m->tok ? pt_tokenizer_eos(t->m->tok) : -1;
    if (o->eos < 0) o->eos = t->m->cfg.eos_id;
    return PT_OK;
}

static void data_notes(trainer *t, const pt_dataset *d, const char *what) {
    if (d->n_skipped) note(t, "%s: %d malformed records skipped", what, d->n_skipped);
    if (d->n_truncated)
        note(t, "%s: %d records longer than max_seq_len %d were truncated (%ld tokens cut, prompts first)", what, d->n_truncated,
             t->cfg->max_seq_len, d->n_cut_tokens);
}

static pt_status load_data(trainer *t) {
    const pt_train_config *c = t->cfg;
    pt_data_opts o;
    PT_TRY(data_opts(t, &o));
    PT_TRY(pt_dataset_load(&t->data, c->data, &o));
    t->res->n_examples = t->data.n;
    t->res->n_skipped = t->data.n_skipped;
    t->res->n_truncated = t->data.n_truncated;
    t->res->n_cut_tokens = t->data.n_cut_tokens;
    note(t, "data: %d %s from %s", t->data.n, t->dpo ? "preference pairs" : "examples", c->data);
    data_notes(t, &t->data, "data");
    if (!c->eval_data) return PT_OK;
    if (!t->dpo) return pt_error(PT_ERR_ARG, "eval_data: held-out evaluation ranks preference pairs; it needs method dpo");
    pt_status st = pt_heldout_load(&t->ho, c->eval_data, &o, c->batch_size);
    if (st) return pt_error_wrap(st, "eval_data: ");
    t->ho_on = true;
    t->res->n_eval_pairs = t->ho.data.n;
    note(t, "eval data: %d held-out preference pairs from %s", t->ho.data.n, c->eval_data);
    data_notes(t, &t->ho.data, "eval data");
    return PT_OK;
}

static pt_status setup_adapter(trainer *t, const char *ckpt) {
    const pt_train_config *c = t->cfg;
    const char *from = ckpt ? ckpt : c->init_adapter;
    if (from) {
        PT_TRY(pt_adapter_load(&t->a, from, t->m));
        if (!ckpt) note(t, "adapter: starting from %s (rank %d, alpha %g)", from, t->a->r, t->a->alpha);
        if (c->dropout >= 0) t->a->dropout = (float)c->dropout;
    } else {
        PT_TRY(pt_adapter_new(&t->a, t->m, c->rank, (float)c->alpha, c->targets, c->rslora, c->dropout >= 0 ? (float)c->dropout : 0.05f,
                              mix(c->seed, 0x11)));
    }
    if (!t->a->base_model && c->model) t->a->base_model = strdup(c->model);
    PT_TRY(pt_lora_params_init(&t->ps, t->a));
    t->res->n_trainable = t->ps.total;
    if (ckpt) PT_TRY(pt_checkpoint_load_moments(ckpt, &t->ps));
    return PT_OK;
}

static int cmp_desc(const void *a, const void *b) {
    long x = *(const long *)a, y = *(const long *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* Buffers for the largest micro-batch the data can form. */
static pt_status setup_buffers(trainer *t) {
    const pt_train_config *c = t->cfg;
    /* a rank packs at most its share of a step, and never more than a micro-batch */
    const long global = (long)c->batch_size * c->grad_accum, share = (global + t->size - 1) / t->size;
    long piece = c->batch_size < share ? c->batch_size : share;
    if (piece > t->data.n) piece = t->data.n;
    const int n = t->data.n, bs = (int)piece;
    long *tok = malloc(sizeof(long) * n);
    if (!tok) return pt_error(PT_ERR_OOM, "out of memory");
    int longest = 0;
    for (int i = 0; i < n; i++) {
        const pt_example *e = &t->data.ex[i];
        tok[i] = 0;
        for (int k = 0; k < t->per_ex; k++) {
            tok[i] += e->np + e->nr[k];
            if (e->np + e->nr[k] > longest) longest = e->np + e->nr[k];
        }
    }
    qsort(tok, (size_t)n, sizeof *tok, cmp_desc);
    long max_tok = 0;
    for (int i = 0; i < bs; i++) max_tok += tok[i];
    free(tok);
    if (max_tok > (1L << 30)) return pt_error(PT_ERR_ARG, "a micro-batch of %ld tokens is too large; lower batch_size or max_seq_len", max_tok);
    const bool f64 = t->f64 = c->precision == PT_PRECISION_F64 ||
                              (c->precision == PT_PRECISION_AUTO && pt_model_n_params(t->m) < PT_PRECISION_AUTO_F64_PARAMS);
    /* In float64 a step's gradient is summed in float64 (over micro-batches and ranks) and
     * rounded once, so that N ranks give the digits of one process. */
    if (f64 && !(t->grad64 = calloc((size_t)t->ps.total, sizeof(double)))) return pt_error(PT_ERR_OOM, "out of memory");
    pt_tmodel_shape shape = {bs * t->per_ex, (int)max_tok, longest, c->recompute, 0, f64, t->grad64};
    if (t->ho_on) { /* the held-out passes share the model and batch: make room for them too */
        int hs, ht, hl;
        pt_heldout_shape(&t->ho, &hs, &ht, &hl);
        if (hs > shape.max_seq) shape.max_seq = hs;
        if (ht > shape.max_tok) shape.max_tok = ht, max_tok = ht;
        if (hl > shape.max_len) shape.max_len = hl;
    }
    PT_TRY(pt_tmodel_new(&t->tm, t->m, t->a, &t->ps, &shape));
    t->res->activation_bytes = pt_tmodel_bytes(t->tm);
    PT_TRY(pt_tbatch_init(&t->b, shape.max_seq, shape.max_tok));
    t->logp_pol = malloc(sizeof(double) * max_tok);
    t->logp_ref = malloc(sizeof(double) * max_tok);
    t->coef = malloc(sizeof(double) * max_tok);
    t->seq_pol = malloc(sizeof(double) * shape.max_seq);
    t->seq_ref = malloc(sizeof(double) * shape.max_seq);
    t->seq_coef = malloc(sizeof(double) * shape.max_seq);
    t->perm = malloc(sizeof(int) * n);
    t->mb_start = malloc(sizeof(long) * c->grad_accum);
    t->mb_count = malloc(sizeof(long) * c->grad_accum);
    t->pe = malloc(sizeof(double) * (size_t)(global * PE_N + 1));
    if (!t->logp_pol || !t->logp_ref || !t->coef || !t->seq_pol || !t->seq_ref || !t->seq_coef || !t->perm || !t->mb_start || !t->mb_count ||
        !t->pe)
        return pt_error(PT_ERR_OOM, "out of memory");
    note(t, "model: %lld trainable LoRA parameters (rank %d, alpha %g, dropout %g); %.1f MiB of %s activations for micro-batches of up to %ld tokens%s",
         (long long)t->ps.total, t->a->r, t->a->alpha, t->a->dropout, pt_tmodel_bytes(t->tm) / 1048576.0, f64 ? "float64" : "float32",
         max_tok, c->recompute ? " (recomputed per layer)" : "");
    return PT_OK;
}

/* Packs examples perm[start .. start + count - 1] into the batch. */
static void pack(trainer *t, long start, long count) {
    pt_tbatch_clear(&t->b);
    for (long k = 0; k < count; k++) {
        const pt_example *e = &t->data.ex[t->perm[start + k]];
        for (int j = 0; j < t->per_ex; j++) pt_tbatch_add(&t->b, e->prompt, e->np, e->resp[j], e->nr[j]);
    }
}

static void seq_sums(const pt_tbatch *b, const double *logp, double *sums) {
    for (int s = 0; s < b->n_seq; s++) sums[s] = 0;
    for (int i = 0; i < b->n_loss; i++) sums[b->loss_seq[i]] += logp[i];
}

static pt_status precompute_ref(trainer *t) {
    const pt_train_config *c = t->cfg;
    const int n = t->data.n;
    t->ref_all = malloc(sizeof(double) * 2 * n);
    if (!t->ref_all) return pt_error(PT_ERR_OOM, "out of memory");
    /* the precision changes the last digits, so it is part of what the cache is keyed by */
    const uint64_t key = mix(mix(pt_model_fingerprint(t->m), pt_dataset_hash(&t->data)), t->f64 ? 64 : 32);
    char *path = pt_refcache_path(c->ref_cache ? c->ref_cache : c->out, key);
    if (!path) return pt_error(PT_ERR_OOM, "out of memory");
    /* rank 0 reads the cache and tells the others; computed, the blocks go round the ranks
     * and a sum (one rank's values, zeros elsewhere) gathers them */
    bool found = false;
    pt_status st = t->root ? pt_refcache_load(path, key, 2L * n, t->ref_all, &found) : PT_OK;
    st = pt_dist_agree(st);
    uint8_t flag = found;
    if (!st) st = pt_dist_bcast(&flag, 1, 0);
    if (!st && flag) {
        st = pt_dist_bcast(t->ref_all, sizeof(double) * 2 * (size_t)n, 0);
        if (!st) note(t, "reference log-probs: read from %s", path);
    } else if (!st) {
        double t0 = pt_now_s();
        for (int i = 0; i < n; i++) t->perm[i] = i;
        memset(t->ref_all, 0, sizeof(double) * 2 * (size_t)n);
        const int bs = t->b.cap_seq / 2;
        for (long s = 0, block = 0; s < n && !st; s += bs, block++) {
            if (block % t->size != t->rank) continue;
            long cnt = n - s < bs ? n - s : bs;
            pack(t, s, cnt);
            st = pt_tmodel_forward(t->tm, &t->b, false, false, 0, t->logp_ref);
            seq_sums(&t->b, t->logp_ref, t->seq_ref);
            for (long k = 0; k < 2 * cnt; k++) t->ref_all[2 * s + k] = t->seq_ref[k];
        }
        st = pt_dist_agree(st);
        if (!st) st = pt_dist_allreduce_sum_f64(t->ref_all, 2L * n);
        if (!st && t->root) st = pt_refcache_save(path, key, 2L * n, t->ref_all);
        if (!st) note(t, "reference log-probs: %d pairs computed in %.1f s%s, cached in %s", n, pt_now_s() - t0,
                      t->size > 1 ? " over the ranks" : "", path);
    }
    free(path);
    return st;
}

/* ---- one optimiser step -------------------------------------------------------------------- */

typedef struct {
    double loss, rc, rr, acc, margin, lc, lr_; /* sums over pairs */
    long pairs, tokens;
} step_sums;

/* Examples perm[start .. start + count - 1], a piece of the micro-batch that begins at
 * mb_start (its dropout stream is `seed`): the passes and the backward, each example's
 * figures into pe rows from start - step_start. */
static pt_status micro_batch(trainer *t, long mb_start, long start, long count, long step_start, long step_examples,
                             long step_resp_tokens, uint64_t seed) {
    const pt_train_config *c = t->cfg;
    pt_tbatch *b = &t->b;
    pack(t, start, count);
    for (long k = mb_start; k < start; k++) {
        const pt_example *e = &t->data.ex[t->perm[k]];
        for (int j = 0; j < t->per_ex; j++) b->drop_row0 += e->np + e->nr[j], b->drop_loss0 += e->nr[j];
    }
    double *pe = t->pe + (start - step_start) * PE_N;
    if (t->dpo) {
        if (t->ref_all)
            for (long k = 0; k < count; k++) {
                int idx = t->perm[start + k];
                t->seq_ref[2 * k] = t->ref_all[2 * idx];
                t->seq_ref[2 * k + 1] = t->ref_all[2 * idx + 1];
            }
        else {
            PT_TRY(pt_tmodel_forward(t->tm, b, false, false, 0, t->logp_ref));
            seq_sums(b, t->logp_ref, t->seq_ref);
        }
    }
    PT_TRY(pt_tmodel_forward(t->tm, b, true, true, seed, t->logp_pol));
    seq_sums(b, t->logp_pol, t->seq_pol);
    t->pe[step_examples * PE_N] += b->n_tok;
    if (t->dpo) {
        const bool ipo = c->loss_type == PT_DPO_IPO;
        for (long k = 0; k < count; k++) {
            /* IPO compares length-averaged log-probabilities (TRL) */
            const double nc = ipo ? b->seq_nresp[2 * k] : 1, nr = ipo ? b->seq_nresp[2 * k + 1] : 1;
            const double pc = t->seq_pol[2 * k] / nc, pr = t->seq_pol[2 * k + 1] / nr;
            const double rc = t->seq_ref[2 * k] / nc, rr = t->seq_ref[2 * k + 1] / nr;
            double d_pc, d_pr;
            double l = pt_dpo_loss(c->loss_type, c->beta, c->label_smoothing, pc, pr, rc, rr, &d_pc, &d_pr);
            t->seq_coef[2 * k] = d_pc / nc / (double)step_examples;
            t->seq_coef[2 * k + 1] = d_pr / nr / (double)step_examples;
            const double wc = c->beta * (pc - rc), wr = c->beta * (pr - rr);
            double *row = pe + k * PE_N;
            row[PE_LOSS] = l, row[PE_RC] = wc, row[PE_RR] = wr, row[PE_ACC] = wc > wr, row[PE_MARGIN] = wc - wr, row[PE_LC] = pc, row[PE_LR] = pr;
        }
    } else {
        for (long k = 0; k < count; k++) {
            double d;
            pe[k * PE_N + PE_LOSS] = pt_sft_loss(t->seq_pol[k], step_resp_tokens, &d);
            t->seq_coef[k] = d;
        }
    }
    for (int i = 0; i < b->n_loss; i++) t->coef[i] = t->seq_coef[b->loss_seq[i]];
    return pt_tmodel_backward(t->tm, b, t->coef);
}

static bool all_finite(const float *v, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(v[i])) return false;
    return true;
}

/* The gradients as an oracle test compares them (tools/trl_dpo_oracle.py): one flat tensor
 * per PEFT key, in the adapter's row-major order. */
static pt_status dump_grads(const pt_lora_params *ps, const char *path) {
    pt_safetensors_entry *e = calloc((size_t)ps->n, sizeof *e);
    if (!e) return pt_error(PT_ERR_OOM, "out of memory");
    for (int i = 0; i < ps->n; i++)
        e[i] = (pt_safetensors_entry){.name = ps->key[i], .dtype = PT_F32, .n_dims = 1, .shape = {ps->numel[i]}, .data = ps->g[i]};
    pt_status st = pt_safetensors_write(path, e, ps->n, NULL);
    free(e);
    return st;
}

static pt_status optimiser_step(trainer *t, double t_start_run, double elapsed_before) {
    const pt_train_config *c = t->cfg;
    const int n = t->data.n;
    const double t0 = pt_now_s();
    if (t->st.cursor >= n) { /* next epoch */
        t->st.epoch++;
        t->st.cursor = 0;
        t->st.rng_epoch = t->rng;
        shuffle(t);
    }
    /* the step's micro-batches: up to grad_accum, never past the epoch's end */
    int n_mb = 0;
    long cur = t->st.cursor, resp_tokens = 0;
    while (n_mb < c->grad_accum && cur < n) {
        long cnt = n - cur < c->batch_size ? n - cur : c->batch_size;
        t->mb_start[n_mb] = cur, t->mb_count[n_mb] = cnt;
        for (long k = 0; k < cnt; k++) resp_tokens += t->data.ex[t->perm[cur + k]].nr[0];
        cur += cnt;
        n_mb++;
    }
    const long examples = cur - t->st.cursor;
    /* this rank's share: a contiguous run of the step's examples, cut where it crosses
     * micro-batches so that every piece keeps its micro-batch's dropout stream */
    const long lo = t->st.cursor + examples * t->rank / t->size, hi = t->st.cursor + examples * (t->rank + 1) / t->size;
    memset(t->pe, 0, sizeof(double) * (size_t)(examples * PE_N + 1));
    pt_status st = PT_OK;
    for (int i = 0; i < n_mb && !st; i++) {
        const long s = t->mb_start[i] > lo ? t->mb_start[i] : lo, e = t->mb_start[i] + t->mb_count[i] < hi ? t->mb_start[i] + t->mb_count[i] : hi;
        if (s < e)
            st = micro_batch(t, t->mb_start[i], s, e - s, t->st.cursor, examples, resp_tokens, mix(mix(c->seed, (uint64_t)t->st.step), (uint64_t)i));
    }
    PT_TRY(pt_dist_agree(st));
    PT_TRY(pt_dist_allreduce_sum_f64(t->pe, examples * PE_N + 1));
    if (t->grad64) {
        PT_TRY(pt_dist_allreduce_sum_f64(t->grad64, t->ps.total));
        for (int64_t i = 0; i < t->ps.total; i++) t->ps.grad[i] = (float)t->grad64[i], t->grad64[i] = 0;
    } else {
        PT_TRY(pt_dist_allreduce_sum_f32(t->ps.grad, t->ps.total));
    }
    step_sums ss = {.tokens = (long)t->pe[examples * PE_N], .pairs = t->dpo ? examples : 0};
    for (long k = 0; k < examples; k++) {
        const double *row = t->pe + k * PE_N;
        ss.loss += row[PE_LOSS];
        if (!t->dpo) continue;
        ss.rc += row[PE_RC], ss.rr += row[PE_RR], ss.acc += row[PE_ACC], ss.margin += row[PE_MARGIN], ss.lc += row[PE_LC], ss.lr_ += row[PE_LR];
    }

    const long step = t->st.step; /* 0-based index of this step */
    double loss = t->dpo ? ss.loss / (double)examples : ss.loss;
    double norm = pt_lora_params_grad_norm(&t->ps);
    if (!isfinite(loss) || !isfinite(norm))
        return pt_dist_shared(pt_error(PT_ERR_NUMERIC, "step %ld: the %s is %s; stopping without applying this step (the last checkpoint is intact)",
                        step + 1, isfinite(loss) ? "gradient norm" : "loss", isnan(isfinite(loss) ? norm : loss) ? "NaN" : "infinite"),
                              0);
    if (c->grad_dump && step == 0 && t->root) PT_TRY(dump_grads(&t->ps, c->grad_dump));
    if (c->max_grad_norm > 0) { /* torch.nn.utils.clip_grad_norm_ */
        double k = c->max_grad_norm / (norm + 1e-6);
        if (k < 1.0) {
            float kf = (float)k;
            for (int64_t i = 0; i < t->ps.total; i++) t->ps.grad[i] *= kf;
        }
    }
    const double lr = c->lr * pt_schedule_factor(c->schedule, step, c->warmup_steps, t->total);
    int64_t off = 0;
    for (int i = 0; i < t->ps.n; off += t->ps.numel[i], i++)
        pt_adamw_step(&c->adam, lr, step + 1, t->ps.p[i], t->ps.g[i], t->ps.m + off, t->ps.v + off, t->ps.numel[i]);
    for (int i = 0; i < t->ps.n; i++)
        if (!all_finite(t->ps.p[i], t->ps.numel[i]))
            return pt_dist_shared(pt_error(PT_ERR_NUMERIC,
                                           "step %ld: the LoRA parameters became non-finite (learning rate too high?); stopping (the last checkpoint is intact)",
                                           step + 1),
                                  0);
    pt_lora_params_zero_grad(&t->ps);
    t->st.step++;
    t->st.cursor = cur;
    t->st.tokens += ss.tokens;
    const double t1 = pt_now_s();
    t->st.elapsed_s = elapsed_before + (t1 - t_start_run);

    pt_train_metrics mt = {.step = t->st.step, .total_steps = t->total, .epoch = t->st.epoch + (double)t->st.cursor / n, .loss = loss, .lr = lr,
                           .grad_norm = norm, .tokens = ss.tokens, .tokens_per_s = ss.tokens / (t1 - t0 > 1e-9 ? t1 - t0 : 1e-9),
                           .elapsed_s = t->st.elapsed_s, .peak_mem_mib = pt_peak_rss_mib()};
    if (t->dpo && ss.pairs) {
        double p = (double)ss.pairs;
        mt.rewards_chosen = ss.rc / p, mt.rewards_rejected = ss.rr / p, mt.rewards_accuracies = ss.acc / p;
        mt.rewards_margins = ss.margin / p, mt.logps_chosen = ss.lc / p, mt.logps_rejected = ss.lr_ / p;
    }
    t->res->last = mt;
    if (!t->root) return PT_OK;
    PT_TRY(pt_metrics_write(&t->log, &mt));
    if (t->hooks && t->hooks->on_step) t->hooks->on_step(t->hooks->user, &mt);
    return PT_OK;
}

/* ---- the run ------------------------------------------------------------------------------- */

static void trainer_free(trainer *t) {
    if (t->log_open) pt_metrics_close(&t->log);
    if (t->elog_open) pt_metrics_eval_close(&t->elog);
    pt_heldout_free(&t->ho);
    pt_tmodel_free(t->tm);
    pt_tbatch_free(&t->b);
    pt_lora_params_free(&t->ps);
    pt_adapter_free(t->a);
    pt_dataset_free(&t->data);
    free(t->perm), free(t->ref_all), free(t->logp_pol), free(t->logp_ref), free(t->coef);
    free(t->seq_pol), free(t->seq_ref), free(t->seq_coef), free(t->mb_start), free(t->mb_count), free(t->pe), free(t->grad64);
    free(t->ckpt);
}

static pt_status save_checkpoint(trainer *t) {
    if (!t->root) return PT_OK;
    PT_TRY(pt_checkpoint_save(t->cfg->out, t->a, &t->ps, &t->st, t->cfg, t->cfg->keep_checkpoints, t->res->checkpoint,
                              sizeof t->res->checkpoint));
    return PT_OK;
}

/* ---- compass evaluations (eval_every) -------------------------------------------------------
 * After each step's checkpoint, the caller's evaluate hook (the CLI sets eval/train_eval.h's):
 * training does not reach up into eval/. The adapter is the live one, read, never modified. */

static pt_status maybe_evaluate(trainer *t) {
    if (!t->hooks || !t->hooks->evaluate) return PT_OK;
    char msg[1024];
    PT_TRY(t->hooks->evaluate(t->hooks->eval_user, t->m, t->a, t->st.step, msg, sizeof msg));
    if (msg[0]) note(t, "%s", msg);
    return PT_OK;
}

/* ---- held-out evaluations (eval_data) ------------------------------------------------------
 * At step 0 (the reference then equals the policy: rewards 0, the baseline), every eval_every
 * steps and at the end; before that step's checkpoint, so that a run resumed from a
 * checkpoint finds the row already there and does not repeat it. A step due when the run
 * starts (a resumed run whose checkpoint's evaluation is missing) is evaluated first. */

static pt_status heldout_evaluate(trainer *t) {
    const pt_train_config *c = t->cfg;
    const long step = t->st.step;
    if (!t->root) return PT_OK; /* the others go on to the next step's sums and wait there */
    if (!t->ho_on || !(step == 0 || step == t->total || (c->eval_every > 0 && step % c->eval_every == 0))) return PT_OK;
    if (pt_metrics_eval_has(&t->elog, step)) {
        note(t, "eval: step %ld already in %s/eval_metrics.jsonl", step, c->out);
        return PT_OK;
    }
    pt_eval_metrics em;
    pt_status st = pt_heldout_evaluate(&t->ho, t->tm, &t->b, c->loss_type, c->beta, c->label_smoothing, &em);
    if (st) return pt_error_wrap(st, "held-out evaluation at step %ld: ", step);
    em.step = step;
    PT_TRY(pt_metrics_eval_write(&t->elog, &em));
    if (!t->res->n_evals++) t->res->eval_first = em;
    t->res->eval_last = em;
    note(t, "eval: step %ld, %d pairs: accuracy %.2f, margin %.2f", step, em.pairs, em.rewards_accuracies, em.rewards_margins);
    return PT_OK;
}

/* The ranks of a data-parallel job must train on the same model and data, and the global
 * batch must divide among them. Every rank reaches the same verdict: one line, from rank 0. */
static pt_status check_ranks(trainer *t) {
    const pt_train_config *c = t->cfg;
    if (t->size == 1) return PT_OK;
    const long global = (long)c->batch_size * c->grad_accum;
    if (global % t->size) {
        const long bs = (c->batch_size + t->size - 1) / t->size * t->size;
        return pt_dist_shared(pt_error(PT_ERR_ARG,
                                       "the global batch (batch_size %d x grad_accum %d = %ld examples) does not divide among %d ranks: "
                                       "make it a multiple of %d (e.g. --batch-size %ld) or run a number of ranks that divides %ld",
                                       c->batch_size, c->grad_accum, global, t->size, t->size, bs, global),
                              0);
    }
    uint64_t *all = malloc(sizeof(uint64_t) * 2 * (size_t)t->size);
    if (!all) return pt_error(PT_ERR_OOM, "out of memory");
    const char *what[2] = {"model", "data"};
    const char *file[2] = {c->model ? c->model : "(the model)", c->data};
    pt_status st = pt_dist_allgather_u64(pt_model_fingerprint(t->m), all);
    if (!st) st = pt_dist_allgather_u64(pt_dataset_hash(&t->data), all + t->size);
    /* the disagreeing rank says it, naming its own file */
    for (int k = 0; k < 2 && !st; k++)
        for (int r = 1; r < t->size && !st; r++)
            if (all[k * t->size + r] != all[k * t->size])
                st = pt_dist_shared(pt_error(PT_ERR_ARG, "%s file %s differs from rank 0's (hash %016llx, rank 0 %016llx): every rank must read the same %s",
                                             what[k], file[k], (unsigned long long)all[k * t->size + r], (unsigned long long)all[k * t->size], what[k]),
                                    r);
    free(all);
    if (!st) note(t, "data parallel: %d ranks, %ld examples per step (up to %ld per rank)", t->size, global, global / t->size);
    return st;
}

static pt_status run(trainer *t) {
    const pt_train_config *c = t->cfg;
    if (!c->data) return pt_error(PT_ERR_ARG, "no training data (data)");
    if (!c->out) return pt_error(PT_ERR_ARG, "no output directory (out)");
    /* a rank that cannot read its files says so; the others stop with it */
    PT_TRY(pt_dist_agree(load_data(t)));
    PT_TRY(check_ranks(t));
    if (t->root) PT_TRY(pt_mkdir_p(c->out));
    const uint64_t data_hash = pt_dataset_hash(&t->data);
    pt_status st = PT_OK;
    if (c->resume) { /* every rank reads the checkpoint: a file system they share */
        st = pt_checkpoint_find(c->resume, &t->ckpt);
        if (!st) st = pt_checkpoint_load_state(t->ckpt, c, &t->st);
        if (!st && t->st.data_hash != data_hash)
            st = pt_error(PT_ERR_ARG, "cannot resume from %s: the training data differ from the data it was made with", t->ckpt);
        if (!st && t->st.cursor > t->data.n) st = pt_error(PT_ERR_FORMAT, "%s: data position beyond the data", t->ckpt);
        if (!st) st = setup_adapter(t, t->ckpt);
    } else {
        st = setup_adapter(t, NULL);
    }
    if (!st) st = setup_buffers(t);
    PT_TRY(pt_dist_agree(st));
    if (t->dpo && c->precompute_ref) PT_TRY(precompute_ref(t)); /* before the shuffle: it borrows perm */
    const int n = t->data.n;
    const long mb_per_epoch = (n + c->batch_size - 1) / c->batch_size;
    const long steps_per_epoch = (mb_per_epoch + c->grad_accum - 1) / c->grad_accum;
    t->total = c->max_steps > 0 ? c->max_steps : (long)c->epochs * steps_per_epoch;
    t->res->total_steps = t->total;
    if (t->ckpt) {
        t->rng = t->st.rng_epoch;
        shuffle(t);
        note(t, "resuming from %s: step %ld of %ld (epoch %d, example %ld of %d)", t->ckpt, t->st.step, t->total, t->st.epoch + 1,
             t->st.cursor, n);
    } else {
        t->st = (pt_train_state){0};
        pt_rng_seed(&t->rng, mix(c->seed, 0x5f));
        t->st.rng_epoch = t->rng;
        shuffle(t);
    }
    t->st.data_hash = data_hash;
    t->res->start_step = t->res->end_step = t->st.step;
    if (t->root) {
        PT_TRY(pt_metrics_open(&t->log, c->out, t->dpo, c->resume ? t->st.step : -1));
        t->log_open = true;
    }
    if (t->ho_on && t->root) {
        PT_TRY(pt_metrics_eval_open(&t->elog, c->out, c->resume != NULL));
        t->elog_open = true;
        PT_TRY(heldout_evaluate(t));
    }

    const double t_start = pt_now_s(), elapsed_before = t->st.elapsed_s;
    long saved = -1;
    while (t->st.step < t->total) {
        PT_TRY(optimiser_step(t, t_start, elapsed_before));
        t->res->end_step = t->st.step;
        PT_TRY(heldout_evaluate(t));
        if (c->save_every > 0 && t->st.step % c->save_every == 0) {
            PT_TRY(save_checkpoint(t));
            saved = t->st.step;
        }
        PT_TRY(maybe_evaluate(t));
    }
    if (saved != t->st.step) PT_TRY(save_checkpoint(t));
    if (t->size > 1) /* the communication share (bench/mpi.sh reads it); waits for slower ranks included */
        note(t, "data parallel: %.3f s of %.3f s in collectives on rank 0 (%.1f%%)", pt_dist_comm_seconds(), pt_now_s() - t_start,
             100.0 * pt_dist_comm_seconds() / (pt_now_s() - t_start > 1e-9 ? pt_now_s() - t_start : 1e-9));
    /* the others finish when rank 0 has written the adapter, and learn if it could not */
    return pt_dist_agree(t->root ? pt_adapter_save(t->a, c->out) : PT_OK);
}

pt_status pt_train_run(const pt_train_config *cfg, const pt_model *m, const pt_train_hooks *hooks, pt_train_result *res) {
    pt_train_result dummy;
    if (!res) res = &dummy;
    memset(res, 0, sizeof *res);
    trainer t = {.cfg = cfg, .m = m, .hooks = hooks, .res = res, .dpo = cfg->method == PT_TRAIN_DPO, .rank = pt_dist_rank(),
                 .size = pt_dist_size()};
    t.root = t.rank == 0;
    t.per_ex = t.dpo ? 2 : 1;
    pt_status st = run(&t);
    trainer_free(&t);
    return st;
}
