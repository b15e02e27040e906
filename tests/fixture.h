/* Helpers for the reference fixtures in shared/fixtures/reference/<name>/: cases.json,
 * expected.safetensors, and comparisons with the README's tolerances. */
#ifndef PT_TESTS_FIXTURE_H
#define PT_TESTS_FIXTURE_H

#include <jansson.h>
#include <stdint.h>

#include "format/safetensors.h"

/* shared/fixtures/reference/<model> (rotating static buffers: a few may be live at once). */
const char *fx_dir(const char *model);
/* Loads cases.json of a reference model (NULL on failure, after reporting it). */
json_t *fx_cases(const char *model);
/* Reads a JSON array of integers into a malloc'd int32 array. */
int32_t *fx_ids(json_t *arr, int *n);
/* max |a - b| <= rel * max |b| over n floats; reports the worst element on failure. */
int fx_close(const char *what, const float *a, const float *b, int64_t n, double rel);
/* Saves into dir a rank-4, alpha-8 LoRA adapter for the model at model_path on the targets
 * mask (1 << pt_lora_target), its B matrices uniform in +-0.3 from seed (A as pt_adapter_new
 * draws it), so it changes the model's outputs. 1 on success. */
int fx_random_adapter(const char *model_path, const char *dir, uint64_t seed, unsigned targets);

#endif
