"""Project-wide pytest set-up (tests/ and the notebooks nbval runs)."""

from __future__ import annotations

import os


def pytest_configure(config) -> None:
    """Under pytest-xdist, share the cores between the workers.

    Every worker (and every notebook kernel it starts, which inherits the
    environment) would otherwise run as many torch/OpenMP threads as there are
    cores; on a 2-core machine with 2 workers the oversubscribed threads made
    one training test 9x slower.
    """
    workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if not workers:
        return
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    threads = str(max(1, (cores or 1) // int(workers)))
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = threads

    import torch

    torch.set_num_threads(int(threads))
