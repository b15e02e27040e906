/* Training parity against the reference fixtures: per-pair policy and reference
 * log-probabilities, rewards and the DPO loss, and the LoRA gradients of the DPO and SFT
 * losses (PyTorch autograd in float64), for every reference model, with and without
 * activation recomputation. */
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "internal.h"
#include "test.h"
#include "train/loss.h"
#include "train/optim.h"
#include "train/params.h"
#include "train/tmodel.h"

/* float32: the tolerances of fixtures/README.md. float64 computes what the reference computed,
 * so only the fixture's own rounding to float32 (tensors) remains. */
#define GRAD_TOL (f64 ? 1e-7 : 1e-4)  /* x max |expected| of each tensor */
#define LOGP_TOL (f64 ? 1e-10 : 1e-5) /* relative */

static const char *ref_dir(const char *model) {
    static char buf[4][512];
    static int k;
    char rel[256];
    snprintf(rel, sizeof rel, "fixtures/reference/%s", model);
    char *b = buf[k++ % 4];
    snprintf(b, 512, "%s", pt_test_shared(rel));
    return b;
}

typedef struct {
    pt_model *m;
    pt_adapter *a;
    pt_lora_params ps;
    pt_safetensors exp;
    json_t *cases;
} fixture;

static int fixture_open(fixture *f, const char *model) {
    memset(f, 0, sizeof *f);
    char p[700];
    f->cases = fx_cases(model);
    if (!f->cases) return 0;
    if (pt_model_load(&f->m, ref_dir(model)) != PT_OK) goto fail;
    snprintf(p, sizeof p, "%s/adapter", ref_dir(model));
    if (pt_adapter_load(&f->a, p, f->m) != PT_OK) goto fail;
    if (pt_lora_params_init(&f->ps, f->a) != PT_OK) goto fail;
    snprintf(p, sizeof p, "%s/expected.safetensors", ref_dir(model));
    if (pt_safetensors_open(&f->exp, p) != PT_OK) goto fail;
    return 1;
fail:
    pt_test_fail(__FILE__, __LINE__, "%s: %s", model, pt_errmsg());
    return 0;
}

static void fixture_close(fixture *f) {
    json_decref(f->cases);
    pt_safetensors_close(&f->exp);
    pt_lora_params_free(&f->ps);
    pt_adapter_free(f->a);
    pt_model_free(f->m);
}

/* Every gradient tensor against `prefix`<peft key>. */
static void check_grads(fixture *f, const char *model, const char *prefix, bool f64) {
    for (int i = 0; i < f->ps.n; i++) {
        char name[256], what[320];
        snprintf(name, sizeof name, "%s%s", prefix, f->ps.key[i]);
        const pt_tensor_view *t = pt_safetensors_find(&f->exp, name);
        CHECK_MSG(t && pt_tensor_numel(t) == f->ps.numel[i], "%s: expected tensor %s missing or mis-shaped", model, name);
        if (!t) continue;
        snprintf(what, sizeof what, "%s %s", model, name);
        fx_close(what, f->ps.g[i], (const float *)t->data, f->ps.numel[i], GRAD_TOL);
    }
}

static double seq_sum(const pt_tbatch *b, const double *logp, int s) {
    double sum = 0;
    for (int i = 0; i < b->n_loss; i++)
        if (b->loss_seq[i] == s) sum += logp[i];
    return sum;
}

static void check_dpo(const char *model, bool recompute, size_t logits_bytes, bool f64) {
    fixture f;
    if (!fixture_open(&f, model)) return;
    json_t *dpo = json_object_get(f.cases, "dpo"), *pairs = json_object_get(dpo, "pairs");
    const double beta = json_real_value(json_object_get(dpo, "beta"));
    const int P = (int)json_array_size(pairs);
    int32_t *ids[8][3];
    int n[8][3], tok = 0, longest = 0;
    static const char *parts[3] = {"prompt", "chosen", "rejected"};
    for (int i = 0; i < P; i++)
        for (int k = 0; k < 3; k++) ids[i][k] = fx_ids(json_object_get(json_array_get(pairs, i), parts[k]), &n[i][k]);
    for (int i = 0; i < P; i++)
        for (int k = 1; k < 3; k++) {
            tok += n[i][0] + n[i][k];
            if (n[i][0] + n[i][k] > longest) longest = n[i][0] + n[i][k];
        }
    pt_tbatch b;
    pt_tmodel *t = NULL;
    REQUIRE_OK(pt_tbatch_init(&b, 2 * P, tok));
    for (int i = 0; i < P; i++)
        for (int k = 1; k < 3; k++) pt_tbatch_add(&b, ids[i][0], n[i][0], ids[i][k], n[i][k]);
    pt_tmodel_shape shape = {2 * P, tok, longest, recompute, logits_bytes, f64, NULL};
    REQUIRE_OK(pt_tmodel_new(&t, f.m, f.a, &f.ps, &shape));
    double *ref = calloc(b.n_loss, sizeof(double)), *pol = calloc(b.n_loss, sizeof(double));
    double *coef = calloc(b.n_loss, sizeof(double));
    CHECK_OK(pt_tmodel_forward(t, &b, false, false, 0, ref));
    CHECK_OK(pt_tmodel_forward(t, &b, true, true, 1, pol));
    double loss = 0;
    for (int i = 0; i < P; i++) {
        json_t *c = json_array_get(pairs, i);
        double pc = seq_sum(&b, pol, 2 * i), pr = seq_sum(&b, pol, 2 * i + 1);
        double rc = seq_sum(&b, ref, 2 * i), rr = seq_sum(&b, ref, 2 * i + 1);
        double e_pc = json_real_value(json_object_get(c, "policy_chosen_logp"));
        double e_pr = json_real_value(json_object_get(c, "policy_rejected_logp"));
        double e_rc = json_real_value(json_object_get(c, "ref_chosen_logp"));
        double e_rr = json_real_value(json_object_get(c, "ref_rejected_logp"));
        CHECK_NEAR(pc, e_pc, LOGP_TOL * fabs(e_pc));
        CHECK_NEAR(pr, e_pr, LOGP_TOL * fabs(e_pr));
        CHECK_NEAR(rc, e_rc, LOGP_TOL * fabs(e_rc));
        CHECK_NEAR(rr, e_rr, LOGP_TOL * fabs(e_rr));
        /* a reward is a difference of two log-probabilities: its tolerance is theirs */
        CHECK_NEAR(beta * (pc - rc), json_real_value(json_object_get(c, "reward_chosen")), beta * LOGP_TOL * (fabs(e_pc) + fabs(e_rc)));
        CHECK_NEAR(beta * (pr - rr), json_real_value(json_object_get(c, "reward_rejected")), beta * LOGP_TOL * (fabs(e_pr) + fabs(e_rr)));
        double d_pc, d_pr;
        loss += pt_dpo_loss(PT_DPO_SIGMOID, beta, 0, pc, pr, rc, rr, &d_pc, &d_pr) / P;
        for (int j = 0; j < b.n_loss; j++) {
            if (b.loss_seq[j] == 2 * i) coef[j] = d_pc / P;
            if (b.loss_seq[j] == 2 * i + 1) coef[j] = d_pr / P;
        }
    }
    double e_loss = json_real_value(json_object_get(dpo, "loss"));
    CHECK_NEAR(loss, e_loss, LOGP_TOL * fabs(e_loss));
    pt_lora_params_zero_grad(&f.ps);
    pt_tmodel_backward(t, &b, coef);
    check_grads(&f, model, "dpo.grad.", f64);
    free(ref), free(pol), free(coef);
    for (int i = 0; i < P; i++)
        for (int k = 0; k < 3; k++) free(ids[i][k]);
    pt_tmodel_free(t);
    pt_tbatch_free(&b);
    fixture_close(&f);
}

static void check_sft(const char *model, bool recompute, bool f64) {
    fixture f;
    if (!fixture_open(&f, model)) return;
    json_t *sft = json_object_get(f.cases, "sft"), *ex = json_object_get(sft, "examples");
    const int E = (int)json_array_size(ex);
    int32_t *p[8], *r[8];
    int np[8], nr[8], tok = 0, longest = 0;
    long ntok = 0;
    for (int i = 0; i < E; i++) {
        p[i] = fx_ids(json_object_get(json_array_get(ex, i), "prompt"), &np[i]);
        r[i] = fx_ids(json_object_get(json_array_get(ex, i), "response"), &nr[i]);
        tok += np[i] + nr[i];
        ntok += nr[i];
        if (np[i] + nr[i] > longest) longest = np[i] + nr[i];
    }
    pt_tbatch b;
    pt_tmodel *t = NULL;
    REQUIRE_OK(pt_tbatch_init(&b, E, tok));
    for (int i = 0; i < E; i++) pt_tbatch_add(&b, p[i], np[i], r[i], nr[i]);
    pt_tmodel_shape shape = {E, tok, longest, recompute, 0, f64, NULL};
    REQUIRE_OK(pt_tmodel_new(&t, f.m, f.a, &f.ps, &shape));
    double *logp = calloc(b.n_loss, sizeof(double)), loss = 0, d;
    double *coef = calloc(b.n_loss, sizeof(double));
    CHECK_OK(pt_tmodel_forward(t, &b, true, true, 1, logp));
    for (int i = 0; i < b.n_loss; i++) {
        loss += pt_sft_loss(logp[i], ntok, &d);
        coef[i] = d;
    }
    double e_loss = json_real_value(json_object_get(sft, "loss"));
    CHECK_NEAR(loss, e_loss, LOGP_TOL * fabs(e_loss));
    pt_lora_params_zero_grad(&f.ps);
    pt_tmodel_backward(t, &b, coef);
    check_grads(&f, model, "sft.grad.", f64);
    free(logp), free(coef);
    for (int i = 0; i < E; i++) free(p[i]), free(r[i]);
    pt_tmodel_free(t);
    pt_tbatch_free(&b);
    fixture_close(&f);
}

PT_TEST(test_train_dpo_grads_llama3) { check_dpo("llama3", false, 0, false); }
PT_TEST(test_train_dpo_grads_llama3_bf16) { check_dpo("llama3-bf16", false, 0, false); }
PT_TEST(test_train_dpo_grads_mistral) { check_dpo("mistral", false, 0, false); }
PT_TEST(test_train_dpo_grads_qwen2) { check_dpo("qwen2", false, 0, false); }
/* recomputed activations and logits recomputed in chunks of 5 rows give the same result */
PT_TEST(test_train_dpo_grads_recompute_chunked) {
    check_dpo("llama3", true, 5 * 1024 * sizeof(float), false);
    check_dpo("qwen2", true, 3 * 1024 * sizeof(float), false);
}
PT_TEST(test_train_sft_grads_llama3) { check_sft("llama3", false, false); }
PT_TEST(test_train_sft_grads_llama3_bf16) { check_sft("llama3-bf16", false, false); }
PT_TEST(test_train_sft_grads_mistral) { check_sft("mistral", true, false); }
PT_TEST(test_train_sft_grads_qwen2) { check_sft("qwen2", false, false); }
/* float64: every model, DPO and SFT, also recomputed and chunked, to the fixture's own digits */
PT_TEST(test_train_grads_f64) {
    static const char *models[] = {"llama3", "llama3-bf16", "mistral", "qwen2"};
    for (int i = 0; i < 4; i++) {
        check_dpo(models[i], false, 0, true);
        check_sft(models[i], false, true);
    }
    check_dpo("llama3", true, 5 * 1024 * sizeof(double), true);
    check_sft("mistral", true, true);
}

/* AdamW's arithmetic alone: the fixture's initial adapter stepped with the fixture's own
 * gradient gives torch.optim.AdamW's first step within 1e-6 on every element. */
static void check_adamw(const char *model) {
    fixture f;
    if (!fixture_open(&f, model)) return;
    json_t *hp = json_object_get(json_object_get(f.cases, "dpo"), "adamw");
    pt_adamw o = {json_real_value(json_array_get(json_object_get(hp, "betas"), 0)),
                  json_real_value(json_array_get(json_object_get(hp, "betas"), 1)), json_real_value(json_object_get(hp, "eps")),
                  json_real_value(json_object_get(hp, "weight_decay"))};
    const double lr = json_real_value(json_object_get(hp, "lr"));
    int64_t off = 0;
    for (int i = 0; i < f.ps.n; off += f.ps.numel[i], i++) {
        char name[256];
        snprintf(name, sizeof name, "dpo.grad.%s", f.ps.key[i]);
        const pt_tensor_view *g = pt_safetensors_find(&f.exp, name);
        snprintf(name, sizeof name, "dpo.after_step1.%s", f.ps.key[i]);
        const pt_tensor_view *want = pt_safetensors_find(&f.exp, name);
        REQUIRE(g && want);
        pt_adamw_step(&o, lr, 1, f.ps.p[i], (const float *)g->data, f.ps.m + off, f.ps.v + off, f.ps.numel[i]);
        double worst = 0;
        for (int64_t j = 0; j < f.ps.numel[i]; j++) worst = fmax(worst, fabs((double)f.ps.p[i][j] - ((const float *)want->data)[j]));
        CHECK_MSG(worst <= 1e-6, "%s %s: AdamW step differs by %.3g", model, f.ps.key[i], worst);
    }
    fixture_close(&f);
}

PT_TEST(test_train_adamw_matches_torch) {
    check_adamw("llama3");
    check_adamw("qwen2");
}

/* Schedules as transformers defines them: warm-up from 0, cosine to 0 at the last step. */
PT_TEST(test_train_schedules) {
    CHECK_NEAR(pt_schedule_factor(PT_SCHED_COSINE, 0, 10, 110), 0.0, 1e-12);
    CHECK_NEAR(pt_schedule_factor(PT_SCHED_COSINE, 5, 10, 110), 0.5, 1e-12);
    CHECK_NEAR(pt_schedule_factor(PT_SCHED_COSINE, 10, 10, 110), 1.0, 1e-12);
    CHECK_NEAR(pt_schedule_factor(PT_SCHED_COSINE, 60, 10, 110), 0.5, 1e-12);
    CHECK_NEAR(pt_schedule_factor(PT_SCHED_COSINE, 110, 10, 110), 0.0, 1e-12);
    CHECK_NEAR(pt_schedule_factor(PT_SCHED_CONSTANT, 3, 10, 110), 0.3, 1e-12);
    CHECK_NEAR(pt_schedule_factor(PT_SCHED_CONSTANT, 30, 10, 110), 1.0, 1e-12);
    CHECK_NEAR(pt_schedule_factor(PT_SCHED_CONSTANT, 0, 0, 2), 1.0, 1e-12);
    CHECK_NEAR(pt_schedule_factor(PT_SCHED_LINEAR, 35, 10, 110), 0.75, 1e-12);
}
