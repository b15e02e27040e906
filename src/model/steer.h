/* Steering vectors (activation addition): one vector of the model's width per layer, added to
 * the residual stream at that layer's output, times a scale, at every position. Built from
 * preference pairs by politune steer build (data/steer_build.c); stored as safetensors with
 * one float32 tensor "direction.L" of shape (dim) per layer L (0-based, the layer whose output
 * it is added to) and metadata n_layers and dim, so a vector made for another model is
 * refused by name. See docs/steering.md. */
#ifndef PT_MODEL_STEER_H
#define PT_MODEL_STEER_H

#include <stdbool.h>

#include "model/model.h"

typedef struct pt_steer {
    int n_layers, dim;
    float *v;      /* (n_layers, dim) */
    bool *has;     /* (n_layers) the layers the file holds a direction for */
} pt_steer;

pt_status pt_steer_new(pt_steer **out, int n_layers, int dim);
/* Reads a vector file and checks it against the model: its n_layers and every direction's
 * width must match (the message names the file). */
pt_status pt_steer_load(pt_steer **out, const char *path, const pt_model *m);
/* Writes the layers that have a direction (atomically); model_path is recorded. */
pt_status pt_steer_save(const pt_steer *s, const char *path, const char *model_path);
void pt_steer_free(pt_steer *s);

/* Splits "FILE[:SCALE][@LAYERS]" (LAYERS: "all", "5", "2-4", "1,3,6-7"; default: the layers in
 * the file) into a malloc'd path, the scale (1 when absent) and the layer list text (malloc'd
 * or NULL). */
pt_status pt_steer_parse_spec(const char *arg, char **path, float *scale, char **layers);
/* Turns a LAYERS text into a mask (n_layers); NULL text: every layer the vector has. */
pt_status pt_steer_layers(const pt_steer *s, const char *text, bool *mask);

#endif
