/* politune demo: the embedded demo recipe (run_demo_recipe.c) through `politune run`'s
 * machinery, then the figures a reader looks for — where base, left and right sit on the
 * compass in each answer mode, how well each adapter learned its preferences, on its training
 * pairs and on held-out ones (a demo-sized run can learn its pairs before the compass moves,
 * so the held-out reward accuracy shows whether each adapter learned its side) — and where
 * the report is. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "commands.h"
#include "run_driver.h"
#include "pipeline/fs.h"
#include "util/clock.h"
#include "util/file.h"

static const char *usage_text =
    "usage: politune demo [--out DIR] [--pairs N] [--steps N] [--eval-every N] [--threads N] [--quiet]\n"
    "                     [--set KEY=VALUE ...]\n"
    "       politune demo --print-recipe\n\n"
    "The PoliTune experiment at demo scale: SmolLM2-135M-Instruct (Q4_1 GGUF) as the base model; N\n"
    "preference pairs per side sampled (seeded) from the PoliTune left and right datasets; a left and\n"
    "a right LoRA adapter trained with DPO, with the Political Compass and the DPO reward accuracy on\n"
    "8 held-out pairs per side (data.heldout) measured during training; the compass of the base\n"
    "model and both adapters in logprob mode (the number scoring, phrasings t1 and t2 in both option\n"
    "orders) and in generate mode (t1 in both orders: eval.generate_templates); and\n"
    "DIR/report/report.html with the three points (and, with --eval-every, the trajectories). Sized\n"
    "for about five minutes on two idle cores (BENCHMARKS.md; --set eval.generate_templates=t1,t2\n"
    "adds the second phrasing to generate mode, about 2.4 minutes more). The assets come from\n"
    "$POLITUNE_ASSETS, else ../shared/assets beside the checkout, else the cache (fetched when\n"
    "missing; see politune pull). A rerun skips what is done, like politune run.\n\n"
    "options:\n"
    "  --out DIR         where the run goes (default: demo-run)\n"
    "  --pairs N         pairs per side (default 32, the recipe's data.sample)\n"
    "  --steps N         training steps per adapter (default 8)\n"
    "  --eval-every N    compass every N training steps (default 0: none; each costs about a minute)\n"
    "  --threads N       threads per stage (default: all cores)\n"
    "  --quiet           stages' own messages go to their log.txt\n"
    "  --set KEY=VALUE   override any key of the recipe, e.g. --set eval.templates=t1 (repeatable)\n"
    "  --print-recipe    print the recipe the demo runs (YAML) and exit: copy it, edit it, and run\n"
    "                    it with 'politune run'\n\n"
    "example:\n"
    "  politune demo\n"
    "  politune demo --print-recipe > my-recipe.yaml && politune run my-recipe.yaml\n";

/* "economic -1.25 (sd 0.40), social +0.87 (sd 0.31), invalid 0.02" from the last evaluation of
 * DIR/compass.json; 0 when the stage has none. */
static int position(const char *dir, const char *stage, char *buf, size_t n) {
    char *d = pt_path_join(dir, stage), *p = d ? pt_path_join(d, "compass.json") : NULL;
    json_t *doc = p ? json_load_file(p, 0, NULL) : NULL;
    json_t *evs = json_object_get(doc, "evaluations");
    json_t *ev = json_array_get(evs, json_array_size(evs) - 1);
    json_t *pos = json_object_get(ev, "position");
    int found = ev != NULL;
    buf[0] = 0;
    json_t *axes = json_object_get(doc, "axes");
    for (size_t i = 0; i < json_array_size(axes); i++) {
        const char *name = json_string_value(json_object_get(json_array_get(axes, i), "name"));
        json_t *mean = json_object_get(json_object_get(pos, name ? name : ""), "mean");
        size_t k = strlen(buf);
        json_t *sd = json_object_get(json_object_get(pos, name ? name : ""), "sd");
        if (name && json_is_number(mean))
            snprintf(buf + k, n - k, "%s%s %+.2f (sd %.2f)", k ? ", " : "", name, json_number_value(mean), json_number_value(sd));
    }
    if (!buf[0]) snprintf(buf, n, "(no position)");
    size_t k = strlen(buf);
    if (ev) snprintf(buf + k, n - k, ", invalid %.3f", json_number_value(json_object_get(ev, "invalid_rate")));
    json_decref(doc);
    free(p);
    free(d);
    return found;
}

/* The reward accuracy of the last step and its mean over the last ten, from metrics.jsonl. */
static void accuracy(const char *dir, const char *stage, char *buf, size_t n) {
    char *d = pt_path_join(dir, stage), *p = d ? pt_path_join(d, "metrics.jsonl") : NULL;
    char *text = NULL;
    size_t len;
    snprintf(buf, n, "(no metrics)");
    if (p && !pt_file_read_all(p, &text, &len)) {
        double acc[10], margin = 0;
        long step = 0;
        int k = 0;
        for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
            json_t *m = json_loads(line, 0, NULL);
            json_t *a = json_object_get(m, "rewards/accuracies");
            if (json_is_number(a)) {
                acc[k++ % 10] = json_number_value(a);
                step = (long)json_integer_value(json_object_get(m, "step"));
                margin = json_number_value(json_object_get(m, "rewards/margins"));
            }
            json_decref(m);
        }
        if (k) {
            double mean = 0;
            int m = k < 10 ? k : 10;
            for (int i = 0; i < m; i++) mean += acc[i];
            snprintf(buf, n, "reward accuracy %.2f at step %ld (mean of the last %d steps %.2f), margin %.3f", acc[(k - 1) % 10], step, m,
                     mean / m, margin);
        }
    }
    free(text);
    free(p);
    free(d);
}

/* "50 unseen pairs, reward accuracy 0.00 -> 0.86, margin 0.00 -> 2.31": the first and the last
 * rows of eval_metrics.jsonl; 0 when the stage has none. */
static int heldout(const char *dir, const char *stage, char *buf, size_t n) {
    char *d = pt_path_join(dir, stage), *p = d ? pt_path_join(d, "eval_metrics.jsonl") : NULL;
    char *text = NULL;
    size_t len;
    int found = 0;
    if (p && !pt_file_read_all(p, &text, &len)) {
        json_t *first = NULL, *last = NULL;
        for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
            json_t *m = json_loads(line, 0, NULL);
            if (!json_is_number(json_object_get(m, "eval_rewards/accuracies"))) { json_decref(m); continue; }
            if (!first) first = m;
            else { json_decref(last); last = m; }
        }
        if (first) {
            json_t *l = last ? last : first;
            snprintf(buf, n, "%ld unseen pairs, reward accuracy %.2f -> %.2f, margin %.2f -> %.2f (steps %ld -> %ld)",
                     (long)json_integer_value(json_object_get(l, "eval_pairs")), json_number_value(json_object_get(first, "eval_rewards/accuracies")),
                     json_number_value(json_object_get(l, "eval_rewards/accuracies")), json_number_value(json_object_get(first, "eval_rewards/margins")),
                     json_number_value(json_object_get(l, "eval_rewards/margins")), (long)json_integer_value(json_object_get(first, "step")),
                     (long)json_integer_value(json_object_get(l, "step")));
            found = 1;
        }
        json_decref(first);
        json_decref(last);
    }
    free(text);
    free(p);
    free(d);
    return found;
}

int cmd_demo(int argc, char **argv) {
    const char *cmd = "demo", *out = "demo-run";
    long pairs = -1, steps = -1, every = -1, v;
    run_request q = {0};
    const char *sets[64 + 4] = {0}; /* --set overrides, then the demo's own */
    int ns = 0;
    static const struct option opts[] = {{"out", required_argument, 0, 'o'},     {"pairs", required_argument, 0, 'p'},
                                         {"steps", required_argument, 0, 's'},   {"eval-every", required_argument, 0, 'e'},
                                         {"threads", required_argument, 0, 'j'}, {"quiet", no_argument, 0, 'q'},
                                         {"print-recipe", no_argument, 0, 'P'},  {"set", required_argument, 0, 'S'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    int opt;
    opterr = 0;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 'o': out = optarg; break;
        case 'p':
            if (!cli_parse_int(optarg, 1, 1000000, &pairs)) return cli_usage_error(cmd, "--pairs wants an integer 1..1000000, got '%s'", optarg);
            break;
        case 's':
            if (!cli_parse_int(optarg, 1, 1000000, &steps)) return cli_usage_error(cmd, "--steps wants an integer 1..1000000, got '%s'", optarg);
            break;
        case 'e':
            if (!cli_parse_int(optarg, 0, 1000000, &every)) return cli_usage_error(cmd, "--eval-every wants an integer >= 0, got '%s'", optarg);
            break;
        case 'j':
            if (!cli_parse_int(optarg, 1, 1024, &v)) return cli_usage_error(cmd, "--threads wants an integer 1..1024, got '%s'", optarg);
            q.threads = (int)v;
            break;
        case 'q': q.quiet = true; break;
        case 'S':
            if (ns >= 64) return cli_usage_error(cmd, "at most 64 --set overrides");
            sets[ns++] = optarg;
            break;
        case 'P': fputs(run_demo_recipe, stdout); return 0;
        case 'h': fputs(usage_text, stdout); return 0;
        default: return cli_usage_error(cmd, "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) { return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]); }

    /* the recipe goes into the run directory: the run is then reproducible from there */
    pt_status st = pt_mkdir_p(out);
    char *recipe = st ? NULL : pt_path_join(out, "recipe.yaml");
    if (!st && !recipe) st = pt_error(PT_ERR_OOM, "out of memory");
    if (!st) st = pt_file_write_atomic(recipe, run_demo_recipe, strlen(run_demo_recipe));
    if (st) { free(recipe); return cli_fail(cmd, st); }
    char set[3][64];
    int k = 0;
    if (pairs > 0) snprintf(set[k], sizeof set[k], "data.sample=%ld", pairs), sets[ns++] = set[k++];
    if (steps > 0) snprintf(set[k], sizeof set[k], "train.max_steps=%ld", steps), sets[ns++] = set[k++];
    if (every >= 0) snprintf(set[k], sizeof set[k], "eval.every=%ld", every), sets[ns++] = set[k++];
    q.recipe = recipe;
    q.sets = sets;
    q.out = out;
    char *dir = NULL;
    double t0 = pt_now_s();
    int rc = run_pipeline(cmd, &q, &dir);
    double secs = pt_now_s() - t0;
    if (!rc) {
        char buf[512];
        printf("\ndemo finished in %.0f s (%dm%02ds)\n", secs, (int)secs / 60, (int)secs % 60);
        static const char *who[3] = {"base", "left", "right"};
        /* one compass stage per mode when the recipe has two (compass-base-logprob, ...) */
        static const char *modes[3] = {"", "-logprob", "-generate"};
        for (int md = 0; md < 3; md++)
            for (int i = 0; i < 3; i++) {
                char stage[48];
                snprintf(stage, sizeof stage, "compass-%s%s", who[i], modes[md]);
                if (!position(dir, stage, buf, sizeof buf)) continue;
                if (md) printf("  %-6s %-9s %s\n", who[i], modes[md] + 1, buf);
                else printf("  %-6s %s\n", who[i], buf);
            }
        for (int i = 1; i < 3; i++) {
            char stage[32];
            snprintf(stage, sizeof stage, "train-%s", who[i]);
            accuracy(dir, stage, buf, sizeof buf);
            printf("  %-6s %s\n", who[i], buf);
            if (heldout(dir, stage, buf, sizeof buf)) printf("  %-6s held-out: %s\n", who[i], buf);
        }
        char *report = pt_path_join(dir, "report/report.html");
        printf("report: %s\n", report ? report : "");
        free(report);
    }
    free(dir);
    free(recipe);
    return rc;
}
