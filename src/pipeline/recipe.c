/* The recipe sections of `politune run` (see pt_run_recipe.h and docs/pipeline.md): model, data
 * (a corpus with its judge, or ready pairs), targets, train, eval and report, checked and
 * connected — every target must have a stage that makes its pairs — before anything runs. */
#include "pipeline/recipe.h"

#include <limits.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "assets/assets.h"
#include "eval/compass.h"
#include "eval/dial.h"
#include "eval/templates.h"
#include "pipeline/keys.h"
#include "train/config.h"

/* table entries: plain, with a range, with choices; KEND closes a table */
#define K(key, flag, kind) {key, flag, kind, 0, 0, NULL}
#define KR(key, flag, kind, lo, hi) {key, flag, kind, lo, hi, NULL}
#define KC(key, flag, choices) {key, flag, RK_STR, 0, 0, choices}
#define KEND {NULL, NULL, RK_OTHER, 0, 0, NULL}

static const pt_run_keydef top_keys[] = {K("name", NULL, RK_STR),  K("model", NULL, RK_PATH), K("data", NULL, RK_OTHER),   K("targets", NULL, RK_OTHER),
                                      K("train", NULL, RK_OTHER), K("eval", NULL, RK_OTHER), K("report", NULL, RK_OTHER),
                                      K("dial", NULL, RK_OTHER), K("launcher", NULL, RK_OTHER),
                                      K("device", NULL, RK_OTHER), KEND};
static const pt_run_keydef data_keys[] = {K("corpus", NULL, RK_OTHER), K("judge", NULL, RK_OTHER), K("select", NULL, RK_OTHER),
                                       K("prompts", "--prompts", RK_DIR), K("pairs", NULL, RK_OTHER), KR("sample", NULL, RK_INT, 0, 1e9),
                                       KR("heldout", NULL, RK_INT, 0, 1e9),
                                       KR("seed", NULL, RK_INT, 0, 9e18), KEND};
static const pt_run_keydef corpus_keys[] = {K("path", "--in", RK_FILE),
                                         K("text_field", "--text-field", RK_STR),
                                         KC("format", "--format", "csv|jsonl"),
                                         K("delimiter", "--delimiter", RK_STR),
                                         KR("limit", "--limit", RK_INT, 1, 1e15),
                                         KEND};
static const pt_run_keydef judge_keys[] = {K("url", "--judge", RK_STR),
                                        K("model", "--judge-model", RK_PATH),
                                        K("adapter", "--judge-adapter", RK_DIR),
                                        K("name", "--judge-name", RK_STR),
                                        K("key_env", "--judge-key-env", RK_STR),
                                        KC("mode", "--judge-mode", "text|choice|logprobs"),
                                        KR("concurrency", "--judge-concurrency", RK_INT, 1, 4096),
                                        KR("timeout", "--judge-timeout", RK_NUM, 1e-3, 1e6),
                                        KR("retries", "--judge-retries", RK_INT, 0, 1000),
                                        KR("backoff", "--judge-backoff", RK_NUM, 0, 1e6),
                                        KR("temperature", "--judge-temperature", RK_NUM, 0, 100),
                                        KR("max_tokens", "--judge-max-tokens", RK_INT, 1, 1e7),
                                        K("system", "--judge-system", RK_STR),
                                        KR("ctx", "--judge-ctx", RK_INT, 1, 1e7),
                                        K("chat_template", "--judge-chat-template", RK_STR),
                                        K("batch_invariant", "--judge-batch-invariant", RK_BOOL),
                                        KC("device", "--judge-device", "cpu|cuda|auto"),
                                        KC("precision", "--judge-precision", "bf16|f32"),
                                        KEND};
static const pt_run_keydef select_keys[] = {KR("margin", "--margin", RK_NUM, 0, 4), KR("min_quality", "--min-quality", RK_NUM, 1, 5), KEND};
static const pt_run_keydef eval_keys[] = {K("base", NULL, RK_BOOL),
                                       K("mode", NULL, RK_OTHER),
                                       K("templates", "--templates", RK_STR),
                                       K("generate_templates", NULL, RK_STR),
                                       KR("samples", "--samples", RK_INT, 1, 10000),
                                       K("open_prompts", NULL, RK_BOOL),
                                       KR("max_new_tokens", "--max-new-tokens", RK_INT, 1, 1e6),
                                       KR("temperature", "--temperature", RK_NUM, 0, 100),
                                       KR("top_k", "--top-k", RK_INT, 0, 1e9),
                                       KR("top_p", "--top-p", RK_NUM, 0, 1),
                                       KR("seed", "--seed", RK_INT, 0, 9e18),
                                       K("system", "--system", RK_STR),
                                       KR("batch", "--batch", RK_INT, 1, 64),
                                       KC("option_scoring", "--option-scoring", "number|mean|first|full|reply"),
                                       K("compare_scorings", "--compare-scorings", RK_BOOL),
                                       K("chat_template", "--chat-template", RK_STR),
                                       K("questionnaire", "--questionnaire", RK_FILE),
                                       K("scoring", "--scoring", RK_FILE),
                                       KR("every", NULL, RK_INT, 0, 1e12),
                                       KEND};
static const pt_run_keydef dial_keys[] = {K("scales", NULL, RK_OTHER),
                                       K("mix", NULL, RK_OTHER),
                                       K("weights", NULL, RK_OTHER),
                                       K("templates", "--templates", RK_STR),
                                       KR("batch", "--batch", RK_INT, 1, 64),
                                       KR("resamples", "--resamples", RK_INT, 1, 1000000),
                                       KC("option_scoring", "--option-scoring", "number|mean|first|full|reply"),
                                       KEND};
static const pt_run_keydef report_keys[] = {K("enabled", NULL, RK_BOOL), K("svg", NULL, RK_BOOL), KEND};

/* Train keys that politune run sets itself, or that belong under eval. */
static const char *train_reserved[][2] = {{"model", "the recipe's top-level 'model'"},
                                          {"data", "the targets' pairs"},
                                          {"out", "the run directory"},
                                          {"resume", "politune run (an interrupted stage resumes)"},
                                          {"threads", "--threads"},
                                          {"ref_cache", "the run directory"},
                                          {"eval_data", "data.heldout (the pairs stage's held-out pairs)"},
                                          {"eval_dir", "the run directory"},
                                          {"eval_every", "eval.every"},
                                          {"eval_templates", "eval.templates"},
                                          {"eval_option_scoring", "eval.option_scoring"},
                                          {"eval_max_new_tokens", "eval.max_new_tokens and eval.open_prompts"}};

static pt_status dup_into(char **dst, const char *s) {
    free(*dst);
    *dst = strdup(s);
    return *dst ? PT_OK : pt_error(PT_ERR_OOM, "out of memory");
}

static pt_status parse_train(pt_run_recipe *r, const pt_run_ctx *c, const pt_yaml_node *tr, int line, const pt_yaml_node *ev) {
    if (tr && tr->kind != PT_YAML_MAP) return pt_run_err(c, line, "train", "expects a mapping of training keys");
    pt_train_config scratch;
    pt_train_config_defaults(&scratch);
    pt_status st = PT_OK;
    for (int i = 0; tr && i < tr->n && !st; i++) {
        const char *k = tr->keys[i];
        int kl = tr->key_lines[i];
        char dotted[200];
        snprintf(dotted, sizeof dotted, "train.%s", k);
        if (!strcmp(k, "recipe")) {
            char *p = NULL;
            st = pt_run_resolve_path(c, tr->items[i], kl, dotted, RK_FILE, &p);
            if (!st && (st = pt_train_recipe_load(&scratch, p))) st = pt_run_err(c, kl, dotted, "%s", pt_errmsg());
            if (!st) st = pt_run_opts_input(&r->train, "train.recipe", "--recipe", p);
            free(p);
            continue;
        }
        if (!strcmp(k, "init_adapter")) {
            char *p = NULL;
            st = pt_run_resolve_path(c, tr->items[i], kl, dotted, RK_DIR, &p);
            if (!st) st = pt_run_opts_input(&r->train, "train.init_adapter", "--init-adapter", p);
            free(p);
            continue;
        }
        for (size_t j = 0; j < sizeof train_reserved / sizeof *train_reserved && !st; j++)
            if (!strcmp(k, train_reserved[j][0])) st = pt_run_err(c, kl, NULL, "key '%s' is not a recipe key: it comes from %s", dotted, train_reserved[j][1]);
        if (st) break;
        if (pt_train_config_is_bool(k) < 0) {
            st = pt_run_err(c, kl, NULL, "unknown key '%s' (the training keys are listed by 'politune train --help')", dotted);
            break;
        }
        /* a list (lora_targets, adam_betas) is joined with commas, as train reads it */
        const pt_yaml_node *v = tr->items[i];
        char value[2048] = "";
        if (v->kind == PT_YAML_SEQ) {
            for (int j = 0; j < v->n && !st; j++) {
                size_t n = strlen(value);
                if (v->items[j]->kind != PT_YAML_SCALAR) st = pt_run_err(c, kl, dotted, "expects a value or a list of values");
                else snprintf(value + n, sizeof value - n, "%s%s", n ? "," : "", v->items[j]->value);
            }
        } else if (v->kind == PT_YAML_SCALAR) {
            snprintf(value, sizeof value, "%s", v->value);
        } else {
            st = pt_run_err(c, kl, dotted, "expects a value or a list of values, not a mapping");
        }
        if (!st && pt_train_config_set(&scratch, k, value)) {
            /* its message starts with the key, which ours names already */
            const char *msg = pt_errmsg();
            size_t kn = strlen(k);
            if (!strncmp(msg, k, kn) && !strncmp(msg + kn, ": ", 2)) msg += kn + 2;
            st = pt_run_err(c, kl, dotted, "%s", msg);
        }
        if (st) break;
        char flag[256];
        snprintf(flag, sizeof flag, "--%s=%s", k, value);
        for (char *p = flag + 2; *p && *p != '='; p++)
            if (*p == '_') *p = '-';
        if (!r->train.params && !(r->train.params = json_object())) st = pt_error(PT_ERR_OOM, "out of memory");
        if (!st) st = pt_run_args_push(&r->train.args, flag);
        if (!st && json_object_set_new(r->train.params, k, json_string(value))) st = pt_error(PT_ERR_OOM, "out of memory");
    }
    /* the held-out pairs are ranked by DPO's implicit rewards */
    if (!st && r->heldout > 0 && scratch.method != PT_TRAIN_DPO)
        st = pt_run_err(c, r->heldout_line, "data.heldout", "held-out pairs are evaluated with DPO's rewards; train.method is sft");
    pt_train_config_free(&scratch);
    PT_TRY(st);
    /* evaluation during training */
    long every = 0;
    const pt_yaml_node *v;
    if ((v = pt_yaml_get(ev, "every"))) PT_TRY(pt_run_get_int(c, v, pt_run_key_line(ev, "every"), "eval.every", 0, 1000000000000L, &every));
    r->eval_every = every;
    char buf[64];
    if (every > 0) {
        snprintf(buf, sizeof buf, "%ld", every);
        PT_TRY(pt_run_opts_flag(&r->train, "eval_every", "--eval-every", buf));
        const char *s = NULL;
        if ((v = pt_yaml_get(ev, "templates"))) {
            PT_TRY(pt_run_scalar(c, v, pt_run_key_line(ev, "templates"), "eval.templates", &s));
            PT_TRY(pt_run_opts_flag(&r->train, "eval_templates", "--eval-templates", s));
        }
        if ((v = pt_yaml_get(ev, "option_scoring"))) { /* the compass stages' scoring, so the curve and the end points agree */
            PT_TRY(pt_run_scalar(c, v, pt_run_key_line(ev, "option_scoring"), "eval.option_scoring", &s));
            PT_TRY(pt_run_opts_flag(&r->train, "eval_option_scoring", "--eval-option-scoring", s));
        }
        bool open = true;
        if ((v = pt_yaml_get(ev, "open_prompts"))) PT_TRY(pt_run_get_bool(c, v, pt_run_key_line(ev, "open_prompts"), "eval.open_prompts", &open));
        if (!open) PT_TRY(pt_run_opts_flag(&r->train, "eval_max_new_tokens", "--eval-max-new-tokens", "0"));
        else if ((v = pt_yaml_get(ev, "max_new_tokens"))) {
            PT_TRY(pt_run_scalar(c, v, pt_run_key_line(ev, "max_new_tokens"), "eval.max_new_tokens", &s));
            PT_TRY(pt_run_opts_flag(&r->train, "eval_max_new_tokens", "--eval-max-new-tokens", s));
        }
    }
    if (!r->train.params && !(r->train.params = json_object())) return pt_error(PT_ERR_OOM, "out of memory");
    return PT_OK;
}

static pt_status parse_eval(pt_run_recipe *r, const pt_run_ctx *c, const pt_yaml_node *ev, int line) {
    PT_TRY(pt_run_keys_check(c, ev, line, "eval", eval_keys));
    PT_TRY(pt_run_opts_add(&r->compass, c, ev, "eval", eval_keys));
    if (!r->compass.params && !(r->compass.params = json_object())) return pt_error(PT_ERR_OOM, "out of memory");
    const pt_yaml_node *v;
    r->eval_base = true;
    if ((v = pt_yaml_get(ev, "base"))) PT_TRY(pt_run_get_bool(c, v, pt_run_key_line(ev, "base"), "eval.base", &r->eval_base));
    bool open = true;
    if ((v = pt_yaml_get(ev, "open_prompts"))) PT_TRY(pt_run_get_bool(c, v, pt_run_key_line(ev, "open_prompts"), "eval.open_prompts", &open));
    if (!open) PT_TRY(pt_run_opts_flag(&r->compass, "open_prompts", "--no-open-prompts", NULL));
    /* one compass stage per mode */
    v = pt_yaml_get(ev, "mode");
    int ml = pt_run_key_line(ev, "mode");
    int n = !v ? 0 : v->kind == PT_YAML_SEQ ? v->n : 1;
    if (v && v->kind == PT_YAML_MAP) return pt_run_err(c, ml, "eval.mode", "expects logprob, generate, or a list of them");
    if (n > 2 || (v && n == 0)) return pt_run_err(c, ml, "eval.mode", "expects logprob, generate, or a list of them");
    for (int i = 0; i < n; i++) {
        const pt_yaml_node *m = v->kind == PT_YAML_SEQ ? v->items[i] : v;
        const char *s = NULL;
        PT_TRY(pt_run_scalar(c, m, ml, "eval.mode", &s));
        if (strcmp(s, "logprob") && strcmp(s, "generate")) return pt_run_err(c, ml, "eval.mode", "expects logprob or generate, got '%s'", s);
        if (i && !strcmp(s, r->modes[0])) return pt_run_err(c, ml, "eval.mode", "'%s' given twice", s);
        PT_TRY(dup_into(&r->modes[r->n_modes++], s));
    }
    if (!r->n_modes) PT_TRY(dup_into(&r->modes[r->n_modes++], "logprob"));
    /* generate mode decodes on top of each prefill, so a budget may give it fewer phrasings */
    if ((v = pt_yaml_get(ev, "generate_templates"))) {
        const char *s = NULL;
        int gl = pt_run_key_line(ev, "generate_templates");
        PT_TRY(pt_run_scalar(c, v, gl, "eval.generate_templates", &s));
        pt_template_variant *vars = NULL;
        int nv = 0;
        if (pt_templates_select(s, &vars, &nv)) return pt_run_err(c, gl, "eval.generate_templates", "%s", pt_errmsg());
        free(vars);
        PT_TRY(dup_into(&r->generate_templates, s));
    }
    /* the questionnaire is an input like any other: named explicitly so it is hashed */
    bool has_q = false, has_s = false;
    for (int i = 0; i < r->compass.n_in; i++) {
        has_q |= !strcmp(r->compass.in[i].role, "eval.questionnaire");
        has_s |= !strcmp(r->compass.in[i].role, "eval.scoring");
    }
    if (has_q != has_s) return pt_run_err(c, line, "eval", "questionnaire and scoring go together");
    if (!has_q) {
        const char *rel[2] = {PT_PCT_QUESTIONNAIRE, PT_PCT_SCORING}, *role[2] = {"eval.questionnaire", "eval.scoring"},
                   *flag[2] = {"--questionnaire", "--scoring"};
        for (int k = 0; k < 2; k++) {
            char *p = pt_eval_find_asset(rel[k]);
            char *abs = p ? realpath(p, NULL) : NULL;
            free(p);
            if (!abs) return pt_run_err(c, line, "eval", "the Political Compass file %s was not found (set POLITUNE_ASSETS, run 'politune pull pct', or give eval.questionnaire and eval.scoring)", rel[k]);
            pt_status st = pt_run_opts_input(&r->compass, role[k], flag[k], abs);
            free(abs);
            PT_TRY(st);
        }
    }
    return PT_OK;
}

static pt_status parse_report(pt_run_recipe *r, const pt_run_ctx *c, const pt_yaml_node *rep, int line) {
    r->report = true;
    r->report_svg = true;
    if (!rep) return PT_OK;
    if (rep->kind == PT_YAML_SCALAR) return pt_run_get_bool(c, rep, line, "report", &r->report);
    PT_TRY(pt_run_keys_check(c, rep, line, "report", report_keys));
    const pt_yaml_node *v;
    if ((v = pt_yaml_get(rep, "enabled"))) PT_TRY(pt_run_get_bool(c, v, pt_run_key_line(rep, "enabled"), "report.enabled", &r->report));
    if ((v = pt_yaml_get(rep, "svg"))) PT_TRY(pt_run_get_bool(c, v, pt_run_key_line(rep, "svg"), "report.svg", &r->report_svg));
    return PT_OK;
}

/* A list of numbers, as a YAML sequence or one "a,b,c" string, into "a,b,c". */
static pt_status number_list(const pt_run_ctx *c, const pt_yaml_node *v, int line, const char *dotted, char **out) {
    size_t cap = 16, len = 0;
    char *buf = malloc(cap);
    if (!buf) return pt_error(PT_ERR_OOM, "out of memory");
    buf[0] = 0;
    int n = v->kind == PT_YAML_SEQ ? v->n : 1;
    if (v->kind == PT_YAML_MAP || n == 0) { free(buf); return pt_run_err(c, line, dotted, "expects a list of numbers, e.g. [-1, 0, 1]"); }
    for (int i = 0; i < n; i++) {
        const char *t = NULL;
        pt_status st = pt_run_scalar(c, v->kind == PT_YAML_SEQ ? v->items[i] : v, line, dotted, &t);
        if (st) { free(buf); return st; }
        size_t tl = strlen(t);
        char *nb = realloc(buf, cap = len + tl + 2);
        if (!nb) { free(buf); return pt_error(PT_ERR_OOM, "out of memory"); }
        buf = nb;
        len += (size_t)sprintf(buf + len, "%s%s", i ? "," : "", t);
    }
    double *vals = NULL;
    int k = 0;
    if (pt_dial_parse_list(buf, "the list", &vals, &k)) { free(buf); return pt_run_err(c, line, dotted, "%s", pt_errmsg()); }
    free(vals);
    *out = buf;
    return PT_OK;
}

static pt_status parse_dial(pt_run_recipe *r, const pt_run_ctx *c, const pt_yaml_node *d, int line) {
    r->dial_mix[0] = r->dial_mix[1] = -1;
    if (!d) return PT_OK;
    if (d->kind != PT_YAML_MAP) return pt_run_err(c, line, "dial", "expects a mapping (scales, mix, weights, templates, batch, resamples, option_scoring)");
    PT_TRY(pt_run_keys_check(c, d, line, "dial", dial_keys));
    PT_TRY(pt_run_opts_add(&r->dial_opts, c, d, "dial", dial_keys));
    if (!r->dial_opts.params && !(r->dial_opts.params = json_object())) return pt_error(PT_ERR_OOM, "out of memory");
    const pt_yaml_node *v;
    if ((v = pt_yaml_get(d, "scales"))) PT_TRY(number_list(c, v, pt_run_key_line(d, "scales"), "dial.scales", &r->dial_scales));
    if ((v = pt_yaml_get(d, "weights"))) PT_TRY(number_list(c, v, pt_run_key_line(d, "weights"), "dial.weights", &r->dial_weights));
    if ((v = pt_yaml_get(d, "mix"))) {
        int ml = pt_run_key_line(d, "mix");
        if (v->kind != PT_YAML_SEQ || v->n != 2) return pt_run_err(c, ml, "dial.mix", "expects two targets, e.g. [left, right]");
        for (int k = 0; k < 2; k++) {
            const char *name = NULL;
            PT_TRY(pt_run_scalar(c, v->items[k], ml, "dial.mix", &name));
            for (int t = 0; t < r->n_targets; t++)
                if (!strcmp(r->targets[t].name, name)) r->dial_mix[k] = t;
            if (r->dial_mix[k] < 0) return pt_run_err(c, ml, "dial.mix", "'%s' is not one of the recipe's targets", name);
        }
        if (r->dial_mix[0] == r->dial_mix[1]) return pt_run_err(c, ml, "dial.mix", "mixes a target with itself");
        if (!r->dial_weights && !(r->dial_weights = strdup("0,0.25,0.5,0.75,1"))) return pt_error(PT_ERR_OOM, "out of memory");
    } else if (r->dial_weights) {
        return pt_run_err(c, pt_run_key_line(d, "weights"), "dial.weights", "goes with dial.mix (the two targets mixed)");
    }
    if (!r->dial_scales && r->dial_mix[0] < 0) return pt_run_err(c, line, "dial", "has neither scales nor mix: nothing to dial");
    if (r->dial_scales && r->n_targets == 0) return pt_run_err(c, line, "dial.scales", "needs targets: each target's adapter is dialled");
    r->dial = true;
    if (r->dial_scales) PT_TRY(json_object_set_new(r->dial_opts.params, "scales", json_string(r->dial_scales)) ? pt_error(PT_ERR_OOM, "out of memory") : PT_OK);
    if (r->dial_weights) PT_TRY(json_object_set_new(r->dial_opts.params, "weights", json_string(r->dial_weights)) ? pt_error(PT_ERR_OOM, "out of memory") : PT_OK);
    return PT_OK;
}

static bool good_name(const char *s) {
    if (!*s || strlen(s) > 64) return false;
    if (!strcmp(s, ".") || !strcmp(s, "..")) return false; /* the current or parent directory, not a new one */
    for (; *s; s++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-", *s)) return false;
    return true;
}

static int find_source(const pt_run_recipe *r, const char *name) {
    if (r->data == PT_RUN_DATA_CORPUS) return !strcmp(name, "left") ? 0 : !strcmp(name, "right") ? 1 : -1;
    for (int i = 0; i < r->n_sources; i++)
        if (!strcmp(r->source_name[i], name)) return i;
    return -1;
}

/* "no stage makes them" names what would: the sources there are, or the data keys. */
static pt_status no_source(const pt_run_recipe *r, const pt_run_ctx *c, int line, const char *target, const char *src) {
    if (r->data == PT_RUN_DATA_NONE)
        return pt_run_err(c, line, NULL, "target '%s' needs preference pairs for '%s', and no stage makes them: the recipe has no data.corpus (select + synth) or data.pairs", target, src);
    if (r->data == PT_RUN_DATA_CORPUS)
        return pt_run_err(c, line, NULL, "target '%s' needs pairs for '%s', and no stage makes them: the corpus stages make 'left' and 'right'", target, src);
    char list[512] = "";
    for (int i = 0; i < r->n_sources; i++) {
        size_t n = strlen(list);
        snprintf(list + n, sizeof list - n, "%s%s", n ? ", " : "", r->source_name[i]);
    }
    return pt_run_err(c, line, NULL, "target '%s' needs pairs for '%s', and no stage makes them (data.pairs has: %s)", target, src, list);
}

static pt_status parse_targets(pt_run_recipe *r, const pt_run_ctx *c, const pt_yaml_node *t, int line) {
    if (!t) return PT_OK;
    if (t->kind == PT_YAML_MAP) return pt_run_err(c, line, "targets", "expects a list (e.g. [left, right, {name: left75, mix: {left: 0.75, right: 0.25}}])");
    int n = t->kind == PT_YAML_SEQ ? t->n : 1;
    if (!(r->targets = calloc((size_t)(n ? n : 1), sizeof *r->targets))) return pt_error(PT_ERR_OOM, "out of memory");
    for (int i = 0; i < n; i++) {
        const pt_yaml_node *e = t->kind == PT_YAML_SEQ ? t->items[i] : t;
        pt_run_target *tg = &r->targets[r->n_targets++];
        int el = e->line ? e->line : line;
        const pt_yaml_node *mix = NULL;
        const char *name;
        if (e->kind == PT_YAML_SCALAR) {
            name = e->value;
        } else if (e->kind == PT_YAML_MAP) {
            static const pt_run_keydef tkeys[] = {K("name", NULL, RK_STR), K("mix", NULL, RK_OTHER), KEND};
            PT_TRY(pt_run_keys_check(c, e, el, "targets", tkeys));
            const pt_yaml_node *nm = pt_yaml_get(e, "name");
            if (!nm) return pt_run_err(c, el, "targets", "a target given as a mapping needs a name");
            PT_TRY(pt_run_scalar(c, nm, el, "targets.name", &name));
            mix = pt_yaml_get(e, "mix");
            if (mix && (mix->kind != PT_YAML_MAP || mix->n == 0)) return pt_run_err(c, pt_run_key_line(e, "mix"), "targets.mix", "expects a mapping of source to weight, e.g. {left: 0.75, right: 0.25}");
        } else {
            return pt_run_err(c, el, "targets", "each target is a name or {name: ..., mix: {...}}");
        }
        if (!good_name(name)) return pt_run_err(c, el, "targets", "'%s' is not a usable target name (letters, digits, '_', '.', '-')", name);
        if (!strcmp(name, "base")) return pt_run_err(c, el, "targets", "'base' names the model without an adapter; choose another target name");
        for (int j = 0; j < r->n_targets - 1; j++)
            if (!strcmp(r->targets[j].name, name)) return pt_run_err(c, el, "targets", "target '%s' given twice", name);
        PT_TRY(dup_into(&tg->name, name));
        double sum = 0;
        for (int j = 0; j < (mix ? mix->n : 1); j++) {
            const char *src = mix ? mix->keys[j] : name;
            int sl = mix ? mix->key_lines[j] : el;
            double w = 1;
            if (mix) {
                const char *s = NULL;
                char *end;
                PT_TRY(pt_run_scalar(c, mix->items[j], sl, "targets.mix", &s));
                w = strtod(s, &end);
                if (end == s || *end || !(w > 0) || w > 1e9) return pt_run_err(c, sl, "targets.mix", "the weight of '%s' must be a positive number, got '%s'", src, s);
            }
            if (find_source(r, src) < 0) return no_source(r, c, sl, name, src);
            if (tg->n >= PT_RUN_MAX_SOURCES) return pt_run_err(c, sl, "targets.mix", "at most %d sources", PT_RUN_MAX_SOURCES);
            PT_TRY(dup_into(&tg->src[tg->n], src));
            tg->w[tg->n++] = w;
            sum += w;
            if (r->data == PT_RUN_DATA_CORPUS) r->side_used[find_source(r, src)] = true;
        }
        for (int j = 0; j < tg->n; j++) tg->w[j] /= sum;
    }
    return PT_OK;
}

static pt_status parse_data(pt_run_recipe *r, const pt_run_ctx *c, const pt_yaml_node *d, int line) {
    if (!d) return PT_OK;
    PT_TRY(pt_run_keys_check(c, d, line, "data", data_keys));
    const pt_yaml_node *corpus = pt_yaml_get(d, "corpus"), *pairs = pt_yaml_get(d, "pairs"), *judge = pt_yaml_get(d, "judge"),
                   *sel = pt_yaml_get(d, "select"), *v;
    if (corpus && pairs) return pt_run_err(c, pt_run_key_line(d, "pairs"), "data", "give either corpus (select + synth make the pairs) or pairs (ready ones), not both");
    if (!corpus && !pairs) return pt_run_err(c, line, "data", "needs corpus (raw posts to select and synthesise pairs from) or pairs (ready preference pairs)");
    long x;
    if ((v = pt_yaml_get(d, "sample"))) PT_TRY(pt_run_get_int(c, v, pt_run_key_line(d, "sample"), "data.sample", 0, 1000000000L, &r->sample));
    r->heldout_line = pt_run_key_line(d, "heldout");
    if ((v = pt_yaml_get(d, "heldout"))) PT_TRY(pt_run_get_int(c, v, r->heldout_line, "data.heldout", 0, 1000000000L, &r->heldout));
    if ((v = pt_yaml_get(d, "seed"))) {
        PT_TRY(pt_run_get_int(c, v, pt_run_key_line(d, "seed"), "data.seed", 0, LONG_MAX, &x));
        r->seed = (uint64_t)x;
    }
    if (pairs) {
        int pl = pt_run_key_line(d, "pairs");
        for (const char *k[] = {"judge", "select", "prompts"}, **p = k; p < k + 3; p++)
            if (pt_yaml_get(d, *p)) return pt_run_err(c, pt_run_key_line(d, *p), NULL, "data.%s is only used with data.corpus (the pairs here are ready)", *p);
        if (pairs->kind != PT_YAML_MAP || pairs->n == 0) return pt_run_err(c, pl, "data.pairs", "expects a mapping of source name to file, e.g. {left: politune-left.json}");
        if (pairs->n > PT_RUN_MAX_SOURCES) return pt_run_err(c, pl, "data.pairs", "at most %d sources", PT_RUN_MAX_SOURCES);
        r->data = PT_RUN_DATA_PAIRS;
        for (int i = 0; i < pairs->n; i++) {
            char dotted[200];
            snprintf(dotted, sizeof dotted, "data.pairs.%s", pairs->keys[i]);
            if (!good_name(pairs->keys[i])) return pt_run_err(c, pairs->key_lines[i], dotted, "not a usable source name (letters, digits, '_', '.', '-')");
            PT_TRY(dup_into(&r->source_name[r->n_sources], pairs->keys[i]));
            pt_status st = pt_run_resolve_path(c, pairs->items[i], pairs->key_lines[i], dotted, RK_FILE, &r->source_path[r->n_sources]);
            r->n_sources++;
            PT_TRY(st);
        }
        return PT_OK;
    }
    r->data = PT_RUN_DATA_CORPUS;
    int cl = pt_run_key_line(d, "corpus");
    PT_TRY(pt_run_keys_check(c, corpus, cl, "data.corpus", corpus_keys));
    if (!pt_yaml_get(corpus, "path")) return pt_run_err(c, cl, "data.corpus", "needs path (the posts: CSV or JSONL)");
    if (!pt_yaml_get(corpus, "text_field")) return pt_run_err(c, cl, "data.corpus", "needs text_field (the column or key holding the text)");
    PT_TRY(pt_run_opts_add(&r->corpus, c, corpus, "data.corpus", corpus_keys));
    if (!judge) return pt_run_err(c, cl, "data.judge", "required with data.corpus: url (an OpenAI-compatible server) or model (run in-process)");
    int jl = pt_run_key_line(d, "judge");
    PT_TRY(pt_run_keys_check(c, judge, jl, "data.judge", judge_keys));
    if (!pt_yaml_get(judge, "url") == !pt_yaml_get(judge, "model")) return pt_run_err(c, jl, "data.judge", "give exactly one of url and model");
    PT_TRY(pt_run_opts_add(&r->judge, c, judge, "data.judge", judge_keys));
    PT_TRY(pt_run_opts_add(&r->judge, c, d, "data", data_keys)); /* prompts */
    PT_TRY(pt_run_keys_check(c, sel, pt_run_key_line(d, "select"), "data.select", select_keys));
    PT_TRY(pt_run_opts_add(&r->select, c, sel, "data.select", select_keys));
    if (!r->select.params && !(r->select.params = json_object())) return pt_error(PT_ERR_OOM, "out of memory");
    return PT_OK;
}

/* True when `prog` names an executable file: a path, or a name found on PATH. */
static bool executable(const char *prog) {
    if (strchr(prog, '/')) return access(prog, X_OK) == 0;
    const char *path = getenv("PATH");
    for (const char *d = path ? path : "/usr/bin:/bin"; *d;) {
        size_t n = strcspn(d, ":");
        char full[4096];
        snprintf(full, sizeof full, "%.*s/%s", (int)n, n ? d : ".", prog);
        if (access(full, X_OK) == 0) return true;
        d += n + (d[n] == ':');
    }
    return false;
}

/* launcher: "mpirun -np 4" (split at spaces) or a list of words; it is put in front of the
 * training and compass stages' commands. */
static pt_status parse_launcher(pt_run_recipe *r, const pt_run_ctx *c, const pt_yaml_node *v, int line) {
    if (!v) return PT_OK;
    if (v->kind == PT_YAML_SCALAR) {
        char *words = strdup(v->value ? v->value : "");
        if (!words) return pt_error(PT_ERR_OOM, "out of memory");
        pt_status st = PT_OK;
        for (char *save = NULL, *w = strtok_r(words, " \t", &save); w && !st; w = strtok_r(NULL, " \t", &save)) st = pt_run_args_push(&r->launcher, w);
        free(words);
        PT_TRY(st);
    } else if (v->kind == PT_YAML_SEQ) {
        for (int i = 0; i < v->n; i++) {
            const char *w = NULL;
            PT_TRY(pt_run_scalar(c, v->items[i], v->items[i]->line ? v->items[i]->line : line, "launcher", &w));
            PT_TRY(pt_run_args_push(&r->launcher, w));
        }
    } else {
        return pt_run_err(c, line, "launcher", "expects a command line, e.g. \"mpirun -np 4\" or [srun, --ntasks=4]");
    }
    if (r->launcher.n == 0) return pt_run_err(c, line, "launcher", "is empty: give a command line such as \"mpirun -np 4\", or leave the key out");
    if (!executable(r->launcher.v[0]))
        return pt_run_err(c, line, "launcher", "'%s' is not an executable file on PATH (install it, e.g. apt-get install openmpi-bin for mpirun, or give its full path)", r->launcher.v[0]);
    return PT_OK;
}

static pt_status from_tree(pt_run_recipe *r, pt_yaml_node *root, const pt_run_ctx *c) {
    PT_TRY(pt_run_keys_check(c, root, 1, "", top_keys));
    const pt_yaml_node *v;
    if ((v = pt_yaml_get(root, "name"))) {
        const char *s = NULL;
        PT_TRY(pt_run_scalar(c, v, pt_run_key_line(root, "name"), "name", &s));
        if (!good_name(s)) return pt_run_err(c, pt_run_key_line(root, "name"), "name", "'%s' is not usable as a directory name (letters, digits, '_', '.', '-')", s);
        PT_TRY(dup_into(&r->name, s));
    }
    if (!(v = pt_yaml_get(root, "model"))) return pt_run_err(c, 1, "model", "required: the base model (a GGUF file, a Hugging Face directory, or asset:PATH)");
    PT_TRY(pt_run_resolve_path(c, v, pt_run_key_line(root, "model"), "model", RK_PATH, &r->model));
    PT_TRY(parse_data(r, c, pt_yaml_get(root, "data"), pt_run_key_line(root, "data")));
    PT_TRY(parse_targets(r, c, pt_yaml_get(root, "targets"), pt_run_key_line(root, "targets")));
    if (r->n_targets == 0 && r->data != PT_RUN_DATA_NONE)
        return pt_run_err(c, pt_run_key_line(root, "data"), NULL, "the data make pairs that no stage uses: add targets (e.g. targets: [left, right])");
    const pt_yaml_node *ev = pt_yaml_get(root, "eval");
    PT_TRY(parse_eval(r, c, ev, pt_run_key_line(root, "eval")));
    PT_TRY(parse_train(r, c, pt_yaml_get(root, "train"), pt_run_key_line(root, "train"), ev));
    if (r->n_targets == 0 && !r->eval_base) return pt_run_err(c, pt_run_key_line(root, "eval"), "eval.base", "is false and there are no targets: nothing to evaluate");
    PT_TRY(parse_report(r, c, pt_yaml_get(root, "report"), pt_run_key_line(root, "report")));
    PT_TRY(parse_dial(r, c, pt_yaml_get(root, "dial"), pt_run_key_line(root, "dial")));
    PT_TRY(parse_launcher(r, c, pt_yaml_get(root, "launcher"), pt_run_key_line(root, "launcher")));
    if ((v = pt_yaml_get(root, "device"))) {
        const char *d = NULL;
        PT_TRY(pt_run_scalar(c, v, pt_run_key_line(root, "device"), "device", &d));
        if (strcmp(d, "cpu") && strcmp(d, "cuda") && strcmp(d, "auto")) return pt_run_err(c, pt_run_key_line(root, "device"), "device", "expects one of cpu|cuda|auto, got '%s'", d);
        PT_TRY(dup_into(&r->device, d));
    }
    return PT_OK;
}

pt_status pt_run_recipe_load(pt_run_recipe *r, const char *path, const char *const *sets, const pt_pull_hooks *pull) {
    memset(r, 0, sizeof *r);
    if (!(r->file = strdup(path))) return pt_error(PT_ERR_OOM, "out of memory");
    char *abs = realpath(path, NULL);
    if (!abs) return pt_error(PT_ERR_ARG, "%s: no such recipe file", path);
    char *d = strdup(abs);
    r->dir = d ? strdup(dirname(d)) : NULL;
    free(d);
    free(abs);
    if (!r->dir) return pt_error(PT_ERR_OOM, "out of memory");
    pt_yaml_node *root = NULL;
    PT_TRY(pt_yaml_load(path, path, &root));
    pt_status st = PT_OK;
    for (int i = 0; sets && sets[i] && !st; i++) {
        const char *eq = strchr(sets[i], '=');
        if (!eq || eq == sets[i]) { st = pt_error(PT_ERR_ARG, "--set '%s': expected KEY=VALUE (e.g. train.max_steps=20)", sets[i]); break; }
        char *key = strndup(sets[i], (size_t)(eq - sets[i]));
        st = key ? pt_yaml_set(root, key, eq + 1) : pt_error(PT_ERR_OOM, "out of memory");
        free(key);
    }
    pt_run_ctx c = {path, r->dir, pull};
    if (!st) st = from_tree(r, root, &c);
    pt_yaml_node_free(root);
    if (!st && !r->name) {
        /* the file's stem */
        const char *b = strrchr(path, '/');
        b = b ? b + 1 : path;
        size_t n = strcspn(b, ".");
        if (!(r->name = strndup(b, n ? n : strlen(b)))) st = pt_error(PT_ERR_OOM, "out of memory");
    }
    return st;
}

void pt_run_recipe_free(pt_run_recipe *r) {
    free(r->file);
    free(r->dir);
    free(r->name);
    free(r->model);
    pt_run_opts_free(&r->corpus);
    pt_run_opts_free(&r->judge);
    pt_run_opts_free(&r->select);
    pt_run_opts_free(&r->train);
    pt_run_opts_free(&r->compass);
    pt_run_opts_free(&r->dial_opts);
    free(r->dial_scales);
    free(r->generate_templates);
    free(r->dial_weights);
    pt_run_args_free(&r->launcher);
    free(r->device);
    for (int i = 0; i < r->n_sources; i++) {
        free(r->source_name[i]);
        free(r->source_path[i]);
    }
    for (int i = 0; i < r->n_targets; i++) {
        free(r->targets[i].name);
        for (int j = 0; j < r->targets[i].n; j++) free(r->targets[i].src[j]);
    }
    free(r->targets);
    for (int i = 0; i < r->n_modes; i++) free(r->modes[i]);
    memset(r, 0, sizeof *r);
}
