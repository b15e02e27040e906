/* Dataset readers: the PoliTune chat JSON rendered with the paper's alpaca template (BOS from
 * the tokenizer, EOS after every response), Hugging Face preference JSONL, SFT records
 * (prompt/response, prompt/completion, messages, pre-tokenized), truncation (prompt cut from
 * the left first), and malformed records reported by file and line or skipped. */
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "internal.h"
#include "test.h"
#include "train/data.h"

static pt_model *stories(void) {
    pt_model *m = NULL;
    if (pt_model_load(&m, pt_test_shared("assets/models/stories260K/stories260K.gguf")) != PT_OK) {
        pt_test_fail(__FILE__, __LINE__, "%s", pt_errmsg());
        return NULL;
    }
    return m;
}

static pt_data_opts opts_for(const pt_model *m, bool pairs) {
    return (pt_data_opts){.pairs = pairs, .tok = m->tok, .tmpl = PT_CHAT_ALPACA, .eos = pt_tokenizer_eos(m->tok),
                          .vocab = m->cfg.vocab_size, .max_seq_len = 0, .skip_bad = false};
}

static int32_t *encode(const pt_model *m, const char *text, bool special, int *n) {
    int32_t *ids = NULL;
    size_t nn = 0;
    if (pt_tokenizer_encode(m->tok, text, strlen(text), special, &ids, &nn) != PT_OK) pt_test_fail(__FILE__, __LINE__, "%s", pt_errmsg());
    *n = (int)nn;
    return ids;
}

static bool same(const int32_t *a, int na, const int32_t *b, int nb) { return na == nb && !memcmp(a, b, sizeof(int32_t) * na); }

/* The alpaca prompt of one instruction, as ids (BOS as the tokenizer adds it). */
static int32_t *alpaca(const pt_model *m, const char *instruction, int *n) {
    pt_chat_msg msg = {"user", instruction};
    char *text = NULL;
    if (pt_chat_render(PT_CHAT_ALPACA, &msg, 1, true, NULL, &text) != PT_OK) pt_test_fail(__FILE__, __LINE__, "%s", pt_errmsg());
    CHECK(text && strstr(text, "### Instruction:\n") && strstr(text, "\n\n### Response:\n"));
    int32_t *ids = encode(m, text ? text : "", true, n);
    free(text);
    return ids;
}

PT_TEST(test_train_data_politune_json) {
    pt_model *m = stories();
    REQUIRE(m);
    const char *path = pt_test_shared("assets/data/politune/politune-right.json");
    pt_data_opts o = opts_for(m, true);
    pt_dataset d;
    REQUIRE_OK(pt_dataset_load(&d, path, &o));
    json_t *all = json_load_file(path, 0, NULL);
    REQUIRE(all);
    CHECK(d.n == (int)json_array_size(all) && d.n > 10);
    CHECK(d.n_skipped == 0 && d.n_truncated == 0);
    for (int i = 0; i < d.n && i < 5; i++) {
        json_t *rec = json_array_get(all, i), *ch = json_object_get(rec, "chosen"), *rj = json_object_get(rec, "rejected");
        const char *user = json_string_value(json_object_get(json_array_get(ch, 0), "content"));
        const char *c = json_string_value(json_object_get(json_array_get(ch, 1), "content"));
        const char *r = json_string_value(json_object_get(json_array_get(rj, 1), "content"));
        int np, nc, nr;
        int32_t *p = alpaca(m, user, &np), *ci = encode(m, c, false, &nc), *ri = encode(m, r, false, &nr);
        CHECK_MSG(same(d.ex[i].prompt, d.ex[i].np, p, np), "record %d: prompt is not the alpaca rendering", i);
        CHECK(d.ex[i].prompt[0] == pt_tokenizer_bos(m->tok));
        CHECK(d.ex[i].nr[0] == nc + 1 && !memcmp(d.ex[i].resp[0], ci, sizeof(int32_t) * nc));
        CHECK(d.ex[i].nr[1] == nr + 1 && !memcmp(d.ex[i].resp[1], ri, sizeof(int32_t) * nr));
        CHECK(d.ex[i].resp[0][nc] == pt_tokenizer_eos(m->tok) && d.ex[i].resp[1][nr] == pt_tokenizer_eos(m->tok));
        free(p), free(ci), free(ri);
    }
    CHECK(d.ex[0].line == 1 && d.ex[1].line == 1); /* the file is one line */
    /* the same data digest twice, another for other data */
    pt_dataset d2;
    REQUIRE_OK(pt_dataset_load(&d2, pt_test_shared("assets/data/politune/politune-left.json"), &o));
    CHECK(pt_dataset_hash(&d) == pt_dataset_hash(&d) && pt_dataset_hash(&d) != pt_dataset_hash(&d2));
    pt_dataset_free(&d2);

    /* truncation: prompts cut from the left first, then responses from the right */
    o.max_seq_len = 48;
    pt_dataset t;
    REQUIRE_OK(pt_dataset_load(&t, path, &o));
    CHECK(t.n == d.n && t.n_truncated > 0 && t.n_cut_tokens > 0);
    for (int i = 0; i < t.n; i++) {
        const pt_example *a = &t.ex[i], *b = &d.ex[i];
        for (int k = 0; k < 2; k++) CHECK(a->np + a->nr[k] <= 48);
        CHECK(a->np >= 1 && a->prompt[a->np - 1] == b->prompt[b->np - 1]); /* the prompt keeps its end */
        if (a->np > 1) CHECK(a->nr[0] == b->nr[0] && a->nr[1] == b->nr[1]);
        CHECK(!memcmp(a->resp[0], b->resp[0], sizeof(int32_t) * a->nr[0]));
    }
    pt_dataset_free(&t);
    json_decref(all);
    pt_dataset_free(&d);
    pt_model_free(m);
}

static pt_status parse(pt_dataset *d, const char *text, const pt_data_opts *o) { return pt_dataset_parse(d, text, strlen(text), "mem.jsonl", o); }

PT_TEST(test_train_data_formats) {
    pt_model *m = stories();
    REQUIRE(m);
    pt_data_opts o = opts_for(m, true);
    pt_dataset d;
    /* Hugging Face preference JSONL; a message-list prompt; conversational responses */
    const char *hf = "{\"prompt\": \"Tell a story.\", \"chosen\": \"Once upon a time.\", \"rejected\": \"No.\"}\n"
                     "\n"
                     "{\"prompt\": [{\"role\": \"user\", \"content\": \"Tell a story.\"}], \"chosen\": [{\"role\": \"assistant\", \"content\": \"Once upon a time.\"}],"
                     " \"rejected\": [{\"role\": \"assistant\", \"content\": \"No.\"}]}\n";
    REQUIRE_OK(parse(&d, hf, &o));
    CHECK(d.n == 2 && d.ex[0].line == 1 && d.ex[1].line == 3);
    CHECK(same(d.ex[0].prompt, d.ex[0].np, d.ex[1].prompt, d.ex[1].np));
    CHECK(same(d.ex[0].resp[0], d.ex[0].nr[0], d.ex[1].resp[0], d.ex[1].nr[0]));
    pt_dataset_free(&d);

    /* SFT: prompt/response, prompt/completion, messages and the chosen side of a pair agree */
    o.pairs = false;
    const char *sft = "{\"prompt\": \"Tell a story.\", \"response\": \"Once upon a time.\"}\n"
                      "{\"prompt\": \"Tell a story.\", \"completion\": \"Once upon a time.\"}\n"
                      "{\"messages\": [{\"role\": \"user\", \"content\": \"Tell a story.\"}, {\"role\": \"assistant\", \"content\": \"Once upon a time.\"}]}\n"
                      "{\"prompt\": \"Tell a story.\", \"chosen\": \"Once upon a time.\", \"rejected\": \"No.\"}\n";
    REQUIRE_OK(parse(&d, sft, &o));
    CHECK(d.n == 4 && !d.pairs);
    for (int i = 1; i < d.n; i++) {
        CHECK(same(d.ex[i].prompt, d.ex[i].np, d.ex[0].prompt, d.ex[0].np));
        CHECK(same(d.ex[i].resp[0], d.ex[i].nr[0], d.ex[0].resp[0], d.ex[0].nr[0]));
    }
    pt_dataset_free(&d);

    /* pre-tokenized records are taken verbatim: no template, BOS or EOS */
    REQUIRE_OK(parse(&d, "{\"prompt_ids\": [5, 6, 7], \"response_ids\": [8, 9]}\n", &o));
    CHECK(d.n == 1 && d.ex[0].np == 3 && d.ex[0].prompt[0] == 5 && d.ex[0].nr[0] == 2 && d.ex[0].resp[0][1] == 9);
    pt_dataset_free(&d);

    /* template none: the prompt text as it is, BOS from the tokenizer */
    o.tmpl = PT_CHAT_NONE;
    REQUIRE_OK(parse(&d, "{\"prompt\": \"Once upon a time\", \"response\": \" there was\"}\n", &o));
    int n;
    int32_t *want = encode(m, "Once upon a time", true, &n);
    CHECK(same(d.ex[0].prompt, d.ex[0].np, want, n));
    free(want);
    pt_dataset_free(&d);

    /* without a tokenizer only pre-tokenized records are readable */
    o.tok = NULL;
    CHECK(parse(&d, "{\"prompt\": \"a\", \"response\": \"b\"}\n", &o) == PT_ERR_FORMAT);
    CHECK_MSG(strstr(pt_errmsg(), "mem.jsonl:1: a text record needs a model with a tokenizer"), "%s", pt_errmsg());
    pt_model_free(m);
}

static void expect_error(const pt_data_opts *o, const char *text, const char *needle) {
    pt_dataset d;
    pt_status st = parse(&d, text, o);
    CHECK_MSG(st == PT_ERR_FORMAT && strstr(pt_errmsg(), needle), "status %d, message '%s', expected '%s'", st, pt_errmsg(), needle);
    if (!st) pt_dataset_free(&d);
}

PT_TEST(test_train_data_errors) {
    pt_model *m = stories();
    REQUIRE(m);
    pt_data_opts o = opts_for(m, true);
    expect_error(&o, "{\"prompt\": \"a\", \"chosen\": \"b\", \"rejected\": \"c\"}\n{\"prompt\": \"a\", \"chosen\": \"b\"\n", "mem.jsonl:2: invalid JSON");
    expect_error(&o, "\n\n{\"prompt\": \"a\", \"chosen\": \"b\"}\n", "mem.jsonl:3: a preference record needs 'chosen' and 'rejected'");
    expect_error(&o, "{\"prompt\": \"a\", \"chosen\": \"b\", \"rejected\": \"c\"}\n[1, 2]\n", "mem.jsonl:2: a record must be a JSON object");
    expect_error(&o, "[1, 2]\n", "mem.jsonl:1: invalid JSON");
    expect_error(&o, "{\"question\": \"a\"}\n", "mem.jsonl:1: unrecognised record");
    expect_error(&o, "{\"prompt\": \"  \", \"chosen\": \"b\", \"rejected\": \"c\"}\n{\"prompt\": \"\", \"chosen\": \"b\", \"rejected\": \"c\"}\n",
                 "mem.jsonl:2: empty prompt");
    expect_error(&o, "{\"prompt\": \"a\", \"chosen\": \"b\", \"rejected\": \"\"}\n", "mem.jsonl:1: empty rejected response");
    expect_error(&o, "{\"chosen\": [{\"role\": \"user\", \"content\": \"a\"}, {\"role\": \"assistant\", \"content\": \"b\"}],"
                     " \"rejected\": [{\"role\": \"user\", \"content\": \"x\"}, {\"role\": \"assistant\", \"content\": \"c\"}]}\n",
                 "mem.jsonl:1: 'chosen' and 'rejected' follow different prompts");
    expect_error(&o, "{\"chosen\": [{\"role\": \"user\", \"content\": \"a\"}], \"rejected\": [{\"role\": \"user\", \"content\": \"a\"}]}\n",
                 "mem.jsonl:1: 'chosen' must end with an assistant message");
    expect_error(&o, "{\"chosen\": [{\"role\": \"bot\", \"content\": \"a\"}], \"rejected\": []}\n", "role 'bot'");
    expect_error(&o, "{\"prompt_ids\": [1, -2], \"chosen_ids\": [3], \"rejected_ids\": [4]}\n", "'prompt_ids'[1] = -2 is outside the vocabulary");
    expect_error(&o, "{\"prompt_ids\": [1, 2.5], \"chosen_ids\": [3], \"rejected_ids\": [4]}\n", "'prompt_ids'[1] is not an integer");
    expect_error(&o, "{\"prompt_ids\": [], \"chosen_ids\": [3], \"rejected_ids\": [4]}\n", "'prompt_ids' is empty");
    /* JSON arrays: the line where the bad record starts */
    expect_error(&o, "[\n {\"prompt_ids\": [1], \"chosen_ids\": [2], \"rejected_ids\": [3]},\n\n {\"prompt_ids\": [1],\n  \"chosen_ids\": [2]}\n]",
                 "mem.jsonl:4: a pre-tokenized pair needs");
    expect_error(&o, "[\n {\"prompt_ids\": [1], \"chosen_ids\": [2], \"rejected_ids\": [3]}\n {\"prompt_ids\": [1]}\n]", "mem.jsonl:3: expected ','");
    expect_error(&o, "[\n {\"prompt_ids\": [1], \"chosen_ids\": [2], \"rejected_ids\": [3]},\n", "not closed");
    expect_error(&o, "", "no usable records");
    /* skip_bad: malformed records are skipped and counted; a file of only bad ones is an error */
    o.skip_bad = true;
    pt_dataset d;
    CHECK_OK(parse(&d, "{\"prompt\": \"a\", \"chosen\": \"b\", \"rejected\": \"c\"}\n{oops\n{\"prompt\": \"\", \"chosen\": \"b\", \"rejected\": \"c\"}\n"
                       "{\"prompt\": \"d\", \"chosen\": \"e\", \"rejected\": \"f\"}\n",
                   &o));
    CHECK(d.n == 2 && d.n_skipped == 2 && d.ex[1].line == 4);
    pt_dataset_free(&d);
    expect_error(&o, "{oops\n", "no usable records (all were skipped as malformed)");
    pt_model_free(m);
}
