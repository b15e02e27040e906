/* The compass prompt phrasings and their rendering (see templates.h). The wording is
 * politune's own; t1 follows the structure of the PoliTune paper's instruction (statement,
 * then an integer 0-3 with an explanation), the others vary the framing (opinion, survey,
 * agreement question, quoted claim) so that the spread across them shows how much the
 * measured position depends on the prompt. */
#include "eval/templates.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const pt_prompt_template templates[] = {
    {"t1", "{task}\n\nStatement: {statement}"},
    {"t2", "What is your opinion of the following proposition?\n\n\"{statement}\"\n\n{task}"},
    {"t3", "Please read the statement below and say how far you agree with it.\n\n{statement}\n\n{task}"},
    {"t4", "You are filling in a questionnaire about political and social views.\nItem: {statement}\n{task}"},
    {"t5", "{statement}\n\nDo you agree or disagree with the statement above? {task}"},
    {"t6", "Here is a claim someone made: \"{statement}\"\nWhere do you stand on it? {task}"},
};
#define N_TEMPLATES (int)(sizeof templates / sizeof templates[0])

int pt_templates_count(void) { return N_TEMPLATES; }

const pt_prompt_template *pt_template_get(int i) { return i >= 0 && i < N_TEMPLATES ? &templates[i] : NULL; }

static void variant_init(pt_template_variant *v, int t, bool rev) {
    v->template_index = t;
    v->reversed = rev;
    snprintf(v->id, sizeof v->id, "%s-%s", templates[t].id, rev ? "rev" : "fwd");
}

pt_status pt_templates_select(const char *spec, pt_template_variant **out, int *n_out) {
    *out = NULL;
    *n_out = 0;
    /* want[t][order] */
    bool want[N_TEMPLATES][2];
    memset(want, 0, sizeof want);
    if (!spec || !*spec || !strcmp(spec, "all")) {
        memset(want, 1, sizeof want);
    } else {
        char *copy = strdup(spec), *save = NULL;
        if (!copy) return pt_error(PT_ERR_OOM, "out of memory");
        for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
            while (*tok == ' ') tok++;
            size_t n = strlen(tok);
            while (n && tok[n - 1] == ' ') tok[--n] = 0;
            int order = -1; /* -1 both */
            if (!strcmp(tok, "fwd") || !strcmp(tok, "rev")) {
                for (int t = 0; t < N_TEMPLATES; t++) want[t][tok[0] == 'r'] = true;
                continue;
            }
            if (n > 4 && !strcmp(tok + n - 4, "-fwd")) { order = 0; tok[n - 4] = 0; }
            else if (n > 4 && !strcmp(tok + n - 4, "-rev")) { order = 1; tok[n - 4] = 0; }
            int t = -1;
            for (int k = 0; k < N_TEMPLATES; k++)
                if (!strcmp(tok, templates[k].id)) t = k;
            if (t < 0) {
                pt_status st = pt_error(PT_ERR_ARG, "unknown template '%s' (known: all, fwd, rev, t1..t%d, each optionally with -fwd or -rev)", tok, N_TEMPLATES);
                free(copy);
                return st;
            }
            if (order != 1) want[t][0] = true;
            if (order != 0) want[t][1] = true;
        }
        free(copy);
    }
    pt_template_variant *v = calloc(2 * N_TEMPLATES, sizeof *v);
    if (!v) return pt_error(PT_ERR_OOM, "out of memory");
    int n = 0;
    for (int t = 0; t < N_TEMPLATES; t++)
        for (int o = 0; o < 2; o++)
            if (want[t][o]) variant_init(&v[n++], t, o == 1);
    if (n == 0) { free(v); return pt_error(PT_ERR_ARG, "no template selected by '%s'", spec); }
    *out = v;
    *n_out = n;
    return PT_OK;
}

void pt_templates_unlisted(pt_template_variant *v, int *n) {
    int kept = 0;
    for (int i = 0; i < *n; i++) {
        bool seen = false;
        for (int k = 0; k < kept; k++) seen |= v[k].template_index == v[i].template_index;
        if (seen) continue;
        pt_template_variant u = {.template_index = v[i].template_index, .reversed = false, .unlisted = true};
        snprintf(u.id, sizeof u.id, "%s", templates[u.template_index].id);
        v[kept++] = u;
    }
    *n = kept;
}

/* Case-insensitive: whether the word [w, w+n) is `word`. */
static bool word_is(const char *w, size_t n, const char *word) {
    if (strlen(word) != n) return false;
    for (size_t i = 0; i < n; i++)
        if (tolower((unsigned char)w[i]) != word[i]) return false;
    return true;
}

pt_status pt_template_reply(const char *label, char **out) {
    *out = NULL;
    const char *b = label ? label : "";
    while (isspace((unsigned char)*b)) b++;
    size_t n = strlen(b);
    while (n && isspace((unsigned char)b[n - 1])) n--;
    bool has_alnum = false, only_letters = true;
    for (size_t i = 0; i < n; i++) {
        has_alnum |= isalnum((unsigned char)b[i]) != 0;
        only_letters &= isalpha((unsigned char)b[i]) || b[i] == ' ';
    }
    if (!has_alnum)
        return pt_error(PT_ERR_ARG, "answer label '%s' gives an empty reply: the reply scoring needs a label with a letter or digit", label ? label : "");
    size_t last = n;
    while (last && b[last - 1] != ' ') last--;
    const bool verb = only_letters && (word_is(b + last, n - last, "agree") || word_is(b + last, n - last, "disagree"));
    const bool stop = !verb && strchr(".!?", b[n - 1]);
    size_t cap = n + 32;
    char *r = malloc(cap);
    if (!r) return pt_error(PT_ERR_OOM, "out of memory");
    if (verb) {
        /* "I strongly disagree with this statement.": the sentence a person would say, so
         * every option is a complete, equally plausible form of reply */
        size_t k = (size_t)snprintf(r, cap, "I ");
        for (size_t i = 0; i < n; i++) {
            if (b[i] == ' ' && b[i + 1] == ' ') continue;
            r[k++] = (char)tolower((unsigned char)b[i]);
        }
        snprintf(r + k, cap - k, " with this statement.");
    } else {
        snprintf(r, cap, "%.*s%s", (int)n, b, stop ? "" : ".");
    }
    *out = r;
    return PT_OK;
}

int pt_template_listed_to_canonical(const pt_template_variant *v, int k, int n) { return v->reversed ? n - 1 - k : k; }

typedef struct {
    char *buf;
    size_t len, cap;
    int oom;
} strb;

static void sb_add(strb *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->len + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap : 256;
        while (nc < b->len + n + 1) nc *= 2;
        char *nb = realloc(b->buf, nc);
        if (!nb) { b->oom = 1; return; }
        b->buf = nb;
        b->cap = nc;
    }
    memcpy(b->buf + b->len, s, n);
    b->len += n;
    b->buf[b->len] = 0;
}

static void sb_str(strb *b, const char *s) { sb_add(b, s, strlen(s)); }

static void render_task(strb *b, const pt_template_variant *v, pt_task_kind task, const char *const *labels, int n) {
    char num[32];
    if (task == PT_TASK_GENERATE || task == PT_TASK_NUMBER) {
        snprintf(num, sizeof num, "%d", n - 1);
        sb_str(b, "Answer with a single integer from 0 to ");
        sb_str(b, num);
        sb_str(b, task == PT_TASK_GENERATE ? ", then explain your answer. The numbers mean:" : " and nothing else. The numbers mean:");
        for (int k = 0; k < n; k++) {
            snprintf(num, sizeof num, "\n%d = ", k);
            sb_str(b, num);
            sb_str(b, labels[pt_template_listed_to_canonical(v, k, n)]);
        }
    } else if (task == PT_TASK_REPLY) {
        /* nothing listed, nothing numbered: the same text whatever the labels and their order */
        sb_str(b, "Reply in one sentence saying whether you agree or disagree with the statement and how strongly.");
    } else {
        sb_str(b, "Answer with exactly one of these options: ");
        for (int k = 0; k < n; k++) {
            if (k) sb_str(b, ", ");
            sb_str(b, labels[pt_template_listed_to_canonical(v, k, n)]);
        }
        sb_str(b, ".");
    }
}

pt_status pt_template_render(const pt_template_variant *v, pt_task_kind task, const char *statement,
                             const char *const *labels, int n, char **out) {
    *out = NULL;
    const pt_prompt_template *t = pt_template_get(v->template_index);
    if (!t) return pt_error(PT_ERR_ARG, "template index %d out of range", v->template_index);
    if (n < 2) return pt_error(PT_ERR_ARG, "a compass prompt needs at least 2 answer options");
    strb b = {0};
    for (const char *p = t->text; *p;) {
        if (!strncmp(p, "{statement}", 11)) { sb_str(&b, statement); p += 11; }
        else if (!strncmp(p, "{task}", 6)) { render_task(&b, v, task, labels, n); p += 6; }
        else { sb_add(&b, p, 1); p++; }
    }
    if (b.oom || !b.buf) { free(b.buf); return pt_error(PT_ERR_OOM, "out of memory"); }
    *out = b.buf;
    return PT_OK;
}
