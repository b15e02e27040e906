/* Data-parallel training under OpenMPI (docs/distributed.md), end to end through the CLI on
 * this machine's loopback: two ranks of one thread each train the adapter one process
 * trains (float64: to 1e-6, in practice bit for bit; float32: within the reordered
 * sums' rounding), write the same metrics apart from timing, refuse a global batch that
 * does not divide and ranks that read different data, split the reference log-probs and the
 * --eval-every compass runs, and a job that loses a rank stops
 * with the last checkpoint intact, from which one process finishes the run with the result
 * of an uninterrupted one. Every test skips, saying why, where mpirun or an MPI build is
 * missing. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "internal.h"
#include "test.h"

#define STORIES "assets/models/stories260K/stories260K.gguf"
/* loopback only; ranks may outnumber cores (the machine has two, shared). Under `make asan`
 * the ranks' leak check is off: OpenMPI leaks ~120 KB of its own at MPI_Finalize (libopen-pal,
 * hwloc, its plugins), which would fail every job; memory errors are still caught, and the
 * same training and compass code runs leak-checked in the one-process tests. */
#define NO_MPI_LEAK_CHECK "ASAN_OPTIONS=detect_leaks=0 "
#define MPIRUN                                                                                                   \
    "OMP_NUM_THREADS=1 " NO_MPI_LEAK_CHECK "mpirun --oversubscribe --allow-run-as-root --bind-to none --mca btl self,vader,tcp "    \
    "--mca btl_tcp_if_include lo --mca oob_tcp_if_include lo "
#define TRAIN_ARGS                                                                                               \
    "train --threads 1 --method dpo --model '%s' --data pairs.jsonl --template none --lora-rank 8 "            \
    "--lora-alpha 16 --lora-targets all --lr 3e-3 "

/* Why MPI tests cannot run here, or NULL. */
static const char *mpi_missing(void) {
    if (pt_test_run(NULL, NULL, "command -v mpirun >/dev/null")) return "mpirun not found (apt-get install openmpi-bin)";
    char *out = NULL;
    pt_test_run(&out, NULL, "\"$POLITUNE_BIN\" --version");
    const bool yes = out && strstr(out, "mpi=yes");
    free(out);
    return yes ? NULL : "this politune was built without MPI (libopenmpi-dev missing when it was built)";
}

/* The largest |a - b| over the adapters' tensors of dir/A and dir/B; -1 when their tensors
 * differ in names, types or sizes. */
static double adapter_diff(const char *dir, const char *a, const char *b) {
    char pa[1024], pb[1024];
    snprintf(pa, sizeof pa, "%s/%s/adapter_model.safetensors", dir, a);
    snprintf(pb, sizeof pb, "%s/%s/adapter_model.safetensors", dir, b);
    pt_safetensors sa, sb;
    if (pt_safetensors_open(&sa, pa)) { pt_test_fail(__FILE__, __LINE__, "%s", pt_errmsg()); return -1; }
    if (pt_safetensors_open(&sb, pb)) { pt_test_fail(__FILE__, __LINE__, "%s", pt_errmsg()); pt_safetensors_close(&sa); return -1; }
    double worst = sa.n_tensors == sb.n_tensors && sa.n_tensors > 0 ? 0 : -1;
    for (int i = 0; i < sa.n_tensors && worst >= 0; i++) {
        const pt_tensor_view *x = &sa.tensors[i], *y = pt_safetensors_find(&sb, x->name);
        if (!y || x->dtype != PT_F32 || y->dtype != PT_F32 || x->nbytes != y->nbytes) { worst = -1; break; }
        for (size_t k = 0; k < x->nbytes / 4; k++) {
            float u, v;
            memcpy(&u, x->data + 4 * k, 4);
            memcpy(&v, y->data + 4 * k, 4);
            if (fabs((double)u - v) > worst) worst = fabs((double)u - v);
        }
    }
    pt_safetensors_close(&sa);
    pt_safetensors_close(&sb);
    return worst;
}

/* dir/OUT/metrics.csv without its timing columns (tokens_per_s, elapsed_s, peak_mem_mib). */
static char *metrics_untimed(const char *dir, const char *out) {
    char name[256];
    snprintf(name, sizeof name, "%s/metrics.csv", out);
    char *text = pt_test_read(dir, name);
    if (!text) return NULL;
    char *res = malloc(strlen(text) + 1), *w = res;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        /* columns: step,epoch,loss,lr,grad_norm,tokens_per_s,<6 DPO figures>,tokens,elapsed_s,peak_mem_mib */
        int col = 0, ncol = 1;
        for (char *p = line; *p; p++) ncol += *p == ',';
        for (char *p = line; *p; p++) {
            if (*p == ',') col++;
            if (col == 5 || col >= ncol - 2) continue;
            *w++ = *p;
        }
        *w++ = '\n';
    }
    *w = 0;
    free(text);
    return res;
}

static int count(const char *text, const char *what) {
    int n = 0;
    for (const char *p = text ? strstr(text, what) : NULL; p; p = strstr(p + 1, what)) n++;
    return n;
}

static void same_metrics(const char *dir, const char *a, const char *b) {
    char *ma = metrics_untimed(dir, a), *mb = metrics_untimed(dir, b);
    REQUIRE(ma && mb);
    CHECK_MSG(!strcmp(ma, mb), "metrics differ beyond timing:\n%s\nvs\n%s", ma, mb);
    free(ma);
    free(mb);
}

PT_TEST(test_mpi_train_two_ranks_match_one) {
    const char *why = mpi_missing();
    if (why) SKIP("%s", why);
    const char *dir = pt_test_tmpdir(), *model = pt_test_shared(STORIES);
    pt_test_write(dir, "pairs.jsonl", pt_test_stories_pairs);
    /* float64, LoRA dropout on (its default 0.05): the ranks' pieces cross micro-batches
     * (batch 2 x accumulation 2 = 4 examples a step, 2 a rank) */
    const char *f64 = "--precision f64 --batch-size 2 --grad-accum 2 --max-steps 20 --eval-every 10 --eval-templates t1 --eval-max-new-tokens 8";
    char *err = NULL;
    int rc = pt_test_run(NULL, &err, "cd '%s' && \"$POLITUNE_BIN\" " TRAIN_ARGS "%s --out one", dir, model, f64);
    CHECK_MSG(rc == 0, "one process: exit %d: %s", rc, err ? err : "");
    free(err), err = NULL;
    char *out = NULL;
    rc = pt_test_run(&out, &err, "cd '%s' && " MPIRUN "-np 2 \"$POLITUNE_BIN\" " TRAIN_ARGS "%s --out two", dir, model, f64);
    CHECK_MSG(rc == 0, "two ranks: exit %d: %s", rc, err ? err : "");
    /* rank 0 alone reports: one result line */
    CHECK_MSG(count(out, "\"steps\":20") == 1, "stdout: %s", out ? out : "");
    free(out), out = NULL;
    free(err), err = NULL;
    double d = adapter_diff(dir, "one", "two");
    CHECK_MSG(d >= 0 && d <= 1e-6, "float64: adapters differ by %.3g (tolerance 1e-6)", d);
    same_metrics(dir, "one", "two");
    /* the compass evaluations of --eval-every, split between the ranks, found the same */
    char *pa = pt_test_read(dir, "one/compass/pc.csv"), *pb = pt_test_read(dir, "two/compass/pc.csv");
    CHECK_MSG(pa && pb && count(pa, "\n") == 3 && !strcmp(pa, pb), "compass pc.csv: %s\nvs\n%s", pa ? pa : "(none)", pb ? pb : "(none)");
    free(pa);
    free(pb);

    /* float32: each micro-batch of 4 split in two; the gradient sums are reordered, so the
     * adapters agree to float32 rounding accumulated over 20 steps (measured 6.3e-8) */
    const char *f32 = "--precision f32 --batch-size 4 --grad-accum 1 --max-steps 20 --precompute-ref";
    rc = pt_test_run(NULL, &err, "cd '%s' && \"$POLITUNE_BIN\" " TRAIN_ARGS "%s --out one32", dir, model, f32);
    CHECK_MSG(rc == 0, "one process: exit %d: %s", rc, err ? err : "");
    free(err), err = NULL;
    rc = pt_test_run(NULL, &err, "cd '%s' && " MPIRUN "-np 2 \"$POLITUNE_BIN\" " TRAIN_ARGS "%s --out two32", dir, model, f32);
    CHECK_MSG(rc == 0, "two ranks: exit %d: %s", rc, err ? err : "");
    free(err), err = NULL;
    d = adapter_diff(dir, "one32", "two32");
    CHECK_MSG(d >= 0 && d <= 1e-5, "float32: adapters differ by %.3g (tolerance 1e-5)", d);
}

PT_TEST(test_mpi_train_bad_input) {
    const char *why = mpi_missing();
    if (why) SKIP("%s", why);
    const char *dir = pt_test_tmpdir(), *model = pt_test_shared(STORIES);
    pt_test_write(dir, "pairs.jsonl", pt_test_stories_pairs);
    /* the first five pairs: another data file */
    char *all = pt_test_read(dir, "pairs.jsonl");
    REQUIRE(all);
    *strrchr(all, '{') = 0;
    pt_test_write(dir, "other.jsonl", all);
    free(all);

    char *err = NULL;
    int rc = pt_test_run(NULL, &err, "cd '%s' && " MPIRUN "-np 2 \"$POLITUNE_BIN\" " TRAIN_ARGS "--batch-size 3 --grad-accum 1 --max-steps 2 --out odd",
                         dir, model);
    CHECK_MSG(rc != 0, "an indivisible global batch was accepted");
    CHECK_MSG(err && strstr(err, "does not divide among 2 ranks") && strstr(err, "--batch-size 4"), "stderr: %s", err ? err : "");
    /* one line says it (rank 0), not one per rank */
    CHECK_MSG(count(err, "does not divide") == 1, "stderr: %s", err ? err : "");
    struct stat sb;
    char path[1024];
    snprintf(path, sizeof path, "%s/odd", dir);
    CHECK_MSG(stat(path, &sb) != 0, "the refused run created %s", path);
    free(err), err = NULL;

    /* rank 1 reads other.jsonl: named, with its rank */
    rc = pt_test_run(NULL, &err,
                     "cd '%s' && " MPIRUN "-np 1 \"$POLITUNE_BIN\" " TRAIN_ARGS "--batch-size 2 --max-steps 2 --out mixed : "
                     "-np 1 \"$POLITUNE_BIN\" train --threads 1 --method dpo --model '%s' --data other.jsonl --template none --lora-rank 8 "
                     "--lora-alpha 16 --lora-targets all --lr 3e-3 --batch-size 2 --max-steps 2 --out mixed",
                     dir, model, model);
    CHECK_MSG(rc != 0, "ranks with different data were accepted");
    CHECK_MSG(err && strstr(err, "rank 1: data file other.jsonl differs from rank 0's") && count(err, "differs") == 1, "stderr: %s", err ? err : "");
    snprintf(path, sizeof path, "%s/mixed/adapter_model.safetensors", dir);
    CHECK_MSG(stat(path, &sb) != 0, "the refused run wrote %s", path);
    free(err);
}

PT_TEST(test_mpi_train_rank_killed_then_resumed_alone) {
    const char *why = mpi_missing();
    if (why) SKIP("%s", why);
    const char *dir = pt_test_tmpdir(), *model = pt_test_shared(STORIES);
    pt_test_write(dir, "pairs.jsonl", pt_test_stories_pairs);
    const char *args = "--precision f64 --batch-size 2 --grad-accum 2 --max-steps 60 --save-every 5";
    char *err = NULL;
    int rc = pt_test_run(NULL, &err, "cd '%s' && \"$POLITUNE_BIN\" " TRAIN_ARGS "%s --out whole", dir, model, args);
    CHECK_MSG(rc == 0, "one process: exit %d: %s", rc, err ? err : "");
    free(err), err = NULL;
    /* two ranks; once checkpoint-10 exists, rank 1 (found among mpirun's children by its
     * environment) is killed */
    rc = pt_test_run(NULL, &err,
                     "cd '%s' && { " MPIRUN "-np 2 \"$POLITUNE_BIN\" " TRAIN_ARGS "%s --out cut > cut.out 2> cut.err & } ; job=$!; "
                     "i=0; while [ ! -d cut/checkpoint-10 ] && [ $i -lt 3000 ] && kill -0 $job 2>/dev/null; do sleep 0.02; i=$((i+1)); done; "
                     "killed=no; for p in $(pgrep -P $job); do "
                     "  if tr '\\0' '\\n' < /proc/$p/environ | grep -qx OMPI_COMM_WORLD_RANK=1; then kill -9 $p && killed=yes; fi; done; "
                     "wait $job; rc=$?; echo \"killed=$killed rc=$rc\" >&2; cat cut.err >&2; [ $killed = yes ] && [ $rc -ne 0 ]",
                     dir, model, args);
    CHECK_MSG(rc == 0, "the job did not stop with an error after rank 1 was killed: %s", err ? err : "");
    /* mpirun says which rank died and how */
    CHECK_MSG(err && strstr(err, "signal 9"), "stderr: %s", err ? err : "");
    free(err), err = NULL;
    /* the last checkpoint is complete; one process resumes from it and ends where the
     * uninterrupted run ended */
    rc = pt_test_run(NULL, &err, "cd '%s' && \"$POLITUNE_BIN\" " TRAIN_ARGS "%s --out cut --resume cut", dir, model, args);
    CHECK_MSG(rc == 0, "resume: exit %d: %s", rc, err ? err : "");
    CHECK_MSG(err && strstr(err, "resuming from"), "stderr: %s", err ? err : "");
    free(err);
    double d = adapter_diff(dir, "whole", "cut");
    CHECK_MSG(d >= 0 && d <= 1e-6, "the resumed adapter differs from the uninterrupted one by %.3g (tolerance 1e-6)", d);
    same_metrics(dir, "whole", "cut");
}

/* Sharded compass: two ranks split the 62 items, rank 0 writes the files one process writes,
 * byte for byte. Three template variants (t1 both orders, t2-fwd) make the shard boundary
 * fall inside an engine pass unless it is aligned (compass_shard.c). */
PT_TEST(test_mpi_compass_two_ranks_same_files) {
    const char *why = mpi_missing();
    if (why) SKIP("%s", why);
    const char *dir = pt_test_tmpdir(), *model = pt_test_shared(STORIES);
    char args[1024];
    snprintf(args, sizeof args, "compass --threads 1 --model '%s' --templates t1,t2-fwd --max-new-tokens 24", model);
    char *err = NULL;
    int rc = pt_test_run(NULL, &err, "cd '%s' && \"$POLITUNE_BIN\" %s --out one", dir, args);
    CHECK_MSG(rc == 0, "one process: exit %d: %s", rc, err ? err : "");
    free(err), err = NULL;
    char *out = NULL;
    rc = pt_test_run(&out, &err, "cd '%s' && " MPIRUN "-np 2 \"$POLITUNE_BIN\" %s --out two", dir, args);
    CHECK_MSG(rc == 0, "two ranks: exit %d: %s", rc, err ? err : "");
    CHECK_MSG(count(out, "\"out\":") == 1, "stdout: %s", out ? out : "");
    free(out);
    free(err);
    const char *files[] = {"compass.json", "pc.csv", "prompts.csv", "compass.svg"};
    for (int i = 0; i < 4; i++) {
        char a[64], b[64];
        snprintf(a, sizeof a, "one/%s", files[i]);
        snprintf(b, sizeof b, "two/%s", files[i]);
        char *ta = pt_test_read(dir, a), *tb = pt_test_read(dir, b);
        CHECK_MSG(ta && tb && !strcmp(ta, tb), "%s differs between one process and two ranks", files[i]);
        free(ta);
        free(tb);
    }
}

/* The data stages' shared loop: two ranks judge halves of every window with their own
 * in-process judge (stories260K), rank 0 writes the lines one process writes, in the same
 * order, and the same agreement figures on stdout; a second run resumes with nothing to do. */
PT_TEST(test_mpi_annotate_eval_two_ranks_same_output) {
    const char *why = mpi_missing();
    if (why) SKIP("%s", why);
    const char *dir = pt_test_tmpdir(), *model = pt_test_shared(STORIES), *corpus = pt_test_shared("assets/data/corpus/senators.csv");
    char args[2048];
    snprintf(args, sizeof args, "annotate-eval --in '%s' --text-field text --label-field party --judge-model '%s' --limit 20 --window 8", corpus, model);
    char *o1 = NULL, *o2 = NULL, *err = NULL;
    int rc = pt_test_run(&o1, &err, "cd '%s' && \"$POLITUNE_BIN\" %s --out one.jsonl", dir, args);
    CHECK_MSG(rc == 0, "one process: exit %d: %s", rc, err ? err : "");
    free(err), err = NULL;
    rc = pt_test_run(&o2, &err, "cd '%s' && " MPIRUN "-np 2 \"$POLITUNE_BIN\" %s --out two.jsonl", dir, args);
    CHECK_MSG(rc == 0, "two ranks: exit %d: %s", rc, err ? err : "");
    CHECK_MSG(count(err, "20 judged now") == 1, "stderr: %s", err ? err : "");
    free(err), err = NULL;
    char *a = pt_test_read(dir, "one.jsonl"), *b = pt_test_read(dir, "two.jsonl");
    CHECK_MSG(a && b && count(a, "\n") == 20 && !strcmp(a, b), "outputs differ:\n%s\nvs\n%s", a ? a : "(none)", b ? b : "(none)");
    CHECK_MSG(o1 && o2 && !strcmp(o1, o2), "stdout differs:\n%s\nvs\n%s", o1 ? o1 : "", o2 ? o2 : "");
    free(a), free(b), free(o1), free(o2);
    rc = pt_test_run(NULL, &err, "cd '%s' && " MPIRUN "-np 2 \"$POLITUNE_BIN\" %s --out two.jsonl", dir, args);
    CHECK_MSG(rc == 0 && err && strstr(err, "0 judged now (20 resumed)"), "resume: exit %d: %s", rc, err ? err : "");
    free(err);
}

/* The compass in parts for a plain job array (no MPI needed): three parts written by separate
 * processes and merged give the files of one process, byte for byte; a missing part and a
 * merge with other settings are refused, naming the file. */
PT_TEST(test_mpi_compass_parts_merge) {
    const char *dir = pt_test_tmpdir(), *model = pt_test_shared(STORIES);
    char args[1024];
    snprintf(args, sizeof args, "compass --threads 1 --model '%s' --templates t1,t2-fwd --max-new-tokens 24", model);
    char *err = NULL;
    int rc = pt_test_run(NULL, &err, "cd '%s' && \"$POLITUNE_BIN\" %s --out one", dir, args);
    CHECK_MSG(rc == 0, "one process: exit %d: %s", rc, err ? err : "");
    free(err), err = NULL;
    for (int i = 0; i < 3; i++) {
        rc = pt_test_run(NULL, &err, "cd '%s' && \"$POLITUNE_BIN\" %s --shard %d/3 --out parts", dir, args, i);
        CHECK_MSG(rc == 0, "part %d: exit %d: %s", i, rc, err ? err : "");
        free(err), err = NULL;
    }
    char *out = pt_test_read(dir, "parts/compass.json");
    CHECK_MSG(!out, "a part wrote compass.json");
    free(out);
    rc = pt_test_run(NULL, &err, "cd '%s' && \"$POLITUNE_BIN\" %s --merge parts --out merged", dir, args);
    CHECK_MSG(rc == 0, "merge: exit %d: %s", rc, err ? err : "");
    free(err), err = NULL;
    const char *files[] = {"compass.json", "pc.csv", "prompts.csv", "compass.svg"};
    for (int i = 0; i < 4; i++) {
        char a[64], b[64];
        snprintf(a, sizeof a, "one/%s", files[i]);
        snprintf(b, sizeof b, "merged/%s", files[i]);
        char *ta = pt_test_read(dir, a), *tb = pt_test_read(dir, b);
        CHECK_MSG(ta && tb && !strcmp(ta, tb), "%s differs between one process and the merged parts", files[i]);
        free(ta);
        free(tb);
    }
    /* other templates than the parts were run with */
    rc = pt_test_run(NULL, &err, "cd '%s' && \"$POLITUNE_BIN\" compass --threads 1 --model '%s' --templates t1 --merge parts --out bad", dir, model);
    CHECK_MSG(rc == 2 && err && strstr(err, "compass-part-0-of-3.json: \"templates\" is \"t1,t2-fwd\""), "exit %d: %s", rc, err ? err : "");
    free(err), err = NULL;
    /* a part missing */
    rc = pt_test_run(NULL, &err, "cd '%s' && rm parts/compass-part-1-of-3.json && \"$POLITUNE_BIN\" %s --merge parts --out bad", dir, args);
    CHECK_MSG(rc != 0 && err && strstr(err, "compass-part-1-of-3.json: part 1 of 3 is missing"), "exit %d: %s", rc, err ? err : "");
    free(err);
    struct stat sb;
    char path[1024];
    snprintf(path, sizeof path, "%s/bad/compass.json", dir);
    CHECK_MSG(stat(path, &sb) != 0, "a refused merge wrote %s", path);
}

/* politune run with `launcher: mpirun ...`: the training stage runs as two ranks (its log
 * says so) and, in float64, makes the adapter the same recipe makes without the launcher;
 * the logprob compass split over the ranks writes the same answers. */
PT_TEST(test_mpi_run_launcher) {
    const char *why = mpi_missing();
    if (why) SKIP("%s", why);
    const char *dir = pt_test_tmpdir();
    bool set = !getenv("POLITUNE_ASSETS");
    if (set) setenv("POLITUNE_ASSETS", pt_test_shared("assets"), 1);
    const char *body = "model: asset:models/stories260K/stories260K.gguf\n"
                       "data: {pairs: {left: asset:data/politune/politune-left.json}, sample: 8, seed: 0}\n"
                       "targets: [left]\n"
                       "train: {method: dpo, template: none, lora_rank: 4, lora_alpha: 8, max_steps: 4, batch_size: 4, max_seq_len: 64, precision: f64}\n"
                       "eval: {templates: t1, open_prompts: false, base: false}\n"
                       "report: false\n";
    char text[2048];
    snprintf(text, sizeof text, "%s", body);
    pt_test_write(dir, "plain.yaml", text);
    snprintf(text, sizeof text,
             "%slauncher: mpirun --oversubscribe --allow-run-as-root --bind-to none --mca btl self,vader,tcp --mca btl_tcp_if_include lo "
             "--mca oob_tcp_if_include lo -np 2\n",
             body);
    pt_test_write(dir, "mpi.yaml", text);
    char *out = NULL, *err = NULL;
    int rc = pt_test_run(&out, &err, "cd '%s' && \"$POLITUNE_BIN\" run plain.yaml --out plain --quiet --threads 1", dir);
    CHECK_MSG(rc == 0, "plain: rc %d %s %s", rc, out ? out : "", err ? err : "");
    free(out), free(err);
    rc = pt_test_run(&out, &err, "cd '%s' && OMP_NUM_THREADS=1 " NO_MPI_LEAK_CHECK "\"$POLITUNE_BIN\" run mpi.yaml --out mpi --quiet --threads 1", dir);
    CHECK_MSG(rc == 0, "launched: rc %d %s %s", rc, out ? out : "", err ? err : "");
    free(out), free(err);
    char *log = pt_test_read(dir, "mpi/train-left/log.txt");
    CHECK_MSG(log && strstr(log, "data parallel: 2 ranks"), "train log: %s", log ? log : "(none)");
    free(log);
    double d = adapter_diff(dir, "plain/train-left", "mpi/train-left");
    CHECK_MSG(d >= 0 && d <= 1e-6, "float64: adapters differ by %.3g (tolerance 1e-6)", d);
    char *pa = pt_test_read(dir, "plain/compass-left/pc.csv"), *pb = pt_test_read(dir, "mpi/compass-left/pc.csv");
    CHECK_MSG(pa && pb && !strcmp(pa, pb), "pc.csv: %s\nvs\n%s", pa ? pa : "(none)", pb ? pb : "(none)");
    free(pa);
    free(pb);
    if (set) unsetenv("POLITUNE_ASSETS");
}
