/* politune run: the whole PoliTune pipeline from one YAML recipe — select, synth, pairs,
 * train, compass, report — each stage a command of this binary run in the run directory,
 * skipped when it is up to date, resumed when it was interrupted (run_*.c). */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "run_driver.h"
#include "run_pairs.h"
#include "util/file.h"

static const char *usage_text =
    "usage: politune run RECIPE.yaml [--out RUN_DIR] [--from STAGE] [--dry-run] [--threads N] [--quiet]\n"
    "                    [--set KEY=VALUE ...]\n\n"
    "Runs the pipeline a recipe describes, each stage in its own folder of the run directory:\n"
    "  select-SIDE, synth-SIDE   judge the corpus's posts, make preference pairs (data.corpus)\n"
    "  pairs-TARGET              sample and mix the pairs of each target (seeded)\n"
    "  train-TARGET              LoRA DPO/SFT adapter (and its compass trajectory with eval.every)\n"
    "  compass-base, compass-TARGET   the Political Compass of the base model and each adapter\n"
    "  report                    report.html with every point and trajectory\n"
    "Every stage writes manifest.json (inputs with SHA-256, parameters, its exact command line,\n"
    "tool version, outputs, completion). A rerun skips a stage whose manifest is complete with the\n"
    "same inputs and parameters, whose outputs exist, and none of whose inputs was remade in this\n"
    "run; an interrupted stage resumes (select/synth continue their JSONL, train its last\n"
    "checkpoint). The recipe is checked completely — unknown keys, missing files, targets whose\n"
    "pairs no stage makes — before anything runs (exit status 2). Recipe format: docs/pipeline.md.\n\n"
    "options:\n"
    "  --out DIR        the run directory (default: runs/<recipe name>)\n"
    "  --from STAGE     run STAGE (every instance of it) and every later stage even if up to date:\n"
    "                   select, synth, pairs, train, compass or report\n"
    "  --dry-run        check the recipe and print what would run or be skipped, with commands\n"
    "  --threads N      threads for each stage that runs a model (default: all cores)\n"
    "  --quiet          stages' own messages go to STAGE_DIR/log.txt instead of stderr\n"
    "  --set KEY=VALUE  override a recipe key, e.g. --set train.max_steps=20 (repeatable)\n\n"
    "'politune run --make-pairs ...' is the pairs stage's own command (see its --help).\n\n"
    "Prints one line per stage on stdout ('[4/7] train left ... done in 41 s' or 'skipped (up to\n"
    "date)') and, at the end, where the report is.\n\n"
    "example:\n"
    "  politune run recipes/senators-small.yaml --out runs/senators\n"
    "  politune run recipes/senators-small.yaml --out runs/senators --from compass\n";

int cmd_run(int argc, char **argv) {
    const char *cmd = "run";
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--make-pairs")) return run_make_pairs_main(argc, argv);
    run_request q = {0};
    const char **sets = calloc((size_t)argc + 1, sizeof *sets);
    if (!sets) return cli_fail(cmd, pt_error(PT_ERR_OOM, "out of memory"));
    int n_sets = 0;
    long v;
    static const struct option opts[] = {{"out", required_argument, 0, 'o'},  {"from", required_argument, 0, 'f'},
                                         {"dry-run", no_argument, 0, 'd'},     {"threads", required_argument, 0, 'j'},
                                         {"quiet", no_argument, 0, 'q'},       {"set", required_argument, 0, 's'},
                                         {"help", no_argument, 0, 'h'},        {0, 0, 0, 0}};
    int opt, rc = -1;
    opterr = 0;
    optind = 1;
    while (rc < 0 && (opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 'o': q.out = optarg; break;
        case 'f': q.from = optarg; break;
        case 'd': q.dry_run = true; break;
        case 'j':
            if (!cli_parse_int(optarg, 1, 1024, &v)) rc = cli_usage_error(cmd, "--threads wants an integer 1..1024, got '%s'", optarg);
            else q.threads = (int)v;
            break;
        case 'q': q.quiet = true; break;
        case 's': sets[n_sets++] = optarg; break;
        case 'h': fputs(usage_text, stdout); rc = 0; break;
        default: rc = cli_usage_error(cmd, "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (rc < 0 && optind >= argc) rc = cli_usage_error(cmd, "give the recipe file");
    if (rc < 0 && argc - optind > 1) rc = cli_usage_error(cmd, "unexpected argument '%s'", argv[optind + 1]);
    if (rc >= 0) { free(sets); return rc; }
    q.recipe = argv[optind];
    q.sets = sets;
    char *dir = NULL;
    rc = run_pipeline(cmd, &q, &dir);
    if (!rc && !q.dry_run) {
        char *report = pt_path_join(dir, "report/report.html");
        if (report && pt_file_exists(report)) printf("report: %s\n", report);
        else printf("run directory: %s\n", dir);
        free(report);
    }
    free(dir);
    free(sets);
    return rc;
}
