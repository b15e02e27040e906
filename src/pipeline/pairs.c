/* The pairs stage of `politune run` (`politune run --make-pairs`): a seeded sample of
 * preference pairs from one or more files, mixed in given proportions (left75 = 75% from the
 * left pairs, 25% from the right ones), written as JSONL that `politune train` reads. The
 * records are copied as they are: PoliTune chat JSON pairs or prompt/chosen/rejected lines.
 * With --heldout N it also draws N more pairs, in the same proportions, from the records the
 * sample left (and unequal to any it took): the held-out set `politune train --eval-data`
 * evaluates. They come from a generator of their own, so the training sample is the one a run
 * without them draws unless the files are too small for both.
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
    "usage: politune run --make-pairs --out FILE [--count N] [--seed S] [--weights W1,W2,...]\n"
    "                     [--heldout N --heldout-out FILE] FILE...\n\n"
    "The pairs stage of a recipe: samples N preference pairs (default 0: all there are, or as many as\n"
    "the proportions allow) from the files, a share W of them from each (normalised; default equal\n"
    "shares), with a seeded generator, and writes them shuffled as JSONL. Files: a JSON array (the\n"
    "PoliTune chat JSON) or JSONL. A file with too few pairs scales the whole sample down, keeping\n"
    "the proportions, with a note. --heldout N: also N pairs, in the same proportions, that are not in\n"
    "the sample (not even as a copy), written to --heldout-out: a held-out set for train --eval-data.\n";

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

/* Appends one compact line per record to a JSONL file written whole. */
static pt_status write_jsonl(const char *path, json_t *records) {
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    pt_status st = buf ? PT_OK : pt_error(PT_ERR_OOM, "out of memory");
    for (size_t j = 0; j < json_array_size(records) && !st; j++) {
        char *line = json_dumps(json_array_get(records, j), JSON_COMPACT | JSON_PRESERVE_ORDER);
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
    if (!st) st = pt_file_write_atomic(path, buf, len);
    free(buf);
    return st;
}

static bool contains(json_t *records, json_t *r) {
    for (size_t j = 0; j < json_array_size(records); j++)
        if (json_equal(json_array_get(records, j), r)) return true;
    return false;
}

/* A seeded shuffle of the whole array. */
static void shuffle(json_t *a, pt_rng *rng) {
    size_t total = json_array_size(a);
    for (size_t j = 0; j + 1 < total; j++) {
        size_t r = j + pick(rng, total - j);
        json_t *x = json_incref(json_array_get(a, j)), *y = json_incref(json_array_get(a, r));
        json_array_set_new(a, j, y);
        json_array_set_new(a, r, x);
    }
}

int run_make_pairs_main(int argc, char **argv) {
    const char *cmd = "run --make-pairs", *out = NULL, *weights = NULL, *hout = NULL;
    long count = 0, heldout = 0, v;
    unsigned long long seed = 0;
    static const struct option opts[] = {{"make-pairs", no_argument, 0, 'M'},  {"out", required_argument, 0, 'o'},
                                         {"count", required_argument, 0, 'n'}, {"seed", required_argument, 0, 's'},
                                         {"weights", required_argument, 0, 'w'}, {"heldout", required_argument, 0, 'H'},
                                         {"heldout-out", required_argument, 0, 'O'}, {"help", no_argument, 0, 'h'},
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
        case 'H':
            if (!cli_parse_int(optarg, 0, 1000000000L, &heldout)) return cli_usage_error(cmd, "--heldout wants an integer >= 0, got '%s'", optarg);
            break;
        case 'O': hout = optarg; break;
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
    if (heldout > 0 && !hout) return cli_usage_error(cmd, "--heldout needs --heldout-out FILE");
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
    size_t *idx[MAX_SRC] = {0};
    long take[MAX_SRC] = {0}, hold[MAX_SRC] = {0};
    pt_status st = PT_OK;
    for (int i = 0; i < k && !st; i++) st = load_records(argv[optind + i], &src[i]);
    /* the held-out shares are set aside first: the sample takes what they leave */
    if (!st) shares(heldout, w, k, hold);
    for (int i = 0; i < k && !st && heldout; i++)
        if (hold[i] >= (long)json_array_size(src[i]))
            st = pt_error(PT_ERR_ARG, "%s holds %zu pairs: not enough for %ld held-out ones and a sample", argv[optind + i], json_array_size(src[i]),
                          hold[i]);
    /* the largest sample the proportions allow */
    long avail = -1;
    for (int i = 0; i < k && !st; i++) {
        long a = (long)((double)((long)json_array_size(src[i]) - hold[i]) / w[i] + 1e-9);
        if (avail < 0 || a < avail) avail = a;
    }
    long n = count ? count : avail;
    if (!st && n > avail) {
        fprintf(stderr, "politune %s: %ld pairs asked for, but the files hold enough for %ld in these proportions%s; taking %ld\n", cmd, n, avail,
                heldout ? " besides the held-out ones" : "", avail);
        n = avail;
    }
    if (!st) shares(n, w, k, take);
    for (int i = 0; i < k && !st; i++)
        if (take[i] > (long)json_array_size(src[i])) take[i] = (long)json_array_size(src[i]); /* rounding at the edge */
    /* a partial Fisher-Yates shuffle per file, then one over the mix */
    pt_rng rng;
    pt_rng_seed(&rng, seed);
    json_t *all = json_array(), *held = json_array();
    if (!st && (!all || !held)) st = pt_error(PT_ERR_OOM, "out of memory");
    for (int i = 0; i < k && !st; i++) {
        size_t m = json_array_size(src[i]);
        if (!(idx[i] = malloc(sizeof *idx[i] * (m ? m : 1)))) { st = pt_error(PT_ERR_OOM, "out of memory"); break; }
        for (size_t j = 0; j < m; j++) idx[i][j] = j;
        for (long j = 0; j < take[i]; j++) {
            size_t r = (size_t)j + pick(&rng, m - (size_t)j), t = idx[i][j];
            idx[i][j] = idx[i][r];
            idx[i][r] = t;
            json_array_append(all, json_array_get(src[i], idx[i][j]));
        }
    }
    if (!st && k > 1) shuffle(all, &rng);
    /* the held-out pairs continue each file's shuffle past the sample, from their own stream;
     * a record equal to one already taken (a duplicate in the file) is passed over */
    pt_rng hrng;
    pt_rng_seed(&hrng, seed ^ 0x6865c64f7574ULL);
    for (int i = 0; i < k && !st && heldout; i++) {
        size_t m = json_array_size(src[i]), j = (size_t)take[i];
        long got = 0;
        for (; got < hold[i] && j < m; j++) {
            size_t r = j + pick(&hrng, m - j), t = idx[i][j];
            idx[i][j] = idx[i][r];
            idx[i][r] = t;
            json_t *rec = json_array_get(src[i], idx[i][j]);
            if (contains(all, rec) || contains(held, rec)) continue;
            json_array_append(held, rec);
            got++;
        }
        if (got < hold[i])
            fprintf(stderr, "politune %s: %s: only %ld pairs not in the sample for the %ld held-out ones asked for\n", cmd, argv[optind + i], got,
                    hold[i]);
    }
    if (!st && k > 1) shuffle(held, &hrng);
    size_t total = json_array_size(all), n_held = json_array_size(held);
    if (!st && total == 0) st = pt_error(PT_ERR_FORMAT, "no pairs to write: the files hold %s", k > 1 ? "too few pairs for these proportions" : "no records");
    if (!st && heldout && n_held == 0) st = pt_error(PT_ERR_FORMAT, "no held-out pairs: the sample took every distinct pair");
    if (!st) st = write_jsonl(out, all);
    if (!st && heldout) st = write_jsonl(hout, held);
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
        printf("]");
        if (heldout) {
            printf(",\"heldout\":{\"out\":");
            cli_json_string(stdout, hout);
            printf(",\"pairs\":%zu}", n_held);
        }
        printf("}\n");
    }
    json_decref(all);
    json_decref(held);
    for (int i = 0; i < k; i++) json_decref(src[i]), free(idx[i]);
    return rc;
}
