/* politune annotate-eval: how well the judge's ideology scores agree with known labels
 * (src/data/annotate.c). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli_judge.h"
#include "commands.h"
#include "util/file.h"

static const char *usage_text =
    "usage: politune annotate-eval --in FILE --text-field NAME --label-field NAME\n"
    "                              (--judge URL | --judge-model PATH) --out FILE [options]\n"
    "       politune annotate-eval --in FILE --label-field NAME --score-field NAME   (scores already there)\n\n"
    "Measures agreement of the judge's ideology scores (1 left .. 5 neutral .. 9 right) with known\n"
    "labels: accuracy and confusion matrix over left / center / right (a score within --band of 5 is\n"
    "center), and ROC AUC of right against left. Test beds: the senator tweets (party D/R) and the\n"
    "BABE sentences (outlet leaning in 'type'). Scores go to --out (resumable); the metrics are\n"
    "printed as JSON on stdout (and to --metrics FILE).\n\n"
    "options:\n"
    "  --in FILE              labelled records: CSV or JSONL\n"
    "  --text-field NAME      the text to score (default 'text')\n"
    "  --label-field NAME     the known label\n"
    "  --left LIST            labels meaning left (default 'left,D,Democrat,Democratic,liberal,progressive')\n"
    "  --right LIST           labels meaning right (default 'right,R,Republican,conservative')\n"
    "  --center LIST          labels meaning center (default 'center,centre,neutral,I,Independent')\n"
    "  --score-field NAME     take scores from this field instead of asking a judge\n"
    "  --band B               half-width of the center class around 5 (default 0.5)\n"
    "  --out FILE             scores, JSONL (appended to; resumed)\n"
    "  --metrics FILE         also write the metrics JSON here\n"
    "  --format csv|jsonl, --delimiter C, --limit N, --restart, --window N, --prompts DIR, --quiet\n"
    "                         as for select\n\n" CLI_JUDGE_HELP;

int cmd_annotate_eval(int argc, char **argv) {
    const char *cmd = "annotate-eval";
    cli_judge jo;
    cli_judge_defaults(&jo);
    pt_read_opts ro = {.text_field = "text"};
    pt_annotate_opts ao = {.left_labels = "left,D,Democrat,Democratic,liberal,progressive",
                           .right_labels = "right,R,Republican,conservative",
                           .center_labels = "center,centre,neutral,I,Independent",
                           .band = 0.5};
    pt_stage_io io = {0};
    const char *in = NULL, *prompts_dir = NULL, *metrics = NULL;
    bool quiet = false;
    long v;
    double f;
    static const struct option longopts[] = {
        CLI_JUDGE_LONGOPTS,
        {"in", required_argument, 0, 1},          {"text-field", required_argument, 0, 2}, {"label-field", required_argument, 0, 3},
        {"left", required_argument, 0, 4},        {"right", required_argument, 0, 5},      {"center", required_argument, 0, 6},
        {"score-field", required_argument, 0, 7}, {"band", required_argument, 0, 8},       {"out", required_argument, 0, 9},
        {"metrics", required_argument, 0, 10},    {"format", required_argument, 0, 11},    {"delimiter", required_argument, 0, 12},
        {"limit", required_argument, 0, 13},      {"restart", no_argument, 0, 14},         {"window", required_argument, 0, 15},
        {"prompts", required_argument, 0, 16},    {"quiet", no_argument, 0, 17},           {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        int r = cli_judge_option(&jo, cmd, c, optarg);
        if (r < 0) return 2;
        if (r) continue;
        switch (c) {
        case 1: in = optarg; break;
        case 2: ro.text_field = optarg; break;
        case 3: ao.label_field = optarg; break;
        case 4: ao.left_labels = optarg; break;
        case 5: ao.right_labels = optarg; break;
        case 6: ao.center_labels = optarg; break;
        case 7: ao.score_field = optarg; break;
        case 8:
            if (!cli_parse_float(optarg, &f) || f < 0 || f > 4) return cli_usage_error(cmd, "--band wants 0..4, got '%s'", optarg);
            ao.band = f;
            break;
        case 9: io.out = optarg; break;
        case 10: metrics = optarg; break;
        case 11:
            if (!strcmp(optarg, "csv")) ro.format = PT_FMT_CSV;
            else if (!strcmp(optarg, "jsonl")) ro.format = PT_FMT_JSONL;
            else return cli_usage_error(cmd, "--format wants csv or jsonl, got '%s'", optarg);
            break;
        case 12:
            if (strlen(optarg) != 1 && strcmp(optarg, "\\t")) return cli_usage_error(cmd, "--delimiter wants one character, got '%s'", optarg);
            ro.delim = strcmp(optarg, "\\t") ? optarg[0] : '\t';
            break;
        case 13:
            if (!cli_parse_int(optarg, 1, 1L << 40, &v)) return cli_usage_error(cmd, "--limit wants a positive integer, got '%s'", optarg);
            ro.limit = v;
            break;
        case 14: io.restart = true; break;
        case 15:
            if (!cli_parse_int(optarg, 1, 1 << 16, &v)) return cli_usage_error(cmd, "--window wants 1..65536, got '%s'", optarg);
            io.window = (int)v;
            break;
        case 16: prompts_dir = optarg; break;
        case 17: quiet = true; break;
        case 'h': fputs(usage_text, stdout); return 0;
        default: return cli_usage_error(cmd, "unknown option");
        }
    }
    if (optind < argc) return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    if (!in) return cli_usage_error(cmd, "--in FILE is required");
    if (!ao.label_field) return cli_usage_error(cmd, "--label-field NAME is required");
    if (!ao.score_field && !io.out) return cli_usage_error(cmd, "--out FILE is required (or --score-field NAME)");
    if (ao.score_field) ro.keep_dups = true; /* scored records are counted as they are */

    pt_prompts prompts;
    pt_status st = pt_prompts_load(&prompts, prompts_dir);
    if (st) return cli_fail(cmd, st);
    ao.prompts = &prompts;
    pt_recordset rs;
    if ((st = pt_records_load(&rs, in, &ro))) {
        pt_prompts_free(&prompts);
        return cli_fail(cmd, st);
    }
    int rc = ao.score_field ? 0 : cli_judge_open(&jo, cmd);
    if (rc) {
        pt_records_free(&rs);
        pt_prompts_free(&prompts);
        return rc;
    }
    pt_stage_hooks h;
    cli_stage_ui ui;
    cli_stage_ui_init(&ui, &h, cmd, quiet);
    pt_stage_summary sum = {0};
    pt_agreement a;
    st = pt_annotate_run(&rs, jo.judge, &ao, &io, &h, &sum, &a);
    cli_stage_ui_finish(&ui, &sum);
    if (!st) {
        json_t *o = pt_agreement_json(&a);
        char *s = json_dumps(o, JSON_INDENT(2) | JSON_REAL_PRECISION(10));
        json_decref(o);
        if (!s) st = pt_error(PT_ERR_OOM, "out of memory");
        else {
            printf("%s\n", s);
            if (metrics) st = pt_file_write_atomic(metrics, s, strlen(s));
            free(s);
        }
        if (!st)
            fprintf(stderr, "politune %s: %d scored, accuracy %.3f, ROC AUC %.3f (%d unlabelled, %d invalid)\n", cmd, a.n, a.accuracy, a.roc_auc,
                    a.n_unlabelled, a.n_invalid);
    }
    rc = st ? cli_fail(cmd, st) : 0;
    cli_judge_close(&jo);
    pt_records_free(&rs);
    pt_prompts_free(&prompts);
    return rc;
}
