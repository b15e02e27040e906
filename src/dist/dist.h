/* Processes working as one job: the rank of this process among the job's ranks, and the few
 * collective operations data-parallel training and sharded evaluation need (sums, a
 * broadcast, an all-gather, agreement on failure). This module alone talks to MPI: built
 * with MPI (PT_HAVE_MPI, `make` finds mpicc) and started by mpirun/srun, it is a real
 * communicator; otherwise it is the job of one process, rank 0 of 1, whose collectives are
 * the identity. The rest of the code never includes mpi.h.
 *
 * Every collective must be called by every rank in the same order: a rank that fails
 * between two collectives calls pt_dist_abort (or agrees through pt_dist_agree) rather than
 * leaving the others waiting. */
#ifndef PT_DIST_DIST_H
#define PT_DIST_DIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/status.h"

/* Joins the job when the process was started by an MPI launcher (OMPI_COMM_WORLD_SIZE,
 * PMIX_RANK or PMI_SIZE in the environment); a plain start stays rank 0 of 1. Idempotent;
 * MPI is finalised at exit. In a build without MPI, a start by a launcher with more than one
 * rank is PT_ERR_UNSUPPORTED (every rank would otherwise train alone and write the same
 * files). */
pt_status pt_dist_init(void);
int pt_dist_rank(void);
int pt_dist_size(void);
/* "mpi" or "none": what pt_dist_init found. */
const char *pt_dist_transport(void);

/* v (n) := the sum of every rank's v (n), the same on every rank. */
pt_status pt_dist_allreduce_sum_f32(float *v, int64_t n);
pt_status pt_dist_allreduce_sum_f64(double *v, int64_t n);
/* buf (bytes) := root's buf on every rank. */
pt_status pt_dist_bcast(void *buf, size_t bytes, int root);
/* all (size) := every rank's `mine`, in rank order. */
pt_status pt_dist_allgather_u64(uint64_t mine, uint64_t *all);
/* Whether every rank succeeded: returns PT_OK where all did; where any failed, the failing
 * rank keeps its own status and message and the others get PT_ERR_ARG with "rank R failed"
 * (R the lowest failing rank), so all leave the same collective path together. The failing
 * ranks report (pt_dist_reports_error); where all failed, rank 0 alone. */
pt_status pt_dist_agree(pt_status mine);
/* Marks the error just made as one every rank reached alike (a check of the
 * configuration or of the files), so that one line is printed, by rank `reporter` (0, or
 * the rank the message is about); returns st. */
pt_status pt_dist_shared(pt_status st, int reporter);
/* Whether this rank prints its error: rank 0, a rank that failed alone, never a rank that
 * only learned through pt_dist_agree that another failed. */
bool pt_dist_reports_error(void);
/* After a failure: ends the whole job with this exit code (MPI_Abort) when the other ranks
 * may still be waiting in a collective, i.e. unless the failure went through pt_dist_agree
 * or pt_dist_shared; returns otherwise. */
void pt_dist_fail(int code);
/* Seconds spent inside collectives so far (the benchmark's communication share). */
double pt_dist_comm_seconds(void);

/* GPU ranks (dist_nccl.c, `make CUDA=1`): an NCCL communicator over the job's ranks on GPU
 * `device`, and the in-place sum of a float32 buffer in GPU memory on a CUDA stream (NULL: the
 * default), waited for. Compiled and linked, never run on a GPU; training does not call it
 * yet. Without CUDA: PT_ERR_UNSUPPORTED. */
pt_status pt_dist_nccl_init(int device);
pt_status pt_dist_nccl_allreduce_sum_f32(float *device_buf, int64_t n, void *stream);
void pt_dist_nccl_free(void);

#endif
