/* politune merge: base model + LoRA adapter -> one checkpoint with W' = W + scale * B A, as a
 * Hugging Face safetensors directory or a GGUF file. */
#include <string.h>

#include "cli.h"
#include "commands.h"

static const char *usage =
    "usage: politune merge --model PATH --adapter DIR[:SCALE]... --out PATH [--format hf|gguf] [--type TYPE]\n\n"
    "Merges a PEFT LoRA adapter into the base weights (W + alpha/r * B A) and writes the result:\n"
    "a Hugging Face directory (config.json + model.safetensors) or a GGUF file. The format defaults\n"
    "to gguf when PATH ends in .gguf, else hf.\n\n"
    "options:\n"
    "  --model PATH     base model: GGUF file or Hugging Face directory\n"
    "  --adapter DIR[:SCALE]  PEFT adapter (adapter_config.json + adapter_model.safetensors) times\n"
    "                   SCALE (default 1); repeatable: W + sum of SCALE * alpha/r * B A, so a dial\n"
    "                   setting or a left/right mix can be exported\n"
    "  --out PATH       output directory (hf) or file (gguf)\n"
    "  --format F       hf or gguf\n"
    "  --type T         f32 (default), f16, bf16; for gguf also q8_0 and q4_0 (norms stay f32)\n"
    "  --threads N      worker threads (default: all cores)\n";

int cmd_merge(int argc, char **argv) {
    const char *cmd = "merge", *out = NULL, *format = NULL, *type = "f32";
    cli_model_opts mo = {0};
    static const struct option opts[] = {{"model", required_argument, 0, 'm'}, {"adapter", required_argument, 0, 'A'},
                                         {"threads", required_argument, 0, 'j'}, {"out", required_argument, 0, 'o'},
                                         {"format", required_argument, 0, 'f'}, {"type", required_argument, 0, 't'},
                                         {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    int opt;
    opterr = 0;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        int r = cli_model_option(&mo, cmd, opt, optarg);
        if (r < 0) return 2;
        if (r) continue;
        switch (opt) {
        case 'o': out = optarg; break;
        case 'f': format = optarg; break;
        case 't': type = optarg; break;
        case 'h': fputs(usage, stdout); return 0;
        default: return cli_usage_error(cmd, "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    if (!mo.model) return cli_usage_error(cmd, "--model PATH is required");
    if (!mo.adapter) return cli_usage_error(cmd, "--adapter DIR is required");
    if (!out) return cli_usage_error(cmd, "--out PATH is required");
    size_t ol = strlen(out);
    bool gguf = format ? !strcmp(format, "gguf") : ol > 5 && !strcmp(out + ol - 5, ".gguf");
    if (format && strcmp(format, "gguf") && strcmp(format, "hf")) return cli_usage_error(cmd, "--format wants hf or gguf, got '%s'", format);
    pt_dtype t;
    if (!strcmp(type, "f32")) t = PT_F32;
    else if (!strcmp(type, "f16")) t = PT_F16;
    else if (!strcmp(type, "bf16")) t = PT_BF16;
    else if (!strcmp(type, "q8_0")) t = PT_Q8_0;
    else if (!strcmp(type, "q4_0")) t = PT_Q4_0;
    else return cli_usage_error(cmd, "--type wants f32, f16, bf16, q8_0 or q4_0, got '%s'", type);
    if (!gguf && (t == PT_Q8_0 || t == PT_Q4_0)) return cli_usage_error(cmd, "--type %s needs --format gguf (safetensors holds f32, f16, bf16)", type);

    pt_backend_set_threads(mo.threads);
    cli_merged mg;
    int rc = cli_merged_open(cmd, &mo, &mg);
    pt_status st = rc ? PT_OK : gguf ? pt_model_save_gguf(mg.m, mg.a, out, t) : pt_model_save_hf(mg.m, mg.a, out, t, 0);
    if (st) rc = cli_fail(cmd, st);
    if (!rc) fprintf(stderr, "politune merge: wrote %s (%s, %s)\n", out, gguf ? "gguf" : "hf", type);
    cli_merged_close(&mg);
    return rc;
}
