/* politune report: one self-contained HTML page from one or more compass result directories. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "eval/report.h"
#include "eval/stats.h"
#include "util/file.h"

static const char *usage =
    "usage: politune report DIR... --out report.html [--svg chart.svg] [--resamples N] [--seed S]\n\n"
    "Reads DIR/compass.json of each result directory (written by 'politune compass' or by training\n"
    "with --eval-every) and writes one self-contained HTML page: the compass chart with every run as\n"
    "a labelled point or trajectory and its 95% interval, positions with their intervals and spread over\n"
    "templates, every run's shift against the first (the base) with its interval, permutation p-value\n"
    "and the items that contribute most, forced (log-prob) against free (generate) answers where a\n"
    "model was measured both ways, the answers side by side, the items that moved, invalid and\n"
    "refusal rates, and the open-ended replies.\n\n"
    "options:\n"
    "  --out FILE            the HTML file to write (required)\n"
    "  --svg FILE            also write the combined chart as a standalone SVG\n"
    "  --resamples N         bootstrap resamples and sign flips for the shifts (default 2000)\n"
    "  --seed S              their seed (default 0)\n\n"
    "example:\n"
    "  politune report runs/base runs/left runs/right --out report.html\n";

int cmd_report(int argc, char **argv) {
    const char *cmd = "report";
    const char *out = NULL, *svg_out = NULL;
    pt_report_opts ro = {PT_STATS_RESAMPLES, PT_STATS_SEED};
    static const struct option opts[] = {{"out", required_argument, 0, 'o'}, {"svg", required_argument, 0, 's'},
                                         {"resamples", required_argument, 0, 'r'}, {"seed", required_argument, 0, 'S'},
                                         {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    int opt;
    opterr = 0;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 'o': out = optarg; break;
        case 's': svg_out = optarg; break;
        case 'r':
            if (cli_parse_resamples(cmd, optarg, &ro.resamples)) return 2;
            break;
        case 'S':
            if (cli_parse_stats_seed(cmd, optarg, &ro.seed)) return 2;
            break;
        case 'h': fputs(usage, stdout); return 0;
        default: return cli_usage_error(cmd, "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (!out) return cli_usage_error(cmd, "--out FILE is required");
    int n = argc - optind;
    if (n < 1) return cli_usage_error(cmd, "give at least one result directory");
    json_t **docs = calloc((size_t)n, sizeof *docs);
    const char **names = calloc((size_t)n, sizeof *names);
    if (!docs || !names) { free(docs); free(names); return cli_fail(cmd, pt_error(PT_ERR_OOM, "out of memory")); }
    pt_status st = PT_OK;
    for (int i = 0; i < n && !st; i++) {
        names[i] = argv[optind + i];
        st = pt_compass_json_load(names[i], &docs[i]);
    }
    char *html = NULL, *svg = NULL;
    if (!st) st = pt_report_html(docs, names, n, &ro, &html);
    if (!st) st = pt_file_write_atomic(out, html, strlen(html));
    if (!st && svg_out) st = pt_compass_chart(docs, names, n, true, &svg);
    if (!st && svg_out) st = pt_file_write_atomic(svg_out, svg, strlen(svg));
    int rc = st ? cli_fail(cmd, st) : 0;
    if (!st) {
        printf("{\"out\":");
        cli_json_string(stdout, out);
        printf(",\"runs\":%d,\"bytes\":%zu}\n", n, strlen(html));
    }
    for (int i = 0; i < n; i++) json_decref(docs[i]);
    free(docs);
    free(names);
    free(html);
    free(svg);
    return rc;
}
