/* Dataset readers (see data.h): record framing (JSON array or JSONL) with line numbers,
 * record recognition, prompt rendering and tokenisation, truncation. */
#include "train/data.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>

#include "util/file.h"

typedef struct {
    const char *label;
    int line;
    const pt_data_opts *o;
} ctx;

#define BAD(c, ...) record_error(c, __VA_ARGS__)
static pt_status record_error(const ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static pt_status record_error(const ctx *c, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return pt_error(PT_ERR_FORMAT, "%s:%d: %s", c->label, c->line, msg);
}

/* ---- token lists ------------------------------------------------------------------------- */

typedef struct { int32_t *v; int n, cap; } ids_t;

static pt_status ids_push(ids_t *a, const int32_t *v, int n) {
    if (a->n + n > a->cap) {
        int cap = (a->n + n) * 2 + 16;
        int32_t *nv = realloc(a->v, sizeof(int32_t) * cap);
        if (!nv) return pt_error(PT_ERR_OOM, "out of memory");
        a->v = nv, a->cap = cap;
    }
    memcpy(a->v + a->n, v, sizeof(int32_t) * n);
    a->n += n;
    return PT_OK;
}

static pt_status read_ids(const ctx *c, json_t *arr, const char *key, ids_t *out) {
    if (!json_is_array(arr)) return BAD(c, "'%s' must be a list of token ids", key);
    if (json_array_size(arr) == 0) return BAD(c, "'%s' is empty", key);
    if (json_array_size(arr) > (1u << 24)) return BAD(c, "'%s' is too long", key);
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) {
        if (!json_is_integer(v)) return BAD(c, "'%s'[%zu] is not an integer", key, i);
        json_int_t id = json_integer_value(v);
        if (id < 0 || id > INT32_MAX || (c->o->vocab > 0 && id >= c->o->vocab))
            return BAD(c, "'%s'[%zu] = %lld is outside the vocabulary (0..%d)", key, i, (long long)id, c->o->vocab - 1);
        int32_t x = (int32_t)id;
        PT_TRY(ids_push(out, &x, 1));
    }
    return PT_OK;
}

/* ---- messages ---------------------------------------------------------------------------- */

#define MAX_MSGS 256
typedef struct { pt_chat_msg m[MAX_MSGS]; int n; } msgs_t;

static pt_status read_msgs(const ctx *c, json_t *arr, const char *key, msgs_t *out) {
    if (!json_is_array(arr)) return BAD(c, "'%s' must be a list of messages", key);
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) {
        json_t *role = json_object_get(v, "role"), *content = json_object_get(v, "content");
        if (!json_is_string(role) || !json_is_string(content))
            return BAD(c, "'%s'[%zu] is not a message with string 'role' and 'content'", key, i);
        const char *r = json_string_value(role);
        if (strcmp(r, "system") && strcmp(r, "user") && strcmp(r, "assistant"))
            return BAD(c, "'%s'[%zu]: role '%s' (system, user or assistant expected)", key, i, r);
        if (out->n == MAX_MSGS) return BAD(c, "'%s': more than %d messages", key, MAX_MSGS);
        out->m[out->n++] = (pt_chat_msg){r, json_string_value(content)};
    }
    return PT_OK;
}

/* A prompt given as a string (one user turn) or as a message list. */
static pt_status read_prompt(const ctx *c, json_t *v, msgs_t *out) {
    if (json_is_string(v)) {
        out->m[out->n++] = (pt_chat_msg){"user", json_string_value(v)};
        return PT_OK;
    }
    return read_msgs(c, v, "prompt", out);
}

/* A response given as a string or as a message list ending with the assistant's turn;
 * earlier messages of the list extend the prompt (the PoliTune layout repeats the user turn
 * in both chosen and rejected). */
static pt_status read_response(const ctx *c, json_t *v, const char *key, msgs_t *prefix, const char **text) {
    if (json_is_string(v)) {
        *text = json_string_value(v);
        return PT_OK;
    }
    msgs_t all = {.n = 0};
    PT_TRY(read_msgs(c, v, key, &all));
    if (all.n == 0 || strcmp(all.m[all.n - 1].role, "assistant"))
        return BAD(c, "'%s' must end with an assistant message", key);
    *text = all.m[all.n - 1].content;
    if (prefix) {
        if (prefix->n + all.n - 1 > MAX_MSGS) return BAD(c, "'%s': too many messages", key);
        for (int i = 0; i < all.n - 1; i++) prefix->m[prefix->n++] = all.m[i];
    }
    return PT_OK;
}

static bool same_msgs(const pt_chat_msg *a, const pt_chat_msg *b, int n) {
    for (int i = 0; i < n; i++)
        if (strcmp(a[i].role, b[i].role) || strcmp(a[i].content, b[i].content)) return false;
    return true;
}

/* ---- tokenisation ------------------------------------------------------------------------ */

static pt_status encode(const ctx *c, const char *text, bool special, ids_t *out) {
    int32_t *ids = NULL;
    size_t n = 0;
    pt_status st = pt_tokenizer_encode(c->o->tok, text, strlen(text), special, &ids, &n);
    if (st) return pt_error_wrap(PT_ERR_FORMAT, "%s:%d: ", c->label, c->line);
    st = ids_push(out, ids, (int)n);
    free(ids);
    return st;
}

static pt_status render_prompt(const ctx *c, const msgs_t *p, ids_t *out) {
    const pt_data_opts *o = c->o;
    bool any = false;
    for (int i = 0; i < p->n; i++) any |= !strcmp(p->m[i].role, "user") && p->m[i].content[0];
    if (!any) return BAD(c, "empty prompt");
    if (o->tmpl == PT_CHAT_NONE) {
        if (p->n != 1) return BAD(c, "a multi-message prompt needs a template (template none renders a single text)");
        return encode(c, p->m[0].content, true, out);
    }
    int32_t bos = pt_tokenizer_bos(o->tok);
    const char *bos_text = bos >= 0 ? pt_tokenizer_token_text(o->tok, bos) : NULL;
    char *text = NULL;
    pt_status st = pt_chat_render(o->tmpl, p->m, p->n, true, bos_text, &text);
    if (st) return pt_error_wrap(PT_ERR_FORMAT, "%s:%d: ", c->label, c->line);
    /* templates that begin with BOS write it as text; alpaca is plain text, so BOS comes from
     * the tokenizer's own rule */
    st = encode(c, text, o->tmpl == PT_CHAT_ALPACA, out);
    free(text);
    return st;
}

static pt_status render_response(const ctx *c, const char *text, const char *key, ids_t *out) {
    if (!*text) return BAD(c, "empty %s", key);
    PT_TRY(encode(c, text, false, out));
    if (c->o->eos >= 0) PT_TRY(ids_push(out, &c->o->eos, 1));
    if (out->n == 0) return BAD(c, "%s has no tokens", key);
    return PT_OK;
}

/* ---- records ----------------------------------------------------------------------------- */

static pt_status parse_record(const ctx *c, json_t *rec, ids_t *p, ids_t r[2]) {
    const pt_data_opts *o = c->o;
    if (!json_is_object(rec)) return BAD(c, "a record must be a JSON object");
    json_t *pid = json_object_get(rec, "prompt_ids");
    if (pid) {
        PT_TRY(read_ids(c, pid, "prompt_ids", p));
        if (o->pairs) {
            json_t *ci = json_object_get(rec, "chosen_ids"), *ri = json_object_get(rec, "rejected_ids");
            if (!ci || !ri) return BAD(c, "a pre-tokenized pair needs 'chosen_ids' and 'rejected_ids'");
            PT_TRY(read_ids(c, ci, "chosen_ids", &r[0]));
            return read_ids(c, ri, "rejected_ids", &r[1]);
        }
        json_t *ri = json_object_get(rec, "response_ids");
        const char *k = "response_ids";
        if (!ri) ri = json_object_get(rec, "chosen_ids"), k = "chosen_ids";
        if (!ri) return BAD(c, "a pre-tokenized SFT record needs 'response_ids'");
        return read_ids(c, ri, k, &r[0]);
    }
    json_t *chosen = json_object_get(rec, "chosen"), *rejected = json_object_get(rec, "rejected"),
           *prompt = json_object_get(rec, "prompt"), *messages = json_object_get(rec, "messages");
    json_t *response = json_object_get(rec, "response");
    if (!response) response = json_object_get(rec, "completion");
    if (!chosen && !rejected && !prompt && !messages)
        return BAD(c, "unrecognised record: expected prompt/chosen/rejected, chosen/rejected messages, prompt/response, "
                      "messages, or prompt_ids with chosen_ids/rejected_ids or response_ids");
    if (!o->tok) return BAD(c, "a text record needs a model with a tokenizer (or use prompt_ids/... records)");
    static msgs_t pm, pr; /* large; the reader is single-threaded */
    pm.n = pr.n = 0;
    const char *resp[2] = {NULL, NULL};
    if (o->pairs || (chosen && !messages && !response)) {
        if (!chosen || (o->pairs && !rejected))
            return BAD(c, o->pairs ? "a preference record needs 'chosen' and 'rejected'" : "an SFT record needs 'response' or 'messages'");
        if (prompt) PT_TRY(read_prompt(c, prompt, &pm));
        pr = pm;
        PT_TRY(read_response(c, chosen, "chosen", &pm, &resp[0]));
        if (o->pairs) {
            PT_TRY(read_response(c, rejected, "rejected", &pr, &resp[1]));
            if (pm.n != pr.n || !same_msgs(pm.m, pr.m, pm.n)) return BAD(c, "'chosen' and 'rejected' follow different prompts");
        }
        if (pm.n == 0) return BAD(c, "empty prompt");
    } else if (messages) {
        PT_TRY(read_response(c, messages, "messages", &pm, &resp[0]));
        if (pm.n == 0) return BAD(c, "'messages' has no prompt before the assistant's answer");
    } else {
        if (!prompt || !response) return BAD(c, "an SFT record needs 'prompt' and 'response' (or 'messages')");
        PT_TRY(read_prompt(c, prompt, &pm));
        PT_TRY(read_response(c, response, "response", NULL, &resp[0]));
    }
    PT_TRY(render_prompt(c, &pm, p));
    PT_TRY(render_response(c, resp[0], o->pairs ? "chosen response" : "response", &r[0]));
    if (o->pairs) PT_TRY(render_response(c, resp[1], "rejected response", &r[1]));
    return PT_OK;
}

/* Cuts prompt + longest response to max_seq_len: the prompt from the left (keeping one
 * token), then the responses from the right. */
static void truncate(pt_dataset *d, ids_t *p, ids_t r[2], int max) {
    if (max <= 0) return;
    int k = d->pairs ? 2 : 1, longest = r[0].n;
    if (k == 2 && r[1].n > longest) longest = r[1].n;
    if (p->n + longest <= max) return;
    int cut = p->n + longest - max;
    if (cut > p->n - 1) cut = p->n - 1;
    long removed = cut;
    memmove(p->v, p->v + cut, sizeof(int32_t) * (p->n - cut));
    p->n -= cut;
    for (int j = 0; j < k; j++)
        if (p->n + r[j].n > max) {
            removed += p->n + r[j].n - max;
            r[j].n = max - p->n;
        }
    d->n_truncated++;
    d->n_cut_tokens += removed;
}

static pt_status add_example(pt_dataset *d, int *cap, const ids_t *p, const ids_t r[2], int line) {
    if (d->n == *cap) {
        int nc = *cap * 2 + 64;
        pt_example *ne = realloc(d->ex, sizeof *ne * nc);
        if (!ne) return pt_error(PT_ERR_OOM, "out of memory");
        d->ex = ne, *cap = nc;
    }
    int k = d->pairs ? 2 : 1, total = p->n + r[0].n + (k == 2 ? r[1].n : 0);
    int32_t *block = malloc(sizeof(int32_t) * total);
    if (!block) return pt_error(PT_ERR_OOM, "out of memory");
    pt_example *e = &d->ex[d->n++];
    memset(e, 0, sizeof *e);
    e->prompt = block;
    e->np = p->n;
    memcpy(block, p->v, sizeof(int32_t) * p->n);
    int32_t *q = block + p->n;
    for (int j = 0; j < k; j++) {
        e->resp[j] = q;
        e->nr[j] = r[j].n;
        memcpy(q, r[j].v, sizeof(int32_t) * r[j].n);
        q += r[j].n;
    }
    e->line = line;
    return PT_OK;
}

/* Parses one record (json or a syntax error) and adds it, or skips it with skip_bad. */
static pt_status take_record(pt_dataset *d, int *cap, json_t *rec, const json_error_t *jerr, const ctx *c) {
    ids_t p = {0}, r[2] = {{0}, {0}};
    pt_status st = rec ? parse_record(c, rec, &p, r)
                       : pt_error(PT_ERR_FORMAT, "%s:%d: invalid JSON: %s", c->label, c->line + (jerr->line > 1 ? jerr->line - 1 : 0), jerr->text);
    if (!st) {
        truncate(d, &p, r, c->o->max_seq_len);
        st = add_example(d, cap, &p, r, c->line);
    } else if (st == PT_ERR_FORMAT && c->o->skip_bad) {
        d->n_skipped++;
        st = PT_OK;
    }
    free(p.v), free(r[0].v), free(r[1].v);
    return st;
}

static int count_lines(const char *s, size_t from, size_t to) {
    int n = 0;
    for (size_t i = from; i < to; i++) n += s[i] == '\n';
    return n;
}

static size_t skip_ws(const char *s, size_t i, size_t len) {
    while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) i++;
    return i;
}

pt_status pt_dataset_parse(pt_dataset *d, const char *text, size_t len, const char *label, const pt_data_opts *o) {
    memset(d, 0, sizeof *d);
    d->pairs = o->pairs;
    int cap = 0;
    ctx c = {label, 1, o};
    size_t i = 0;
    if (len >= 3 && !memcmp(text, "\xEF\xBB\xBF", 3)) i = 3;
    i = skip_ws(text, i, len);
    pt_status st = PT_OK;
    if (i < len && text[i] == '[') {
        /* a JSON array: parse element by element to know where each one starts */
        int line = 1 + count_lines(text, 0, i);
        size_t last = i;
        i++;
        for (bool first = true;; first = false) {
            i = skip_ws(text, i, len);
            if (i < len && text[i] == ']') break;
            if (!first) {
                if (i >= len || text[i] != ',') {
                    line += count_lines(text, last, i);
                    st = pt_error(PT_ERR_FORMAT, "%s:%d: expected ',' or ']' between records", label, line);
                    break;
                }
                i = skip_ws(text, i + 1, len);
            }
            line += count_lines(text, last, i);
            last = i;
            if (i >= len) { st = pt_error(PT_ERR_FORMAT, "%s:%d: the JSON array is not closed", label, line); break; }
            json_error_t err;
            json_t *rec = json_loadb(text + i, len - i, JSON_DISABLE_EOF_CHECK, &err);
            c.line = line;
            if (!rec) { /* framing is lost: a syntax error cannot be skipped */
                st = pt_error(PT_ERR_FORMAT, "%s:%d: invalid JSON: %s", label, line + (err.line > 1 ? err.line - 1 : 0), err.text);
                break;
            }
            st = take_record(d, &cap, rec, &err, &c);
            json_decref(rec);
            if (st) break;
            if (err.position <= 0) { st = pt_error(PT_ERR_FORMAT, "%s:%d: record without content", label, line); break; }
            i += (size_t)err.position;
        }
        if (!st && skip_ws(text, i + 1, len) < len) st = pt_error(PT_ERR_FORMAT, "%s: data after the closing ']'", label);
    } else {
        /* JSONL */
        int line = 1;
        for (size_t s = 0; s < len && !st; line++) {
            size_t e = s;
            while (e < len && text[e] != '\n') e++;
            if (e - s > PT_DATASET_MAX_RECORD) {
                st = pt_error(PT_ERR_FORMAT, "%s:%d: a record of %zu bytes; records are limited to %d bytes", label, line, e - s,
                              PT_DATASET_MAX_RECORD);
                break;
            }
            if (skip_ws(text, s, e) < e) {
                json_error_t err;
                json_t *rec = json_loadb(text + s, e - s, 0, &err);
                c.line = line;
                st = take_record(d, &cap, rec, &err, &c);
                json_decref(rec);
            }
            s = e + 1;
        }
    }
    if (!st && d->n == 0)
        st = pt_error(PT_ERR_FORMAT, "%s: no usable records%s", label, d->n_skipped ? " (all were skipped as malformed)" : "");
    if (st) pt_dataset_free(d);
    return st;
}

/* Reads a dataset whole, refusing what cannot be one: a device or pipe given by name (e.g.
 * /dev/zero, which never ends) and anything past PT_DATASET_MAX_BYTES. "-" is standard
 * input, under the same cap. */
static pt_status read_dataset(const char *path, char **out, size_t *out_len) {
    *out = NULL;
    bool std_in = !strcmp(path, "-");
    struct stat sb;
    /* checked before opening: opening a FIFO would wait for a writer */
    if (!std_in && stat(path, &sb) == 0 && !S_ISREG(sb.st_mode))
        return pt_error(PT_ERR_IO, "%s: not a regular file (give '-' to read standard input)", path);
    FILE *f = std_in ? stdin : fopen(path, "rb");
    if (!f) return pt_error(PT_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    if (!std_in && (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode))) {
        fclose(f);
        return pt_error(PT_ERR_IO, "%s: not a regular file (give '-' to read standard input)", path);
    }
    if (!std_in && (uint64_t)sb.st_size > PT_DATASET_MAX_BYTES) {
        fclose(f);
        return pt_error(PT_ERR_FORMAT, "%s: %lld bytes; datasets are limited to %llu bytes", path, (long long)sb.st_size,
                        (unsigned long long)PT_DATASET_MAX_BYTES);
    }
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    pt_status st = buf ? PT_OK : pt_error(PT_ERR_OOM, "%s: out of memory", path);
    while (!st) {
        if (len + 1 >= cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) { st = pt_error(PT_ERR_OOM, "%s: out of memory", path); break; }
            buf = nb;
            cap *= 2;
        }
        size_t n = fread(buf + len, 1, cap - len - 1, f);
        len += n;
        if (len > PT_DATASET_MAX_BYTES)
            st = pt_error(PT_ERR_FORMAT, "%s: more than %llu bytes; datasets are limited to that", path, (unsigned long long)PT_DATASET_MAX_BYTES);
        if (n == 0) break;
    }
    if (!st && ferror(f)) st = pt_error(PT_ERR_IO, "%s: read error: %s", path, strerror(errno));
    if (!std_in) fclose(f);
    if (st) { free(buf); return st; }
    buf[len] = 0;
    *out = buf;
    *out_len = len;
    return PT_OK;
}

pt_status pt_dataset_load(pt_dataset *d, const char *path, const pt_data_opts *o) {
    char *text = NULL;
    size_t len = 0;
    memset(d, 0, sizeof *d);
    PT_TRY(read_dataset(path, &text, &len));
    pt_status st = pt_dataset_parse(d, text, len, path, o);
    free(text);
    return st;
}

void pt_dataset_free(pt_dataset *d) {
    for (int i = 0; i < d->n; i++) free(d->ex[i].prompt);
    free(d->ex);
    memset(d, 0, sizeof *d);
}

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

uint64_t pt_dataset_hash(const pt_dataset *d) {
    uint64_t h = 0xcbf29ce484222325ull;
    int k = d->pairs ? 2 : 1;
    h = fnv(h, &k, sizeof k);
    for (int i = 0; i < d->n; i++) {
        const pt_example *e = &d->ex[i];
        h = fnv(h, &e->np, sizeof e->np);
        h = fnv(h, e->prompt, sizeof(int32_t) * e->np);
        for (int j = 0; j < k; j++) {
            h = fnv(h, &e->nr[j], sizeof e->nr[j]);
            h = fnv(h, e->resp[j], sizeof(int32_t) * e->nr[j]);
        }
    }
    return h;
}
