/* `politune report`: one self-contained HTML page (inline CSS and SVG, no scripts, no
 * external files) comparing compass result directories. A column is the last evaluation of
 * each model/adapter label in each directory; a label with several evaluations (a training
 * run) is also compared first against last. Every column is compared with the first column
 * measured alike (the base of its answer mode): shift with its interval, permutation p-value,
 * changed answers, and the items that contribute most (compare.h), on the answers and on the
 * probability-weighted answers; a model measured in both answer modes gets the forced (log-prob)
 * against free (generate) agreement. */
#include "eval/report.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/compare.h"
#include "eval/svg.h"

typedef struct {
    int doc;
    json_t *first, *last; /* evaluations */
    const char *label;
    int n_evals;
} column;

/* What every section of the page reads. */
typedef struct {
    FILE *f;
    json_t *const *docs;
    const char *const *names;
    int n_docs;
    json_t *items, *answers, *axes; /* of the first document */
    int n_ans;
    char ab[64][16];                /* abbreviated answer labels */
    column *cols;
    int nc;
    int resamples;
    uint64_t seed;
} report;

static double jnum(json_t *v) { return json_is_number(v) ? json_number_value(v) : NAN; }

static void esc(FILE *f, const char *s) { pt_xml_escape(f, s ? s : ""); }

/* "Strongly disagree" -> "SD" */
static void abbrev(char *out, size_t n, const char *label) {
    size_t k = 0;
    int start = 1;
    for (const char *p = label; *p && k + 1 < n; p++) {
        if (start && ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9')))
            out[k++] = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
        start = *p == ' ' || *p == '/' || *p == '-';
    }
    out[k] = 0;
}

static int answer_of(json_t *eval, size_t item) {
    json_t *a = json_object_get(json_array_get(json_object_get(eval, "items"), item), "answer");
    return json_is_integer(a) ? (int)json_integer_value(a) : -1;
}

/* Background colour for answer a of n: the low end red, the high end blue. */
static void answer_style(FILE *f, int a, int n) {
    if (a < 0) { fputs("background:#eeeeee;color:#888888", f); return; }
    double t = n > 1 ? (double)a / (n - 1) : 0.5; /* 0..1 */
    int r = (int)(230 - 120 * t), g = (int)(150 + 40 * (1 - fabs(2 * t - 1))), b = (int)(110 + 120 * t);
    fprintf(f, "background:rgb(%d,%d,%d)", r, g, b);
}

static void fmt_num(FILE *f, double v, int dec) {
    if (isnan(v)) fputs("&#8212;", f);
    else fprintf(f, "%.*f", dec, v == 0 ? 0.0 : v);
}

static void answer_cell(FILE *f, json_t *eval, size_t item, char ab[][16], int n_ans, int show_agree) {
    int a = answer_of(eval, item);
    json_t *it = json_array_get(json_object_get(eval, "items"), item);
    fputs("<td class=\"ans\" style=\"", f);
    answer_style(f, a, n_ans);
    fputs("\">", f);
    if (a >= 0 && a < n_ans) esc(f, ab[a]);
    else fputs("&#8212;", f);
    double ag = jnum(json_object_get(it, "agreement"));
    if (show_agree && a >= 0 && !isnan(ag) && ag < 1) fprintf(f, " <small>%.0f%%</small>", 100 * ag);
    if (json_is_true(json_object_get(it, "flip"))) fputs(" <span title=\"flips between templates\">&#8646;</span>", f);
    fputs("</td>", f);
}

/* The columns: the last evaluation of each label in each document. */
static pt_status collect_columns(report *R) {
    for (int d = 0; d < R->n_docs; d++) {
        json_t *evs = json_object_get(R->docs[d], "evaluations");
        for (size_t i = 0; i < json_array_size(evs); i++) {
            json_t *e = json_array_get(evs, i);
            const char *label = json_string_value(json_object_get(e, "label"));
            if (!label) label = R->names[d];
            int k = -1;
            for (int c = 0; c < R->nc; c++)
                if (R->cols[c].doc == d && !strcmp(R->cols[c].label, label)) k = c;
            if (k < 0) {
                column *n2 = realloc(R->cols, sizeof *n2 * (size_t)(R->nc + 1));
                if (!n2) return pt_error(PT_ERR_OOM, "out of memory");
                R->cols = n2;
                R->cols[R->nc] = (column){d, e, e, label, 0};
                k = R->nc++;
            }
            R->cols[k].last = e;
            R->cols[k].n_evals++;
        }
    }
    return PT_OK;
}

static void write_head(report *R) {
    FILE *f = R->f;
    fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>politune compass report</title>\n<style>\n"
          "body{font-family:Helvetica,Arial,sans-serif;margin:24px;color:#222;max-width:1400px}\n"
          "h1{font-size:22px}h2{font-size:18px;margin-top:28px;border-bottom:1px solid #ccc}\n"
          "table{border-collapse:collapse;font-size:13px;margin:8px 0}\n"
          "th,td{border:1px solid #ccc;padding:3px 6px;vertical-align:top}th{background:#f2f2f2;text-align:left}\n"
          "td.num{text-align:right;font-variant-numeric:tabular-nums}td.ans{text-align:center;white-space:nowrap}\n"
          "td.stmt{max-width:520px}.muted{color:#777}pre{white-space:pre-wrap;margin:0;font-family:inherit}\n"
          "</style>\n</head>\n<body>\n<h1>politune compass report</h1>\n<p class=\"muted\">", f);
    esc(f, json_string_value(json_object_get(R->docs[0], "instrument")));
    fprintf(f, " &#8212; %zu items, answers: ", json_array_size(R->items));
    for (int k = 0; k < R->n_ans; k++) {
        if (k) fputs(", ", f);
        fprintf(f, "%d = ", k);
        esc(f, json_string_value(json_array_get(R->answers, (size_t)k)));
        fputs(" (", f);
        esc(f, R->ab[k]);
        fputs(")", f);
    }
    fputs(". Runs: ", f);
    for (int d = 0; d < R->n_docs; d++) {
        if (d) fputs(", ", f);
        esc(f, R->names[d]);
    }
    fputs(".</p>\n", f);
}

static void write_chart(report *R, const char *svg, const char *zoomed) {
    fputs("<h2>Compass</h2>\n", R->f);
    fputs(svg, R->f);
    if (zoomed) fputs(zoomed, R->f);
    fputs("<p class=\"muted\">Points are the mean position over prompt templates and option orders; crosses show its 95% bootstrap interval "
          "(the answers under the templates and orders resampled within each proposition; see docs/compass.md), bars one standard deviation "
          "where no interval was recorded. Lines connect evaluations of one model or adapter in order (training steps).</p>\n", R->f);
}

static void position_cells(FILE *f, json_t *e, json_t *ax) {
    const char *an = json_string_value(json_object_get(ax, "name"));
    int dec = (int)json_integer_value(json_object_get(ax, "decimals"));
    json_t *p = json_object_get(json_object_get(e, "position"), an ? an : "");
    json_t *ci = json_object_get(p, "interval");
    fputs("<td class=\"num\">", f);
    fmt_num(f, jnum(json_object_get(p, "mean")), dec);
    fputs("</td><td class=\"num\">", f);
    if (json_array_size(ci) == 2) {
        fputs("[", f);
        fmt_num(f, jnum(json_array_get(ci, 0)), dec);
        fputs(", ", f);
        fmt_num(f, jnum(json_array_get(ci, 1)), dec);
        fputs("]", f);
    } else fputs("&#8212;", f);
    fputs("</td><td class=\"num\">", f);
    fmt_num(f, jnum(json_object_get(p, "sd")), dec);
    fputs("</td><td class=\"num\">", f);
    fmt_num(f, jnum(json_object_get(p, "min")), dec);
    fputs("..", f);
    fmt_num(f, jnum(json_object_get(p, "max")), dec);
    fputs("</td><td class=\"num\">", f);
    fmt_num(f, jnum(json_object_get(json_object_get(e, "consensus"), an ? an : "")), dec);
    fputs("</td><td class=\"num\">", f);
    fmt_num(f, jnum(json_object_get(json_object_get(e, "expected"), an ? an : "")), dec);
    fputs("</td>", f);
}

/* One row per evaluation. */
static void write_positions(report *R) {
    FILE *f = R->f;
    fputs("<h2>Positions</h2>\n<table>\n<tr><th>run</th><th>label</th><th>step</th><th>mode</th>", f);
    for (size_t x = 0; x < json_array_size(R->axes); x++) {
        const char *an = json_string_value(json_object_get(json_array_get(R->axes, x), "name"));
        static const char *const what[] = {"mean", "95% interval", "sd", "min..max", "consensus", "expected"};
        for (int k = 0; k < 6; k++) {
            fputs("<th>", f);
            esc(f, an);
            fprintf(f, " %s</th>", what[k]);
        }
    }
    fputs("<th>answered</th><th>invalid rate</th><th>refusal rate</th><th>flipping items</th></tr>\n", f);
    const char *resampling = NULL;
    for (int d = 0; d < R->n_docs; d++) {
        json_t *evs = json_object_get(R->docs[d], "evaluations");
        for (size_t i = 0; i < json_array_size(evs); i++) {
            json_t *e = json_array_get(evs, i);
            fputs("<tr><td>", f);
            esc(f, R->names[d]);
            fputs("</td><td>", f);
            esc(f, json_string_value(json_object_get(e, "label")));
            fprintf(f, "</td><td class=\"num\">%lld</td><td>", (long long)json_integer_value(json_object_get(e, "step")));
            esc(f, json_string_value(json_object_get(e, "mode")));
            fputs("</td>", f);
            for (size_t x = 0; x < json_array_size(R->axes); x++) position_cells(f, e, json_array_get(R->axes, x));
            int flips = 0;
            json_t *its = json_object_get(e, "items");
            for (size_t k = 0; k < json_array_size(its); k++) flips += json_is_true(json_object_get(json_array_get(its, k), "flip"));
            fprintf(f, "<td class=\"num\">%lld/%zu</td><td class=\"num\">%.1f%%</td><td class=\"num\">%.1f%%</td><td class=\"num\">%d</td></tr>\n",
                    (long long)json_integer_value(json_object_get(json_object_get(e, "consensus"), "answered")), json_array_size(R->items),
                    100 * jnum(json_object_get(e, "invalid_rate")), 100 * jnum(json_object_get(e, "refusal_rate")), flips);
            if (json_object_get(e, "interval")) resampling = "x";
        }
    }
    fputs("</table>\n", f);
    if (resampling) {
        json_t *iv = json_object_get(R->cols[0].last, "interval");
        fprintf(f, "<p class=\"muted\">Intervals: %lld bootstrap resamples, seed %lld (compass.json records each run's).</p>\n",
                (long long)json_integer_value(json_object_get(iv, "resamples")), (long long)json_integer_value(json_object_get(iv, "seed")));
    }
}

static const char *item_text(report *R, size_t i, const char *key) {
    const char *s = json_string_value(json_object_get(json_array_get(R->items, i), key));
    return s ? s : "";
}

/* The largest contributions to one axis's shift, with the answers side by side. */
static void write_attribution(report *R, const pt_compare *c, int x, const column *a, const column *b, int top) {
    FILE *f = R->f;
    const double *at = &c->attribution[(size_t)x * c->n_items];
    int *order = malloc(sizeof(int) * (size_t)c->n_items);
    if (!order) return;
    for (int i = 0; i < c->n_items; i++) order[i] = i;
    for (int i = 1; i < c->n_items; i++) /* by |contribution|, largest first */
        for (int k = i; k > 0 && fabs(at[order[k]]) > fabs(at[order[k - 1]]); k--) { int t = order[k]; order[k] = order[k - 1]; order[k - 1] = t; }
    double listed = 0;
    int n_listed = 0;
    for (int k = 0; k < top && k < c->n_items && at[order[k]] != 0; k++) n_listed++;
    if (n_listed == 0) { free(order); return; }
    fprintf(f, "<table class=\"attribution\" data-axis=\"%s\">\n<tr><th>item</th><th>statement</th><th>", c->axes[x].name);
    esc(f, a->label);
    fputs("</th><th>", f);
    esc(f, b->label);
    fputs("</th><th>contribution to the ", f);
    esc(f, c->axes[x].name);
    fputs(" shift</th></tr>\n", f);
    for (int k = 0; k < n_listed; k++) {
        int i = order[k];
        listed += at[i];
        fputs("<tr><td>", f);
        esc(f, item_text(R, (size_t)i, "id"));
        fputs("</td><td class=\"stmt\">", f);
        esc(f, item_text(R, (size_t)i, "statement"));
        fputs("</td>", f);
        answer_cell(f, a->last, (size_t)i, R->ab, R->n_ans, 1);
        answer_cell(f, b->last, (size_t)i, R->ab, R->n_ans, 1);
        fprintf(f, "<td class=\"num\">%+.3f</td></tr>\n", at[i]);
    }
    fprintf(f, "</table>\n<p class=\"muted\">%s %d item%s add%s %+.3f of the %+.3f shift; all items together add up to it.</p>\n", n_listed == 1 ? "This" : "These", n_listed, n_listed == 1 ? "" : "s", n_listed == 1 ? "s" : "", listed,
            c->axes[x].shift.estimate);
    free(order);
}

/* Whether two evaluations were measured alike (answer mode, option scoring, templates), the
 * precondition of compare.h. */
static bool same_setup(json_t *a, json_t *b) {
    static const char *const keys[] = {"mode", "option_scoring", "templates"};
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
        json_t *x = json_object_get(a, keys[k]), *y = json_object_get(b, keys[k]);
        if ((x || y) && !json_equal(x, y)) return false;
    }
    return true;
}

/* The column that column c is compared with: the first column before it measured alike, so a
 * generate-mode adapter is set against the generate-mode base; -1 when c is the first of its
 * kind. */
static int base_of(const report *R, int c) {
    for (int b = 0; b < c; b++)
        if (same_setup(R->cols[b].last, R->cols[c].last)) return b;
    return -1;
}

/* One shift table: every column against its base on `basis`; cmp[c] receives the comparison
 * (NULL where there is none). */
static void write_shift_table(report *R, pt_compare_basis basis, pt_compare **cmp) {
    FILE *f = R->f;
    fputs("<table class=\"shifts\"><tr><th>run</th><th>against</th>", f);
    for (size_t x = 0; x < json_array_size(R->axes); x++) {
        const char *an = json_string_value(json_object_get(json_array_get(R->axes, x), "name"));
        fputs("<th>", f); esc(f, an); fputs(" shift</th><th>", f); esc(f, an); fputs(" 95% interval</th><th>", f); esc(f, an); fputs(" p</th>", f);
    }
    fputs(basis == PT_COMPARE_ANSWERS ? "<th>changed answers</th></tr>\n" : "</tr>\n", f);
    for (int c = 1; c < R->nc; c++) {
        int b = base_of(R, c);
        if (b < 0) continue;
        const column *col = &R->cols[c], *base = &R->cols[b];
        fputs("<tr><td>", f);
        esc(f, col->label);
        if (R->n_docs > 1) { fputs(" <span class=\"muted\">(", f); esc(f, R->names[col->doc]); fputs(")</span>", f); }
        fputs("</td><td>", f);
        esc(f, base->label);
        fputs("</td>", f);
        pt_status st = pt_compare_evals(R->docs[base->doc], base->last, R->names[base->doc], R->docs[col->doc], col->last, R->names[col->doc],
                                        R->resamples, R->seed, basis, &cmp[c]);
        if (st) {
            fprintf(f, "<td colspan=\"%zu\" class=\"muted\">not compared: ", 3 * json_array_size(R->axes) + (basis == PT_COMPARE_ANSWERS));
            esc(f, pt_errmsg());
            fputs("</td></tr>\n", f);
            continue;
        }
        for (int x = 0; x < cmp[c]->n_axes; x++) {
            const pt_compare_axis *a = &cmp[c]->axes[x];
            fprintf(f, "<td class=\"num\">%+.*f</td><td class=\"num\">", a->decimals, a->shift.estimate);
            if (isfinite(a->shift.lo)) fprintf(f, "[%+.*f, %+.*f]", a->decimals, a->shift.lo, a->decimals, a->shift.hi);
            else fputs("&#8212;", f);
            fprintf(f, "</td><td class=\"num\">%.4f%s</td>", a->p, a->exact ? " <small>exact</small>" : "");
        }
        if (basis == PT_COMPARE_ANSWERS) fprintf(f, "<td class=\"num\">%d of %d</td>", cmp[c]->changed, cmp[c]->answered_both);
        fputs("</tr>\n", f);
    }
    fputs("</table>\n", f);
}

/* The attribution lists of one basis' comparisons; returns how many were written. */
static int write_attributions(report *R, pt_compare **cmp, const char *what) {
    int any = 0;
    for (int c = 1; c < R->nc; c++) {
        if (!cmp[c]) continue;
        for (int x = 0; x < cmp[c]->n_axes; x++) {
            if (cmp[c]->axes[x].shift.estimate == 0) continue;
            fputs("<h3>", R->f);
            esc(R->f, R->cols[base_of(R, c)].label);
            fputs(" &#8594; ", R->f);
            esc(R->f, R->cols[c].label);
            fputs(": ", R->f);
            esc(R->f, cmp[c]->axes[x].name);
            fprintf(R->f, " <span class=\"muted\">(%s)</span></h3>\n", what);
            write_attribution(R, cmp[c], x, &R->cols[base_of(R, c)], &R->cols[c], 10);
            any = 1;
        }
    }
    return any;
}

/* Every column against the first column measured alike: the shift tables (answers, then
 * probability-weighted), then the attribution lists. */
static void write_shifts(report *R) {
    FILE *f = R->f;
    int n_compared = 0;
    for (int c = 1; c < R->nc; c++) n_compared += base_of(R, c) >= 0;
    if (n_compared == 0) return;
    fprintf(f, "<h2>Shifts against the base</h2>\n<p class=\"muted\">Each run against the first run measured alike (answer mode, option "
               "scoring, templates; the last evaluation of each): the shift with its 95%% bootstrap interval (paired over templates and "
               "option orders), the p-value of a paired sign-flip permutation test over propositions, and the items whose consensus "
               "answer changed. %d resamples, seed %llu.</p>\n", R->resamples, (unsigned long long)R->seed);
    pt_compare **cmp = calloc((size_t)R->nc, sizeof *cmp), **cmp_ex = calloc((size_t)R->nc, sizeof *cmp_ex);
    if (!cmp || !cmp_ex) { free(cmp); free(cmp_ex); return; }
    write_shift_table(R, PT_COMPARE_ANSWERS, cmp);
    fputs("<h3>Probability-weighted positions</h3>\n<p class=\"muted\">The same comparisons, each answer counted by its probability "
          "(sum over options of p &#215; weight; <code>politune compare --expected</code>): these move when the model's probabilities "
          "move under an unchanged most likely answer.</p>\n", f);
    write_shift_table(R, PT_COMPARE_EXPECTED, cmp_ex);
    fputs("<h2>What moved each run</h2>\n<p class=\"muted\">The propositions that contribute most to each shift: an item's contribution is "
          "its change in the share of templates giving each answer (or in each answer's probability, for the probability-weighted "
          "positions), times that answer's scoring weight (divided by the axis divisor); the contributions of all items sum to the "
          "shift.</p>\n", f);
    int any = write_attributions(R, cmp, "answers");
    any |= write_attributions(R, cmp_ex, "probability-weighted");
    if (!any) fputs("<p class=\"muted\">No run's position differs from its base's.</p>\n", f);
    for (int c = 0; c < R->nc; c++) {
        pt_compare_free(cmp[c]);
        pt_compare_free(cmp_ex[c]);
    }
    free(cmp);
    free(cmp_ex);
}

/* Röttger's check: for a label measured in both modes (in any of the documents), how often
 * the forced-choice (log-prob) consensus answer equals the free-text (generate) one. */
static void write_forced_free(report *R) {
    FILE *f = R->f;
    int header = 0;
    for (int d = 0; d < R->n_docs; d++) {
        json_t *evs = json_object_get(R->docs[d], "evaluations");
        for (size_t i = 0; i < json_array_size(evs); i++) {
            json_t *e = json_array_get(evs, i);
            const char *label = json_string_value(json_object_get(e, "label")), *mode = json_string_value(json_object_get(e, "mode"));
            if (!label || !mode || strcmp(mode, "logprob")) continue;
            /* the last generate-mode evaluation of the same label at the same step */
            json_t *gen = NULL;
            for (int d2 = 0; d2 < R->n_docs; d2++) {
                json_t *ev2 = json_object_get(R->docs[d2], "evaluations");
                for (size_t k = 0; k < json_array_size(ev2); k++) {
                    json_t *g = json_array_get(ev2, k);
                    const char *l2 = json_string_value(json_object_get(g, "label")), *m2 = json_string_value(json_object_get(g, "mode"));
                    if (l2 && m2 && !strcmp(l2, label) && !strcmp(m2, "generate") &&
                        json_integer_value(json_object_get(g, "step")) == json_integer_value(json_object_get(e, "step")))
                        gen = g;
                }
            }
            pt_forced_free ff;
            if (!gen || pt_forced_free_compare(R->docs[d], e, gen, &ff)) continue;
            if (!header) {
                fputs("<h2>Forced against free answers</h2>\n<p class=\"muted\">The same model asked for the answer's probability (log-prob mode, "
                      "forced choice) and asked to reply in free text parsed to an answer (generate mode, the paper's way); the consensus "
                      "answers over templates compared item by item (R&#246;ttger et al., 2024).</p>\n", f);
                header = 1;
            }
            fputs("<h3>", f);
            esc(f, label);
            fprintf(f, "</h3>\n<p class=\"forced-free\" data-agree=\"%d\" data-both=\"%d\">Agreement on %d of %d items answered in both modes "
                       "(%.0f%%).</p>\n", ff.agree, ff.both, ff.agree, ff.both, ff.both ? 100.0 * ff.agree / ff.both : 0.0);
            if (ff.agree < ff.both) {
                fputs("<table>\n<tr><th>item</th><th>statement</th><th>forced (log-prob)</th><th>free (generate)</th></tr>\n", f);
                for (int it = 0; it < ff.n_items; it++) {
                    if (ff.forced[it] < 0 || ff.free_[it] < 0 || ff.forced[it] == ff.free_[it]) continue;
                    fputs("<tr><td>", f);
                    esc(f, item_text(R, (size_t)it, "id"));
                    fputs("</td><td class=\"stmt\">", f);
                    esc(f, item_text(R, (size_t)it, "statement"));
                    fputs("</td>", f);
                    answer_cell(f, e, (size_t)it, R->ab, R->n_ans, 1);
                    answer_cell(f, gen, (size_t)it, R->ab, R->n_ans, 1);
                    fputs("</tr>\n", f);
                }
                fputs("</table>\n", f);
            }
            pt_forced_free_free(&ff);
        }
    }
}

/* Answers side by side. */
static void write_answers(report *R) {
    FILE *f = R->f;
    fputs("<h2>Answers</h2>\n<p class=\"muted\">Consensus answer over templates (the share of templates that agree when not all do; "
          "&#8646; marks items whose answer flips between agreeing and disagreeing across templates; &#8212; no valid answer).</p>\n"
          "<table>\n<tr><th>item</th><th>statement</th>", f);
    for (int c = 0; c < R->nc; c++) {
        fputs("<th>", f);
        esc(f, R->cols[c].label);
        if (R->n_docs > 1) { fputs("<br><span class=\"muted\">", f); esc(f, R->names[R->cols[c].doc]); fputs("</span>", f); }
        if (R->cols[c].n_evals > 1)
            fprintf(f, "<br><span class=\"muted\">step %lld</span>", (long long)json_integer_value(json_object_get(R->cols[c].last, "step")));
        fputs("</th>", f);
    }
    fputs("</tr>\n", f);
    for (size_t i = 0; i < json_array_size(R->items); i++) {
        fputs("<tr><td>", f);
        esc(f, item_text(R, i, "id"));
        fputs("</td><td class=\"stmt\">", f);
        esc(f, item_text(R, i, "statement"));
        fputs("</td>", f);
        for (int c = 0; c < R->nc; c++) answer_cell(f, R->cols[c].last, i, R->ab, R->n_ans, 1);
        fputs("</tr>\n", f);
    }
    fputs("</table>\n", f);
}

/* One row of "items that moved": the comparison's name, both answers, the change of the
 * expected answer. */
static void moved_row(report *R, size_t i, const column *from_col, const column *to_col, json_t *from, json_t *to, bool same_label) {
    FILE *f = R->f;
    fputs("<tr><td>", f);
    esc(f, item_text(R, i, "id"));
    fputs("</td><td class=\"stmt\">", f);
    esc(f, item_text(R, i, "statement"));
    fputs("</td><td>", f);
    if (!same_label) { esc(f, from_col->label); fputs(" &#8594; ", f); esc(f, to_col->label); }
    else {
        esc(f, to_col->label);
        fprintf(f, ": step %lld &#8594; %lld", (long long)json_integer_value(json_object_get(from, "step")), (long long)json_integer_value(json_object_get(to, "step")));
    }
    fputs("</td>", f);
    answer_cell(f, from, i, R->ab, R->n_ans, 0);
    answer_cell(f, to, i, R->ab, R->n_ans, 0);
    double ea = jnum(json_object_get(json_array_get(json_object_get(from, "items"), i), "expected"));
    double eb = jnum(json_object_get(json_array_get(json_object_get(to, "items"), i), "expected"));
    fputs("<td class=\"num\">", f);
    if (isnan(ea) || isnan(eb)) fputs("&#8212;", f);
    else fprintf(f, "%+.2f", eb - ea);
    fputs("</td></tr>\n", f);
}

static void write_moved(report *R) {
    FILE *f = R->f;
    fputs("<h2>Items that moved</h2>\n", f);
    int n_cmp = 0;
    for (int c = 0; c < R->nc; c++) n_cmp += (c > 0) + (R->cols[c].n_evals > 1);
    if (n_cmp == 0) { fputs("<p class=\"muted\">Only one evaluation: nothing to compare.</p>\n", f); return; }
    fputs("<table>\n<tr><th>item</th><th>statement</th><th>comparison</th><th>from</th><th>to</th><th>expected value change</th></tr>\n", f);
    int moved = 0;
    for (size_t i = 0; i < json_array_size(R->items); i++)
        for (int c = 0; c < R->nc; c++)
            for (int kind = 0; kind < 2; kind++) {
                json_t *from, *to;
                if (kind == 0) { if (c == 0) continue; from = R->cols[0].last; to = R->cols[c].last; }
                else { if (R->cols[c].n_evals < 2) continue; from = R->cols[c].first; to = R->cols[c].last; }
                if (answer_of(from, i) == answer_of(to, i)) continue;
                moved++;
                moved_row(R, i, kind == 0 ? &R->cols[0] : &R->cols[c], &R->cols[c], from, to, kind == 1);
            }
    fputs("</table>\n", f);
    fprintf(f, "<p class=\"muted\">%d changed answer%s.</p>\n", moved, moved == 1 ? "" : "s");
}

static void write_invalid(report *R) {
    FILE *f = R->f;
    fputs("<h2>Invalid answers by template</h2>\n<table>\n<tr><th>template</th>", f);
    for (int c = 0; c < R->nc; c++) { fputs("<th>", f); esc(f, R->cols[c].label); fputs("</th>", f); }
    fputs("</tr>\n", f);
    json_t *vars0 = json_object_get(R->cols[0].last, "variants");
    for (size_t v = 0; v < json_array_size(vars0); v++) {
        const char *vid = json_string_value(json_object_get(json_array_get(vars0, v), "id"));
        fputs("<tr><td>", f);
        esc(f, vid);
        fputs("</td>", f);
        for (int c = 0; c < R->nc; c++) {
            json_t *vars = json_object_get(R->cols[c].last, "variants"), *hit = NULL;
            for (size_t k = 0; k < json_array_size(vars); k++) {
                const char *id = json_string_value(json_object_get(json_array_get(vars, k), "id"));
                if (vid && id && !strcmp(vid, id)) hit = json_array_get(vars, k);
            }
            if (!hit) { fputs("<td class=\"muted\">&#8212;</td>", f); continue; }
            long long inv = json_integer_value(json_object_get(hit, "invalid")), ref = json_integer_value(json_object_get(hit, "refused"));
            fprintf(f, "<td class=\"num\">%lld invalid, %lld refused</td>", inv, ref);
        }
        fputs("</tr>\n", f);
    }
    fputs("</table>\n", f);
}

/* The entry with id `id` in an array of {id, ...}, or NULL. */
static json_t *find_by_id(json_t *arr, const char *id) {
    json_t *hit = NULL;
    for (size_t k = 0; id && k < json_array_size(arr); k++) {
        const char *x = json_string_value(json_object_get(json_array_get(arr, k), "id"));
        if (x && !strcmp(x, id)) hit = json_array_get(arr, k);
    }
    return hit;
}

static void write_open_prompts(report *R) {
    FILE *f = R->f;
    json_t *op0 = NULL;
    for (int c = 0; c < R->nc && !op0; c++)
        if (json_array_size(json_object_get(R->cols[c].last, "open_prompts"))) op0 = json_object_get(R->cols[c].last, "open_prompts");
    if (!op0) return;
    fputs("<h2>Open-ended prompts</h2>\n<table>\n<tr><th>prompt</th>", f);
    for (int c = 0; c < R->nc; c++) { fputs("<th>", f); esc(f, R->cols[c].label); fputs("</th>", f); }
    fputs("</tr>\n", f);
    for (size_t p = 0; p < json_array_size(op0); p++) {
        const char *pid = json_string_value(json_object_get(json_array_get(op0, p), "id"));
        fputs("<tr><td>", f);
        esc(f, json_string_value(json_object_get(json_array_get(op0, p), "prompt")));
        fputs("</td>", f);
        for (int c = 0; c < R->nc; c++) {
            json_t *hit = find_by_id(json_object_get(R->cols[c].last, "open_prompts"), pid);
            fputs("<td><pre>", f);
            if (hit) esc(f, json_string_value(json_object_get(hit, "response")));
            else fputs("&#8212;", f);
            fputs("</pre></td>", f);
        }
        fputs("</tr>\n", f);
    }
    fputs("</table>\n", f);
}

/* The judge's ideology ratings of the open answers (politune judge-answers). */
static void write_judged(report *R) {
    FILE *f = R->f;
    int any_judged = 0;
    for (int c = 0; c < R->nc; c++) any_judged |= json_object_get(R->cols[c].last, "open_judge") != NULL;
    if (!any_judged) return;
    fputs("<h2>Open answers judged for ideology</h2>\n<table>\n<tr><th>prompt</th>", f);
    for (int c = 0; c < R->nc; c++) { fputs("<th>", f); esc(f, R->cols[c].label); fputs("</th>", f); }
    fputs("</tr>\n<tr><td>mean</td>", f);
    for (int c = 0; c < R->nc; c++) {
        json_t *oj = json_object_get(R->cols[c].last, "open_judge");
        fputs("<td class=\"num\">", f);
        if (oj) {
            fmt_num(f, jnum(json_object_get(oj, "mean")), 2);
            fprintf(f, " (%lld judged, %lld invalid)", (long long)json_integer_value(json_object_get(oj, "n")),
                    (long long)json_integer_value(json_object_get(oj, "invalid")));
        } else fputs("&#8212;", f);
        fputs("</td>", f);
    }
    fputs("</tr>\n", f);
    json_t *bp0 = NULL;
    for (int c = 0; c < R->nc && !bp0; c++) bp0 = json_object_get(json_object_get(R->cols[c].last, "open_judge"), "by_prompt");
    for (size_t p = 0; p < json_array_size(bp0); p++) {
        const char *pid = json_string_value(json_object_get(json_array_get(bp0, p), "id"));
        fputs("<tr><td>", f);
        esc(f, json_string_value(json_object_get(json_array_get(bp0, p), "prompt")));
        fputs("</td>", f);
        for (int c = 0; c < R->nc; c++) {
            json_t *hit = find_by_id(json_object_get(json_object_get(R->cols[c].last, "open_judge"), "by_prompt"), pid);
            fputs("<td>", f);
            if (hit) {
                fmt_num(f, jnum(json_object_get(hit, "ideology")), 1);
                const char *why = json_string_value(json_object_get(hit, "rationale"));
                if (why && *why) { fputs("<br><span class=\"muted\">", f); esc(f, why); fputs("</span>", f); }
            } else fputs("&#8212;", f);
            fputs("</td>", f);
        }
        fputs("</tr>\n", f);
    }
    fputs("</table>\n", f);
}

/* Every document must hold the first one's items. */
static pt_status same_questionnaire(json_t *const *docs, const char *const *names, int n_docs) {
    json_t *items = json_object_get(docs[0], "items");
    for (int d = 1; d < n_docs; d++) {
        json_t *it = json_object_get(docs[d], "items");
        int same = json_array_size(it) == json_array_size(items);
        for (size_t i = 0; same && i < json_array_size(it); i++)
            same = json_equal(json_object_get(json_array_get(it, i), "id"), json_object_get(json_array_get(items, i), "id"));
        if (!same) return pt_error(PT_ERR_FORMAT, "report: %s and %s hold results for different questionnaires", names[0], names[d]);
    }
    return PT_OK;
}

pt_status pt_report_html(json_t *const *docs, const char *const *names, int n_docs, const pt_report_opts *o, char **html) {
    *html = NULL;
    if (n_docs < 1) return pt_error(PT_ERR_ARG, "report: no result directories");
    if (o && o->resamples < 1) return pt_error(PT_ERR_ARG, "report: the number of resamples must be at least 1, got %d", o->resamples);
    PT_TRY(same_questionnaire(docs, names, n_docs));
    report R;
    memset(&R, 0, sizeof R);
    R.docs = docs;
    R.names = names;
    R.n_docs = n_docs;
    R.items = json_object_get(docs[0], "items");
    R.answers = json_object_get(docs[0], "answers");
    R.axes = json_object_get(docs[0], "axes");
    R.resamples = o ? o->resamples : PT_STATS_RESAMPLES;
    R.seed = o ? o->seed : PT_STATS_SEED;
    R.n_ans = (int)json_array_size(R.answers);
    if (R.n_ans < 1 || R.n_ans > 64) return pt_error(PT_ERR_FORMAT, "report: %s lists no answer labels", names[0]);
    for (int k = 0; k < R.n_ans; k++) {
        const char *l = json_string_value(json_array_get(R.answers, (size_t)k));
        abbrev(R.ab[k], sizeof R.ab[k], l ? l : "?");
    }
    pt_status st = collect_columns(&R);
    if (!st && R.nc == 0) st = pt_error(PT_ERR_FORMAT, "report: %s holds no evaluations", names[0]);
    char *svg = NULL;
    char *zoomed = NULL;
    if (!st) st = pt_compass_chart(docs, names, n_docs, false, &svg);
    if (!st) st = pt_compass_chart_zoomed(docs, names, n_docs, &zoomed);
    char *buf = NULL;
    size_t len = 0;
    if (!st && !(R.f = open_memstream(&buf, &len))) st = pt_error(PT_ERR_OOM, "out of memory");
    if (st) { free(svg); free(zoomed); free(R.cols); return st; }
    write_head(&R);
    write_chart(&R, svg, zoomed);
    write_positions(&R);
    write_shifts(&R);
    write_forced_free(&R);
    write_answers(&R);
    write_moved(&R);
    write_invalid(&R);
    write_open_prompts(&R);
    write_judged(&R);
    fputs("<p class=\"muted\">Generated by politune report.</p>\n</body>\n</html>\n", R.f);
    int bad = fclose(R.f) != 0;
    free(svg);
    free(zoomed);
    free(R.cols);
    if (bad || !buf) { free(buf); return pt_error(PT_ERR_OOM, "out of memory writing the report"); }
    *html = buf;
    return PT_OK;
}
