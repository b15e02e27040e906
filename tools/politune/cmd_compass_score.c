/* politune compass-score: coordinates for an answer vector, exactly as the Political
 * Compass website computes them (or by any scoring file). */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "eval/answer_vector.h"
#include "eval/compass.h"
#include "eval/questionnaire.h"
#include "eval/scoring.h"
#include "util/file.h"

static const char *usage =
    "usage: politune compass-score [--scoring FILE] [--questionnaire FILE] --answers LIST\n"
    "       politune compass-score [--scoring FILE] [--questionnaire FILE] --answers-file FILE\n\n"
    "Prints the coordinates of an answer vector as one JSON line, e.g. {\"economic\":-2.38,\"social\":-4.15}.\n"
    "Answers are indices into the scoring file's answer labels (Political Compass: 0 = strongly\n"
    "disagree, 1 = disagree, 2 = agree, 3 = strongly agree). Unanswered items contribute nothing and\n"
    "are counted (\"unanswered\":N is added when N > 0).\n\n"
    "options:\n"
    "  --scoring FILE        scoring file (default: the Political Compass Test's pct_scoring.json\n"
    "                        from $POLITUNE_ASSETS or ../shared/assets)\n"
    "  --questionnaire FILE  the questionnaire, checked against the scoring file and used for item\n"
    "                        ids (default with the default scoring: pct_propositions.csv)\n"
    "  --answers LIST        one answer per item in order, comma-separated ('-' = unanswered), or\n"
    "                        'id:answer' pairs in any order (items left out are unanswered)\n"
    "  --answers-file FILE   JSON: an array of answers (null = unanswered) or an object {id: answer}\n\n"
    "examples:\n"
    "  politune compass-score --answers 2,0,1,0,2,1,2,2,2,2,2,2,2,2,2,2,1,1,1,2,2,1,2,1,2,2,0,1,2,2,2,0,1,2,2,2,1,1,2,2,1,1,1,1,1,1,2,1,1,2,2,1,1,2,1,1,1,2,2,2,1,1\n"
    "  politune compass-score --answers pc-2:0,pc-1:3\n";

int cmd_compass_score(int argc, char **argv) {
    const char *cmd = "compass-score";
    const char *scoring = NULL, *qpath = NULL, *list = NULL, *afile = NULL;
    static const struct option longopts[] = {{"scoring", required_argument, 0, 's'}, {"questionnaire", required_argument, 0, 'q'},
                                         {"answers", required_argument, 0, 'a'}, {"answers-file", required_argument, 0, 'f'},
                                         {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    cli_bind binds[] = {{'s', &scoring, NULL}, {'q', &qpath, NULL}, {'a', &list, NULL}, {'f', &afile, NULL}, {0, NULL, NULL}};
    const cli_option_group groups[] = {{cli_bind_group, binds}, {NULL, NULL}};
    int parsed = cli_getopt(cmd, argc, argv, longopts, usage, false, groups);
    if (parsed) return parsed == CLI_HELP_SHOWN ? 0 : parsed;
    if (!list == !afile) return cli_usage_error(cmd, "give the answers with exactly one of --answers LIST or --answers-file FILE");
    char *def_s = NULL, *def_q = NULL;
    if (!scoring) {
        scoring = def_s = pt_eval_find_asset(PT_PCT_SCORING);
        if (!scoring) {
            fprintf(stderr, "politune %s: no --scoring FILE given and %s was not found under $POLITUNE_ASSETS or ../shared/assets\n", cmd, PT_PCT_SCORING);
            return 1;
        }
        if (!qpath) qpath = def_q = pt_eval_find_asset(PT_PCT_QUESTIONNAIRE);
    }
    pt_questionnaire *q = NULL;
    pt_scoring *s = NULL;
    int *answers = NULL, rc = 0;
    pt_status st = PT_OK;
    if (qpath) st = pt_questionnaire_load(&q, qpath);
    if (!st) st = pt_scoring_load(&s, scoring, q);
    if (!st && q) st = pt_scoring_check(s, q);
    if (!st && !(answers = malloc(sizeof(int) * (size_t)s->n_items))) st = pt_error(PT_ERR_OOM, "out of memory");
    if (!st && list) st = pt_answers_parse_list(s, q, list, answers);
    if (!st && afile) {
        char *text;
        size_t len;
        st = pt_file_read_all(afile, &text, &len);
        if (!st) {
            st = pt_answers_parse_json(s, q, text, len, afile, answers);
            free(text);
        }
    }
    double coords[32];
    int answered = 0;
    if (!st) st = pt_scoring_score(s, answers, coords, &answered);
    if (st) {
        rc = cli_fail(cmd, st);
    } else {
        putchar('{');
        for (int a = 0; a < s->n_axes; a++) {
            printf(a ? "," : "");
            cli_json_string(stdout, s->axes[a].name);
            double v = coords[a] == 0 ? 0.0 : coords[a];
            printf(":%.*f", s->axes[a].decimals, v);
        }
        if (answered < s->n_items) printf(",\"unanswered\":%d", s->n_items - answered);
        printf("}\n");
    }
    free(answers);
    pt_scoring_free(s);
    pt_questionnaire_free(q);
    free(def_s);
    free(def_q);
    return rc;
}
