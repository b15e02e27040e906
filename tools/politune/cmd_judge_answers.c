/* politune judge-answers: the judge rates open-ended answers for ideology (src/data/answers.c). */
#include <stdlib.h>
#include <string.h>

#include "cli_judge.h"
#include "commands.h"

static const char *usage_text =
    "usage: politune judge-answers --in compass.json|DIR|FILE.jsonl (--judge URL | --judge-model PATH) --out FILE [options]\n\n"
    "Rates each open-ended answer for ideology on select's scale (1 strongly left .. 5 neutral .. 9\n"
    "strongly right), with a one-sentence rationale. Reads the open prompts a 'politune compass' run\n"
    "saved (compass.json, or its directory), or any JSONL of {prompt, answer} (or response) records.\n"
    "Writes one JSONL line per answer (resumable), prints per-evaluation means and per-prompt scores\n"
    "as JSON on stdout, and adds them to compass.json as each evaluation's \"open_judge\" (shown by\n"
    "'politune report') unless --no-update.\n\n"
    "options:\n"
    "  --in PATH              compass.json, a compass result directory, or prompt/answer JSONL\n"
    "  --out FILE             judged answers, JSONL (appended to; resumed)\n"
    "  --no-rationale         only the score\n"
    "  --no-update            leave compass.json as it is\n"
    "  --restart              start the output over instead of resuming it\n"
    "  --window N             answers per round of judge requests (default 16)\n"
    "  --prompts DIR          prompt templates replacing the built-in ones (see data/prompts/)\n"
    "  --quiet                no progress bar\n\n" CLI_JUDGE_HELP;

int cmd_judge_answers(int argc, char **argv) {
    const char *cmd = "judge-answers";
    cli_judge jo;
    cli_judge_defaults(&jo);
    pt_answers_opts ao = {.rationale = true, .rationale_tokens = 96};
    pt_stage_io io = {0};
    const char *in = NULL, *prompts_dir = NULL;
    bool quiet = false, update = true;
    long v;
    static const struct option longopts[] = {
        CLI_JUDGE_LONGOPTS,
        {"in", required_argument, 0, 1},      {"out", required_argument, 0, 2},     {"no-rationale", no_argument, 0, 3},
        {"no-update", no_argument, 0, 4},     {"restart", no_argument, 0, 5},       {"window", required_argument, 0, 6},
        {"prompts", required_argument, 0, 7}, {"quiet", no_argument, 0, 8},         {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        int r = cli_judge_option(&jo, cmd, c, optarg);
        if (r < 0) return 2;
        if (r) continue;
        switch (c) {
        case 1: in = optarg; break;
        case 2: io.out = optarg; break;
        case 3: ao.rationale = false; break;
        case 4: update = false; break;
        case 5: io.restart = true; break;
        case 6:
            if (!cli_parse_int(optarg, 1, 1 << 16, &v)) return cli_usage_error(cmd, "--window wants 1..65536, got '%s'", optarg);
            io.window = (int)v;
            break;
        case 7: prompts_dir = optarg; break;
        case 8: quiet = true; break;
        case 'h': fputs(usage_text, stdout); return 0;
        default: return cli_usage_error(cmd, "unknown option");
        }
    }
    if (optind < argc) return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    if (!in) return cli_usage_error(cmd, "--in PATH is required");
    if (!io.out) return cli_usage_error(cmd, "--out FILE is required");

    pt_prompts prompts;
    pt_status st = pt_prompts_load(&prompts, prompts_dir);
    if (st) return cli_fail(cmd, st);
    ao.prompts = &prompts;
    pt_recordset rs;
    char *compass = NULL;
    if ((st = pt_answers_load(&rs, in, &compass))) {
        pt_prompts_free(&prompts);
        return cli_fail(cmd, st);
    }
    int rc = cli_judge_open(&jo, cmd);
    if (rc) {
        pt_records_free(&rs);
        pt_prompts_free(&prompts);
        free(compass);
        return rc;
    }
    pt_stage_hooks h;
    cli_stage_ui ui;
    cli_stage_ui_init(&ui, &h, cmd, quiet);
    pt_stage_summary sum = {0};
    st = pt_answers_run(&rs, jo.judge, &ao, &io, &h, &sum);
    cli_stage_ui_finish(&ui, &sum);
    json_t *summary = NULL;
    if (!st) st = pt_answers_summary(&rs, io.out, pt_judge_describe(jo.judge), &summary);
    if (!st && compass && update) st = pt_answers_update_compass(compass, summary, pt_judge_describe(jo.judge));
    if (!st) {
        char *s = json_dumps(summary, JSON_INDENT(2) | JSON_REAL_PRECISION(10));
        if (s) printf("%s\n", s);
        free(s);
        for (size_t g = 0; g < json_array_size(summary); g++) {
            json_t *e = json_array_get(summary, g);
            json_t *m = json_object_get(e, "mean");
            fprintf(stderr, "politune %s: %s (iteration %lld, step %lld): mean ideology %s%.2f over %lld answers (%lld invalid)\n", cmd,
                    json_string_value(json_object_get(e, "evaluation")), (long long)json_integer_value(json_object_get(e, "iteration")),
                    (long long)json_integer_value(json_object_get(e, "step")), json_is_number(m) ? "" : "n/a ",
                    json_is_number(m) ? json_number_value(m) : 0.0, (long long)json_integer_value(json_object_get(e, "n")),
                    (long long)json_integer_value(json_object_get(e, "invalid")));
        }
        if (compass && update) fprintf(stderr, "politune %s: added the scores to %s (\"open_judge\")\n", cmd, compass);
    }
    json_decref(summary);
    rc = st ? cli_fail(cmd, st) : 0;
    cli_judge_close(&jo);
    pt_records_free(&rs);
    pt_prompts_free(&prompts);
    free(compass);
    return rc;
}
