/* Writing the per-step metrics logs (JSONL and CSV), and trimming them on resume. */
#include "train/metrics.h"

#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "util/file.h"

static const char *csv_header_dpo =
    "step,epoch,loss,lr,grad_norm,tokens_per_s,rewards/chosen,rewards/rejected,rewards/accuracies,rewards/margins,"
    "logps/chosen,logps/rejected,tokens,elapsed_s,peak_mem_mib\n";
static const char *csv_header_sft = "step,epoch,loss,lr,grad_norm,tokens_per_s,tokens,elapsed_s,peak_mem_mib\n";

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
        if (!l->jsonl || !l->csv) st = pt_error(PT_ERR_IO, "%s: cannot open the metrics logs for writing", out_dir);
    }
    free(pj), free(pc);
    if (st) pt_metrics_close(l);
    return st;
}

pt_status pt_metrics_write(pt_metrics_log *l, const pt_train_metrics *m) {
    fprintf(l->jsonl, "{\"step\":%ld,\"epoch\":%.4g,\"loss\":%.9g,\"lr\":%.9g,\"grad_norm\":%.9g,\"tokens_per_s\":%.6g", m->step,
            m->epoch, m->loss, m->lr, m->grad_norm, m->tokens_per_s);
    fprintf(l->csv, "%ld,%.4g,%.9g,%.9g,%.9g,%.6g", m->step, m->epoch, m->loss, m->lr, m->grad_norm, m->tokens_per_s);
    if (l->dpo) {
        fprintf(l->jsonl,
                ",\"rewards/chosen\":%.9g,\"rewards/rejected\":%.9g,\"rewards/accuracies\":%.9g,\"rewards/margins\":%.9g,"
                "\"logps/chosen\":%.9g,\"logps/rejected\":%.9g",
                m->rewards_chosen, m->rewards_rejected, m->rewards_accuracies, m->rewards_margins, m->logps_chosen, m->logps_rejected);
        fprintf(l->csv, ",%.9g,%.9g,%.9g,%.9g,%.9g,%.9g", m->rewards_chosen, m->rewards_rejected, m->rewards_accuracies,
                m->rewards_margins, m->logps_chosen, m->logps_rejected);
    }
    fprintf(l->jsonl, ",\"tokens\":%ld,\"elapsed_s\":%.3f,\"peak_mem_mib\":%.1f}\n", m->tokens, m->elapsed_s, m->peak_mem_mib);
    fprintf(l->csv, ",%ld,%.3f,%.1f\n", m->tokens, m->elapsed_s, m->peak_mem_mib);
    if (fflush(l->jsonl) || fflush(l->csv)) return pt_error(PT_ERR_IO, "writing the metrics logs failed");
    return PT_OK;
}

void pt_metrics_close(pt_metrics_log *l) {
    if (l->jsonl) fclose(l->jsonl);
    if (l->csv) fclose(l->csv);
    l->jsonl = l->csv = NULL;
}
