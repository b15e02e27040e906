/* Steering vectors (issue 15): politune steer build against a PyTorch + transformers oracle
 * (tools/steer_oracle.py: forward hooks on the decoder layers) on the stories260K fixture with
 * pre-tokenized pairs — every layer's direction, and the logits of a prompt steered at one
 * layer; scale 0 is the base bit for bit; a vector of the wrong width or layer count is
 * refused naming the file; the dial over steering scales runs. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "internal.h"
#include "model/steer.h"
#include "test.h"

#define BIN "\"$POLITUNE_BIN\""
#define STEER_TOL 1e-4 /* x max |expected| (the fixtures' forward tolerance) */

static const char *pairs_jsonl =
    "{\"prompt_ids\":[1,403,407,261],\"chosen_ids\":[378,430,280,297,440],\"rejected_ids\":[67,300,12]}\n"
    "{\"prompt_ids\":[1,99,480],\"chosen_ids\":[5,77,403,12],\"rejected_ids\":[261,378,430,280,297,440,292]}\n"
    "{\"prompt_ids\":[1,12,12,67],\"chosen_ids\":[480],\"rejected_ids\":[407,403]}\n";
static const int32_t prompt[] = {1, 403, 407, 261, 378, 430};

PT_TEST(test_dial_steer_build_matches_torch) {
    const char *why = NULL, *py = pt_test_python("torch transformers", &why);
    if (!py) SKIP("%s", why);
    const char *d = pt_test_tmpdir(), *model = fx_dir("stories260K-hf");
    pt_test_write(d, "pairs.jsonl", pairs_jsonl);
    char *out = NULL, *err = NULL;
    int rc = pt_test_run(&out, &err, BIN " steer build --model '%s' --pairs '%s/pairs.jsonl' --layer all --out '%s/vec.safetensors'", model, d, d);
    CHECK_MSG(rc == 0 && out && strstr(out, "\"pairs\":3"), "steer build: rc %d, %s %s", rc, out ? out : "", err ? err : "");
    free(out), free(err);
    rc = pt_test_run(&out, &err, "'%s' tools/steer_oracle.py '%s' '%s/pairs.jsonl' 2 3.0 1,403,407,261,378,430 '%s/oracle.json'", py, model, d, d);
    CHECK_MSG(rc == 0, "oracle: rc %d, %s", rc, err ? err : "");
    free(out), free(err);
    char path[700];
    snprintf(path, sizeof path, "%s/oracle.json", d);
    json_t *o = json_load_file(path, 0, NULL);
    REQUIRE(o);
    pt_model *m = NULL;
    pt_steer *s = NULL;
    REQUIRE_OK(pt_model_load(&m, model));
    snprintf(path, sizeof path, "%s/vec.safetensors", d);
    REQUIRE_OK(pt_steer_load(&s, path, m));
    const int L = m->cfg.n_layers, D = m->cfg.dim, V = m->cfg.vocab_size, n = (int)(sizeof prompt / sizeof prompt[0]);
    float *want = malloc(sizeof(float) * (size_t)n * V), *row = malloc(sizeof(float) * D);
    json_t *vec = json_object_get(o, "vector"), *lg = json_object_get(o, "logits");
    REQUIRE(want && row && (int)json_array_size(vec) == L && (int)json_array_size(lg) == n);
    for (int l = 0; l < L; l++) {
        for (int k = 0; k < D; k++) row[k] = (float)json_number_value(json_array_get(json_array_get(vec, l), k));
        char what[64];
        snprintf(what, sizeof what, "direction of layer %d", l);
        CHECK(s->has[l]);
        fx_close(what, s->v + (size_t)l * D, row, D, STEER_TOL);
    }
    for (int t = 0; t < n; t++)
        for (int k = 0; k < V; k++) want[(size_t)t * V + k] = (float)json_number_value(json_array_get(json_array_get(lg, t), k));
    pt_engine *e = NULL;
    REQUIRE_OK(pt_engine_new(&e, m, 1, 64));
    const float *got = NULL;
    float *base = malloc(sizeof(float) * (size_t)n * V);
    REQUIRE(base);
    CHECK_OK(pt_engine_forward_one(e, 0, prompt, n, PT_LOGITS_ALL, &got));
    if (got) memcpy(base, got, sizeof(float) * (size_t)n * V);
    /* scale 0: the base bit for bit */
    CHECK_OK(pt_engine_set_steer(e, s, 0.0f, NULL));
    CHECK_OK(pt_engine_truncate(e, 0, 0));
    CHECK_OK(pt_engine_forward_one(e, 0, prompt, n, PT_LOGITS_ALL, &got));
    CHECK_MSG(got && !memcmp(got, base, sizeof(float) * (size_t)n * V), "steering at scale 0 changed the logits");
    /* 3 x the direction at layer 2's output, as the oracle's hook adds it */
    bool only2[16] = {false};
    only2[2] = true;
    CHECK_OK(pt_engine_set_steer(e, s, 3.0f, only2));
    CHECK_OK(pt_engine_truncate(e, 0, 0));
    CHECK_OK(pt_engine_forward_one(e, 0, prompt, n, PT_LOGITS_ALL, &got));
    if (got) {
        fx_close("logits steered at layer 2", got, want, (int64_t)n * V, STEER_TOL);
        CHECK_MSG(memcmp(got, base, sizeof(float) * (size_t)n * V), "steering at scale 3 changed nothing");
    }
    pt_engine_free(e);
    free(base), free(want), free(row);
    pt_steer_free(s);
    pt_model_free(m);
    json_decref(o);
}

PT_TEST(test_dial_steer_refusals_and_dial) {
    const char *d = pt_test_tmpdir(), *model = fx_dir("stories260K-hf");
    pt_model *m = NULL;
    REQUIRE_OK(pt_model_load(&m, model));
    /* 7 layers for a 5-layer model; width 32 for a width-64 one */
    struct { int layers, dim; const char *file, *want; } bad[] = {{7, 64, "layers7.safetensors", "a steering vector for 7 layers"},
                                                                   {5, 32, "width32.safetensors", "has width 32"}};
    for (size_t i = 0; i < 2; i++) {
        pt_steer *s = NULL;
        REQUIRE_OK(pt_steer_new(&s, bad[i].layers, bad[i].dim));
        for (int l = 0; l < bad[i].layers; l++) s->has[l] = true;
        char path[700];
        snprintf(path, sizeof path, "%s/%s", d, bad[i].file);
        CHECK_OK(pt_steer_save(s, path, "test"));
        pt_steer_free(s);
        char *out = NULL, *err = NULL;
        int rc = pt_test_run(&out, &err, BIN " logits --model '%s' --ids 1,2,3 --steer '%s:2'", model, path);
        CHECK_MSG(rc != 0 && err && strstr(err, bad[i].want) && strstr(err, bad[i].file) && !strchr(strchr(err, '\n') + 1, '\n'),
                  "%s: rc %d, stderr: %s", bad[i].file, rc, err ? err : "");
        free(out), free(err);
    }
    /* a good vector: bad scale and layer lists are one line each; the dial over its scales runs */
    pt_test_write(d, "pairs.jsonl", pairs_jsonl);
    char *out = NULL, *err = NULL;
    int rc = pt_test_run(&out, &err, BIN " steer build --model '%s' --pairs '%s/pairs.jsonl' --layer 3 --out '%s/v3.safetensors'", model, d, d);
    CHECK_MSG(rc == 0, "steer build: rc %d, %s", rc, err ? err : "");
    free(out), free(err);
    const char *cases[][2] = {{"v3.safetensors:x1", "scale 'x1' is not a finite number"}, {"v3.safetensors@2", "no direction for layer 2"},
                              {"v3.safetensors@9", "layers run 0..4"}};
    for (size_t i = 0; i < 3; i++) {
        rc = pt_test_run(&out, &err, "cd '%s' && " BIN " logits --model '%s' --ids 1,2,3 --steer '%s'", d, model, cases[i][0]);
        CHECK_MSG(rc == 2 && err && strstr(err, cases[i][1]) && !strchr(strchr(err, '\n') + 1, '\n'), "%s: rc %d, stderr: %s", cases[i][0], rc,
                  err ? err : "");
        free(out), free(err);
    }
    rc = pt_test_run(&out, &err, "cd '%s' && " BIN " steer build --model '%s' --pairs pairs.jsonl --layer 5 --out x.safetensors", d, model);
    CHECK_MSG(rc != 0 && err && strstr(err, "layers 0..4"), "layer 5: rc %d, stderr: %s", rc, err ? err : "");
    free(out), free(err);
    const char *story = "Once upon a time, there was a little girl named Lily. She loved to play outside in the park.";
    pt_test_write(d, "heldout.txt", story);
    const char *gguf = pt_test_shared("assets/models/stories260K/stories260K.gguf");
    rc = pt_test_run(&out, &err,
                     "cd '%s' && POLITUNE_ASSETS='%s' " BIN " dial --model '%s' --steer v3.safetensors --scales 4 --templates t2 --resamples 100 "
                     "--ppl-text heldout.txt --out sdial",
                     d, pt_test_shared("assets"), gguf);
    CHECK_MSG(rc == 0 && err && strstr(err, "setting 1/1 (scale 4)"), "steer dial: rc %d, stderr: %s", rc, err ? err : "");
    /* its perplexity is exp(-mean log-prob) as politune score computes it under the same steering */
    json_t *summary = out ? json_loads(out, 0, NULL) : NULL;
    double ppl = json_number_value(json_object_get(json_array_get(json_object_get(summary, "settings"), 0), "perplexity"));
    json_decref(summary);
    free(out), free(err);
    rc = pt_test_run(&out, &err, "cd '%s' && " BIN " score --model '%s' --steer v3.safetensors:4 --prompt '' --continuation '%s'", d, gguf, story);
    json_t *sc = out ? json_loads(out, 0, NULL) : NULL;
    double lp = json_number_value(json_object_get(sc, "logprob"));
    int nt = (int)json_integer_value(json_object_get(sc, "n_tokens"));
    double want = nt > 0 ? exp(-lp / nt) : NAN;
    CHECK_MSG(rc == 0 && nt > 10 && fabs(ppl - want) <= 1e-3 * want, "dial perplexity %g, from politune score %g (%d tokens)", ppl, want, nt);
    json_decref(sc);
    free(out), free(err);
    char sd[700];
    snprintf(sd, sizeof sd, "%s/sdial", d);
    char *csv = pt_test_read(sd, "dial.csv"), *js = pt_test_read(sd, "dial.json");
    CHECK(csv && !strncmp(csv, "setting,scale,economic,", 23) && js && strstr(js, "\"steer\": \"v3.safetensors\""));
    /* its layers are recorded, and the combined report names the dial by them */
    CHECK_MSG(js && strstr(js, "\"steer_layers\": \"3\""), "dial.json: %.400s", js ? js : "");
    json_t *dj = js ? json_loads(js, 0, NULL) : NULL;
    const double dial_ppl = json_number_value(json_object_get(json_object_get(json_array_get(json_object_get(dj, "settings"), 0), "perplexity"), "value"));
    json_decref(dj);
    free(csv), free(js);
    rc = pt_test_run(&out, &err, "cd '%s' && " BIN " dial --combine sdial --out sdials", d);
    CHECK_MSG(rc == 0, "combine: rc %d, stderr: %s", rc, err ? err : "");
    free(out), free(err);
    snprintf(sd, sizeof sd, "%s/sdials", d);
    char *svg = pt_test_read(sd, "dials.svg"), *dcsv = pt_test_read(sd, "dials.csv");
    CHECK(svg && strstr(svg, ">steering layer 3 \u00d7scale</text>"));
    const char *row = dcsv ? strstr(dcsv, "\"steering layer 3 \u00d7scale\",\"sdial\",0,scale,4,") : NULL;
    const char *last = row ? strrchr(row, ',') : NULL;
    const double got_ppl = last ? atof(last + 1) : NAN;
    CHECK_MSG(row && dial_ppl > 1 && fabs(got_ppl - dial_ppl) <= 1e-5 * dial_ppl, "dials.csv: %s (dial.json's perplexity %g)", dcsv ? dcsv : "", dial_ppl);
    free(svg), free(dcsv);
    pt_model_free(m);
}
