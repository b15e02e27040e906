/* politune — measure and steer the political leaning of language models.
 *
 * The public C API. Every function that can fail returns a pt_status (PT_OK on success) and
 * leaves a message for pt_errmsg(); nothing in the library prints or exits.
 *
 *   pt_model *m;
 *   if (pt_model_load(&m, "Llama-3-8B-Instruct.Q8_0.gguf") != PT_OK) die(pt_errmsg());
 *   pt_engine *e;
 *   pt_engine_new(&e, m, 1, 4096);                       // one sequence slot, 4096 tokens
 *   int32_t *ids; size_t n;
 *   pt_tokenizer_encode(m->tok, "Hello", 5, true, &ids, &n);
 *   const float *logits;
 *   pt_engine_forward_one(e, 0, ids, (int)n, PT_LOGITS_LAST, &logits);   // (1, vocab)
 *   pt_engine_free(e); pt_model_free(m); free(ids);
 *
 * Modules (each header documents its functions):
 *   util/status.h         status codes, pt_error / pt_errmsg
 *   format/safetensors.h, format/gguf.h   bounds-checked checkpoint readers and writers
 *   model/model.h         loading GGUF files and Hugging Face directories
 *   model/adapter.h       PEFT LoRA adapters
 *   tokenizer/tokenizer.h, tokenizer/chat.h   tokenizers and chat templates
 *   engine/engine.h       batched forward pass with a key/value cache
 *   engine/generate.h     sampling, generation, log-probability scoring
 *   train/train.h         LoRA fine-tuning (DPO, SFT), checkpoints, metrics
 *   eval/questionnaire.h, eval/scoring.h, eval/compass.h, eval/report.h
 *                         Political Compass evaluation, scoring, charts and reports
 *   data/pipeline.h, data/judge.h   selection, synthesis and judging stages, judge clients
 *   serve/server.h        the OpenAI-compatible HTTP server
 */
#ifndef POLITUNE_H
#define POLITUNE_H

#define PT_VERSION "0.1.0"

#include "util/status.h"
#include "format/gguf.h"
#include "format/safetensors.h"
#include "model/model.h"
#include "model/adapter.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/chat.h"
#include "engine/engine.h"
#include "engine/generate.h"
#include "backend/cpu/matmul.h"
#include "backend/backend.h"
#include "train/train.h"
#include "eval/questionnaire.h"
#include "eval/scoring.h"
#include "eval/compass.h"
#include "eval/report.h"
#include "data/pipeline.h"
#include "data/judge.h"
#include "serve/server.h"

#endif
