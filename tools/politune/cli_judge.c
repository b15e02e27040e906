/* Judge flags, progress bar and summary for the data-pipeline commands (see cli_judge.h). */
#include "cli_judge.h"
#include "dist/dist.h"
#include "util/clock.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

void cli_judge_defaults(cli_judge *j) {
    memset(j, 0, sizeof *j);
    j->o = pt_judge_opts_default();
}

int cli_judge_option(cli_judge *j, const char *cmd, int opt, const char *arg) {
    long v;
    double f;
    switch (opt) {
    case 1000: j->url = arg; return 1;
    case 1001: j->model_path = arg; return 1;
    case 1002: j->o.model_name = arg; return 1;
    case 1003: j->key_env = arg; return 1;
    case 1004:
        if (!strcmp(arg, "text")) j->o.mode = PT_JUDGE_TEXT;
        else if (!strcmp(arg, "choice")) j->o.mode = PT_JUDGE_CHOICE;
        else if (!strcmp(arg, "logprobs")) j->o.mode = PT_JUDGE_LOGPROBS;
        else return cli_usage_error(cmd, "--judge-mode wants text, choice or logprobs, got '%s'", arg), -1;
        j->mode_set = true;
        return 1;
    case 1005:
        if (!cli_parse_int(arg, 1, 256, &v)) return cli_usage_error(cmd, "--judge-concurrency wants 1..256, got '%s'", arg), -1;
        j->o.concurrency = (int)v;
        return 1;
    case 1006:
        if (!cli_parse_float(arg, &f) || f <= 0) return cli_usage_error(cmd, "--judge-timeout wants seconds > 0, got '%s'", arg), -1;
        j->o.timeout_s = f;
        if (j->o.connect_timeout_s > f) j->o.connect_timeout_s = f;
        return 1;
    case 1007:
        if (!cli_parse_int(arg, 0, 100, &v)) return cli_usage_error(cmd, "--judge-retries wants 0..100, got '%s'", arg), -1;
        j->o.retries = (int)v;
        return 1;
    case 1008:
        if (!cli_parse_float(arg, &f) || f < 0) return cli_usage_error(cmd, "--judge-backoff wants seconds >= 0, got '%s'", arg), -1;
        j->o.backoff_s = f;
        return 1;
    case 1009:
        if (!cli_parse_float(arg, &f) || f < 0 || f > 2) return cli_usage_error(cmd, "--judge-temperature wants 0..2, got '%s'", arg), -1;
        j->o.temperature = (float)f;
        return 1;
    case 1010:
        if (!cli_parse_int(arg, 1, 1 << 20, &v)) return cli_usage_error(cmd, "--judge-max-tokens wants a positive integer, got '%s'", arg), -1;
        j->o.max_tokens = (int)v;
        return 1;
    case 1011: j->o.system = arg; return 1;
    case 1012: j->adapter_path = arg; return 1;
    case 1013:
        if (!cli_parse_int(arg, 1, 1024, &v)) return cli_usage_error(cmd, "--judge-threads wants a positive integer, got '%s'", arg), -1;
        j->threads = (int)v;
        return 1;
    case 1014:
        if (!cli_parse_int(arg, 16, 1 << 20, &v)) return cli_usage_error(cmd, "--judge-ctx wants an integer >= 16, got '%s'", arg), -1;
        j->ctx = (int)v;
        return 1;
    case 1015: j->chat_template = arg; return 1;
    case 1016: j->o.batch_invariant = true; return 1;
    case 1017: j->device = arg; return 1;
    case 1018: {
        pt_cuda_precision p;
        if (pt_cuda_precision_parse(arg, &p)) return cli_usage_error(cmd, "--judge-precision wants bf16 or f32, got '%s'", arg), -1;
        j->precision = arg;
        return 1;
    }
    }
    return 0;
}

int cli_judge_open(cli_judge *j, const char *cmd) {
    if (!!j->url == !!j->model_path) return cli_usage_error(cmd, "give the judge: --judge URL (a server) or --judge-model PATH (in-process)");
    pt_status st;
    if (j->url) {
        const char *env = j->key_env ? getenv(j->key_env) : getenv("POLITUNE_JUDGE_API_KEY");
        if (!j->key_env && !env) env = getenv("OPENAI_API_KEY");
        if (j->key_env && !env) return cli_usage_error(cmd, "--judge-key-env %s: that environment variable is not set", j->key_env);
        j->o.api_key = env;
        j->o.url = j->url;
        if ((st = pt_judge_http_new(&j->judge, &j->o))) return cli_fail(cmd, st);
        return 0;
    }
    if (!j->mode_set) j->o.mode = PT_JUDGE_LOGPROBS;
    pt_chat_template chat = PT_CHAT_NONE;
    if (j->chat_template && (st = pt_chat_template_from_name(j->chat_template, &chat))) return cli_fail(cmd, st);
    int rc = cli_device_select_precision(cmd, j->device, j->precision);
    if (rc) return rc;
    pt_backend_set_threads(j->threads);
    if ((st = pt_model_load(&j->model, j->model_path))) return cli_fail(cmd, st);
    if (!j->chat_template) chat = j->model->chat;
    if (j->adapter_path && (st = pt_adapter_load(&j->adapter, j->adapter_path, j->model))) goto fail;
    int ctx = j->ctx ? j->ctx : (j->model->cfg.max_ctx < 2048 ? j->model->cfg.max_ctx : 2048);
    if ((st = pt_engine_new(&j->engine, j->model, j->o.concurrency, ctx))) goto fail;
    pt_engine_set_adapter(j->engine, j->adapter);
    if ((st = pt_judge_local_new(&j->judge, j->engine, chat, &j->o))) goto fail;
    return 0;
fail:
    cli_judge_close(j);
    return cli_fail(cmd, st);
}

void cli_judge_close(cli_judge *j) {
    pt_judge_free(j->judge);
    pt_engine_free(j->engine);
    pt_adapter_free(j->adapter);
    pt_model_free(j->model);
    j->judge = NULL;
    j->engine = NULL;
    j->adapter = NULL;
    j->model = NULL;
}

static void clear_bar(cli_stage_ui *ui) {
    if (ui->bar_shown) {
        fputs("\r\033[K", stderr);
        ui->bar_shown = false;
    }
}

static void on_progress(void *user, long done, long total) {
    cli_stage_ui *ui = user;
    if (!ui->tty || ui->quiet) return;
    const int width = 30;
    int fill = total > 0 ? (int)(width * done / total) : width;
    char bar[64];
    for (int i = 0; i < width; i++) bar[i] = i < fill ? '#' : '.';
    bar[width] = 0;
    double el = pt_now_s() - ui->t0, rate = el > 0 ? done / el : 0;
    fprintf(stderr, "\r\033[K[%s] %ld/%ld %3.0f%% %.1f rec/s", bar, done, total, total ? 100.0 * done / total : 100.0, rate);
    fflush(stderr);
    ui->bar_shown = true;
}

static void on_note(void *user, const char *msg) {
    cli_stage_ui *ui = user;
    if (ui->notes++ >= ui->max_notes) return;
    clear_bar(ui);
    fprintf(stderr, "politune %s: %s\n", ui->cmd, msg);
}

void cli_stage_ui_init(cli_stage_ui *ui, pt_stage_hooks *h, const char *cmd, bool quiet) {
    memset(ui, 0, sizeof *ui);
    ui->cmd = cmd;
    ui->quiet = quiet;
    ui->tty = isatty(2);
    ui->max_notes = 20;
    ui->t0 = pt_now_s();
    h->progress = on_progress;
    h->note = on_note;
    h->user = ui;
}

void cli_stage_ui_finish(cli_stage_ui *ui, const pt_stage_summary *s) {
    if (ui->finished) return;
    ui->finished = true;
    clear_bar(ui);
    if (ui->notes > ui->max_notes)
        fprintf(stderr, "politune %s: ... %d more notes like these (bad input records and out-of-format replies are counted below)\n", ui->cmd,
                ui->notes - ui->max_notes);
    char line[1024];
    pt_stage_summary_format(s, ui->cmd, line, sizeof line);
    fprintf(stderr, "politune %s\n", line);
}

int cli_stage_option(cli_stage_opts *s, const char *cmd, int opt, const char *arg) {
    long v;
    switch (opt) {
    case 1100: s->in = arg; return 1;
    case 1101: s->io.out = arg; return 1;
    case 1102: s->io.restart = true; return 1;
    case 1103:
        if (!cli_parse_int(arg, 1, 1 << 16, &v)) return cli_usage_error(cmd, "--window wants 1..65536, got '%s'", arg), -1;
        s->io.window = (int)v;
        return 1;
    case 1104: s->prompts_dir = arg; return 1;
    case 1105: s->quiet = true; return 1;
    case 1106: s->read.text_field = arg; return 1;
    case 1107:
        if (!strcmp(arg, "csv")) s->read.format = PT_FMT_CSV;
        else if (!strcmp(arg, "jsonl")) s->read.format = PT_FMT_JSONL;
        else return cli_usage_error(cmd, "--format wants csv or jsonl, got '%s'", arg), -1;
        return 1;
    case 1108:
        if (strlen(arg) != 1 && strcmp(arg, "\\t")) return cli_usage_error(cmd, "--delimiter wants one character, got '%s'", arg), -1;
        s->read.delim = strcmp(arg, "\\t") ? arg[0] : '\t';
        return 1;
    case 1109:
        if (!cli_parse_int(arg, 1, 1L << 40, &v)) return cli_usage_error(cmd, "--limit wants a positive integer, got '%s'", arg), -1;
        s->read.limit = v;
        return 1;
    }
    return 0;
}

int cli_stage_open(cli_stage *st, const char *cmd, cli_stage_opts *so, cli_judge *jo, bool answers, bool judge) {
    memset(st, 0, sizeof *st);
    /* under mpirun/srun the ranks share every window of records; rank 0 writes and reports */
    pt_status de = pt_dist_init();
    if (de) return cli_fail(cmd, de);
    /* enough records per round to keep every request slot busy */
    if (!so->io.window) so->io.window = 2 * jo->o.concurrency > 16 ? 2 * jo->o.concurrency : 16;
    pt_status e = pt_prompts_load(&st->prompts, so->prompts_dir);
    if (e) return cli_fail(cmd, e);
    e = answers ? pt_answers_load(&st->rs, so->in, &st->compass) : pt_records_load(&st->rs, so->in, &so->read);
    if (e) {
        pt_prompts_free(&st->prompts);
        return cli_fail(cmd, e);
    }
    int rc = judge ? cli_judge_open(jo, cmd) : 0;
    if (rc) {
        pt_records_free(&st->rs);
        pt_prompts_free(&st->prompts);
        free(st->compass);
        return rc;
    }
    cli_stage_ui_init(&st->ui, &st->hooks, cmd, so->quiet);
    st->ui.finished = pt_dist_rank() > 0; /* the others' counts are partial: no summary line */
    return 0;
}

int cli_stage_close(cli_stage *st, const char *cmd, cli_judge *jo, pt_status status) {
    cli_stage_ui_finish(&st->ui, &st->sum);
    int rc = status ? cli_fail(cmd, status) : 0;
    cli_judge_close(jo);
    pt_records_free(&st->rs);
    pt_prompts_free(&st->prompts);
    free(st->compass);
    return rc;
}

int cli_judge_group(void *opts, const char *cmd, int opt, const char *arg) { return cli_judge_option(opts, cmd, opt, arg); }

int cli_stage_group(void *opts, const char *cmd, int opt, const char *arg) { return cli_stage_option(opts, cmd, opt, arg); }

int cli_swap_option(pt_swap_mode *m, const char *cmd, int opt, const char *arg) {
    if (opt != 1200) return 0;
    int v = pt_swap_mode_parse(arg);
    if (v < 0) { cli_usage_error(cmd, "--swap-check is flag (the default) or drop, got '%s'", arg); return -1; }
    *m = (pt_swap_mode)v;
    return 1;
}

int cli_swap_group(void *opts, const char *cmd, int opt, const char *arg) { return cli_swap_option(opts, cmd, opt, arg); }
