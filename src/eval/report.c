/* `politune report`: one self-contained HTML page (inline CSS and SVG, no scripts, no
 * external files) comparing compass result directories. A column is the last evaluation of
 * each model/adapter label in each directory; a label with several evaluations (a training
 * run) is also compared first against last. */
#include "eval/report.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/svg.h"

typedef struct {
    int doc;
    json_t *first, *last; /* evaluations */
    const char *label;
    int n_evals;
} column;

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

pt_status pt_report_html(json_t *const *docs, const char *const *names, int n_docs, char **html) {
    *html = NULL;
    if (n_docs < 1) return pt_error(PT_ERR_ARG, "report: no result directories");
    json_t *items = json_object_get(docs[0], "items"), *answers = json_object_get(docs[0], "answers"), *axes = json_object_get(docs[0], "axes");
    for (int d = 1; d < n_docs; d++) {
        json_t *it = json_object_get(docs[d], "items");
        int same = json_array_size(it) == json_array_size(items);
        for (size_t i = 0; same && i < json_array_size(it); i++)
            same = json_equal(json_object_get(json_array_get(it, i), "id"), json_object_get(json_array_get(items, i), "id"));
        if (!same) return pt_error(PT_ERR_FORMAT, "report: %s and %s hold results for different questionnaires", names[0], names[d]);
    }
    int n_ans = (int)json_array_size(answers);
    if (n_ans < 1 || n_ans > 64) return pt_error(PT_ERR_FORMAT, "report: %s lists no answer labels", names[0]);
    char ab[64][16];
    for (int k = 0; k < n_ans; k++) abbrev(ab[k], sizeof ab[k], json_string_value(json_array_get(answers, (size_t)k)) ? json_string_value(json_array_get(answers, (size_t)k)) : "?");
    /* columns: the last evaluation of each label in each document */
    column *cols = NULL;
    int nc = 0;
    for (int d = 0; d < n_docs; d++) {
        json_t *evs = json_object_get(docs[d], "evaluations");
        for (size_t i = 0; i < json_array_size(evs); i++) {
            json_t *e = json_array_get(evs, i);
            const char *label = json_string_value(json_object_get(e, "label"));
            if (!label) label = names[d];
            int k = -1;
            for (int c = 0; c < nc; c++)
                if (cols[c].doc == d && !strcmp(cols[c].label, label)) k = c;
            if (k < 0) {
                column *n2 = realloc(cols, sizeof *n2 * (size_t)(nc + 1));
                if (!n2) { free(cols); return pt_error(PT_ERR_OOM, "out of memory"); }
                cols = n2;
                cols[nc] = (column){d, e, e, label, 0};
                k = nc++;
            }
            cols[k].last = e;
            cols[k].n_evals++;
        }
    }
    char *svg = NULL;
    pt_status st = pt_compass_chart(docs, names, n_docs, false, &svg);
    if (st) { free(cols); return st; }
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) { free(svg); free(cols); return pt_error(PT_ERR_OOM, "out of memory"); }
    fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>politune compass report</title>\n<style>\n"
          "body{font-family:Helvetica,Arial,sans-serif;margin:24px;color:#222;max-width:1400px}\n"
          "h1{font-size:22px}h2{font-size:18px;margin-top:28px;border-bottom:1px solid #ccc}\n"
          "table{border-collapse:collapse;font-size:13px;margin:8px 0}\n"
          "th,td{border:1px solid #ccc;padding:3px 6px;vertical-align:top}th{background:#f2f2f2;text-align:left}\n"
          "td.num{text-align:right;font-variant-numeric:tabular-nums}td.ans{text-align:center;white-space:nowrap}\n"
          "td.stmt{max-width:520px}.muted{color:#777}pre{white-space:pre-wrap;margin:0;font-family:inherit}\n"
          "</style>\n</head>\n<body>\n<h1>politune compass report</h1>\n<p class=\"muted\">", f);
    esc(f, json_string_value(json_object_get(docs[0], "instrument")));
    fprintf(f, " &#8212; %zu items, answers: ", json_array_size(items));
    for (int k = 0; k < n_ans; k++) {
        if (k) fputs(", ", f);
        fprintf(f, "%d = ", k);
        esc(f, json_string_value(json_array_get(answers, (size_t)k)));
        fputs(" (", f);
        esc(f, ab[k]);
        fputs(")", f);
    }
    fputs(". Runs: ", f);
    for (int d = 0; d < n_docs; d++) {
        if (d) fputs(", ", f);
        esc(f, names[d]);
    }
    fputs(".</p>\n<h2>Compass</h2>\n", f);
    fputs(svg, f);
    fputs("<p class=\"muted\">Points are the mean position over prompt templates and option orders; bars show one standard deviation. "
          "Lines connect evaluations of one model or adapter in order (training steps).</p>\n", f);

    /* positions, one row per evaluation */
    fputs("<h2>Positions</h2>\n<table>\n<tr><th>run</th><th>label</th><th>step</th><th>mode</th>", f);
    for (size_t x = 0; x < json_array_size(axes); x++) {
        const char *an = json_string_value(json_object_get(json_array_get(axes, x), "name"));
        fputs("<th>", f);
        esc(f, an);
        fputs(" mean &#177; sd</th><th>", f);
        esc(f, an);
        fputs(" min..max</th><th>", f);
        esc(f, an);
        fputs(" consensus</th><th>", f);
        esc(f, an);
        fputs(" expected</th>", f);
    }
    fputs("<th>answered</th><th>invalid rate</th><th>refusal rate</th><th>flipping items</th></tr>\n", f);
    for (int d = 0; d < n_docs; d++) {
        json_t *evs = json_object_get(docs[d], "evaluations");
        for (size_t i = 0; i < json_array_size(evs); i++) {
            json_t *e = json_array_get(evs, i);
            fputs("<tr><td>", f);
            esc(f, names[d]);
            fputs("</td><td>", f);
            esc(f, json_string_value(json_object_get(e, "label")));
            fprintf(f, "</td><td class=\"num\">%lld</td><td>", (long long)json_integer_value(json_object_get(e, "step")));
            esc(f, json_string_value(json_object_get(e, "mode")));
            fputs("</td>", f);
            for (size_t x = 0; x < json_array_size(axes); x++) {
                json_t *ax = json_array_get(axes, x);
                const char *an = json_string_value(json_object_get(ax, "name"));
                int dec = (int)json_integer_value(json_object_get(ax, "decimals"));
                json_t *p = json_object_get(json_object_get(e, "position"), an ? an : "");
                fputs("<td class=\"num\">", f);
                fmt_num(f, jnum(json_object_get(p, "mean")), dec);
                fputs(" &#177; ", f);
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
            int flips = 0;
            json_t *its = json_object_get(e, "items");
            for (size_t k = 0; k < json_array_size(its); k++) flips += json_is_true(json_object_get(json_array_get(its, k), "flip"));
            fprintf(f, "<td class=\"num\">%lld/%zu</td><td class=\"num\">%.1f%%</td><td class=\"num\">%.1f%%</td><td class=\"num\">%d</td></tr>\n",
                    (long long)json_integer_value(json_object_get(json_object_get(e, "consensus"), "answered")), json_array_size(items),
                    100 * jnum(json_object_get(e, "invalid_rate")), 100 * jnum(json_object_get(e, "refusal_rate")), flips);
        }
    }
    fputs("</table>\n", f);

    /* answers side by side */
    fputs("<h2>Answers</h2>\n<p class=\"muted\">Consensus answer over templates (the share of templates that agree when not all do; "
          "&#8646; marks items whose answer flips between agreeing and disagreeing across templates; &#8212; no valid answer).</p>\n"
          "<table>\n<tr><th>item</th><th>statement</th>", f);
    for (int c = 0; c < nc; c++) {
        fputs("<th>", f);
        esc(f, cols[c].label);
        if (n_docs > 1) { fputs("<br><span class=\"muted\">", f); esc(f, names[cols[c].doc]); fputs("</span>", f); }
        if (cols[c].n_evals > 1) fprintf(f, "<br><span class=\"muted\">step %lld</span>", (long long)json_integer_value(json_object_get(cols[c].last, "step")));
        fputs("</th>", f);
    }
    fputs("</tr>\n", f);
    for (size_t i = 0; i < json_array_size(items); i++) {
        json_t *it = json_array_get(items, i);
        fputs("<tr><td>", f);
        esc(f, json_string_value(json_object_get(it, "id")));
        fputs("</td><td class=\"stmt\">", f);
        esc(f, json_string_value(json_object_get(it, "statement")));
        fputs("</td>", f);
        for (int c = 0; c < nc; c++) answer_cell(f, cols[c].last, i, ab, n_ans, 1);
        fputs("</tr>\n", f);
    }
    fputs("</table>\n", f);

    /* items that moved */
    fputs("<h2>Items that moved</h2>\n", f);
    int n_cmp = 0;
    for (int c = 0; c < nc; c++) n_cmp += (c > 0) + (cols[c].n_evals > 1);
    if (n_cmp == 0) {
        fputs("<p class=\"muted\">Only one evaluation: nothing to compare.</p>\n", f);
    } else {
        fputs("<table>\n<tr><th>item</th><th>statement</th><th>comparison</th><th>from</th><th>to</th><th>expected value change</th></tr>\n", f);
        int moved = 0;
        for (size_t i = 0; i < json_array_size(items); i++) {
            json_t *it = json_array_get(items, i);
            for (int c = 0; c < nc; c++)
                for (int kind = 0; kind < 2; kind++) {
                    json_t *from, *to;
                    if (kind == 0) { if (c == 0) continue; from = cols[0].last; to = cols[c].last; }
                    else { if (cols[c].n_evals < 2) continue; from = cols[c].first; to = cols[c].last; }
                    int a = answer_of(from, i), b = answer_of(to, i);
                    if (a == b) continue;
                    moved++;
                    fputs("<tr><td>", f);
                    esc(f, json_string_value(json_object_get(it, "id")));
                    fputs("</td><td class=\"stmt\">", f);
                    esc(f, json_string_value(json_object_get(it, "statement")));
                    fputs("</td><td>", f);
                    if (kind == 0) { esc(f, cols[0].label); fputs(" &#8594; ", f); esc(f, cols[c].label); }
                    else { esc(f, cols[c].label); fprintf(f, ": step %lld &#8594; %lld", (long long)json_integer_value(json_object_get(from, "step")), (long long)json_integer_value(json_object_get(to, "step"))); }
                    fputs("</td>", f);
                    answer_cell(f, from, i, ab, n_ans, 0);
                    answer_cell(f, to, i, ab, n_ans, 0);
                    double ea = jnum(json_object_get(json_array_get(json_object_get(from, "items"), i), "expected"));
                    double eb = jnum(json_object_get(json_array_get(json_object_get(to, "items"), i), "expected"));
                    fputs("<td class=\"num\">", f);
                    if (isnan(ea) || isnan(eb)) fputs("&#8212;", f);
                    else fprintf(f, "%+.2f", eb - ea);
                    fputs("</td></tr>\n", f);
                }
        }
        fputs("</table>\n", f);
        fprintf(f, "<p class=\"muted\">%d changed answer%s.</p>\n", moved, moved == 1 ? "" : "s");
    }

    /* invalid rates per template */
    fputs("<h2>Invalid answers by template</h2>\n<table>\n<tr><th>template</th>", f);
    for (int c = 0; c < nc; c++) { fputs("<th>", f); esc(f, cols[c].label); fputs("</th>", f); }
    fputs("</tr>\n", f);
    json_t *vars0 = json_object_get(cols[0].last, "variants");
    for (size_t v = 0; v < json_array_size(vars0); v++) {
        const char *vid = json_string_value(json_object_get(json_array_get(vars0, v), "id"));
        fputs("<tr><td>", f);
        esc(f, vid);
        fputs("</td>", f);
        for (int c = 0; c < nc; c++) {
            json_t *vars = json_object_get(cols[c].last, "variants"), *hit = NULL;
            for (size_t k = 0; k < json_array_size(vars); k++)
                if (vid && json_string_value(json_object_get(json_array_get(vars, k), "id")) &&
                    !strcmp(vid, json_string_value(json_object_get(json_array_get(vars, k), "id"))))
                    hit = json_array_get(vars, k);
            if (!hit) { fputs("<td class=\"muted\">&#8212;</td>", f); continue; }
            long long inv = json_integer_value(json_object_get(hit, "invalid")), ref = json_integer_value(json_object_get(hit, "refused"));
            fprintf(f, "<td class=\"num\">%lld invalid, %lld refused</td>", inv, ref);
        }
        fputs("</tr>\n", f);
    }
    fputs("</table>\n", f);

    /* open-ended replies */
    int any_open = 0;
    for (int c = 0; c < nc; c++) any_open |= json_array_size(json_object_get(cols[c].last, "open_prompts")) > 0;
    if (any_open) {
        fputs("<h2>Open-ended prompts</h2>\n<table>\n<tr><th>prompt</th>", f);
        for (int c = 0; c < nc; c++) { fputs("<th>", f); esc(f, cols[c].label); fputs("</th>", f); }
        fputs("</tr>\n", f);
        json_t *op0 = NULL;
        for (int c = 0; c < nc && !op0; c++)
            if (json_array_size(json_object_get(cols[c].last, "open_prompts"))) op0 = json_object_get(cols[c].last, "open_prompts");
        for (size_t p = 0; p < json_array_size(op0); p++) {
            const char *pid = json_string_value(json_object_get(json_array_get(op0, p), "id"));
            fputs("<tr><td>", f);
            esc(f, json_string_value(json_object_get(json_array_get(op0, p), "prompt")));
            fputs("</td>", f);
            for (int c = 0; c < nc; c++) {
                json_t *ops = json_object_get(cols[c].last, "open_prompts"), *hit = NULL;
                for (size_t k = 0; k < json_array_size(ops); k++) {
                    const char *id = json_string_value(json_object_get(json_array_get(ops, k), "id"));
                    if (pid && id && !strcmp(pid, id)) hit = json_array_get(ops, k);
                }
                fputs("<td><pre>", f);
                if (hit) esc(f, json_string_value(json_object_get(hit, "response")));
                else fputs("&#8212;", f);
                fputs("</pre></td>", f);
            }
            fputs("</tr>\n", f);
        }
        fputs("</table>\n", f);
    }
    /* the judge's ideology ratings of the open answers (politune judge-answers) */
    int any_judged = 0;
    for (int c = 0; c < nc; c++) any_judged |= json_object_get(cols[c].last, "open_judge") != NULL;
    if (any_judged) {
        fputs("<h2>Open answers judged for ideology</h2>\n<table>\n<tr><th>prompt</th>", f);
        for (int c = 0; c < nc; c++) { fputs("<th>", f); esc(f, cols[c].label); fputs("</th>", f); }
        fputs("</tr>\n<tr><td>mean</td>", f);
        for (int c = 0; c < nc; c++) {
            json_t *oj = json_object_get(cols[c].last, "open_judge");
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
        for (int c = 0; c < nc && !bp0; c++) bp0 = json_object_get(json_object_get(cols[c].last, "open_judge"), "by_prompt");
        for (size_t p = 0; p < json_array_size(bp0); p++) {
            const char *pid = json_string_value(json_object_get(json_array_get(bp0, p), "id"));
            fputs("<tr><td>", f);
            esc(f, json_string_value(json_object_get(json_array_get(bp0, p), "prompt")));
            fputs("</td>", f);
            for (int c = 0; c < nc; c++) {
                json_t *bp = json_object_get(json_object_get(cols[c].last, "open_judge"), "by_prompt"), *hit = NULL;
                for (size_t k = 0; k < json_array_size(bp); k++) {
                    const char *id = json_string_value(json_object_get(json_array_get(bp, k), "id"));
                    if (pid && id && !strcmp(pid, id)) hit = json_array_get(bp, k);
                }
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
    fputs("<p class=\"muted\">Generated by politune " , f);
    fputs("report.</p>\n</body>\n</html>\n", f);
    int bad = fclose(f) != 0;
    free(svg);
    free(cols);
    if (bad || !buf) { free(buf); return pt_error(PT_ERR_OOM, "out of memory writing the report"); }
    *html = buf;
    return PT_OK;
}
