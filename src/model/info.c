/* The few facts about a loaded model that the public API (include/politune.h) gives out
 * without exposing struct pt_model: applications see the model as an opaque handle. */
#include "model/model.h"

const pt_tokenizer *pt_model_tokenizer(const pt_model *m) { return m ? m->tok : NULL; }

int pt_model_vocab_size(const pt_model *m) { return m ? m->cfg.vocab_size : 0; }
