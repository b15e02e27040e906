/* From a checked recipe to the list of stages, in an order where every stage comes after the
 * stages it reads from (see pt_run_plan.h). Paths inside the run directory are relative: the
 * stages run there, which keeps the recorded command lines short and makes the training
 * trajectory's label the stage's folder name ("train-left"). */
#include "pipeline/plan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *const pt_run_kind_names[PT_RUN_KINDS] = {"select", "synth", "pairs", "train", "compass", "report", "dial"};

int pt_run_kind_from_name(const char *name) {
    for (int k = 0; k < PT_RUN_KINDS; k++)
        if (!strcmp(name, pt_run_kind_names[k])) return k;
    return -1;
}

static char *fmt(const char *f, const char *a, const char *b) {
    char buf[1024];
    snprintf(buf, sizeof buf, f, a, b);
    return strdup(buf);
}

static pt_status stage_new(pt_run_plan *p, pt_run_kind kind, const char *instance, const char *dir, const char *subcommand, pt_run_stage **out) {
    pt_run_stage *ns = realloc(p->s, sizeof *ns * (size_t)(p->n + 1));
    if (!ns) return pt_error(PT_ERR_OOM, "out of memory");
    p->s = ns;
    pt_run_stage *s = &p->s[p->n++];
    memset(s, 0, sizeof *s);
    s->kind = kind;
    s->instance = strdup(instance);
    s->title = *instance ? fmt("%s %s", pt_run_kind_names[kind], instance) : strdup(pt_run_kind_names[kind]);
    s->dir = strdup(dir);
    s->params = json_object();
    if (!s->instance || !s->title || !s->dir || !s->params) return pt_error(PT_ERR_OOM, "out of memory");
    PT_TRY(pt_run_args_push(&s->argv, "politune"));
    PT_TRY(pt_run_args_push(&s->argv, subcommand));
    *out = s;
    return PT_OK;
}

static pt_status add_input(pt_run_stage *s, const char *role, const char *flag, const char *arg, const char *file, bool optional, int from) {
    if (s->n_in >= PT_RUN_MAX_STAGE_INPUTS) return pt_error(PT_ERR_INTERNAL, "too many inputs for stage %s", s->title);
    pt_run_stage_input *in = &s->in[s->n_in++];
    in->role = strdup(role);
    in->flag = flag ? strdup(flag) : NULL;
    in->arg = arg ? strdup(arg) : NULL;
    in->file = strdup(file);
    in->optional = optional;
    in->from = from;
    if (!in->role || !in->file || (flag && !in->flag) || (arg && !in->arg)) return pt_error(PT_ERR_OOM, "out of memory");
    return PT_OK;
}

static pt_status add_output(pt_run_stage *s, const char *path, bool optional) {
    if (s->n_out >= PT_RUN_MAX_OUTPUTS) return pt_error(PT_ERR_INTERNAL, "too many outputs for stage %s", s->title);
    if (!(s->out[s->n_out].path = strdup(path))) return pt_error(PT_ERR_OOM, "out of memory");
    s->out[s->n_out++].optional = optional;
    return PT_OK;
}

/* The flags and inputs of a recipe section; its parameters go under `key`. */
static pt_status add_opts(pt_run_stage *s, const pt_run_opts *o, const char *key) {
    PT_TRY(pt_run_args_append(&s->argv, &o->args));
    for (int i = 0; i < o->n_in; i++) PT_TRY(add_input(s, o->in[i].role, o->in[i].flag, o->in[i].path, o->in[i].path, false, -1));
    if (o->params && json_object_set(s->params, key, o->params)) return pt_error(PT_ERR_OOM, "out of memory");
    return PT_OK;
}

static pt_status set_param(pt_run_stage *s, const char *key, json_t *v) {
    if (!v || json_object_set_new(s->params, key, v)) return pt_error(PT_ERR_OOM, "out of memory");
    return PT_OK;
}

static pt_status threads_flag(pt_run_stage *s, const char *flag, int threads) {
    if (threads <= 0) return PT_OK;
    return pt_run_args_pushf(&s->argv, "%s=%d", flag, threads);
}

/* The recipe's device, like the threads, is how a stage runs, not what it makes: a flag, not
 * a parameter. */
static pt_status device_flag(pt_run_stage *s, const pt_run_recipe *r) {
    return r->device ? pt_run_args_pushf(&s->argv, "--device=%s", r->device) : PT_OK;
}

static int find(const pt_run_plan *p, pt_run_kind k, const char *instance) {
    for (int i = 0; i < p->n; i++)
        if (p->s[i].kind == k && !strcmp(p->s[i].instance, instance)) return i;
    return -1;
}

static pt_status corpus_stages(pt_run_plan *p, const pt_run_recipe *r, int threads) {
    static const char *sides[2] = {"left", "right"};
    for (int k = 0; k < 2; k++) {
        if (!r->side_used[k]) continue;
        char dir[64], out[128];
        pt_run_stage *s;
        snprintf(dir, sizeof dir, "select-%s", sides[k]);
        PT_TRY(stage_new(p, PT_RUN_SELECT, sides[k], dir, "select", &s));
        s->resumable = true;
        PT_TRY(add_opts(s, &r->corpus, "corpus"));
        PT_TRY(pt_run_args_push(&s->argv, "--target"));
        PT_TRY(pt_run_args_push(&s->argv, sides[k]));
        PT_TRY(add_opts(s, &r->select, "select"));
        PT_TRY(add_opts(s, &r->judge, "judge"));
        PT_TRY(threads_flag(s, "--judge-threads", threads));
        snprintf(out, sizeof out, "%s/selected.jsonl", dir);
        PT_TRY(pt_run_args_push(&s->argv, "--out"));
        PT_TRY(pt_run_args_push(&s->argv, out));
        PT_TRY(add_output(s, out, false));
        PT_TRY(set_param(s, "target", json_string(sides[k])));
        int from = p->n - 1;

        char sel[128];
        snprintf(sel, sizeof sel, "%s", out);
        snprintf(dir, sizeof dir, "synth-%s", sides[k]);
        PT_TRY(stage_new(p, PT_RUN_SYNTH, sides[k], dir, "synth", &s));
        s->resumable = true;
        PT_TRY(add_input(s, "selected", "--in", sel, sel, false, from));
        PT_TRY(add_opts(s, &r->judge, "judge"));
        PT_TRY(threads_flag(s, "--judge-threads", threads));
        snprintf(out, sizeof out, "%s/pairs.jsonl", dir);
        PT_TRY(pt_run_args_push(&s->argv, "--out"));
        PT_TRY(pt_run_args_push(&s->argv, out));
        PT_TRY(add_output(s, out, false));
    }
    return PT_OK;
}

static pt_status pairs_stage(pt_run_plan *p, const pt_run_recipe *r, const pt_run_target *t) {
    char dir[128], out[160], buf[64];
    pt_run_stage *s;
    snprintf(dir, sizeof dir, "pairs-%s", t->name);
    PT_TRY(stage_new(p, PT_RUN_PAIRS, t->name, dir, "run", &s));
    snprintf(out, sizeof out, "%s/pairs.jsonl", dir);
    PT_TRY(pt_run_args_push(&s->argv, "--make-pairs"));
    PT_TRY(pt_run_args_push(&s->argv, "--out"));
    PT_TRY(pt_run_args_push(&s->argv, out));
    PT_TRY(pt_run_args_pushf(&s->argv, "--count=%ld", r->sample));
    PT_TRY(pt_run_args_pushf(&s->argv, "--seed=%llu", (unsigned long long)r->seed));
    char weights[512] = "";
    json_t *mix = json_object();
    if (!mix) return pt_error(PT_ERR_OOM, "out of memory");
    for (int j = 0; j < t->n; j++) {
        size_t n = strlen(weights);
        snprintf(buf, sizeof buf, "%.17g", t->w[j]);
        snprintf(weights + n, sizeof weights - n, "%s%s", j ? "," : "", buf);
        json_object_set_new(mix, t->src[j], json_real(t->w[j]));
    }
    PT_TRY(pt_run_args_pushf(&s->argv, "--weights=%s", weights));
    char held[160];
    snprintf(held, sizeof held, "%s/heldout.jsonl", dir);
    if (r->heldout > 0) {
        PT_TRY(pt_run_args_pushf(&s->argv, "--heldout=%ld", r->heldout));
        PT_TRY(pt_run_args_push(&s->argv, "--heldout-out"));
        PT_TRY(pt_run_args_push(&s->argv, held));
    }
    PT_TRY(set_param(s, "mix", mix));
    PT_TRY(set_param(s, "count", json_integer(r->sample)));
    PT_TRY(set_param(s, "seed", json_integer((json_int_t)r->seed)));
    if (r->heldout > 0) PT_TRY(set_param(s, "heldout", json_integer(r->heldout)));
    for (int j = 0; j < t->n; j++) {
        char role[128];
        snprintf(role, sizeof role, "pairs.%s", t->src[j]);
        if (r->data == PT_RUN_DATA_CORPUS) {
            int from = find(p, PT_RUN_SYNTH, t->src[j]);
            PT_TRY(add_input(s, role, NULL, p->s[from].out[0].path, p->s[from].out[0].path, false, from));
        } else {
            int k = 0;
            while (strcmp(r->source_name[k], t->src[j])) k++;
            PT_TRY(add_input(s, role, NULL, r->source_path[k], r->source_path[k], false, -1));
        }
    }
    PT_TRY(add_output(s, out, false));
    if (r->heldout > 0) PT_TRY(add_output(s, held, false)); /* out[1]: the train stage's eval data */
    return PT_OK;
}

static pt_status train_stage(pt_run_plan *p, const pt_run_recipe *r, const pt_run_target *t, int threads) {
    int from = find(p, PT_RUN_PAIRS, t->name);
    char dir[128], f[200];
    pt_run_stage *s;
    snprintf(dir, sizeof dir, "train-%s", t->name);
    PT_TRY(stage_new(p, PT_RUN_TRAIN, t->name, dir, "train", &s));
    s->resumable = true;
    PT_TRY(add_input(s, "model", "--model", r->model, r->model, false, -1));
    PT_TRY(add_input(s, "data", "--data", p->s[from].out[0].path, p->s[from].out[0].path, false, from));
    if (r->heldout > 0) PT_TRY(add_input(s, "eval_data", "--eval-data", p->s[from].out[1].path, p->s[from].out[1].path, false, from));
    PT_TRY(pt_run_args_push(&s->argv, "--out"));
    PT_TRY(pt_run_args_push(&s->argv, dir));
    PT_TRY(add_opts(s, &r->train, "train"));
    PT_TRY(threads_flag(s, "--threads", threads));
    PT_TRY(device_flag(s, r));
    s->launched = true;
    const char *outs[] = {"adapter_config.json", "adapter_model.safetensors", "metrics.jsonl"};
    for (int i = 0; i < 3; i++) {
        snprintf(f, sizeof f, "%s/%s", dir, outs[i]);
        PT_TRY(add_output(s, f, false));
    }
    if (r->heldout > 0) {
        snprintf(f, sizeof f, "%s/eval_metrics.jsonl", dir);
        PT_TRY(add_output(s, f, false));
    }
    if (r->eval_every > 0) {
        snprintf(f, sizeof f, "%s/compass/compass.json", dir);
        PT_TRY(add_output(s, f, true));
    }
    return PT_OK;
}

static pt_status compass_stage(pt_run_plan *p, const pt_run_recipe *r, const char *label, int train, const char *mode, int threads) {
    char inst[128], dir[160];
    if (r->n_modes > 1) snprintf(inst, sizeof inst, "%s/%s", label, mode);
    else snprintf(inst, sizeof inst, "%s", label);
    snprintf(dir, sizeof dir, "compass-%s", inst);
    for (char *c = dir; *c; c++)
        if (*c == '/') *c = '-';
    pt_run_stage *s;
    PT_TRY(stage_new(p, PT_RUN_COMPASS, inst, dir, "compass", &s));
    PT_TRY(add_input(s, "model", "--model", r->model, r->model, false, -1));
    if (train >= 0) {
        char f[200];
        const char *tdir = p->s[train].dir;
        snprintf(f, sizeof f, "%s/adapter_model.safetensors", tdir);
        PT_TRY(add_input(s, "adapter", "--adapter", tdir, f, false, train));
        snprintf(f, sizeof f, "%s/adapter_config.json", tdir);
        PT_TRY(add_input(s, "adapter_config", NULL, NULL, f, false, train));
    }
    PT_TRY(pt_run_args_pushf(&s->argv, "--mode=%s", mode));
    PT_TRY(pt_run_args_pushf(&s->argv, "--label=%s", inst));
    PT_TRY(add_opts(s, &r->compass, "eval"));
    PT_TRY(threads_flag(s, "--threads", threads));
    PT_TRY(device_flag(s, r));
    s->launched = !strcmp(mode, "logprob"); /* generate mode is not split over ranks */
    PT_TRY(pt_run_args_push(&s->argv, "--out"));
    PT_TRY(pt_run_args_push(&s->argv, dir));
    PT_TRY(set_param(s, "mode", json_string(mode)));
    PT_TRY(set_param(s, "label", json_string(inst)));
    char f[200];
    snprintf(f, sizeof f, "%s/compass.json", dir);
    PT_TRY(add_output(s, f, false));
    return PT_OK;
}

static pt_status report_stage(pt_run_plan *p, const pt_run_recipe *r) {
    pt_run_stage *s;
    PT_TRY(stage_new(p, PT_RUN_REPORT, "", "report", "report", &s));
    PT_TRY(pt_run_args_push(&s->argv, "--out"));
    PT_TRY(pt_run_args_push(&s->argv, "report/report.html"));
    PT_TRY(add_output(s, "report/report.html", false));
    if (r->report_svg) {
        PT_TRY(pt_run_args_push(&s->argv, "--svg"));
        PT_TRY(pt_run_args_push(&s->argv, "report/compass.svg"));
        PT_TRY(add_output(s, "report/compass.svg", false));
    }
    PT_TRY(set_param(s, "svg", json_boolean(r->report_svg)));
    int me = p->n - 1;
    /* final positions first (base, then the targets), then the training trajectories */
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < me; i++) {
            const pt_run_stage *x = &p->s[i];
            char f[300], role[200];
            if (pass == 0 && x->kind == PT_RUN_COMPASS) {
                snprintf(f, sizeof f, "%s/compass.json", x->dir);
                snprintf(role, sizeof role, "compass.%s", x->instance);
                PT_TRY(add_input(s, role, NULL, x->dir, f, false, i));
            } else if (pass == 1 && x->kind == PT_RUN_TRAIN && r->eval_every > 0) {
                char d[200];
                snprintf(d, sizeof d, "%s/compass", x->dir);
                snprintf(f, sizeof f, "%s/compass.json", d);
                snprintf(role, sizeof role, "trajectory.%s", x->instance);
                PT_TRY(add_input(s, role, NULL, d, f, true, i));
            }
        }
    return PT_OK;
}

/* politune dial over one target's adapter (scales) or two targets' (mix): instance the
 * target's name or "mix", directory dial-<instance>. */
static pt_status dial_stage(pt_run_plan *p, const pt_run_recipe *r, int t0, int t1, int threads) {
    char inst[128], dir[160], f[300];
    snprintf(inst, sizeof inst, "%s", t1 < 0 ? r->targets[t0].name : "mix");
    snprintf(dir, sizeof dir, "dial-%s", inst);
    pt_run_stage *s;
    PT_TRY(stage_new(p, PT_RUN_DIAL, inst, dir, "dial", &s));
    s->resumable = true; /* settings done are skipped */
    PT_TRY(add_input(s, "model", "--model", r->model, r->model, false, -1));
    int train[2] = {find(p, PT_RUN_TRAIN, r->targets[t0].name), t1 >= 0 ? find(p, PT_RUN_TRAIN, r->targets[t1].name) : -1};
    if (t1 < 0) {
        snprintf(f, sizeof f, "%s/adapter_model.safetensors", p->s[train[0]].dir);
        PT_TRY(add_input(s, "adapter", "--adapter", p->s[train[0]].dir, f, false, train[0]));
        PT_TRY(pt_run_args_push(&s->argv, "--scales"));
        PT_TRY(pt_run_args_push(&s->argv, r->dial_scales));
    } else {
        char both[300];
        snprintf(both, sizeof both, "%s,%s", p->s[train[0]].dir, p->s[train[1]].dir);
        for (int k = 0; k < 2; k++) {
            char role[64];
            snprintf(role, sizeof role, "adapter.%s", r->targets[k ? t1 : t0].name);
            snprintf(f, sizeof f, "%s/adapter_model.safetensors", p->s[train[k]].dir);
            PT_TRY(add_input(s, role, k ? NULL : "--mix", k ? NULL : both, f, false, train[k]));
        }
        PT_TRY(pt_run_args_push(&s->argv, "--weights"));
        PT_TRY(pt_run_args_push(&s->argv, r->dial_weights));
    }
    PT_TRY(add_opts(s, &r->dial_opts, "dial"));
    /* the questionnaire and scoring the compass stages use */
    for (int i = 0; i < r->compass.n_in; i++)
        if (!strcmp(r->compass.in[i].role, "eval.questionnaire") || !strcmp(r->compass.in[i].role, "eval.scoring"))
            PT_TRY(add_input(s, r->compass.in[i].role, r->compass.in[i].flag, r->compass.in[i].path, r->compass.in[i].path, false, -1));
    PT_TRY(threads_flag(s, "--threads", threads));
    PT_TRY(device_flag(s, r));
    PT_TRY(pt_run_args_push(&s->argv, "--out"));
    PT_TRY(pt_run_args_push(&s->argv, dir));
    const char *outs[] = {"dial.json", "dial.csv", "dial.svg", "dial.html"};
    for (int i = 0; i < 4; i++) {
        snprintf(f, sizeof f, "%s/%s", dir, outs[i]);
        PT_TRY(add_output(s, f, false));
    }
    return PT_OK;
}

/* More than one dial (every target's scales, the mix): `politune dial --combine` draws them on
 * one chart in dials/dials.html, so that the adapters and the mix are compared at a glance. */
static pt_status dials_stage(pt_run_plan *p) {
    int n = 0;
    for (int i = 0; i < p->n; i++) n += p->s[i].kind == PT_RUN_DIAL;
    if (n < 2) return PT_OK;
    const int me = p->n;
    pt_run_stage *s;
    PT_TRY(stage_new(p, PT_RUN_DIAL, "all", "dials", "dial", &s));
    PT_TRY(pt_run_args_push(&s->argv, "--combine"));
    PT_TRY(pt_run_args_push(&s->argv, "--out"));
    PT_TRY(pt_run_args_push(&s->argv, "dials"));
    for (int i = 0; i < me; i++) {
        const pt_run_stage *x = &p->s[i];
        if (x->kind != PT_RUN_DIAL) continue;
        char f[300], role[200];
        snprintf(f, sizeof f, "%s/dial.json", x->dir);
        snprintf(role, sizeof role, "dial.%s", x->instance);
        PT_TRY(add_input(s, role, NULL, x->dir, f, false, i));
    }
    const char *outs[] = {"dials/dials.html", "dials/dials.svg", "dials/dials.csv"};
    for (int i = 0; i < 3; i++) PT_TRY(add_output(s, outs[i], false));
    return PT_OK;
}

pt_status pt_run_plan_build(pt_run_plan *p, const pt_run_recipe *r, int threads) {
    memset(p, 0, sizeof *p);
    pt_status st = PT_OK;
    if (r->data == PT_RUN_DATA_CORPUS) st = corpus_stages(p, r, threads);
    for (int t = 0; t < r->n_targets && !st; t++) st = pairs_stage(p, r, &r->targets[t]);
    for (int t = 0; t < r->n_targets && !st; t++) st = train_stage(p, r, &r->targets[t], threads);
    for (int m = 0; m < r->n_modes && !st; m++) {
        if (r->eval_base) st = compass_stage(p, r, "base", -1, r->modes[m], threads);
        for (int t = 0; t < r->n_targets && !st; t++)
            st = compass_stage(p, r, r->targets[t].name, find(p, PT_RUN_TRAIN, r->targets[t].name), r->modes[m], threads);
    }
    if (!st && r->report) st = report_stage(p, r);
    for (int t = 0; t < r->n_targets && !st && r->dial && r->dial_scales; t++) st = dial_stage(p, r, t, -1, threads);
    if (!st && r->dial && r->dial_mix[0] >= 0) st = dial_stage(p, r, r->dial_mix[0], r->dial_mix[1], threads);
    if (!st && r->dial) st = dials_stage(p);
    if (!st) st = pt_run_args_append(&p->launcher, &r->launcher);
    if (st) pt_run_plan_free(p);
    return st;
}

void pt_run_plan_free(pt_run_plan *p) {
    for (int i = 0; i < p->n; i++) {
        pt_run_stage *s = &p->s[i];
        free(s->instance);
        free(s->title);
        free(s->dir);
        pt_run_args_free(&s->argv);
        for (int j = 0; j < s->n_in; j++) {
            free(s->in[j].role);
            free(s->in[j].flag);
            free(s->in[j].arg);
            free(s->in[j].file);
        }
        for (int j = 0; j < s->n_out; j++) free(s->out[j].path);
        json_decref(s->params);
    }
    free(p->s);
    pt_run_args_free(&p->launcher);
    memset(p, 0, sizeof *p);
}

pt_status pt_run_stage_command(const pt_run_stage *s, const bool *present, const pt_run_args *extra, pt_run_args *out) {
    memset(out, 0, sizeof *out);
    pt_status st = pt_run_args_append(out, &s->argv);
    /* options first, then positional inputs, so that getopt never stops early */
    for (int pass = 0; pass < 2 && !st; pass++) {
        if (pass == 1 && extra) st = pt_run_args_append(out, extra);
        for (int i = 0; i < s->n_in && !st; i++) {
            const pt_run_stage_input *in = &s->in[i];
            if (!in->arg || (present && !present[i]) || (pass == 0) != (in->flag != NULL)) continue;
            if (in->flag) st = pt_run_args_push(out, in->flag);
            if (!st) st = pt_run_args_push(out, in->arg);
        }
    }
    if (st) pt_run_args_free(out);
    return st;
}

pt_status pt_run_stage_launch(const pt_run_plan *p, const pt_run_stage *s, const pt_run_args *cmd, pt_run_args *out) {
    memset(out, 0, sizeof *out);
    if (!s->launched || p->launcher.n == 0) return pt_run_args_append(out, cmd);
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return pt_error(PT_ERR_IO, "cannot find this program's own path (/proc/self/exe) to hand to the launcher");
    exe[n] = 0;
    pt_status st = pt_run_args_append(out, &p->launcher);
    if (!st) st = pt_run_args_push(out, exe);
    for (int i = 1; i < cmd->n && !st; i++) st = pt_run_args_push(out, cmd->v[i]);
    if (st) pt_run_args_free(out);
    return st;
}
