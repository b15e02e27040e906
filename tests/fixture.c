/* Fixture helpers shared by the parity tests. */
#include "fixture.h"

#include <math.h>
#include <stdlib.h>

#include "internal.h"
#include "test.h"
#include "util/rng.h"

const char *fx_dir(const char *model) {
    static char bufs[8][512];
    static int k;
    char rel[256];
    snprintf(rel, sizeof rel, "fixtures/reference/%s", model);
    char *b = bufs[k++ % 8];
    snprintf(b, sizeof bufs[0], "%s", pt_test_shared(rel));
    return b;
}

json_t *fx_cases(const char *model) {
    char rel[256];
    snprintf(rel, sizeof rel, "fixtures/reference/%s/cases.json", model);
    json_error_t err;
    json_t *c = json_load_file(pt_test_shared(rel), 0, &err);
    if (!c) pt_test_fail(__FILE__, __LINE__, "cannot read %s: %s", pt_test_shared(rel), err.text);
    return c;
}

int32_t *fx_ids(json_t *arr, int *n) {
    *n = (int)json_array_size(arr);
    int32_t *ids = malloc(sizeof(int32_t) * (*n ? *n : 1));
    for (int i = 0; i < *n; i++) ids[i] = (int32_t)json_integer_value(json_array_get(arr, i));
    return ids;
}

int fx_close(const char *what, const float *a, const float *b, int64_t n, double rel) {
    double mx = 0, worst = -1;
    int64_t wi = 0;
    for (int64_t i = 0; i < n; i++) mx = fmax(mx, fabs(b[i]));
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= worst)) { worst = d; wi = i; }
    }
    if (n > 0 && !(worst <= rel * mx)) {
        pt_test_fail(__FILE__, __LINE__, "%s: element %lld is %.7g, expected %.7g (|diff| %.3g > %.3g = %.0e x max %.4g)", what,
                     (long long)wi, a[wi], b[wi], worst, rel * mx, rel, mx);
        return 0;
    }
    return 1;
}

int fx_random_adapter(const char *model_path, const char *dir, uint64_t seed, unsigned targets) {
    pt_model *m = NULL;
    pt_adapter *a = NULL;
    int ok = !pt_model_load(&m, model_path) && !pt_adapter_new(&a, m, 4, 8.0f, targets, false, 0, seed);
    if (ok) {
        pt_rng rng;
        pt_rng_seed(&rng, seed + 100);
        for (int l = 0; l < m->cfg.n_layers; l++)
            for (int t = 0; t < PT_LT_HEAD; t++) {
                pt_lora_pair *p = (pt_lora_pair *)pt_adapter_pair(a, l, (pt_lora_target)t);
                for (int64_t i = 0; p && i < (int64_t)p->out * a->r; i++) p->B[i] = (float)(0.3 * (2.0 * pt_rng_double(&rng) - 1.0));
            }
        ok = !pt_adapter_save(a, dir);
    }
    pt_adapter_free(a);
    pt_model_free(m);
    return ok;
}
