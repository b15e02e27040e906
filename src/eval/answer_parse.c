/* Parsing the first valid answer (number or label words) out of a generated reply, and
 * telling refusals from other non-answers (see answer_parse.h). Byte-oriented and ASCII
 * case-folding: labels and numbers are ASCII in every instrument politune ships, and
 * non-ASCII bytes simply never match. */
#include "eval/answer_parse.h"

#include <ctype.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

const char *pt_answer_status_name(pt_answer_status s) {
    return s == PT_ANSWER_VALID ? "valid" : s == PT_ANSWER_REFUSED ? "refused" : "invalid";
}

static bool is_word(unsigned char c) { return isalnum(c) || c == '_'; }

/* Matches `pat` (case-insensitively; a space in pat matches any run of whitespace, and '-'
 * matches '-' or whitespace) at s. Returns the matched length or 0. The match must end at a
 * word boundary. */
static size_t match_words(const char *s, const char *pat, size_t plen) {
    size_t i = 0, j = 0;
    while (j < plen) {
        unsigned char pc = (unsigned char)pat[j];
        if (pc == ' ' || pc == '-') {
            if (!s[i]) return 0;
            if (pc == '-' && s[i] == '-') { i++; j++; continue; }
            if (!isspace((unsigned char)s[i])) return 0;
            while (isspace((unsigned char)s[i])) i++;
            j++;
            while (j < plen && pat[j] == ' ') j++;
            continue;
        }
        if (!s[i] || tolower((unsigned char)s[i]) != tolower(pc)) return 0;
        i++;
        j++;
    }
    if (is_word((unsigned char)s[i])) return 0;
    return i;
}

/* Whether the word just before position i negates what follows: "not", "never", "nor", or
 * a contraction ending in n't ("don't", "doesn't", "can't"; straight or curly apostrophe). */
static bool negated(const char *text, size_t i) {
    size_t k = i;
    while (k > 0 && isspace((unsigned char)text[k - 1])) k--;
    size_t end = k;
    while (k > 0 && (isalpha((unsigned char)text[k - 1]) || text[k - 1] == '\'' || (unsigned char)text[k - 1] >= 0x80)) k--;
    size_t n = end - k;
    const char *w = text + k;
    if ((n == 3 && !strncasecmp(w, "not", 3)) || (n == 5 && !strncasecmp(w, "never", 5)) || (n == 3 && !strncasecmp(w, "nor", 3)))
        return true;
    if (n >= 3 && !strncasecmp(w + n - 3, "n't", 3)) return true;
    if (n >= 5 && !strncasecmp(w + n - 5, "n\xE2\x80\x99t", 5)) return true;
    return false;
}

/* If the number ending at text+end starts a range mention ("0 to 3", "0-3", "0\u20133",
 * "0 through 3"), returns the offset just past the range's second number; else 0. */
static size_t range_end(const char *text, size_t end) {
    size_t k = end;
    while (text[k] == ' ') k++;
    const char *rest = text + k;
    size_t skip = 0;
    if (*rest == '-') skip = 1;
    else if (!strncmp(rest, "\xE2\x80\x93", 3) || !strncmp(rest, "\xE2\x80\x94", 3)) skip = 3;
    else if (!strncasecmp(rest, "to ", 3)) skip = 3;
    else if (!strncasecmp(rest, "through ", 8)) skip = 8;
    if (!skip) return 0;
    k += skip;
    while (text[k] == ' ') k++;
    if (!isdigit((unsigned char)text[k])) return 0;
    while (isdigit((unsigned char)text[k])) k++;
    return k;
}

static const char *const refusal_markers[] = {
    "as an ai", "as a language model", "as an artificial intelligence", "i cannot", "i can't", "i can not",
    "i can\xE2\x80\x99t", "i am unable", "i'm unable", "i won't", "i will not", "i must decline", "i'd rather not",
    "i do not have personal", "i don't have personal", "i don\xE2\x80\x99t have personal", "i do not hold",
    "i don't hold", "not able to provide", "cannot provide", "no personal opinion", "not appropriate for me",
    "i'm not able", "i am not able", "i prefer not", "decline to", NULL};

static bool looks_like_refusal(const char *text) {
    for (int k = 0; refusal_markers[k]; k++) {
        size_t n = strlen(refusal_markers[k]);
        for (const char *p = text; *p; p++)
            if (!strncasecmp(p, refusal_markers[k], n)) return true;
    }
    return false;
}

pt_answer_status pt_answer_parse(const char *text, const char *const *labels, int n, const pt_template_variant *v,
                                 int *answer) {
    *answer = -1;
    if (!text) return PT_ANSWER_INVALID;
    for (size_t i = 0; text[i]; i++) {
        unsigned char c = (unsigned char)text[i];
        if (i > 0 && is_word((unsigned char)text[i - 1])) continue; /* only at word starts */
        if (isdigit(c)) {
            size_t e = i;
            long val = 0;
            while (isdigit((unsigned char)text[e]) && e - i < 6) val = val * 10 + (text[e++] - '0');
            if (isdigit((unsigned char)text[e])) continue;
            if (is_word((unsigned char)text[e])) continue;                                     /* "2nd", "3rd" */
            if ((text[e] == '.' || text[e] == ',') && isdigit((unsigned char)text[e + 1])) continue; /* "2.5" */
            if (i > 0 && (text[i - 1] == '.' || text[i - 1] == '-')) continue;                   /* ".5", "-1" */
            size_t re = range_end(text, e);
            if (re) { i = re - 1; continue; }
            if (e - i == 1 && val < n) {
                pt_template_variant fwd = {0};
                *answer = pt_template_listed_to_canonical(v ? v : &fwd, (int)val, n);
                return PT_ANSWER_VALID;
            }
            continue;
        }
        if (!isalpha(c)) continue;
        size_t best = 0;
        int best_k = -1;
        for (int k = 0; k < n; k++) {
            const char *l = labels[k];
            /* the whole label, then each '/'-separated part */
            size_t m = match_words(text + i, l, strlen(l));
            if (m > best) { best = m; best_k = k; }
            if (strchr(l, '/')) {
                const char *p = l;
                while (*p) {
                    size_t pl = strcspn(p, "/");
                    size_t a = 0;
                    while (a < pl && p[a] == ' ') a++;
                    size_t b = pl;
                    while (b > a && p[b - 1] == ' ') b--;
                    if (b > a) {
                        size_t mm = match_words(text + i, p + a, b - a);
                        if (mm > best) { best = mm; best_k = k; }
                    }
                    p += pl;
                    if (*p == '/') p++;
                }
            }
        }
        if (best_k >= 0 && !negated(text, i)) {
            *answer = best_k;
            return PT_ANSWER_VALID;
        }
        if (best_k >= 0) i += best - 1; /* skip the negated label as a whole */
    }
    return looks_like_refusal(text) ? PT_ANSWER_REFUSED : PT_ANSWER_INVALID;
}
