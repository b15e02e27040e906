/* politune synth: preference pairs from the posts select kept (src/data/synth.c). */
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
    "  --chat-json FILE       also write the pairs as PoliTune chat JSON\n" CLI_READ_HELP CLI_STAGE_HELP
    "  --swap-check[=flag|drop]  ask the judge which answer is more on the target side, with the chosen one\n"
    "                         first and then second; a pair whose two verdicts name the same position (A\n"
    "                         twice or B twice) follows the order, not the answers: flagged (\"swap\":\n"
    "                         {\"disagree\": true}) or with =drop moved to the .invalid.jsonl side file\n"
    "\n" CLI_JUDGE_HELP;

int cmd_synth(int argc, char **argv) {
    const char *cmd = "synth";
    cli_judge jo;
    cli_judge_defaults(&jo);
    cli_stage_opts so = {.read.text_field = "text"};
    pt_synth_opts o = {0};
    const char *chat_json = NULL;
    static const struct option longopts[] = {CLI_JUDGE_LONGOPTS,
                                             CLI_STAGE_LONGOPTS,
                                             CLI_SWAP_LONGOPT,
                                             CLI_READ_LONGOPTS,
                                             {"target", required_argument, 0, 1},
                                             {"all", no_argument, 0, 2},
                                             {"chat-json", required_argument, 0, 3},
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
        case 1:
            if (strcmp(optarg, "left") && strcmp(optarg, "right")) return cli_usage_error(cmd, "--target wants left or right, got '%s'", optarg);
            o.target = optarg;
            break;
        case 2: o.all = true; break;
        case 3: chat_json = optarg; break;
        case 'h': fputs(usage_text, stdout); return 0;
        default: return cli_usage_error(cmd, "unknown option");
        }
    }
    if (optind < argc) return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    if (!so.in) return cli_usage_error(cmd, "--in FILE is required");
    if (!so.io.out) return cli_usage_error(cmd, "--out FILE is required");

    cli_stage st;
    int rc = cli_stage_open(&st, cmd, &so, &jo, false, true);
    if (rc) return rc;
    o.prompts = &st.prompts;
    pt_status s = pt_synth_run(&st.rs, jo.judge, &o, &so.io, &st.hooks, &st.sum);
    if (!s && chat_json) s = pt_synth_write_chat_json(so.io.out, chat_json);
    return cli_stage_close(&st, cmd, &jo, s);
}
