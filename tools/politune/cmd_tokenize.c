/* politune tokenize: text -> ids ({"ids":[...]}) or, with --decode, ids -> text. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"

static const char *usage =
    "usage: politune tokenize --model PATH_OR_TOKENIZER_JSON --text TEXT [--add-special]\n"
    "       politune tokenize --model PATH_OR_TOKENIZER_JSON --decode 1,2,3 [--skip-special]\n\n"
    "Prints one JSON line: {\"ids\":[...]} for --text, {\"text\":\"...\"} for --decode.\n"
    "PATH is a tokenizer.json file, a Hugging Face model directory or a GGUF file.\n"
    "Special tokens written in the text (e.g. <|eot_id|>) are recognised; --add-special also\n"
    "adds what the tokenizer's post-processor adds (e.g. BOS).\n";

static pt_status load_tokenizer(const char *path, pt_tokenizer **tok, pt_model **model) {
    size_t n = strlen(path);
    *tok = NULL;
    *model = NULL;
    if (n >= 5 && !strcmp(path + n - 5, ".json")) return pt_tokenizer_load_json(tok, path);
    PT_TRY(pt_model_load(model, path));
    if (!(*model)->tok) return pt_error(PT_ERR_FORMAT, "%s: no tokenizer in this checkpoint", path);
    *tok = (*model)->tok;
    return PT_OK;
}

int cmd_tokenize(int argc, char **argv) {
    const char *cmd = "tokenize", *model = NULL, *text = NULL, *decode = NULL;
    bool add_special = false, skip_special = false;
    static const struct option longopts[] = {{"model", required_argument, 0, 'm'}, {"text", required_argument, 0, 't'},
                                         {"decode", required_argument, 0, 'd'}, {"add-special", no_argument, 0, 'a'},
                                         {"skip-special", no_argument, 0, 's'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    cli_bind binds[] = {{'m', &model, NULL}, {'t', &text, NULL}, {'d', &decode, NULL}, {'a', NULL, &add_special}, {'s', NULL, &skip_special},
                        {0, NULL, NULL}};
    const cli_option_group groups[] = {{cli_bind_group, binds}, {NULL, NULL}};
    int parsed = cli_getopt(cmd, argc, argv, longopts, usage, false, groups);
    if (parsed) return parsed == CLI_HELP_SHOWN ? 0 : parsed;
    if (!model) return cli_usage_error(cmd, "--model PATH_OR_TOKENIZER_JSON is required");
    if (!text == !decode) return cli_usage_error(cmd, "give exactly one of --text TEXT or --decode LIST");
    pt_tokenizer *tok;
    pt_model *m;
    pt_status st = load_tokenizer(model, &tok, &m);
    int rc = 0;
    if (!st && text) {
        int32_t *ids = NULL;
        size_t n = 0;
        st = pt_tokenizer_encode(tok, text, strlen(text), add_special, &ids, &n);
        if (!st) {
            printf("{\"ids\":[");
            for (size_t i = 0; i < n; i++) printf(i ? ",%d" : "%d", ids[i]);
            printf("]}\n");
        }
        free(ids);
    } else if (!st) {
        int32_t *ids = NULL;
        int n = 0;
        char *out = NULL;
        size_t len = 0;
        st = cli_parse_ids(decode, &ids, &n);
        if (!st) st = pt_tokenizer_decode_n(tok, ids, (size_t)n, skip_special, &out, &len);
        if (!st) {
            printf("{\"text\":");
            cli_json_stringn(stdout, out, len);
            printf("}\n");
        }
        free(out);
        free(ids);
    }
    if (st) rc = cli_fail(cmd, st);
    if (m) pt_model_free(m);
    else pt_tokenizer_free(tok);
    return rc;
}
