/* politune dial: the compass at a series of adapter settings (src/eval/dial.h), one adapter
 * scaled or two mixed by weight, with the path drawn through the compass. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "eval/dial.h"
#include "eval/stats.h"
#include "util/file.h"

static const char *usage =
    "usage: politune dial --model PATH (--adapter DIR --scales LIST | --mix LEFT,RIGHT --weights LIST |\n"
    "                     --steer VEC.safetensors[@LAYERS] --scales LIST)\n"
    "                     --out DIR [options]\n"
    "       politune dial --combine DIR DIR... --out DIR [--title TEXT]\n\n"
    "Turns the ideology dial: runs the Political Compass (logprob mode, unbiased 'number' option\n"
    "scoring, every template and option order) at each setting and writes, under DIR,\n"
    "setting-NN/ (one compass result directory per setting), dial.json and dial.csv (per setting\n"
    "its scale(s), economic and social with 95% bootstrap intervals, and the probability-weighted\n"
    "(expected) position), dial.svg (the path through the compass, each point with its interval\n"
    "cross, the expected positions dashed and hollow) and dial.html (that chart, each axis against\n"
    "the dial, the table). A rerun skips the settings already done. Progress goes to stderr, one\n"
    "line per setting.\n\n"
    "--combine draws dials already run (each DIR written by politune dial: an adapter's scales, a\n"
    "left/right mix, a steering vector's scales) on one compass chart, each with its own colour and\n"
    "marker, and writes DIR/dials.html (that chart, a zoomed copy when the points sit close, each\n"
    "axis against each dial's value, one table), dials.svg and dials.csv. Dials measured with\n"
    "another questionnaire, scoring or option scoring than the first are refused.\n\n"
    "settings:\n"
    "  --adapter DIR         the adapter to scale (one)\n"
    "  --scales LIST         its scales, e.g. -1,-0.5,0,0.5,1,1.5 (0: the base model; -1: the\n"
    "                        opposite delta)\n"
    "  --mix LEFT,RIGHT      two adapters mixed: (1 - w) * LEFT + w * RIGHT\n"
    "  --weights LIST        the mix weights w, e.g. 0,0.25,0.5,0.75,1\n"
    "  --steer VEC[@LAYERS]  a steering vector (politune steer build) at these --scales instead of\n"
    "                        an adapter\n"
    "options:\n"
    "  --model PATH          GGUF file or Hugging Face model directory (required)\n"
    "  --out DIR             the dial's directory (required)\n"
    "  --templates LIST      prompt templates (default all; see politune compass --help)\n"
    "  --option-scoring S    number (default), mean, first, full or reply (no option listed)\n"
    "  --questionnaire FILE  with --scoring: another instrument (default: the PCT from the assets)\n"
    "  --scoring FILE\n"
    "  --batch N             sequences per forward pass (default 8)\n"
    "  --resamples N         bootstrap resamples for the intervals (default 2000)\n"
    "  --seed S              the bootstrap's seed (default 0)\n"
    "  --title TEXT          the report's title\n"
    "  --combine             the arguments are dial directories to draw together (see above)\n"
    "  --ppl-text FILE       also the perplexity of this held-out text at each setting (its first 1024\n"
    "                        tokens; steering and large scales cost fluency)\n"
    "  --threads N, --ctx N, --chat-template NAME, --device DEV   as for politune compass\n\n"
    "example:\n"
    "  politune dial --model SmolLM2-135M-Instruct.Q4_1.gguf --adapter runs/demo/train-left/adapter \\\n"
    "      --scales -1,-0.5,0,0.5,1,1.5 --out runs/dial-left\n"
    "  politune dial --combine runs/dial-left runs/dial-mix runs/dial-steer --out runs/dials\n";

enum { OPT_SCALES = 3000, OPT_MIX, OPT_WEIGHTS, OPT_OUT, OPT_TEMPLATES, OPT_SCORING_RULE, OPT_QUESTIONNAIRE, OPT_SCORING, OPT_BATCH,
       OPT_RESAMPLES, OPT_SEED, OPT_TITLE, OPT_PPL, OPT_COMBINE };

typedef struct {
    cli_model_opts mo;
    const char *scales, *mix, *weights, *out, *templates, *option_scoring, *qpath, *spath, *title, *ppl;
    int batch, resamples;
    uint64_t seed;
    bool combine;
} dial_args;

static int dial_option(void *opts, const char *cmd, int opt, const char *arg) {
    dial_args *a = opts;
    long v;
    switch (opt) {
    case OPT_SCALES: a->scales = arg; return 1;
    case OPT_MIX: a->mix = arg; return 1;
    case OPT_WEIGHTS: a->weights = arg; return 1;
    case OPT_OUT: a->out = arg; return 1;
    case OPT_TEMPLATES: a->templates = arg; return 1;
    case OPT_SCORING_RULE: a->option_scoring = arg; return 1;
    case OPT_QUESTIONNAIRE: a->qpath = arg; return 1;
    case OPT_SCORING: a->spath = arg; return 1;
    case OPT_TITLE: a->title = arg; return 1;
    case OPT_PPL: a->ppl = arg; return 1;
    case OPT_COMBINE: a->combine = true; return 1;
    case OPT_BATCH:
        if (!cli_parse_int(arg, 1, 64, &v)) return cli_usage_error(cmd, "--batch wants an integer 1..64, got '%s'", arg), -1;
        a->batch = (int)v;
        return 1;
    case OPT_RESAMPLES: return cli_parse_resamples(cmd, arg, &a->resamples) ? -1 : 1;
    case OPT_SEED: return cli_parse_stats_seed(cmd, arg, &a->seed) ? -1 : 1;
    }
    return 0;
}

static void progress(void *user, int i, int n, bool done, const pt_dial_point *p) {
    const char *name = user;
    if (!done) {
        fprintf(stderr, "politune dial: setting %d/%d (%s %g) ...\n", i + 1, n, name, p->value);
        return;
    }
    fprintf(stderr, "politune dial: setting %d/%d (%s %g)%s: economic %.2f [%.2f, %.2f], social %.2f [%.2f, %.2f]\n", i + 1, n, name, p->value,
            p->resumed ? " already done" : "", p->estimate[0], p->lo[0], p->hi[0], p->n_axes > 1 ? p->estimate[1] : 0.0,
            p->n_axes > 1 ? p->lo[1] : 0.0, p->n_axes > 1 ? p->hi[1] : 0.0);
}

/* --combine DIR...: the dials already run, on one chart. */
static int combine(const char *cmd, const dial_args *a, int n, char **dirs) {
    if (n < 1) return cli_usage_error(cmd, "--combine wants the dial directories to draw, e.g. runs/dial-left runs/dial-steer");
    if (!a->out) return cli_usage_error(cmd, "--out DIR is required");
    if (a->mo.model || a->mo.n_adapters || a->mo.steer || a->mix || a->scales || a->weights || a->ppl || a->templates || a->option_scoring || a->qpath)
        return cli_usage_error(cmd, "--combine reads dials already run: give their directories, --out and --title only");
    pt_status st = pt_dial_combine((const char *const *)dirs, n, a->title, a->out);
    if (st) return cli_fail(cmd, st);
    printf("{\"out\":");
    cli_json_string(stdout, a->out);
    printf(",\"dials\":%d,\"files\":[\"dials.html\",\"dials.svg\",\"dials.csv\"]}\n", n);
    return 0;
}

int cmd_dial(int argc, char **argv) {
    const char *cmd = "dial";
    dial_args a = {0};
    a.resamples = PT_STATS_RESAMPLES;
    a.seed = PT_STATS_SEED;
    static const struct option longopts[] = {CLI_MODEL_LONGOPTS,
                                             {"scales", required_argument, 0, OPT_SCALES},
                                             {"mix", required_argument, 0, OPT_MIX},
                                             {"weights", required_argument, 0, OPT_WEIGHTS},
                                             {"out", required_argument, 0, OPT_OUT},
                                             {"templates", required_argument, 0, OPT_TEMPLATES},
                                             {"option-scoring", required_argument, 0, OPT_SCORING_RULE},
                                             {"questionnaire", required_argument, 0, OPT_QUESTIONNAIRE},
                                             {"scoring", required_argument, 0, OPT_SCORING},
                                             {"batch", required_argument, 0, OPT_BATCH},
                                             {"resamples", required_argument, 0, OPT_RESAMPLES},
                                             {"seed", required_argument, 0, OPT_SEED},
                                             {"title", required_argument, 0, OPT_TITLE},
                                             {"ppl-text", required_argument, 0, OPT_PPL},
                                             {"combine", no_argument, 0, OPT_COMBINE},
                                             {"help", no_argument, 0, 'h'},
                                             {0, 0, 0, 0}};
    cli_option_group groups[] = {{cli_model_group, &a.mo}, {dial_option, &a}, {NULL, NULL}};
    int rc = cli_getopt(cmd, argc, argv, longopts, usage, true, groups);
    if (rc) return rc == CLI_HELP_SHOWN ? 0 : rc;
    if (a.combine) return combine(cmd, &a, argc - optind, argv + optind);
    if (optind < argc) return cli_usage_error(cmd, "unexpected argument '%s' (dial directories go with --combine)", argv[optind]);
    if (!a.mo.model) return cli_usage_error(cmd, "--model PATH is required");
    if (!a.out) return cli_usage_error(cmd, "--out DIR is required");
    bool mix = a.mix != NULL, steer = a.mo.steer != NULL;
    if ((int)mix + (int)steer + (int)(a.mo.n_adapters > 0) != 1)
        return cli_usage_error(cmd, "give one of --adapter DIR with --scales, --mix LEFT,RIGHT with --weights, or --steer VEC with --scales");
    if (steer && (!a.scales || a.weights)) return cli_usage_error(cmd, "--steer VEC goes with --scales LIST");
    if (!mix && !steer && (a.mo.n_adapters != 1 || !a.scales || a.weights))
        return cli_usage_error(cmd, "the scale dial takes one --adapter DIR and --scales LIST (a mix: --mix LEFT,RIGHT --weights LIST)");
    if (mix && (!a.weights || a.scales)) return cli_usage_error(cmd, "--mix LEFT,RIGHT goes with --weights LIST (not --scales)");
    if (!mix && !steer) {
        char *d = NULL;
        float sc;
        if (!pt_adapter_parse_spec(a.mo.adapter_args[0], &d, &sc) && sc != 1.0f) {
            free(d);
            return cli_usage_error(cmd, "--adapter '%s': the dial sets the scale itself (--scales); give the directory alone", a.mo.adapter);
        }
        free(d);
    }
    if ((a.qpath != NULL) != (a.spath != NULL)) return cli_usage_error(cmd, "--questionnaire and --scoring go together");
    pt_compass_config cfg = pt_compass_config_default();
    if (a.templates) cfg.templates = a.templates;
    if (a.batch) cfg.batch = a.batch;
    if (a.option_scoring && pt_option_scoring_from_name(a.option_scoring, &cfg.option_scoring))
        return cli_usage_error(cmd, "--option-scoring is number, mean, first, full or reply, got '%s'", a.option_scoring);
    cfg.n_ctx = a.mo.ctx;

    double *values = NULL;
    int n = 0;
    pt_status st = pt_dial_parse_list(mix ? a.weights : a.scales, mix ? "--weights" : "--scales", &values, &n);
    if (st) return cli_usage_error(cmd, "%s", pt_errmsg());
    /* the adapters: --adapter's one, or --mix's two */
    cli_model_opts ao = a.mo;
    char *mix_copy = NULL;
    if (mix) {
        mix_copy = strdup(a.mix);
        char *comma = mix_copy ? strrchr(mix_copy, ',') : NULL;
        if (!comma || comma == mix_copy || !comma[1]) {
            free(mix_copy);
            free(values);
            return cli_usage_error(cmd, "--mix wants LEFT,RIGHT (two adapter directories), got '%s'", a.mix);
        }
        *comma = 0;
        ao.n_adapters = 2;
        ao.adapter_args[0] = mix_copy;
        ao.adapter_args[1] = comma + 1;
    }
    int na = ao.n_adapters;
    float *scales = malloc(sizeof(float) * (size_t)n * (na ? na : 1));
    pt_steer *vec = NULL;
    bool *vec_layers = NULL;
    char *vec_path = NULL, *ppl_text = NULL;
    char *names[2] = {NULL, NULL}, *paths[2] = {NULL, NULL};
    pt_model *m = NULL;
    pt_adapter *loaded[PT_ENGINE_MAX_ADAPTERS] = {0};
    float given[PT_ENGINE_MAX_ADAPTERS];
    pt_questionnaire *q = NULL;
    pt_scoring *s = NULL;
    char *own_q = NULL, *own_s = NULL;
    pt_dial_point *pts = calloc((size_t)n, sizeof *pts);
    rc = 0;
    if (!scales || !pts) { st = pt_error(PT_ERR_OOM, "out of memory"); goto done; }
    for (int i = 0; i < n; i++) {
        if (mix) scales[(size_t)i * 2] = (float)(1.0 - values[i]), scales[(size_t)i * 2 + 1] = (float)values[i];
        else if (na) scales[i] = (float)values[i];
    }
    for (int k = 0; k < na; k++) {
        float sc;
        char *nm = NULL;
        if ((st = pt_adapter_parse_spec(cli_adapter_strip_name(ao.adapter_args[k], &nm), &paths[k], &sc))) goto done;
        free(nm);
        if (!(names[k] = cli_adapter_name(ao.adapter_args[k]))) { st = pt_error(PT_ERR_OOM, "out of memory"); goto done; }
    }
    if (!a.qpath) {
        a.qpath = own_q = pt_eval_find_asset(PT_PCT_QUESTIONNAIRE);
        a.spath = own_s = pt_eval_find_asset(PT_PCT_SCORING);
        if (!a.qpath || !a.spath) {
            st = pt_error(PT_ERR_IO, "the Political Compass files were not found under $POLITUNE_ASSETS or ../shared/assets; give --questionnaire and --scoring");
            goto done;
        }
    }
    if ((st = pt_questionnaire_load(&q, a.qpath)) || (st = pt_scoring_load(&s, a.spath, q)) || (st = pt_scoring_check(s, q))) goto done;
    if (a.ppl) {
        size_t len = 0;
        if ((st = pt_file_read_all(a.ppl, &ppl_text, &len))) goto done;
    }
    if ((rc = cli_device_select(cmd, a.mo.device))) goto done;
    pt_backend_set_threads(a.mo.threads);
    if (a.mo.chat_template && (st = pt_chat_template_from_name(a.mo.chat_template, &cfg.chat))) goto done;
    if ((st = pt_model_load(&m, a.mo.model))) goto done;
    if ((rc = cli_adapters_load(cmd, &ao, m, loaded, given))) goto done;
    if (steer) {
        float ignored;
        char *layers_text = NULL;
        if ((st = pt_steer_parse_spec(a.mo.steer, &vec_path, &ignored, &layers_text))) goto done;
        free(layers_text);
        if (ignored != 1.0f) { rc = cli_usage_error(cmd, "--steer '%s': the dial sets the scale itself (--scales)", a.mo.steer); goto done; }
        if ((rc = cli_steer_load(cmd, a.mo.steer, m, &vec, &ignored, &vec_layers))) goto done;
    }
    pt_dial_config dc = {.model_path = a.mo.model,
                         .n_adapters = na,
                         .adapters = (const pt_adapter *const *)loaded,
                         .adapter_paths = (const char *const *)paths,
                         .adapter_names = (const char *const *)names,
                         .n_settings = n,
                         .values = values,
                         .scales = scales,
                         .value_name = mix ? "weight" : "scale",
                         .steer = vec,
                         .steer_layers = vec_layers,
                         .steer_path = vec_path,
                         .ppl_text = ppl_text,
                         .title = a.title,
                         .compass = cfg,
                         .resamples = a.resamples,
                         .seed = a.seed,
                         .progress = progress,
                         .user = mix ? "weight" : "scale"};
    if ((st = pt_dial_run(m, q, s, &dc, a.out, pts))) goto done;
    printf("{\"out\":");
    cli_json_string(stdout, a.out);
    printf(",\"dial\":\"%s\",\"settings\":[", mix ? "weight" : "scale");
    for (int i = 0; i < n; i++) {
        printf("%s{\"%s\":%g", i ? "," : "", mix ? "weight" : "scale", values[i]);
        for (int x = 0; x < pts[i].n_axes; x++) {
            printf(",");
            cli_json_string(stdout, s->axes[x].name);
            printf(":%.3f", pts[i].estimate[x]);
        }
        if (ppl_text) printf(",\"perplexity\":%.4f", pts[i].perplexity);
        printf("}");
    }
    printf("]}\n");
done:
    if (st && !rc) rc = cli_fail(cmd, st);
    for (int k = 0; k < na; k++) pt_adapter_free(loaded[k]);
    pt_steer_free(vec);
    free(vec_layers);
    free(vec_path);
    free(ppl_text);
    for (int k = 0; k < 2; k++) { free(names[k]); free(paths[k]); }
    pt_model_free(m);
    pt_scoring_free(s);
    pt_questionnaire_free(q);
    free(own_q);
    free(own_s);
    free(pts);
    free(scales);
    free(values);
    free(mix_copy);
    return rc;
}
