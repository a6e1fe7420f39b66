"""`python -m mlops_kit.serving --model-dir DIR ...`: the server in a process of its own."""

import os
import sys

# One request runs at a time per worker, so a model's own thread pool (OpenMP in scikit-learn's
# gradient boosting, BLAS) only adds barrier waits on a shared core: a busy neighbour turned an 11 ms
# prediction into 400 ms here. Workers are the unit of parallelism; set these to override.
for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

from mlops_kit.serving.server import main  # noqa: E402

sys.exit(main())
