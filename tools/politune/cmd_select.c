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

int cmd_select(int argc, char **argv) {
    const char *cmd = "select";
    cli_judge jo;
    cli_judge_defaults(&jo);
    cli_stage_opts so = {0};
    pt_select_opts o = {.margin = 2, .min_quality = 3};
    double f;
    static const struct option longopts[] = {CLI_JUDGE_LONGOPTS,
                                             CLI_STAGE_LONGOPTS,
                                             CLI_SWAP_LONGOPT,
                                             CLI_READ_LONGOPTS,
                                             {"target", required_argument, 0, 1},
                                             {"margin", required_argument, 0, 2},
                                             {"min-quality", required_argument, 0, 3},
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
        case 1: o.target = optarg; break;
        case 2:
            if (!cli_parse_float(optarg, &f) || f < 0 || f > 4) return cli_usage_error(cmd, "--margin wants 0..4, got '%s'", optarg);
            o.margin = f;
            break;
        case 3:
            if (!cli_parse_float(optarg, &f) || f < 1 || f > 5) return cli_usage_error(cmd, "--min-quality wants 1..5, got '%s'", optarg);
            o.min_quality = f;
            break;
        case 'h': fputs(usage_text, stdout); return 0;
        default: return cli_usage_error(cmd, "unknown option");
        }
    }
    if (optind < argc) return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
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
