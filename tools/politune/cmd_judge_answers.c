/* politune judge-answers: the judge rates open-ended answers for ideology (src/data/answers.c). */
#include <stdlib.h>

#include "cli_judge.h"
#include "commands.h"

static const char *usage_text =
    "usage: politune judge-answers --in compass.json|DIR|FILE.jsonl (--judge URL | --judge-model PATH) --out FILE [options]\n\n"
    "Rates each open-ended answer for ideology on select's scale (1 strongly left .. 5 neutral .. 9\n"
    "strongly right), with a one-sentence rationale. Reads the open prompts a 'politune compass' run\n"
    "saved (compass.json, or its directory), or any JSONL of {prompt, answer} (or response) records.\n"
    "Writes one JSONL line per answer (resumable), prints per-evaluation means and per-prompt scores\n"
    "as JSON on stdout, and adds them to compass.json as each evaluation's \"open_judge\" unless\n"
    "--no-update.\n\n"
    "options:\n"
    "  --in PATH              compass.json, a compass result directory, or prompt/answer JSONL\n"
    "  --no-rationale         only the score\n"
    "  --no-update            leave compass.json as it is\n" CLI_STAGE_HELP CLI_SWAP_HELP "\n" CLI_JUDGE_HELP;

static void print_means(const char *cmd, json_t *summary) {
    for (size_t g = 0; g < json_array_size(summary); g++) {
        json_t *e = json_array_get(summary, g), *m = json_object_get(e, "mean");
        fprintf(stderr, "politune %s: %s (iteration %lld, step %lld): mean ideology %s%.2f over %lld answers (%lld invalid)\n", cmd,
                json_string_value(json_object_get(e, "evaluation")), (long long)json_integer_value(json_object_get(e, "iteration")),
                (long long)json_integer_value(json_object_get(e, "step")), json_is_number(m) ? "" : "n/a ", json_is_number(m) ? json_number_value(m) : 0.0,
                (long long)json_integer_value(json_object_get(e, "n")), (long long)json_integer_value(json_object_get(e, "invalid")));
    }
}

int cmd_judge_answers(int argc, char **argv) {
    const char *cmd = "judge-answers";
    cli_judge jo;
    cli_judge_defaults(&jo);
    cli_stage_opts so = {0};
    pt_answers_opts o = {.rationale = true, .rationale_tokens = 96};
    bool update = true;
    static const struct option longopts[] = {CLI_JUDGE_LONGOPTS,
                                             CLI_STAGE_LONGOPTS,
                                             CLI_SWAP_LONGOPT,
                                             {"no-rationale", no_argument, 0, 1},
                                             {"no-update", no_argument, 0, 2},
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
        case 1: o.rationale = false; break;
        case 2: update = false; break;
        case 'h': fputs(usage_text, stdout); return 0;
        default: return cli_usage_error(cmd, "unknown option");
        }
    }
    if (optind < argc) return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    if (!so.in) return cli_usage_error(cmd, "--in PATH is required");
    if (!so.io.out) return cli_usage_error(cmd, "--out FILE is required");

    cli_stage st;
    int rc = cli_stage_open(&st, cmd, &so, &jo, true, true);
    if (rc) return rc;
    o.prompts = &st.prompts;
    pt_status s = pt_answers_run(&st.rs, jo.judge, &o, &so.io, &st.hooks, &st.sum);
    cli_stage_ui_finish(&st.ui, &st.sum);
    json_t *summary = NULL;
    const char *judge = pt_judge_describe(jo.judge);
    if (!s) s = pt_answers_summary(&st.rs, so.io.out, judge, &summary);
    if (!s && st.compass && update) s = pt_answers_update_compass(st.compass, summary, judge);
    if (!s) {
        char *js = json_dumps(summary, JSON_INDENT(2) | JSON_REAL_PRECISION(10));
        if (js) printf("%s\n", js);
        free(js);
        print_means(cmd, summary);
        if (st.compass && update) fprintf(stderr, "politune %s: added the scores to %s (\"open_judge\")\n", cmd, st.compass);
    }
    json_decref(summary);
    return cli_stage_close(&st, cmd, &jo, s);
}
