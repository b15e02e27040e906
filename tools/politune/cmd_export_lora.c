/* politune export-lora: a PEFT LoRA adapter as llama.cpp's LoRA-adapter GGUF, so that
 * `llama-cli --lora FILE` (or llama-cpp-python's lora_path) applies politune's adapter to the
 * base GGUF without merging. */
#include <string.h>

#include "cli.h"
#include "commands.h"

static const char *usage =
    "usage: politune export-lora --model PATH --adapter DIR[:SCALE]... --out FILE.gguf [--gguf]\n\n"
    "Writes the adapter in llama.cpp's LoRA-adapter GGUF format (general.type \"adapter\",\n"
    "adapter.type \"lora\", adapter.lora.alpha, tensors <weight>.lora_a / .lora_b in float32),\n"
    "the format llama.cpp's convert_lora_to_gguf.py produces. The base model is read to name\n"
    "and check the weights and to order the Q/K rows as the base GGUF stores them; apply the\n"
    "result to a GGUF of the same base model, e.g. llama-cli -m base.gguf --lora FILE.gguf.\n\n"
    "options:\n"
    "  --model PATH     the adapter's base model: GGUF file or Hugging Face directory\n"
    "  --adapter DIR[:SCALE]  PEFT adapter (adapter_config.json + adapter_model.safetensors) times\n"
    "                   SCALE (default 1); several are written as one adapter of their summed\n"
    "                   ranks whose delta is the sum of the scaled deltas\n"
    "  --out FILE       the adapter GGUF to write (atomically)\n"
    "  --gguf           the output format (the only one, and the default)\n"
    "  -h, --help       this text\n\n"
    "example:\n"
    "  politune export-lora --model SmolLM2-135M-Instruct.Q4_1.gguf --adapter adapter-left \\\n"
    "      --out left-lora.gguf --gguf\n";

int cmd_export_lora(int argc, char **argv) {
    const char *cmd = "export-lora", *out = NULL;
    cli_model_opts mo = {0};
    static const struct option opts[] = {{"model", required_argument, 0, 'm'}, {"adapter", required_argument, 0, 'A'},
                                         {"out", required_argument, 0, 'o'},   {"gguf", no_argument, 0, 'g'},
                                         {"help", no_argument, 0, 'h'},        {0, 0, 0, 0}};
    int opt;
    opterr = 0;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        int r = cli_model_option(&mo, cmd, opt, optarg);
        if (r < 0) return 2;
        if (r) continue;
        switch (opt) {
        case 'o': out = optarg; break;
        case 'g': break;
        case 'h': fputs(usage, stdout); return 0;
        default: return cli_usage_error(cmd, "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    if (!mo.model) return cli_usage_error(cmd, "--model PATH is required");
    if (!mo.adapter) return cli_usage_error(cmd, "--adapter DIR is required");
    if (!out) return cli_usage_error(cmd, "--out FILE.gguf is required");
    cli_merged mg;
    int rc = cli_merged_open(cmd, &mo, &mg);
    pt_status st = rc ? PT_OK : pt_adapter_save_gguf(mg.a, mg.m, out);
    if (st) rc = cli_fail(cmd, st);
    if (!rc) fprintf(stderr, "politune export-lora: wrote %s (rank %d, alpha %g)\n", out, mg.a->r, (double)(mg.a->scale * mg.a->r));
    cli_merged_close(&mg);
    return rc;
}
