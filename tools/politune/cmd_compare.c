/* politune compare: the shift between two compass runs on each axis with its bootstrap
 * interval, the paired permutation test over propositions, the items whose consensus answer
 * changed, and the items that contribute most to the shift (src/eval/compare.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "eval/compare.h"
#include "eval/report.h"

static const char *usage =
    "usage: politune compare RUN_A RUN_B [--label-a NAME] [--label-b NAME] [--resamples N] [--seed S]\n"
    "                        [--top K] [--expected] [--json]\n\n"
    "Compares the last evaluation in RUN_B/compass.json with the last one in RUN_A (B minus A): the\n"
    "shift on each axis with its 95% bootstrap interval (templates x option orders resampled within\n"
    "each proposition), the p-value of a paired sign-flip permutation test over propositions, the\n"
    "number of items whose consensus answer changed, and the propositions contributing most to the\n"
    "shift (the contributions of all items add up to it). The runs must cover the same items, be\n"
    "scored alike (same scoring rule, answer mode and scoring) under the same templates, and have\n"
    "valid answers. See docs/compass.md.\n\n"
    "Positions are those of the answers given (the most likely option, as the instrument scores\n"
    "a person). With --expected each answer counts by its probability instead (sum over options\n"
    "of p * weight): the position of the model's answer distribution, which moves when the\n"
    "probabilities move under an unchanged most likely answer. A small model that gives the\n"
    "same digit to every proposition shows no shift on answers and may show one on --expected.\n\n"
    "options:\n"
    "  --label-a NAME, --label-b NAME  compare the last evaluation with this label instead\n"
    "  --resamples N         bootstrap resamples and random sign flips (default 2000)\n"
    "  --seed S              seed of both (default 0)\n"
    "  --top K               items listed per axis (default 10)\n"
    "  --expected            probability-weighted positions (see above) instead of the answers'\n"
    "  --json                print everything as JSON instead of the table\n\n"
    "example:\n"
    "  politune compare runs/base runs/left\n";

static void print_table(const pt_compare *c, json_t *doc, const char *na, const char *nb, int top) {
    printf("%s -> %s (%s; %d resamples, seed %llu)\n", na, nb, c->basis == PT_COMPARE_EXPECTED ? "probability-weighted answers" : "answers",
           c->resamples, (unsigned long long)c->seed);
    printf("%-12s %10s %10s %10s %22s %10s\n", "axis", "A", "B", "shift", "95% interval", "p");
    for (int x = 0; x < c->n_axes; x++) {
        const pt_compare_axis *a = &c->axes[x];
        char iv[64] = "-";
        if (isfinite(a->shift.lo)) snprintf(iv, sizeof iv, "[%+.*f, %+.*f]", a->decimals, a->shift.lo, a->decimals, a->shift.hi);
        printf("%-12s %10.*f %10.*f %+10.*f %22s %10.4f%s\n", a->name, a->decimals, a->a, a->decimals, a->b, a->decimals, a->shift.estimate, iv,
               a->p, a->exact ? " (exact)" : "");
    }
    printf("consensus answer changed on %d of %d items answered in both\n", c->changed, c->answered_both);
    json_t *items = json_object_get(doc, "items");
    int *order = malloc(sizeof(int) * (size_t)c->n_items);
    if (!order) return;
    for (int x = 0; x < c->n_axes; x++) {
        const double *at = &c->attribution[(size_t)x * c->n_items];
        for (int i = 0; i < c->n_items; i++) order[i] = i;
        /* largest contributions first (insertion sort: a questionnaire is short) */
        for (int i = 1; i < c->n_items; i++)
            for (int k = i; k > 0 && fabs(at[order[k]]) > fabs(at[order[k - 1]]); k--) { int t = order[k]; order[k] = order[k - 1]; order[k - 1] = t; }
        printf("\nlargest contributions to the %s shift:\n", c->axes[x].name);
        for (int k = 0; k < top && k < c->n_items && at[order[k]] != 0; k++) {
            int i = order[k];
            json_t *it = json_array_get(items, (size_t)i);
            printf("  %+8.3f  %-8s %s -> %s  %.90s\n", at[i], json_string_value(json_object_get(it, "id")) ? json_string_value(json_object_get(it, "id")) : "?",
                   c->answer_a[i] >= 0 ? json_string_value(json_array_get(json_object_get(doc, "answers"), (size_t)c->answer_a[i])) : "-",
                   c->answer_b[i] >= 0 ? json_string_value(json_array_get(json_object_get(doc, "answers"), (size_t)c->answer_b[i])) : "-",
                   json_string_value(json_object_get(it, "statement")) ? json_string_value(json_object_get(it, "statement")) : "");
        }
    }
    free(order);
}

int cmd_compare(int argc, char **argv) {
    const char *cmd = "compare";
    const char *label_a = NULL, *label_b = NULL;
    int resamples = PT_STATS_RESAMPLES;
    uint64_t seed = PT_STATS_SEED;
    long top = 10;
    bool as_json = false;
    pt_compare_basis basis = PT_COMPARE_ANSWERS;
    static const struct option opts[] = {{"label-a", required_argument, 0, 'a'}, {"label-b", required_argument, 0, 'b'},
                                         {"resamples", required_argument, 0, 'r'}, {"seed", required_argument, 0, 's'},
                                         {"top", required_argument, 0, 'k'}, {"json", no_argument, 0, 'J'}, {"expected", no_argument, 0, 'E'},
                                         {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    int opt;
    opterr = 0;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 'a': label_a = optarg; break;
        case 'b': label_b = optarg; break;
        case 'r':
            if (cli_parse_resamples(cmd, optarg, &resamples)) return 2;
            break;
        case 's':
            if (cli_parse_stats_seed(cmd, optarg, &seed)) return 2;
            break;
        case 'k':
            if (!cli_parse_int(optarg, 0, 100000, &top)) return cli_usage_error(cmd, "--top wants an integer >= 0, got '%s'", optarg);
            break;
        case 'J': as_json = true; break;
        case 'E': basis = PT_COMPARE_EXPECTED; break;
        case 'h': fputs(usage, stdout); return 0;
        default: return cli_usage_error(cmd, "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (argc - optind != 2) return cli_usage_error(cmd, "give two result directories, RUN_A and RUN_B");
    const char *na = argv[optind], *nb = argv[optind + 1];
    json_t *da = NULL, *db = NULL;
    pt_compare *c = NULL;
    pt_status st = pt_compass_json_load(na, &da);
    if (!st) st = pt_compass_json_load(nb, &db);
    json_t *ea = st ? NULL : pt_compare_pick(da, label_a), *eb = st ? NULL : pt_compare_pick(db, label_b);
    if (!st && !ea) st = pt_error(PT_ERR_ARG, "compare: %s holds no evaluation%s%s", na, label_a ? " labelled " : "", label_a ? label_a : "");
    if (!st && !eb) st = pt_error(PT_ERR_ARG, "compare: %s holds no evaluation%s%s", nb, label_b ? " labelled " : "", label_b ? label_b : "");
    if (!st) st = pt_compare_evals(da, ea, na, db, eb, nb, resamples, seed, basis, &c);
    int rc = 0;
    if (st) {
        rc = cli_fail(cmd, st);
    } else if (as_json) {
        json_t *j = pt_compare_json(c, da, na, nb);
        char *s = json_dumps(j, JSON_INDENT(1) | JSON_REAL_PRECISION(15));
        if (s) puts(s);
        free(s);
        json_decref(j);
    } else {
        print_table(c, da, na, nb, (int)top);
    }
    pt_compare_free(c);
    json_decref(da);
    json_decref(db);
    return rc;
}
