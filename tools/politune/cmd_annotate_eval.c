/* politune annotate-eval: how well the judge's ideology scores agree with known labels
 * (src/data/annotate.c). */
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
    "  --label-field NAME     the known label ('a.b' reaches into nested objects)\n"
    "  --left LIST            labels meaning left (default 'left,D,Democrat,Democratic,liberal,progressive')\n"
    "  --right LIST           labels meaning right (default 'right,R,Republican,conservative')\n"
    "  --center LIST          labels meaning center (default 'center,centre,neutral,I,Independent')\n"
    "  --score-field NAME     take scores from this field instead of asking a judge\n"
    "  --band B               half-width of the center class around 5 (default 0.5)\n"
    "  --metrics FILE         also write the metrics JSON here\n" CLI_READ_HELP CLI_STAGE_HELP CLI_SWAP_HELP "\n" CLI_JUDGE_HELP;

int cmd_annotate_eval(int argc, char **argv) {
    const char *cmd = "annotate-eval";
    cli_judge jo;
    cli_judge_defaults(&jo);
    cli_stage_opts so = {.read.text_field = "text"};
    pt_annotate_opts o = {.left_labels = "left,D,Democrat,Democratic,liberal,progressive",
                          .right_labels = "right,R,Republican,conservative",
                          .center_labels = "center,centre,neutral,I,Independent",
                          .band = 0.5};
    const char *metrics = NULL;
    double f;
    static const struct option longopts[] = {CLI_JUDGE_LONGOPTS,
                                             CLI_STAGE_LONGOPTS,
                                             CLI_SWAP_LONGOPT,
                                             CLI_READ_LONGOPTS,
                                             {"label-field", required_argument, 0, 1},
                                             {"left", required_argument, 0, 2},
                                             {"right", required_argument, 0, 3},
                                             {"center", required_argument, 0, 4},
                                             {"score-field", required_argument, 0, 5},
                                             {"band", required_argument, 0, 6},
                                             {"metrics", required_argument, 0, 7},
                                             {"help", no_argument, 0, 'h'},
                                             {0, 0, 0, 0}};
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        int r = cli_judge_option(&jo, cmd, c, optarg);
        if (!r) r = cli_stage_option(&so, cmd, c, optarg);
        if (!r) r = cli_swap_option(&o.swap, cmd, c, optarg);
        if (r < 0) return 2;
        if (r) continue;
        switch (c) {
        case 1: o.label_field = optarg; break;
        case 2: o.left_labels = optarg; break;
        case 3: o.right_labels = optarg; break;
        case 4: o.center_labels = optarg; break;
        case 5: o.score_field = optarg; break;
        case 6:
            if (!cli_parse_float(optarg, &f) || f < 0 || f > 4) return cli_usage_error(cmd, "--band wants 0..4, got '%s'", optarg);
            o.band = f;
            break;
        case 7: metrics = optarg; break;
        case 'h': fputs(usage_text, stdout); return 0;
        default: return cli_usage_error(cmd, "unknown option");
        }
    }
    if (optind < argc) return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    if (!so.in) return cli_usage_error(cmd, "--in FILE is required");
    if (!o.label_field) return cli_usage_error(cmd, "--label-field NAME is required");
    if (!o.score_field && !so.io.out) return cli_usage_error(cmd, "--out FILE is required (or --score-field NAME)");
    if (o.score_field) so.read.keep_dups = true; /* scored records are counted as they are */

    cli_stage st;
    int rc = cli_stage_open(&st, cmd, &so, &jo, false, !o.score_field);
    if (rc) return rc;
    o.prompts = &st.prompts;
    pt_agreement a;
    pt_status s = pt_annotate_run(&st.rs, jo.judge, &o, &so.io, &st.hooks, &st.sum, &a);
    cli_stage_ui_finish(&st.ui, &st.sum);
    if (!s) {
        json_t *m = pt_agreement_json(&a);
        char *js = json_dumps(m, JSON_INDENT(2) | JSON_REAL_PRECISION(10));
        json_decref(m);
        if (!js) s = pt_error(PT_ERR_OOM, "out of memory");
        else {
            printf("%s\n", js);
            if (metrics) s = pt_file_write_atomic(metrics, js, strlen(js));
            free(js);
        }
        if (!s)
            fprintf(stderr, "politune %s: %d scored, accuracy %.3f [%.3f, %.3f] (left %.3f, center %.3f, right %.3f), ROC AUC %.3f [%.3f, %.3f] "
                            "(%d unlabelled, %d invalid)\n", cmd, a.n, a.accuracy, a.accuracy_lo, a.accuracy_hi, a.class_accuracy[0], a.class_accuracy[1],
                    a.class_accuracy[2], a.roc_auc, a.auc_lo, a.auc_hi, a.n_unlabelled, a.n_invalid);
    }
    return cli_stage_close(&st, cmd, &jo, s);
}
