/* politune select: the judge scores each post's ideology and quality; clear posts on the
 * target side are kept (src/data/select.c). */
#include <string.h>

#include "cli_judge.h"
#include "commands.h"

static const char *usage_text =
    "usage: politune select --in FILE --text-field NAME --target left|right (--judge URL | --judge-model PATH)\n"
    "                       --out FILE [options]\n\n"
    "Asks the judge for each post's ideology (1 strongly left .. 5 neutral .. 9 strongly right) and\n"
    "quality (1 .. 5), and writes every record to the JSONL output with its scores and the decision\n"
    "(keep / drop / invalid), so thresholds can be changed later without asking again. The run\n"
    "resumes where an earlier one stopped (same output file); exact duplicate posts are dropped.\n\n"
    "options:\n"
    "  --in FILE              posts: CSV (RFC 4180, ',' ';' or TAB, header line) or JSONL\n"
    "  --text-field NAME      the column / key holding the text\n"
    "  --target left|right    the leaning to keep\n"
    "  --margin M             keep ideology <= 5-M (left) or >= 5+M (right) (default 2)\n"
    "  --min-quality Q        keep quality >= Q (default 3)\n" CLI_READ_HELP CLI_STAGE_HELP CLI_SWAP_HELP "\n" CLI_JUDGE_HELP;

/* select's own options (the judge's and the stage's are cli_judge.c's). */
static int select_option(void *opts, const char *cmd, int c, const char *arg) {
    pt_select_opts *o = opts;
    double f;
    switch (c) {
    case 1: o->target = arg; return 1;
    case 2:
        if (!cli_parse_float(arg, &f) || f < 0 || f > 4) return cli_usage_error(cmd, "--margin wants 0..4, got '%s'", arg), -1;
        o->margin = f;
        return 1;
    case 3:
        if (!cli_parse_float(arg, &f) || f < 1 || f > 5) return cli_usage_error(cmd, "--min-quality wants 1..5, got '%s'", arg), -1;
        o->min_quality = f;
        return 1;
    default: return 0;
    }
}

int cmd_select(int argc, char **argv) {
    const char *cmd = "select";
    cli_judge jo;
    cli_judge_defaults(&jo);
    cli_stage_opts so = {0};
    pt_select_opts o = {.margin = 2, .min_quality = 3};
    static const struct option longopts[] = {CLI_JUDGE_LONGOPTS,
                                             CLI_STAGE_LONGOPTS,
                                             CLI_SWAP_LONGOPT,
                                             CLI_READ_LONGOPTS,
                                             {"target", required_argument, 0, 1},
                                             {"margin", required_argument, 0, 2},
                                             {"min-quality", required_argument, 0, 3},
                                             {"help", no_argument, 0, 'h'},
                                             {0, 0, 0, 0}};
    const cli_option_group groups[] = {{cli_judge_group, &jo}, {cli_stage_group, &so}, {cli_swap_group, &o.swap}, {select_option, &o}, {NULL, NULL}};
    int parsed = cli_getopt(cmd, argc, argv, longopts, usage_text, false, groups);
    if (parsed) return parsed == CLI_HELP_SHOWN ? 0 : parsed;
    if (!so.in) return cli_usage_error(cmd, "--in FILE is required");
    if (!so.read.text_field) return cli_usage_error(cmd, "--text-field NAME is required");
    if (!o.target || (strcmp(o.target, "left") && strcmp(o.target, "right"))) return cli_usage_error(cmd, "--target left|right is required");
    if (!so.io.out) return cli_usage_error(cmd, "--out FILE is required");

    cli_stage st;
    int rc = cli_stage_open(&st, cmd, &so, &jo, false, true);
    if (rc) return rc;
    o.prompts = &st.prompts;
    pt_status s = pt_select_run(&st.rs, jo.judge, &o, &so.io, &st.hooks, &st.sum);
    return cli_stage_close(&st, cmd, &jo, s);
}
