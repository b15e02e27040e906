/* politune train: LoRA fine-tuning with DPO or SFT. Every training key is a flag (--key value,
 * --key=value, --flag / --no-flag for booleans) and may also come from a YAML recipe or as a
 * key=value argument; later settings win, the recipe coming first. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "commands.h"
#include "dist/dist.h"
#include "eval/train_eval.h"
#include "train/config.h"
#include "train/train.h"

static const char *usage_head =
    "usage: politune train --method dpo|sft --model PATH --data FILE --out DIR [--recipe FILE.yaml]\n"
    "                      [--key value ...] [key=value ...]\n\n"
    "Trains a LoRA adapter on a frozen base model: Direct Preference Optimization on preference\n"
    "pairs (reference = the same weights with the adapter off) or supervised fine-tuning on\n"
    "responses. Writes OUT/adapter_config.json + OUT/adapter_model.safetensors (PEFT), checkpoints\n"
    "OUT/checkpoint-<step>/ (resumable with --resume OUT), and OUT/metrics.jsonl / metrics.csv with\n"
    "one row per optimiser step. With --eval-every N the Political Compass Test runs on the adapter\n"
    "every N steps (logprob mode; not at step 0) and is appended to OUT/compass/ (or --eval-dir):\n"
    "compass.json, pc.csv, prompts.csv, compass.svg. With --eval-data FILE (DPO) held-out pairs are\n"
    "evaluated at step 0, every --eval-every steps and at the end: OUT/eval_metrics.jsonl / .csv with\n"
    "TRL's eval_loss, eval_rewards/accuracies, eval_rewards/margins, ... Booleans: --flag / --no-flag /\n"
    "--flag=false. Under mpirun (`mpirun -np N politune train ...`) the ranks train data-parallel: the\n"
    "same global batch (batch_size x grad_accum, which N must divide) and steps, gradients summed\n"
    "over the ranks, rank 0 writing (docs/distributed.md).\n\n"
    "options (flags use dashes; recipes and key=value use underscores or dashes):\n"
    "  --recipe FILE.yaml       read keys from a YAML mapping first\n"
    "  --device DEV             cpu, cuda or auto (default auto: cuda where this build has CUDA, a GPU is\n"
    "                           present and the CUDA backend trains; else cpu)\n";

typedef struct {
    bool tty;
    int width;
    long last_len;
} progress;

static void on_note(void *user, const char *msg) {
    (void)user;
    fprintf(stderr, "politune train: %s\n", msg);
}

static void fmt_time(char *buf, size_t n, double s) {
    if (s < 0 || s > 1e7) snprintf(buf, n, "?");
    else if (s < 60) snprintf(buf, n, "%.0fs", s);
    else if (s < 3600) snprintf(buf, n, "%dm%02ds", (int)s / 60, (int)s % 60);
    else snprintf(buf, n, "%dh%02dm", (int)s / 3600, (int)s % 3600 / 60);
}

static void on_step(void *user, const pt_train_metrics *m) {
    progress *p = user;
    char extra[128] = "";
    if (m->rewards_accuracies || m->rewards_margins || m->logps_chosen)
        snprintf(extra, sizeof extra, " acc %.2f margin %.4f", m->rewards_accuracies, m->rewards_margins);
    if (!p->tty) {
        fprintf(stderr, "step %ld/%ld loss %.6f%s lr %.3g grad_norm %.4g %.0f tok/s\n", m->step, m->total_steps, m->loss, extra, m->lr,
                m->grad_norm, m->tokens_per_s);
        return;
    }
    const int bar = 24;
    int filled = m->total_steps > 0 ? (int)(bar * m->step / m->total_steps) : bar;
    char b[32];
    for (int i = 0; i < bar; i++) b[i] = i < filled ? '#' : '.';
    b[bar] = 0;
    char eta[32];
    double per_step = m->step > 0 ? m->elapsed_s / m->step : 0;
    fmt_time(eta, sizeof eta, per_step * (m->total_steps - m->step));
    fprintf(stderr, "\r[%s] %ld/%ld loss %.4f%s lr %.2e %.0f tok/s ETA %s   ", b, m->step, m->total_steps, m->loss, extra, m->lr,
            m->tokens_per_s, eta);
    if (m->step == m->total_steps) fputc('\n', stderr);
    fflush(stderr);
}

/* Applies one argument; *i may advance past a value. Returns 0, or the exit status. */
static int apply(pt_train_config *c, int argc, char **argv, int *i) {
    const char *cmd = "train", *a = argv[*i];
    char key[128];
    const char *value = NULL;
    if (!strncmp(a, "--", 2)) {
        a += 2;
        const char *eq = strchr(a, '=');
        size_t n = eq ? (size_t)(eq - a) : strlen(a);
        if (n >= sizeof key) return cli_usage_error(cmd, "unknown option '--%s'", a);
        memcpy(key, a, n);
        key[n] = 0;
        if (eq) value = eq + 1;
        else if (pt_train_config_is_bool(key) == 1) value = "true";
        else if (!strncmp(key, "no-", 3) && pt_train_config_is_bool(key + 3) == 1) {
            memmove(key, key + 3, strlen(key + 3) + 1);
            value = "false";
        } else if (pt_train_config_is_bool(key) < 0) {
            return cli_usage_error(cmd, "unknown option '--%s'", key);
        } else if (*i + 1 >= argc) {
            return cli_usage_error(cmd, "option '--%s' needs a value", key);
        } else value = argv[++*i];
    } else {
        const char *eq = strchr(a, '=');
        if (!eq || eq == a || (size_t)(eq - a) >= sizeof key) return cli_usage_error(cmd, "unexpected argument '%s' (key=value expected)", a);
        memcpy(key, a, (size_t)(eq - a));
        key[eq - a] = 0;
        value = eq + 1;
    }
    pt_status st = pt_train_config_set(c, key, value);
    if (st) return cli_fail(cmd, st);
    return 0;
}

/* libgomp reads OMP_WAIT_POLICY when the program loads, and its default keeps idle workers
 * spinning; between BLAS calls they fight OpenBLAS's own threads for the cores, which cost a
 * training step up to 40% on two cores. Unless the user chose a policy, run again with the
 * passive one. main() passed argv + 1, so argv - 1 is the original, NULL-terminated vector. */
static void prefer_passive_omp(char **argv) {
    if (getenv("OMP_WAIT_POLICY")) return;
    setenv("OMP_WAIT_POLICY", "passive", 1);
    execv("/proc/self/exe", argv - 1);
    /* not re-executed: carry on with the policy already in force */
}

int cmd_train(int argc, char **argv) {
    const char *cmd = "train";
    prefer_passive_omp(argv);
    pt_train_config c;
    pt_train_config_defaults(&c);
    int rc = 0;
    /* help and the recipe first, so that flags override the recipe wherever they stand */
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(usage_head, stdout);
            pt_train_config_help(stdout);
            pt_train_config_free(&c);
            return 0;
        }
        const char *recipe = NULL;
        if (!strcmp(argv[i], "--recipe")) {
            if (i + 1 >= argc) { pt_train_config_free(&c); return cli_usage_error(cmd, "option '--recipe' needs a value"); }
            recipe = argv[i + 1];
        } else if (!strncmp(argv[i], "--recipe=", 9)) recipe = argv[i] + 9;
        else if (!strncmp(argv[i], "recipe=", 7)) recipe = argv[i] + 7;
        if (recipe) {
            pt_status st = pt_train_recipe_load(&c, recipe);
            if (st) { pt_train_config_free(&c); return cli_fail(cmd, st); }
        }
    }
    const char *device = NULL;
    for (int i = 1; i < argc && !rc; i++) {
        if (!strcmp(argv[i], "--recipe")) { i++; continue; }
        if (!strncmp(argv[i], "--recipe=", 9) || !strncmp(argv[i], "recipe=", 7)) continue;
        /* the device is where the run happens, not a training hyper-parameter: not a config key */
        if (!strcmp(argv[i], "--device")) {
            if (i + 1 >= argc) rc = cli_usage_error(cmd, "option '--device' needs a value");
            else device = argv[++i];
            continue;
        }
        if (!strncmp(argv[i], "--device=", 9)) { device = argv[i] + 9; continue; }
        rc = apply(&c, argc, argv, &i);
    }
    /* on the GPU, --precision f32 keeps the frozen products in f32 too (the CPU's numbers); else bf16 */
    if (!rc) rc = cli_device_select_precision(cmd, device, c.precision == PT_PRECISION_F32 ? "f32" : NULL);
    if (!rc && !c.model) rc = cli_usage_error(cmd, "--model PATH is required");
    if (!rc && !c.data) rc = cli_usage_error(cmd, "--data FILE is required");
    if (!rc && !c.out) rc = cli_usage_error(cmd, "--out DIR is required");
    if (rc) { pt_train_config_free(&c); return rc; }
    /* under mpirun/srun: one rank of a data-parallel job (docs/distributed.md) */
    pt_status st = pt_dist_init();
    if (st) { pt_train_config_free(&c); return cli_fail(cmd, st); }

    /* --threads 0 (the default): OMP_NUM_THREADS when set, else every core */
    const char *env = getenv("OMP_NUM_THREADS");
    long envn;
    pt_backend_set_threads(c.threads ? c.threads : env && cli_parse_int(env, 1, 1024, &envn) ? (int)envn : 0);
    /* the compass evaluation's files and templates are checked before anything loads */
    pt_train_eval compass_eval = {0};
    st = c.eval_every > 0 ? pt_train_eval_init(&compass_eval, c.eval_every, c.eval_templates, c.eval_option_scoring, c.eval_dir, c.out,
                                                      c.eval_max_new_tokens) : PT_OK;
    if (st) { pt_train_config_free(&c); return cli_fail(cmd, st); }
    pt_model *m = NULL;
    st = pt_model_load(&m, c.model);
    if (st) { pt_train_eval_free(&compass_eval); pt_train_config_free(&c); return cli_fail(cmd, st); }
    progress p = {.tty = isatty(2)};
    pt_train_hooks hooks = {.on_step = on_step, .on_note = on_note, .user = &p};
    if (c.eval_every > 0) {
        hooks.evaluate = pt_train_eval_compass;
        hooks.eval_user = &compass_eval;
    }
    pt_train_result res;
    st = pt_train_run(&c, m, &hooks, &res);
    pt_train_eval_free(&compass_eval);
    if (st) {
        if (p.tty) fputc('\n', stderr);
        rc = cli_fail(cmd, st);
    } else if (pt_dist_rank() == 0) {
        printf("{\"out\":");
        cli_json_string(stdout, c.out);
        printf(",\"checkpoint\":");
        cli_json_string(stdout, res.checkpoint);
        printf(",\"steps\":%ld,\"start_step\":%ld,\"examples\":%d,\"skipped\":%d,\"truncated\":%d,\"trainable_params\":%lld,"
               "\"loss\":%.9g,\"elapsed_s\":%.3f,\"peak_mem_mib\":%.1f",
               res.end_step, res.start_step, res.n_examples, res.n_skipped, res.n_truncated, (long long)res.n_trainable, res.last.loss,
               res.last.elapsed_s, pt_peak_rss_mib());
        /* the held-out figures of this run's first and last evaluations */
        if (res.n_evals)
            printf(",\"eval\":{\"pairs\":%d,\"first\":{\"step\":%ld,\"accuracy\":%.9g,\"margin\":%.9g},"
                   "\"last\":{\"step\":%ld,\"accuracy\":%.9g,\"margin\":%.9g}}",
                   res.n_eval_pairs, res.eval_first.step, res.eval_first.rewards_accuracies, res.eval_first.rewards_margins, res.eval_last.step,
                   res.eval_last.rewards_accuracies, res.eval_last.rewards_margins);
        printf("}\n");
    }
    pt_model_free(m);
    pt_train_config_free(&c);
    return rc;
}
