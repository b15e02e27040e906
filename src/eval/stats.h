/* Uncertainty of compass positions and of the shifts between runs.
 *
 * Everything works on "contribution tables": for one axis, c[i][v] is what item i's answer
 * under template variant v adds to the position (w[i][answer] / divisor, 0 when the variant
 * gave no valid answer). The reported position is offset + mean over variants of
 * sum_i c[i][v], so it is also offset + sum_i cbar[i], with cbar[i] the item's mean over
 * variants; that identity is what makes per-item attribution exact.
 *
 *   - Interval: a stratified nonparametric bootstrap. The propositions are the instrument and
 *     stay fixed; within each proposition its answers under the templates x option orders are
 *     resampled with replacement (as many draws as variants), and the replicate position is
 *     recomputed. Resampling n values from a stratum of n underestimates the variance of its
 *     mean by (n-1)/n, so each replicate's deviation from the estimate is scaled by
 *     sqrt(n/(n-1)) (the rescaling bootstrap of Rao and Wu) before the percentile interval is
 *     taken. Seeded: the same seed gives the same interval on any machine.
 *   - Shift interval: the same bootstrap on the paired differences c_B[i][v] - c_A[i][v]
 *     (the same draw of variants for both runs, since a template is shared by both).
 *   - Significance: a paired sign-flip permutation test over propositions on d[i] = cbar_B[i]
 *     - cbar_A[i]: under "the run label does not matter", each item's difference is as likely
 *     to have either sign. Two-sided, statistic |sum_i d[i]|; exact enumeration of all 2^m
 *     sign patterns when the m non-zero differences are few enough, else random flips with
 *     p = (1 + hits) / (1 + resamples).
 *   - Attribution: d[i] is item i's share of the shift; the d[i] add up to the shift. */
#ifndef PT_EVAL_STATS_H
#define PT_EVAL_STATS_H

#include <stdbool.h>
#include <stdint.h>

#include "util/status.h"

/* Default number of bootstrap resamples and random sign flips, and the seed. */
#define PT_STATS_RESAMPLES 2000
#define PT_STATS_SEED 0
/* Up to this many non-zero item differences the permutation test enumerates exactly. */
#define PT_STATS_EXACT_MAX 20

typedef struct {
    double estimate;   /* offset + sum_i cbar[i] (not rounded) */
    double lo, hi;     /* the 95% percentile interval; NAN when it cannot be formed */
} pt_interval;

/* Bootstrap intervals for n_axes axes at once (the axes share the resampled variants).
 * contrib: (n_axes, n_items, n_variants); offsets: (n_axes), may be NULL for 0 (shifts).
 * use_variant: (n_variants) which variants count (those with any valid answer), NULL: all.
 * With fewer than two usable variants the interval is NAN (there is nothing to resample),
 * the estimate still set. resamples >= 1. out: (n_axes). */
pt_status pt_stats_bootstrap(const double *contrib, const double *offsets, int n_axes, int n_items, int n_variants, const bool *use_variant,
                             int resamples, uint64_t seed, pt_interval *out);

/* The paired sign-flip p-value of sum_i d[i] (see above); resamples is used only when there
 * are more than PT_STATS_EXACT_MAX non-zero differences. *exact (may be NULL) tells which
 * was done. All differences zero: p = 1. */
double pt_stats_sign_flip_p(const double *d, int n, int resamples, uint64_t seed, bool *exact);

/* Item means over the usable variants: cbar (n_axes, n_items) from contrib (n_axes,
 * n_items, n_variants). */
void pt_stats_item_means(const double *contrib, int n_axes, int n_items, int n_variants, const bool *use_variant, double *cbar);

#endif
