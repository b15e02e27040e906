/* politune steer build: a steering vector from preference pairs (Contrastive Activation
 * Addition): at the output of every layer, the mean residual-stream activation over the chosen
 * response's tokens minus the same over the rejected response's, averaged over the pairs. */
#ifndef PT_DATA_STEER_BUILD_H
#define PT_DATA_STEER_BUILD_H

#include "model/steer.h"
#include "train/data.h"

/* Uses the first max_pairs pairs of d (<= 0: all); progress (may be NULL) after each pair.
 * Every layer gets a direction (the caller keeps the ones it wants). */
pt_status pt_steer_build(pt_steer **out, const pt_model *m, const pt_dataset *d, int max_pairs, void (*progress)(void *user, int done, int n),
                         void *user);

#endif
