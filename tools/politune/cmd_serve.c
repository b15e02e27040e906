/* politune serve: the OpenAI-compatible HTTP server (src/serve/server.h) until SIGINT/SIGTERM. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "commands.h"
#include "serve/server.h"
#include "util/file.h"

static const char *usage_text =
    "usage: politune serve --model PATH [--adapter [NAME=]DIR[:SCALE]]... [--port N] [options]\n\n"
    "Serves the model over an OpenAI-compatible HTTP API until SIGINT or SIGTERM:\n"
    "  POST /v1/chat/completions, POST /v1/completions (both stream with \"stream\": true),\n"
    "  GET /v1/models, GET /health. Requests run together in one batch (continuous batching\n"
    "  over --parallel cache slots); more wait in a queue; past that they get 503.\n\n"
    "Adapters: each --adapter NAME=DIR[:SCALE] is loaded once (NAME defaults to the directory's\n"
    "name, SCALE is its default scale, 1 unless given). A request picks its own with\n"
    "\"adapters\": [{\"name\": \"left\", \"scale\": 0.7}] (those not listed: 0), or by \"model\":\n"
    "\"base\" (no adapter) or an adapter's NAME (that one at 1). GET /v1/adapters lists them with\n"
    "their default scales; POST /v1/adapters [{\"name\" or \"id\", \"scale\"}] sets the defaults.\n"
    "Requests with different adapters run in the same batch.\n\n"
    "options:\n" CLI_MODEL_HELP
    "  --host ADDR           IPv4 address to listen on (default 127.0.0.1: this machine only)\n"
    "  --port N              TCP port (default 8080; 0 picks a free one, see --port-file)\n"
    "  --port-file FILE      write the port number to FILE once listening\n"
    "  --api-key KEY         require 'Authorization: Bearer KEY' (default: $POLITUNE_API_KEY, else none)\n"
    "  --parallel N          sequences decoded together, each with its own cache slot (default 4)\n"
    "  --queue N             requests that may wait for a slot (default 64; 0: no limit)\n"
    "  --max-body BYTES      largest request body accepted (default 1048576; larger: 413)\n"
    "  --max-tokens N        default max_tokens of chat requests (default 512)\n"
    "  --name ID             model id reported by /v1/models (default: the file name)\n"
    "  --tokenizer FILE      a tokenizer.json to use (for a checkpoint that ships none)\n"
    "  --grace S             on shutdown, seconds to let requests in flight finish (default 10)\n"
    "  --batch-invariant     one sequence per forward pass: a request's text no longer depends on\n"
    "                        what ran beside it (exactly repeatable), at the cost of throughput\n"
    "  --quiet               no per-request log lines on stderr\n\n"
    "connection limits (slow or hostile clients; a slow-loris that trickles bytes is cut by\n"
    "--request-timeout, since the idle timeout restarts with every byte):\n"
    "  --max-connections N   open connections in all (default 256); one thread each\n"
    "  --max-per-client N    open connections per client IP address (default 32)\n"
    "  --reserve N           of --max-connections, places only an address holding no connection\n"
    "                        may take (default 16), so /health and new clients still get in\n"
    "  --request-timeout S   a request's headers and body must arrive within S seconds of the\n"
    "                        connection opening or of its previous response (default 30)\n"
    "  --idle-timeout S      close a connection silent for S seconds (default 120)\n";

static void log_line(void *user, const char *line) {
    (void)user;
    time_t t = time(NULL);
    struct tm tm;
    localtime_r(&t, &tm);
    fprintf(stderr, "politune serve: %02d:%02d:%02d %s\n", tm.tm_hour, tm.tm_min, tm.tm_sec, line);
}

/* serve's own options (the model's are cli.c's). */
typedef struct {
    pt_server_opts *so;
    const char **port_file, **tokenizer;
    long *parallel;
    double *grace;
    bool *quiet;
} serve_cli;

static int serve_option(void *opts, const char *cmd, int c, const char *arg) {
    serve_cli *p = opts;
    pt_server_opts *so = p->so;
    long v;
    switch (c) {
    case 1: so->host = arg; return 1;
    case 2:
        if (!cli_parse_int(arg, 0, 65535, &v)) return cli_usage_error(cmd, "--port wants 0..65535, got '%s'", arg), -1;
        so->port = (int)v;
        return 1;
    case 3: *p->port_file = arg; return 1;
    case 4: so->api_key = arg; return 1;
    case 5:
        if (!cli_parse_int(arg, 1, 256, p->parallel)) return cli_usage_error(cmd, "--parallel wants 1..256, got '%s'", arg), -1;
        return 1;
    case 6:
        if (!cli_parse_int(arg, 0, 1 << 20, &v)) return cli_usage_error(cmd, "--queue wants an integer >= 0, got '%s'", arg), -1;
        so->max_queue = (int)v;
        return 1;
    case 7:
        if (!cli_parse_int(arg, 16, 1L << 32, &v)) return cli_usage_error(cmd, "--max-body wants a byte count >= 16, got '%s'", arg), -1;
        so->max_body = (size_t)v;
        return 1;
    case 8:
        if (!cli_parse_int(arg, 1, 1 << 20, &v)) return cli_usage_error(cmd, "--max-tokens wants a positive integer, got '%s'", arg), -1;
        so->default_max_tokens = (int)v;
        return 1;
    case 9: so->model_id = arg; return 1;
    case 10: *p->tokenizer = arg; return 1;
    case 11:
        if (!cli_parse_float(arg, p->grace) || *p->grace < 0) return cli_usage_error(cmd, "--grace wants seconds >= 0, got '%s'", arg), -1;
        return 1;
    case 12: *p->quiet = true; return 1;
    case 13: so->batch_invariant = true; return 1;
    case 14:
        if (!cli_parse_int(arg, 2, 65536, &v)) return cli_usage_error(cmd, "--max-connections wants 2..65536, got '%s'", arg), -1;
        so->max_connections = (int)v;
        return 1;
    case 15:
        if (!cli_parse_int(arg, 1, 65536, &v)) return cli_usage_error(cmd, "--max-per-client wants a positive integer, got '%s'", arg), -1;
        so->max_per_client = (int)v;
        return 1;
    case 16:
        if (!cli_parse_int(arg, 0, 65535, &v)) return cli_usage_error(cmd, "--reserve wants an integer >= 0, got '%s'", arg), -1;
        so->reserve = (int)v;
        return 1;
    case 17:
        if (!cli_parse_int(arg, 1, 86400, &v)) return cli_usage_error(cmd, "--request-timeout wants 1..86400 seconds, got '%s'", arg), -1;
        so->request_timeout_s = (int)v;
        return 1;
    case 18:
        if (!cli_parse_int(arg, 1, 86400, &v)) return cli_usage_error(cmd, "--idle-timeout wants 1..86400 seconds, got '%s'", arg), -1;
        so->idle_timeout_s = (int)v;
        return 1;
    default: return 0;
    }
}

int cmd_serve(int argc, char **argv) {
    const char *cmd = "serve";
    cli_model_opts mo = {0};
    pt_server_opts so = pt_server_opts_default();
    so.port = 8080;
    so.api_key = getenv("POLITUNE_API_KEY");
    const char *port_file = NULL, *tokenizer = NULL;
    long parallel = 4;
    double grace = 10;
    bool quiet = false;
    static const struct option longopts[] = {
        CLI_MODEL_LONGOPTS,
        {"host", required_argument, 0, 1},      {"port", required_argument, 0, 2},      {"port-file", required_argument, 0, 3},
        {"api-key", required_argument, 0, 4},   {"parallel", required_argument, 0, 5},  {"queue", required_argument, 0, 6},
        {"max-body", required_argument, 0, 7},  {"max-tokens", required_argument, 0, 8}, {"name", required_argument, 0, 9},
        {"tokenizer", required_argument, 0, 10}, {"grace", required_argument, 0, 11},   {"quiet", no_argument, 0, 12},
        {"batch-invariant", no_argument, 0, 13}, {"help", no_argument, 0, 'h'},
        {"max-connections", required_argument, 0, 14}, {"max-per-client", required_argument, 0, 15},
        {"reserve", required_argument, 0, 16}, {"request-timeout", required_argument, 0, 17},
        {"idle-timeout", required_argument, 0, 18}, {0, 0, 0, 0}};
    serve_cli sc = {&so, &port_file, &tokenizer, &parallel, &grace, &quiet};
    const cli_option_group groups[] = {{cli_model_group, &mo}, {serve_option, &sc}, {NULL, NULL}};
    int parsed = cli_getopt(cmd, argc, argv, longopts, usage_text, false, groups);
    if (parsed) return parsed == CLI_HELP_SHOWN ? 0 : parsed;
    if (!mo.model) return cli_usage_error(cmd, "--model PATH is required");
    if (so.reserve >= so.max_connections)
        return cli_usage_error(cmd, "--reserve %d must be below --max-connections %d", so.reserve, so.max_connections);

    /* Signals are taken by sigwait in this thread only: block them before any thread starts. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    cli_session s;
    int rc = cli_session_open(&s, cmd, &mo, (int)parallel);
    if (rc) return rc;
    pt_status st;
    if (tokenizer) {
        pt_tokenizer *tok;
        if ((st = pt_tokenizer_load_json(&tok, tokenizer))) {
            cli_session_close(&s);
            return cli_fail(cmd, st);
        }
        pt_tokenizer_free(s.model->tok);
        s.model->tok = tok;
        if (!mo.chat_template) s.chat = pt_chat_template_detect(pt_tokenizer_chat_template_source(tok));
    }
    so.chat = s.chat;
    if (!quiet) so.log = log_line;
    char *names[PT_ENGINE_MAX_ADAPTERS] = {0}, *paths[PT_ENGINE_MAX_ADAPTERS] = {0};
    for (int i = 0; i < mo.n_adapters; i++) {
        char *nm = NULL;
        float sc;
        names[i] = cli_adapter_name(mo.adapter_args[i]);
        pt_adapter_parse_spec(cli_adapter_strip_name(mo.adapter_args[i], &nm), &paths[i], &sc);
        free(nm);
    }
    so.n_adapters = mo.n_adapters;
    so.adapter_names = (const char *const *)names;
    so.adapter_paths = (const char *const *)paths;
    so.adapter_scales = s.scales;
    pt_server *srv;
    st = pt_server_start(&srv, s.model, s.engine, &so);
    for (int i = 0; i < mo.n_adapters; i++) { free(names[i]); free(paths[i]); }
    if (st) {
        cli_session_close(&s);
        return cli_fail(cmd, st);
    }
    int port = pt_server_port(srv);
    fprintf(stderr, "politune serve: listening on http://%s:%d/v1 (model %s, %ld slots x %d tokens, %s, chat template %s%s)\n",
            so.host, port, mo.model, parallel, pt_engine_n_ctx(s.engine), so.batch_invariant ? "one sequence per pass" : "continuous batching",
            pt_chat_template_name(s.chat != PT_CHAT_NONE ? s.chat : PT_CHAT_ALPACA),
            so.api_key && *so.api_key ? ", API key required" : "");
    if (port_file) {
        char buf[16];
        int n = snprintf(buf, sizeof buf, "%d\n", port);
        if ((st = pt_file_write_atomic(port_file, buf, (size_t)n))) {
            pt_server_stop(srv, 0, NULL);
            cli_session_close(&s);
            return cli_fail(cmd, st);
        }
    }
    int sig = 0;
    sigwait(&sigs, &sig);
    fprintf(stderr, "politune serve: %s: shutting down (up to %.0f s for requests in flight)\n", sig == SIGINT ? "SIGINT" : "SIGTERM", grace);
    pt_server_stats stats;
    pt_server_stop(srv, grace, &stats);
    cli_session_close(&s);
    fprintf(stderr, "politune serve: stopped after %ld requests (%ld errors), %ld prompt + %ld generated tokens\n", stats.requests,
            stats.errors, stats.tokens_prompt, stats.tokens_generated);
    return 0;
}
