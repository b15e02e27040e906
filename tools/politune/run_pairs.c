/* The pairs stage of `politune run` (`politune run --make-pairs`): a seeded sample of
 * preference pairs from one or more files, mixed in given proportions (left75 = 75% from the
 * left pairs, 25% from the right ones), written as JSONL that `politune train` reads. The
 * records are copied as they are: PoliTune chat JSON pairs or prompt/chosen/rejected lines.
 * It is a mode of `run` rather than a command of its own because nothing but a recipe needs
 * it; the manifests record it like any other stage command, so it can be rerun by hand. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "data/jsonl.h"
#include "run_pairs.h"
#include "util/file.h"
#include "util/rng.h"

static const char *usage_text =
    "usage: politune run --make-pairs --out FILE [--count N] [--seed S] [--weights W1,W2,...] FILE...\n\n"
    "The pairs stage of a recipe: samples N preference pairs (default 0: all there are, or as many as\n"
    "the proportions allow) from the files, a share W of them from each (normalised; default equal\n"
    "shares), with a seeded generator, and writes them shuffled as JSONL. Files: a JSON array (the\n"
    "PoliTune chat JSON) or JSONL. A file with too few pairs scales the whole sample down, keeping\n"
    "the proportions, with a note.\n";

#define MAX_SRC 16

/* A JSON array file or JSONL, as an array of objects. */
static pt_status load_records(const char *path, json_t **out) {
    char *text = NULL;
    size_t len;
    PT_TRY(pt_file_read_all(path, &text, &len));
    size_t i = strspn(text, " \t\r\n");
    pt_status st = PT_OK;
    if (text[i] == '[') {
        json_error_t e;
        *out = json_loadb(text, len, 0, &e);
        if (!*out) st = pt_error(PT_ERR_FORMAT, "%s:%d: invalid JSON: %s", path, e.line, e.text);
    } else {
        st = pt_jsonl_read_all(path, out);
    }
    free(text);
    if (st) return st;
    for (size_t k = 0; k < json_array_size(*out); k++)
        if (!json_is_object(json_array_get(*out, k))) {
            json_decref(*out);
            *out = NULL;
            return pt_error(PT_ERR_FORMAT, "%s: record %zu is not a JSON object", path, k + 1);
        }
    return PT_OK;
}

/* Largest-remainder shares of n by weights w. */
static void shares(long n, const double *w, int k, long *out) {
    long given = 0;
    double rem[MAX_SRC];
    for (int i = 0; i < k; i++) {
        double x = n * w[i];
        out[i] = (long)x;
        rem[i] = x - out[i];
        given += out[i];
    }
    for (; given < n; given++) {
        int best = 0;
        for (int i = 1; i < k; i++)
            if (rem[i] > rem[best]) best = i;
        out[best]++;
        rem[best] = -1;
    }
}

static size_t pick(pt_rng *r, size_t n) {
    size_t x = (size_t)(pt_rng_double(r) * (double)n);
    return x < n ? x : n - 1;
}

int run_make_pairs_main(int argc, char **argv) {
    const char *cmd = "run --make-pairs", *out = NULL, *weights = NULL;
    long count = 0, v;
    unsigned long long seed = 0;
    static const struct option opts[] = {{"make-pairs", no_argument, 0, 'M'}, {"out", required_argument, 0, 'o'}, {"count", required_argument, 0, 'n'},
                                         {"seed", required_argument, 0, 's'},  {"weights", required_argument, 0, 'w'}, {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    int opt;
    opterr = 0;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 'M': break;
        case 'o': out = optarg; break;
        case 'n':
            if (!cli_parse_int(optarg, 0, 1000000000L, &count)) return cli_usage_error(cmd, "--count wants an integer >= 0, got '%s'", optarg);
            break;
        case 's':
            if (!cli_parse_int(optarg, 0, 0x7fffffffffffffffL, &v)) return cli_usage_error(cmd, "--seed wants an integer >= 0, got '%s'", optarg);
            seed = (unsigned long long)v;
            break;
        case 'w': weights = optarg; break;
        case 'h': fputs(usage_text, stdout); return 0;
        default: return cli_usage_error(cmd, "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    int k = argc - optind;
    if (!out) return cli_usage_error(cmd, "--out FILE is required");
    if (k < 1) return cli_usage_error(cmd, "give at least one file of pairs");
    if (k > MAX_SRC) return cli_usage_error(cmd, "at most %d files", MAX_SRC);
    double w[MAX_SRC], sum = 0;
    for (int i = 0; i < k; i++) w[i] = 1;
    if (weights) {
        const char *p = weights;
        for (int i = 0; i < k; i++) {
            char *end;
            w[i] = strtod(p, &end);
            if (end == p || !(w[i] > 0) || (i < k - 1 && *end != ',') || (i == k - 1 && *end))
                return cli_usage_error(cmd, "--weights wants %d positive numbers separated by commas, got '%s'", k, weights);
            p = end + 1;
        }
    }
    for (int i = 0; i < k; i++) sum += w[i];
    for (int i = 0; i < k; i++) w[i] /= sum;

    json_t *src[MAX_SRC] = {0};
    pt_status st = PT_OK;
    for (int i = 0; i < k && !st; i++) st = load_records(argv[optind + i], &src[i]);
    /* the largest sample the proportions allow */
    long avail = -1;
    for (int i = 0; i < k && !st; i++) {
        long a = (long)((double)json_array_size(src[i]) / w[i] + 1e-9);
        if (avail < 0 || a < avail) avail = a;
    }
    long n = count ? count : avail, take[MAX_SRC] = {0};
    if (!st && n > avail) {
        fprintf(stderr, "politune %s: %ld pairs asked for, but the files hold enough for %ld in these proportions; taking %ld\n", cmd, n, avail, avail);
        n = avail;
    }
    if (!st) shares(n, w, k, take);
    for (int i = 0; i < k && !st; i++)
        if (take[i] > (long)json_array_size(src[i])) take[i] = (long)json_array_size(src[i]); /* rounding at the edge */
    /* a partial Fisher-Yates shuffle per file, then one over the mix */
    pt_rng rng;
    pt_rng_seed(&rng, seed);
    json_t *all = json_array();
    if (!st && !all) st = pt_error(PT_ERR_OOM, "out of memory");
    for (int i = 0; i < k && !st; i++) {
        size_t m = json_array_size(src[i]);
        size_t *idx = malloc(sizeof *idx * (m ? m : 1));
        if (!idx) { st = pt_error(PT_ERR_OOM, "out of memory"); break; }
        for (size_t j = 0; j < m; j++) idx[j] = j;
        for (long j = 0; j < take[i]; j++) {
            size_t r = (size_t)j + pick(&rng, m - (size_t)j), t = idx[j];
            idx[j] = idx[r];
            idx[r] = t;
            json_array_append(all, json_array_get(src[i], idx[j]));
        }
        free(idx);
    }
    size_t total = json_array_size(all);
    for (size_t j = 0; !st && k > 1 && j + 1 < total; j++) {
        size_t r = j + pick(&rng, total - j);
        json_t *a = json_incref(json_array_get(all, j)), *b = json_incref(json_array_get(all, r));
        json_array_set_new(all, j, b);
        json_array_set_new(all, r, a);
    }
    /* one line per record */
    size_t cap = 1 << 16, len = 0;
    char *buf = st ? NULL : malloc(cap);
    if (!st && !buf) st = pt_error(PT_ERR_OOM, "out of memory");
    for (size_t j = 0; j < total && !st; j++) {
        char *line = json_dumps(json_array_get(all, j), JSON_COMPACT | JSON_PRESERVE_ORDER);
        size_t ln = line ? strlen(line) : 0;
        if (line && len + ln + 2 > cap) {
            while (len + ln + 2 > cap) cap *= 2;
            char *b = realloc(buf, cap);
            if (b) buf = b;
            else { free(line); line = NULL; }
        }
        if (!line) { st = pt_error(PT_ERR_OOM, "out of memory"); break; }
        memcpy(buf + len, line, ln);
        len += ln;
        buf[len++] = '\n';
        free(line);
    }
    if (!st && total == 0) st = pt_error(PT_ERR_FORMAT, "no pairs to write: the files hold %s", k > 1 ? "too few pairs for these proportions" : "no records");
    if (!st) st = pt_file_write_atomic(out, buf, len);
    int rc = 0;
    if (st) {
        rc = cli_fail(cmd, st);
    } else {
        printf("{\"out\":");
        cli_json_string(stdout, out);
        printf(",\"pairs\":%zu,\"from\":[", total);
        for (int i = 0; i < k; i++) {
            printf("%s{\"file\":", i ? "," : "");
            cli_json_string(stdout, argv[optind + i]);
            printf(",\"available\":%zu,\"taken\":%ld}", json_array_size(src[i]), take[i]);
        }
        printf("]}\n");
    }
    free(buf);
    json_decref(all);
    for (int i = 0; i < k; i++) json_decref(src[i]);
    return rc;
}
