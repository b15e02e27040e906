/* politune compass: put the Political Compass Test (or another questionnaire) to a model and
 * write the result directory (compass.json, pc.csv, prompts.csv, compass.svg). */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "commands.h"
#include "dist/dist.h"
#include "eval/compass.h"
#include "eval/stats.h"
#include "util/clock.h"

static const char *usage =
    "usage: politune compass --model PATH [--adapter DIR[:SCALE]]... [--mode logprob|generate] [--samples K]\n"
    "                        [--templates all|ID,...] --out DIR [options]\n\n"
    "Asks the model every questionnaire item under several prompt templates in both option orders,\n"
    "reads its answers and scores them. Writes DIR/compass.json (everything), DIR/pc.csv (iteration,\n"
    "step, one answer per item), DIR/prompts.csv (open-ended replies) and DIR/compass.svg; results of\n"
    "later runs into the same DIR are appended (the chart then shows one point per model/adapter and\n"
    "trajectories). Prints a one-line JSON summary. Under mpirun (logprob mode) the ranks split the\n"
    "items and rank 0 writes the same files (docs/distributed.md).\n\n"
    "options:\n" CLI_MODEL_HELP
    "  --mode MODE           logprob (default): probabilities of the answer labels after the prompt,\n"
    "                        deterministic, one prefill per item and template; generate: the model\n"
    "                        replies with an integer and an explanation, parsed (the paper's way)\n"
    "  --samples K           generate mode: replies per item and template, answer = majority (default 1)\n"
    "  --templates SPEC      all (default), or a list of t1..t6 (both option orders), tN-fwd, tN-rev,\n"
    "                        fwd, rev\n"
    "  --questionnaire FILE  items (CSV, JSON or text; default: the Political Compass Test's\n"
    "                        pct_propositions.csv from $POLITUNE_ASSETS or ../shared/assets)\n"
    "  --scoring FILE        scoring file (default: pct_scoring.json beside it)\n"
    "  --out DIR             result directory (required; created if missing)\n"
    "  --label NAME          name of this model/adapter on the chart (default: the adapters as given,\n"
    "                        NAME= or the directory, with scales unless one at 1: left:0.5+right:0.5;\n"
    "                        else the model file name)\n"
    "  --iteration N, --step N  where this evaluation sits in a training run (default 0, 0)\n"
    "  --system TEXT         a system message for every prompt\n"
    "  --open-prompts FILE   open-ended prompts to generate alongside (id<TAB>prompt lines; default: the\n"
    "                        built-in seven, see src/eval/defaults/open_prompts.tsv)\n"
    "  --no-open-prompts     skip the open-ended prompts\n"
    "  --batch N             sequences per forward pass (default 8)\n"
    "  --no-prefix-sharing   logprob mode: prefill the prompt once per option instead of once per\n"
    "                        item (same numbers, about 4x the work; a benchmark baseline)\n"
    "  --option-scoring S    logprob mode: number (default; the options numbered 0-3 in the prompt,\n"
    "                        the number token scored), mean (label log-prob per token), first (the\n"
    "                        label tokens where the labels branch apart), full (summed label\n"
    "                        log-prob, which favours short labels) or reply (no option listed, so\n"
    "                        no position cue; each option scored as a whole reply, \"I strongly\n"
    "                        disagree with this statement.\", by its mean log-prob per token; one\n"
    "                        variant per template); see docs/compass.md\n"
    "  --compare-scorings    logprob mode: compute all five scorings and record their answer counts,\n"
    "                        positions and agreement in compass.json (one more prefill per item\n"
    "                        and kind of prompt)\n"
    CLI_GEN_HELP
    "                        (generate mode and open prompts; defaults here are the paper's:\n"
    "                        temperature 0.3, top-k 200, 300 new tokens)\n"
    "  --resamples N         bootstrap resamples for the 95% interval of the position (default 2000)\n"
    "                        (--seed also seeds the bootstrap: the same seed gives the same interval)\n"
    "  --shard I/N           run part I of N (0 <= I < N; logprob mode) for a job array: writes only\n"
    "                        DIR/compass-part-I-of-N.json; --merge then makes the result\n"
    "  --merge DIR           instead of running: read the N parts in DIR (same options as the parts)\n"
    "                        and write what one process writes into --out\n"
    "  --verbose             progress and timing on stderr\n\n"
    "example:\n"
    "  politune compass --model stories260K.gguf --out runs/base\n"
    "  politune compass --model stories260K.gguf --adapter left-adapter --out runs/base   # adds a point\n";

/* Everything the command line sets. */
typedef struct {
    cli_model_opts mo;
    cli_gen_opts go;
    pt_compass_config cfg;
    const char *out, *label, *qpath, *spath, *open_file, *system;
    const char *merge;  /* --merge DIR, or NULL */
    int shard_i, shard_n; /* --shard I/N; shard_n 0: the whole run */
    bool open, verbose;
    long iteration, step;
    int resamples;
    uint64_t seed;     /* the bootstrap's: the sampling seed */
} compass_args;

/* The command's own options; a new one needs a row here and a case in compass_option. */
enum { OPT_MODE = 1000, OPT_SAMPLES, OPT_TEMPLATES, OPT_QUESTIONNAIRE, OPT_SCORING, OPT_OUT, OPT_LABEL, OPT_ITERATION, OPT_STEP,
       OPT_SYSTEM, OPT_OPEN_PROMPTS, OPT_NO_OPEN_PROMPTS, OPT_BATCH, OPT_VERBOSE, OPT_NO_PREFIX_SHARING, OPT_RESAMPLES,
       OPT_OPTION_SCORING, OPT_COMPARE_SCORINGS, OPT_SHARD, OPT_MERGE, OPT_HELP };

static const struct option compass_opts[] = {CLI_MODEL_LONGOPTS, CLI_GEN_LONGOPTS,
                                             {"mode", required_argument, 0, OPT_MODE},
                                             {"samples", required_argument, 0, OPT_SAMPLES},
                                             {"templates", required_argument, 0, OPT_TEMPLATES},
                                             {"questionnaire", required_argument, 0, OPT_QUESTIONNAIRE},
                                             {"scoring", required_argument, 0, OPT_SCORING},
                                             {"out", required_argument, 0, OPT_OUT},
                                             {"label", required_argument, 0, OPT_LABEL},
                                             {"iteration", required_argument, 0, OPT_ITERATION},
                                             {"step", required_argument, 0, OPT_STEP},
                                             {"system", required_argument, 0, OPT_SYSTEM},
                                             {"open-prompts", required_argument, 0, OPT_OPEN_PROMPTS},
                                             {"no-open-prompts", no_argument, 0, OPT_NO_OPEN_PROMPTS},
                                             {"batch", required_argument, 0, OPT_BATCH},
                                             {"verbose", no_argument, 0, OPT_VERBOSE},
                                             {"no-prefix-sharing", no_argument, 0, OPT_NO_PREFIX_SHARING},
                                             {"resamples", required_argument, 0, OPT_RESAMPLES},
                                             {"option-scoring", required_argument, 0, OPT_OPTION_SCORING},
                                             {"compare-scorings", no_argument, 0, OPT_COMPARE_SCORINGS},
                                             {"shard", required_argument, 0, OPT_SHARD},
                                             {"merge", required_argument, 0, OPT_MERGE},
                                             {"help", no_argument, 0, OPT_HELP},
                                             {0, 0, 0, 0}};

/* One of the command's own options: 0 when taken, else the exit status (-1: --help shown). */
static int compass_option(compass_args *a, const char *cmd, int opt, const char *arg, const char *as_given) {
    long v;
    switch (opt) {
    case OPT_MODE:
        if (!strcmp(arg, "logprob")) a->cfg.mode = PT_COMPASS_LOGPROB;
        else if (!strcmp(arg, "generate")) a->cfg.mode = PT_COMPASS_GENERATE;
        else return cli_usage_error(cmd, "--mode is logprob or generate, got '%s'", arg);
        return 0;
    case OPT_SAMPLES:
        if (!cli_parse_int(arg, 1, 10000, &v)) return cli_usage_error(cmd, "--samples wants an integer 1..10000, got '%s'", arg);
        a->cfg.samples = (int)v;
        return 0;
    case OPT_TEMPLATES: a->cfg.templates = arg; return 0;
    case OPT_QUESTIONNAIRE: a->qpath = arg; return 0;
    case OPT_SCORING: a->spath = arg; return 0;
    case OPT_OUT: a->out = arg; return 0;
    case OPT_LABEL: a->label = arg; return 0;
    case OPT_ITERATION:
        if (!cli_parse_int(arg, 0, 1L << 40, &a->iteration)) return cli_usage_error(cmd, "--iteration wants an integer >= 0, got '%s'", arg);
        return 0;
    case OPT_STEP:
        if (!cli_parse_int(arg, 0, 1L << 40, &a->step)) return cli_usage_error(cmd, "--step wants an integer >= 0, got '%s'", arg);
        return 0;
    case OPT_SYSTEM: a->system = arg; return 0;
    case OPT_OPEN_PROMPTS: a->open_file = arg; a->open = true; return 0;
    case OPT_NO_OPEN_PROMPTS: a->open = false; return 0;
    case OPT_BATCH:
        if (!cli_parse_int(arg, 1, 64, &v)) return cli_usage_error(cmd, "--batch wants an integer 1..64, got '%s'", arg);
        a->cfg.batch = (int)v;
        return 0;
    case OPT_VERBOSE: a->verbose = true; return 0;
    case OPT_NO_PREFIX_SHARING: a->cfg.no_prefix_sharing = true; return 0;
    case OPT_RESAMPLES:
        return cli_parse_resamples(cmd, arg, &a->resamples);
    case OPT_OPTION_SCORING:
        if (pt_option_scoring_from_name(arg, &a->cfg.option_scoring))
            return cli_usage_error(cmd, "--option-scoring is number, mean, first, full or reply, got '%s'", arg);
        return 0;
    case OPT_COMPARE_SCORINGS: a->cfg.compare_scorings = true; return 0;
    case OPT_SHARD: {
        char *slash = strchr(arg, '/');
        long n = 0;
        if (slash) *slash = 0;
        const bool ok = slash && cli_parse_int(arg, 0, 1 << 20, &v) && cli_parse_int(slash + 1, 1, 1 << 20, &n) && v < n;
        if (slash) *slash = '/';
        if (!ok) return cli_usage_error(cmd, "--shard wants I/N with 0 <= I < N, got '%s'", arg);
        a->shard_i = (int)v, a->shard_n = (int)n;
        return 0;
    }
    case OPT_MERGE: a->merge = arg; return 0;
    case OPT_HELP: fputs(usage, stdout); return -1;
    default: return cli_usage_error(cmd, "unknown or incomplete option '%s'", as_given);
    }
}

/* Parses argv into a; 0 to go on, else the exit status. */
static int compass_parse(compass_args *a, const char *cmd, int argc, char **argv) {
    memset(a, 0, sizeof *a);
    cli_gen_defaults(&a->go);
    a->cfg = pt_compass_config_default();
    a->go.p = a->cfg.gen;
    a->open = true;
    a->resamples = PT_STATS_RESAMPLES;
    a->seed = PT_STATS_SEED;
    int opt;
    opterr = 0;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "", compass_opts, NULL)) != -1) {
        int r = cli_model_option(&a->mo, cmd, opt, optarg);
        if (!r) r = cli_gen_option(&a->go, cmd, opt, optarg);
        if (r < 0) return 2;
        if (r) continue;
        r = compass_option(a, cmd, opt, optarg, argv[optind - 1]);
        if (r) return r;
    }
    if (optind < argc) return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    if (!a->mo.model) return cli_usage_error(cmd, "--model PATH is required");
    if (!a->out) return cli_usage_error(cmd, "--out DIR is required");
    if ((a->qpath != NULL) != (a->spath != NULL)) return cli_usage_error(cmd, "--questionnaire and --scoring go together");
    if (a->shard_n && a->merge) return cli_usage_error(cmd, "--shard runs a part and --merge combines them: one or the other");
    if ((a->shard_n || a->merge) && a->cfg.mode != PT_COMPASS_LOGPROB)
        return cli_usage_error(cmd, "--shard and --merge split logprob mode only (generate mode runs as one process)");
    /* one seed for the whole evaluation: the sampling's (--seed) also seeds the bootstrap */
    a->seed = a->go.p.sampling.seed;
    return 0;
}

/* The questionnaire and scoring given, or the Political Compass Test from the assets; the
 * paths found are malloc'd into own_q / own_s. */
static pt_status load_instrument(compass_args *a, char **own_q, char **own_s, pt_questionnaire **q, pt_scoring **s) {
    if (!a->qpath) {
        a->qpath = *own_q = pt_eval_find_asset(PT_PCT_QUESTIONNAIRE);
        a->spath = *own_s = pt_eval_find_asset(PT_PCT_SCORING);
        if (!a->qpath || !a->spath)
            return pt_error(PT_ERR_IO, "the Political Compass files (%s, %s) were not found under $POLITUNE_ASSETS or ../shared/assets; "
                                       "give --questionnaire and --scoring", PT_PCT_QUESTIONNAIRE, PT_PCT_SCORING);
    }
    PT_TRY(pt_questionnaire_load(q, a->qpath));
    PT_TRY(pt_scoring_load(s, a->spath, *q));
    return pt_scoring_check(*s, *q);
}

/* The one-line JSON summary on stdout. */
static void print_summary(const compass_args *a, const pt_scoring *s, const pt_compass_result *res, double seconds) {
    printf("{\"out\":");
    cli_json_string(stdout, a->out);
    printf(",\"mode\":\"%s\",\"templates\":%d", a->cfg.mode == PT_COMPASS_LOGPROB ? "logprob" : "generate", res->n_variants);
    for (int x = 0; x < s->n_axes; x++) {
        printf(",");
        cli_json_string(stdout, s->axes[x].name);
        if (res->n_positioned == 0) printf(":null");
        else printf(":{\"mean\":%.*f,\"sd\":%.*f}", s->axes[x].decimals + 1, res->mean[x], s->axes[x].decimals + 1, res->sd[x]);
    }
    printf(",\"answered\":%d,\"invalid_rate\":%.4f,\"refusal_rate\":%.4f,\"seconds\":%.2f}\n", res->consensus_answered, res->invalid_rate,
           res->refusal_rate, seconds);
}

int cmd_compass(int argc, char **argv) {
    const char *cmd = "compass";
    compass_args a;
    int rc = compass_parse(&a, cmd, argc, argv);
    if (rc) return rc < 0 ? 0 : rc;
    /* under mpirun/srun the ranks share the items (logprob mode); rank 0 writes */
    pt_status st = pt_dist_init();
    if (st) return cli_fail(cmd, st);
    pt_compass_config *cfg = &a.cfg;
    pt_template_variant *vars = NULL;
    int nv = 0;
    st = pt_templates_select(cfg->templates, &vars, &nv);
    free(vars);
    if (st) return cli_fail(cmd, st);
    if (cfg->mode == PT_COMPASS_GENERATE && cfg->option_scoring == PT_OPTION_REPLY)
        return cli_usage_error(cmd, "--option-scoring reply is for logprob mode; generate mode reads the answer from free text");
    if (a.mo.chat_template && (st = pt_chat_template_from_name(a.mo.chat_template, &cfg->chat))) return cli_fail(cmd, st);

    char *own_q = NULL, *own_s = NULL;
    pt_questionnaire *q = NULL;
    pt_scoring *s = NULL;
    pt_model *m = NULL;
    pt_adapter *loaded[PT_ENGINE_MAX_ADAPTERS] = {0};
    float scales[PT_ENGINE_MAX_ADAPTERS];
    pt_compass_result *res = NULL;
    char **oids = NULL, **otexts = NULL;
    int n_open = 0;
    st = load_instrument(&a, &own_q, &own_s, &q, &s);
    if (!st && a.open) {
        if (a.open_file) {
            st = pt_open_prompts_load(a.open_file, &oids, &otexts, &n_open);
            cfg->open_prompt_ids = (const char *const *)oids;
            cfg->open_prompts = (const char *const *)otexts;
        } else {
            n_open = pt_open_prompts_default(&cfg->open_prompt_ids, &cfg->open_prompts);
        }
        cfg->n_open_prompts = n_open;
    }
    double t0 = pt_now_s();
    if (!st) st = cli_backend_configure(a.mo.device, a.mo.precision);
    if (!st) {
        pt_backend_set_threads(a.mo.threads);
        st = pt_model_load(&m, a.mo.model);
    }
    if (!st && (rc = cli_adapters_load(cmd, &a.mo, m, loaded, scales))) st = PT_ERR_ARG; /* message printed */
    cfg->n_adapters = a.mo.n_adapters;
    cfg->adapters = (const pt_adapter *const *)loaded;
    cfg->adapter_scales = scales;
    pt_steer *steer = NULL;
    bool *steer_layers = NULL;
    if (!st && a.mo.steer && (rc = cli_steer_load(cmd, a.mo.steer, m, &steer, &cfg->steer_scale, &steer_layers))) st = PT_ERR_ARG;
    cfg->steer = steer;
    cfg->steer_layers = steer_layers;
    double t_load = pt_now_s() - t0;
    if (!st) {
        int32_t stop_buf[16];
        static const int32_t no_stop[1] = {-1};
        cli_gen_finish(&a.go, m, stop_buf, 16);
        if (!a.go.stop_at_eos) { a.go.p.stop_ids = no_stop; a.go.p.n_stop_ids = 0; }
        cfg->gen = a.go.p;
        cfg->n_ctx = a.mo.ctx;
        cfg->system = a.system;
        t0 = pt_now_s();
        if (a.shard_n && pt_dist_size() > 1)
            st = pt_error(PT_ERR_ARG, "--shard is for separate processes; under mpirun the ranks split the items by themselves");
        else if (a.shard_n) st = pt_compass_part_write(m, NULL, q, s, cfg, a.shard_i, a.shard_n, a.out);
        else if (a.merge) st = pt_compass_part_merge(m, q, s, cfg, a.merge, &res);
        else st = pt_compass_run(m, NULL, q, s, cfg, &res);
    }
    double t_run = pt_now_s() - t0;
    if (!st && a.shard_n) { /* a part: its file, no result yet */
        char *name = pt_compass_part_name(a.shard_i, a.shard_n);
        printf("{\"out\":");
        cli_json_string(stdout, a.out);
        printf(",\"part\":%d,\"of\":%d,\"file\":", a.shard_i, a.shard_n);
        cli_json_string(stdout, name ? name : "");
        printf(",\"seconds\":%.2f}\n", t_run);
        free(name);
    }
    if (!st && !a.shard_n) {
        /* the default label names the adapters as given (NAME=DIR, scales), not the path */
        char *label = a.label ? NULL : cli_adapters_label(&a.mo);
        pt_compass_meta meta = {a.label ? a.label : label, a.mo.model, a.mo.adapter, a.qpath, a.spath, a.iteration, a.step, a.resamples, a.seed};
        st = pt_dist_agree(pt_dist_rank() == 0 ? pt_compass_save(a.out, res, &meta) : PT_OK);
        free(label);
    }
    if (st) {
        if (!rc) rc = cli_fail(cmd, st);
    } else if (pt_dist_rank() == 0 && !a.shard_n) {
        if (a.verbose)
            fprintf(stderr, "[compass: %s mode, %d items x %d templates, chat template %s; load %.2f s, run %.2f s; %ld prefills (%ld tokens), "
                            "%ld option tokens in %ld passes, %ld generated tokens]\n",
                    cfg->mode == PT_COMPASS_LOGPROB ? "logprob" : "generate", res->n_items, res->n_variants, res->chat_template, t_load, t_run,
                    res->n_prefills, res->prefill_tokens, res->option_tokens, res->option_forwards, res->generated_tokens);
        print_summary(&a, s, res, t_run);
    }
    pt_compass_result_free(res);
    for (int i = 0; i < a.mo.n_adapters; i++) pt_adapter_free(loaded[i]);
    pt_steer_free(steer);
    free(steer_layers);
    pt_model_free(m);
    pt_scoring_free(s);
    pt_questionnaire_free(q);
    for (int i = 0; a.open_file && i < n_open; i++) { free(oids[i]); free(otexts[i]); }
    free(oids);
    free(otexts);
    free(own_q);
    free(own_s);
    return rc;
}
