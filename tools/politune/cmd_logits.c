/* politune logits: the stable debugging contract — one row of vocabulary logits per input
 * position, printed with full float precision, for parity checks against other engines. */
#include <stdlib.h>

#include "cli.h"
#include "commands.h"

static const char *usage =
    "usage: politune logits --model PATH --ids 1,2,3 [--adapter DIR]\n\n"
    "Runs the model over the token ids and prints {\"logits\":[[...],...]}: one row of\n"
    "vocabulary logits per input position, each value with 9 significant digits (float32 exact).\n\n"
    "options:\n" CLI_MODEL_HELP
    "  --ids LIST            comma-separated token ids (required)\n";

/* logits' own option: the ids (the model's are cli.c's). */
static int logits_option(void *opts, const char *cmd, int c, const char *arg) {
    if (c != 'I') return 0;
    *(const char **)opts = arg;
    return 1;
}

int cmd_logits(int argc, char **argv) {
    const char *cmd = "logits", *ids_arg = NULL;
    cli_model_opts mo = {0};
    static const struct option longopts[] = {CLI_MODEL_LONGOPTS, {"ids", required_argument, 0, 'I'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    const cli_option_group groups[] = {{cli_model_group, &mo}, {logits_option, &ids_arg}, {NULL, NULL}};
    int parsed = cli_getopt(cmd, argc, argv, longopts, usage, false, groups);
    if (parsed) return parsed == CLI_HELP_SHOWN ? 0 : parsed;
    if (!ids_arg) return cli_usage_error(cmd, "--ids LIST is required");
    int32_t *ids;
    int n;
    pt_status st = cli_parse_ids(ids_arg, &ids, &n);
    if (st) return cli_fail(cmd, st);
    if (!mo.ctx) mo.ctx = n;
    cli_session s;
    int rc = cli_session_open(&s, cmd, &mo, 1);
    if (rc) { free(ids); return rc; }
    const float *lg;
    st = pt_engine_forward_one(s.engine, 0, ids, n, PT_LOGITS_ALL, &lg);
    if (st) rc = cli_fail(cmd, st);
    else {
        const int V = s.model->cfg.vocab_size;
        /* large outputs: build each row in a buffer rather than millions of printf calls */
        char *row = malloc((size_t)V * 18 + 8);
        fputs("{\"logits\":[", stdout);
        for (int t = 0; t < n; t++) {
            size_t k = 0;
            row[k++] = t ? ',' : '[';
            if (t) row[k++] = '[';
            for (int v = 0; v < V; v++) k += (size_t)snprintf(row + k, 18, v ? ",%.9g" : "%.9g", lg[(size_t)t * V + v]);
            row[k++] = ']';
            fwrite(row, 1, k, stdout);
        }
        fputs("]}\n", stdout);
        free(row);
    }
    free(ids);
    cli_session_close(&s);
    return rc;
}
