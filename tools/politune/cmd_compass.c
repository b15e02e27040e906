/* politune compass: put the Political Compass Test (or another questionnaire) to a model and
 * write the result directory (compass.json, pc.csv, prompts.csv, compass.svg). */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "commands.h"
#include "eval/compass.h"
#include "util/clock.h"

static const char *usage =
    "usage: politune compass --model PATH [--adapter DIR] [--mode logprob|generate] [--samples K]\n"
    "                        [--templates all|ID,...] --out DIR [options]\n\n"
    "Asks the model every questionnaire item under several prompt templates in both option orders,\n"
    "reads its answers and scores them. Writes DIR/compass.json (everything), DIR/pc.csv (iteration,\n"
    "step, one answer per item), DIR/prompts.csv (open-ended replies) and DIR/compass.svg; results of\n"
    "later runs into the same DIR are appended (the chart then shows one point per model/adapter and\n"
    "trajectories). Prints a one-line JSON summary.\n\n"
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
    "  --label NAME          name of this model/adapter on the chart (default: adapter or model file name)\n"
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
    "                        label tokens where the labels branch apart) or full (summed label\n"
    "                        log-prob, which favours short labels); see docs/compass.md\n"
    "  --compare-scorings    logprob mode: compute all four scorings and record their answer counts,\n"
    "                        positions and agreement in compass.json (one more prefill per item)\n"
    CLI_GEN_HELP
    "                        (generate mode and open prompts; defaults here are the paper's:\n"
    "                        temperature 0.3, top-k 200, 300 new tokens)\n"
    "  --verbose             progress and timing on stderr\n\n"
    "example:\n"
    "  politune compass --model stories260K.gguf --out runs/base\n"
    "  politune compass --model stories260K.gguf --adapter left-adapter --out runs/base   # adds a point\n";

int cmd_compass(int argc, char **argv) {
    const char *cmd = "compass";
    cli_model_opts mo = {0};
    cli_gen_opts go;
    cli_gen_defaults(&go);
    pt_compass_config cfg = pt_compass_config_default();
    go.p = cfg.gen;
    const char *out = NULL, *label = NULL, *qpath = NULL, *spath = NULL, *open_file = NULL, *system = NULL;
    bool open = true, verbose = false;
    long iteration = 0, step = 0, v;
    static const struct option opts[] = {CLI_MODEL_LONGOPTS, CLI_GEN_LONGOPTS,
                                         {"mode", required_argument, 0, 'M'}, {"samples", required_argument, 0, 'K'},
                                         {"templates", required_argument, 0, 'X'}, {"questionnaire", required_argument, 0, 'Q'},
                                         {"scoring", required_argument, 0, 'R'}, {"out", required_argument, 0, 'o'},
                                         {"label", required_argument, 0, 'L'}, {"iteration", required_argument, 0, 'I'},
                                         {"step", required_argument, 0, 'G'}, {"system", required_argument, 0, 'Y'},
                                         {"open-prompts", required_argument, 0, 'O'}, {"no-open-prompts", no_argument, 0, 'N'},
                                         {"batch", required_argument, 0, 'B'}, {"verbose", no_argument, 0, 'v'},
                                         {"no-prefix-sharing", no_argument, 0, 'P'},
                                         {"option-scoring", required_argument, 0, 1001}, {"compare-scorings", no_argument, 0, 1002},
                                         {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    int opt;
    opterr = 0;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        int r = cli_model_option(&mo, cmd, opt, optarg);
        if (!r) r = cli_gen_option(&go, cmd, opt, optarg);
        if (r < 0) return 2;
        if (r) continue;
        switch (opt) {
        case 'M':
            if (!strcmp(optarg, "logprob")) cfg.mode = PT_COMPASS_LOGPROB;
            else if (!strcmp(optarg, "generate")) cfg.mode = PT_COMPASS_GENERATE;
            else return cli_usage_error(cmd, "--mode is logprob or generate, got '%s'", optarg);
            break;
        case 'K':
            if (!cli_parse_int(optarg, 1, 10000, &v)) return cli_usage_error(cmd, "--samples wants an integer 1..10000, got '%s'", optarg);
            cfg.samples = (int)v;
            break;
        case 'X': cfg.templates = optarg; break;
        case 'Q': qpath = optarg; break;
        case 'R': spath = optarg; break;
        case 'o': out = optarg; break;
        case 'L': label = optarg; break;
        case 'I':
            if (!cli_parse_int(optarg, 0, 1L << 40, &iteration)) return cli_usage_error(cmd, "--iteration wants an integer >= 0, got '%s'", optarg);
            break;
        case 'G':
            if (!cli_parse_int(optarg, 0, 1L << 40, &step)) return cli_usage_error(cmd, "--step wants an integer >= 0, got '%s'", optarg);
            break;
        case 'Y': system = optarg; break;
        case 'O': open_file = optarg; open = true; break;
        case 'N': open = false; break;
        case 'B':
            if (!cli_parse_int(optarg, 1, 64, &v)) return cli_usage_error(cmd, "--batch wants an integer 1..64, got '%s'", optarg);
            cfg.batch = (int)v;
            break;
        case 'v': verbose = true; break;
        case 'P': cfg.no_prefix_sharing = true; break;
        case 1001:
            if (pt_option_scoring_from_name(optarg, &cfg.option_scoring)) return cli_usage_error(cmd, "--option-scoring is number, mean, first or full, got '%s'", optarg);
            break;
        case 1002: cfg.compare_scorings = true; break;
        case 'h': fputs(usage, stdout); return 0;
        default: return cli_usage_error(cmd, "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    if (!mo.model) return cli_usage_error(cmd, "--model PATH is required");
    if (!out) return cli_usage_error(cmd, "--out DIR is required");
    pt_template_variant *vars = NULL;
    int nv = 0;
    pt_status st = pt_templates_select(cfg.templates, &vars, &nv);
    free(vars);
    if (st) return cli_fail(cmd, st);
    if (mo.chat_template && (st = pt_chat_template_from_name(mo.chat_template, &cfg.chat))) return cli_fail(cmd, st);

    /* questionnaire and scoring: given, or the Political Compass Test from the assets */
    char *own_q = NULL, *own_s = NULL;
    if (!qpath && !spath) {
        qpath = own_q = pt_eval_find_asset(PT_PCT_QUESTIONNAIRE);
        spath = own_s = pt_eval_find_asset(PT_PCT_SCORING);
        if (!qpath || !spath) {
            fprintf(stderr, "politune %s: the Political Compass files (%s, %s) were not found under $POLITUNE_ASSETS or ../shared/assets; "
                            "give --questionnaire and --scoring\n", cmd, PT_PCT_QUESTIONNAIRE, PT_PCT_SCORING);
            free(own_q);
            free(own_s);
            return 1;
        }
    } else if (!qpath || !spath) {
        return cli_usage_error(cmd, "--questionnaire and --scoring go together");
    }
    pt_questionnaire *q = NULL;
    pt_scoring *s = NULL;
    pt_model *m = NULL;
    pt_adapter *a = NULL;
    pt_compass_result *res = NULL;
    char **oids = NULL, **otexts = NULL;
    int n_open = 0, rc = 0;
    if (!st) st = pt_questionnaire_load(&q, qpath);
    if (!st) st = pt_scoring_load(&s, spath, q);
    if (!st) st = pt_scoring_check(s, q);
    if (!st && open) {
        if (open_file) {
            st = pt_open_prompts_load(open_file, &oids, &otexts, &n_open);
            cfg.open_prompt_ids = (const char *const *)oids;
            cfg.open_prompts = (const char *const *)otexts;
        } else {
            n_open = pt_open_prompts_default(&cfg.open_prompt_ids, &cfg.open_prompts);
        }
        cfg.n_open_prompts = n_open;
    }
    double t0 = pt_now_s();
    if (!st) {
        pt_device dev = PT_DEVICE_AUTO;
        const char *name = mo.device ? mo.device : getenv("POLITUNE_DEVICE");
        if (name && *name) st = pt_device_parse(name, &dev);
        if (!st) st = pt_backend_select(dev);
    }
    if (!st) {
        pt_backend_set_threads(mo.threads);
        st = pt_model_load(&m, mo.model);
    }
    if (!st && mo.adapter) st = pt_adapter_load(&a, mo.adapter, m);
    double t_load = pt_now_s() - t0;
    if (!st) {
        int32_t stop_buf[16];
        static const int32_t no_stop[1] = {-1};
        cli_gen_finish(&go, m, stop_buf, 16);
        if (!go.stop_at_eos) { go.p.stop_ids = no_stop; go.p.n_stop_ids = 0; }
        cfg.gen = go.p;
        cfg.n_ctx = mo.ctx;
        cfg.system = system;
        t0 = pt_now_s();
        st = pt_compass_run(m, a, q, s, &cfg, &res);
    }
    double t_run = pt_now_s() - t0;
    if (!st) {
        pt_compass_meta meta = {label, mo.model, mo.adapter, qpath, spath, iteration, step};
        st = pt_compass_save(out, res, &meta);
    }
    if (st) {
        rc = cli_fail(cmd, st);
    } else {
        if (verbose)
            fprintf(stderr, "[compass: %s mode, %d items x %d templates, chat template %s; load %.2f s, run %.2f s; %ld prefills (%ld tokens), "
                            "%ld option tokens in %ld passes, %ld generated tokens]\n",
                    cfg.mode == PT_COMPASS_LOGPROB ? "logprob" : "generate", res->n_items, res->n_variants, res->chat_template, t_load, t_run,
                    res->n_prefills, res->prefill_tokens, res->option_tokens, res->option_forwards, res->generated_tokens);
        printf("{\"out\":");
        cli_json_string(stdout, out);
        printf(",\"mode\":\"%s\",\"templates\":%d", cfg.mode == PT_COMPASS_LOGPROB ? "logprob" : "generate", res->n_variants);
        for (int x = 0; x < s->n_axes; x++) {
            printf(",");
            cli_json_string(stdout, s->axes[x].name);
            if (res->n_positioned == 0) printf(":null");
            else printf(":{\"mean\":%.*f,\"sd\":%.*f}", s->axes[x].decimals + 1, res->mean[x], s->axes[x].decimals + 1, res->sd[x]);
        }
        printf(",\"answered\":%d,\"invalid_rate\":%.4f,\"refusal_rate\":%.4f,\"seconds\":%.2f}\n", res->consensus_answered, res->invalid_rate,
               res->refusal_rate, t_run);
    }
    pt_compass_result_free(res);
    pt_adapter_free(a);
    pt_model_free(m);
    pt_scoring_free(s);
    pt_questionnaire_free(q);
    for (int i = 0; open_file && i < n_open; i++) { free(oids[i]); free(otexts[i]); }
    free(oids);
    free(otexts);
    free(own_q);
    free(own_s);
    return rc;
}
