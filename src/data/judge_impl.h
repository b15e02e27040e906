/* Private to the judge: the shared handle and the two kinds' entry points. */
#ifndef PT_DATA_JUDGE_IMPL_H
#define PT_DATA_JUDGE_IMPL_H

#include "data/judge.h"
#include "engine/batcher.h"

enum { JUDGE_HTTP = 1, JUDGE_LOCAL };

struct pt_judge {
    int kind;
    pt_judge_opts o;
    char desc[600];
    long retries, requests;
    /* HTTP */
    char *url;            /* .../chat/completions */
    char *auth;           /* "Authorization: Bearer ..." */
    char *model_name, *system;
    void *multi;          /* CURLM */
    /* in-process */
    pt_engine *e;
    pt_batcher *b;
    pt_chat_template chat;
    int32_t stop_ids[16];
    int n_stop_ids;
};

pt_status pt_judge_http_run(pt_judge *j, int n, const pt_judge_req *reqs, pt_judge_reply *replies);
void pt_judge_http_close(pt_judge *j);

#endif
