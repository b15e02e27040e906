/* The benchmark scripts' choice of OpenBLAS core type (bench/common.sh bench_coretype):
 * SKYLAKEX only on a CPU whose flags list avx512f (it kills the PyTorch peer elsewhere),
 * HASWELL on AVX2 + FMA, nothing (OpenBLAS chooses) otherwise; checked on made-up cpuinfo
 * files for both kinds of machine and on this one's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"

static char *coretype(const char *cpuinfo) {
    char *out = NULL, *err = NULL;
    int rc = pt_test_run(&out, &err, "bash -c '. bench/common.sh && bench_coretype \"$0\"' '%s'", cpuinfo);
    CHECK_MSG(rc == 0, "bench_coretype failed: %s", err ? err : "");
    free(err);
    if (out) out[strcspn(out, "\n")] = 0;
    return out;
}

PT_TEST(test_bench_coretype) {
    const char *dir = pt_test_tmpdir();
    static const struct {
        const char *name, *flags, *want;
    } cases[] = {
        {"epyc", "fpu vme sse sse2 ssse3 fma sse4_1 sse4_2 avx f16c avx2 bmi2 sha_ni", "HASWELL"},
        {"xeon", "fpu sse2 fma avx avx2 avx512f avx512dq avx512cd avx512bw avx512vl", "SKYLAKEX"},
        {"avx512vl-only-name", "fpu sse2 fma avx avx2 avx512vl", "HASWELL"}, /* avx512f itself must be there */
        {"old", "fpu sse2 ssse3 sse4_2 avx", ""},
    };
    char path[1024];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char text[512];
        snprintf(text, sizeof text, "processor\t: 0\nvendor_id\t: X\nflags\t\t: %s\nbugs\t\t: avx512f_fake\n\nprocessor\t: 1\nflags\t\t: %s\n",
                 cases[i].flags, cases[i].flags);
        pt_test_write(dir, cases[i].name, text);
        snprintf(path, sizeof path, "%s/%s", dir, cases[i].name);
        char *got = coretype(path);
        CHECK_MSG(got && !strcmp(got, cases[i].want), "%s: got '%s', want '%s'", cases[i].name, got ? got : "(null)", cases[i].want);
        free(got);
    }
    /* this machine: SKYLAKEX exactly when its own flags list avx512f */
    char *have = NULL;
    pt_test_run(&have, NULL, "grep -m1 '^flags' /proc/cpuinfo | grep -cw avx512f");
    char *got = coretype("/proc/cpuinfo");
    CHECK(have && got);
    if (have && got) CHECK_MSG((atoi(have) > 0) == !strcmp(got, "SKYLAKEX"), "this CPU: avx512f %s, chose '%s'", have, got);
    free(have);
    free(got);
}
