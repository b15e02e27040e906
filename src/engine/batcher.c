/* Continuous batching: the worker loop, job lifecycle and text publication (see batcher.h). */
#include "engine/batcher.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tokenizer/tokenizer.h"
#include "util/clock.h"

enum { JOB_QUEUED, JOB_PREFILL, JOB_DECODE, JOB_DONE };

struct pt_job {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int refs;
    /* the request (owned copies) */
    int32_t *prompt;
    int n_prompt;
    pt_sampling sampling;
    int max_new;
    int32_t *stop_ids;
    int n_stop_ids;
    char **stops;
    int n_stops;
    size_t max_stop_len;
    int top_logprobs;
    int n_choices;
    int32_t **choice_ids;
    int *n_choice;
    char **choice_text;
    float *adapter_scales; /* (the engine's adapters) or NULL: its defaults */
    /* shared state (under mu) */
    bool cancelled, finished;
    char *text;          /* published text */
    size_t text_len, text_cap;
    /* worker state */
    int state, slot;
    int32_t *gen;
    int n_gen;
    int32_t last;
    size_t emitted;      /* bytes of the decoded text already published */
    char *decoded;
    pt_rng rng;
    pt_token_logprob *lps;
    double *choice_lp;
    double t_submit, t_start, t_prefilled;
    char *error;
    pt_job_result res;
    pt_job *next;        /* queue link */
};

/* One step's jobs, (n_slots) each: a job's slot and kind are read before it runs, since a
 * finished job may be freed at once. */
typedef struct {
    int *bslot, *blen;          /* the forward batch: slots and token counts */
    const int32_t **bids;       /* and token arrays */
    pt_job **bjob;
    int *jslot;
    bool *jchoice, *done;
} step_scratch;

struct pt_batcher {
    pt_engine *e;
    const pt_model *m;
    int n_slots, n_ctx, V, max_queue;
    bool invariant;      /* one sequence per forward pass */
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
    pt_job *head, *tail;
    int n_queued, n_active;
    pt_job **slots;      /* (n_slots) */
    float *work;         /* (2 V) sampling scratch */
    step_scratch step;   /* the worker's per-step arrays */
    pt_batcher_stats stats;
};

/* ---- jobs ---------------------------------------------------------------------------------- */

static void job_free(pt_job *j) {
    free(j->prompt);
    free(j->adapter_scales);
    free(j->stop_ids);
    for (int i = 0; i < j->n_stops; i++) free(j->stops[i]);
    free(j->stops);
    for (int i = 0; i < j->n_choices; i++) {
        if (j->choice_ids) free(j->choice_ids[i]);
        if (j->choice_text) free(j->choice_text[i]);
    }
    free(j->choice_ids);
    free(j->n_choice);
    free(j->choice_text);
    free(j->choice_lp);
    free(j->text);
    free(j->gen);
    free(j->decoded);
    free(j->lps);
    free(j->error);
    pthread_mutex_destroy(&j->mu);
    pthread_cond_destroy(&j->cv);
    free(j);
}

void pt_job_release(pt_job *j) {
    if (!j) return;
    pthread_mutex_lock(&j->mu);
    int left = --j->refs;
    pthread_mutex_unlock(&j->mu);
    if (left == 0) job_free(j);
}

void pt_job_cancel(pt_job *j) {
    pthread_mutex_lock(&j->mu);
    j->cancelled = true;
    pthread_mutex_unlock(&j->mu);
}

/* Appends final text for readers (job mutex held by the caller). */
static bool publish_locked(pt_job *j, const char *s, size_t n) {
    if (j->text_len + n + 1 > j->text_cap) {
        size_t cap = j->text_cap ? j->text_cap : 256;
        while (cap < j->text_len + n + 1) cap *= 2;
        char *t = realloc(j->text, cap);
        if (!t) return false;
        j->text = t;
        j->text_cap = cap;
    }
    memcpy(j->text + j->text_len, s, n);
    j->text_len += n;
    j->text[j->text_len] = 0;
    return true;
}

static void publish(pt_job *j, const char *s, size_t n) {
    if (!n) return;
    pthread_mutex_lock(&j->mu);
    publish_locked(j, s, n);
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
}

static struct timespec deadline(int timeout_ms) {
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    if (timeout_ms > 0) {
        dl.tv_sec += timeout_ms / 1000;
        dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
        if (dl.tv_nsec >= 1000000000L) { dl.tv_sec++; dl.tv_nsec -= 1000000000L; }
    }
    return dl;
}

char *pt_job_poll(pt_job *j, size_t have, int timeout_ms, size_t *n, bool *done) {
    struct timespec dl = deadline(timeout_ms);
    pthread_mutex_lock(&j->mu);
    while (j->text_len <= have && !j->finished && timeout_ms != 0) {
        if (timeout_ms < 0) pthread_cond_wait(&j->cv, &j->mu);
        else if (pthread_cond_timedwait(&j->cv, &j->mu, &dl) != 0) break;
    }
    char *out = NULL;
    *n = 0;
    if (j->text_len > have) {
        *n = j->text_len - have;
        out = malloc(*n + 1);
        if (out) {
            memcpy(out, j->text + have, *n);
            out[*n] = 0;
        } else *n = 0;
    }
    *done = j->finished && (!out || have + *n == j->text_len);
    pthread_mutex_unlock(&j->mu);
    return out;
}

bool pt_job_wait(pt_job *j, int timeout_ms) {
    struct timespec dl = deadline(timeout_ms);
    pthread_mutex_lock(&j->mu);
    while (!j->finished && timeout_ms != 0) {
        if (timeout_ms < 0) pthread_cond_wait(&j->cv, &j->mu);
        else if (pthread_cond_timedwait(&j->cv, &j->mu, &dl) != 0) break;
    }
    bool done = j->finished;
    pthread_mutex_unlock(&j->mu);
    return done;
}

const pt_job_result *pt_job_result_get(const pt_job *j) { return &j->res; }

/* ---- submission ---------------------------------------------------------------------------- */

static pt_job *job_new(const pt_job_spec *s) {
    pt_job *j = calloc(1, sizeof *j);
    if (!j) return NULL;
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->cv, NULL);
    j->n_prompt = s->n_prompt;
    j->sampling = s->sampling;
    j->top_logprobs = s->top_logprobs > PT_MAX_TOP_LOGPROBS ? PT_MAX_TOP_LOGPROBS : s->top_logprobs;
    j->res.choice = -1;
    bool ok = (j->prompt = malloc(sizeof(int32_t) * (s->n_prompt > 0 ? s->n_prompt : 1))) != NULL;
    if (ok && s->n_prompt > 0) memcpy(j->prompt, s->prompt, sizeof(int32_t) * s->n_prompt);
    if (ok && s->n_stop_ids > 0) {
        ok = (j->stop_ids = malloc(sizeof(int32_t) * s->n_stop_ids)) != NULL;
        if (ok) memcpy(j->stop_ids, s->stop_ids, sizeof(int32_t) * s->n_stop_ids), j->n_stop_ids = s->n_stop_ids;
    }
    if (ok && s->n_stop_strings > 0) {
        ok = (j->stops = calloc((size_t)s->n_stop_strings, sizeof(char *))) != NULL;
        for (int i = 0; ok && i < s->n_stop_strings; i++) {
            ok = (j->stops[i] = strdup(s->stop_strings[i])) != NULL;
            j->n_stops = i + 1;
            if (ok && strlen(j->stops[i]) > j->max_stop_len) j->max_stop_len = strlen(j->stops[i]);
        }
    }
    if (ok && s->n_choices > 0) {
        j->n_choices = s->n_choices;
        ok = (j->choice_ids = calloc((size_t)s->n_choices, sizeof(int32_t *))) && (j->n_choice = calloc((size_t)s->n_choices, sizeof(int))) &&
             (j->choice_text = calloc((size_t)s->n_choices, sizeof(char *))) &&
             (j->choice_lp = calloc((size_t)s->n_choices, sizeof(double)));
        for (int k = 0; ok && k < s->n_choices; k++) {
            j->n_choice[k] = s->n_choice[k];
            ok = (j->choice_ids[k] = malloc(sizeof(int32_t) * (s->n_choice[k] > 0 ? s->n_choice[k] : 1))) != NULL &&
                 (j->choice_text[k] = strdup(s->choice_text ? s->choice_text[k] : "")) != NULL;
            if (ok && s->n_choice[k] > 0) memcpy(j->choice_ids[k], s->choice_ids[k], sizeof(int32_t) * s->n_choice[k]);
        }
    }
    if (!ok) {
        job_free(j);
        return NULL;
    }
    return j;
}

pt_status pt_batcher_submit(pt_batcher *b, const pt_job_spec *s, pt_job **out, bool *busy) {
    *out = NULL;
    *busy = false;
    if (s->n_prompt < 1) return pt_error(PT_ERR_ARG, "the prompt is empty (at least one token is needed)");
    int longest = 0;
    for (int k = 0; k < s->n_choices; k++) {
        if (s->n_choice[k] < 1) return pt_error(PT_ERR_ARG, "choice %d has no tokens", k);
        if (s->n_choice[k] > longest) longest = s->n_choice[k];
    }
    if (s->n_prompt + longest > b->n_ctx || (s->n_choices == 0 && s->n_prompt >= b->n_ctx && s->max_new_tokens > 0))
        return pt_error(PT_ERR_ARG, "the prompt has %d tokens%s; the context holds %d", s->n_prompt, longest ? " plus the longest choice" : "",
                        b->n_ctx);
    int n_adapters = pt_engine_n_adapters(b->e);
    if (s->adapter_scales && s->n_adapter_scales != n_adapters)
        return pt_error(PT_ERR_ARG, "the job gives %d adapter scales; the engine has %d adapters", s->n_adapter_scales, n_adapters);
    for (int k = 0; s->adapter_scales && k < n_adapters; k++)
        if (!isfinite(s->adapter_scales[k])) return pt_error(PT_ERR_ARG, "adapter scale %d is not a finite number", k + 1);
    pt_job *j = job_new(s);
    if (!j) return pt_error(PT_ERR_OOM, "out of memory");
    if (s->adapter_scales && n_adapters > 0) {
        if (!(j->adapter_scales = malloc(sizeof(float) * n_adapters))) { job_free(j); return pt_error(PT_ERR_OOM, "out of memory"); }
        memcpy(j->adapter_scales, s->adapter_scales, sizeof(float) * n_adapters);
    }
    int room = b->n_ctx - s->n_prompt;
    j->max_new = s->max_new_tokens < room ? s->max_new_tokens : room;
    if (j->max_new < 0) j->max_new = 0;
    pt_rng_seed(&j->rng, s->sampling.seed);
    if (j->top_logprobs >= 0 && s->n_choices == 0 && j->max_new > 0 &&
        !(j->lps = calloc((size_t)j->max_new, sizeof *j->lps))) {
        job_free(j);
        return pt_error(PT_ERR_OOM, "out of memory");
    }
    if (j->max_new > 0 && !(j->gen = malloc(sizeof(int32_t) * j->max_new))) {
        job_free(j);
        return pt_error(PT_ERR_OOM, "out of memory");
    }
    j->refs = 2; /* the submitter and the worker */
    j->t_submit = pt_now_s();
    pthread_mutex_lock(&b->mu);
    if (b->stop || (b->max_queue > 0 && b->n_queued >= b->max_queue + (b->n_slots - b->n_active))) {
        pthread_mutex_unlock(&b->mu);
        job_free(j);
        *busy = true;
        return PT_OK;
    }
    j->state = JOB_QUEUED;
    if (b->tail) b->tail->next = j;
    else b->head = j;
    b->tail = j;
    b->n_queued++;
    pthread_cond_signal(&b->cv);
    pthread_mutex_unlock(&b->mu);
    *out = j;
    return PT_OK;
}

/* ---- the worker ---------------------------------------------------------------------------- */

static void finish(pt_batcher *b, pt_job *j, const char *reason, const char *error) {
    j->res.finish = reason;
    j->res.n_prompt = j->n_prompt;
    j->res.n_generated = j->n_choices ? j->res.n_generated : j->n_gen;
    j->res.logprobs = j->lps;
    j->res.choice_logprob = j->choice_lp;
    double t = pt_now_s();
    j->res.queued_s = (j->t_start ? j->t_start : t) - j->t_submit;
    j->res.prefill_s = j->t_prefilled ? j->t_prefilled - j->t_start : 0;
    j->res.total_s = t - j->t_submit;
    pthread_mutex_lock(&j->mu);
    if (!j->n_choices && j->decoded) {
        /* the rest of the text (a held-back tail that no stop string completed) */
        size_t n = strlen(j->decoded);
        if (n > j->emitted) publish_locked(j, j->decoded + j->emitted, n - j->emitted);
    }
    if (!j->text) publish_locked(j, "", 0);
    j->res.text = j->text ? j->text : "";
    if (error) {
        j->error = strdup(error);
        j->res.error = j->error ? j->error : "error";
    }
    j->finished = true;
    j->state = JOB_DONE;
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
    pthread_mutex_lock(&b->mu);
    b->stats.jobs_done++;
    b->stats.tokens_generated += j->res.n_generated;
    pthread_mutex_unlock(&b->mu);
    pt_job_release(j);
}

static double row_lse(const float *row, int V) {
    float mx = row[0];
    for (int i = 1; i < V; i++)
        if (row[i] > mx) mx = row[i];
    double s = 0;
    for (int i = 0; i < V; i++) s += exp((double)row[i] - mx);
    return mx + log(s);
}

static void top_logprobs(const float *row, int V, double lse, int k, pt_token_logprob *lp) {
    lp->n_top = 0;
    for (int i = 0; i < V; i++) {
        float v = row[i];
        if (lp->n_top == k && (k == 0 || v <= row[lp->top_id[k - 1]])) continue;
        int pos = lp->n_top < k ? lp->n_top++ : k - 1;
        while (pos > 0 && row[lp->top_id[pos - 1]] < v) {
            lp->top_id[pos] = lp->top_id[pos - 1];
            pos--;
        }
        lp->top_id[pos] = i;
    }
    for (int i = 0; i < lp->n_top; i++) lp->top_logprob[i] = (float)(row[lp->top_id[i]] - lse);
}

/* Bytes at the end of s that may still change: an unfinished UTF-8 sequence or a
 * replacement character standing in for one. */
static size_t unstable_tail(const char *s, size_t n) {
    if (n >= 3 && !memcmp(s + n - 3, "\xEF\xBF\xBD", 3)) return 3;
    for (size_t k = 1; k <= 3 && k <= n; k++) {
        unsigned char c = (unsigned char)s[n - k];
        if ((c & 0xC0) == 0x80) continue;
        size_t need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
        return need > k ? k : 0;
    }
    return 0;
}

/* Length of the longest suffix of s that is a proper prefix of a stop string. */
static size_t stop_prefix(const pt_job *j, const char *s, size_t n) {
    size_t best = 0;
    for (int i = 0; i < j->n_stops; i++) {
        size_t L = strlen(j->stops[i]);
        for (size_t k = L > 1 ? L - 1 : 0; k > best; k--)
            if (k <= n && !memcmp(s + n - k, j->stops[i], k)) { best = k; break; }
    }
    return best;
}

/* One sampled token for a generating job; true when the job is finished. */
static bool step_generate(pt_batcher *b, pt_job *j, const float *row) {
    const int V = b->V;
    int32_t tok = pt_sample(row, V, &j->sampling, &j->rng, b->work);
    for (int i = 0; i < j->n_stop_ids; i++)
        if (tok == j->stop_ids[i]) { finish(b, j, "stop", NULL); return true; }
    if (j->lps) {
        pt_token_logprob *lp = &j->lps[j->n_gen];
        double lse = row_lse(row, V);
        lp->token = tok;
        lp->logprob = (float)(row[tok] - lse);
        top_logprobs(row, V, lse, j->top_logprobs, lp);
    }
    j->gen[j->n_gen++] = tok;
    j->last = tok;
    const pt_tokenizer *tk = b->m->tok;
    if (tk) {
        char *text = NULL;
        if (pt_tokenizer_decode(tk, j->gen, (size_t)j->n_gen, true, &text) != PT_OK) {
            finish(b, j, "error", pt_errmsg());
            return true;
        }
        free(j->decoded);
        j->decoded = text;
        size_t n = strlen(text), final;
        const char *hit = NULL;
        size_t from = j->emitted > j->max_stop_len ? j->emitted - j->max_stop_len : 0;
        for (int i = 0; i < j->n_stops; i++) {
            const char *h = strstr(text + from, j->stops[i]);
            if (h && (!hit || h < hit)) hit = h;
        }
        if (hit) final = (size_t)(hit - text) > j->emitted ? (size_t)(hit - text) : j->emitted;
        else {
            size_t u = unstable_tail(text, n), p = stop_prefix(j, text, n);
            final = n - (u > p ? u : p);
        }
        if (final > j->emitted) {
            publish(j, text + j->emitted, final - j->emitted);
            j->emitted = final;
        }
        if (hit) {
            text[final] = 0;
            finish(b, j, "stop", NULL);
            return true;
        }
    }
    if (j->n_gen >= j->max_new) {
        finish(b, j, "length", NULL);
        return true;
    }
    return false;
}

/* Picks the reply of a choice job from the summed log-probabilities. */
static void finish_choice(pt_batcher *b, pt_job *j) {
    int pick = 0;
    for (int k = 1; k < j->n_choices; k++)
        if (j->choice_lp[k] > j->choice_lp[pick]) pick = k;
    if (j->sampling.temperature > 0) {
        double mx = j->choice_lp[pick] / j->sampling.temperature, tot = 0;
        for (int k = 0; k < j->n_choices; k++) tot += exp(j->choice_lp[k] / j->sampling.temperature - mx);
        double u = pt_rng_double(&j->rng) * tot, acc = 0;
        for (int k = 0; k < j->n_choices; k++) {
            acc += exp(j->choice_lp[k] / j->sampling.temperature - mx);
            if (u < acc) { pick = k; break; }
        }
    }
    j->res.choice = pick;
    j->res.n_generated = j->n_choice[pick];
    publish(j, j->choice_text[pick], strlen(j->choice_text[pick]));
    finish(b, j, "stop", NULL);
}

/* Adds the log-probabilities of the choices' later tokens (one forward per choice on top of
 * the prefilled prompt, then back to the prompt). */
static pt_status score_rest(pt_batcher *b, pt_job *j) {
    for (int k = 0; k < j->n_choices; k++) {
        int n = j->n_choice[k];
        if (n < 2) continue;
        const float *lg;
        PT_TRY(pt_engine_forward_one(b->e, j->slot, j->choice_ids[k], n - 1, PT_LOGITS_ALL, &lg));
        for (int t = 0; t < n - 1; t++) {
            const float *row = lg + (size_t)t * b->V;
            j->choice_lp[k] += row[j->choice_ids[k][t + 1]] - row_lse(row, b->V);
        }
        PT_TRY(pt_engine_truncate(b->e, j->slot, j->n_prompt));
    }
    return PT_OK;
}

/* Moves queued jobs into free slots; false when the batcher is stopping. Waits while there
 * is nothing to do. */
static bool take_queued(pt_batcher *b) {
    pthread_mutex_lock(&b->mu);
    for (;;) {
        for (int s = 0; s < b->n_slots && b->head; s++) {
            if (b->slots[s]) continue;
            pt_job *j = b->head;
            b->head = j->next;
            if (!b->head) b->tail = NULL;
            j->next = NULL;
            b->n_queued--;
            j->slot = s;
            /* the worker owns the engine: the slot takes the job's adapter mix here */
            pt_engine_set_slot_scales(b->e, s, j->adapter_scales);
            j->state = JOB_PREFILL;
            j->t_start = pt_now_s();
            b->slots[s] = j;
            b->n_active++;
        }
        if (b->stop || b->n_active > 0) break;
        pthread_cond_wait(&b->cv, &b->mu);
    }
    bool go = !b->stop;
    pthread_mutex_unlock(&b->mu);
    return go;
}

static void release_slot(pt_batcher *b, int s) {
    pthread_mutex_lock(&b->mu);
    b->slots[s] = NULL;
    b->n_active--;
    pthread_mutex_unlock(&b->mu);
}

/* The jobs of this step into b->step; cancelled and empty ones are finished here. Returns
 * their number. */
static int collect_jobs(pt_batcher *b) {
    step_scratch *sc = &b->step;
    int nb = 0;
    for (int s = 0; s < b->n_slots; s++) {
        pt_job *j = b->slots[s];
        if (!j) continue;
        pthread_mutex_lock(&j->mu);
        bool cancelled = j->cancelled;
        pthread_mutex_unlock(&j->mu);
        if (cancelled || (j->state == JOB_PREFILL && j->max_new == 0 && !j->n_choices)) {
            finish(b, j, cancelled ? "cancelled" : "length", NULL);
            release_slot(b, s);
            continue;
        }
        sc->jslot[nb] = s;
        sc->jchoice[nb] = j->n_choices > 0;
        sc->done[nb] = false;
        sc->bjob[nb++] = j;
    }
    return nb;
}

/* Choice jobs are scored alone: a sequence's logits depend, in their last bits, on what else
 * shares its batch, and scores must repeat exactly when a run is resumed. Returns the prompt
 * tokens prefilled. */
static long run_choice_jobs(pt_batcher *b, int nb) {
    step_scratch *sc = &b->step;
    long prefilled = 0;
    for (int k = 0; k < nb; k++) {
        pt_job *j = sc->bjob[k];
        if (!sc->jchoice[k]) continue;
        prefilled += j->n_prompt;
        sc->done[k] = true;
        const float *row;
        pt_status st = pt_engine_truncate(b->e, j->slot, 0);
        if (!st) st = pt_engine_forward_one(b->e, j->slot, j->prompt, j->n_prompt, PT_LOGITS_LAST, &row);
        if (st) { finish(b, j, "error", pt_errmsg()); continue; }
        j->t_prefilled = pt_now_s();
        double lse = row_lse(row, b->V);
        for (int c = 0; c < j->n_choices; c++) j->choice_lp[c] = row[j->choice_ids[c][0]] - lse;
        if ((st = score_rest(b, j))) finish(b, j, "error", pt_errmsg());
        else finish_choice(b, j);
    }
    return prefilled;
}

/* Generating jobs: one forward pass for all of them (one each when batch-invariant), then a
 * token each. Returns the prompt tokens prefilled. */
static long run_generating_jobs(pt_batcher *b, int nb) {
    step_scratch *sc = &b->step;
    long prefilled = 0;
    for (int k0 = 0; k0 < nb;) {
        int n = 0, first = -1;
        for (int k = k0; k < nb && (!b->invariant || n == 0); k++) {
            k0 = k + 1;
            if (sc->jchoice[k]) continue;
            pt_job *j = sc->bjob[k];
            if (first < 0) first = k;
            sc->bslot[n] = j->slot;
            if (j->state == JOB_PREFILL) {
                pt_engine_truncate(b->e, j->slot, 0);
                sc->bids[n] = j->prompt;
                sc->blen[n] = j->n_prompt;
                prefilled += j->n_prompt;
            } else {
                sc->bids[n] = &j->last;
                sc->blen[n] = 1;
            }
            n++;
        }
        if (n == 0) break;
        const float *logits = NULL;
        pt_batch batch = {n, sc->bslot, (const int32_t *const *)sc->bids, sc->blen};
        pt_status st = pt_engine_forward(b->e, &batch, PT_LOGITS_LAST, &logits);
        for (int k = first, row = 0; k < k0; k++) {
            if (sc->jchoice[k]) continue;
            pt_job *j = sc->bjob[k];
            if (st) { finish(b, j, "error", pt_errmsg()); sc->done[k] = true; row++; continue; }
            if (j->state == JOB_PREFILL) j->t_prefilled = pt_now_s();
            j->state = JOB_DECODE;
            sc->done[k] = step_generate(b, j, logits + (size_t)row++ * b->V);
        }
    }
    return prefilled;
}

/* Stopping: everything still queued or running is cancelled. */
static void cancel_all(pt_batcher *b) {
    for (int s = 0; s < b->n_slots; s++)
        if (b->slots[s]) {
            finish(b, b->slots[s], "cancelled", NULL);
            b->slots[s] = NULL;
        }
    pthread_mutex_lock(&b->mu);
    pt_job *q = b->head;
    b->head = b->tail = NULL;
    b->n_queued = 0;
    b->n_active = 0;
    pthread_mutex_unlock(&b->mu);
    while (q) {
        pt_job *nx = q->next;
        finish(b, q, "cancelled", NULL);
        q = nx;
    }
}

/* The batching thread: each step takes queued jobs into free slots, scores the choice jobs,
 * advances the generating ones by a token, and frees the slots of the jobs that ended. */
static void *worker(void *arg) {
    pt_batcher *b = arg;
    step_scratch *sc = &b->step;
    while (take_queued(b)) {
        int nb = collect_jobs(b);
        if (nb == 0) continue;
        long prefilled = run_choice_jobs(b, nb) + run_generating_jobs(b, nb);
        pthread_mutex_lock(&b->mu);
        for (int k = 0; k < nb; k++)
            if (sc->done[k]) {
                b->slots[sc->jslot[k]] = NULL;
                b->n_active--;
            }
        b->stats.steps++;
        b->stats.tokens_prefilled += prefilled;
        pthread_mutex_unlock(&b->mu);
    }
    cancel_all(b);
    return NULL;
}

static void step_scratch_free(step_scratch *sc) {
    free(sc->bslot);
    free(sc->blen);
    free(sc->bids);
    free(sc->bjob);
    free(sc->jslot);
    free(sc->jchoice);
    free(sc->done);
}

/* The per-step arrays, once: the worker thread has no caller to report an allocation to. */
static pt_status step_scratch_new(step_scratch *sc, int S) {
    const size_t n = (size_t)S;
    sc->bslot = malloc(sizeof(int) * n);
    sc->blen = malloc(sizeof(int) * n);
    sc->bids = malloc(sizeof(int32_t *) * n);
    sc->bjob = malloc(sizeof(pt_job *) * n);
    sc->jslot = malloc(sizeof(int) * n);
    sc->jchoice = malloc(sizeof(bool) * n);
    sc->done = malloc(sizeof(bool) * n);
    if (sc->bslot && sc->blen && sc->bids && sc->bjob && sc->jslot && sc->jchoice && sc->done) return PT_OK;
    step_scratch_free(sc);
    return pt_error(PT_ERR_OOM, "batcher: out of memory (%zu bytes of per-step arrays for %d slots)",
                    n * (3 * sizeof(int) + sizeof(int32_t *) + sizeof(pt_job *) + 2 * sizeof(bool)), S);
}

/* The batcher's memory, itself included (the thread and its locks are gone). */
static void buffers_free(pt_batcher *b) {
    free(b->slots);
    free(b->work);
    step_scratch_free(&b->step);
    free(b);
}

pt_status pt_batcher_new(pt_batcher **out, pt_engine *e, int max_queue, bool batch_invariant) {
    *out = NULL;
    pt_batcher *b = calloc(1, sizeof *b);
    if (!b) return pt_error(PT_ERR_OOM, "out of memory");
    b->e = e;
    b->m = pt_engine_model(e);
    b->n_slots = pt_engine_n_slots(e);
    b->n_ctx = pt_engine_n_ctx(e);
    b->V = b->m->cfg.vocab_size;
    b->max_queue = max_queue;
    b->invariant = batch_invariant;
    b->slots = calloc((size_t)b->n_slots, sizeof *b->slots);
    b->work = malloc(sizeof(float) * 2 * (size_t)b->V);
    pt_status st = b->slots && b->work ? step_scratch_new(&b->step, b->n_slots)
                                       : pt_error(PT_ERR_OOM, "batcher: out of memory (%zu bytes of slots and sampling scratch)",
                                                  sizeof *b->slots * (size_t)b->n_slots + sizeof(float) * 2 * (size_t)b->V);
    if (st) {
        buffers_free(b);
        return st;
    }
    pthread_mutex_init(&b->mu, NULL);
    pthread_cond_init(&b->cv, NULL);
    if (pthread_create(&b->thread, NULL, worker, b) != 0) {
        pthread_mutex_destroy(&b->mu);
        pthread_cond_destroy(&b->cv);
        buffers_free(b);
        return pt_error(PT_ERR_INTERNAL, "cannot start the batching thread");
    }
    *out = b;
    return PT_OK;
}

void pt_batcher_free(pt_batcher *b) {
    if (!b) return;
    pthread_mutex_lock(&b->mu);
    b->stop = true;
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
    pthread_join(b->thread, NULL);
    pthread_mutex_destroy(&b->mu);
    pthread_cond_destroy(&b->cv);
    buffers_free(b);
}

void pt_batcher_get_stats(pt_batcher *b, pt_batcher_stats *s) {
    pthread_mutex_lock(&b->mu);
    *s = b->stats;
    s->active = b->n_active;
    s->queued = b->n_queued;
    pthread_mutex_unlock(&b->mu);
}

pt_status pt_batcher_choice_tokens(const pt_tokenizer *tok, const char *text_before, bool add_special, const char *const *choices,
                                   int n_choices, int32_t **prefix, int *n_prefix, int32_t ***ids, int **n) {
    *prefix = NULL;
    *ids = NULL;
    *n = NULL;
    *n_prefix = 0;
    if (n_choices < 1) return pt_error(PT_ERR_ARG, "no choices");
    int32_t *p = NULL, **w = calloc((size_t)n_choices, sizeof *w);
    size_t np = 0, *nw = calloc((size_t)n_choices, sizeof *nw);
    pt_status st = w && nw ? pt_tokenizer_encode(tok, text_before, strlen(text_before), add_special, &p, &np) : pt_error(PT_ERR_OOM, "out of memory");
    size_t shared = np, lb = strlen(text_before);
    for (int k = 0; !st && k < n_choices; k++) {
        size_t lc = strlen(choices[k]);
        if (!lc) { st = pt_error(PT_ERR_ARG, "choice %d is empty", k); break; }
        char *joint = malloc(lb + lc + 1);
        if (!joint) { st = pt_error(PT_ERR_OOM, "out of memory"); break; }
        memcpy(joint, text_before, lb);
        memcpy(joint + lb, choices[k], lc + 1);
        st = pt_tokenizer_encode(tok, joint, lb + lc, add_special, &w[k], &nw[k]);
        free(joint);
        if (st) break;
        size_t l = 0;
        while (l < np && l < nw[k] && p[l] == w[k][l]) l++;
        if (l > nw[k] - 1) l = nw[k] - 1;
        if (l < shared) shared = l;
    }
    if (!st && shared < 1) st = pt_error(PT_ERR_ARG, "choice scoring needs a prompt of at least one token");
    int32_t **out = NULL;
    int *on = NULL;
    if (!st) {
        out = calloc((size_t)n_choices, sizeof *out);
        on = calloc((size_t)n_choices, sizeof *on);
        if (!out || !on) st = pt_error(PT_ERR_OOM, "out of memory");
        for (int k = 0; !st && k < n_choices; k++) {
            on[k] = (int)(nw[k] - shared);
            if (!(out[k] = malloc(sizeof(int32_t) * on[k]))) { st = pt_error(PT_ERR_OOM, "out of memory"); break; }
            memcpy(out[k], w[k] + shared, sizeof(int32_t) * on[k]);
        }
    }
    if (!st) {
        *prefix = p;
        *n_prefix = (int)shared;
        *ids = out;
        *n = on;
        p = NULL;
    } else if (out) {
        for (int k = 0; k < n_choices; k++) free(out[k]);
        free(out);
        free(on);
    }
    for (int k = 0; w && k < n_choices; k++) free(w[k]);
    free(w);
    free(nw);
    free(p);
    return st;
}

pt_status pt_batcher_encode_chat(const pt_tokenizer *tok, pt_chat_template t, const pt_chat_msg *msgs, int n_msgs, char **text,
                                 int32_t **ids, int *n_ids, bool *add_special) {
    *text = NULL;
    *ids = NULL;
    *n_ids = 0;
    if (t == PT_CHAT_NONE) t = PT_CHAT_ALPACA;
    int32_t bos = pt_tokenizer_bos(tok);
    const char *bos_text = bos >= 0 ? pt_tokenizer_token_text(tok, bos) : NULL;
    PT_TRY(pt_chat_render(t, msgs, n_msgs, true, bos_text, text));
    *add_special = t == PT_CHAT_ALPACA;
    size_t n = 0;
    pt_status st = pt_tokenizer_encode(tok, *text, strlen(*text), *add_special, ids, &n);
    if (st) {
        free(*text);
        *text = NULL;
        return st;
    }
    *n_ids = (int)n;
    return PT_OK;
}
