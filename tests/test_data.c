/* Data pipeline pieces without a server: CSV quoting and recovery, input records and their
 * bad-input messages, resumable JSONL output, prompt templates, judge reply parsing, the
 * agreement metrics on a hand-computed case, and a resumed in-process select run that ends up
 * byte-identical to an uninterrupted one. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "format/csv.h"
#include "data/jsonl.h"
#include "data/pipeline.h"
#include "data/records.h"
#include "internal.h"
#include "test.h"
#include "util/file.h"

static char *tmp_file(const char *name, const char *content) {
    char *p = pt_path_join(pt_test_tmpdir(), name);
    FILE *f = fopen(p, "wb");
    if (f) {
        fputs(content, f);
        fclose(f);
    }
    return p;
}

static bool has_issue(const pt_recordset *rs, const char *needle) {
    for (int i = 0; i < rs->n_issues; i++)
        if (strstr(rs->issues[i], needle)) return true;
    return false;
}

PT_TEST(test_data_csv_quoting) {
    const char *t = "\xEF\xBB\xBFid;text\r\n1;\"a;b\"\r\n2;\"line\none\"\n\n3;\"say \"\"hi\"\"\"\n4;plain \"quote\" inside\n5;\"unterminated";
    pt_csv_reader r;
    REQUIRE_OK(pt_csv_reader_init(&r, t, strlen(t), 0, "x.csv"));
    CHECK(r.delim == ';');
    char **f;
    int n, line;
    bool got;
    CHECK_OK(pt_csv_reader_next(&r, &f, &n, &line, &got));
    CHECK(got && n == 2 && !strcmp(f[0], "id") && line == 1);
    CHECK_OK(pt_csv_reader_next(&r, &f, &n, &line, &got));
    CHECK(got && n == 2 && !strcmp(f[1], "a;b") && line == 2);
    CHECK_OK(pt_csv_reader_next(&r, &f, &n, &line, &got));
    CHECK(got && !strcmp(f[1], "line\none") && line == 3);
    CHECK_OK(pt_csv_reader_next(&r, &f, &n, &line, &got));
    CHECK(got && !strcmp(f[1], "say \"hi\"") && line == 6);
    CHECK_OK(pt_csv_reader_next(&r, &f, &n, &line, &got));
    CHECK(got && !strcmp(f[1], "plain \"quote\" inside") && line == 7);
    pt_status st = pt_csv_reader_next(&r, &f, &n, &line, &got);
    CHECK(st == PT_ERR_FORMAT && strstr(pt_errmsg(), "x.csv:8") && strstr(pt_errmsg(), "never closed"));
    CHECK_OK(pt_csv_reader_next(&r, &f, &n, &line, &got));
    CHECK(!got);
    pt_csv_reader_free(&r);

    /* a bad record is reported with its line and the next one is read */
    const char *t2 = "a,b\n\"x\"y,1\nok,2\n";
    REQUIRE_OK(pt_csv_reader_init(&r, t2, strlen(t2), 0, "y.csv"));
    CHECK(r.delim == ',');
    CHECK_OK(pt_csv_reader_next(&r, &f, &n, &line, &got));
    st = pt_csv_reader_next(&r, &f, &n, &line, &got);
    CHECK(st == PT_ERR_FORMAT && strstr(pt_errmsg(), "y.csv:2: broken quoting"));
    CHECK_OK(pt_csv_reader_next(&r, &f, &n, &line, &got));
    CHECK(got && !strcmp(f[0], "ok") && line == 3);
    pt_csv_reader_free(&r);
}

PT_TEST(test_data_records_bad_input) {
    /* broken quoting, a wrong field count, invalid UTF-8, an empty text and a duplicate: each
     * skipped, counted and named by file and line; the good records survive */
    char *p = tmp_file("posts.csv",
                       "id,text,party\n"
                       "1,good one,D\n"
                       "2,\"broken\"quote,R\n"
                       "3,too,many,fields\n"
                       "4,bad \xC3\x28 utf8,R\n"
                       "5,   ,D\n"
                       "6,good one,D\n"
                       "7,\"another, good\",R\n");
    pt_recordset rs;
    pt_read_opts o = {.text_field = "text"};
    REQUIRE_OK(pt_records_load(&rs, p, &o));
    CHECK(rs.n == 2 && rs.n_read == 7 && rs.n_bad == 4 && rs.n_dup == 1);
    CHECK(has_issue(&rs, "posts.csv:3: broken quoting"));
    CHECK(has_issue(&rs, "posts.csv:4: 4 fields, the header has 3"));
    CHECK(has_issue(&rs, "posts.csv:5: field 'text' is not valid UTF-8"));
    CHECK(has_issue(&rs, "posts.csv:6: the 'text' field is empty"));
    CHECK(has_issue(&rs, "posts.csv:7: exact duplicate"));
    CHECK(rs.n == 2 && !strcmp(rs.rec[1].text, "another, good") && rs.rec[1].line == 8);
    CHECK(!strcmp(json_string_value(json_object_get(rs.rec[0].fields, "party")), "D"));
    /* the id is a stable hash of the text */
    char id[17];
    pt_data_id(id, "good one", 8);
    CHECK(!strcmp(rs.rec[0].id, id) && strlen(id) == 16);
    pt_records_free(&rs);
    free(p);

    /* JSONL: a line that is not JSON, a missing and a non-string text field */
    p = tmp_file("posts.jsonl", "{\"text\": \"a\"}\n{not json\n{\"body\": \"b\"}\n{\"text\": 3}\n\n{\"text\": \"c\", \"x\": {\"y\": 1}}\n");
    REQUIRE_OK(pt_records_load(&rs, p, &o));
    CHECK(rs.n == 2 && rs.n_bad == 3);
    CHECK(has_issue(&rs, "posts.jsonl:2: not valid JSON"));
    CHECK(has_issue(&rs, "posts.jsonl:3: no 'text' field"));
    CHECK(has_issue(&rs, "posts.jsonl:4: a non-string 'text' field"));
    CHECK(rs.n == 2 && rs.rec[1].line == 6 && json_integer_value(pt_record_get(rs.rec[1].fields, "x.y")) == 1);
    pt_records_free(&rs);
    free(p);

    /* problems with the whole file are errors */
    p = tmp_file("empty.csv", "  \n");
    CHECK(pt_records_load(&rs, p, &o) == PT_ERR_FORMAT && strstr(pt_errmsg(), "empty.csv: the file is empty"));
    free(p);
    p = tmp_file("nocol.csv", "a;b\n1;2\n");
    CHECK(pt_records_load(&rs, p, &o) == PT_ERR_FORMAT && strstr(pt_errmsg(), "nocol.csv:1: no column 'text'"));
    free(p);
}

PT_TEST(test_data_corpora_read) {
    pt_recordset rs;
    pt_read_opts o = {.text_field = "text"};
    REQUIRE_OK(pt_records_load(&rs, pt_test_shared("assets/data/corpus/senators.csv"), &o));
    CHECK_MSG(rs.n + rs.n_dup + rs.n_bad == 1000 && rs.n > 900, "senators: %d records, %ld dup, %ld bad", rs.n, rs.n_dup, rs.n_bad);
    CHECK(json_string_value(json_object_get(rs.rec[0].fields, "party")));
    pt_records_free(&rs);
    REQUIRE_OK(pt_records_load(&rs, pt_test_shared("assets/data/corpus/babe_sg1.csv"), &o));
    CHECK_MSG(rs.n > 1500, "babe_sg1: %d records, %ld bad", rs.n, rs.n_bad);
    CHECK(json_object_get(rs.rec[0].fields, "type") != NULL);
    pt_records_free(&rs);
}

PT_TEST(test_data_jsonl_resume) {
    char *p = tmp_file("out.jsonl", "{\"id\":\"a\",\"v\":1}\n{\"id\":\"b\",\"v\":2}\n{\"id\":\"c\",\"v\"");
    pt_jsonl_out o;
    REQUIRE_OK(pt_jsonl_out_open(&o, p, "id", false));
    CHECK(o.n_existing == 2 && o.dropped_partial == 13);
    CHECK(pt_idset_has(&o.done, "a") && pt_idset_has(&o.done, "b") && !pt_idset_has(&o.done, "c"));
    json_t *r = json_pack("{s:s,s:i}", "id", "c", "v", 3);
    CHECK_OK(pt_jsonl_out_write(&o, r));
    json_decref(r);
    CHECK_OK(pt_jsonl_out_close(&o));
    char *text;
    size_t n;
    REQUIRE_OK(pt_file_read_all(p, &text, &n));
    CHECK(!strcmp(text, "{\"id\":\"a\",\"v\":1}\n{\"id\":\"b\",\"v\":2}\n{\"id\":\"c\",\"v\":3}\n"));
    free(text);
    /* a damaged line in the middle is not resumed over */
    free(p);
    p = tmp_file("bad.jsonl", "{\"id\":\"a\"}\nnot json\n{\"id\":\"b\"}\n");
    CHECK(pt_jsonl_out_open(&o, p, "id", false) == PT_ERR_FORMAT && strstr(pt_errmsg(), "bad.jsonl:2") && strstr(pt_errmsg(), "--restart"));
    REQUIRE_OK(pt_jsonl_out_open(&o, p, "id", true));
    CHECK(o.n_existing == 0);
    pt_jsonl_out_close(&o);
    free(p);
}

PT_TEST(test_data_prompts) {
    /* the compiled-in defaults are the files in data/prompts/ */
    for (int k = 0; k < PT_PROMPT_COUNT; k++) {
        char path[256], *text = NULL;
        size_t n;
        snprintf(path, sizeof path, "data/prompts/%s", pt_prompt_defaults[k].file);
        if (pt_file_read_all(path, &text, &n) != PT_OK) {
            CHECK_MSG(0, "%s is missing (run the tests from the repository root)", path);
            continue;
        }
        CHECK_MSG(!strcmp(text, pt_prompt_defaults[k].text), "%s differs from the built-in template", path);
        free(text);
    }
    const char *names[] = {"text", "target"}, *vals[] = {"T", "left"};
    char *out;
    CHECK_OK(pt_prompt_fill("a {text} {{b}} {target}\n\n", "t", names, vals, 2, &out));
    CHECK(out && !strcmp(out, "a T {b} left"));
    free(out);
    CHECK(pt_prompt_check(PT_PROMPT_IDEOLOGY, "x\n{txt}", "my.txt") == PT_ERR_FORMAT && strstr(pt_errmsg(), "my.txt:2: unknown placeholder {txt}"));
    CHECK(pt_prompt_check(PT_PROMPT_CHOSEN, "{text} {instruction} {leaning} {opposite}", "c") == PT_OK);
    CHECK(pt_prompt_check(PT_PROMPT_IDEOLOGY, "{text", "u.txt") == PT_ERR_FORMAT && strstr(pt_errmsg(), "u.txt:1"));
    /* a directory replaces only the files it has */
    const char *dir = pt_test_tmpdir();
    char *p = pt_path_join(dir, "select_quality.txt");
    FILE *f = fopen(p, "w");
    fputs("Q? {text}\n", f);
    fclose(f);
    pt_prompts pr;
    REQUIRE_OK(pt_prompts_load(&pr, dir));
    CHECK(!strcmp(pr.text[PT_PROMPT_QUALITY], "Q? {text}\n") && !strcmp(pr.source[PT_PROMPT_IDEOLOGY], "built-in"));
    pt_prompts_free(&pr);
    f = fopen(p, "w");
    fputs("Q? {post}\n", f);
    fclose(f);
    CHECK(pt_prompts_load(&pr, dir) == PT_ERR_FORMAT && strstr(pt_errmsg(), "select_quality.txt:1: unknown placeholder {post}"));
    free(p);
}

PT_TEST(test_judge_reply_parsing) {
    const char *const *L = pt_scale_labels;
    CHECK(pt_judge_parse_label("7", L, 9) == 6);
    CHECK(pt_judge_parse_label("  Score: 3. Because", L, 9) == 2);
    CHECK(pt_judge_parse_label("I rate it 8/9", L, 9) == 7);
    CHECK(pt_judge_parse_label("17 and 0", L, 9) == -1);
    CHECK(pt_judge_parse_label("Once upon a time", L, 9) == -1);
    CHECK(pt_judge_parse_label("", L, 9) == -1);
    const char *words[] = {"left", "right", "center"};
    CHECK(pt_judge_parse_label("It leans Right.", words, 3) == 1);
    CHECK(pt_judge_parse_label("leftist", words, 3) == -1);

    const char *body = "{\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":\"2\"},\"logprobs\":{\"content\":[{\"token\":\"2\","
                       "\"logprob\":-0.5,\"top_logprobs\":[{\"token\":\"2\",\"logprob\":-0.5},{\"token\":\" 3\",\"logprob\":-1.5},"
                       "{\"token\":\"x\",\"logprob\":-0.1}]}]}}]}";
    char *text;
    double probs[9];
    bool has;
    REQUIRE_OK(pt_judge_parse_response(body, strlen(body), L, 9, &text, probs, &has));
    CHECK(!strcmp(text, "2") && has);
    double a = exp(-0.5), b = exp(-1.5);
    CHECK_NEAR(probs[1], a / (a + b), 1e-12);
    CHECK_NEAR(probs[2], b / (a + b), 1e-12);
    CHECK(probs[0] == 0);
    free(text);
    CHECK(pt_judge_parse_response("<html>", 6, NULL, 0, &text, NULL, &has) == PT_ERR_FORMAT);
    CHECK(pt_judge_parse_response("{\"x\":1}", 7, NULL, 0, &text, NULL, &has) == PT_ERR_FORMAT);
}

PT_TEST(test_data_agreement_hand_case) {
    /* left truths scored 2, 4, 5; right truths 5, 8, 3; one center truth scored 5; one
     * unlabelled and one unscored record. Center band 0.5 around 5.
     * Predicted: 2 L, 4 L, 5 C | 5 C, 8 R, 3 L | 5 C. Correct: 2 + 1 + 1 = 4 of 7.
     * AUC (right vs left): pairs (r, l) with r > l: 5>2, 5>4, 5=5 (1/2); 8 > all three;
     * 3 > 2 -> (2.5 + 3 + 1) / 9. */
    double score[] = {2, 4, 5, 5, 8, 3, 5, 7, NAN};
    int truth[] = {0, 0, 0, 2, 2, 2, 1, -1, 2};
    pt_agreement a;
    pt_agreement_compute(score, truth, 9, 5, 0.5, &a);
    CHECK(a.n == 7 && a.n_unlabelled == 1 && a.n_invalid == 1);
    CHECK_NEAR(a.accuracy, 4.0 / 7, 1e-12);
    CHECK_NEAR(a.roc_auc, 6.5 / 9, 1e-12);
    CHECK(a.confusion[0][0] == 2 && a.confusion[0][1] == 1 && a.confusion[0][2] == 0);
    CHECK(a.confusion[2][0] == 1 && a.confusion[2][1] == 1 && a.confusion[2][2] == 1);
    CHECK(a.confusion[1][1] == 1);
    CHECK_NEAR(a.mean_score[0], 11.0 / 3, 1e-12);
    CHECK_NEAR(a.mean_score[2], 16.0 / 3, 1e-12);
    CHECK(pt_label_class(" D ", "left,D", "center", "R") == PT_CLASS_LEFT);
    CHECK(pt_label_class("republican", "D", "", "R,Republican") == PT_CLASS_RIGHT);
    CHECK(pt_label_class("", "D", "", "R") == -1);
    /* one class only: no AUC */
    int t2[] = {0, 0};
    pt_agreement_compute(score, t2, 2, 5, 0.5, &a);
    CHECK(isnan(a.roc_auc) && a.accuracy == 1.0);
}

/* The in-process judge (log-prob scores on stories260K): an interrupted select run, resumed,
 * gives the same file as an uninterrupted one. */
PT_TEST(test_data_select_inprocess_resume) {
    pt_model *m;
    REQUIRE_OK(pt_model_load(&m, pt_test_shared("assets/models/stories260K/stories260K.gguf")));
    pt_backend_set_threads(1);
    pt_engine *e;
    REQUIRE_OK(pt_engine_new(&e, m, 4, 512));
    pt_judge_opts jo = pt_judge_opts_default();
    jo.mode = PT_JUDGE_LOGPROBS;
    pt_judge *j;
    REQUIRE_OK(pt_judge_local_new(&j, e, PT_CHAT_NONE, &jo));
    const char *dir = pt_test_tmpdir();
    char *pd = pt_path_join(dir, "prompts");
    char cmd[600];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", pd);
    CHECK(system(cmd) == 0);
    char *q = pt_path_join(pd, "select_ideology.txt");
    pt_file_write_atomic(q, "Tom said {text}. Lily was", 25);
    free(q);
    q = pt_path_join(pd, "select_quality.txt");
    pt_file_write_atomic(q, "The story {text} was", 20);
    free(q);
    pt_prompts pr;
    REQUIRE_OK(pt_prompts_load(&pr, pd));
    char *in = tmp_file("in.jsonl", "{\"text\":\"a cat\"}\n{\"text\":\"a dog\"}\n{\"text\":\"a bird\"}\n{\"text\":\"a cat\"}\n{\"text\":\"the sun\"}\n"
                                    "{\"text\":\"the moon\"}\n{\"text\":\"a tree\"}\n");
    pt_recordset rs;
    pt_read_opts ro = {.text_field = "text"};
    REQUIRE_OK(pt_records_load(&rs, in, &ro));
    CHECK(rs.n == 6 && rs.n_dup == 1);
    char *full = pt_path_join(dir, "full.jsonl"), *part = pt_path_join(dir, "part.jsonl");
    pt_select_opts so = {.target = "left", .margin = 0, .min_quality = 1, .prompts = &pr};
    pt_stage_io io = {.out = full, .window = 4};
    pt_stage_summary s;
    REQUIRE_OK(pt_select_run(&rs, j, &so, &io, NULL, &s));
    CHECK(s.done == 6 && s.invalid == 0 && s.kept + s.dropped == 6 && s.dup == 1 && s.requests == 12);
    char *a, *b;
    size_t na, nb;
    REQUIRE_OK(pt_file_read_all(full, &a, &na));
    /* every record carries the label distribution and an expected score */
    json_t *first = json_loadb(a, strchr(a, '\n') - a, 0, NULL);
    CHECK(json_array_size(json_object_get(first, "ideology_probs")) == 9);
    double v = json_number_value(json_object_get(first, "ideology"));
    CHECK(v >= 1 && v <= 9);
    json_decref(first);
    /* a crash after two records and half of the third */
    const char *cut = a;
    for (int k = 0; k < 2; k++) cut = strchr(cut, '\n') + 1;
    size_t keep = (size_t)(cut - a) + 30;
    pt_file_write_atomic(part, a, keep);
    io.out = part;
    REQUIRE_OK(pt_select_run(&rs, j, &so, &io, NULL, &s));
    CHECK(s.resumed == 2 && s.done == 4);
    REQUIRE_OK(pt_file_read_all(part, &b, &nb));
    CHECK_MSG(na == nb && !memcmp(a, b, na), "resumed output differs:\n%s\nvs\n%s", a, b);
    /* and a rerun of a finished output does nothing */
    REQUIRE_OK(pt_select_run(&rs, j, &so, &io, NULL, &s));
    CHECK(s.resumed == 6 && s.done == 0 && s.requests == 0);
    free(a);
    free(b);
    free(full);
    free(part);
    free(in);
    free(pd);
    pt_records_free(&rs);
    pt_prompts_free(&pr);
    pt_judge_free(j);
    pt_engine_free(e);
    pt_model_free(m);
}
