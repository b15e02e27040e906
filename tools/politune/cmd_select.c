/* politune select: the judge scores each post's ideology and quality; clear posts on the
 * target side are kept (src/data/select.c). */
#include <stdlib.h>
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
    "  --format csv|jsonl     input format (default: from the file name, else the content)\n"
    "  --delimiter C          CSV delimiter (default: detected from the header)\n"
    "  --target left|right    the leaning to keep\n"
    "  --margin M             keep ideology <= 5-M (left) or >= 5+M (right) (default 2)\n"
    "  --min-quality Q        keep quality >= Q (default 3)\n"
    "  --out FILE             output JSONL (appended to; resumed)\n"
    "  --restart              start the output over instead of resuming it\n"
    "  --limit N              use only the first N records of the input\n"
    "  --window N             records per round of judge requests (default 16)\n"
    "  --prompts DIR          prompt templates replacing the built-in ones (see data/prompts/)\n"
    "  --quiet                no progress bar\n\n" CLI_JUDGE_HELP;

int cmd_select(int argc, char **argv) {
    const char *cmd = "select";
    cli_judge jo;
    cli_judge_defaults(&jo);
    pt_read_opts ro = {0};
    pt_select_opts so = {.margin = 2, .min_quality = 3};
    pt_stage_io io = {0};
    const char *in = NULL, *prompts_dir = NULL;
    bool quiet = false;
    long v;
    double f;
    static const struct option longopts[] = {
        CLI_JUDGE_LONGOPTS,
        {"in", required_argument, 0, 1},       {"text-field", required_argument, 0, 2}, {"format", required_argument, 0, 3},
        {"delimiter", required_argument, 0, 4}, {"target", required_argument, 0, 5},    {"margin", required_argument, 0, 6},
        {"min-quality", required_argument, 0, 7}, {"out", required_argument, 0, 8},     {"restart", no_argument, 0, 9},
        {"limit", required_argument, 0, 10},    {"window", required_argument, 0, 11},   {"prompts", required_argument, 0, 12},
        {"quiet", no_argument, 0, 13},          {"help", no_argument, 0, 'h'},          {0, 0, 0, 0}};
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
            if (!strcmp(optarg, "csv")) ro.format = PT_FMT_CSV;
            else if (!strcmp(optarg, "jsonl")) ro.format = PT_FMT_JSONL;
            else return cli_usage_error(cmd, "--format wants csv or jsonl, got '%s'", optarg);
            break;
        case 4:
            if (strlen(optarg) != 1 && strcmp(optarg, "\\t")) return cli_usage_error(cmd, "--delimiter wants one character, got '%s'", optarg);
            ro.delim = strcmp(optarg, "\\t") ? optarg[0] : '\t';
            break;
        case 5: so.target = optarg; break;
        case 6:
            if (!cli_parse_float(optarg, &f) || f < 0 || f > 4) return cli_usage_error(cmd, "--margin wants 0..4, got '%s'", optarg);
            so.margin = f;
            break;
        case 7:
            if (!cli_parse_float(optarg, &f) || f < 1 || f > 5) return cli_usage_error(cmd, "--min-quality wants 1..5, got '%s'", optarg);
            so.min_quality = f;
            break;
        case 8: io.out = optarg; break;
        case 9: io.restart = true; break;
        case 10:
            if (!cli_parse_int(optarg, 1, 1L << 40, &v)) return cli_usage_error(cmd, "--limit wants a positive integer, got '%s'", optarg);
            ro.limit = v;
            break;
        case 11:
            if (!cli_parse_int(optarg, 1, 1 << 16, &v)) return cli_usage_error(cmd, "--window wants 1..65536, got '%s'", optarg);
            io.window = (int)v;
            break;
        case 12: prompts_dir = optarg; break;
        case 13: quiet = true; break;
        case 'h': fputs(usage_text, stdout); return 0;
        default: return cli_usage_error(cmd, "unknown option");
        }
    }
    if (optind < argc) return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    if (!in) return cli_usage_error(cmd, "--in FILE is required");
    if (!ro.text_field) return cli_usage_error(cmd, "--text-field NAME is required");
    if (!so.target || (strcmp(so.target, "left") && strcmp(so.target, "right"))) return cli_usage_error(cmd, "--target left|right is required");
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
    st = pt_select_run(&rs, jo.judge, &so, &io, &h, &sum);
    cli_stage_ui_finish(&ui, &sum);
    rc = st ? cli_fail(cmd, st) : 0;
    cli_judge_close(&jo);
    pt_records_free(&rs);
    pt_prompts_free(&prompts);
    return rc;
}
