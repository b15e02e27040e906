/* politune inspect: what a checkpoint is — architecture, sizes, weight types, tokenizer,
 * chat template — without running it. */
#include <string.h>

#include "cli.h"
#include "commands.h"

static const char *usage =
    "usage: politune inspect PATH [--json]\n\n"
    "Shows a checkpoint's architecture, sizes, weight types and memory, tokenizer and chat template.\n"
    "PATH is a GGUF file or a Hugging Face model directory.\n";

int cmd_inspect(int argc, char **argv) {
    const char *cmd = "inspect", *path = NULL;
    bool json = false;
    static const struct option opts[] = {{"json", no_argument, 0, 'J'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    int opt;
    opterr = 0;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) switch (opt) {
        case 'J': json = true; break;
        case 'h': fputs(usage, stdout); return 0;
        default: return cli_usage_error(cmd, "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    if (optind < argc) path = argv[optind++];
    if (!path) return cli_usage_error(cmd, "PATH is required");
    if (optind < argc) return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    pt_model *m;
    pt_status st = pt_model_load(&m, path);
    if (st) return cli_fail(cmd, st);
    const pt_config *c = &m->cfg;
    const char *wtype = pt_dtype_name(m->layers[0].wq.dtype);
    const char *tmpl = pt_chat_template_name(m->chat);
    const char *tk = m->tok ? pt_tokenizer_kind(m->tok) : "none";
    if (json) {
        printf("{\"path\":");
        cli_json_string(stdout, path);
        printf(",\"format\":\"%s\",\"architecture\":\"%s\",\"parameters\":%zu,\"hidden_size\":%d,\"layers\":%d,"
               "\"heads\":%d,\"kv_heads\":%d,\"head_dim\":%d,\"ffn_size\":%d,\"vocab_size\":%d,\"context_length\":%d,"
               "\"rope_theta\":%g,\"rope_llama3_scaling\":%s,\"norm_eps\":%g,\"tied_embeddings\":%s,\"qkv_bias\":%s,"
               "\"weight_type\":\"%s\",\"weight_bytes\":%zu,\"converted_bytes\":%zu,\"tokenizer\":\"%s\",\"tokenizer_vocab\":%d,"
               "\"bos_id\":%d,\"eos_id\":%d,\"chat_template\":\"%s\"}\n",
               m->from_gguf ? "gguf" : "huggingface", pt_arch_name(c->arch), pt_model_n_params(m), c->dim, c->n_layers, c->n_heads,
               c->n_kv_heads, c->head_dim, c->ffn_dim, c->vocab_size, c->max_ctx, c->rope_theta, c->rope_llama3 ? "true" : "false",
               c->norm_eps, c->tied_embeddings ? "true" : "false", c->qkv_bias ? "true" : "false", wtype, m->weight_bytes,
               m->converted_bytes, tk, m->tok ? pt_tokenizer_vocab_size(m->tok) : 0, m->tok ? pt_tokenizer_bos(m->tok) : c->bos_id,
               m->tok ? pt_tokenizer_eos(m->tok) : c->eos_id, tmpl);
    } else {
        printf("%s\n", path);
        printf("  format          %s\n", m->from_gguf ? "GGUF" : "Hugging Face (safetensors)");
        printf("  architecture    %s, %.2fM parameters\n", pt_arch_name(c->arch), pt_model_n_params(m) / 1e6);
        printf("  sizes           hidden %d, %d layers, %d heads (%d key/value, head dim %d), FFN %d, vocab %d\n", c->dim,
               c->n_layers, c->n_heads, c->n_kv_heads, c->head_dim, c->ffn_dim, c->vocab_size);
        printf("  context         %d tokens; RoPE theta %g%s\n", c->max_ctx, c->rope_theta,
               c->rope_llama3 ? " with llama3 frequency scaling" : "");
        printf("  options         rms eps %g%s%s\n", c->norm_eps, c->tied_embeddings ? ", tied embeddings" : "",
               c->qkv_bias ? ", q/k/v biases" : "");
        printf("  weights         %s, %.1f MiB in use (%.1f MiB converted at load)\n", wtype, m->weight_bytes / 1048576.0,
               m->converted_bytes / 1048576.0);
        if (m->tok)
            printf("  tokenizer       %s, %d tokens, BOS %d, EOS %d\n", tk, pt_tokenizer_vocab_size(m->tok), pt_tokenizer_bos(m->tok),
                   pt_tokenizer_eos(m->tok));
        else printf("  tokenizer       none (use token ids)\n");
        printf("  chat template   %s%s\n", tmpl, m->chat_source && m->chat == PT_CHAT_NONE ? " (checkpoint has an unrecognised template)" : "");
    }
    pt_model_free(m);
    return 0;
}
