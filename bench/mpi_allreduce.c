/* The all-reduce alone, for bench/mpi.sh: times pt_dist_allreduce_sum_f32 (the call data-
 * parallel training makes once a step) on a buffer of --floats floats, --iters times after
 * two warm-up calls, and prints one JSON line from rank 0 with the median and minimum
 * seconds. Run under mpirun; alone it is a job of one and times nothing but the call. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dist/dist.h"
#include "util/clock.h"

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    long floats = 2637824, iters = 20;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--floats")) floats = strtol(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--iters")) iters = strtol(argv[i + 1], NULL, 10);
        else { fprintf(stderr, "usage: mpi_allreduce [--floats N] [--iters K]\n"); return 2; }
    }
    if (floats < 1 || iters < 1) { fprintf(stderr, "mpi_allreduce: --floats and --iters must be positive\n"); return 2; }
    if (pt_dist_init()) { fprintf(stderr, "mpi_allreduce: %s\n", pt_errmsg()); return 1; }
    float *v = calloc((size_t)floats, sizeof *v); /* (floats) */
    double *t = malloc(sizeof(double) * (size_t)iters);
    if (!v || !t) { fprintf(stderr, "mpi_allreduce: out of memory\n"); return 1; }
    for (int w = 0; w < 2; w++)
        if (pt_dist_allreduce_sum_f32(v, floats)) { fprintf(stderr, "mpi_allreduce: %s\n", pt_errmsg()); return 1; }
    for (long k = 0; k < iters; k++) {
        const double t0 = pt_now_s();
        if (pt_dist_allreduce_sum_f32(v, floats)) { fprintf(stderr, "mpi_allreduce: %s\n", pt_errmsg()); return 1; }
        t[k] = pt_now_s() - t0;
    }
    qsort(t, (size_t)iters, sizeof *t, cmp_double);
    if (pt_dist_rank() == 0)
        printf("{\"ranks\":%d,\"floats\":%ld,\"bytes\":%ld,\"iters\":%ld,\"median_s\":%.9g,\"min_s\":%.9g}\n", pt_dist_size(), floats, floats * 4, iters,
               t[iters / 2], t[0]);
    free(v);
    free(t);
    return 0;
}
