import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

# One solution-pass cache for the whole test run (autograder.grading.solution_cache), shared by the xdist
# workers: each assignment's solution is graded once per run, not once per batch. Tests of the cache itself
# point it at a folder of their own.
_RUN = os.environ.get("PYTEST_XDIST_TESTRUNUID") or str(os.getpid())
os.environ.setdefault("AUTOGRADER_SOLUTION_CACHE",
                      str(Path(tempfile.gettempdir()) / f"vc4ml-solutions-{os.getuid()}-{_RUN}"))
