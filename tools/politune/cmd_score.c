/* politune score: summed and per-token log-probabilities of a continuation after a prompt. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"

static const char *usage =
    "usage: politune score --model PATH --prompt TEXT --continuation TEXT [--chat] [--system TEXT]\n"
    "       politune score --model PATH --prompt-ids LIST --continuation-ids LIST\n\n"
    "Prints {\"logprob\":SUM,\"n_tokens\":N,\"tokens\":[{\"id\":..,\"text\":..,\"logprob\":..},...]}:\n"
    "the log-probability of the continuation's tokens given the prompt, sum_t log p(token_t | before).\n"
    "The prompt gets BOS as the tokenizer says (or the chat template with --chat); the continuation\n"
    "is tokenised on its own, without special tokens.\n\n"
    "options:\n" CLI_MODEL_HELP
    "  --prompt TEXT / --prompt-ids LIST           the context\n"
    "  --continuation TEXT / --continuation-ids LIST   the text to score\n"
    "  --chat, --system TEXT                       render the prompt as a chat user turn\n";

int cmd_score(int argc, char **argv) {
    const char *cmd = "score", *prompt = NULL, *cont = NULL, *pids = NULL, *cids = NULL, *system = NULL;
    bool chat = false;
    cli_model_opts mo = {0};
    static const struct option opts[] = {CLI_MODEL_LONGOPTS, {"prompt", required_argument, 0, 'P'}, {"continuation", required_argument, 0, 'N'},
                                         {"prompt-ids", required_argument, 0, 'p'}, {"continuation-ids", required_argument, 0, 'n'},
                                         {"system", required_argument, 0, 'Y'}, {"chat", no_argument, 0, 'c'},
                                         {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    int opt;
    opterr = 0;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        int r = cli_model_option(&mo, cmd, opt, optarg);
        if (r < 0) return 2;
        if (r) continue;
        switch (opt) {
        case 'P': prompt = optarg; break;
        case 'N': cont = optarg; break;
        case 'p': pids = optarg; break;
        case 'n': cids = optarg; break;
        case 'Y': system = optarg; break;
        case 'c': chat = true; break;
        case 'h': fputs(usage, stdout); return 0;
        default: return cli_usage_error(cmd, "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    if (!prompt == !pids) return cli_usage_error(cmd, "give exactly one of --prompt TEXT or --prompt-ids LIST");
    if (!cont == !cids) return cli_usage_error(cmd, "give exactly one of --continuation TEXT or --continuation-ids LIST");
    cli_session s;
    int rc = cli_session_open(&s, cmd, &mo, 1);
    if (rc) return rc;
    int32_t *p = NULL, *c = NULL;
    int np = 0, nc = 0;
    size_t n;
    pt_status st = pids ? cli_parse_ids(pids, &p, &np) : cli_encode_prompt(&s, system, prompt, chat, &p, &np);
    if (!st && cids) st = cli_parse_ids(cids, &c, &nc);
    else if (!st) {
        if (!s.model->tok) st = pt_error(PT_ERR_ARG, "%s: no tokenizer; use --continuation-ids", s.model->path);
        else st = pt_tokenizer_encode(s.model->tok, cont, strlen(cont), false, &c, &n), nc = (int)n;
    }
    if (!st && nc == 0) st = pt_error(PT_ERR_ARG, "the continuation is empty");
    double sum = 0, *per = NULL;
    if (!st) {
        per = malloc(sizeof(double) * nc);
        const int32_t *pp = p, *cc = c;
        st = pt_score(s.engine, 1, &pp, &np, &cc, &nc, &sum, per);
    }
    if (st) rc = cli_fail(cmd, st);
    else {
        printf("{\"logprob\":%.9g,\"n_tokens\":%d,\"prompt_tokens\":%d,\"tokens\":[", sum, nc, np);
        for (int i = 0; i < nc; i++) {
            printf("%s{\"id\":%d,\"text\":", i ? "," : "", c[i]);
            char *t = NULL;
            if (s.model->tok && !pt_tokenizer_decode(s.model->tok, &c[i], 1, false, &t)) cli_json_string(stdout, t);
            else printf("null");
            free(t);
            printf(",\"logprob\":%.9g}", per[i]);
        }
        printf("]}\n");
    }
    free(per);
    free(p);
    free(c);
    cli_session_close(&s);
    return rc;
}
