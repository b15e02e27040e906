/* Writing the per-step metrics logs (JSONL and CSV), and trimming them on resume; the
 * held-out evaluation log likewise. */
#include "train/metrics.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "util/file.h"

static const char *csv_header_dpo =
    "step,epoch,loss,lr,grad_norm,tokens_per_s,rewards/chosen,rewards/rejected,rewards/accuracies,rewards/margins,"
    "logps/chosen,logps/rejected,tokens,elapsed_s,peak_mem_mib\n";
static const char *csv_header_sft = "step,epoch,loss,lr,grad_norm,tokens_per_s,tokens,elapsed_s,peak_mem_mib\n";
static const char *csv_header_eval = "step,eval_loss,eval_rewards/chosen,eval_rewards/rejected,eval_rewards/accuracies,"
                                     "eval_rewards/margins,eval_logps/chosen,eval_logps/rejected,eval_pairs\n";

double pt_peak_rss_mib(void) {
    struct rusage ru;
    return getrusage(RUSAGE_SELF, &ru) == 0 ? ru.ru_maxrss / 1024.0 : 0.0;
}

/* The step a row starts with: `{"step":N,` in JSONL, `N,` in CSV; -1 if none. */
static long row_step(const char *line, bool json) {
    const char *p = line;
    if (json) {
        p = strstr(line, "\"step\":");
        if (!p) return -1;
        p += 7;
    }
    char *end;
    long v = strtol(p, &end, 10);
    return end == p ? -1 : v;
}

/* Rewrites a log keeping the header (CSV) and the rows of steps <= keep. */
static pt_status trim(const char *path, bool json, long keep, const char *header) {
    char *text = NULL;
    size_t len = 0;
    if (!pt_file_exists(path)) return pt_file_write_atomic(path, header, strlen(header));
    PT_TRY(pt_file_read_all(path, &text, &len));
    char *out = malloc(len + strlen(header) + 1);
    if (!out) { free(text); return pt_error(PT_ERR_OOM, "out of memory"); }
    size_t n = 0;
    memcpy(out, header, strlen(header));
    n = strlen(header);
    for (char *line = text; *line;) {
        char *nl = strchr(line, '\n');
        size_t ll = nl ? (size_t)(nl - line + 1) : strlen(line);
        long s = row_step(line, json);
        if (s >= 0 && s <= keep && nl) memcpy(out + n, line, ll), n += ll;
        line += ll;
    }
    pt_status st = pt_file_write_atomic(path, out, n);
    free(out);
    free(text);
    return st;
}

/* A row grows in memory and reaches the file in one write; when the disk is full (or any
 * write fails) the file is cut back to where the row began, so a log never ends in half a
 * line, and the message names the file and the reason. */
typedef struct { char v[2048]; size_t n; } row;

static void row_add(row *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void row_add(row *r, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(r->v + r->n, sizeof r->v - r->n, fmt, ap);
    va_end(ap);
    if (k > 0) r->n = r->n + (size_t)k < sizeof r->v ? r->n + (size_t)k : sizeof r->v - 1;
}

static pt_status append_row(FILE *f, const char *path, const row *r) {
    int fd = fileno(f);
    off_t start = lseek(fd, 0, SEEK_END);
    size_t done = 0;
    while (start >= 0 && done < r->n) {
        ssize_t k = write(fd, r->v + done, r->n - done);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) break;
        done += (size_t)k;
    }
    if (start >= 0 && done == r->n) return PT_OK;
    int err = start < 0 ? errno : done < r->n && errno ? errno : EIO;
    if (start >= 0 && ftruncate(fd, start) != 0) { /* the row stays cut; say so */
        return pt_error(PT_ERR_IO, "%s: writing a row failed (%s), and removing its partial line failed too (%s)", path, strerror(err),
                        strerror(errno));
    }
    return pt_error(PT_ERR_IO, "%s: writing a row failed: %s", path, strerror(err));
}

pt_status pt_metrics_open(pt_metrics_log *l, const char *out_dir, bool dpo, long resume_step) {
    memset(l, 0, sizeof *l);
    l->dpo = dpo;
    char *pj = pt_path_join(out_dir, "metrics.jsonl"), *pc = pt_path_join(out_dir, "metrics.csv");
    pt_status st = pj && pc ? PT_OK : pt_error(PT_ERR_OOM, "out of memory");
    const char *header = dpo ? csv_header_dpo : csv_header_sft;
    if (!st && resume_step >= 0) {
        st = trim(pj, true, resume_step, "");
        if (!st) st = trim(pc, false, resume_step, header);
    } else if (!st) {
        st = pt_file_write_atomic(pj, "", 0);
        if (!st) st = pt_file_write_atomic(pc, header, strlen(header));
    }
    if (!st) {
        l->jsonl = fopen(pj, "ab");
        l->csv = fopen(pc, "ab");
        if (!l->jsonl || !l->csv) st = pt_error(PT_ERR_IO, "%s: cannot open the metrics logs for writing: %s", out_dir, strerror(errno));
    }
    l->jsonl_path = pj, l->csv_path = pc;
    if (st) pt_metrics_close(l);
    return st;
}

pt_status pt_metrics_write(pt_metrics_log *l, const pt_train_metrics *m) {
    row j = {.n = 0}, c = {.n = 0};
    row_add(&j, "{\"step\":%ld,\"epoch\":%.4g,\"loss\":%.9g,\"lr\":%.9g,\"grad_norm\":%.9g,\"tokens_per_s\":%.6g", m->step,
            m->epoch, m->loss, m->lr, m->grad_norm, m->tokens_per_s);
    row_add(&c, "%ld,%.4g,%.9g,%.9g,%.9g,%.6g", m->step, m->epoch, m->loss, m->lr, m->grad_norm, m->tokens_per_s);
    if (l->dpo) {
        row_add(&j,
                ",\"rewards/chosen\":%.9g,\"rewards/rejected\":%.9g,\"rewards/accuracies\":%.9g,\"rewards/margins\":%.9g,"
                "\"logps/chosen\":%.9g,\"logps/rejected\":%.9g",
                m->rewards_chosen, m->rewards_rejected, m->rewards_accuracies, m->rewards_margins, m->logps_chosen, m->logps_rejected);
        row_add(&c, ",%.9g,%.9g,%.9g,%.9g,%.9g,%.9g", m->rewards_chosen, m->rewards_rejected, m->rewards_accuracies,
                m->rewards_margins, m->logps_chosen, m->logps_rejected);
    }
    row_add(&j, ",\"tokens\":%ld,\"elapsed_s\":%.3f,\"peak_mem_mib\":%.1f}\n", m->tokens, m->elapsed_s, m->peak_mem_mib);
    row_add(&c, ",%ld,%.3f,%.1f\n", m->tokens, m->elapsed_s, m->peak_mem_mib);
    PT_TRY(append_row(l->jsonl, l->jsonl_path, &j));
    return append_row(l->csv, l->csv_path, &c);
}

void pt_metrics_close(pt_metrics_log *l) {
    if (l->jsonl) fclose(l->jsonl);
    if (l->csv) fclose(l->csv);
    free(l->jsonl_path);
    free(l->csv_path);
    l->jsonl = l->csv = NULL;
    l->jsonl_path = l->csv_path = NULL;
}

/* ---- held-out evaluations ------------------------------------------------------------------ */

static pt_status remember(pt_metrics_eval_log *l, long step) {
    if (l->n_steps == l->cap_steps) {
        int cap = l->cap_steps ? 2 * l->cap_steps : 16;
        long *s = realloc(l->steps, sizeof *s * (size_t)cap);
        if (!s) return pt_error(PT_ERR_OOM, "out of memory");
        l->steps = s, l->cap_steps = cap;
    }
    l->steps[l->n_steps++] = step;
    return PT_OK;
}

pt_status pt_metrics_eval_open(pt_metrics_eval_log *l, const char *out_dir, bool resume) {
    memset(l, 0, sizeof *l);
    char *pj = pt_path_join(out_dir, "eval_metrics.jsonl"), *pc = pt_path_join(out_dir, "eval_metrics.csv");
    pt_status st = pj && pc ? PT_OK : pt_error(PT_ERR_OOM, "out of memory");
    if (!st && resume) {
        st = trim(pj, true, LONG_MAX, "");
        if (!st) st = trim(pc, false, LONG_MAX, csv_header_eval);
        char *text = NULL;
        size_t len;
        if (!st) st = pt_file_read_all(pj, &text, &len);
        for (char *line = text; !st && line && *line;) {
            char *nl = strchr(line, '\n');
            long s = row_step(line, true);
            if (s >= 0) st = remember(l, s);
            line = nl ? nl + 1 : NULL;
        }
        free(text);
    } else if (!st) {
        st = pt_file_write_atomic(pj, "", 0);
        if (!st) st = pt_file_write_atomic(pc, csv_header_eval, strlen(csv_header_eval));
    }
    if (!st) {
        l->jsonl = fopen(pj, "ab");
        l->csv = fopen(pc, "ab");
        if (!l->jsonl || !l->csv) st = pt_error(PT_ERR_IO, "%s: cannot open the evaluation logs for writing: %s", out_dir, strerror(errno));
    }
    l->jsonl_path = pj, l->csv_path = pc;
    if (st) pt_metrics_eval_close(l);
    return st;
}

bool pt_metrics_eval_has(const pt_metrics_eval_log *l, long step) {
    for (int i = 0; i < l->n_steps; i++)
        if (l->steps[i] == step) return true;
    return false;
}

/* The shortest text that reads back as exactly v: the rows can be compared with values
 * recomputed elsewhere to the last bit, and 0.84 still reads as 0.84. */
static void shortest(char *buf, size_t size, double v) {
    if (!isfinite(v)) { snprintf(buf, size, "null"); return; } /* JSON has no NaN */
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, size, "%.*g", prec, v);
        if (strtod(buf, NULL) == v) return;
    }
}

pt_status pt_metrics_eval_write(pt_metrics_eval_log *l, const pt_eval_metrics *m) {
    static const char *names[] = {"eval_loss", "eval_rewards/chosen", "eval_rewards/rejected", "eval_rewards/accuracies",
                                  "eval_rewards/margins", "eval_logps/chosen", "eval_logps/rejected"};
    const double v[] = {m->loss, m->rewards_chosen, m->rewards_rejected, m->rewards_accuracies, m->rewards_margins, m->logps_chosen,
                        m->logps_rejected};
    row j = {.n = 0}, c = {.n = 0};
    row_add(&j, "{\"step\":%ld", m->step);
    row_add(&c, "%ld", m->step);
    for (int i = 0; i < 7; i++) {
        char num[40];
        shortest(num, sizeof num, v[i]);
        row_add(&j, ",\"%s\":%s", names[i], num);
        row_add(&c, ",%s", num);
    }
    row_add(&j, ",\"eval_pairs\":%d}\n", m->pairs);
    row_add(&c, ",%d\n", m->pairs);
    PT_TRY(append_row(l->jsonl, l->jsonl_path, &j));
    PT_TRY(append_row(l->csv, l->csv_path, &c));
    return remember(l, m->step);
}

void pt_metrics_eval_close(pt_metrics_eval_log *l) {
    if (l->jsonl) fclose(l->jsonl);
    if (l->csv) fclose(l->csv);
    free(l->jsonl_path);
    free(l->csv_path);
    free(l->steps);
    memset(l, 0, sizeof *l);
}
