/* Every internal header the tests reach into, beside the public include/politune.h: the
 * tests check internals (struct pt_model, kernels, training) that the public API hides. */
#ifndef PT_TESTS_INTERNAL_H
#define PT_TESTS_INTERNAL_H

#include "politune.h"
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
