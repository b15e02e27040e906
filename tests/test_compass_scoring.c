/* Option scorings in compass logprob mode (issue #14 item 5). Scoring the whole label text
 * favours the label with the fewest tokens when the model has no preference: a random-weight
 * model answered "Agree" to all 62 items under all 12 variants. These tests build such a model
 * (random weights, the real 32k SentencePiece-style tokenizer) and check that the default
 * scoring (the numbered options, one token each) does not answer one label throughout, and
 * that each scoring's numbers equal the same log-probabilities computed from scratch with
 * pt_score (an independent path: a fresh prefill of prompt + option, no prefix sharing). */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "eval/compass.h"
#include "eval/compass_impl.h"
#include "format/safetensors.h"
#include "internal.h"
#include "test.h"
#include "util/rng.h"

#define STORIES "assets/models/stories260K/stories260K.gguf"

/* A random-weight Llama (D 32, 1 layer, 2 heads / 1 KV head, FFN 64, vocab 32000) with the
 * spm32k tokenizer, as a Hugging Face directory in the test's temporary folder. Weights
 * ~N(0,1)/sqrt(in) (uniform of that variance), norms 1. Returns the directory or NULL. */
static const char *random_model_dir(void) {
    static char dir[700];
    snprintf(dir, sizeof dir, "%s/random-llama", pt_test_tmpdir());
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) return NULL;
    const int D = 32, F = 64, V = 32000, H = 2, KV = 1, HD = D / H;
    char cfg[1024];
    snprintf(cfg, sizeof cfg,
             "{\"architectures\": [\"LlamaForCausalLM\"], \"model_type\": \"llama\", \"hidden_size\": %d, "
             "\"num_hidden_layers\": 1, \"num_attention_heads\": %d, \"num_key_value_heads\": %d, \"intermediate_size\": %d, "
             "\"vocab_size\": %d, \"max_position_embeddings\": 2048, \"rms_norm_eps\": 1e-05, \"rope_theta\": 10000.0, "
             "\"tie_word_embeddings\": false, \"bos_token_id\": 1, \"eos_token_id\": 2, \"torch_dtype\": \"float32\"}\n",
             D, H, KV, F, V);
    pt_test_write(dir, "config.json", cfg);
    char tok[800];
    snprintf(tok, sizeof tok, "%s/tokenizer.json", dir);
    unlink(tok);
    if (symlink(pt_test_shared("assets/tokenizers/spm32k/tokenizer.json"), tok) != 0) return NULL;
    struct { const char *name; int rows, cols; } t[] = {
        {"model.embed_tokens.weight", V, D}, {"model.norm.weight", D, 0}, {"lm_head.weight", V, D},
        {"model.layers.0.input_layernorm.weight", D, 0}, {"model.layers.0.post_attention_layernorm.weight", D, 0},
        {"model.layers.0.self_attn.q_proj.weight", D, D}, {"model.layers.0.self_attn.k_proj.weight", KV * HD, D},
        {"model.layers.0.self_attn.v_proj.weight", KV * HD, D}, {"model.layers.0.self_attn.o_proj.weight", D, D},
        {"model.layers.0.mlp.gate_proj.weight", F, D}, {"model.layers.0.mlp.up_proj.weight", F, D},
        {"model.layers.0.mlp.down_proj.weight", D, F},
    };
    const int n = (int)(sizeof t / sizeof t[0]);
    pt_safetensors_entry e[12];
    pt_rng rng;
    pt_rng_seed(&rng, 1234);
    int ok = 1;
    for (int i = 0; i < n; i++) {
        size_t numel = (size_t)t[i].rows * (t[i].cols ? t[i].cols : 1);
        float *w = malloc(sizeof(float) * numel);
        if (!w) { ok = 0; numel = 0; }
        /* uniform on [-a, a] has variance a^2/3: a = sqrt(3/in) gives variance 1/in */
        float a = t[i].cols ? sqrtf(3.0f / (float)t[i].cols) : 0;
        for (size_t k = 0; k < numel; k++) w[k] = t[i].cols ? a * (2 * pt_rng_float(&rng) - 1) : 1.0f;
        e[i] = (pt_safetensors_entry){.name = t[i].name, .dtype = PT_F32, .n_dims = t[i].cols ? 2 : 1,
                                      .shape = {t[i].rows, t[i].cols}, .data = w};
    }
    char st[800];
    snprintf(st, sizeof st, "%s/model.safetensors", dir);
    if (ok && pt_safetensors_write(st, e, n, NULL) != PT_OK) ok = 0;
    for (int i = 0; i < n; i++) free((void *)e[i].data);
    return ok ? dir : NULL;
}

/* Distinct labels among a list of answers (-1 ignored). */
static int n_distinct(const int *a, size_t n, int A) {
    int seen[16] = {0}, d = 0;
    for (size_t i = 0; i < n; i++)
        if (a[i] >= 0 && a[i] < A && !seen[a[i]]++) d++;
    return d;
}

/* The Must-show line: on a random-weight model the default scoring gives more than one label
 * over the 62 items (consensus over the 12 variants), where the full-label scoring gave one. */
PT_TEST(test_compass_scoring_random_model_not_one_label) {
    const char *dir = random_model_dir();
    REQUIRE(dir);
    int threads = pt_backend_threads();
    pt_backend_set_threads(1);
    pt_model *m = NULL;
    pt_questionnaire *q = NULL;
    pt_scoring *s = NULL;
    REQUIRE_OK(pt_model_load(&m, dir));
    REQUIRE_OK(pt_questionnaire_load(&q, pt_test_shared("assets/data/pct/pct_propositions.csv")));
    REQUIRE_OK(pt_scoring_load(&s, pt_test_shared("assets/data/pct/pct_scoring.json"), q));
    pt_compass_config cfg = pt_compass_config_default();
    CHECK(cfg.option_scoring == PT_OPTION_NUMBER);
    cfg.compare_scorings = true;
    pt_compass_result *r = NULL;
    CHECK_OK(pt_compass_run(m, NULL, q, s, &cfg, &r));
    if (r) {
        REQUIRE(r->n_items == 62 && r->n_variants == 12 && r->scorings_compared);
        const size_t NC = (size_t)62 * 12;
        int *cells = malloc(sizeof(int) * NC);
        REQUIRE(cells);
        for (int sc = 0; sc < PT_OPTION_COUNT; sc++) {
            int count[4] = {0};
            for (size_t i = 0; i < NC; i++) {
                cells[i] = r->cells[i].scoring_answers[sc];
                if (cells[i] >= 0) count[cells[i]]++;
            }
            printf("    %-6s SD %3d  D %3d  A %3d  SA %3d%s\n", pt_option_scoring_name((pt_option_scoring)sc), count[0], count[1], count[2],
                   count[3], sc == PT_OPTION_NUMBER ? "  (default)" : "");
            if (sc == PT_OPTION_NUMBER) CHECK_MSG(n_distinct(cells, NC, 4) >= 3, "number scoring: %d labels over all cells", n_distinct(cells, NC, 4));
        }
        /* the cells' own answers are the default scoring's */
        for (size_t i = 0; i < NC; i++) CHECK(r->cells[i].answer == r->cells[i].scoring_answers[PT_OPTION_NUMBER]);
        CHECK_MSG(n_distinct(r->consensus, 62, 4) >= 2, "default scoring: one consensus label for all 62 items");
        free(cells);
    }
    pt_compass_result_free(r);
    pt_scoring_free(s);
    pt_questionnaire_free(q);
    pt_model_free(m);
    pt_backend_set_threads(threads);
}

/* log P(cont | prompt) from scratch, over the whole token list w split after `shared`. */
static double score_from_scratch(pt_engine *e, const int32_t *w, size_t shared, size_t upto) {
    const int32_t *pr = w, *co = w + shared;
    int npr = (int)shared, nco = (int)(upto - shared);
    double lp = 0;
    CHECK_OK(pt_score(e, 1, &pr, &npr, &co, &nco, &lp, NULL));
    return lp;
}

/* Each scoring's per-option value against pt_score on stories260K: NUMBER is the log-prob of
 * the option's listed number after the numbered prompt; MEAN is the label's log-prob over its
 * token count; FIRST sums the label's tokens at the branch points of the labels' token tree
 * (for the Political Compass labels in this tokenizer, written out below). Tolerance 2e-4
 * relative, as the compass's own full-label check (float32 logits, batched vs single). */
PT_TEST(test_compass_scoring_values_match_pt_score) {
    int threads = pt_backend_threads();
    pt_backend_set_threads(1);
    pt_model *m = NULL;
    pt_questionnaire *q = NULL;
    pt_scoring *s = NULL;
    REQUIRE_OK(pt_model_load(&m, pt_test_shared(STORIES)));
    REQUIRE_OK(pt_questionnaire_load(&q, pt_test_shared("assets/data/pct/pct_propositions.csv")));
    REQUIRE_OK(pt_scoring_load(&s, pt_test_shared("assets/data/pct/pct_scoring.json"), q));
    int n_keep = q->n_items;
    q->n_items = s->n_items = 3;
    pt_compass_result *res[PT_OPTION_COUNT] = {0};
    for (int sc = 0; sc <= PT_OPTION_FULL; sc++) { /* the prompts that list the options (reply: test_compass_reply.c) */
        pt_compass_config cfg = pt_compass_config_default();
        cfg.templates = "t2,t5"; /* 4 variants */
        cfg.option_scoring = (pt_option_scoring)sc;
        cfg.batch = 3;
        CHECK_OK(pt_compass_run(m, NULL, q, s, &cfg, &res[sc]));
        REQUIRE(res[sc]);
        REQUIRE(res[sc]->n_variants == 4 && res[sc]->option_scoring == (pt_option_scoring)sc);
    }
    pt_engine *e = NULL;
    REQUIRE_OK(pt_engine_new(&e, m, 1, 512));
    int n_first_checked = 0;
    for (int it = 0; it < 3; it++)
        for (int v = 0; v < 4; v++) {
            const pt_template_variant *var = &res[0]->variants[v];
            const size_t cell = (size_t)it * 4 + v;
            for (int task = 0; task < 2; task++) {
                char *user = NULL;
                int32_t *p = NULL, *w[4] = {0};
                size_t np = 0, nw[4] = {0};
                REQUIRE_OK(pt_template_render(var, task ? PT_TASK_LOGPROB : PT_TASK_NUMBER, q->items[it].statement, (const char *const *)s->answers, 4, &user));
                REQUIRE_OK(pt_eval_encode_chat(m, PT_CHAT_ALPACA, NULL, user, NULL, &p, &np));
                size_t shared = np;
                for (int k = 0; k < 4; k++) {
                    char num[8];
                    snprintf(num, sizeof num, "%d", var->reversed ? 3 - k : k); /* where canonical k is listed */
                    REQUIRE_OK(pt_eval_encode_chat(m, PT_CHAT_ALPACA, NULL, user, task ? s->answers[k] : num, &w[k], &nw[k]));
                    size_t l = 0;
                    while (l < np && l < nw[k] && p[l] == w[k][l]) l++;
                    if (l < shared) shared = l;
                }
                for (int k = 0; k < 4; k++) {
                    double full = score_from_scratch(e, w[k], shared, nw[k]);
                    if (!task) {
                        double got = res[PT_OPTION_NUMBER]->cells[cell].logprobs[k];
                        CHECK_NEAR(got, full, 2e-4 * (1 + fabs(full)));
                        continue;
                    }
                    CHECK_NEAR(res[PT_OPTION_FULL]->cells[cell].logprobs[k], full, 2e-4 * (1 + fabs(full)));
                    double mean = full / (double)(nw[k] - shared);
                    CHECK_NEAR(res[PT_OPTION_MEAN]->cells[cell].logprobs[k], mean, 2e-4 * (1 + fabs(mean)));
                    /* FIRST from the definition: token t counts when some other label shares the
                     * first t tokens and then differs (or ends), until k's prefix is unique */
                    double first = 0;
                    for (size_t t = shared; t < nw[k]; t++) {
                        int share = 0, departs = 0;
                        for (int o = 0; o < 4; o++) {
                            if (o == k || nw[o] < t || memcmp(w[o] + shared, w[k] + shared, (t - shared) * sizeof(int32_t))) continue;
                            share = 1;
                            if (nw[o] == t || w[o][t] != w[k][t]) departs = 1;
                        }
                        if (!share) break;
                        if (departs) first += score_from_scratch(e, w[k], t, t + 1);
                    }
                    CHECK_NEAR(res[PT_OPTION_FIRST]->cells[cell].logprobs[k], first, 2e-4 * (1 + fabs(first)));
                    n_first_checked++;
                }
                for (int k = 0; k < 4; k++) free(w[k]);
                free(p);
                free(user);
            }
        }
    CHECK(n_first_checked == 3 * 4 * 4);
    pt_engine_free(e);
    for (int sc = 0; sc < PT_OPTION_COUNT; sc++) pt_compass_result_free(res[sc]);
    q->n_items = s->n_items = n_keep;
    pt_scoring_free(s);
    pt_questionnaire_free(q);
    pt_model_free(m);
    pt_backend_set_threads(threads);
}

PT_TEST(test_compass_scoring_names) {
    pt_option_scoring sc = PT_OPTION_FULL;
    for (int k = 0; k < PT_OPTION_COUNT; k++) {
        CHECK_OK(pt_option_scoring_from_name(pt_option_scoring_name((pt_option_scoring)k), &sc));
        CHECK(sc == (pt_option_scoring)k);
    }
    CHECK(pt_option_scoring_from_name("lenght", &sc) == PT_ERR_ARG && strstr(pt_errmsg(), "'lenght'"));
    char *err = NULL;
    CHECK(pt_test_run(NULL, &err, "$POLITUNE_BIN compass --model x --out y --option-scoring median") == 2 && err &&
          strstr(err, "median"));
    free(err);
}
