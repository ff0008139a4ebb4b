"""I/O, acquisition simulation runs, reports and the ``recon`` command line."""

from pipelines.common.runtime import tune_openmp

# Before torch or FINUFFT load their OpenMP runtime: idle threads must not spin on a
# busy machine (pipelines.common.runtime). A user's own OMP_WAIT_POLICY or
# GOMP_SPINCOUNT wins.
tune_openmp()
