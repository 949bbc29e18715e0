import os
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

# One solution-pass cache for the whole test run (autograder.grading.solution_cache), shared by the xdist
# workers: each assignment's solution is graded once per run, not once per batch. Tests of the cache itself
# point it at a folder of their own.
_RUN = os.environ.get("PYTEST_XDIST_TESTRUNUID") or str(os.getpid())
os.environ.setdefault("AUTOGRADER_SOLUTION_CACHE",
                      str(Path(tempfile.gettempdir()) / f"vc4ml-solutions-{os.getuid()}-{_RUN}"))
# Likewise one compile cache for the grading workers' references (autograde.compile_cache_dir).
os.environ.setdefault("AUTOGRADER_COMPILE_CACHE",
                      str(Path(tempfile.gettempdir()) / f"vc4ml-compiled-{os.getuid()}-{_RUN}"))


# The modules that read the shared class batch (tests/classbatch.py) form one xdist scope, so that the worker
# that grades it also runs them all, instead of a second worker waiting for the batch.
_ONE_SCOPE = {"tests/test_demo_class.py": "class-batch", "tests/test_honest.py": "class-batch"}


@pytest.hookimpl(optionalhook=True)  # pytest without xdist knows no such hook
def pytest_xdist_make_scheduler(config, log):
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class Scheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return _ONE_SCOPE.get(nodeid.split("::", 1)[0]) or super()._split_scope(nodeid)

    return Scheduling(config, log)
