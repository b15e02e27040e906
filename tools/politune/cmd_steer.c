/* politune steer build: a steering vector from preference pairs (src/data/steer_build.h),
 * written as safetensors for --steer FILE[:SCALE][@LAYERS] (docs/steering.md). */
#include <stdlib.h>
#include <math.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "data/steer_build.h"

static const char *usage =
    "usage: politune steer build --model PATH --pairs FILE --layer L|all --out VEC.safetensors [options]\n\n"
    "Builds a steering vector (Contrastive Activation Addition): at the output of layer L (or of\n"
    "every layer), the mean residual-stream activation over the chosen response's tokens minus the\n"
    "same over the rejected response's, averaged over the pairs. Apply it with\n"
    "--steer VEC.safetensors:SCALE[@LAYERS] on any command that runs the model, or dial it with\n"
    "politune dial --steer VEC.safetensors --scales LIST.\n\n"
    "options:\n"
    "  --model PATH          GGUF file or Hugging Face model directory (required)\n"
    "  --pairs FILE          preference pairs: the PoliTune chat JSON or JSONL prompt/chosen/rejected\n"
    "  --layer L|all         the layer (0-based) whose output is steered, or every layer\n"
    "  --out FILE            the vector (safetensors, one tensor direction.L per layer; atomic)\n"
    "  --template NAME       how text prompts are rendered: alpaca (default, as politune train),\n"
    "                        chat (the model's own), none, or a template name\n"
    "  --max-pairs N         use the first N pairs (default: all)\n"
    "  --max-seq-len N       longest prompt + response, prompts cut first (default 1024)\n"
    "  --threads N           worker threads\n";

static void progress(void *user, int done, int n) {
    (void)user;
    if (done == n || done % 50 == 0) fprintf(stderr, "politune steer: %d/%d pairs\n", done, n);
}

int cmd_steer(int argc, char **argv) {
    const char *cmd = "steer";
    if (argc < 2 || strcmp(argv[1], "build")) {
        if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) { fputs(usage, stdout); return 0; }
        return cli_usage_error(cmd, "the subcommand is 'build' (politune steer build --model PATH --pairs FILE --layer L --out FILE)");
    }
    argc--, argv++;
    const char *pairs = NULL, *layer = NULL, *out = NULL, *tmpl = "alpaca", *max_pairs_s = NULL, *max_len_s = NULL;
    cli_model_opts mo = {0};
    enum { O_PAIRS = 3100, O_LAYER, O_OUT, O_TEMPLATE, O_MAX_PAIRS, O_MAX_LEN };
    static const struct option longopts[] = {CLI_MODEL_LONGOPTS,
                                             {"pairs", required_argument, 0, O_PAIRS},
                                             {"layer", required_argument, 0, O_LAYER},
                                             {"out", required_argument, 0, O_OUT},
                                             {"template", required_argument, 0, O_TEMPLATE},
                                             {"max-pairs", required_argument, 0, O_MAX_PAIRS},
                                             {"max-seq-len", required_argument, 0, O_MAX_LEN},
                                             {"help", no_argument, 0, 'h'},
                                             {0, 0, 0, 0}};
    cli_bind binds[] = {{O_PAIRS, &pairs, NULL}, {O_LAYER, &layer, NULL}, {O_OUT, &out, NULL}, {O_TEMPLATE, &tmpl, NULL},
                        {O_MAX_PAIRS, &max_pairs_s, NULL}, {O_MAX_LEN, &max_len_s, NULL}, {0, NULL, NULL}};
    cli_option_group groups[] = {{cli_model_group, &mo}, {cli_bind_group, binds}, {NULL, NULL}};
    int rc = cli_getopt("steer build", argc, argv, longopts, usage, false, groups);
    if (rc) return rc == CLI_HELP_SHOWN ? 0 : rc;
    if (!mo.model || !pairs || !layer || !out) return cli_usage_error(cmd, "--model, --pairs, --layer and --out are required");
    if (mo.n_adapters || mo.steer) return cli_usage_error(cmd, "a steering vector is built on the base model: no --adapter or --steer");
    long max_pairs = 0, max_len = 1024, lay = -1;
    if (max_pairs_s && !cli_parse_int(max_pairs_s, 1, 1L << 30, &max_pairs)) return cli_usage_error(cmd, "--max-pairs wants a positive integer, got '%s'", max_pairs_s);
    if (max_len_s && !cli_parse_int(max_len_s, 2, 1 << 20, &max_len)) return cli_usage_error(cmd, "--max-seq-len wants an integer >= 2, got '%s'", max_len_s);
    if (strcmp(layer, "all") && !cli_parse_int(layer, 0, 1 << 20, &lay)) return cli_usage_error(cmd, "--layer wants a layer number or 'all', got '%s'", layer);
    if ((rc = cli_device_select(cmd, mo.device))) return rc;
    pt_backend_set_threads(mo.threads);
    pt_model *m = NULL;
    pt_dataset d = {0};
    pt_steer *s = NULL;
    pt_status st = pt_model_load(&m, mo.model);
    if (!st && lay >= m->cfg.n_layers) st = pt_error(PT_ERR_ARG, "--layer %ld: %s has layers 0..%d", lay, mo.model, m->cfg.n_layers - 1);
    pt_data_opts o = {.pairs = true, .tok = m ? m->tok : NULL, .vocab = m ? m->cfg.vocab_size : 0, .max_seq_len = (int)max_len};
    if (!st) {
        if (!strcmp(tmpl, "none")) o.tmpl = PT_CHAT_NONE;
        else if (!strcmp(tmpl, "chat")) {
            o.tmpl = m->chat;
            if (o.tmpl == PT_CHAT_NONE) st = pt_error(PT_ERR_ARG, "--template chat: %s has no recognised chat template", mo.model);
        } else st = pt_chat_template_from_name(tmpl, &o.tmpl);
    }
    if (!st) {
        o.eos = m->tok ? pt_tokenizer_eos(m->tok) : -1; /* no tokenizer: only pre-tokenized pairs are readable */
        if (o.eos < 0) o.eos = m->cfg.eos_id;
        st = pt_dataset_load(&d, pairs, &o);
    }
    if (!st) st = pt_steer_build(&s, m, &d, (int)max_pairs, progress, NULL);
    if (!st && lay >= 0)
        for (int l = 0; l < s->n_layers; l++) s->has[l] = l == lay;
    if (!st) st = pt_steer_save(s, out, mo.model);
    if (st) rc = cli_fail(cmd, st);
    else {
        double norm = 0;
        int l0 = lay >= 0 ? (int)lay : s->n_layers - 1;
        for (int k = 0; k < s->dim; k++) norm += (double)s->v[(size_t)l0 * s->dim + k] * s->v[(size_t)l0 * s->dim + k];
        printf("{\"out\":");
        cli_json_string(stdout, out);
        printf(",\"pairs\":%d,\"layers\":\"%s\",\"dim\":%d,\"norm_layer_%d\":%.6g}\n", max_pairs > 0 && max_pairs < d.n ? (int)max_pairs : d.n, layer,
               s->dim, l0, sqrt(norm));
    }
    pt_steer_free(s);
    pt_dataset_free(&d);
    pt_model_free(m);
    return rc;
}
