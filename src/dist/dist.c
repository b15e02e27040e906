/* The job's ranks (see dist.h): MPI when the build has it and a launcher started the
 * process, else a job of one. Collectives run on MPI_COMM_WORLD with errors returned rather
 * than fatal, so that a failed call becomes a pt_status with MPI's own reason. */
#include "dist/dist.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/clock.h"

#ifdef PT_HAVE_MPI
#include <mpi.h>
#endif

static bool started;    /* pt_dist_init ran */
static bool mpi_on;     /* MPI_Init ran: collectives go through MPI */
static int my_rank, n_ranks = 1;
static double comm_s;   /* time inside collectives */
/* The failure being reported: every rank knows of it (no abort needed); whether this rank
 * prints it. */
static bool err_known, err_quiet;

/* The rank count a launcher announced in the environment, 0 if none did. */
static long launcher_size(void) {
    const char *names[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        const char *v = getenv(names[i]);
        if (v && *v) return strtol(v, NULL, 10);
    }
    /* PMIx sets the rank but not always the size */
    return getenv("PMIX_RANK") ? 1 : 0;
}

#ifdef PT_HAVE_MPI
static void finish(void) {
    int done = 0;
    MPI_Finalized(&done);
    if (!done) MPI_Finalize();
}

static pt_status mpi_fail(int rc, const char *what) {
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(rc, msg, &len) != MPI_SUCCESS) snprintf(msg, sizeof msg, "error %d", rc);
    return pt_error(PT_ERR_IO, "rank %d of %d: %s failed: %s", my_rank, n_ranks, what, msg);
}
#endif

pt_status pt_dist_init(void) {
    if (started) return PT_OK;
    started = true;
    const long announced = launcher_size();
#ifdef PT_HAVE_MPI
    if (announced <= 0) return PT_OK;
    int provided = 0;
    /* OpenMP threads compute between collectives; only the main thread calls MPI */
    int rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
    if (rc != MPI_SUCCESS) return pt_error(PT_ERR_IO, "MPI_Init failed (error %d): the MPI launcher and this build's MPI library disagree?", rc);
    mpi_on = true;
    atexit(finish);
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &my_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &n_ranks);
    return PT_OK;
#else
    if (announced > 1) {
        /* every rank finds this alone: the first says it */
        const char *r = getenv("OMPI_COMM_WORLD_RANK") ? getenv("OMPI_COMM_WORLD_RANK") : getenv("PMI_RANK");
        err_known = true, err_quiet = r && strtol(r, NULL, 10) > 0;
        return pt_error(PT_ERR_UNSUPPORTED,
                        "started by an MPI launcher as one of %ld ranks, but this politune was built without MPI (`politune --version`: mpi=no): "
                        "install libopenmpi-dev and rebuild (make deps && make), or run a single process",
                        announced);
    }
    return PT_OK;
#endif
}

int pt_dist_rank(void) { return my_rank; }
int pt_dist_size(void) { return n_ranks; }
const char *pt_dist_transport(void) { return mpi_on ? "mpi" : "none"; }

pt_status pt_dist_allreduce_sum_f32(float *v, int64_t n) {
    if (!mpi_on || n_ranks == 1) return PT_OK;
#ifdef PT_HAVE_MPI
    const double t0 = pt_now_s();
    /* MPI counts are int: large buffers go in pieces */
    for (int64_t off = 0; off < n; off += 1 << 30) {
        int cnt = (int)(n - off < (1 << 30) ? n - off : (1 << 30));
        int rc = MPI_Allreduce(MPI_IN_PLACE, v + off, cnt, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS) return mpi_fail(rc, "the all-reduce of float32 gradients");
    }
    comm_s += pt_now_s() - t0;
#endif
    return PT_OK;
}

pt_status pt_dist_allreduce_sum_f64(double *v, int64_t n) {
    if (!mpi_on || n_ranks == 1) return PT_OK;
#ifdef PT_HAVE_MPI
    const double t0 = pt_now_s();
    for (int64_t off = 0; off < n; off += 1 << 30) {
        int cnt = (int)(n - off < (1 << 30) ? n - off : (1 << 30));
        int rc = MPI_Allreduce(MPI_IN_PLACE, v + off, cnt, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS) return mpi_fail(rc, "the all-reduce of float64 sums");
    }
    comm_s += pt_now_s() - t0;
#endif
    return PT_OK;
}

pt_status pt_dist_bcast(void *buf, size_t bytes, int root) {
    if (!mpi_on || n_ranks == 1) return PT_OK;
#ifdef PT_HAVE_MPI
    const double t0 = pt_now_s();
    for (size_t off = 0; off < bytes; off += 1u << 30) {
        int cnt = (int)(bytes - off < (1u << 30) ? bytes - off : (1u << 30));
        int rc = MPI_Bcast((char *)buf + off, cnt, MPI_BYTE, root, MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS) return mpi_fail(rc, "a broadcast");
    }
    comm_s += pt_now_s() - t0;
#endif
    return PT_OK;
}

pt_status pt_dist_allgather_u64(uint64_t mine, uint64_t *all) {
    if (!mpi_on || n_ranks == 1) { all[0] = mine; return PT_OK; }
#ifdef PT_HAVE_MPI
    int rc = MPI_Allgather(&mine, 1, MPI_UINT64_T, all, 1, MPI_UINT64_T, MPI_COMM_WORLD);
    if (rc != MPI_SUCCESS) return mpi_fail(rc, "an all-gather");
#endif
    return PT_OK;
}

pt_status pt_dist_agree(pt_status mine) {
    if (!mpi_on || n_ranks == 1) return mine;
#ifdef PT_HAVE_MPI
    int first = mine ? my_rank : n_ranks, failed = mine != PT_OK;
    int rc = MPI_Allreduce(MPI_IN_PLACE, &first, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (rc == MPI_SUCCESS) rc = MPI_Allreduce(MPI_IN_PLACE, &failed, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    if (rc != MPI_SUCCESS) return mine ? mine : mpi_fail(rc, "agreeing on success");
    if (first == n_ranks) return mine;
    err_known = true;
    /* every rank failed: the same input, the same cause; rank 0 says it once */
    if (failed == n_ranks) err_quiet = my_rank != 0;
    if (mine) return mine;
    err_quiet = true;
    return pt_error(PT_ERR_ARG, "rank %d failed", first);
#else
    return mine;
#endif
}

pt_status pt_dist_shared(pt_status st, int reporter) {
    if (st) err_known = true, err_quiet = my_rank != reporter;
    return st;
}

bool pt_dist_reports_error(void) { return !err_quiet; }

void pt_dist_fail(int code) {
#ifdef PT_HAVE_MPI
    if (mpi_on && n_ranks > 1 && !err_known) {
        fflush(stdout), fflush(stderr);
        MPI_Abort(MPI_COMM_WORLD, code);
    }
#else
    (void)code;
#endif
}

double pt_dist_comm_seconds(void) { return comm_s; }
