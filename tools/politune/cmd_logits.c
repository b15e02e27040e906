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

int cmd_logits(int argc, char **argv) {
    const char *cmd = "logits", *ids_arg = NULL;
    cli_model_opts mo = {0};
    static const struct option opts[] = {CLI_MODEL_LONGOPTS, {"ids", required_argument, 0, 'I'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    int opt;
    opterr = 0;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        int r = cli_model_option(&mo, cmd, opt, optarg);
        if (r < 0) return 2;
        if (r) continue;
        if (opt == 'I') ids_arg = optarg;
        else if (opt == 'h') { fputs(usage, stdout); return 0; }
        else return cli_usage_error(cmd, "unknown or incomplete option '%s'", argv[optind - 1]);
    }
    if (optind < argc) return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
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
