/* Training datasets, read into token ids.
 *
 * Files: a JSON array of records (the PoliTune chat JSON) or JSONL, one record per line.
 * Records, recognised by their keys:
 *   {"chosen": [messages], "rejected": [messages]}       PoliTune / conversational pairs
 *   {"prompt": P, "chosen": C, "rejected": R}            Hugging Face style pairs (P may be
 *                                                        a message list, C and R texts or
 *                                                        assistant message lists)
 *   {"prompt": P, "response": R} / {"prompt", "completion"}   SFT
 *   {"messages": [messages]}                             SFT: the last assistant turn
 *   {"prompt_ids", "chosen_ids", "rejected_ids"} / {"prompt_ids", "response_ids"}
 *                                                        pre-tokenized, taken verbatim
 * SFT reads the chosen side of pairs. Text prompts are rendered with a template (alpaca by
 * default: the paper's) and tokenised with BOS as the template and tokenizer say; responses
 * are tokenised without special tokens and end with the model's EOS token.
 *
 * Prompt + response longer than max_seq_len: the prompt is cut from the left first (down to
 * one token), then the response(s) from the right; such records are counted.
 * A malformed record is an error naming the file and line; with skip_bad it is skipped and
 * counted instead. */
#ifndef PT_TRAIN_DATA_H
#define PT_TRAIN_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tokenizer/chat.h"
#include "tokenizer/tokenizer.h"
#include "util/status.h"

typedef struct {
    int32_t *prompt;     /* (np) */
    int32_t *resp[2];    /* (nr[k]): chosen and rejected; resp[0] only for SFT */
    int np, nr[2];
    int line;            /* where the record starts in its file (1-based) */
} pt_example;

typedef struct {
    bool pairs;          /* preference pairs (DPO) or single responses (SFT) */
    int n;
    pt_example *ex;
    int n_skipped;       /* malformed records skipped (skip_bad) */
    int n_truncated;     /* records cut to max_seq_len */
    long n_cut_tokens;   /* tokens removed by truncation */
} pt_dataset;

typedef struct {
    bool pairs;
    const pt_tokenizer *tok;   /* NULL: only pre-tokenized records are readable */
    pt_chat_template tmpl;     /* PT_CHAT_NONE: the prompt text as it is */
    int32_t eos;               /* appended to text responses (-1: none) */
    int vocab;                 /* ids must be below it (0: unchecked) */
    int max_seq_len;           /* 0: no limit */
    bool skip_bad;
} pt_data_opts;

/* Limits of what a dataset may be: a whole file, and one JSONL line. */
#define PT_DATASET_MAX_BYTES (2ull << 30)
#define PT_DATASET_MAX_RECORD (16 << 20)
pt_status pt_dataset_load(pt_dataset *d, const char *path, const pt_data_opts *o);
/* The same from a buffer; `label` names it in messages (the fuzz target's entry point). */
pt_status pt_dataset_parse(pt_dataset *d, const char *text, size_t len, const char *label, const pt_data_opts *o);
void pt_dataset_free(pt_dataset *d);

/* A 64-bit FNV-1a digest of every token of the dataset, in order. */
uint64_t pt_dataset_hash(const pt_dataset *d);

#endif
