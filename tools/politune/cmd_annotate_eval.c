/* politune annotate-eval: how well the judge's ideology scores agree with known labels
 * (src/data/annotate.c). */
#include <stdlib.h>
#include <string.h>

#include "cli_judge.h"
#include "dist/dist.h"
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

/* annotate-eval's own options (the judge's and the stage's are cli_judge.c's). */
typedef struct {
    pt_annotate_opts *o;
    const char **metrics;
} annotate_cli;

static int annotate_option(void *opts, const char *cmd, int c, const char *arg) {
    annotate_cli *a = opts;
    double f;
    switch (c) {
    case 1: a->o->label_field = arg; return 1;
    case 2: a->o->left_labels = arg; return 1;
    case 3: a->o->right_labels = arg; return 1;
    case 4: a->o->center_labels = arg; return 1;
    case 5: a->o->score_field = arg; return 1;
    case 6:
        if (!cli_parse_float(arg, &f) || f < 0 || f > 4) return cli_usage_error(cmd, "--band wants 0..4, got '%s'", arg), -1;
        a->o->band = f;
        return 1;
    case 7: *a->metrics = arg; return 1;
    default: return 0;
    }
}

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
    const cli_option_group groups[] = {{cli_judge_group, &jo}, {cli_stage_group, &so}, {cli_swap_group, &o.swap}, {annotate_option, &(annotate_cli){&o, &metrics}}, {NULL, NULL}};
    int parsed = cli_getopt(cmd, argc, argv, longopts, usage_text, false, groups);
    if (parsed) return parsed == CLI_HELP_SHOWN ? 0 : parsed;
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
    if (!s && pt_dist_rank() == 0) { /* under mpirun every rank has the figures; rank 0 reports */
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
