/* Shared CLI plumbing: errors, number parsing, model sessions, sampling flags, prompts. */
#include "cli.h"

#include "util/file.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "dist/dist.h"

int cli_fail(const char *cmd, pt_status st) {
    const int code = st == PT_ERR_ARG ? 2 : 1;
    /* in a job of several ranks: the rank that failed says so (rank 0 for what all found);
     * if the others may be waiting for it, the job ends here */
    if (pt_dist_reports_error()) {
        if (pt_dist_rank() > 0) fprintf(stderr, "politune %s: rank %d: %s\n", cmd, pt_dist_rank(), pt_errmsg()[0] ? pt_errmsg() : pt_status_name(st));
        else fprintf(stderr, "politune %s: %s\n", cmd, pt_errmsg()[0] ? pt_errmsg() : pt_status_name(st));
    }
    pt_dist_fail(code);
    return code;
}

int cli_usage_error(const char *cmd, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "politune %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (see 'politune %s --help')\n", cmd);
    return 2;
}

bool cli_parse_int(const char *s, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return false;
    *out = v;
    return true;
}

int cli_parse_resamples(const char *cmd, const char *arg, int *out) {
    long v;
    if (!cli_parse_int(arg, 1, 1000000, &v))
        return cli_usage_error(cmd, "--resamples wants an integer 1..1000000 (bootstrap resamples), got '%s'", arg);
    *out = (int)v;
    return 0;
}

int cli_parse_stats_seed(const char *cmd, const char *arg, uint64_t *out) {
    long v;
    if (!cli_parse_int(arg, 0, INT64_MAX, &v)) return cli_usage_error(cmd, "--seed wants an integer >= 0, got '%s'", arg);
    *out = (uint64_t)v;
    return 0;
}

bool cli_parse_float(const char *s, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v)) return false;
    *out = v;
    return true;
}

pt_status cli_parse_ids(const char *s, int32_t **ids, int *n) {
    size_t cap = 1;
    for (const char *p = s; *p; p++) cap += *p == ',';
    *ids = malloc(sizeof(int32_t) * cap);
    *n = 0;
    if (!*ids) return pt_error(PT_ERR_OOM, "out of memory");
    const char *p = s;
    while (*p) {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || errno || v < 0 || v > INT32_MAX || (*end && *end != ',')) {
            free(*ids);
            *ids = NULL;
            return pt_error(PT_ERR_ARG, "token list: item %d ('%.*s') is not a non-negative integer", *n + 1, (int)strcspn(p, ","), p);
        }
        (*ids)[(*n)++] = (int32_t)v;
        p = *end ? end + 1 : end;
    }
    if (*n == 0) { free(*ids); *ids = NULL; return pt_error(PT_ERR_ARG, "token list is empty"); }
    return PT_OK;
}

int cli_getopt(const char *cmd, int argc, char **argv, const struct option *longopts, const char *usage, bool positional,
               const cli_option_group *groups) {
    opterr = 0; /* the message below names the option, once */
    optind = 1;
    int opt;
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        int r = 0;
        for (const cli_option_group *g = groups; g && g->fn && !r; g++) r = g->fn(g->opts, cmd, opt, optarg);
        if (r < 0) return 2;
        if (r) continue;
        if (opt == 'h') {
            fputs(usage, stdout);
            return CLI_HELP_SHOWN;
        }
        return cli_usage_error(cmd, "unknown or incomplete option '%s'", argv[optind - 1]);
    }
    if (!positional && optind < argc) return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    return 0;
}

int cli_bind_group(void *binds, const char *cmd, int opt, const char *arg) {
    for (const cli_bind *b = binds; b->opt; b++)
        if (b->opt == opt) {
            if (b->str) *b->str = arg;
            if (b->flag) *b->flag = true;
            return 1;
        }
    return 0;
}

int cli_model_group(void *opts, const char *cmd, int opt, const char *arg) { return cli_model_option(opts, cmd, opt, arg); }

int cli_gen_group(void *opts, const char *cmd, int opt, const char *arg) { return cli_gen_option(opts, cmd, opt, arg); }

int cli_model_option(cli_model_opts *o, const char *cmd, int opt, const char *arg) {
    long v;
    switch (opt) {
    case 'm': o->model = arg; return 1;
    case 'A': {
        char *dir = NULL, *name = NULL;
        float scale;
        pt_status st = pt_adapter_parse_spec(cli_adapter_strip_name(arg, &name), &dir, &scale);
        free(name);
        free(dir);
        if (st) return cli_usage_error(cmd, "--adapter %s", pt_errmsg()), -1;
        if (o->n_adapters == PT_ENGINE_MAX_ADAPTERS) return cli_usage_error(cmd, "at most %d --adapter options", PT_ENGINE_MAX_ADAPTERS), -1;
        if (!o->adapter) o->adapter = arg;
        o->adapter_args[o->n_adapters++] = arg;
        return 1;
    }
    case 'T': o->chat_template = arg; return 1;
    case 2000: o->device = arg; return 1;
    case 2001: {
        char *path = NULL, *layers = NULL;
        float scale;
        pt_status st = pt_steer_parse_spec(arg, &path, &scale, &layers);
        free(path);
        free(layers);
        if (st) return cli_usage_error(cmd, "%s", pt_errmsg()), -1;
        o->steer = arg;
        return 1;
    }
    case 2002: {
        pt_cuda_precision p;
        if (pt_cuda_precision_parse(arg, &p)) return cli_usage_error(cmd, "--precision wants bf16 or f32, got '%s'", arg), -1;
        o->precision = arg;
        return 1;
    }
    case 2003: {
        /* the engines read the process's default when they are made, wherever the command makes
         * them (a session, the compass, the dial), so the choice is made here, once */
        pt_numerics n;
        if (pt_numerics_parse(arg, &n)) return cli_usage_error(cmd, "%s", pt_errmsg()), -1;
        pt_numerics_set_default(n);
        o->numerics = arg;
        return 1;
    }
    case 'j':
        if (!cli_parse_int(arg, 1, 1024, &v)) return cli_usage_error(cmd, "--threads wants a positive integer, got '%s'", arg), -1;
        o->threads = (int)v;
        return 1;
    case 'C':
        if (!cli_parse_int(arg, 1, 1 << 20, &v)) return cli_usage_error(cmd, "--ctx wants a positive integer, got '%s'", arg), -1;
        o->ctx = (int)v;
        return 1;
    }
    return 0;
}

pt_status cli_backend_configure(const char *device, const char *precision) {
    pt_backend_options o = {PT_DEVICE_AUTO, PT_CUDA_BF16};
    if (!device) device = getenv("POLITUNE_DEVICE");
    if (device && *device) PT_TRY(pt_device_parse(device, &o.device));
    if (!precision) precision = getenv("POLITUNE_CUDA_PRECISION");
    if (precision && *precision) PT_TRY(pt_cuda_precision_parse(precision, &o.precision));
    return pt_backend_configure(&o);
}

int cli_device_select_precision(const char *cmd, const char *device, const char *precision) {
    pt_status st = cli_backend_configure(device, precision);
    return st ? cli_fail(cmd, st) : 0;
}

int cli_device_select(const char *cmd, const char *device) { return cli_device_select_precision(cmd, device, NULL); }

int cli_session_open(cli_session *s, const char *cmd, const cli_model_opts *o, int n_slots) {
    memset(s, 0, sizeof *s);
    if (!o->model) return cli_usage_error(cmd, "--model PATH is required");
    int rc = cli_device_select_precision(cmd, o->device, o->precision);
    if (rc) return rc;
    pt_status st;
    if (o->chat_template && (st = pt_chat_template_from_name(o->chat_template, &s->chat))) return cli_fail(cmd, st);
    pt_backend_set_threads(o->threads);
    if ((st = pt_model_load(&s->model, o->model))) return cli_fail(cmd, st);
    if (!o->chat_template) s->chat = s->model->chat;
    if ((rc = cli_adapters_load(cmd, o, s->model, s->adapters, s->scales))) {
        cli_session_close(s);
        return rc;
    }
    s->n_adapters = o->n_adapters;
    s->adapter = s->adapters[0];
    if ((st = pt_engine_new(&s->engine, s->model, n_slots, o->ctx)) ||
        (st = pt_engine_set_adapters(s->engine, (const pt_adapter *const *)s->adapters, s->scales, s->n_adapters))) {
        cli_session_close(s);
        return cli_fail(cmd, st);
    }
    if (o->steer) {
        float scale;
        bool *layers = NULL;
        if ((rc = cli_steer_load(cmd, o->steer, s->model, &s->steer, &scale, &layers))) {
            cli_session_close(s);
            return rc;
        }
        st = pt_engine_set_steer(s->engine, s->steer, scale, layers);
        free(layers);
        if (st) { cli_session_close(s); return cli_fail(cmd, st); }
    }
    return 0;
}

int cli_steer_load(const char *cmd, const char *arg, const pt_model *m, pt_steer **out, float *scale, bool **layers) {
    *out = NULL;
    *layers = NULL;
    char *path = NULL, *text = NULL;
    pt_status st = pt_steer_parse_spec(arg, &path, scale, &text);
    if (!st) st = pt_steer_load(out, path, m);
    if (!st && !(*layers = calloc((size_t)m->cfg.n_layers, sizeof(bool)))) st = pt_error(PT_ERR_OOM, "out of memory");
    if (!st) st = pt_steer_layers(*out, text, *layers);
    free(path);
    free(text);
    if (st) {
        pt_steer_free(*out);
        *out = NULL;
        free(*layers);
        *layers = NULL;
        return cli_fail(cmd, st);
    }
    return 0;
}

const char *cli_adapter_strip_name(const char *arg, char **name) {
    *name = NULL;
    size_t n = strspn(arg, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-");
    if (n == 0 || arg[n] != '=' || !arg[n + 1] || pt_dir_exists(arg)) return arg;
    *name = strndup(arg, n);
    return arg + n + 1;
}

char *cli_adapter_name(const char *arg) {
    char *name = NULL;
    const char *rest = cli_adapter_strip_name(arg, &name);
    if (name) return name;
    char *dir = NULL;
    float scale;
    if (pt_adapter_parse_spec(rest, &dir, &scale)) return strdup(rest);
    /* the last component, or the one above when that is "adapter" (train-left/adapter) */
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/') n--;
    size_t b = n;
    while (b > 0 && dir[b - 1] != '/') b--;
    if (n - b == 7 && !strncmp(dir + b, "adapter", 7) && b > 1) {
        n = b - 1;
        b = n;
        while (b > 0 && dir[b - 1] != '/') b--;
    }
    char *out = strndup(dir + b, n - b);
    free(dir);
    return out;
}

char *cli_adapters_label(const cli_model_opts *o) {
    if (o->n_adapters == 0) return NULL;
    char buf[1024] = "";
    for (int i = 0; i < o->n_adapters; i++) {
        char *name = cli_adapter_name(o->adapter_args[i]), *dir = NULL, *ignored = NULL;
        float scale = 1;
        if (!name) return NULL;
        if (pt_adapter_parse_spec(cli_adapter_strip_name(o->adapter_args[i], &ignored), &dir, &scale)) pt_error_clear();
        free(ignored);
        free(dir);
        size_t n = strlen(buf);
        if (o->n_adapters == 1 && scale == 1.0f) snprintf(buf, sizeof buf, "%s", name);
        else snprintf(buf + n, sizeof buf - n, "%s%s:%g", i ? "+" : "", name, (double)scale);
        free(name);
    }
    return strdup(buf);
}

int cli_adapters_load(const char *cmd, const cli_model_opts *o, const pt_model *m, pt_adapter **adapters, float *scales) {
    for (int i = 0; i < o->n_adapters; i++) {
        char *dir = NULL, *name = NULL;
        const char *spec = cli_adapter_strip_name(o->adapter_args[i], &name);
        free(name);
        pt_status st = pt_adapter_parse_spec(spec, &dir, &scales[i]);
        if (!st) st = pt_adapter_load(&adapters[i], dir, m);
        free(dir);
        if (st) {
            int rc = cli_fail(cmd, st);
            for (int j = 0; j < i; j++) { pt_adapter_free(adapters[j]); adapters[j] = NULL; }
            return rc;
        }
    }
    return 0;
}

static pt_status adapters_single(pt_adapter *const *adapters, const float *scales, int n, pt_adapter **owned, const pt_adapter **out) {
    *owned = NULL;
    *out = NULL;
    if (n == 0) return PT_OK;
    if (n == 1 && scales[0] == 1.0f) { *out = adapters[0]; return PT_OK; }
    PT_TRY(pt_adapter_combine(owned, (const pt_adapter *const *)adapters, scales, n));
    *out = *owned;
    return PT_OK;
}

int cli_merged_open(const char *cmd, const cli_model_opts *o, cli_merged *out) {
    memset(out, 0, sizeof *out);
    pt_status st = pt_model_load(&out->m, o->model);
    if (st) return cli_fail(cmd, st);
    float scales[PT_ENGINE_MAX_ADAPTERS];
    int rc = cli_adapters_load(cmd, o, out->m, out->loaded, scales);
    if (rc) return rc;
    out->n_loaded = o->n_adapters;
    st = adapters_single(out->loaded, scales, o->n_adapters, &out->owned, &out->a);
    return st ? cli_fail(cmd, st) : 0;
}

void cli_merged_close(cli_merged *mg) {
    pt_adapter_free(mg->owned);
    for (int i = 0; i < mg->n_loaded; i++) pt_adapter_free(mg->loaded[i]);
    pt_model_free(mg->m);
    memset(mg, 0, sizeof *mg);
}

void cli_session_close(cli_session *s) {
    pt_engine_free(s->engine);
    pt_steer_free(s->steer);
    for (int i = 0; i < PT_ENGINE_MAX_ADAPTERS; i++) pt_adapter_free(s->adapters[i]);
    pt_model_free(s->model);
    memset(s, 0, sizeof *s);
}

void cli_gen_defaults(cli_gen_opts *g) {
    memset(g, 0, sizeof *g);
    g->p = pt_gen_params_default();
    g->stop_at_eos = true;
}

int cli_gen_option(cli_gen_opts *g, const char *cmd, int opt, const char *arg) {
    long v;
    double f;
    switch (opt) {
    case 'n':
        if (!cli_parse_int(arg, 0, 1 << 20, &v)) return cli_usage_error(cmd, "--max-new-tokens wants an integer >= 0, got '%s'", arg), -1;
        g->p.max_new_tokens = (int)v;
        return 1;
    case 't':
        if (!cli_parse_float(arg, &f) || f < 0) return cli_usage_error(cmd, "--temperature wants a number >= 0, got '%s'", arg), -1;
        g->p.sampling.temperature = (float)f;
        return 1;
    case 'k':
        if (!cli_parse_int(arg, 0, 1 << 30, &v)) return cli_usage_error(cmd, "--top-k wants an integer >= 0, got '%s'", arg), -1;
        g->p.sampling.top_k = (int)v;
        return 1;
    case 'p':
        if (!cli_parse_float(arg, &f) || f <= 0 || f > 1) return cli_usage_error(cmd, "--top-p wants a number in (0, 1], got '%s'", arg), -1;
        g->p.sampling.top_p = (float)f;
        return 1;
    case 's': {
        char *end;
        errno = 0;
        unsigned long long s = strtoull(arg, &end, 10);
        if (errno || end == arg || *end) return cli_usage_error(cmd, "--seed wants a non-negative integer, got '%s'", arg), -1;
        g->p.sampling.seed = s;
        return 1;
    }
    case 'S':
        if (g->n_stops == 16) return cli_usage_error(cmd, "at most 16 --stop strings"), -1;
        if (!*arg) return cli_usage_error(cmd, "--stop wants a non-empty string"), -1;
        g->stops[g->n_stops++] = arg;
        return 1;
    case 'E': g->stop_at_eos = false; return 1;
    }
    return 0;
}

void cli_gen_finish(cli_gen_opts *g, const pt_model *m, int32_t *buf, int cap) {
    g->p.stop_strings = g->stops;
    g->p.n_stop_strings = g->n_stops;
    g->p.n_stop_ids = 0;
    if (!g->stop_at_eos) return;
    int n = 0;
    if (m->tok) pt_tokenizer_stop_ids(m->tok, buf, cap, &n);
    else if (m->cfg.eos_id >= 0 && cap > 0) buf[n++] = m->cfg.eos_id;
    g->p.stop_ids = buf;
    g->p.n_stop_ids = n;
}

pt_status cli_encode_prompt(const cli_session *s, const char *system, const char *user, bool chat, int32_t **ids, int *n) {
    const pt_model *m = s->model;
    if (!m->tok) return pt_error(PT_ERR_ARG, "%s: the checkpoint has no tokenizer (tokenizer.json or GGUF vocabulary); use token ids", m->path);
    size_t nn = 0;
    pt_status st;
    if (!chat) {
        if (system) return pt_error(PT_ERR_ARG, "--system needs --chat");
        st = pt_tokenizer_encode(m->tok, user, strlen(user), true, ids, &nn);
    } else {
        if (s->chat == PT_CHAT_NONE)
            return pt_error(PT_ERR_ARG, "%s: no chat template recognised in the checkpoint; choose one with --chat-template (llama3, mistral, chatml, qwen3, alpaca)", m->path);
        pt_chat_msg msgs[2];
        int k = 0;
        if (system) msgs[k++] = (pt_chat_msg){"system", system};
        msgs[k++] = (pt_chat_msg){"user", user};
        int32_t bos = pt_tokenizer_bos(m->tok);
        /* templates that start with BOS write it as text (recognised as the special token);
         * alpaca is plain text, so BOS comes from the tokenizer's own rule */
        const char *bos_text = bos >= 0 ? pt_tokenizer_token_text(m->tok, bos) : NULL;
        char *text = NULL;
        st = pt_chat_render(s->chat, msgs, k, true, bos_text, &text);
        if (!st) st = pt_tokenizer_encode(m->tok, text, strlen(text), s->chat == PT_CHAT_ALPACA, ids, &nn);
        free(text);
    }
    *n = (int)nn;
    return st;
}

bool cli_stream_stdout(void *user, const char *piece, size_t len) {
    (void)user;
    fwrite(piece, 1, len, stdout);
    fflush(stdout);
    return true;
}

void cli_json_string(FILE *f, const char *s) { cli_json_stringn(f, s, strlen(s)); }

void cli_json_stringn(FILE *f, const char *s, size_t n) {
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s, *end = p + n; p < end; p++) {
        switch (*p) {
        case '"': fputs("\\\"", f); break;
        case '\\': fputs("\\\\", f); break;
        case '\n': fputs("\\n", f); break;
        case '\r': fputs("\\r", f); break;
        case '\t': fputs("\\t", f); break;
        default:
            if (*p < 0x20) fprintf(f, "\\u%04x", *p);
            else fputc(*p, f);
        }
    }
    fputc('"', f);
}
