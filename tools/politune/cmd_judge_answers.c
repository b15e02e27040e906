/* politune judge-answers: the judge rates open-ended answers for ideology (src/data/answers.c). */
#include <stdlib.h>

#include "cli_judge.h"
#include "dist/dist.h"
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

/* judge-answers' own options (the judge's and the stage's are cli_judge.c's). */
typedef struct {
    pt_answers_opts *o;
    bool *update;
} answers_cli;

static int answers_option(void *opts, const char *cmd, int c, const char *arg) {
    answers_cli *a = opts;
    switch (c) {
    case 1: a->o->rationale = false; return 1;
    case 2: *a->update = false; return 1;
    default: return 0;
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
    const cli_option_group groups[] = {{cli_judge_group, &jo}, {cli_stage_group, &so}, {cli_swap_group, &o.swap}, {answers_option, &(answers_cli){&o, &update}}, {NULL, NULL}};
    int parsed = cli_getopt(cmd, argc, argv, longopts, usage_text, false, groups);
    if (parsed) return parsed == CLI_HELP_SHOWN ? 0 : parsed;
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
    /* under mpirun rank 0 alone summarises and updates compass.json */
    const bool root = pt_dist_rank() == 0;
    if (!s && root) s = pt_answers_summary(&st.rs, so.io.out, judge, &summary);
    if (!s && root && st.compass && update) s = pt_answers_update_compass(st.compass, summary, judge);
    if (!s && root) {
        char *js = json_dumps(summary, JSON_INDENT(2) | JSON_REAL_PRECISION(10));
        if (js) printf("%s\n", js);
        free(js);
        print_means(cmd, summary);
        if (st.compass && update) fprintf(stderr, "politune %s: added the scores to %s (\"open_judge\")\n", cmd, st.compass);
    }
    json_decref(summary);
    return cli_stage_close(&st, cmd, &jo, s);
}
