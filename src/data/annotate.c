/* annotate-eval: a judge's ideology scores against known labels — accuracy overall and per
 * class with 95% intervals, confusion matrix, ROC AUC with its interval, and a calibration
 * table (see pipeline.h). */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "data/jsonl.h"
#include "data/stage_impl.h"
#include "util/file.h"

static bool in_list(const char *label, const char *list) {
    if (!list) return false;
    size_t n = strlen(label);
    while (n && isspace((unsigned char)label[n - 1])) n--;
    while (n && isspace((unsigned char)*label)) label++, n--;
    if (!n) return false;
    for (const char *p = list; *p;) {
        size_t k = strcspn(p, ",");
        const char *a = p;
        size_t m = k;
        while (m && isspace((unsigned char)*a)) a++, m--;
        while (m && isspace((unsigned char)a[m - 1])) m--;
        if (m == n && !strncasecmp(a, label, n)) return true;
        p += k + (p[k] == ',');
    }
    return false;
}

int pt_label_class(const char *label, const char *left, const char *center, const char *right) {
    if (!label) return -1;
    if (in_list(label, left)) return PT_CLASS_LEFT;
    if (in_list(label, right)) return PT_CLASS_RIGHT;
    if (in_list(label, center)) return PT_CLASS_CENTER;
    return -1;
}

typedef struct {
    double s;
    int pos;
} scored;

static int by_score(const void *a, const void *b) {
    double x = ((const scored *)a)->s, y = ((const scored *)b)->s;
    return (x > y) - (x < y);
}

/* The Wilson score interval of k successes in n at 95% (z = 1.959964). */
static void wilson(long k, long n, double *lo, double *hi) {
    if (n <= 0) { *lo = *hi = NAN; return; }
    const double z = 1.959964, p = (double)k / n, z2n = z * z / n;
    double centre = (p + z2n / 2) / (1 + z2n), half = z * sqrt(p * (1 - p) / n + z2n / (4 * n)) / (1 + z2n);
    *lo = fmax(0, centre - half);
    *hi = fmin(1, centre + half);
}

/* Hanley and McNeil (1982): the standard error of an AUC from n_pos positives and n_neg negatives. */
static void auc_interval(double auc, int n_pos, int n_neg, double *lo, double *hi) {
    if (!isfinite(auc) || n_pos < 1 || n_neg < 1) { *lo = *hi = NAN; return; }
    double q1 = auc / (2 - auc), q2 = 2 * auc * auc / (1 + auc);
    double var = (auc * (1 - auc) + (n_pos - 1) * (q1 - auc * auc) + (n_neg - 1) * (q2 - auc * auc)) / ((double)n_pos * n_neg);
    double se = sqrt(fmax(var, 0));
    *lo = fmax(0, auc - 1.959964 * se);
    *hi = fmin(1, auc + 1.959964 * se);
}

void pt_agreement_compute(const double *score, const int *truth, int n, double center, double band, pt_agreement *a) {
    memset(a, 0, sizeof *a);
    a->center = center;
    a->band = band;
    double sums[3] = {0, 0, 0};
    scored *lr = malloc(sizeof *lr * (n > 0 ? n : 1));
    int n_lr = 0, n_pos = 0;
    for (int i = 0; i < n; i++) {
        if (truth[i] < 0) { a->n_unlabelled++; continue; }
        if (!isfinite(score[i])) { a->n_invalid++; continue; }
        int t = truth[i], p = score[i] < center - band ? PT_CLASS_LEFT : score[i] > center + band ? PT_CLASS_RIGHT : PT_CLASS_CENTER;
        a->confusion[t][p]++;
        a->n_class[t]++;
        int bin = (int)lround(score[i]);
        bin = bin < 1 ? 1 : bin > PT_IDEOLOGY_MAX ? PT_IDEOLOGY_MAX : bin;
        a->calibration[bin - 1][t]++;
        sums[t] += score[i];
        a->n++;
        if (lr && t != PT_CLASS_CENTER) {
            lr[n_lr++] = (scored){score[i], t == PT_CLASS_RIGHT};
            n_pos += t == PT_CLASS_RIGHT;
        }
    }
    long correct = a->confusion[0][0] + a->confusion[1][1] + a->confusion[2][2];
    a->accuracy = a->n ? (double)correct / a->n : NAN;
    wilson(correct, a->n, &a->accuracy_lo, &a->accuracy_hi);
    for (int t = 0; t < 3; t++) {
        a->mean_score[t] = a->n_class[t] ? sums[t] / a->n_class[t] : NAN;
        a->class_accuracy[t] = a->n_class[t] ? (double)a->confusion[t][t] / a->n_class[t] : NAN;
        wilson(a->confusion[t][t], a->n_class[t], &a->class_lo[t], &a->class_hi[t]);
    }
    /* Mann-Whitney: AUC = (sum of the positives' ranks - n_pos (n_pos + 1) / 2) / (n_pos n_neg),
     * tied scores sharing their average rank (so a tie counts one half) */
    int n_neg = n_lr - n_pos;
    a->roc_auc = NAN;
    if (lr && n_pos > 0 && n_neg > 0) {
        qsort(lr, (size_t)n_lr, sizeof *lr, by_score);
        double rank_sum = 0;
        for (int i = 0; i < n_lr;) {
            int k = i;
            while (k < n_lr && lr[k].s == lr[i].s) k++;
            double avg = (i + 1 + k) / 2.0; /* ranks i+1 .. k */
            for (int m = i; m < k; m++)
                if (lr[m].pos) rank_sum += avg;
            i = k;
        }
        a->roc_auc = (rank_sum - n_pos * (n_pos + 1) / 2.0) / ((double)n_pos * n_neg);
    }
    auc_interval(a->roc_auc, n_pos, n_neg, &a->auc_lo, &a->auc_hi);
    free(lr);
}

static json_t *num_or_null(double v) { return isfinite(v) ? json_real(round(v * 1e6) / 1e6) : json_null(); }

json_t *pt_agreement_json(const pt_agreement *a) {
    static const char *names[3] = {"left", "center", "right"};
    json_t *conf = json_object(), *cls = json_object(), *mean = json_object();
    for (int t = 0; t < 3; t++) {
        json_t *row = json_object();
        for (int p = 0; p < 3; p++) json_object_set_new(row, names[p], json_integer(a->confusion[t][p]));
        json_object_set_new(conf, names[t], row);
        json_object_set_new(cls, names[t], json_integer(a->n_class[t]));
        json_object_set_new(mean, names[t], num_or_null(a->mean_score[t]));
    }
    json_t *per = json_object();
    for (int t = 0; t < 3; t++)
        json_object_set_new(per, names[t], json_pack("{s:o,s:[o,o]}", "accuracy", num_or_null(a->class_accuracy[t]), "interval",
                                                     num_or_null(a->class_lo[t]), num_or_null(a->class_hi[t])));
    /* calibration: per score level, the records of each class and the share labelled right among
     * those labelled left or right, beside what the score would mean as a probability */
    json_t *cal = json_array();
    for (int b = 0; b < PT_IDEOLOGY_MAX; b++) {
        long l = a->calibration[b][PT_CLASS_LEFT], c = a->calibration[b][PT_CLASS_CENTER], r = a->calibration[b][PT_CLASS_RIGHT];
        if (l + c + r == 0) continue;
        double lo, hi;
        wilson(r, l + r, &lo, &hi);
        json_array_append_new(cal, json_pack("{s:i,s:I,s:I,s:I,s:o,s:[o,o],s:o}", "score", b + 1, "left", (json_int_t)l, "center", (json_int_t)c, "right",
                                             (json_int_t)r, "share_right", l + r ? num_or_null((double)r / (l + r)) : json_null(),
                                             "share_right_interval", num_or_null(lo), num_or_null(hi), "score_as_probability",
                                             num_or_null((double)b / (PT_IDEOLOGY_MAX - 1))));
    }
    return json_pack("{s:i,s:i,s:i,s:o,s:[o,o],s:o,s:[o,o],s:o,s:o,s:o,s:o,s:o,s:{s:f,s:f,s:s},s:s}", "n", a->n, "unlabelled", a->n_unlabelled, "invalid",
                     a->n_invalid, "accuracy", num_or_null(a->accuracy), "accuracy_interval", num_or_null(a->accuracy_lo), num_or_null(a->accuracy_hi),
                     "roc_auc", num_or_null(a->roc_auc), "roc_auc_interval", num_or_null(a->auc_lo), num_or_null(a->auc_hi), "class_counts", cls,
                     "mean_score", mean, "per_class", per, "calibration", cal, "confusion", conf, "prediction", "center", a->center, "band", a->band,
                     "rows", "true class; columns: predicted class", "intervals",
                     "95%: Wilson score for accuracies and shares, Hanley-McNeil for the ROC AUC");
}

/* ---- scoring with the judge ---------------------------------------------------------------- */

typedef struct {
    const pt_annotate_opts *o;
    const char *label;
} annotate_ctx;

static const char *label_of(const pt_annotate_opts *o, const pt_record *r, char *buf, size_t n) {
    json_t *v = pt_record_get(r->fields, o->label_field);
    if (json_is_string(v)) return json_string_value(v);
    if (json_is_integer(v)) { snprintf(buf, n, "%lld", (long long)json_integer_value(v)); return buf; }
    if (json_is_boolean(v)) return json_is_true(v) ? "true" : "false";
    return NULL;
}

static pt_status annotate_window(void *vctx, pt_judge *j, const pt_record *const *recs, int n, pt_stage_out *outs) {
    annotate_ctx *c = vctx;
    const int per = c->o->swap ? 2 : 1; /* the ideology, and with the swap check the mirrored one */
    pt_stage_batch b;
    pt_status st = pt_stage_batch_init(&b, per * n);
    pt_judge_req *reqs = b.reqs;
    pt_judge_reply *rep = b.rep;
    char **texts = b.texts, **whats = b.whats;
    const char *names[] = {"text"};
    for (int i = 0; i < n && !st; i++) {
        const char *vals[] = {recs[i]->text};
        for (int q = 0; q < per && !st; q++) {
            int k = per * i + q;
            st = pt_prompt_fill(c->o->prompts->text[q ? PT_PROMPT_IDEOLOGY_MIRRORED : PT_PROMPT_IDEOLOGY], q ? "select_ideology_mirrored" : "select_ideology",
                                names, vals, 1, &texts[k]);
            if (!st && asprintf(&whats[k], "%s:%d (id %s) %s", c->label, recs[i]->line, recs[i]->id, q ? "ideology-mirrored" : "ideology") < 0)
                whats[k] = NULL;
            reqs[k] = (pt_judge_req){.prompt = texts[k], .labels = pt_scale_labels, .n_labels = PT_IDEOLOGY_MAX,
                                     .seed = pt_stage_seed(recs[i]->id, q ? "ideology-mirrored" : "ideology"), .what = whats[k]};
        }
    }
    if (!st) st = pt_judge_run(j, per * n, reqs, rep);
    for (int i = 0; i < n && !st; i++) {
        const pt_record *r = recs[i];
        pt_judge_reply *ri = &rep[per * i];
        double v = pt_stage_label_value(ri, PT_IDEOLOGY_MAX);
        pt_swap_reading sw = {0};
        if (c->o->swap) {
            sw = pt_swap_combine(v, pt_stage_label_value(&rep[per * i + 1], PT_IDEOLOGY_MAX), PT_IDEOLOGY_MAX);
            v = sw.disagree && c->o->swap == PT_SWAP_DROP ? NAN : sw.value;
            outs[i].swap = isfinite(sw.value) ? 1 + sw.disagree : 0;
        }
        char buf[32];
        const char *lab = label_of(c->o, r, buf, sizeof buf);
        int cls = pt_label_class(lab, c->o->left_labels, c->o->center_labels, c->o->right_labels);
        static const char *cn[3] = {"left", "center", "right"};
        json_t *o = json_pack("{s:s,s:i,s:o,s:o,s:o,s:o}", "id", r->id, "line", r->line, "label", lab ? json_string(lab) : json_null(), "class",
                              cls >= 0 ? json_string(cn[cls]) : json_null(), "ideology", pt_stage_real(v), "ideology_label",
                              ri->label >= 0 ? json_integer(ri->label + 1) : json_null());
        if (ri->probs) json_object_set_new(o, "ideology_probs", pt_stage_probs_json(ri, PT_IDEOLOGY_MAX));
        if (c->o->swap) json_object_set_new(o, "swap", pt_swap_json(&sw));
        const char *decision = "scored";
        if (c->o->swap && sw.disagree && c->o->swap == PT_SWAP_DROP) {
            decision = "swap-disagree";
            outs[i].outcome = OUT_DROPPED;
        } else if (isnan(v)) {
            char where[256];
            pt_stage_where(where, sizeof where, c->label, r);
            const pt_judge_reply *bad = isnan(pt_stage_label_value(ri, PT_IDEOLOGY_MAX)) ? ri : &rep[per * i + 1];
            outs[i].note = pt_stage_invalid_note(where, "ideology", "a score from 1 to 9", bad->text);
            outs[i].outcome = OUT_INVALID;
            decision = "invalid";
        } else
            outs[i].outcome = OUT_KEPT;
        json_object_set_new(o, "decision", json_string(decision));
        outs[i].rec = o;
    }
    pt_stage_batch_free(&b);
    return st;
}

pt_status pt_annotate_run(const pt_recordset *in, pt_judge *j, const pt_annotate_opts *o, const pt_stage_io *io, const pt_stage_hooks *h,
                          pt_stage_summary *sum, pt_agreement *a) {
    memset(sum, 0, sizeof *sum);
    if (!o->label_field) return pt_error(PT_ERR_ARG, "no label field given");
    double *score = malloc(sizeof(double) * (in->n > 0 ? in->n : 1));
    int *truth = malloc(sizeof(int) * (in->n > 0 ? in->n : 1));
    if (!score || !truth) {
        free(score);
        free(truth);
        return pt_error(PT_ERR_OOM, "out of memory");
    }
    pt_status st = PT_OK;
    char buf[32];
    for (int i = 0; i < in->n; i++) {
        truth[i] = pt_label_class(label_of(o, &in->rec[i], buf, sizeof buf), o->left_labels, o->center_labels, o->right_labels);
        score[i] = NAN;
    }
    if (o->score_field) {
        /* scores already in the records (e.g. select's output): no judge */
        sum->in = in->n_read;
        sum->bad = in->n_bad;
        sum->dup = in->n_dup;
        for (int i = 0; i < in->n; i++) {
            json_t *v = pt_record_get(in->rec[i].fields, o->score_field);
            if (json_is_number(v)) score[i] = json_number_value(v);
            sum->wanted++;
            sum->done++;
            if (isfinite(score[i])) sum->kept++;
            else sum->invalid++;
        }
        if (h && h->note)
            for (int i = 0; i < in->n_issues; i++) h->note(h->user, in->issues[i]);
    } else {
        if (!io || !io->out) st = pt_error(PT_ERR_ARG, "an output file is needed to score with the judge");
        annotate_ctx c = {o, in->label ? in->label : "input"};
        pt_stage_def d = {.key = "id", .fn = annotate_window, .ctx = &c};
        if (!st) st = pt_stage_run(&d, in, j, io, h, sum);
        /* read the scores back: this run's and an earlier one's alike */
        json_t *by_id = NULL;
        if (!st) st = pt_jsonl_index(io->out, "id", &by_id);
        for (int i = 0; i < in->n && !st; i++) {
            json_t *v = json_object_get(json_object_get(by_id, in->rec[i].id), "ideology");
            if (json_is_number(v)) score[i] = json_number_value(v);
        }
        json_decref(by_id);
    }
    if (!st) pt_agreement_compute(score, truth, in->n, PT_IDEOLOGY_CENTER, o->band, a);
    free(score);
    free(truth);
    return st;
}
