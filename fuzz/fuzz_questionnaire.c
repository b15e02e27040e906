/* libFuzzer target: arbitrary bytes as a questionnaire file (CSV, JSON, plain text; the
 * first byte picks the form), as a scoring file scored against the parsed questionnaire,
 * and as a model reply for the answer parser. Everything must be accepted or rejected
 * without reading outside the buffer; accepted inputs are walked and scored. */
// fuzz-sources: src/eval/questionnaire.c src/eval/scoring.c src/eval/answer_parse.c src/eval/templates.c
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "eval/answer_parse.h"
#include "eval/questionnaire.h"
#include "eval/scoring.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    static const pt_qformat fmts[] = {PT_QFMT_AUTO, PT_QFMT_CSV, PT_QFMT_JSON, PT_QFMT_TXT};
    pt_qformat fmt = fmts[data[0] & 3];
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    pt_questionnaire *q = NULL;
    if (pt_questionnaire_parse(&q, text, len, "fuzz", fmt) == PT_OK) {
        volatile size_t sink = 0;
        volatile double effect_sum = 0; /* effects may be negative: a cast to size_t is undefined */
        for (int i = 0; i < q->n_items; i++) {
            sink += strlen(q->items[i].id) + strlen(q->items[i].statement);
            for (int k = 0; k < q->items[i].n_effects; k++) effect_sum += q->items[i].effects[k];
        }
        (void)sink, (void)effect_sum;
    }
    pt_scoring *s = NULL;
    if (pt_scoring_parse(&s, text, len, "fuzz.json", q) == PT_OK) {
        int *ans = malloc(sizeof(int) * (size_t)(s->n_items ? s->n_items : 1));
        double coords[64];
        if (ans && s->n_axes <= 64) {
            for (int i = 0; i < s->n_items; i++) ans[i] = i % (s->n_answers + 1) - 1;
            pt_scoring_score(s, ans, coords, NULL);
            if (q) pt_scoring_check(s, q);
        }
        free(ans);
        pt_scoring_free(s);
    }
    pt_questionnaire_free(q);
    /* the same bytes as a reply to a four-option question */
    char *reply = malloc(len + 1);
    if (reply) {
        memcpy(reply, text, len);
        reply[len] = 0;
        static const char *const labels[] = {"Strongly disagree", "Disagree", "Agree/Yes", "Strongly agree"};
        pt_template_variant v = {0, (data[0] & 4) != 0, "t1"};
        int a;
        pt_answer_parse(reply, labels, 4, &v, &a);
        free(reply);
    }
    return 0;
}
