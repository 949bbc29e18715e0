"""Warm a Dask worker before it takes a task: ``dask worker ADDRESS --nthreads 1 --preload autograder.grading.warm``.

A fresh worker's first submission took about 5 s where later ones take 1 s: it imported nbgrader and the grading
modules, probed the sandbox and started its fork server (autograder.forkserver) first. A cluster's workers start
once and grade many batches, so they pay that at start, before they register with the scheduler. What this
imports and starts is what the first task would have: nothing of any batch or submission.
"""

from __future__ import annotations

import logging


def warm() -> None:
    from nbgrader.apps import api  # noqa: F401  (and with it nbgrader's and nbconvert's preprocessors)

    from .. import forkserver
    from . import autograde, contained, driver, remote  # noqa: F401

    remote.worker_compile_cache()
    forkserver.address(remote.worker_plan(autograde.default_limits()))


def dask_setup(worker) -> None:
    try:
        warm()
    except Exception:   # a worker that cannot warm up still grades: its first task does the same work
        logging.getLogger(__name__).exception("autograder: warming this worker failed")
