/* The version and the build's optional parts, for `politune --version`, run manifests and
 * applications (include/politune.h). A backend or transport that is compiled in defines its
 * macro from the Makefile (PT_HAVE_CUDA, PT_HAVE_MPI); this file only reports them. */
#include "politune.h"

const char *pt_version(void) { return PT_VERSION; }

#ifdef PT_HAVE_CUDA
#define PT_FEATURE_CUDA "cuda=yes"
#else
#define PT_FEATURE_CUDA "cuda=no"
#endif
#ifdef PT_HAVE_MPI
#define PT_FEATURE_MPI "mpi=yes"
#else
#define PT_FEATURE_MPI "mpi=no"
#endif

/* OpenBLAS is not optional: the CPU backend's GEMMs are its sgemm. */
const char *pt_build_features(void) { return "blas=openblas " PT_FEATURE_CUDA " " PT_FEATURE_MPI; }
