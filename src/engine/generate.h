/* Sampling, generation and log-probability scoring on top of the engine. */
#ifndef PT_ENGINE_GENERATE_H
#define PT_ENGINE_GENERATE_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/engine.h"
#include "util/rng.h"

/* pt_sampling, pt_gen_params, pt_gen_result, pt_generate and pt_score are public:
 * include/politune.h. */

/* Picks a token from a row of logits (V). `work` needs room for 2*V floats (or NULL: the
 * function allocates, and returns -1 with PT_ERR_OOM's message when it cannot). Greedy picks
 * the first maximal logit, as torch.argmax does. */
int32_t pt_sample(const float *logits, int vocab, const pt_sampling *p, pt_rng *rng, float *work);

#endif
