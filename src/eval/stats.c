/* The bootstrap, the sign-flip permutation test and the item means behind attribution (see
 * stats.h for the method and why each choice was made). */
#include "eval/stats.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/rng.h"

/* Uniform integer in [0, n) without modulo bias (Lemire's multiply-shift with rejection). */
static int draw_below(pt_rng *r, int n) {
    uint64_t bound = (uint64_t)n, x = pt_rng_next(r) >> 32;
    uint64_t m = x * bound, low = m & 0xffffffffu;
    if (low < bound) {
        uint64_t t = (0x100000000ull - bound) % bound;
        while (low < t) {
            x = pt_rng_next(r) >> 32;
            m = x * bound;
            low = m & 0xffffffffu;
        }
    }
    return (int)(m >> 32);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The q-quantile of sorted v[0..n) with linear interpolation (R's type 7). */
static double quantile(const double *v, int n, double q) {
    double h = (n - 1) * q;
    int k = (int)floor(h);
    if (k >= n - 1) return v[n - 1];
    return v[k] + (h - k) * (v[k + 1] - v[k]);
}

void pt_stats_item_means(const double *contrib, int n_axes, int n_items, int n_variants, const bool *use_variant, double *cbar) {
    int nu = 0;
    for (int v = 0; v < n_variants; v++) nu += !use_variant || use_variant[v];
    for (int x = 0; x < n_axes; x++)
        for (int i = 0; i < n_items; i++) {
            const double *row = &contrib[((size_t)x * n_items + i) * n_variants];
            double s = 0;
            for (int v = 0; v < n_variants; v++)
                if (!use_variant || use_variant[v]) s += row[v];
            cbar[(size_t)x * n_items + i] = nu ? s / nu : 0;
        }
}

pt_status pt_stats_bootstrap(const double *contrib, const double *offsets, int n_axes, int n_items, int n_variants, const bool *use_variant,
                             int resamples, uint64_t seed, pt_interval *out) {
    if (resamples < 1) return pt_error(PT_ERR_ARG, "bootstrap: the number of resamples must be at least 1, got %d", resamples);
    if (n_axes < 1 || n_items < 1 || n_variants < 1) return pt_error(PT_ERR_ARG, "bootstrap: empty table");
    int *usable = malloc(sizeof(int) * (size_t)n_variants);
    double *cbar = malloc(sizeof(double) * (size_t)n_axes * n_items);
    double *reps = malloc(sizeof(double) * (size_t)n_axes * resamples); /* (n_axes, resamples) */
    if (!usable || !cbar || !reps) { free(usable); free(cbar); free(reps); return pt_error(PT_ERR_OOM, "out of memory"); }
    int nu = 0;
    for (int v = 0; v < n_variants; v++)
        if (!use_variant || use_variant[v]) usable[nu++] = v;
    pt_stats_item_means(contrib, n_axes, n_items, n_variants, use_variant, cbar);
    for (int x = 0; x < n_axes; x++) {
        double e = offsets ? offsets[x] : 0;
        for (int i = 0; i < n_items; i++) e += cbar[(size_t)x * n_items + i];
        out[x] = (pt_interval){e, NAN, NAN};
    }
    if (nu >= 2) {
        pt_rng rng;
        pt_rng_seed(&rng, seed);
        const double scale = sqrt((double)nu / (nu - 1));
        for (int b = 0; b < resamples; b++) {
            for (int x = 0; x < n_axes; x++) reps[(size_t)x * resamples + b] = 0;
            /* per item: nu draws of its variants, the same draws for every axis */
            for (int i = 0; i < n_items; i++)
                for (int k = 0; k < nu; k++) {
                    int v = usable[draw_below(&rng, nu)];
                    for (int x = 0; x < n_axes; x++)
                        reps[(size_t)x * resamples + b] += (contrib[((size_t)x * n_items + i) * n_variants + v] - cbar[(size_t)x * n_items + i]) / nu;
                }
        }
        for (int x = 0; x < n_axes; x++) {
            double *r = &reps[(size_t)x * resamples];
            qsort(r, (size_t)resamples, sizeof *r, cmp_double);
            /* r holds replicate - estimate; rescaled around the estimate */
            out[x].lo = out[x].estimate + scale * quantile(r, resamples, 0.025);
            out[x].hi = out[x].estimate + scale * quantile(r, resamples, 0.975);
        }
    }
    free(usable);
    free(cbar);
    free(reps);
    return PT_OK;
}

double pt_stats_sign_flip_p(const double *d, int n, int resamples, uint64_t seed, bool *exact) {
    double *nz = malloc(sizeof(double) * (size_t)(n > 0 ? n : 1));
    int m = 0;
    double t = 0, scale = 0;
    for (int i = 0; i < n; i++) {
        t += d[i];
        scale += fabs(d[i]);
        if (d[i] != 0 && nz) nz[m++] = d[i];
    }
    if (exact) *exact = true;
    if (!nz || m == 0) { free(nz); return 1.0; }
    /* sums that differ by rounding only count as equal to the observed one */
    const double tol = 1e-9 * scale, obs = fabs(t) - tol;
    double p;
    if (m <= PT_STATS_EXACT_MAX) {
        /* Gray code: each step flips one sign, so every pattern costs one addition */
        double s = 0;
        for (int k = 0; k < m; k++) s += nz[k];
        long hits = fabs(s) >= obs;
        const long total = 1L << m;
        for (long g = 1; g < total; g++) {
            int k = __builtin_ctzl((unsigned long)g);
            long gray = g ^ (g >> 1);
            s += (gray >> k & 1) ? -2 * nz[k] : 2 * nz[k];
            hits += fabs(s) >= obs;
        }
        p = (double)hits / (double)total;
    } else {
        if (exact) *exact = false;
        pt_rng rng;
        pt_rng_seed(&rng, seed);
        long hits = 0;
        for (int b = 0; b < resamples; b++) {
            double s = 0;
            for (int k = 0; k < m; k += 64) {
                uint64_t bits = pt_rng_next(&rng);
                for (int j = k; j < m && j < k + 64; j++) s += (bits >> (j - k) & 1) ? -nz[j] : nz[j];
            }
            hits += fabs(s) >= obs;
        }
        p = (1.0 + hits) / (1.0 + resamples);
    }
    free(nz);
    return p;
}
