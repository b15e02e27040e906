/* `politune run --make-pairs`: the pairs stage's command line around pt_pairs_sample
 * (src/pipeline/pairs.c). It is a mode of `run` rather than a command of its own because
 * nothing but a recipe needs it; the manifests record it like any other stage command, so it
 * can be rerun by hand. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "pipeline/pairs.h"
#include "run_pairs.h"

static const char *usage_text =
    "usage: politune run --make-pairs --out FILE [--count N] [--seed S] [--weights W1,W2,...]\n"
    "                     [--heldout N --heldout-out FILE] FILE...\n\n"
    "The pairs stage of a recipe: samples N preference pairs (default 0: all there are, or as many as\n"
    "the proportions allow) from the files, a share W of them from each (normalised; default equal\n"
    "shares), with a seeded generator, and writes them shuffled as JSONL. Files: a JSON array (the\n"
    "PoliTune chat JSON) or JSONL. A file with too few pairs scales the whole sample down, keeping\n"
    "the proportions, with a note. --heldout N: also N pairs, in the same proportions, that are not in\n"
    "the sample (not even as a copy), written to --heldout-out: a held-out set for train --eval-data.\n";


typedef struct {
    const char *out, *weights, *hout;
    long count, heldout;
    unsigned long long seed;
} pairs_cli;

static int pairs_option(void *opts, const char *cmd, int opt, const char *arg) {
    pairs_cli *p = opts;
    long v;
    switch (opt) {
    case 'M': return 1;
    case 'o': p->out = arg; return 1;
    case 'n':
        if (!cli_parse_int(arg, 0, 1000000000L, &p->count)) return cli_usage_error(cmd, "--count wants an integer >= 0, got '%s'", arg), -1;
        return 1;
    case 'H':
        if (!cli_parse_int(arg, 0, 1000000000L, &p->heldout)) return cli_usage_error(cmd, "--heldout wants an integer >= 0, got '%s'", arg), -1;
        return 1;
    case 'O': p->hout = arg; return 1;
    case 's':
        if (!cli_parse_int(arg, 0, 0x7fffffffffffffffL, &v)) return cli_usage_error(cmd, "--seed wants an integer >= 0, got '%s'", arg), -1;
        p->seed = (unsigned long long)v;
        return 1;
    case 'w': p->weights = arg; return 1;
    default: return 0;
    }
}

/* "W1,W2,..." into k positive numbers; false when it is not that. */
static bool parse_weights(const char *s, int k, double *w) {
    const char *p = s;
    for (int i = 0; i < k; i++) {
        char *end;
        w[i] = strtod(p, &end);
        if (end == p || !(w[i] > 0) || (i < k - 1 && *end != ',') || (i == k - 1 && *end)) return false;
        p = end + 1;
    }
    return true;
}

static void print_note(void *user, const char *msg) { fprintf(stderr, "politune %s: %s\n", (const char *)user, msg); }

static void print_summary(const pt_pairs_request *q, const pt_pairs_result *res) {
    printf("{\"out\":");
    cli_json_string(stdout, q->out);
    printf(",\"pairs\":%zu,\"from\":[", res->total);
    for (int i = 0; i < q->n_files; i++) {
        printf("%s{\"file\":", i ? "," : "");
        cli_json_string(stdout, q->files[i]);
        printf(",\"available\":%zu,\"taken\":%ld}", res->available[i], res->taken[i]);
    }
    printf("]");
    if (q->heldout) {
        printf(",\"heldout\":{\"out\":");
        cli_json_string(stdout, q->heldout_out);
        printf(",\"pairs\":%zu}", res->n_held);
    }
    printf("}\n");
}

int run_make_pairs_main(int argc, char **argv) {
    const char *cmd = "run --make-pairs";
    pairs_cli p = {0};
    static const struct option longopts[] = {{"make-pairs", no_argument, 0, 'M'},  {"out", required_argument, 0, 'o'},
                                             {"count", required_argument, 0, 'n'}, {"seed", required_argument, 0, 's'},
                                             {"weights", required_argument, 0, 'w'}, {"heldout", required_argument, 0, 'H'},
                                             {"heldout-out", required_argument, 0, 'O'}, {"help", no_argument, 0, 'h'},
                                             {0, 0, 0, 0}};
    const cli_option_group groups[] = {{pairs_option, &p}, {NULL, NULL}};
    int parsed = cli_getopt(cmd, argc, argv, longopts, usage_text, true, groups);
    if (parsed) return parsed == CLI_HELP_SHOWN ? 0 : parsed;
    int k = argc - optind;
    if (!p.out) return cli_usage_error(cmd, "--out FILE is required");
    if (p.heldout > 0 && !p.hout) return cli_usage_error(cmd, "--heldout needs --heldout-out FILE");
    if (k < 1) return cli_usage_error(cmd, "give at least one file of pairs");
    if (k > PT_PAIRS_MAX_FILES) return cli_usage_error(cmd, "at most %d files", PT_PAIRS_MAX_FILES);
    double w[PT_PAIRS_MAX_FILES];
    if (p.weights && !parse_weights(p.weights, k, w))
        return cli_usage_error(cmd, "--weights wants %d positive numbers separated by commas, got '%s'", k, p.weights);
    pt_pairs_request q = {(const char *const *)argv + optind, k, p.weights ? w : NULL, p.count, p.heldout, p.out, p.hout, p.seed,
                          print_note, (void *)cmd};
    pt_pairs_result res;
    pt_status st = pt_pairs_sample(&q, &res);
    if (st) return cli_fail(cmd, st);
    print_summary(&q, &res);
    return 0;
}
