"""The Dask executor: the worker pool's second implementation (``autograde --scheduler tcp://HOST:8786``).

One task per job on a running Dask ``distributed`` cluster. The batch's shared state is scattered once to every
worker. A worker that dies mid-job loses nothing: the scheduler runs its tasks again elsewhere, and the client
receives each result once (autograder.grading.remote writes it). Workers must run this repository's code with
its virtual environment (README, "Grading a large class"), one thread each: ``dask worker --nthreads 1``.
"""

from __future__ import annotations

import os
import uuid
from typing import Callable, Iterable, Iterator

from . import course

ENV = "AUTOGRADER_SCHEDULER"
TIMEOUT_ENV = "AUTOGRADER_SCHEDULER_TIMEOUT"   # seconds to wait for the scheduler (default 15)


def scheduler_address(given: str | None) -> str | None:
    """The scheduler to use: ``--scheduler`` or, failing that, $AUTOGRADER_SCHEDULER (None: grade locally)."""
    return given or os.environ.get(ENV) or None


class DaskPool:
    """Run jobs as Dask tasks on the cluster whose scheduler listens at ``address``."""

    def __init__(self, address: str):
        try:
            from distributed import Client
        except ImportError:
            raise course.CourseError("--scheduler needs Dask: pip install -e '.[scale]'") from None
        try:
            timeout = f"{float(os.environ.get(TIMEOUT_ENV) or 15)}s"
            self.client = Client(address, timeout=timeout, set_as_default=False)
        except Exception as exc:
            raise course.CourseError(f"cannot reach the Dask scheduler at {address} ({type(exc).__name__}); "
                                     f"start one (`dask scheduler`, then `dask worker {address} --nthreads 1`) "
                                     f"or grade locally without --scheduler") from None
        self.address = address

    def workers(self) -> int:
        return len(self.client.scheduler_info(n_workers=-1).get("workers", {}))

    def map_unordered(self, fn: Callable, items: Iterable, shared=None) -> Iterator:
        """Results of ``fn(item, shared)`` as they finish; a job whose task failed for good yields its
        ``crashed`` result. Closing the iterator cancels what has not run yet."""
        from distributed import as_completed

        items = list(items)
        if not items:
            return
        extra = [self.client.scatter(shared, broadcast=True, hash=False)] if shared is not None else []
        futures = {self.client.submit(fn, item, *extra, key=_key(item)): item for item in items}
        try:
            for future in as_completed(futures, loop=self.client.loop):
                try:
                    yield future.result()
                except Exception as exc:  # e.g. KilledWorker after the scheduler's allowed failures
                    yield futures[future].crashed(f"worker crashed: {type(exc).__name__}: {exc}"[:300])
        finally:
            self.client.cancel(list(futures), force=True)

    def close(self) -> None:
        self.client.close()


def _key(item) -> str:
    """A task name that says what it grades (shown by Dask's dashboard), unique per submission of the task."""
    what = "/".join(str(getattr(item, a, "") or "solution") for a in ("assignment", "student"))
    return f"grade-{what}-{uuid.uuid4().hex[:12]}"
