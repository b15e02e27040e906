/* Fixture helpers shared by the parity tests. */
#include "fixture.h"

#include <math.h>
#include <stdlib.h>

#include "test.h"

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
