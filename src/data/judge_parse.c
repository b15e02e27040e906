/* Reading judge replies: a label in free text, and an OpenAI chat-completions response body
 * with its optional top log-probabilities (see judge.h). No network or engine here, so the
 * fuzz target can drive it. */
#include <ctype.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "data/judge.h"

static bool word_char(unsigned char c) { return isalnum(c) || c >= 0x80; }

int pt_judge_parse_label(const char *text, const char *const *labels, int n_labels) {
    if (!text) return -1;
    for (const char *p = text; *p; p++) {
        if (p > text && word_char((unsigned char)p[-1]) && word_char((unsigned char)*p)) continue;
        int best = -1;
        size_t best_len = 0;
        for (int k = 0; k < n_labels; k++) {
            size_t L = strlen(labels[k]);
            if (!L || L <= best_len || strncasecmp(p, labels[k], L)) continue;
            if (word_char((unsigned char)p[L]) && word_char((unsigned char)labels[k][L - 1])) continue;
            best = k;
            best_len = L;
        }
        if (best >= 0) return best;
    }
    return -1;
}

pt_status pt_judge_parse_response(const char *body, size_t len, const char *const *labels, int n_labels, char **text, double *probs,
                                  bool *has_probs) {
    *text = NULL;
    *has_probs = false;
    json_error_t e;
    json_t *o = json_loadb(body, len, 0, &e);
    if (!o) return pt_error(PT_ERR_FORMAT, "the reply is not JSON: %s", e.text);
    json_t *ch = json_array_get(json_object_get(o, "choices"), 0);
    json_t *content = json_object_get(json_object_get(ch, "message"), "content");
    if (!content) content = json_object_get(ch, "text");
    if (!json_is_object(ch) || (content && !json_is_string(content) && !json_is_null(content))) {
        json_decref(o);
        return pt_error(PT_ERR_FORMAT, "the reply is not an OpenAI chat completion (no choices[0].message.content)");
    }
    *text = strdup(json_is_string(content) ? json_string_value(content) : "");
    if (labels && n_labels > 0 && probs) {
        json_t *top = json_object_get(json_array_get(json_object_get(json_object_get(ch, "logprobs"), "content"), 0), "top_logprobs");
        double sum = 0;
        for (int k = 0; k < n_labels; k++) probs[k] = 0;
        for (size_t i = 0; i < json_array_size(top); i++) {
            json_t *t = json_array_get(top, i);
            const char *tok = json_string_value(json_object_get(t, "token"));
            json_t *lp = json_object_get(t, "logprob");
            if (!tok || !json_is_number(lp)) continue;
            while (*tok && isspace((unsigned char)*tok)) tok++;
            size_t tl = strlen(tok);
            while (tl && isspace((unsigned char)tok[tl - 1])) tl--;
            for (int k = 0; k < n_labels; k++)
                if (tl && strlen(labels[k]) == tl && !strncasecmp(tok, labels[k], tl)) {
                    double p = exp(json_number_value(lp));
                    if (isfinite(p)) probs[k] += p, sum += p;
                    break;
                }
        }
        if (sum > 0) {
            for (int k = 0; k < n_labels; k++) probs[k] /= sum;
            *has_probs = true;
        }
    }
    json_decref(o);
    return *text ? PT_OK : pt_error(PT_ERR_OOM, "out of memory");
}
