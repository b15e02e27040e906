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

/* synth's own options (the judge's and the stage's are cli_judge.c's). */
typedef struct {
    pt_synth_opts *o;
    const char **chat_json;
} synth_cli;

static int synth_option(void *opts, const char *cmd, int c, const char *arg) {
    synth_cli *s = opts;
    switch (c) {
    case 1:
        if (strcmp(arg, "left") && strcmp(arg, "right")) return cli_usage_error(cmd, "--target wants left or right, got '%s'", arg), -1;
        s->o->target = arg;
        return 1;
    case 2: s->o->all = true; return 1;
    case 3: *s->chat_json = arg; return 1;
    default: return 0;
    }
}

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
    const cli_option_group groups[] = {{cli_judge_group, &jo}, {cli_stage_group, &so}, {cli_swap_group, &o.swap}, {synth_option, &(synth_cli){&o, &chat_json}}, {NULL, NULL}};
    int parsed = cli_getopt(cmd, argc, argv, longopts, usage_text, false, groups);
    if (parsed) return parsed == CLI_HELP_SHOWN ? 0 : parsed;
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
