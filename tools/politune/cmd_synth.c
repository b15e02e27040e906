/* politune synth: preference pairs from the posts select kept (src/data/synth.c). */
#include <stdlib.h>
#include <string.h>

#include "cli_judge.h"
#include "commands.h"

static const char *usage_text =
    "usage: politune synth --in selected.jsonl (--judge URL | --judge-model PATH) --out prefs.jsonl [options]\n\n"
    "For each post kept by select (\"keep\": true), asks the judge for an instruction the post answers,\n"
    "a chosen response from the post's leaning grounded in it, and a rejected response from the\n"
    "opposite leaning. Writes JSONL lines {id, prompt, chosen, rejected, source_id, target} that\n"
    "'politune train --method dpo' reads; records whose replies are unusable go to OUT.invalid.jsonl.\n"
    "The run resumes where an earlier one stopped.\n\n"
    "options:\n"
    "  --in FILE              select's output (or any CSV/JSONL of posts with --all --target)\n"
    "  --text-field NAME      the post's text (default 'text')\n"
    "  --target left|right    leaning of the chosen responses (default: each record's 'target')\n"
    "  --all                  use every record, not only the kept ones\n"
    "  --out FILE             output JSONL (appended to; resumed)\n"
    "  --chat-json FILE       also write the pairs as PoliTune chat JSON\n"
    "  --restart              start the output over instead of resuming it\n"
    "  --limit N              use only the first N records of the input\n"
    "  --window N             records per round of judge requests (default 16)\n"
    "  --prompts DIR          prompt templates replacing the built-in ones (see data/prompts/)\n"
    "  --quiet                no progress bar\n\n" CLI_JUDGE_HELP;

int cmd_synth(int argc, char **argv) {
    const char *cmd = "synth";
    cli_judge jo;
    cli_judge_defaults(&jo);
    pt_read_opts ro = {.text_field = "text"};
    pt_synth_opts so = {0};
    pt_stage_io io = {0};
    const char *in = NULL, *prompts_dir = NULL, *chat_json = NULL;
    bool quiet = false;
    long v;
    static const struct option longopts[] = {
        CLI_JUDGE_LONGOPTS,
        {"in", required_argument, 0, 1},        {"text-field", required_argument, 0, 2}, {"target", required_argument, 0, 3},
        {"all", no_argument, 0, 4},             {"out", required_argument, 0, 5},        {"chat-json", required_argument, 0, 6},
        {"restart", no_argument, 0, 7},         {"limit", required_argument, 0, 8},      {"window", required_argument, 0, 9},
        {"prompts", required_argument, 0, 10},  {"quiet", no_argument, 0, 11},           {"help", no_argument, 0, 'h'},
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
        case 3:
            if (strcmp(optarg, "left") && strcmp(optarg, "right")) return cli_usage_error(cmd, "--target wants left or right, got '%s'", optarg);
            so.target = optarg;
            break;
        case 4: so.all = true; break;
        case 5: io.out = optarg; break;
        case 6: chat_json = optarg; break;
        case 7: io.restart = true; break;
        case 8:
            if (!cli_parse_int(optarg, 1, 1L << 40, &v)) return cli_usage_error(cmd, "--limit wants a positive integer, got '%s'", optarg);
            ro.limit = v;
            break;
        case 9:
            if (!cli_parse_int(optarg, 1, 1 << 16, &v)) return cli_usage_error(cmd, "--window wants 1..65536, got '%s'", optarg);
            io.window = (int)v;
            break;
        case 10: prompts_dir = optarg; break;
        case 11: quiet = true; break;
        case 'h': fputs(usage_text, stdout); return 0;
        default: return cli_usage_error(cmd, "unknown option");
        }
    }
    if (optind < argc) return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    if (!in) return cli_usage_error(cmd, "--in FILE is required");
    if (!io.out) return cli_usage_error(cmd, "--out FILE is required");

    pt_prompts prompts;
    pt_status st = pt_prompts_load(&prompts, prompts_dir);
    if (st) return cli_fail(cmd, st);
    so.prompts = &prompts;
    pt_recordset rs;
    if ((st = pt_records_load(&rs, in, &ro))) {
        pt_prompts_free(&prompts);
        return cli_fail(cmd, st);
    }
    int rc = cli_judge_open(&jo, cmd);
    if (rc) {
        pt_records_free(&rs);
        pt_prompts_free(&prompts);
        return rc;
    }
    pt_stage_hooks h;
    cli_stage_ui ui;
    cli_stage_ui_init(&ui, &h, cmd, quiet);
    pt_stage_summary sum = {0};
    st = pt_synth_run(&rs, jo.judge, &so, &io, &h, &sum);
    cli_stage_ui_finish(&ui, &sum);
    if (!st && chat_json) st = pt_synth_write_chat_json(io.out, chat_json);
    rc = st ? cli_fail(cmd, st) : 0;
    cli_judge_close(&jo);
    pt_records_free(&rs);
    pt_prompts_free(&prompts);
    return rc;
}
